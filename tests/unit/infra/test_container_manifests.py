"""The containers' manifests read as data by infra, and the files generated from them."""

from __future__ import annotations

import pytest

from infra.container_manifests import builtin_metric_definitions, container_for_repository, load_manifests
from infra.images.catalog import ImagePaths
from infra.images.dockerfiles import stale_dockerfiles
from infra.images.spark_params import stale_spark_params

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_every_container_folder_has_a_manifest_named_like_it() -> None:
    names = {manifest.name for manifest in load_manifests()}
    assert names == {
        "xgboost",
        "kmeans",
        "pca",
        "rl",
        "processing",
        "clarify",
        "model_monitor",
        "scikit_learn",
        "pytorch",
        "remote_function",
    }


@pytest.mark.parametrize(
    ("repository", "container"),
    [
        ("sagemaker-xgboost", "xgboost"),
        ("sagemaker-rl-ray-container", "rl"),
        ("tensorflow-rl-ray", "rl"),
        ("sagemaker-rl-", None),
        ("sagemaker-base-python-310", "remote_function"),
        ("sagemaker-base-python-", None),
        ("sagemaker-distribution-prod", "remote_function"),
        ("my-trainer", None),
    ],
)
def test_repositories_match_whole_names_with_star_as_one_or_more_characters(
    repository: str, container: str | None
) -> None:
    assert container_for_repository(repository) == container


def test_builtin_metric_definitions_come_from_the_built_in_lists_of_the_manifest() -> None:
    definitions = builtin_metric_definitions(XGBOOST)
    assert len(definitions) == 30
    assert definitions[0] == {"Name": "validation:accuracy", "Regex": r".*\[[0-9]+\].*#011validation-accuracy:(\S+)"}
    assert [d["Name"] for d in builtin_metric_definitions("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1")] == [
        "test:msd",
        "test:ssd",
        "train:msd",
    ]
    assert builtin_metric_definitions("382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1") == []


def test_the_committed_generated_files_match_the_manifests() -> None:
    paths = ImagePaths.default()
    assert stale_spark_params(paths.repo_root) == []
    assert stale_dockerfiles(paths) == []
