from __future__ import annotations

import csv
import json

import pytest

from containers.rl.configuration.hyperparams import parse_hyperparameters
from containers.rl.configuration.run_config import RunConfig
from containers.rl.learning.training_run import run
from containers.rl.outputs.graphs import compute_reward_graph
from containers.rl.outputs.log_formats import SIMTRACE_HEADER
from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE


@pytest.fixture(scope="module")
def trained(tmp_path_factory, oval):
    out = tmp_path_factory.mktemp("deepracer")
    # 20 episodes per iteration: with the car dynamics (lagging steering and speed) 10 were too few to learn from
    hp = parse_hyperparameters(
        {"num_episodes_between_training": "20", "term_cond_max_episodes": "6", "discount_factor": "0.99",
         "num_epochs": "5", "num_workers": "2", "world_name": "oval", "seed": "1", "observation_type": "vector"}
    )  # fmt: skip
    cfg = RunConfig(oval, default_action_space(), DEFAULT_REWARD_FILE, hp, out / "model", out)
    return out, run(cfg)


def test_a_tiny_training_run_improves(trained):
    _, summary = trained
    iterations = summary.training.iterations
    assert len(iterations) == 6
    first, last = iterations[0], iterations[-1]
    # the stochastic training policy starts by leaving the track within a few metres and learns to go much further
    assert first.train_completion < 30.0
    assert last.train_completion > 2 * first.train_completion
    assert last.train_reward > 2 * first.train_reward
    assert summary.evaluation.mean_completion >= 50.0


def test_training_metrics_json_format(trained):
    out, _ = trained
    data = json.loads((out / "metrics" / "TrainingMetrics.json").read_text())
    assert data["version"] == 2.0 and data["best_model_metric"] == "progress"
    records = data["metrics"]
    keys = {"reward_score", "metric_time", "start_time", "elapsed_time_in_milliseconds", "episode", "trial", "phase",
            "completion_percentage", "episode_status"}  # fmt: skip
    assert all(set(r) == keys for r in records)
    training = [r for r in records if r["phase"] == "training"]
    evaluation = [r for r in records if r["phase"] == "evaluation"]
    assert [r["episode"] for r in training] == list(range(1, len(training) + 1))
    assert len(evaluation) == 5 * 6  # >= 5 evaluation episodes per iteration
    assert all(r["elapsed_time_in_milliseconds"] == r["metric_time"] - r["start_time"] for r in records)
    graph = compute_reward_graph(records, 20)
    assert len(graph.eval_x) == 6 and graph.best_x is not None


def test_simtrace_checkpoints_and_graphs(trained):
    out, _ = trained
    with (out / "training-simtrace" / "0-iteration.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == SIMTRACE_HEADER and len(rows[0]) == 19
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["steps"] == "1.0" and first["episode_status"] == "prepare" and first["reward"] == "0.0000"
    index = json.loads((out / "model" / "deepracer_checkpoints.json").read_text())
    assert index["last_checkpoint"]["name"].startswith("6_Step-")
    assert (out / "model" / f"{index['best_checkpoint']['name']}.zip").exists()
    for name in ("model.zip", "model_metadata.json", "hyperparameters.json", "track.npy", "reward_function.py"):
        assert (out / "model" / name).exists()
    for name in ("reward_graph.png", "reward_graph.html", "evaluation_laps.png", "evaluation_lap.gif"):
        assert (out / name).exists()
    assert len(list(out.glob("evaluation-[0-9]*/evaluation-simtrace/0-iteration.csv"))) == 1
    evaluation = json.loads(next((out / "metrics" / "evaluation").glob("evaluation-*.json")).read_text())
    assert [r["trial"] for r in evaluation["metrics"]] == [1, 2, 3]
    assert "version" not in evaluation


def test_the_graph_marks_the_kept_best_checkpoint(trained):
    out, summary = trained
    result = summary.training
    records = json.loads((out / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    index = json.loads((out / "model" / "deepracer_checkpoints.json").read_text())
    assert index["best_checkpoint"]["name"].startswith(f"{result.best_iteration}_Step-")
    graph = compute_reward_graph(records, 10, result.best_episode)
    assert graph.best_x == result.best_episode / 10
    page = (out / "reward_graph.html").read_text()
    assert page.count("★") == 2  # the marked row and the legend


def test_the_graph_rule_without_the_trainer_is_the_simapps():
    def evaluation(episode: int, completion: int, reward: int) -> dict[str, object]:
        return {"phase": "evaluation", "episode": episode, "completion_percentage": completion, "reward_score": reward,
                "elapsed_time_in_milliseconds": 30000}  # fmt: skip

    records = [evaluation(10, 100, 50), evaluation(20, 100, 30), evaluation(30, 90, 500)]
    # progress (the default): 100 at episodes 10 and 20, the tie goes to the newer; the highest reward is not it
    assert compute_reward_graph(records, 10).best_x == 2.0
    assert compute_reward_graph(records, 10, best_model_metric="reward").best_x == 3.0
    assert compute_reward_graph(records, 10, best_episode=10).best_x == 1.0


def test_serving_round_trip(trained):
    from containers.rl.serve import PolicyHandler
    from containers.toolkit.model_server.serving import ServingConfig, create_app

    out, _ = trained
    app = create_app(PolicyHandler(ServingConfig(model_dir=out / "model")))
    client = app.test_client()
    assert client.get("/ping").status_code == 200
    from containers.rl.simulation.actions import default_action_space as actions

    obs = [0.1] * 17
    response = client.post("/invocations", json={"instances": [obs, obs]})
    assert response.status_code == 200
    predictions = response.get_json()["predictions"]
    assert len(predictions) == 2
    chosen = actions().actions[predictions[0]["action"]]
    assert (predictions[0]["steering_angle"], predictions[0]["speed"]) == (chosen.steering_angle, chosen.speed)
    bad = client.post("/invocations", json={"instances": [[1.0, 2.0]]})
    assert bad.status_code == 400 and "shape" in bad.get_data(as_text=True)
