"""SageMaker SDK v2 config validation with one prebuilt validator.

The SDK validates its whole defaults config (``SAGEMAKER_USER_CONFIG_OVERRIDE``: the stack's default bucket and
telemetry opt-out) at every config look-up, through ``jsonschema.validate``, which re-checks the SDK's large schema
against the JSON Schema meta-schema each time: 0.3-0.6 s per look-up, and building the credit-risk definition makes
about 150 of them. ``install`` points the SDK's modules at a validator that checks the schema once and then validates
each config against the same schema with the same errors (``best_match`` of the same error iterator), so only the
repeated meta-check goes. Idempotent; changes nothing else of the SDK.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from typing import Any

import jsonschema

logger = logging.getLogger(__name__)

# every module of SDK v2 that calls ``validate_sagemaker_config`` through its own global name
_SDK_MODULES = ("sagemaker.config.config", "sagemaker.config", "sagemaker.session", "sagemaker.utils")


@functools.cache
def _validator() -> Any:
    from sagemaker.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA as schema

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.lru_cache(maxsize=64)
def _errors_of(serialised: str) -> jsonschema.ValidationError | None:
    return jsonschema.exceptions.best_match(_validator().iter_errors(json.loads(serialised)))


def validate_sagemaker_config(sagemaker_config: dict[str, Any] | None = None) -> None:
    """Same contract as ``sagemaker.config.validate_sagemaker_config``: raises ``jsonschema.ValidationError``."""
    try:
        serialised = json.dumps(sagemaker_config, sort_keys=True)
    except (TypeError, ValueError):  # not JSON-serialisable: validate uncached
        error = jsonschema.exceptions.best_match(_validator().iter_errors(sagemaker_config))
    else:
        error = _errors_of(serialised)
    if error is not None:
        raise error


def install() -> None:
    """Use ``validate_sagemaker_config`` above in the SDK's modules (a no-op when already done)."""
    for name in _SDK_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "validate_sagemaker_config", None) is not validate_sagemaker_config:
            module.validate_sagemaker_config = validate_sagemaker_config  # type: ignore[attr-defined]
    logger.debug("SageMaker SDK config validation uses one prebuilt validator")
