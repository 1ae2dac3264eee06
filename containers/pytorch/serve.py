"""The PyTorch inference defaults (docs/containers.md, "Framework containers"), after the SageMaker PyTorch
inference toolkit: ``model_fn`` loads ``model.pt`` (or the one ``.pt``/``.pth`` file) as TorchScript, ``input_fn``
reads JSON, CSV, NPY and NPZ into a tensor (float32 for the text types), ``predict_fn`` runs the model in eval mode
without gradients, and ``output_fn`` writes the first type of the Accept list it knows (JSON, CSV, NPY; 415 else).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from containers.toolkit.errors import BadRequestError, InferenceError, UnsupportedMediaTypeError, UserError
from containers.toolkit.framework.framework_codecs import (
    CSV,
    JSON,
    NPY,
    NPZ,
    UTF8_TYPES,
    decode,
    encode,
    first_supported,
)
from containers.toolkit.framework.script_serving import FrameworkDefaults, ScriptModeHandler

logger = logging.getLogger(__name__)

__all__ = ["PyTorchDefaults", "PyTorchHandler"]

DEFAULT_MODEL_FILENAME = "model.pt"
MODEL_SUFFIXES = (".pt", ".pth")


class PyTorchDefaults(FrameworkDefaults):
    unsupported_accept: ClassVar[type[InferenceError]] = UnsupportedMediaTypeError

    def model_fn(self, model_dir: str) -> Any:
        import torch

        directory = Path(model_dir)
        path = directory / DEFAULT_MODEL_FILENAME
        if not path.is_file():
            found = sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix in MODEL_SUFFIXES)
            if len(found) != 1:
                raise UserError(
                    f"Exactly one .pth or .pt file is required for PyTorch models: {found} (or define model_fn "
                    "in inference.py)"
                )
            path = directory / found[0]
        try:
            return torch.jit.load(str(path), map_location=torch.device("cpu"))
        except RuntimeError as exc:
            raise UserError(f"Failed to load {path}. Please ensure model is saved using torchscript.") from exc

    def input_fn(self, input_data: str | bytes, content_type: str) -> Any:
        import torch

        if content_type == CSV:
            text = input_data if isinstance(input_data, str) else input_data.decode("utf-8")
            try:
                array = np.genfromtxt(io.StringIO(text), delimiter=",")
            except ValueError as exc:
                raise BadRequestError(f"Error while decoding csv: {exc}") from exc
        else:
            array = decode(input_data, content_type, (JSON, NPY, NPZ))
        if content_type in UTF8_TYPES:
            return torch.tensor(np.asarray(array, dtype=np.float32))
        return torch.from_numpy(np.asarray(array))

    def predict_fn(self, data: Any, model: Any) -> Any:
        import torch

        with torch.no_grad():
            model.eval()
            return model(data)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        if hasattr(prediction, "detach"):
            prediction = prediction.detach().cpu().numpy().tolist()
        content_type = first_supported(accept)
        return encode(prediction, content_type), content_type


class PyTorchHandler(ScriptModeHandler):
    defaults_class: ClassVar[type[FrameworkDefaults]] = PyTorchDefaults
