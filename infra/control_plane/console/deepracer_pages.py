"""DeepRacer pages: the RL container's training jobs, each with the console's reward graph (its iteration lines in
the job's CloudWatch Logs) and, once the job has uploaded them, the evaluation laps drawn on the track (the
evaluation sim-trace in ``output.tar.gz`` over ``track.npy`` in ``model.tar.gz``), as docs/deepracer.md#log-layout
describes them."""

from __future__ import annotations

import csv
import io
import logging
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from infra.container_manifests import container_for_repository, repository_of
from infra.control_plane.console.console_api import MAX_SCANNED_LOG_EVENTS, ConsoleApi
from infra.control_plane.console.job_pages import TERMINAL_JOB_STATUSES
from infra.control_plane.console.svg_charts import LineChart, TrackDrawing, line_chart, track_drawing

logger = logging.getLogger(__name__)

Render = Callable[..., Response]
RL_CONTAINER = "rl"
SCANNED_TRAINING_JOBS = 200  # the newest training jobs looked at for DeepRacer runs
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 16 * 1024 * 1024
_ITERATION = re.compile(r"iteration (?P<n>\d+): (?P<fields>.*)")
_FIELD = re.compile(r"(?P<key>\w+)=(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_LAP = re.compile(r"evaluation lap (?P<n>\d+): (?P<rest>.*)")
LAP_VIDEO = "evaluation_lap.gif"  # written by the RL container beside the reward graph (docs/deepracer.md)
_EVAL_TRACE = re.compile(r"(?:^|/)evaluation-(?P<stamp>\d+)/evaluation-simtrace/0-iteration\.csv$")


class DeepRacerPages:
    def __init__(self, api: ConsoleApi, render: Render) -> None:
        self._api = api
        self._render = render

    def pages(self) -> dict[str, Callable[..., Response]]:
        return {"deepracer_runs": self.runs, "deepracer_run": self.run, "deepracer_lap_video": self.lap_video}

    def runs(self, request: Request) -> Response:
        listed = self._api.list_all(
            "ListTrainingJobs",
            "TrainingJobSummaries",
            limit=SCANNED_TRAINING_JOBS,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=100,
        )
        runs = []
        for summary in listed:
            described = self._api.call("DescribeTrainingJob", TrainingJobName=summary["TrainingJobName"])
            if is_deepracer_job(described):
                runs.append(described)
        return self._render("deepracer_runs.html", section="deepracer", runs=runs, scanned=SCANNED_TRAINING_JOBS)

    def run(self, request: Request, name: str) -> Response:
        described = self._api.call("DescribeTrainingJob", TrainingJobName=name)
        events = self._api.log_events("/aws/sagemaker/TrainingJobs", f"{name}/", MAX_SCANNED_LOG_EVENTS)
        messages = [message for _, _, message in events]
        iterations = iteration_records(messages)
        laps = [line for line in messages if _LAP.search(line) or "eval_laps_completed=" in line]
        outputs = self._outputs(described) if str(described.get("TrainingJobStatus")) in TERMINAL_JOB_STATUSES else {}
        return self._render(
            "deepracer_run.html",
            section="deepracer",
            job=described,
            name=name,
            charts=reward_charts(iterations),
            iterations=iterations,
            lap_lines=laps,
            track=outputs.get("track"),
            lap_table=outputs.get("laps") or [],
            video=outputs.get("video"),
            output_uri=outputs.get("output_uri"),
        )

    def lap_video(self, request: Request, name: str) -> Response:
        """The evaluation lap the RL container rendered (``evaluation_lap.gif`` in the job's output archive)."""
        described = self._api.call("DescribeTrainingJob", TrainingJobName=name)
        uri = _output_uri(described)
        gif = _members(self._api.s3_bytes(uri, MAX_ARCHIVE_BYTES) if uri else None, _is_lap_video).get(LAP_VIDEO)
        if not gif:
            raise NotFound(f"training job {name} has no {LAP_VIDEO} in its output")
        return Response(gif, mimetype="image/gif")

    def _outputs(self, described: Mapping[str, Any]) -> dict[str, Any]:
        """The evaluation laps on the track, read from the job's uploaded archives (empty when they are missing)."""
        output_uri = _output_uri(described)
        if not output_uri:
            return {}
        model_uri = str((described.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or "")
        output = _members(self._api.s3_bytes(output_uri, MAX_ARCHIVE_BYTES), _wanted_output)
        model = _members(self._api.s3_bytes(model_uri, MAX_ARCHIVE_BYTES) if model_uri else None, _wanted_model)
        traces = sorted((n, d) for n, d in output.items() if _EVAL_TRACE.search(n))
        laps = lap_traces(traces[-1][1]) if traces else []
        borders, centre = track_lines(model.get("track.npy"))
        video = next((n for n in output if n.endswith(".mp4") or _is_lap_video(n)), None)
        drawing: TrackDrawing | None = None
        if laps or centre:
            drawing = track_drawing(borders, centre, [(f"lap {n}", pts) for n, pts in laps])
        table = [{"lap": n, "points": len(pts)} for n, pts in laps]
        return {"track": drawing, "laps": table, "video": video, "output_uri": output_uri}


def is_deepracer_job(described: Mapping[str, Any]) -> bool:
    image = str((described.get("AlgorithmSpecification") or {}).get("TrainingImage") or "")
    return bool(image) and container_for_repository(repository_of(image)) == RL_CONTAINER


def iteration_records(lines: Sequence[str]) -> list[dict[str, float]]:
    """The RL container's ``iteration N: key=value ...`` lines, one record per iteration (the last line wins)."""
    found: dict[int, dict[str, float]] = {}
    for line in lines:
        match = _ITERATION.search(line)
        if match is None:
            continue
        fields = {m.group("key"): float(m.group("value")) for m in _FIELD.finditer(match.group("fields"))}
        if "train_reward" in fields:
            found[int(match.group("n"))] = {"iteration": float(match.group("n")), **fields}
    return [found[n] for n in sorted(found)]


def reward_charts(iterations: Sequence[Mapping[str, float]]) -> list[LineChart]:
    """The DeepRacer console's reward graph: rewards, and training and evaluation completion, per iteration."""

    def series(key: str) -> list[tuple[float, float]]:
        return [(r["iteration"], r[key]) for r in iterations if key in r]

    rewards = [(key, series(key)) for key in ("train_reward", "eval_reward")]
    completion = [(key, series(key)) for key in ("train_completion", "eval_completion")]
    return [
        line_chart("Reward per iteration", rewards, "iteration"),
        line_chart("Completion % per iteration", completion, "iteration"),
    ]


def lap_traces(data: bytes) -> list[tuple[int, list[tuple[float, float]]]]:
    """``(lap, [(x, y), ...])`` from an evaluation sim-trace CSV (laps are its ``episode`` numbers, from 0)."""
    laps: dict[int, list[tuple[float, float]]] = {}
    reader = csv.DictReader(io.StringIO(data.decode("utf-8", "replace")))
    for row in reader:
        try:
            lap, x, y = int(float(row["episode"])), float(row["X"]), float(row["Y"])
        except (KeyError, TypeError, ValueError):
            continue
        laps.setdefault(lap + 1, []).append((x, y))
    return sorted(laps.items())


def track_lines(data: bytes | None) -> tuple[list[list[tuple[float, float]]], list[tuple[float, float]]]:
    """A route ``.npy`` (N x 6: centre, inner and outer x/y) as its two borders and its centre line."""
    if not data:
        return [], []
    import numpy as np  # only when a track is drawn

    try:
        rows = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError):
        return [], []
    if rows.ndim != 2 or rows.shape[1] < 6:
        return [], []

    def line(a: int) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in rows[:, a : a + 2]]

    return [line(2), line(4)], line(0)


