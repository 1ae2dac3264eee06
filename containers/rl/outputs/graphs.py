"""The reward graph (computed as DeepRacer-on-AWS draws it, docs/deepracer.md#reading-the-reward-graph) and the top-down
plot of evaluated laps."""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from containers.rl.outputs.log_formats import evaluation_metric, is_new_best
from containers.rl.simulation.tracks import Track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RewardGraph:
    train_x: list[float]
    train_reward: list[float]
    train_completion: list[float]
    eval_x: list[float]
    eval_reward: list[float]
    eval_completion: list[float]
    best_x: float | None


def compute_reward_graph(
    records: list[dict[str, Any]], episodes_per_iteration: int, best_episode: int | None = None,
    best_model_metric: str = "progress",
) -> RewardGraph:  # fmt: skip
    """Training: consecutive chunks of N training records averaged at x = k; evaluation: grouped by ``episode``,
    averaged at x = episode / N. The best model is the kept best checkpoint: the evaluation group of
    ``best_episode`` (the trainer's), else the simapp's rule applied to the records (``outputs.is_new_best``)."""
    n = max(1, episodes_per_iteration)
    training = [r for r in records if r["phase"] == "training"]
    chunks = [training[i : i + n] for i in range(0, len(training), n)]
    train_x = [float(k + 1) for k in range(len(chunks))]
    train_reward = [sum(r["reward_score"] for r in c) / len(c) for c in chunks]
    train_completion = [sum(r["completion_percentage"] for r in c) / len(c) for c in chunks]
    groups: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if record["phase"] == "evaluation":
            groups.setdefault(int(record["episode"]), []).append(record)
    eval_x = [episode / n for episode in groups]
    eval_reward = [sum(r["reward_score"] for r in g) / len(g) for g in groups.values()]
    eval_completion = [sum(r["completion_percentage"] for r in g) / len(g) for g in groups.values()]
    if best_episode is None or best_episode not in groups:
        best_episode = _best_group(groups, best_model_metric)
    best_x = None if best_episode is None else best_episode / n
    return RewardGraph(train_x, train_reward, train_completion, eval_x, eval_reward, eval_completion, best_x)


def _best_group(groups: dict[int, list[dict[str, Any]]], best_model_metric: str) -> int | None:
    best: tuple[int, float] | None = None
    for episode, group in groups.items():
        metric = evaluation_metric(
            best_model_metric, [r["completion_percentage"] for r in group], [r["reward_score"] for r in group],
            [r["elapsed_time_in_milliseconds"] for r in group],
        )  # fmt: skip
        if is_new_best(metric, None if best is None else best[1], best_model_metric):
            best = (episode, metric)
    return None if best is None else best[0]


def plot_reward_graph(graph: RewardGraph, png: Path, page: Path, title: str) -> None:
    fig, left = plt.subplots(figsize=(9, 5))
    right = left.twinx()
    left.plot(graph.train_x, graph.train_reward, color="tab:green", marker=".", label="Average reward (Training)")
    left.plot(graph.eval_x, graph.eval_reward, color="tab:red", marker=".", label="Average reward (Evaluation)")
    right.plot(graph.train_x, graph.train_completion, color="tab:blue", ls="--", label="Average completion (Training)")
    right.plot(
        graph.eval_x, graph.eval_completion, color="tab:orange", ls="--", label="Average completion (Evaluation)"
    )
    if graph.best_x is not None:
        left.axvline(graph.best_x, color="gray", ls=":", label="Best model")
    left.set_xlabel("Iteration")
    left.set_ylabel("Reward")
    right.set_ylabel("Percentage track completion")
    right.set_ylim(0, 105)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="upper left", fontsize=8)
    left.set_title(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    png.write_bytes(buffer.getvalue())
    page.write_text(_html_page(graph, base64.b64encode(buffer.getvalue()).decode("ascii"), title))


def _html_page(graph: RewardGraph, image_b64: str, title: str) -> str:
    rows = []
    # an evaluation at x = episode / N follows the training chunk ceil(x)
    evals = {
        math.ceil(x - 1e-9): values
        for x, values in zip(graph.eval_x, zip(graph.eval_reward, graph.eval_completion, strict=True), strict=True)
    }
    best_row = None if graph.best_x is None else math.ceil(graph.best_x - 1e-9)
    for x, reward, completion in zip(graph.train_x, graph.train_reward, graph.train_completion, strict=True):
        ev_reward, ev_completion = evals.get(round(x), (float("nan"), float("nan")))
        best = " ★" if best_row == round(x) else ""
        rows.append(
            f"<tr><td>{x:g}{best}</td><td>{reward:.2f}</td><td>{completion:.1f}</td>"
            f"<td>{ev_reward:.2f}</td><td>{ev_completion:.1f}</td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}"
        "</style></head><body><h1>"
        + html.escape(title)
        + f"</h1><img alt='reward graph' src='data:image/png;base64,{image_b64}'>"
        "<table><tr><th>Iteration</th><th>Avg reward (training)</th><th>Avg completion % (training)</th>"
        "<th>Avg reward (evaluation)</th><th>Avg completion % (evaluation)</th></tr>"
        + "".join(rows)
        + "</table><p>★ best model: the kept best checkpoint (highest mean evaluation progress, or the run's "
        "best_model_metric; a tie goes to the newer checkpoint).</p></body></html>\n"
    )


def plot_laps(track: Track, laps: list[list[list[Any]]], path: Path, title: str) -> None:
    """Top-down view: borders, centre line, and each evaluated lap's reference-point path coloured by speed."""
    fig, ax = plt.subplots(figsize=(9, 6))
    for line, style in ((track.inner, "k-"), (track.outer, "k-"), (track.center, "k:")):
        ax.plot(line[:, 0], line[:, 1], style, lw=1)
    scatter = None
    for lap in laps:
        xs = [row[2] for row in lap]
        ys = [row[3] for row in lap]
        speeds = [row[6] for row in lap]
        ax.plot(xs, ys, lw=0.5, color="gray")
        scatter = ax.scatter(
            xs, ys, c=speeds, s=6, cmap="viridis", vmin=0.0, vmax=max(4.0 if not speeds else max(speeds), 0.1)
        )
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="commanded speed (m/s)")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
