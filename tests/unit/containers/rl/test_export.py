"""``sagestack deepracer export``: a short-trained run exported, the frozen graph run by TensorFlow and by the OpenVINO
conversion the car performs, both giving the trained policy's actions; the import folder's files and formats."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
from dataclasses import replace

import numpy as np
import pytest
import yaml

from containers.rl.configuration.hyperparams import parse_hyperparameters
from containers.rl.configuration.run_config import RunConfig, env_config, make_envs
from containers.rl.evaluation.lap_evaluation import load_policy
from containers.rl.learning.training_run import run
from containers.rl.local_cli import main as local_cli
from containers.rl.simulation.actions import default_action_space, load_model_metadata, parse_model_metadata
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE

pytest.importorskip("tensorflow")
pytest.importorskip("openvino")

from containers.rl.export.frozen_graph import GraphNames, run_frozen_graph
from containers.rl.export.model_folder import export_model
from containers.rl.export.openvino_ir import convert_to_ir, run_ir
from containers.rl.export.policy_layers import policy_layers

CAMERA = {
    "num_episodes_between_training": "2",
    "term_cond_max_episodes": "1",
    "num_workers": "1",
    "observation_type": "camera",
    "stack_size": "2",
    "num_epochs": "1",
}
SETTINGS = {  # hyperparameters, then model_metadata.json's sensor and neural_network
    "vector": ({"num_episodes_between_training": "4", "term_cond_max_episodes": "2", "num_workers": "2",
                "observation_type": "vector"}, "FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    "camera": (CAMERA, "FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    "camera-deep": (CAMERA, "FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK"),
    "camera-deepest": (CAMERA, "FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"),
    "stereo": (CAMERA, "STEREO_CAMERAS", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"),
    "stereo-deepest": (CAMERA, "STEREO_CAMERAS", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(SETTINGS))
def trained(request, tmp_path_factory, oval):
    out = tmp_path_factory.mktemp(f"export-{request.param}")
    settings, sensor, network = SETTINGS[request.param]
    hp = parse_hyperparameters(
        {**settings, "world_name": "oval", "seed": "3", "min_eval_trials": "1", "eval_laps": "1"}
    )
    actions = replace(default_action_space(), sensor=(sensor,), neural_network=network)
    cfg = RunConfig(oval, actions, DEFAULT_REWARD_FILE, hp, out / "model", out)
    run(cfg)
    return out, cfg


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The run exported once, as a user does: ``sagestack deepracer export --openvino`` (model folder, car package and
    OpenVINO IR); returns the output directory and what the command printed."""
    out, _ = trained
    target = tmp_path_factory.mktemp("exported")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = local_cli(["export", str(out), "--output-dir", str(target), "--name", "lap-1", "--s3-bucket", "b",
                          "--s3-prefix", "models/lap-1", "--openvino"])  # fmt: skip
    assert code == 0, printed.getvalue()
    return target, printed.getvalue()


def _observations(cfg: RunConfig, n: int = 40) -> np.ndarray:
    """Frames the simulator produces along a random drive (re-started when an episode ends)."""
    env = make_envs(cfg, 1, env_config(cfg.hp, cfg.actions))[0]
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    frames = []
    while len(frames) < n:
        frames.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.stack(frames).astype(np.float32)


