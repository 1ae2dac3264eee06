from __future__ import annotations

import os

from containers.toolkit import threads


def test_sm_num_cpus_and_cgroup_quota_lower_the_count():
    cpus = len(os.sched_getaffinity(0))
    assert threads.available_cpus({}, None) == cpus
    assert threads.available_cpus({"SM_NUM_CPUS": "1"}, None) == 1
    assert threads.available_cpus({"SM_NUM_CPUS": "bogus"}, 1) == 1
    assert threads.available_cpus({"SM_NUM_CPUS": "10000"}, None) == cpus


def test_cgroup_v2_quota_is_rounded_up(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(cpu_max, tmp_path / "none") == 2
    cpu_max.write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(cpu_max, tmp_path / "none") is None


def test_user_settings_win():
    env = {"OMP_NUM_THREADS": "3", "SM_NUM_CPUS": "1"}
    assert threads.limit_native_threads(env) == 1
    assert env["OMP_NUM_THREADS"] == "3" and env["OPENBLAS_NUM_THREADS"] == "1"
