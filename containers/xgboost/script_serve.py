"""XGBoost framework mode serving (``XGBoost(entry_point=...)``): the user's inference functions with the XGBoost
container's defaults (docs/containers.md, "Framework containers"). As on AWS's container there is no default
``model_fn`` (the script loads its model); ``input_fn`` reads CSV, LIBSVM and recordIO-protobuf into a ``DMatrix``
(415 for other types), ``predict_fn`` calls ``model.predict(data, validate_features=False)`` and ``output_fn`` writes
JSON, CSV or NPY (406 for another Accept). Algorithm mode (no ``SAGEMAKER_PROGRAM``) is :mod:`serve`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from containers.toolkit.codecs.content_types import CSV, LIBSVM, RECORDIO_PROTOBUF, parse_media_type
from containers.toolkit.codecs.inference import decode_request
from containers.toolkit.errors import UserError
from containers.toolkit.framework.framework_codecs import UnsupportedFormatError, encode
from containers.toolkit.framework.script_serving import FrameworkDefaults, ScriptModeHandler

logger = logging.getLogger(__name__)

__all__ = ["XGBoostFrameworkDefaults", "XGBoostScriptHandler"]

_READS = (CSV, LIBSVM, RECORDIO_PROTOBUF)


class XGBoostFrameworkDefaults(FrameworkDefaults):
    def model_fn(self, model_dir: str) -> Any:
        raise UserError(
            "Please provide a model_fn implementation. XGBoost framework mode has no default model_fn "
            "(see the SageMaker Python SDK's documentation of model_fn)."
        )

    def input_fn(self, input_data: str | bytes, content_type: str) -> Any:
        import xgboost as xgb

        if parse_media_type(content_type or "application/octet-stream").type not in _READS:
            raise UnsupportedFormatError(content_type)
        body = input_data.encode("utf-8") if isinstance(input_data, str) else input_data
        return xgb.DMatrix(decode_request(body, content_type).features)

    def predict_fn(self, data: Any, model: Any) -> Any:
        return model.predict(data, validate_features=False)

    def output_fn(self, prediction: Any, accept: str) -> Any:
        return encode(prediction, accept), accept


class XGBoostScriptHandler(ScriptModeHandler):
    defaults_class: ClassVar[type[FrameworkDefaults]] = XGBoostFrameworkDefaults
