"""Two hosts (algo-1, algo-2) train one model together, each on its own shard, as with instance_count=2.

Each host runs ``python -m containers.xgboost train`` in its own mount namespace where a generated /etc/hosts makes
algo-1 and algo-2 resolve to 127.0.0.1 (what our process runtime does); skipped where ``unshare`` is unavailable.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from infra.runtime.process.process_serving import free_port_pair
from tests.capabilities import requires_capability

from .conftest import REPO, Channel, container_env, layout_host, model_files, to_csv

HOSTS = ("algo-1", "algo-2")
HPS = {
    "num_round": "10",
    "objective": "binary:logistic",
    "max_depth": "3",
    "eta": "0.3",
    "tree_method": "hist",
    "seed": "0",
    "eval_metric": "auc",
}
_MOUNT_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'


def _namespaces_work(tmp_path) -> bool:
    if shutil.which("unshare") is None:
        return False
    hosts = tmp_path / "probe-hosts"
    hosts.write_text("127.0.0.1\tlocalhost algo-1\n")
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", _MOUNT_HOSTS + " ", str(hosts), "getent", "hosts", "algo-1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return probe.returncode == 0 and "127.0.0.1" in probe.stdout


def _free_port() -> int:
    """A port whose neighbour is free too: XGBoost's tracker listens on both (the runtime picks its pair so)."""
    return free_port_pair()


def _run_hosts(tmp_path, shards, validation=None, hps=HPS, checkpoints=False):
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("127.0.0.1\tlocalhost\n127.0.0.1\t" + " ".join(HOSTS) + "\n")
    port = _free_port()
    processes = {}
    for host, shard in zip(HOSTS, shards, strict=True):
        channels = {"train": Channel(shard, distribution="ShardedByS3Key")}
        if validation is not None:
            channels["validation"] = Channel(validation)
        base = layout_host(tmp_path / host, hps, channels, hosts=HOSTS, current_host=host, checkpoints=checkpoints)
        command = [
            "unshare",
            "-rm",
            "sh",
            "-c",
            _MOUNT_HOSTS,
            str(hosts_file),
            sys.executable,
            "-m",
            "containers.xgboost",
            "train",
        ]
        processes[host] = (
            base,
            subprocess.Popen(
                command,
                cwd=REPO,
                env=container_env(base, SAGESTACK_RABIT_PORT=str(port)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    results = {}
    for host, (base, process) in processes.items():
        output, _ = process.communicate(timeout=180)
        results[host] = (base, process.returncode, output)
    return results


@pytest.fixture
def isolated(tmp_path):
    # tests/capabilities.py: the probe checks `unshare -rm`; this also checks that a bound hosts file resolves
    requires_capability("unshare-namespaces", available=_namespaces_work(tmp_path), why="algo-1/algo-2 must resolve")
    return tmp_path


def test_two_hosts_train_one_model_that_matches_single_host_training(isolated, german_credit):
    ds = german_credit
    half = len(ds.y_train) // 2
    shards = [
        {"part-0.csv": to_csv(ds.y_train[:half], ds.x_train[:half])},
        {"part-1.csv": to_csv(ds.y_train[half:], ds.x_train[half:])},
    ]
    results = _run_hosts(isolated, shards, validation={"v.csv": to_csv(ds.y_test, ds.x_test)})
    for host, (_, code, output) in results.items():
        assert code == 0, f"{host}:\n{output}"

    base_1, _, output_1 = results["algo-1"]
    base_2, _, output_2 = results["algo-2"]
    assert model_files(base_1) == ["xgboost-model"]
    assert model_files(base_2) == []
    assert len(re.findall(r"\[\d+\]\ttrain-auc:", output_1)) == 10
    assert re.findall(r"\[\d+\]\ttrain-auc:", output_2) == []

    together = xgb.Booster(model_file=str(base_1 / "model" / "xgboost-model"))
    single = xgb.train(
        {k: v for k, v in HPS.items() if k != "num_round"},
        xgb.DMatrix(ds.x_train, label=ds.y_train),
        num_boost_round=10,
    )
    ours, reference = together.inplace_predict(ds.x_test), single.inplace_predict(ds.x_test)
    np.testing.assert_allclose(ours, reference, atol=0.05)
    assert roc_auc_score(ds.y_test, ours) > 0.70
    assert abs(roc_auc_score(ds.y_test, ours) - roc_auc_score(ds.y_test, reference)) < 0.02


def test_a_host_without_data_exits_zero_and_the_other_trains_alone(isolated, small_binary):
    ds = small_binary
    results = _run_hosts(isolated, [{"t.csv": to_csv(ds.y_train, ds.x_train)}, {}])
    (base_1, code_1, output_1), (base_2, code_2, output_2) = results["algo-1"], results["algo-2"]
    assert code_1 == 0, output_1
    assert code_2 == 0, output_2
    assert "has no data" in output_2
    assert model_files(base_1) == ["xgboost-model"]
    assert model_files(base_2) == []


def test_workers_resume_from_the_masters_checkpoint(isolated, small_binary):
    ds = small_binary
    shards = [{"a.csv": to_csv(ds.y_train[:75], ds.x_train[:75])}, {"b.csv": to_csv(ds.y_train[75:], ds.x_train[75:])}]
    first = _run_hosts(isolated, shards, hps={**HPS, "num_round": "3"}, checkpoints=True)
    assert all(code == 0 for _, code, _ in first.values())
    checkpoints_1 = sorted(p.name for p in (isolated / "algo-1" / "checkpoints").iterdir())
    assert checkpoints_1 == ["xgboost-checkpoint.0", "xgboost-checkpoint.1", "xgboost-checkpoint.2"]
    assert list((isolated / "algo-2" / "checkpoints").iterdir()) == []

    second = _run_hosts(isolated, shards, hps={**HPS, "num_round": "5"}, checkpoints=True)
    (base_1, code_1, output_1), (_, code_2, output_2) = second["algo-1"], second["algo-2"]
    assert code_1 == 0, output_1
    assert code_2 == 0, output_2
    assert re.findall(r"\[(\d+)\]\ttrain-auc:", output_1) == ["3", "4"]
    assert (
        xgb.Booster(model_file=bytearray((base_1 / "model" / "xgboost-model").read_bytes())).num_boosted_rounds() == 5
    )
