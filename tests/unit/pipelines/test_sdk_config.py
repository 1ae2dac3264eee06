"""The prebuilt SDK config validator accepts and rejects exactly what the SDK's own validation does."""

import jsonschema
import pytest
from sagemaker.config import config as sdk_config_module

from pipelines.library import sdk_config

GOOD = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True, "Session": {"DefaultS3Bucket": "my-bucket"}}}},
}
BAD_BUCKET = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"Session": {"DefaultS3Bucket": "B"}}}}}
BAD_KEY = {"SchemaVersion": "1.0", "SageMaker": {"NoSuchSection": {}}}


def _reference(config):
    jsonschema.validate(config, sdk_config_module.SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)


@pytest.mark.parametrize("config", [BAD_BUCKET, BAD_KEY])
def test_invalid_configs_raise_the_same_error_as_the_sdk(config):
    with pytest.raises(jsonschema.ValidationError) as reference:
        _reference(config)
    for _ in range(2):  # the second call is served from the cache and must still raise
        with pytest.raises(jsonschema.ValidationError) as ours:
            sdk_config.validate_sagemaker_config(config)
        assert ours.value.message == reference.value.message
        assert list(ours.value.path) == list(reference.value.path)


def test_valid_config_passes_and_install_reaches_every_sdk_caller():
    import sagemaker.session
    import sagemaker.utils

    sdk_config.validate_sagemaker_config(GOOD)
    sdk_config.install()
    for module in (sdk_config_module, sagemaker.session, sagemaker.utils):
        assert module.validate_sagemaker_config is sdk_config.validate_sagemaker_config
    with pytest.raises(jsonschema.ValidationError):
        sagemaker.utils.get_sagemaker_config_value(None, "SageMaker.PythonSDK.Modules.Session", BAD_BUCKET)
