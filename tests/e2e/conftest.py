"""End-to-end runs of the default pipelines against the session stack (fixtures shared with the integration suite)."""

from tests.integration.conftest import sdk_env, stack, stack_url  # noqa: F401
