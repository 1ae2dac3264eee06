"""Which images exist, which AWS built-in URIs each one stands for, and where build state lives."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["AWS_IMAGES", "IMAGE_NAMES", "IMAGE_SPECS", "AwsImage", "ImagePaths", "ImageSpec", "image_ref"]

REPOSITORY_PREFIX = "sagestack"
BASE_NAME = "base"
OS_IMAGE = "sagestack/os:bookworm-slim"  # debootstrap root file system, trimmed and imported (offline builds only)
ONLINE_BASE_IMAGE = "python:3.11-slim"
INPUTS_LABEL = "org.sagestack.inputs"  # content hash of everything an image is built from


@dataclass(frozen=True)
class AwsImage:
    """An AWS built-in image, as ``sagemaker.image_uris.retrieve(framework, region, version, **extra)`` names it."""

    container: str
    framework: str
    version: str | None
    py_version: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """What differs between the containers' Dockerfiles; the rest is ``containers/docker/container.Dockerfile.in``."""

    name: str  # the container package (``containers/<name>``)
    title: str  # what the image is, one line (Dockerfile header and image description)
    serves: bool  # an algorithm image (``train`` / ``serve``); False: a processing image run with its own command
    environment: tuple[tuple[str, str], ...] = ()  # extra ENV lines


# The SM_* paths the SageMaker XGBoost container sets in its image (script mode reads them).
_XGBOOST_ENV = (
    ("SM_INPUT", "/opt/ml/input"),
    ("SM_INPUT_TRAINING_CONFIG_FILE", "/opt/ml/input/config/hyperparameters.json"),
    ("SM_INPUT_DATA_CONFIG_FILE", "/opt/ml/input/config/inputdataconfig.json"),
    ("SM_CHECKPOINT_CONFIG_FILE", "/opt/ml/input/config/checkpointconfig.json"),
    ("SM_MODEL_DIR", "/opt/ml/model"),
)

IMAGE_SPECS: tuple[ImageSpec, ...] = (
    ImageSpec("kmeans", "SageMaker-compatible built-in K-Means", serves=True),
    ImageSpec("pca", "SageMaker-compatible built-in PCA", serves=True),
    ImageSpec("xgboost", "SageMaker-compatible built-in XGBoost (algorithm and script mode)", True, _XGBOOST_ENV),
    ImageSpec("processing", "SageMaker processing image (scikit-learn processor stand-in)", serves=False),
    ImageSpec("model_monitor", "SageMaker Model Monitor analyzer image stand-in", serves=False),
    ImageSpec("clarify", "SageMaker Clarify processing image stand-in", serves=False),
    ImageSpec("rl", "SageMaker RL-style container (stable-baselines3 on torch CPU)", serves=True),
)

# One image per container package; the order is the build order (small images first).
IMAGE_NAMES: tuple[str, ...] = tuple(spec.name for spec in IMAGE_SPECS)

# The built-in images our containers stand in for (docs/images.md#built-in-image-uris-us-east-1). Spark processing is
# left out: the
# processing image carries no Spark/JVM.
AWS_IMAGES: tuple[AwsImage, ...] = (
    AwsImage("xgboost", "xgboost", "1.7-1"),
    AwsImage("xgboost", "xgboost", "3.0-5"),
    AwsImage("xgboost", "xgboost", "1"),
    AwsImage("kmeans", "kmeans", None),
    AwsImage("pca", "pca", None),
    AwsImage("clarify", "clarify", "1.0"),
    AwsImage("model_monitor", "model-monitor", None),
    AwsImage("processing", "sklearn", "1.2-1"),
    AwsImage("rl", "ray-pytorch", "1.6.0", "py36"),
    AwsImage("rl", "ray-tensorflow", "1.6.0", "py37"),
    AwsImage("rl", "coach-tensorflow", "1.0.0", "py3"),
)

# us-east-1 URIs (docs/images.md#built-in-image-uris-us-east-1), used when the SageMaker SDK cannot be imported.
US_EAST_1_URIS: dict[tuple[str, str | None], str] = {
    ("xgboost", "1.7-1"): "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
    ("xgboost", "3.0-5"): "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
    ("xgboost", "1"): "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1",
    ("kmeans", None): "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
    ("pca", None): "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1",
    ("clarify", "1.0"): "205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
    ("model-monitor", None): "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer",
    ("sklearn", "1.2-1"): "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    ("ray-pytorch", "1.6.0"): (
        "462105765813.dkr.ecr.us-east-1.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-torch-cpu-py36"
    ),
    ("ray-tensorflow", "1.6.0"): (
        "462105765813.dkr.ecr.us-east-1.amazonaws.com/sagemaker-rl-ray-container:ray-1.6.0-tf-cpu-py37"
    ),
    ("coach-tensorflow", "1.0.0"): (
        "462105765813.dkr.ecr.us-east-1.amazonaws.com/sagemaker-rl-coach-container:coach-1.0.0-tf-cpu-py3"
    ),
}


def image_ref(name: str, tag: str = "latest") -> str:
    """``sagestack/<name>:<tag>`` with ``_`` spelled ``-`` (``sagestack/model-monitor:latest``)."""
    return f"{REPOSITORY_PREFIX}/{name.replace('_', '-')}:{tag}"


@dataclass(frozen=True)
class ImagePaths:
    """The repository (build inputs) and the git-ignored state directory (wheelhouse, contexts, root fs)."""

    repo_root: Path
    state_dir: Path

    @classmethod
    def default(cls, repo_root: Path | None = None) -> ImagePaths:
        root = repo_root if repo_root is not None else Path(__file__).resolve().parents[2]
        data = Path(os.environ.get("SAGESTACK_DATA_DIR", str(root / ".sagestack")))
        return cls(repo_root=root, state_dir=data / "images")

    @property
    def containers(self) -> Path:
        return self.repo_root / "containers"

    @property
    def requirements(self) -> Path:
        return self.containers / "docker" / "requirements"

    @property
    def lock_file(self) -> Path:
        return self.repo_root / "requirements.lock"

    @property
    def wheelhouse(self) -> Path:
        return self.state_dir / "wheelhouse"

    @property
    def contexts(self) -> Path:
        return self.state_dir / "contexts"

    @property
    def rootfs(self) -> Path:
        return self.state_dir / "rootfs-bookworm"
