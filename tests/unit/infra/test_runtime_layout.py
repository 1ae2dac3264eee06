from __future__ import annotations

import json
import os
import sys
from pathlib import Path, PurePosixPath

import pytest

from infra.runtime.api import ChannelSpec, ContainerImage, ProcessingSpec, TrainingSpec
from infra.runtime.errors import InvalidSpecError
from infra.runtime.process.layout import (
    host_names,
    host_path,
    input_data_config,
    lay_out_processing_host,
    lay_out_training_host,
    merge_order,
    resource_config,
)

IMAGE = ContainerImage(uri="sagestack/fake", command=(sys.executable,))


def read(path: Path) -> object:
    return json.loads(path.read_text())


def test_host_names_are_sorted_lexicographically() -> None:
    hosts = host_names(10)

    assert hosts[:3] == ("algo-1", "algo-10", "algo-2")
    assert sorted(hosts) == list(hosts)
    assert merge_order(hosts)[-1] == "algo-1"


def test_host_names_rejects_zero() -> None:
    with pytest.raises(InvalidSpecError):
        host_names(0)


def test_resource_config_matches_sagemaker_shape() -> None:
    config = resource_config("algo-2", ["algo-2", "algo-1"], "ml.m5.xlarge")

    assert config == {
        "current_host": "algo-2",
        "hosts": ["algo-1", "algo-2"],
        "network_interface_name": "eth0",
        "current_instance_type": "ml.m5.xlarge",
        "current_group_name": "homogeneousCluster",
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.xlarge",
                "hosts": ["algo-1", "algo-2"],
            }
        ],
    }


def test_input_data_config_writes_all_four_keys_and_content_type_only_when_set(tmp_path: Path) -> None:
    config = input_data_config(
        [ChannelSpec("train", tmp_path, content_type="text/csv"), ChannelSpec("validation", tmp_path)]
    )

    assert config["train"] == {
        "TrainingInputMode": "File",
        "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None",
        "CompressionType": "None",
        "ContentType": "text/csv",
    }
    assert "ContentType" not in config["validation"]
    assert set(config["validation"]) == {
        "TrainingInputMode",
        "S3DistributionType",
        "RecordWrapperType",
        "CompressionType",
    }


def make_source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    (source / "nested").mkdir(parents=True)
    (source / "part-0.csv").write_text("1,2\n")
    (source / "nested" / "part-1.csv").write_text("3,4\n")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", source / "escape")
    return source


def test_training_layout_writes_config_files_and_copies_channels_without_links(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    spec = TrainingSpec(
        job_name="job",
        image=IMAGE,
        work_dir=tmp_path / "job",
        hyperparameters={"eta": "0.2"},
        channels={"algo-1": [ChannelSpec("train", source, content_type="text/csv")]},
        instance_count=2,
        checkpoint_dir=tmp_path / "ckpt",
        checkpoint_s3_uri="s3://bucket/ckpt",
    )

    layout = lay_out_training_host(spec, "algo-1", host_names(2), PurePosixPath("/opt/ml"))

    root = layout.root
    assert root == tmp_path / "job" / "algo-1"
    for relative in ("model", "output/data", "output/intermediate", "checkpoints", "code"):
        assert (root / relative).is_dir()
    assert read(root / "input/config/hyperparameters.json") == {"eta": "0.2"}
    assert read(root / "input/config/resourceconfig.json")["hosts"] == ["algo-1", "algo-2"]  # type: ignore[index]
    assert read(root / "input/config/checkpointconfig.json") == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": "s3://bucket/ckpt",
    }
    data = root / "input/data/train"
    assert (data / "part-0.csv").read_text() == "1,2\n"
    assert (data / "nested" / "part-1.csv").read_text() == "3,4\n"
    assert not (data / "escape").exists()
    assert not (data / "part-0.csv").is_symlink()
    assert layout.binds == {"/opt/ml/checkpoints": tmp_path / "ckpt"}


def test_training_layout_copy_does_not_share_inodes_with_the_source(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    spec = TrainingSpec("job", IMAGE, tmp_path / "job", channels={"algo-1": [ChannelSpec("train", source)]})

    layout = lay_out_training_host(spec, "algo-1", ("algo-1",), PurePosixPath("/opt/ml"))
    (layout.root / "input/data/train/part-0.csv").write_text("changed")

    assert (source / "part-0.csv").read_text() == "1,2\n"


def test_training_layout_rejects_pipe_mode(tmp_path: Path) -> None:
    spec = TrainingSpec(
        "job", IMAGE, tmp_path / "job", channels={"algo-1": [ChannelSpec("train", tmp_path, input_mode="Pipe")]}
    )

    with pytest.raises(InvalidSpecError, match="Pipe"):
        lay_out_training_host(spec, "algo-1", ("algo-1",), PurePosixPath("/opt/ml"))


def test_processing_layout_writes_job_config_and_inputs(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    spec = ProcessingSpec(
        job_name="proc",
        image=IMAGE,
        work_dir=tmp_path / "proc",
        inputs={"/opt/ml/processing/input/data": source},
        outputs=["/opt/ml/processing/output"],
        job_config={"ProcessingResources": {"ClusterConfig": {"InstanceCount": 1}}},
    )

    layout = lay_out_processing_host(spec, "algo-1", ("algo-1",))

    root = layout.root
    job_config = read(root / "config/processingjobconfig.json")
    assert job_config["ProcessingJobName"] == "proc"  # type: ignore[index]
    assert "ProcessingResources" in job_config  # type: ignore[operator]
    assert read(root / "config/resourceconfig.json")["current_host"] == "algo-1"  # type: ignore[index]
    assert (root / "processing/input/data/part-0.csv").read_text() == "1,2\n"
    assert (root / "processing/output").is_dir()


@pytest.mark.parametrize("path", ["/etc/passwd", "/opt/ml", "/opt/ml/../../etc", "relative/path", "/opt/mlx"])
def test_host_path_rejects_paths_outside_opt_ml(tmp_path: Path, path: str) -> None:
    with pytest.raises(InvalidSpecError):
        host_path(tmp_path, path)


def test_host_path_maps_container_paths_into_the_host_dir(tmp_path: Path) -> None:
    assert host_path(tmp_path, "/opt/ml/processing/input/") == tmp_path / "processing" / "input"
