"""Standby host sets (docs/performance.md#warm-pools): their bounds, idle expiry, eviction and release.

:class:`WarmHosts` is driven with real processes (an idle interpreter per host) and no isolation; what a claimed
host then runs is covered through the stack in tests/integration/test_standby_hosts.py.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from infra.runtime.api import ContainerImage
from infra.runtime.errors import InvalidSpecError
from infra.runtime.process.host_process import HostProcess
from infra.runtime.process.layout import HostLayout
from infra.runtime.process.warm_hosts import WarmHosts, WarmHostSet, standby_key
from infra.runtime.settings import RuntimeSettings
from tests.unit.infra.support import pid_gone

IMAGE = ContainerImage(uri="sagestack/standby:test", command=(sys.executable, "-m", "standby_entry"))
HOSTS = ("algo-1",)
INSTANCE = "ml.m5.large"
SLEEPING_ARGV = (sys.executable, "-c", "import time; time.sleep(3600)")


def start_idle_hosts(slot_dir: Path) -> tuple[tuple[HostLayout, ...], tuple[HostProcess, ...], Mapping[str, str]]:
    """One idle interpreter for ``algo-1``, started with ``OMP_NUM_THREADS=1`` (an import-time variable)."""
    layout = HostLayout(host="algo-1", root=slot_dir / "algo-1")
    layout.root.mkdir()
    environment = {"OMP_NUM_THREADS": "1"}
    return (layout,), (HostProcess("algo-1", SLEEPING_ARGV, environment, layout.root),), environment


@pytest.fixture
def standby(tmp_path: Path) -> Iterator[WarmHosts]:
    kept = WarmHosts(tmp_path / "standby", limit=2, kind="standby hosts", idle_seconds=300.0)
    yield kept
    kept.release_all()


def prestart(kept: WarmHosts, key: str) -> WarmHostSet:
    started = kept.prestart(key, IMAGE, INSTANCE, start_idle_hosts)
    assert started is not None
    return started


def ended(warm: WarmHostSet) -> bool:
    """Waits (without a time limit) until every process of the set has exited; then whether its pids are gone."""
    for process in warm.processes:
        process.wait()
    return all(pid_gone(process.pid) for process in warm.processes)


def test_the_oldest_standby_set_makes_room_when_the_limit_is_reached(standby: WarmHosts) -> None:
    first, second = prestart(standby, "standby-a"), prestart(standby, "standby-b")
    third = prestart(standby, "standby-c")

    assert standby.keys() == ["standby-b", "standby-c"]
    assert ended(first) and not first.slot_dir.exists()
    assert second.alive() and third.alive()


def test_prestarting_a_live_key_again_keeps_its_set_and_makes_it_the_newest(standby: WarmHosts) -> None:
    first, second = prestart(standby, "standby-a"), prestart(standby, "standby-b")

    again = prestart(standby, "standby-a")
    prestart(standby, "standby-c")

    assert again is first and first.alive()
    assert standby.keys() == ["standby-a", "standby-c"]
    assert ended(second)


def test_an_unclaimed_standby_set_ends_after_its_idle_time(tmp_path: Path) -> None:
    kept = WarmHosts(tmp_path / "standby", limit=2, kind="standby hosts", idle_seconds=0.2)
    try:
        warm = prestart(kept, "standby-a")
        assert ended(warm)
        assert kept.keys() == []
    finally:
        kept.release_all()


def test_a_claimed_set_is_the_jobs_and_no_longer_expires(tmp_path: Path) -> None:
    kept = WarmHosts(tmp_path / "standby", limit=2, kind="standby hosts", idle_seconds=0.2)
    key = standby_key(IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1"})
    warm = prestart(kept, key)

    claimed = kept.claim(key, IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1", "MY_VAR": "not import-time"})

    assert claimed is warm and kept.keys() == []
    threading.Event().wait(0.5)  # past the idle time: the claimed set was not ended
    assert warm.alive()
    warm.discard()
    assert ended(warm)


def test_a_dead_or_different_standby_set_is_discarded_at_claim(standby: WarmHosts) -> None:
    key = standby_key(IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1"})
    dead = prestart(standby, key)
    dead.processes[0].kill()
    dead.processes[0].wait()

    assert standby.claim(key, IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1"}) is None
    assert ended(dead)
    other = prestart(standby, key)
    assert standby.claim(key, IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "2"}) is None
    assert ended(other) and standby.keys() == []


def test_the_standby_key_follows_image_hosts_instance_type_and_import_time_environment() -> None:
    base = standby_key(IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1", "MY_VAR": "a"})

    assert standby_key(IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1", "MY_VAR": "b"}) == base
    assert standby_key(IMAGE, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "2"}) != base
    assert standby_key(IMAGE, ("algo-1", "algo-2"), INSTANCE, {"OMP_NUM_THREADS": "1"}) != base
    assert standby_key(IMAGE, HOSTS, "ml.m5.xlarge", {"OMP_NUM_THREADS": "1"}) != base
    other_image = ContainerImage(uri="sagestack/other:test", command=IMAGE.command)
    assert standby_key(other_image, HOSTS, INSTANCE, {"OMP_NUM_THREADS": "1"}) != base


def test_a_limit_of_zero_turns_standby_sets_off(tmp_path: Path) -> None:
    kept = WarmHosts(tmp_path / "standby", limit=0, kind="standby hosts", idle_seconds=300.0)

    assert kept.prestart("standby-a", IMAGE, INSTANCE, start_idle_hosts) is None
    assert kept.keys() == [] and not (tmp_path / "standby").exists()


def test_warm_pool_sets_are_refused_past_the_limit_not_evicted(tmp_path: Path) -> None:
    pools = WarmHosts(tmp_path / "warm", limit=1)
    try:
        first = prestart(pools, "pool-a")
        assert pools.prestart("pool-b", IMAGE, INSTANCE, start_idle_hosts) is None
        assert pools.keys() == ["pool-a"] and first.alive()
    finally:
        pools.release_all()


def test_release_all_ends_every_set_and_one_that_finishes_starting_afterwards(tmp_path: Path) -> None:
    kept = WarmHosts(tmp_path / "standby", limit=2, kind="standby hosts", idle_seconds=300.0)
    ready = prestart(kept, "standby-a")
    release = threading.Event()
    late: list[WarmHostSet] = []

    def start_during_release(
        slot_dir: Path,
    ) -> tuple[tuple[HostLayout, ...], tuple[HostProcess, ...], Mapping[str, str]]:
        kept.release_all()  # the stack stops while this set starts
        release.set()
        started = start_idle_hosts(slot_dir)
        late.append(WarmHostSet("late", IMAGE.uri, INSTANCE, slot_dir, *started))
        return started

    assert kept.prestart("standby-b", IMAGE, INSTANCE, start_during_release) is None
    assert release.is_set() and kept.keys() == []
    assert ended(ready)
    assert ended(late[0])
    assert kept.prestart("standby-c", IMAGE, INSTANCE, start_idle_hosts) is None  # nothing starts after it


def test_runtime_settings_read_the_standby_knobs_from_the_environment() -> None:
    default = RuntimeSettings.from_environment({})
    assert (default.standby_host_sets, default.standby_idle_seconds) == (2, 300.0)

    tuned = RuntimeSettings.from_environment(
        {"SAGESTACK_STANDBY_HOST_SETS": "0", "SAGESTACK_STANDBY_IDLE_SECONDS": "12.5"}
    )
    assert (tuned.standby_host_sets, tuned.standby_idle_seconds) == (0, 12.5)

    for bad in ({"SAGESTACK_STANDBY_HOST_SETS": "two"}, {"SAGESTACK_STANDBY_IDLE_SECONDS": "inf"}):
        with pytest.raises(InvalidSpecError):
            RuntimeSettings.from_environment(bad)
    with pytest.raises(InvalidSpecError):
        RuntimeSettings(standby_host_sets=-1)
