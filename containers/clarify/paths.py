"""Where a Clarify processing job finds its config and data and writes its results (docs/clarify.md#job-contract).

Every path hangs off the toolkit's base directory (``/opt/ml``, or ``SAGEMAKER_BASE_DIR``), so
``<base>/processing/input/config/analysis_config.json`` is what the container sees at
``/opt/ml/processing/input/config/analysis_config.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from containers.toolkit.environment import Paths
from containers.toolkit.errors import UserError

__all__ = ["ProcessingPaths", "search_path"]


@dataclass(frozen=True)
class ProcessingPaths:
    base: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessingPaths:
        return cls(Paths.from_env(env).base)

    @property
    def config_file(self) -> Path:
        return self.base / "processing" / "input" / "config" / "analysis_config.json"

    @property
    def data_dir(self) -> Path:
        return self.base / "processing" / "input" / "data"

    @property
    def output_dir(self) -> Path:
        return self.base / "processing" / "output"

    @property
    def failure_files(self) -> tuple[Path, ...]:
        """``output/failure`` (what our runtime reads) and ``output/message`` (processing's own name)."""
        return (self.base / "output" / "failure", self.base / "output" / "message")


def search_path(uri: str) -> Path:
    """A local ``dataset_uri``/baseline path (``file://`` or plain)."""
    path = Path(uri.removeprefix("file://"))
    if not path.exists():
        raise UserError(f"'{uri}' does not exist. Fix: give an s3:// URI or a path visible to the container.")
    return path
