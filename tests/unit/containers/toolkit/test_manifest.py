"""A container manifest (manifest.toml) becomes the toolkit's hyperparameter and metric specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import Interval
from containers.toolkit.manifest import ManifestError, load_manifest
from containers.toolkit.metrics import Direction, MetricSpec

MANIFEST = """
name = "demo"
[hyperparameters]
aliases = { rate = "eta" }
ignored = ["_hidden"]
parameters = [
  { name = "rounds", type = "integer", min = 1, required = true, tunable = true },
  { name = "eta", type = "continuous", min = 0, max = 1, min_open = true, default = 0.3 },
  { name = "mode", type = "categorical", choices = ["a", "b"], default = "a" },
  { name = "items", type = "custom", parser = "items", default = ["x"] },
]

[[metrics]]
name = "{channel}:{metric}"
regex = '{channel} {metric}=(\\S+)'
channels = ["validation", "train"]
tunable_channels = ["validation"]
directions = { auc = "Maximize", loss = "Minimize" }
"""


def _manifest(tmp_path: Path, text: str = MANIFEST) -> Path:
    (tmp_path / "manifest.toml").write_text(text)
    return tmp_path


def test_hyperparameters_validate_as_declared(tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path))
    spec = manifest.hyperparameters({"items": (lambda text: tuple(text.split(",")), "a comma list")})

    values = spec.validate({"rounds": "3", "rate": "0.5", "_hidden": "1"})
    assert values == {"rounds": 3, "eta": 0.5, "mode": "a", "items": ("x",)}
    assert spec.by_name()["eta"].range == Interval(min=0, max=1, min_open=True)  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="Missing required hyperparameter: rounds"):
        spec.validate({})


def test_metric_grids_expand_channel_by_channel(tmp_path: Path) -> None:
    metrics = load_manifest(_manifest(tmp_path)).metrics

    assert metrics[0] == MetricSpec("validation:auc", r"validation auc=(\S+)", Direction.MAXIMIZE, tunable=True)
    assert [(m.name, m.tunable) for m in metrics[1:]] == [
        ("validation:loss", True),
        ("train:auc", False),
        ("train:loss", False),
    ]


def test_unknown_keys_and_missing_parsers_are_errors(tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path))
    with pytest.raises(ManifestError, match="parser 'items'"):
        manifest.hyperparameters()
    other = tmp_path / "typo"
    other.mkdir()
    typo = load_manifest(_manifest(other, MANIFEST.replace('default = "a"', 'defualt = "a"')))
    with pytest.raises(ManifestError, match="unknown keys"):
        typo.hyperparameters({"items": (str, "")})
