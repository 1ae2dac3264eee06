"""DeepRacer on the local stack: a training job with DRfC's inputs, an endpoint driving the car, evaluation only.

The RL image URI resolves to ``containers/rl``; every call goes through boto3 against the session stack.
"""

import csv
import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from containers.rl.train import METRICS
from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import wait_endpoint, wait_training

RL_IMAGE = "462105765813.dkr.ecr.us-east-1.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36"
DEFAULTS = Path(__file__).parents[2] / "containers" / "rl" / "defaults"
METRIC_DEFINITIONS = [{"Name": m.name, "Regex": m.regex} for m in METRICS]
# Tiny budget: 2 iterations of 4 episodes on the oval, 2 evaluation episodes per iteration, 1 final lap.
EVALUATION_TRACE = r"evaluation-\d{14}/evaluation-simtrace/0-iteration\.csv"  # deepracer-for-cloud's layout
TINY = {
    "term_cond_max_episodes": "2",
    "world_name": "oval",
    "eval_laps": "1",
    "num_workers": "2",
    "min_eval_trials": "2",
    "num_epochs": "3",
    "observation_type": "vector",  # these tests are about the job contract: the fast observation keeps them short
}
SIMTRACE_HEADER = (
    "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,closest_waypoint,"
    "track_len,tstamp,episode_status,pause_duration,obstacle_crash_counter,wall_clock"
)


def members(s3, uri):
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def channel(name, uri):
    return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}


def rl_job_request(name, bucket, channels, hyperparameters):
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": RL_IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/rl/output"},
        "ResourceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": hyperparameters,
    }


def final_metrics(described):
    return {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}


@pytest.fixture(scope="module")
def custom_files(s3, bucket):
    """DRfC's custom files prefix: reward function, action space and hyperparameters.json."""
    prefix = f"s3://{bucket}/rl/custom_files"
    s3.put_object(
        Bucket=bucket, Key="rl/custom_files/reward_function.py", Body=(DEFAULTS / "reward_function.py").read_bytes()
    )
    s3.put_object(
        Bucket=bucket, Key="rl/custom_files/model_metadata.json", Body=(DEFAULTS / "model_metadata.json").read_bytes()
    )
    hyperparameters = {"num_episodes_between_training": 4, "batch_size": 64, "lr": 0.0003, "discount_factor": 0.99}
    s3.put_object(Bucket=bucket, Key="rl/custom_files/hyperparameters.json", Body=json.dumps(hyperparameters).encode())
    return prefix


@pytest.fixture(scope="module")
def trained(sm, bucket, custom_files):
    name = unique("deepracer")
    sm.create_training_job(**rl_job_request(name, bucket, [channel("custom_files", custom_files)], TINY))
    return wait_training(sm, name, timeout=300)


