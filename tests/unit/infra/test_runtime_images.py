from __future__ import annotations

import pytest

from infra.runtime.api import ImageNotFoundError
from infra.runtime.images import ImageResolver


@pytest.mark.parametrize(
    ("uri", "container"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"),
        ("433757028032.dkr.ecr.us-west-2.amazonaws.com/xgboost:1", "xgboost"),
        ("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1", "kmeans"),
        ("382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1", "pca"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "scikit_learn"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310", "pytorch"),
        ("763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.1-gpu-py310", "pytorch"),
        ("173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.3-cpu", "processing"),
        ("205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0", "clarify"),
        ("156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer", "model_monitor"),
        ("462105765813.dkr.ecr.us-west-2.amazonaws.com/sagemaker-rl-tensorflow:coach0.11-cpu-py3", "rl"),
        ("462105765813.dkr.ecr.us-west-2.amazonaws.com/tensorflow-rl-ray:1.0", "rl"),
        ("390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1", "xgboost"),
        ("sagestack/kmeans:latest", "kmeans"),
        ("sagestack/pca", "pca"),
        ("sagestack-model-monitor:dev", "model_monitor"),
        ("sagestack-rl", "rl"),
    ],
)
def test_resolve_maps_known_images_to_our_containers(uri: str, container: str) -> None:
    image = ImageResolver(python="/usr/bin/python3").resolve(uri)

    assert image.uri == uri
    assert image.command == ("/usr/bin/python3", "-m", f"containers.{container}")
    tag = uri.rsplit(":", 1)[1] if ":" in uri.rsplit("/", 1)[-1] else None
    assert dict(image.environment) == ({"SAGESTACK_IMAGE_TAG": tag} if tag else {})


@pytest.mark.parametrize(
    ("uri", "tag"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3", "1.0-1-cpu-py3"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.90-2", "0.90-2"),
        (f"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.3-1@sha256:{'a' * 64}", "1.3-1"),
        (f"382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans@sha256:{'b' * 64}", None),
        ("sagestack/xgboost", None),
    ],
)
def test_the_image_tag_reaches_the_container_as_its_version(uri: str, tag: str | None) -> None:
    image = ImageResolver(python="/usr/bin/python3").resolve(uri)

    assert image.environment.get("SAGESTACK_IMAGE_TAG") == tag


@pytest.mark.parametrize(
    "uri",
    [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-custom-trainer:1",
        "ubuntu:22.04",
        "sagestack/unknown:1",
        "",
    ],
)
def test_resolve_unknown_image_names_it_and_lists_supported(uri: str) -> None:
    with pytest.raises(ImageNotFoundError) as caught:
        ImageResolver().resolve(uri)

    message = str(caught.value)
    assert repr(uri) in message
    assert "sagemaker-xgboost" in message
    assert "kmeans" in message
