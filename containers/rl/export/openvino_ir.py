"""The conversion the car performs: the frozen graph through OpenVINO into its IR (``model.xml`` + ``model.bin``),
and inference with it (docs/deepracer.md#export). OpenVINO is imported here only (not in the container images)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from containers.rl.export.frozen_graph import GraphNames

logger = logging.getLogger(__name__)


def _ov() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from containers.toolkit.errors import UserError

        raise UserError("the OpenVINO conversion needs openvino (pip install openvino==2026.4.1, see docs)") from exc
    return ov


def convert_to_ir(frozen_path: Path, names: GraphNames, input_shape: tuple[int, ...], xml_path: Path) -> Path:
    """Convert ``model.pb`` with a batch-1 input (as the car's model optimizer does) and save the IR."""
    ov = _ov()
    model = ov.convert_model(str(frozen_path), input=[(f"{names.input}:0", [1, *input_shape])])
    if {f"{names.output}:0"} != model.outputs[0].get_names():
        raise ValueError(f"OpenVINO read the output {model.outputs[0].get_names()}, expected {names.output}:0")
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    logger.info("wrote %s", xml_path)
    return xml_path


def run_ir(xml_path: Path, observations: np.ndarray) -> np.ndarray:
    """The IR's output for each observation, one inference per frame as on the car (CPU device, 32-bit floats: the
    car's Atom has no bfloat16, which OpenVINO otherwise picks by default on CPUs that have it)."""
    ov = _ov()
    compiled = ov.Core().compile_model(str(xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rows = [np.asarray(compiled(obs[None].astype(np.float32))[0])[0] for obs in observations]
    return np.stack(rows).astype(np.float32)