def test_deepracer_training_job_with_drfc_inputs(trained, s3):
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    metrics = final_metrics(trained)
    assert 0.0 <= metrics["eval_completion"] <= 100.0  # the final evaluation's completion
    assert {"eval_reward", "train_reward", "train_completion", "eval_laps_completed"} <= set(metrics)
    model = members(s3, trained["ModelArtifacts"]["S3ModelArtifacts"])
    assert {"model.zip", "model_metadata.json", "deepracer_checkpoints.json", "reward_function.py"} <= set(model)
    used = json.loads(model["hyperparameters.json"])
    assert used["num_episodes_between_training"] == 4  # from the custom files' hyperparameters.json
    assert used["world_name"] == "oval" and used["num_epochs"] == 3  # the job's hyperparameters win
    metadata, given = (
        json.loads(model["model_metadata.json"]),
        json.loads((DEFAULTS / "model_metadata.json").read_text()),
    )
    # the given action space and algorithm, and the sensor and network really trained (docs: model_metadata.json)
    assert {k: v for k, v in metadata.items() if k not in ("sensor", "neural_network")} == {
        k: v for k, v in given.items() if k not in ("sensor", "neural_network")
    }
    assert metadata["sensor"] == ["SAGESTACK_CENTERLINE_VECTOR"] and metadata["neural_network"] == "SAGESTACK_MLP_64_64"
    best = json.loads(model["deepracer_checkpoints.json"])["best_checkpoint"]["name"]
    assert f"{best}.zip" in model  # the checkpoint index names a checkpoint that was uploaded
    output_uri = trained["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    output = members(s3, output_uri)
    training = json.loads(output["metrics/TrainingMetrics.json"])
    phases = {record["phase"] for record in training["metrics"]}
    assert phases == {"training", "evaluation"} and training["best_model_metric"] == "progress"
    trace = output["training-simtrace/0-iteration.csv"].decode().splitlines()
    assert trace[0] == SIMTRACE_HEADER and len(trace) > 1
    assert len(next(csv.reader(trace[1:2]))) == 19
    assert "training-simtrace/1-iteration.csv" in output
    # deepracer-for-cloud's layout (docs: Log layout)
    assert any(re.fullmatch(EVALUATION_TRACE, key) for key in output)
    assert json.loads(output["ip/hyperparameters.json"])["num_episodes_between_training"] == 4
    assert json.loads(output["model/model_metadata.json"]) == metadata
    assert output["reward_graph.png"].startswith(b"\x89PNG")


def _drive(model, predict, steps):
    """Drive the trained car on its own track: each observation goes through ``predict`` and the action is applied."""
    from containers.rl.simulation.actions import parse_model_metadata
    from containers.rl.simulation.env import DeepRacerEnv, EnvConfig
    from containers.rl.simulation.tracks import Track

    actions = parse_model_metadata(json.loads(model["model_metadata.json"]))
    track = Track.from_array("oval", np.load(io.BytesIO(model["track.npy"])))
    env = DeepRacerEnv(track, actions, lambda params: 1.0, EnvConfig(change_start_position=False))
    observation, _ = env.reset()
    seen = []
    for _ in range(steps):
        prediction = predict(observation)
        seen.append((observation, prediction))
        observation, _, terminated, truncated, _ = env.step(prediction["action"])
        if terminated or truncated:
            break
    return seen, actions


def test_endpoint_maps_observations_to_actions(trained, sm, smr, s3, tmp_path):
    artifacts = trained["ModelArtifacts"]["S3ModelArtifacts"]
    model = members(s3, artifacts)
    name = unique("deepracer-policy")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": RL_IMAGE,
            "ModelDataUrl": artifacts,
            "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        described = wait_endpoint(sm, name)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")

        def predict(observation):
            body = json.dumps({"instances": [observation.tolist()]})
            answer = smr.invoke_endpoint(
                EndpointName=name, Body=body, ContentType="application/json", Accept="application/json"
            )
            assert answer["ContentType"] == "application/json"
            return json.loads(answer["Body"].read())["predictions"][0]

        seen, actions = _drive(model, predict, steps=25)
        (tmp_path / "model.zip").write_bytes(model["model.zip"])
        from stable_baselines3 import PPO

        local = PPO.load(str(tmp_path / "model.zip"), device="cpu")
        for observation, prediction in seen:
            expected, _ = local.predict(observation, deterministic=True)
            assert prediction["action"] == int(expected)  # the endpoint serves exactly the trained policy
            chosen = actions.actions[prediction["action"]]
            assert (prediction["steering_angle"], prediction["speed"]) == (chosen.steering_angle, chosen.speed)
        with pytest.raises(smr.exceptions.ModelError) as raised:
            smr.invoke_endpoint(EndpointName=name, Body=b'{"instances": [[1, 2]]}', ContentType="application/json")
        assert "shape" in raised.value.response["OriginalMessage"]
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_evaluate_only_from_the_first_jobs_model(trained, sm, s3, bucket):
    artifacts = trained["ModelArtifacts"]["S3ModelArtifacts"]
    name = unique("deepracer-eval")
    hyperparameters = {"evaluate_only": "true", "eval_laps": "2", "num_workers": "2"}
    sm.create_training_job(**rl_job_request(name, bucket, [channel("checkpoint", artifacts)], hyperparameters))
    described = wait_training(sm, name, timeout=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    metrics = final_metrics(described)
    assert 0.0 <= metrics["eval_completion"] <= 100.0 and 0 <= metrics["eval_laps_completed"] <= 2
    assert "train_reward" not in metrics  # nothing was trained
    output_uri = described["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz")
    output = members(s3, output_uri)
    assert not any(key.startswith("training-simtrace/") for key in output)
    evaluation = [json.loads(body) for key, body in output.items() if key.startswith("metrics/evaluation/")]
    assert [lap["trial"] for lap in evaluation[0]["metrics"]] == [1, 2]
    traces = [body for key, body in output.items() if re.fullmatch(EVALUATION_TRACE, key)]
    assert len(traces) == 1 and traces[0].decode().startswith(SIMTRACE_HEADER)
    assert json.loads(output["summary.json"])["evaluate_only"] is True
    first, second = members(s3, artifacts), members(s3, described["ModelArtifacts"]["S3ModelArtifacts"])
    assert second["model.zip"] == first["model.zip"]  # the evaluated policy, deployable as it is
    assert json.loads(second["hyperparameters.json"])["world_name"] == "oval"  # the checkpoint's track


def test_evaluate_only_without_a_checkpoint_fails_with_a_reason(sm, bucket, custom_files):
    name = unique("deepracer-nockpt")
    request = rl_job_request(name, bucket, [channel("custom_files", custom_files)], {"evaluate_only": "true"})
    sm.create_training_job(**request)
    described = wait_training(sm, name, timeout=120)
    assert described["TrainingJobStatus"] == "Failed"
    assert "checkpoint channel" in described["FailureReason"]


def test_a_stereo_camera_job_trains_the_consoles_deep_network(sm, s3, bucket):
    """``STEREO_CAMERAS`` and ``DEEP_CONVOLUTIONAL_NETWORK_DEEP`` in DRfC's ``model_metadata.json``: the job learns from
    the stereo pair with that network and its model says so (docs: Sensors and networks)."""
    given = json.loads((DEFAULTS / "model_metadata.json").read_text())
    given.update(sensor=["STEREO_CAMERAS"], neural_network="DEEP_CONVOLUTIONAL_NETWORK_DEEP")
    s3.put_object(Bucket=bucket, Key="rl/stereo/model_metadata.json", Body=json.dumps(given).encode())
    s3.put_object(
        Bucket=bucket, Key="rl/stereo/reward_function.py", Body=(DEFAULTS / "reward_function.py").read_bytes()
    )
    name = unique("deepracer-stereo")
    tiny_camera = {
        **TINY, "observation_type": "camera", "term_cond_max_episodes": "1", "num_episodes_between_training": "2",
        "num_workers": "1", "min_eval_trials": "1", "num_epochs": "1",
    }  # fmt: skip
    sm.create_training_job(
        **rl_job_request(name, bucket, [channel("custom_files", f"s3://{bucket}/rl/stereo")], tiny_camera)
    )
    described = wait_training(sm, name, timeout=600)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = members(s3, described["ModelArtifacts"]["S3ModelArtifacts"])
    metadata = json.loads(model["model_metadata.json"])
    assert metadata["sensor"] == ["STEREO_CAMERAS"] and metadata["neural_network"] == "DEEP_CONVOLUTIONAL_NETWORK_DEEP"
    assert metadata["action_space"] == given["action_space"]
    assert "model.zip" in model and 0.0 <= final_metrics(described)["eval_completion"] <= 100.0