def test_tensorflow_and_openvino_give_the_trained_policys_actions(trained, exported):
    out, cfg = trained
    target, printed = exported
    graph = re.search(r"frozen graph input (\S+):0 \[[\d, ]+\], output (\S+):0", printed)
    assert graph, printed
    names = GraphNames(graph[1], graph[2])
    (frozen,) = (target / "lap-1" / "model").glob("model_*.pb")
    model = load_policy(out / "model" / "model.zip", "clipped_ppo")
    observations = _observations(cfg)
    expected, _ = model.predict(observations, deterministic=True)
    tf_probs = run_frozen_graph(frozen, names, observations)
    assert tf_probs.shape == (len(observations), 10)
    np.testing.assert_allclose(tf_probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(tf_probs.argmax(axis=1), expected)
    ov_probs = run_ir(target / "lap-1-openvino" / "model.xml", observations)
    np.testing.assert_array_equal(ov_probs.argmax(axis=1), expected)
    np.testing.assert_allclose(ov_probs, tf_probs, atol=1e-4)
    # the policy's own probabilities, not only their argmax
    import torch

    with torch.no_grad():
        obs_t, _ = model.policy.obs_to_tensor(observations)
        torch_probs = model.policy.get_distribution(obs_t).distribution.probs.numpy()
    np.testing.assert_allclose(tf_probs, torch_probs, atol=1e-4)
    sensor = cfg.actions.sensor[0] if cfg.hp.observation_type == "camera" else "observation"
    assert names.input == f"main_level/agent/main/online/network_0/{sensor}/{sensor}"
    assert names.output == "main_level/agent/main/online/network_1/ppo_head_0/policy"


def test_the_model_folder_has_every_file_in_its_format(trained, exported):
    _, cfg = trained
    tmp_path, _ = exported
    folder = tmp_path / "lap-1"
    checkpoints = json.loads((folder / "model" / "deepracer_checkpoints.json").read_text())
    ckpt = checkpoints["best_checkpoint"]["name"]
    assert ckpt.endswith(".ckpt") and checkpoints["last_checkpoint"]["name"] == ckpt
    for suffix in (".index", ".meta", ".data-00000-of-00001"):
        assert (folder / "model" / f"{ckpt}{suffix}").stat().st_size > 0
    assert (folder / "model" / "checkpoint").read_text() == f'model_checkpoint_path: "{ckpt}"\n'
    assert (folder / "model" / f"model_{ckpt.split('_')[0]}.pb").stat().st_size > 0
    assert (folder / "model" / ".ready").exists()
    metadata = load_model_metadata(folder / "model" / "model_metadata.json")
    assert metadata.is_discrete and len(metadata.actions) == 10
    raw = json.loads((folder / "model" / "model_metadata.json").read_text())
    if cfg.hp.observation_type == "camera":  # the sensor and network trained, as model_metadata.json asked
        assert raw["sensor"] == list(cfg.actions.sensor) and raw["neural_network"] == cfg.actions.neural_network
    else:
        assert raw["sensor"] == ["SAGESTACK_CENTERLINE_VECTOR"] and raw["neural_network"] == "SAGESTACK_MLP_64_64"
    hyper = json.loads((folder / "ip" / "hyperparameters.json").read_text())
    assert {"batch_size", "lr", "discount_factor", "num_episodes_between_training"} <= hyper.keys()
    assert "def reward_function(" in (folder / "reward_function.py").read_text()
    metrics = json.loads((folder / "TrainingMetrics.json").read_text())
    assert metrics["metrics"] and "completion_percentage" in metrics["metrics"][0]
    text = (folder / "training_params.yaml").read_text()
    assert text.startswith("---")
    params = yaml.safe_load(text)
    assert params["MODEL_METADATA_FILE_S3_KEY"] == "models/lap-1/model/model_metadata.json"
    assert params["REWARD_FILE_S3_KEY"] == "models/lap-1/reward_function.py"
    assert params["METRICS_S3_OBJECT_KEY"] == "models/lap-1/TrainingMetrics.json"
    assert params["SAGEMAKER_SHARED_S3_BUCKET"] == "b" and params["WORLD_NAME"] == "oval"
    with tarfile.open(tmp_path / "lap-1-car.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["agent/model.pb", "model_metadata.json"]


def test_export_of_a_folder_without_a_model_is_a_clear_error(tmp_path, capsys):
    assert local_cli(["export", str(tmp_path)]) == 1
    assert "not a DeepRacer training output" in capsys.readouterr().err


# the simapp's schemes (markov/sensors/utils.py, custom_architectures.py): conv (filters, kernel, stride), the
# embedder's dense layers (applied per position, as 1x1 convolutions), the middleware's dense layers; ReLU after each
EXPECTED_LAYERS = {
    ("FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"): ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], [512]),
    ("FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK"):
        ([(32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1), (64, 1, 1)], [512]),
    ("FRONT_FACING_CAMERA", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"):
        ([(32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1), (512, 1, 1), (512, 1, 1)], [256, 128]),
    ("STEREO_CAMERAS", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"): ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], [512]),
    ("STEREO_CAMERAS", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"):
        ([(32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1)], [256, 128]),
}  # fmt: skip


def test_the_policy_has_the_consoles_layers(trained):
    out, cfg = trained
    layers = policy_layers(load_policy(out / "model" / "model.zip", "clipped_ppo")).layers
    conv = [(int(x.weight.shape[0]), int(x.weight.shape[2]), x.stride) for x in layers if x.kind == "conv"]
    dense = [int(x.weight.shape[0]) for x in layers if x.kind == "dense"]
    if cfg.hp.observation_type == "vector":  # Sagestack's MLP (policy_layers 64,64, tanh), not a console network
        assert conv == [] and dense == [64, 64, 10] and [x.kind for x in layers].count("tanh") == 2
        return
    expected_conv, expected_dense = EXPECTED_LAYERS[(cfg.actions.sensor[0], cfg.actions.neural_network)]
    channels = 2 * cfg.hp.stack_size if cfg.actions.sensor[0] == "STEREO_CAMERAS" else cfg.hp.stack_size
    assert conv == expected_conv and dense == [*expected_dense, 10]  # the last: the policy head, one per action
    assert next(x for x in layers if x.kind == "conv").weight.shape[1] == channels
    assert [x.kind for x in layers].count("relu") == len(expected_conv) + len(expected_dense)


def test_a_sac_stereo_policy_exports_its_actions(tmp_path, oval):
    """SAC (continuous) from the stereo pair: the replay buffer is bounded (not SB3's 1 M frames), and the frozen graph
    and OpenVINO give the actor's deterministic action (the shallow network: SAC makes one update per step, and the
    deeper networks' layers are checked with PPO above)."""
    hp = parse_hyperparameters(
        {**CAMERA, "num_episodes_between_training": "1", "stack_size": "1", "batch_size": "16", "world_name": "oval",
         "min_eval_trials": "1", "eval_laps": "1", "seed": "3"}
    )  # fmt: skip
    actions = parse_model_metadata(
        {"action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2}},
         "action_space_type": "continuous", "training_algorithm": "sac", "sensor": ["STEREO_CAMERAS"]}
    )  # fmt: skip
    out = tmp_path / "run"
    cfg = RunConfig(oval, actions, DEFAULT_REWARD_FILE, hp, out / "model", out)
    run(cfg)
    model = load_policy(out / "model" / "model.zip", "sac")
    assert model.buffer_size < 100_000  # 2 GiB of stereo frames, not 1 M transitions
    result = export_model(out, tmp_path / "export", "sac-stereo")
    assert result.names.input == "main_level/agent/policy/online/network_0/STEREO_CAMERAS/STEREO_CAMERAS"
    assert result.input_shape == (120, 160, 2)
    env = make_envs(cfg, 1, env_config(cfg.hp, cfg.actions))[0]
    rng = np.random.default_rng(1)
    obs, _ = env.reset()
    frames = []
    for _ in range(12):
        frames.append(obs)
        obs, *_ = env.step(rng.uniform(-1, 1, size=2).astype(np.float32))
    observations = np.stack(frames).astype(np.float32)
    expected, _ = model.predict(observations, deterministic=True)
    tf_actions = run_frozen_graph(result.frozen_graph, result.names, observations)
    np.testing.assert_allclose(tf_actions, expected, atol=1e-4)
    xml = convert_to_ir(result.frozen_graph, result.names, result.input_shape, tmp_path / "ov" / "model.xml")
    np.testing.assert_allclose(run_ir(xml, observations), expected, atol=1e-4)
