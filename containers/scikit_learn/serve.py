"""The scikit-learn inference defaults (docs/containers.md, "Framework containers"), after the
sagemaker-scikit-learn-container: there is no default ``model_fn`` (the script must load its model), the default
``input_fn`` reads JSON, CSV and NPY (text types cast to float32), ``predict_fn`` calls ``model.predict`` and
``output_fn`` writes JSON, CSV or NPY (406 for another Accept).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from containers.toolkit.errors import UserError
from containers.toolkit.framework.framework_codecs import UTF8_TYPES, decode, encode
from containers.toolkit.framework.script_serving import FrameworkDefaults, ScriptModeHandler

logger = logging.getLogger(__name__)

__all__ = ["ScikitLearnDefaults", "ScikitLearnHandler"]


class ScikitLearnDefaults(FrameworkDefaults):
    def model_fn(self, model_dir: str) -> Any:
        raise UserError(
            "Please provide a model_fn implementation. The scikit-learn container has no default model_fn "
            "(see the SageMaker Python SDK's documentation of model_fn)."
        )

    def input_fn(self, input_data: str | bytes, content_type: str) -> Any:
        array = decode(input_data, content_type)
        return array.astype(np.float32) if content_type in UTF8_TYPES else array

    def predict_fn(self, data: Any, model: Any) -> Any:
        return model.predict(data)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        return encode(prediction, accept), accept


class ScikitLearnHandler(ScriptModeHandler):
    defaults_class: ClassVar[type[FrameworkDefaults]] = ScikitLearnDefaults
