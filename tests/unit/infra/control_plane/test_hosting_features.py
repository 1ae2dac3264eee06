"""Known answers of the endpoint features' pure parts (docs/deploy.md): multi-model archive URLs, serverless
validation and memory reading."""

from __future__ import annotations

import os

import pytest

from infra.control_plane.core.errors import RuntimeValidationError, ThrottlingException, ValidationException
from infra.control_plane.hosting.hosting_requests import ProductionVariant, ServerlessConfig
from infra.control_plane.hosting.multi_model import target_model_url
from infra.control_plane.hosting.serverless import ServerlessCapacity, check_serverless_variant, resident_memory_mb


@pytest.mark.parametrize(
    ("prefix", "target", "url"),
    [
        ("s3://b/models/", "a.tar.gz", "s3://b/models/a.tar.gz"),
        ("s3://b/models", "a.tar.gz", "s3://b/models/a.tar.gz"),
        ("s3://b/models/", "team/v2/a.tar.gz", "s3://b/models/team/v2/a.tar.gz"),
    ],
)
def test_target_model_url_joins_prefix_and_target(prefix, target, url):
    assert target_model_url(prefix, target) == url


@pytest.mark.parametrize("target", ["../other/a.tar.gz", "/abs.tar.gz", "a/../../b.tar.gz", ""])
def test_a_target_model_outside_the_prefix_is_refused(target):
    with pytest.raises(RuntimeValidationError):
        target_model_url("s3://b/models/", target)


def _variant(**serverless: int) -> ProductionVariant:
    return ProductionVariant.model_validate({"VariantName": "v", "ModelName": "m", "ServerlessConfig": serverless})


@pytest.mark.parametrize("memory", [1024, 2048, 3072, 4096, 5120, 6144])
def test_serverless_memory_sizes_aws_accepts(memory):
    check_serverless_variant(_variant(MemorySizeInMB=memory, MaxConcurrency=5))


@pytest.mark.parametrize(
    "config",
    [
        {"MemorySizeInMB": 1536, "MaxConcurrency": 5},
        {"MemorySizeInMB": 2048},
        {"MemorySizeInMB": 2048, "MaxConcurrency": 2, "ProvisionedConcurrency": 3},
    ],
)
def test_serverless_configs_aws_refuses(config):
    with pytest.raises(ValidationException):
        check_serverless_variant(_variant(**config))


def test_resident_memory_of_this_process_group():
    held = bytearray(64 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])
    assert resident_memory_mb(os.getpgid(0)) > 64
    assert resident_memory_mb(2**22 + 12345) == 0  # no such group


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_serverless_capacity_cold_starts_bounds_and_releases_when_idle():
    clock, started = _Clock(), []
    config = ServerlessConfig.model_validate({"MemorySizeInMB": 1024, "MaxConcurrency": 2})
    capacity = ServerlessCapacity(config, lambda: started.append(len(started)) or f"instance-{len(started)}", clock)
    assert capacity.instance is None and started == []
    with capacity.admitted("ep"), capacity.admitted("ep"):
        assert capacity.started() == "instance-1" and capacity.started() == "instance-1"
        with pytest.raises(ThrottlingException):  # a third request while two are in flight
            with capacity.admitted("ep"):
                pass
        clock.now = 1000.0
        assert capacity.release_idle(600) is None  # requests in flight: never idle
    clock.now = 1500.0
    assert capacity.release_idle(600) is None  # 500 s since the last request ended
    clock.now = 1601.0
    assert capacity.release_idle(600) == "instance-1" and capacity.instance is None
    with capacity.admitted("ep"):
        assert capacity.started() == "instance-2"  # the next request cold-starts again
    assert capacity.cold_starts == 2
