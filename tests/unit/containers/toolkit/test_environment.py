"""Contract tests: /opt/ml parsing (environment.py) and the SM_* variables of
docs/reference/container-contract.md#training-environment-variables."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from containers.toolkit.environment import ChannelConfig, Paths, ResourceConfig, TrainingEnvironment, resolve_host
from containers.toolkit.errors import PlatformError, UserError
from containers.toolkit.framework import training_env
from containers.toolkit.framework.training_env import Hardware, sm_env_vars, to_cmd_args
from tests.unit.containers.toolkit.conftest import WORKED_EXAMPLE_HPS, write_config

HW = Hardware(num_cpus=4, num_gpus=0, num_neurons=0)

# -- Paths -------------------------------------------------------------------------------------------------------------


def test_paths_default_to_opt_ml() -> None:
    paths = Paths.from_env({})
    assert paths.base == Path("/opt/ml")
    assert paths.config_dir == Path("/opt/ml/input/config")
    assert paths.channel_dir("train") == Path("/opt/ml/input/data/train")
    assert paths.failure_file == Path("/opt/ml/output/failure")
    assert paths.success_file == Path("/opt/ml/output/success")
    assert paths.intermediate_dir == Path("/opt/ml/output/intermediate")
    assert paths.checkpoints_dir == Path("/opt/ml/checkpoints")
    assert paths.code_dir == Path("/opt/ml/code")


def test_paths_honour_sagemaker_base_dir(tmp_path: Path) -> None:
    assert Paths.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)}).model_dir == tmp_path / "model"
    assert Paths.from_env({"SAGEMAKER_BASE_DIR": ""}).base == Path("/opt/ml")


# -- config files ------------------------------------------------------------------------------------------------------


def test_load_reads_every_config_file(make_env, ml_base: Path) -> None:
    env = make_env(
        {"TRAINING_JOB_NAME": "job-1"},
        hyperparameters={"num_round": "10", "hand_written": 3, "flag": True},
        channels={
            "train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key"},
            "validation": {"TrainingInputMode": "Pipe", "CompressionType": "Gzip", "RecordWrapperType": "RecordIO"},
        },
        resource={"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "current_instance_type": "ml.m5.xlarge"},
        checkpoint={"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://b/ckpt"},
    )
    assert env.job_name == "job-1"
    assert env.hyperparameters == {"num_round": "10", "hand_written": "3", "flag": "true"}
    train = env.channels["train"]
    assert (train.content_type, train.input_mode, train.s3_distribution_type) == ("text/csv", "File", "ShardedByS3Key")
    assert train.path == ml_base / "input" / "data" / "train"
    validation = env.channel("validation")
    assert validation is not None
    assert validation.content_type is None
    assert (validation.input_mode, validation.compression_type, validation.record_wrapper_type) == (
        "Pipe",
        "Gzip",
        "RecordIO",
    )
    assert env.channel("test") is None
    assert env.resource.current_host == "algo-2"
    assert env.resource.current_instance_type == "ml.m5.xlarge"
    assert env.resource.network_interface_name == "eth0"
    assert not env.resource.is_master
    assert env.checkpoint_config == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://b/ckpt"}


def test_missing_files_give_defaults(make_env) -> None:
    env = make_env()
    assert env.hyperparameters == {}
    assert env.channels == {}
    assert env.resource.current_host == "algo-1"
    assert env.resource.hosts == ("algo-1",)
    assert env.resource.current_instance_type == "local"
    assert env.resource.is_master
    assert env.checkpoint_config is None
    assert env.checkpoint_dir is None
    assert env.job_name == ""


def test_hosts_are_sorted_lexicographically(make_env) -> None:
    env = make_env(resource={"current_host": "algo-10", "hosts": ["algo-2", "algo-10", "algo-1"]})
    assert env.resource.hosts == ("algo-1", "algo-10", "algo-2")
    assert env.resource.master_host == "algo-1"
    assert not env.resource.is_master


def test_current_host_defaults_to_first_host() -> None:
    assert ResourceConfig.from_json({"hosts": ["algo-2", "algo-1"]}).current_host == "algo-1"


@pytest.mark.parametrize(
    ("local_path", "expected"),
    [
        ("/opt/ml/checkpoints", "BASE/checkpoints"),
        ("/opt/ml/checkpoints/", "BASE/checkpoints"),
        ("/opt/ml/ckpt/run-1", "BASE/ckpt/run-1"),
        ("/data/checkpoints", "/data/checkpoints"),
        (None, "BASE/checkpoints"),
    ],
)
def test_checkpoint_dir_is_rebased_onto_the_base_dir(make_env, ml_base: Path, local_path, expected) -> None:
    config = {"S3Uri": "s3://b/c"} if local_path is None else {"S3Uri": "s3://b/c", "LocalPath": local_path}
    env = make_env(checkpoint=config)
    assert env.checkpoint_dir == Path(expected.replace("BASE", str(ml_base)))


def test_invalid_json_is_a_user_error_naming_the_file(make_env, ml_base: Path) -> None:
    make_env()
    write_config(ml_base, "hyperparameters.json", "{not json")
    with pytest.raises(UserError, match=r"hyperparameters\.json is not valid JSON"):
        TrainingEnvironment.load({"SAGEMAKER_BASE_DIR": str(ml_base)})
    write_config(ml_base, "hyperparameters.json", "[1, 2]")
    with pytest.raises(UserError, match=r"hyperparameters\.json must hold a JSON object, not list"):
        TrainingEnvironment.load({"SAGEMAKER_BASE_DIR": str(ml_base)})


def test_empty_file_reads_as_empty_object(make_env, ml_base: Path) -> None:
    make_env()
    write_config(ml_base, "hyperparameters.json", "")
    assert TrainingEnvironment.load({"SAGEMAKER_BASE_DIR": str(ml_base)}).hyperparameters == {}


def test_channel_to_json_writes_the_four_keys_and_keeps_the_raw_entry() -> None:
    raw = {"TrainingInputMode": "File", "ContentType": "text/csv", "CompressionType": "None"}
    channel = ChannelConfig.from_json("train", raw, Path("/opt/ml/input/data/train"))
    assert channel.to_json() == {
        "TrainingInputMode": "File",
        "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None",
        "ContentType": "text/csv",
    }
    assert channel.raw == raw
    assert hash(channel) == hash(ChannelConfig.from_json("train", raw, Path("/opt/ml/input/data/train")))


def test_resolve_host_resolves_and_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_host("localhost").startswith("127.")

    def fail(name: str) -> str:
        raise socket.gaierror("no such host")

    monkeypatch.setattr(socket, "gethostbyname", fail)
    with pytest.raises(PlatformError, match="host algo-9 did not resolve"):
        resolve_host("algo-9", timeout_seconds=0)


# -- SM_* variables (docs/reference/container-contract.md#training-environment-variables) ------------------------------


def _worked_example(make_env, **extra_hps: str):
    return make_env(
        {"TRAINING_JOB_NAME": "xgb-job"},
        hyperparameters={**WORKED_EXAMPLE_HPS, **extra_hps},
        channels={"validation": {"TrainingInputMode": "File"}, "train": {"ContentType": "text/csv"}},
        resource={"current_host": "algo-1", "hosts": ["algo-2", "algo-1"], "network_interface_name": "eth0"},
    )


def test_worked_example_hps_and_user_args(make_env) -> None:
    env = _worked_example(make_env)
    sm = sm_env_vars(env, HW)
    assert sm["SM_HPS"] == '{"batch-size":256,"eta":0.2,"flag":true,"num_round":10,"objective":"binary:logistic"}'
    assert sm["SM_HP_BATCH-SIZE"] == "256"
    assert sm["SM_HP_ETA"] == "0.2"
    assert sm["SM_HP_FLAG"] == "true"
    assert sm["SM_HP_NUM_ROUND"] == "10"
    assert sm["SM_HP_OBJECTIVE"] == "binary:logistic"
    assert "SM_HP_SAGEMAKER_PROGRAM" not in sm
    assert json.loads(sm["SM_USER_ARGS"]) == [
        "--batch-size",
        "256",
        "--eta",
        "0.2",
        "--flag",
        "True",
        "--num_round",
        "10",
        "--objective",
        "binary:logistic",
    ]
    assert sm["SM_USER_ARGS"] == (
        '["--batch-size","256","--eta","0.2","--flag","True","--num_round","10","--objective","binary:logistic"]'
    )


def test_worked_example_paths_and_program(make_env, ml_base: Path) -> None:
    sm = sm_env_vars(_worked_example(make_env), HW)
    assert sm["SM_USER_ENTRY_POINT"] == "train.py"
    assert sm["SM_MODULE_NAME"] == "train"
    assert sm["SM_MODULE_DIR"] == f"{ml_base}/code"
    assert sm["SM_MODEL_DIR"] == f"{ml_base}/model"
    assert sm["SM_CHANNELS"] == '["train","validation"]'
    assert sm["SM_CHANNEL_TRAIN"] == f"{ml_base}/input/data/train"
    assert sm["SM_CHANNEL_VALIDATION"] == f"{ml_base}/input/data/validation"
    assert sm["SM_OUTPUT_DATA_DIR"] == f"{ml_base}/output/data"
    assert sm["SM_OUTPUT_DIR"] == f"{ml_base}/output"
    assert sm["SM_OUTPUT_INTERMEDIATE_DIR"] == f"{ml_base}/output/intermediate"
    assert sm["SM_INPUT_DIR"] == f"{ml_base}/input"
    assert sm["SM_INPUT_CONFIG_DIR"] == f"{ml_base}/input/config"


def test_worked_example_cluster_and_misc(make_env) -> None:
    sm = sm_env_vars(_worked_example(make_env), HW)
    assert sm["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert sm["SM_CURRENT_HOST"] == "algo-1"
    assert sm["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert sm["SM_CURRENT_INSTANCE_TYPE"] == "local"
    assert sm["SM_NUM_CPUS"] == "4"
    assert sm["SM_NUM_GPUS"] == "0"
    assert sm["SM_NUM_NEURONS"] == "0"
    assert sm["SM_LOG_LEVEL"] == "20"
    assert sm["SM_FRAMEWORK_MODULE"] == ""
    assert sm["SM_FRAMEWORK_PARAMS"] == "{}"
    assert sm["SM_RESOURCE_CONFIG"] == (
        '{"current_host":"algo-1","hosts":["algo-2","algo-1"],"network_interface_name":"eth0"}'
    )
    assert sm["SM_INPUT_DATA_CONFIG"] == (
        '{"train":{"ContentType":"text/csv"},"validation":{"TrainingInputMode":"File"}}'
    )
    assert sm["SAGEMAKER_JOB_NAME"] == ""
    assert sm["CURRENT_HOST"] == "algo-1"


def test_platform_keys_go_to_framework_params_or_nowhere(make_env) -> None:
    env = _worked_example(
        make_env,
        sagemaker_estimator_class_name='"XGBoost"',
        sagemaker_submit_directory='"s3://bucket/job/source/sourcedir.tar.gz"',
        sagemaker_container_log_level="10",
        sagemaker_job_name='"xgb-job"',
        sagemaker_region='"eu-west-1"',
        _tuning_objective_metric="validation:auc",
    )
    sm = sm_env_vars(env, HW)
    assert sm["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_estimator_class_name":"XGBoost"}'
    assert sm["SM_MODULE_DIR"] == "s3://bucket/job/source/sourcedir.tar.gz"
    assert sm["SM_LOG_LEVEL"] == "10"
    assert sm["SAGEMAKER_JOB_NAME"] == "xgb-job"
    assert sm["SAGEMAKER_REGION"] == "eu-west-1"
    assert "_tuning_objective_metric" not in json.loads(sm["SM_HPS"])
    assert not any(key.startswith("SM_HP_SAGEMAKER") or key == "SM_HP__TUNING_OBJECTIVE_METRIC" for key in sm)


def test_program_from_env_wins_and_framework_module(make_env) -> None:
    env = _worked_example(make_env)
    env = TrainingEnvironment.load(
        {**env.environ, "SAGEMAKER_PROGRAM": "main.py", "SAGEMAKER_TRAINING_MODULE": "pkg.training:main"}
    )
    sm = sm_env_vars(env, HW)
    assert sm["SM_USER_ENTRY_POINT"] == "main.py"
    assert sm["SM_MODULE_NAME"] == "main"
    assert sm["SM_FRAMEWORK_MODULE"] == "pkg.training:main"


def test_training_env_has_the_toolkit_keys(make_env, ml_base: Path) -> None:
    sm = sm_env_vars(_worked_example(make_env), HW)
    info = json.loads(sm["SM_TRAINING_ENV"])
    assert set(info) == {
        "additional_framework_parameters",
        "channel_input_dirs",
        "current_host",
        "current_instance_group",
        "current_instance_group_hosts",
        "current_instance_type",
        "distribution_hosts",
        "distribution_instance_groups",
        "framework_module",
        "hosts",
        "hyperparameters",
        "input_config_dir",
        "input_data_config",
        "input_dir",
        "instance_groups",
        "instance_groups_dict",
        "is_hetero",
        "is_master",
        "is_modelparallel_enabled",
        "is_smddpmprun_installed",
        "job_name",
        "log_level",
        "master_hostname",
        "model_dir",
        "module_dir",
        "module_name",
        "network_interface_name",
        "num_cpus",
        "num_gpus",
        "num_neurons",
        "output_data_dir",
        "output_dir",
        "output_intermediate_dir",
        "resource_config",
        "user_entry_point",
    }
    assert info["channel_input_dirs"] == {
        "train": f"{ml_base}/input/data/train",
        "validation": f"{ml_base}/input/data/validation",
    }
    assert info["hyperparameters"]["objective"] == "binary:logistic"
    assert info["job_name"] == "xgb-job"
    assert info["master_hostname"] == "algo-1"
    assert info["is_master"] is True
    assert info["framework_module"] is None


def test_instance_groups_from_resource_config(make_env) -> None:
    group = {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.xlarge", "hosts": ["algo-1"]}
    env = make_env(
        hyperparameters={"sagemaker_mpi_enabled": "true"},
        resource={
            "current_host": "algo-1",
            "hosts": ["algo-1"],
            "current_group_name": "homogeneousCluster",
            "instance_groups": [group],
        },
    )
    sm = sm_env_vars(env, HW)
    assert sm["SM_CURRENT_INSTANCE_GROUP"] == "homogeneousCluster"
    assert sm["SM_CURRENT_INSTANCE_GROUP_HOSTS"] == '["algo-1"]'
    assert sm["SM_INSTANCE_GROUPS"] == '["homogeneousCluster"]'
    assert json.loads(sm["SM_INSTANCE_GROUPS_DICT"]) == {"homogeneousCluster": group}
    assert sm["SM_DISTRIBUTION_INSTANCE_GROUPS"] == '["homogeneousCluster"]'
    assert sm["SM_IS_HETERO"] == "false"


def test_cmd_args_one_char_keys_dicts_and_none() -> None:
    assert to_cmd_args({"k": 3, "lr": 0.1, "opts": {"b": 2, "a": "x"}, "none": None, "flag": False}) == [
        "--flag",
        "False",
        "-k",
        "3",
        "--lr",
        "0.1",
        "--none",
        "",
        "--opts",
        "a=x,b=2",
    ]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [("text", "text"), (None, ""), (10, "10"), (True, "true"), ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}')],
)
def test_env_value_encoding(value, encoded) -> None:
    assert training_env.env_value(value) == encoded


def test_gpus_are_zero_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training_env.shutil, "which", lambda name: None)
    hardware = Hardware.detect()
    assert (hardware.num_gpus, hardware.num_neurons) == (0, 0)
    assert hardware.num_cpus >= 1


def test_resolve_host_maps_algo_hosts_to_loopback_without_a_hosts_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGESTACK_LOCAL_HOSTS", "1")
    assert resolve_host("algo-2") == "127.0.0.1"
    monkeypatch.delenv("SAGESTACK_LOCAL_HOSTS")
    with pytest.raises(PlatformError):
        resolve_host("algo-2", timeout_seconds=0)
