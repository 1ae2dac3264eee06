"""K-Means across hosts (docs/algorithms/kmeans.md#distributed-training): one ``train`` process per host, as the
process runtime starts them, against the same data on one host."""

from __future__ import annotations

import re

import numpy as np
import pytest

from containers.kmeans.model import MODEL_FILE, load_centers
from tests.unit.containers.kmeans.conftest import match_centers
from tests.unit.containers.kmeans.host import csv_bytes, run_container, run_hosts, write_host

CSV = "text/csv"
HP = {"k": 4, "feature_dim": 5, "mini_batch_size": 300}
HOSTS = ("algo-1", "algo-2")
MSD = re.compile(r"#quality_metric: host=(\S+), (train|test) msd <loss>=(\S+)")


def _single(tmp_path, files, test=None):
    channels = {"train": (CSV, files)} | ({"test": (CSV, test)} if test else {})
    base = write_host(tmp_path / "single", HP, channels)
    result = run_container("containers.kmeans", base)
    assert result.returncode == 0, result.stdout + result.stderr
    return load_centers(base / "model"), MSD.findall(result.stdout)


def _multi(tmp_path, files_per_host, distribution, test=None, **environ):
    bases = {}
    for host in HOSTS:
        channels = {"train": (CSV, files_per_host[host])} | ({"test": (CSV, test)} if test else {})
        bases[host] = write_host(tmp_path / host, HP, channels, hosts=HOSTS, current=host, distribution=distribution)
    return bases, run_hosts("containers.kmeans", bases, **environ)


@pytest.mark.parametrize("distribution", ["ShardedByS3Key", "FullyReplicated"])
def test_two_hosts_find_the_centers_one_host_finds(tmp_path, blobs, distribution):
    points, truth = blobs
    halves = {"part-0.csv": csv_bytes(points[:1000]), "part-1.csv": csv_bytes(points[1000:])}
    test = {"test.csv": csv_bytes(points[:400])}
    single, single_lines = _single(tmp_path, halves, test)
    if distribution == "ShardedByS3Key":
        per_host = {"algo-1": {"part-0.csv": halves["part-0.csv"]}, "algo-2": {"part-1.csv": halves["part-1.csv"]}}
    else:
        per_host = {host: halves for host in HOSTS}
    bases, results = _multi(tmp_path, per_host, distribution, test)

    for host, result in results.items():
        assert result.returncode == 0, f"{host}: {result.stdout}"
    assert [p.name for p in (bases["algo-1"] / "model").iterdir()] == [MODEL_FILE]
    assert not list((bases["algo-2"] / "model").iterdir())  # only algo-1 writes the model, as on AWS
    centers = load_centers(bases["algo-1"] / "model")
    np.testing.assert_allclose(match_centers(centers, truth), match_centers(single, truth), atol=0.1)
    lines = MSD.findall(results["algo-1"].stdout)
    assert [(host, channel) for host, channel, _ in lines] == [("algo-1", "train"), ("algo-1", "test")]
    for (_, _, ours), (_, _, one_host) in zip(lines, single_lines, strict=True):
        assert float(ours) == pytest.approx(float(one_host), rel=0.02)
    assert not MSD.findall(results["algo-2"].stdout)  # the leader reports the joint scores


def test_a_host_with_an_empty_shard_still_takes_part(tmp_path, blobs):
    points, truth = blobs
    bases, results = _multi(tmp_path, {"algo-1": {}, "algo-2": {"all.csv": csv_bytes(points)}}, "ShardedByS3Key")
    assert all(result.returncode == 0 for result in results.values()), results["algo-1"].stdout
    centers = load_centers(bases["algo-1"] / "model")
    np.testing.assert_allclose(match_centers(centers, truth), truth, atol=0.15)


def test_a_failing_host_fails_every_host_with_its_reason(tmp_path, blobs):
    points, _ = blobs
    bad = b"1,2,3,4,5\n1,2,nan,4,5\n"
    files = {"algo-1": {"a.csv": csv_bytes(points)}, "algo-2": {"b.csv": csv_bytes(points[:10]) + bad}}
    bases, results = _multi(tmp_path, files, "ShardedByS3Key")

    own = (bases["algo-2"] / "output" / "failure").read_text()
    assert results["algo-2"].returncode != 0 and own.startswith("ClientError: Invalid value nan")
    told = (bases["algo-1"] / "output" / "failure").read_text()
    assert results["algo-1"].returncode != 0
    assert told.startswith("ClientError: host algo-2 failed: Invalid value nan")
    assert not list((bases["algo-1"] / "model").iterdir())


def test_too_few_rows_over_all_hosts_is_a_client_error(tmp_path):
    files = {"algo-1": {"a.csv": b"1,1,1,1,1\n"}, "algo-2": {"b.csv": b"2,2,2,2,2\n"}}
    bases, results = _multi(tmp_path, files, "ShardedByS3Key")
    for host in HOSTS:
        assert results[host].returncode != 0
    assert "k=4 is larger than the number of rows (2)" in (bases["algo-1"] / "output" / "failure").read_text()
    assert "host algo-1 failed: k=4" in (bases["algo-2"] / "output" / "failure").read_text()
