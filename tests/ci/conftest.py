"""The CI workflows' command sequences against the session stack (fixtures shared with the integration suite)."""

from tests.integration.conftest import sdk_env, stack, stack_url  # noqa: F401
