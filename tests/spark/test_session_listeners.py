"""The stack's Spark sessions listen on loopback only (issue 17, finding 8; docs/security.md#what-jobs-listen-on)."""

import os

import psutil
import pytest

from tests.integration.listeners import ListenerWatch


@pytest.mark.capability("iproute2-ss")
def test_a_local_spark_session_listens_on_loopback_only(spark):
    assert spark.sparkContext.parallelize(range(100), 4).map(lambda x: x * 2).sum() == 9900
    watch = ListenerWatch()
    watch.sample({child.pid for child in psutil.Process(os.getpid()).children(recursive=True)})
    assert any(name == "java" for name, _, _ in watch.seen), watch.seen  # the driver's RPC and block manager
    assert watch.external() == []
