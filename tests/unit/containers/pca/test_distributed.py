"""PCA across hosts (docs/algorithms/pca.md#distributed-training): one ``train`` process per host, against the same
data on one host."""

from __future__ import annotations

import re

import numpy as np
import pytest

from containers.pca.algorithm import ScatterAccumulator, SketchAccumulator, merge_states
from containers.pca.model import MODEL_FILE, load_model
from tests.unit.containers.kmeans.host import csv_bytes, run_container, run_hosts, write_host

CSV = "text/csv"
HOSTS = ("algo-1", "algo-2")
RECONSTRUCTION = re.compile(r"#quality_metric: host=(\S+), test reconstruction_msd <loss>=(\S+)")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(5)
    scales = np.geomspace(10, 0.1, 8)
    return rng.normal(size=(900, 8)) * scales @ np.linalg.qr(rng.normal(size=(8, 8)))[0] + 50.0


def _accumulated(accumulator, rows):
    accumulator.add(rows)
    return accumulator.state()


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_merged_host_states_equal_one_accumulator(data, mode):
    def fresh():
        if mode == "regular":
            return ScatterAccumulator(8)
        return SketchAccumulator(8, 5, np.random.default_rng(0))

    one = fresh()
    one.add(data)
    parts = [_accumulated(fresh(), part) for part in (data[:0], data[:300], data[300:700], data[700:])]
    merged_into = fresh()
    matrix = "m2" if mode == "regular" else "y"
    merged_into.load(merge_states(parts, matrix, None if mode == "regular" else merged_into.omega))
    expected, got = one.solve(3, True), merged_into.solve(3, True)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-12)
    np.testing.assert_allclose(got.s, expected.s, rtol=1e-9)
    np.testing.assert_allclose(got.v, expected.v, atol=1e-9)
    assert got.n == 900


@pytest.mark.parametrize("distribution", ["ShardedByS3Key", "FullyReplicated"])
@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_two_hosts_give_the_components_of_one(tmp_path, data, distribution, mode):
    hp = {"feature_dim": 8, "num_components": 3, "mini_batch_size": 100, "algorithm_mode": mode}
    files = {"a.csv": csv_bytes(data[:500]), "b.csv": csv_bytes(data[500:])}
    test = {"t.csv": csv_bytes(data[:200])}
    single = write_host(tmp_path / "single", hp, {"train": (CSV, files), "test": (CSV, test)})
    alone = run_container("containers.pca", single)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    if distribution == "ShardedByS3Key":
        shares = {"algo-1": {"a.csv": files["a.csv"]}, "algo-2": {"b.csv": files["b.csv"]}}
    else:
        shares = {host: files for host in HOSTS}
    bases = {
        host: write_host(
            tmp_path / host,
            hp,
            {"train": (CSV, shares[host]), "test": (CSV, test)},
            hosts=HOSTS,
            current=host,
            distribution=distribution,
        )
        for host in HOSTS
    }
    results = run_hosts("containers.pca", bases)

    for host, result in results.items():
        assert result.returncode == 0, f"{host}: {result.stdout}"
    assert [p.name for p in (bases["algo-1"] / "model").iterdir()] == [MODEL_FILE]
    assert not list((bases["algo-2"] / "model").iterdir())
    ours, reference = load_model(bases["algo-1"] / "model"), load_model(single / "model")
    np.testing.assert_allclose(ours.mean, reference.mean, rtol=1e-6)
    np.testing.assert_allclose(ours.s, reference.s, rtol=1e-5)
    signs = np.sign(np.sum(ours.v * reference.v, axis=0))  # components are equal up to sign
    np.testing.assert_allclose(ours.v * signs, reference.v, atol=1e-5)
    [(host, msd)] = RECONSTRUCTION.findall(results["algo-1"].stdout)
    [(_, msd_alone)] = RECONSTRUCTION.findall(alone.stdout)
    assert host == "algo-1" and float(msd) == pytest.approx(float(msd_alone), rel=1e-5)
    assert not RECONSTRUCTION.findall(results["algo-2"].stdout)


def test_a_failing_host_fails_the_job_with_its_reason(tmp_path, data):
    hp = {"feature_dim": 8, "num_components": 3, "mini_batch_size": 100}
    shares = {"algo-1": {"a.csv": csv_bytes(data)}, "algo-2": {"b.csv": b"1,2,3\n"}}
    bases = {
        host: write_host(
            tmp_path / host,
            hp,
            {"train": (CSV, shares[host])},
            hosts=HOSTS,
            current=host,
            distribution="ShardedByS3Key",
        )
        for host in HOSTS
    }
    results = run_hosts("containers.pca", bases)
    assert all(result.returncode != 0 for result in results.values())
    assert "feature_dim mismatch" in (bases["algo-2"] / "output" / "failure").read_text()
    assert (
        (bases["algo-1"] / "output" / "failure")
        .read_text()
        .startswith("ClientError: host algo-2 failed: feature_dim mismatch")
    )
