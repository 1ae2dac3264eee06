"""The RL image through SageMaker SDK v2 (Estimator, RLEstimator script mode) and a tuning job over a DeepRacer
hyperparameter with the evaluation completion as its objective."""

import json
import time

import pytest

from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import wait_training
from tests.integration.test_rl_deepracer import DEFAULTS, METRIC_DEFINITIONS, RL_IMAGE, TINY, channel, members

# A user's entry point: a Gymnasium environment trained with stable-baselines3, reporting in Ray's log format so
# the RLEstimator's default metric definitions (episode_reward_mean) pick the result up.
ENTRY_POINT = '''
import argparse
import os

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO


class Corridor(gym.Env):
    """Walk right to the goal in at most 20 steps."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.steps = 0, 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.pos, self.steps = max(0, self.pos + (1 if action == 1 else -1)), self.steps + 1
        done = self.pos >= 4
        return np.array([self.pos / 4], dtype=np.float32), float(done), done, self.steps >= 20, {}


parser = argparse.ArgumentParser()
parser.add_argument("--total_timesteps", type=int, default=256)
args = parser.parse_args()
env = Corridor()
model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu")
model.learn(total_timesteps=args.total_timesteps)
model.save(os.path.join(os.environ["SM_MODEL_DIR"], "policy"))
rewards = []
for episode in range(3):
    obs, _ = env.reset()
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + reward, terminated or truncated
    rewards.append(total)
print(f"episode_reward_mean: {np.mean(rewards):.3f}", flush=True)
'''


def _upload_custom_files(session, bucket, prefix):
    s3 = session.boto_session.client("s3")
    for name in ("reward_function.py", "model_metadata.json"):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=(DEFAULTS / name).read_bytes())
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/hyperparameters.json",
        Body=json.dumps({"num_episodes_between_training": 4}).encode(),
    )
    return f"s3://{bucket}/{prefix}"


@pytest.mark.expensive
def test_sdk_v2_estimator_with_the_rl_image(sdk_env):
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    session, bucket = sdk_env
    custom_files = _upload_custom_files(session, bucket, "rl-sdk/custom_files")
    estimator = Estimator(
        image_uri=RL_IMAGE,
        role=ROLE,
        instance_count=1,
        instance_type="ml.c5.2xlarge",
        hyperparameters={**TINY, "term_cond_max_episodes": "1"},
        metric_definitions=METRIC_DEFINITIONS,
        sagemaker_session=session,
        output_path=f"s3://{bucket}/rl-sdk/output",
    )
    estimator.fit({"custom_files": TrainingInput(custom_files)}, wait=False)
    described = wait_training(session.sagemaker_client, estimator.latest_training_job.name, timeout=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert 0.0 <= metrics["eval_completion"] <= 100.0
    assert "model.zip" in members(session.boto_session.client("s3"), estimator.model_data)


@pytest.mark.expensive
def test_rlestimator_script_mode_trains_a_gymnasium_env(sdk_env, tmp_path):
    from sagemaker.rl import RLEstimator, RLFramework, RLToolkit

    session, bucket = sdk_env
    (tmp_path / "train_corridor.py").write_text(ENTRY_POINT)
    estimator = RLEstimator(
        entry_point="train_corridor.py",
        source_dir=str(tmp_path),
        toolkit=RLToolkit.RAY,
        toolkit_version="1.6.0",
        framework=RLFramework.PYTORCH,
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters={"total_timesteps": 256},
        sagemaker_session=session,
        output_path=f"s3://{bucket}/rl-script/output",
    )
    assert "sagemaker-rl-ray-container" in estimator.training_image_uri()  # the SDK's image URI, resolved locally
    estimator.fit(wait=False)  # the SDK's own wait polls every 5 s; the test polls faster
    described = wait_training(session.sagemaker_client, estimator.latest_training_job.name, timeout=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["HyperParameters"]["sagemaker_program"] == '"train_corridor.py"'
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert 0.0 <= metrics["episode_reward_mean"] <= 1.0  # the SDK's default Ray metric definition
    assert "policy.zip" in members(session.boto_session.client("s3"), estimator.model_data)


def wait_tuning(sm, name, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return described
        if time.monotonic() > deadline:
            pytest.fail(f"tuning job {name} still {described['HyperParameterTuningJobStatus']}")
        time.sleep(0.2)


def test_tuning_discount_factor_on_evaluation_completion(sm, s3, bucket):
    prefix = "rl-tuning/custom_files"
    for name in ("reward_function.py", "model_metadata.json"):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=(DEFAULTS / name).read_bytes())
    static = {**TINY, "term_cond_max_episodes": "1", "num_workers": "1", "num_episodes_between_training": "4"}
    name = unique("rl-tune")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "eval_completion"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "discount_factor", "Values": ["0.9", "0.99"]}]},
        },
        TrainingJobDefinition={
            "StaticHyperParameters": static,
            "AlgorithmSpecification": {
                "TrainingImage": RL_IMAGE,
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            "RoleArn": ROLE,
            "InputDataConfig": [channel("custom_files", f"s3://{bucket}/{prefix}")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/rl-tuning/output"},
            "ResourceConfig": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    )
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get("FailureReason")
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    best = described["BestTrainingJob"]
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    assert objective["MetricName"] == "eval_completion" and 0.0 <= objective["Value"] <= 100.0
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    tried = {job["TunedHyperParameters"]["discount_factor"] for job in jobs["TrainingJobSummaries"]}
    assert tried == {"0.9", "0.99"}
    child = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert child["HyperParameters"]["discount_factor"] == best["TunedHyperParameters"]["discount_factor"]