def _output_uri(described: Mapping[str, Any]) -> str:
    base = str((described.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
    return f"{base}/{described['TrainingJobName']}/output/output.tar.gz" if base else ""


def _is_lap_video(name: str) -> bool:
    return name.rsplit("/", 1)[-1] == LAP_VIDEO


def _wanted_output(name: str) -> bool:
    return bool(_EVAL_TRACE.search(name)) or name.endswith(".mp4") or _is_lap_video(name)


def _wanted_model(name: str) -> bool:
    return name.rsplit("/", 1)[-1] == "track.npy"


def _members(archive: bytes | None, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The wanted regular files of a tar.gz (their bytes; a video only by name), each at most 16 MB."""
    if not archive:
        return {}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile() or not wanted(member.name):
                    continue
                key = "track.npy" if _wanted_model(member.name) else member.name.removeprefix("./")
                if _is_lap_video(key):
                    key = LAP_VIDEO
                if key.endswith(".mp4") or member.size > MAX_MEMBER_BYTES:
                    found[key] = b""  # named, never read into memory
                    continue
                extracted = tar.extractfile(member)
                if extracted is not None:
                    found[key] = extracted.read()
    except (tarfile.TarError, OSError, EOFError):
        logger.warning("could not read a DeepRacer archive")
    return found
