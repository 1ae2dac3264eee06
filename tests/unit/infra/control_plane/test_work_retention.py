"""The retention rule removes finished jobs' folders when they expire, and endpoint folders no deployment uses."""

from dataclasses import dataclass
from datetime import timedelta

from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.execution.work_retention import (
    EndpointFolders,
    JobFolders,
    RetentionRule,
    RetentionSweeper,
    directory_size,
)


@dataclass
class _Job:
    name: str
    status: str
    end_time: object


def test_completed_folders_go_failed_ones_stay_a_day_running_ones_always(tmp_path):
    now = utcnow()
    jobs = [
        _Job("done", "Completed", now - timedelta(minutes=5)),
        _Job("just-done", "Completed", now),  # within the settle minute
        _Job("failed-recent", "Failed", now - timedelta(hours=2)),
        _Job("failed-old", "Failed", now - timedelta(hours=25)),
        _Job("stopped-old", "Stopped", now - timedelta(hours=25)),
        _Job("running", "InProgress", None),
    ]
    for job in jobs:
        (tmp_path / "jobs" / job.name / "algo-1").mkdir(parents=True)
    (tmp_path / "endpoints" / "ep" / "live").mkdir(parents=True)
    (tmp_path / "endpoints" / "ep" / "old").mkdir(parents=True)
    (tmp_path / "endpoints" / "gone" / "old").mkdir(parents=True)
    sweeper = RetentionSweeper(
        RetentionRule(keep_completed=timedelta(0), keep_failed=timedelta(days=1)),
        [JobFolders(tmp_path / "jobs", lambda: jobs)],
        [EndpointFolders(tmp_path / "endpoints", lambda: {tmp_path / "endpoints" / "ep" / "live"})],
        interval_seconds=3600,
    )
    assert sweeper.sweep() == 5
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["failed-recent", "just-done", "running"]
    assert [p.name for p in (tmp_path / "endpoints").iterdir()] == ["ep"]
    assert [p.name for p in (tmp_path / "endpoints" / "ep").iterdir()] == ["live"]


def test_directory_size_counts_file_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "g").write_bytes(b"y" * 24)
    assert directory_size(tmp_path) == 1024
