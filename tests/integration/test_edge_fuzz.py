"""A bounded fuzz of the SageMaker API, driven by botocore's service model (issue 17's fuzz tier, kept small).

A fixed seed picks a few hundred requests over every operation the stack implements, with values that are valid,
out of range, of the wrong type, or malformed. No answer may be a 5xx; every error has AWS's JSON error shape; the
stack still answers afterwards. Integers stay small so no request asks for unbounded work (quotas are issue 17's
finding 2, tested on their own). Only the fresh stack on 127.0.0.1 is targeted.
"""

import base64
import http.client
import json
import random

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape

from infra.config import StackSettings
from infra.control_plane.core.resource_tags import Tags
from infra.control_plane.sagemaker_dispatcher import snake_case
from infra.control_plane.server import LocalStack

SEED = 17
REQUESTS = 600
_STRINGS = ["fuzz-1", "", "x" * 300, "a\x00b", "../../etc/passwd", "s3://no-such-bucket/k", "ünïcødé", "arn:aws:x"]
_TIMESTAMPS = [0, 1.7e9, 100000000000000000000, -1e20, "2020-01-01T00:00:00Z", "not a time", 1e308]
_WRONG_TYPES = [None, [], {}, "text", 3, True, 1.5]


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    stack = LocalStack(StackSettings(data_dir=tmp_path_factory.mktemp("fuzz"), port=0, region="us-east-1"))
    stack.start()
    yield stack
    stack.stop()


def _implemented(stack, model):
    services = stack.backend().services()
    providers = (*services, Tags(services))
    return sorted(
        op for op in model.operation_names if any(callable(getattr(p, snake_case(op), None)) for p in providers)
    )


class _Values:
    def __init__(self, rng):
        self.rng = rng

    def of(self, shape: Shape, depth: int = 0):
        rng = self.rng
        if rng.random() < 0.08:
            return rng.choice(_WRONG_TYPES)
        if isinstance(shape, StructureShape):
            if depth > 6:
                return {}
            value = {}
            for name, member in shape.members.items():
                if rng.random() < (0.85 if name in shape.required_members else 0.3):
                    value[name] = self.of(member, depth + 1)
            if rng.random() < 0.05:
                value["NotAMember"] = 1
            return value
        if isinstance(shape, ListShape):
            return [self.of(shape.member, depth + 1) for _ in range(rng.randint(0, 3))]
        if isinstance(shape, MapShape):
            return {self._string(shape.key): self.of(shape.value, depth + 1) for _ in range(rng.randint(0, 2))}
        return self._scalar(shape)

    def _scalar(self, shape: Shape):
        rng, kind = self.rng, shape.type_name
        if kind == "string":
            return self._string(shape)
        if kind in ("integer", "long"):
            low, high = shape.metadata.get("min", -1), min(shape.metadata.get("max", 4), 4)
            return rng.choice([low, -1, 0, 1, max(low, min(high, 4)), "7"])
        if kind in ("float", "double"):
            return rng.choice([0.5, -1e308, 1e308, 0, "1.5"])
        if kind == "boolean":
            return rng.choice([True, False, "yes"])
        if kind == "timestamp":
            return rng.choice(_TIMESTAMPS)
        if kind == "blob":
            return base64.b64encode(rng.randbytes(rng.randint(0, 16))).decode()
        return None

    def _string(self, shape: Shape):
        if shape.enum and self.rng.random() < 0.6:
            return self.rng.choice(shape.enum)
        return self.rng.choice(_STRINGS)


def _post(connection, operation, body):
    headers = {"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"}
    connection.request("POST", "/", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_fuzzed_requests_get_no_5xx_and_aws_error_shapes(fuzz_stack):
    model = botocore.session.get_session().get_service_model("sagemaker")
    operations = _implemented(fuzz_stack, model)
    assert len(operations) > 50
    rng = random.Random(SEED)
    values = _Values(rng)
    port = fuzz_stack.settings.port
    failures = []
    for index in range(REQUESTS):
        operation = operations[index % len(operations)]
        params = values.of(model.operation_model(operation).input_shape)
        body = json.dumps(params).encode() if rng.random() > 0.03 else b'{"truncated": '
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            status, answer = _post(connection, operation, body)
        finally:
            connection.close()
        if status >= 500:
            failures.append((operation, params, answer[:300]))
        elif status >= 400:
            error = json.loads(answer)
            assert set(error) >= {"__type", "message"}, (operation, answer)
    assert failures == []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, answer = _post(connection, "ListModels", b"{}")
    finally:
        connection.close()
    assert status == 200
    assert "Models" in json.loads(answer)
