"""A bounded fuzz of the SageMaker API, driven by botocore's service model (issue 17's fuzz tier, kept small).

A fixed seed picks a few hundred requests over every operation the stack implements
(``tests/integration/fuzz_generator.py``), with values that are valid, out of range, of the wrong type, or malformed.
No answer may be a 5xx; every error has AWS's JSON error shape; the stack still answers afterwards. Only the fresh
stack on 127.0.0.1 is targeted. ``benchmarks/fuzz_requests.py`` measures the same generator's throughput.
"""

import json

import pytest

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.integration.fuzz_generator import (
    fuzz_requests,
    has_aws_error_shape,
    implemented_operations,
    post,
    sagemaker_model,
)

REQUESTS = 600


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    stack = LocalStack(StackSettings(data_dir=tmp_path_factory.mktemp("fuzz"), port=0, region="us-east-1"))
    stack.start()
    yield stack
    stack.stop()


def test_fuzzed_requests_get_no_5xx_and_aws_error_shapes(fuzz_stack):
    model = sagemaker_model()
    operations = implemented_operations(fuzz_stack, model)
    assert len(operations) > 50
    port = fuzz_stack.settings.port
    failures = []
    for operation, params, body in fuzz_requests(model, operations, REQUESTS):
        status, answer = post(port, operation, body)
        if status >= 500:
            failures.append((operation, params, answer[:300]))
        elif status >= 400:
            assert has_aws_error_shape(answer), (operation, answer)
    assert failures == []
    status, answer = post(port, "ListModels", b"{}")
    assert status == 200
    assert "Models" in json.loads(answer)
