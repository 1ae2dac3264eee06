"""Requests generated from botocore's SageMaker service model: the fuzz tier's generator (issue 17).

Used by ``tests/integration/test_edge_fuzz.py`` and ``benchmarks/fuzz_requests.py``. A seeded ``random.Random`` picks
values that are valid, out of range, of the wrong type, or malformed. Integers stay small so no request asks for
unbounded work (quotas are tested on their own).
"""

import base64
import http.client
import json
import random

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from infra.control_plane.core.resource_tags import Tags
from infra.control_plane.sagemaker_dispatcher import snake_case

SEED = 17
_STRINGS = ["fuzz-1", "", "x" * 300, "a\x00b", "../../etc/passwd", "s3://no-such-bucket/k", "ünïcødé", "arn:aws:x"]
_TIMESTAMPS = [0, 1.7e9, 100000000000000000000, -1e20, "2020-01-01T00:00:00Z", "not a time", 1e308]
_WRONG_TYPES = [None, [], {}, "text", 3, True, 1.5]
_TRUNCATED = b'{"truncated": '


def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def implemented_operations(stack, model):
    """The operations of ``model`` that the in-process ``stack`` implements, sorted."""
    services = stack.backend().services()
    providers = (*services, Tags(services))
    return sorted(
        op for op in model.operation_names if any(callable(getattr(p, snake_case(op), None)) for p in providers)
    )


class FuzzValues:
    """Values for a botocore shape: mostly well-formed, sometimes of the wrong type or out of range."""

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


def fuzz_requests(model, operations, count, seed=SEED):
    """``count`` (operation, params, body) triples, round-robin over ``operations``; about 3 % of bodies are cut."""
    rng = random.Random(seed)
    values = FuzzValues(rng)
    for index in range(count):
        operation = operations[index % len(operations)]
        params = values.of(model.operation_model(operation).input_shape)
        body = json.dumps(params).encode() if rng.random() > 0.03 else _TRUNCATED
        yield operation, params, body


def post(port, operation, body):
    """One SageMaker JSON request on a fresh connection: (status, answer body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"}
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def has_aws_error_shape(answer):
    try:
        error = json.loads(answer)
    except ValueError:
        return False
    return isinstance(error, dict) and {"__type", "message"} <= set(error)
