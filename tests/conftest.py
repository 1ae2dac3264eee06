"""Settings every test session shares."""

from __future__ import annotations

import os

# The SDK v2 prints a deprecation banner on import; the stack and the SDK never reach AWS from tests.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
