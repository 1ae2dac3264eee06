"""Whole processing jobs through ``python -m containers.clarify`` with ``SAGEMAKER_BASE_DIR``; the model is a stub
speaking the SageMaker and runtime APIs at ``AWS_ENDPOINT_URL`` (shadow endpoint created and deleted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.unit.containers.clarify.conftest import GERMAN_CREDIT, REPO, layout_job

COEF = np.array([0.5, -0.3, 0.2])


def _run(base: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(REPO), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "containers.clarify"], env=env, capture_output=True, text=True, timeout=300
    )


def _aws_env(url: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"}


def test_pre_training_job_on_german_credit_writes_clarify_layout(tmp_path: Path) -> None:
    config = {
        "dataset_type": "text/csv",
        "label": "risk",
        "label_values_or_threshold": [1],
        "facet": [
            {"name_or_index": "sex", "value_or_threshold": ["female"]},
            {"name_or_index": "age", "value_or_threshold": [40]},
        ],
        "group_variable": "housing",
        "methods": {"pre_training_bias": {"methods": "all"}, "report": {"name": "report", "title": "Analysis Report"}},
    }
    out = layout_job(tmp_path, config, GERMAN_CREDIT.read_text())
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    analysis = json.loads((out / "analysis.json").read_text())
    report = analysis["pre_training_bias_metrics"]
    assert report["label"] == "risk" and report["label_value_or_threshold"] == "1"
    assert [g["value_or_threshold"] for g in report["facets"]["age"]] == ["(40, 75]"]
    names = [m["name"] for m in report["facets"]["sex"][0]["metrics"]]
    assert names == ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD"]
    frame = pd.read_csv(GERMAN_CREDIT)
    female = frame["sex"] == "female"
    ci = next(m for m in report["facets"]["sex"][0]["metrics"] if m["name"] == "CI")["value"]
    assert ci == pytest.approx(((~female).sum() - female.sum()) / len(frame))
    html = (out / "report.html").read_text()
    assert "Class Imbalance (CI)" in html and "What it means" in html
    assert (out / "report.pdf").stat().st_size > 0


def test_headerless_csv_with_index_references(tmp_path: Path) -> None:
    rows = "\n".join(f"{i % 2},{i % 3},{i}" for i in range(60))
    config = {
        "dataset_type": "text/csv",
        "label": 0,
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": 1, "value_or_threshold": [0]}],
        "methods": {"pre_training_bias": {"methods": ["CI", "DPL"]}},
    }
    out = layout_job(tmp_path, config, rows)
    assert _run(tmp_path).returncode == 0
    report = json.loads((out / "analysis.json").read_text())["pre_training_bias_metrics"]
    assert report["label"] == "column_0" and list(report["facets"]) == ["column_1"]
    assert [m["name"] for m in report["facets"]["column_1"][0]["metrics"]] == ["CI", "DPL"]


def _model_job(tmp_path: Path, url: str, predictor: dict[str, Any]) -> tuple[Path, subprocess.CompletedProcess[str]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)).round(4)
    label = (x @ COEF > 0).astype(int)
    sex = np.where(np.arange(80) % 3 == 0, 1, 0)
    data = "\n".join(",".join([str(lab), str(s), *map(str, row)]) for lab, s, row in zip(label, sex, x, strict=True))
    config = {
        "dataset_type": "text/csv",
        "headers": ["y", "sex", "a", "b", "c"],
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": [1]}],
        "probability_threshold": 0.5,
        "methods": {
            "post_training_bias": {"methods": "all"},
            "shap": {"baseline": [[0, 0.0, 0.0, 0.0]], "num_samples": 20, "seed": 1, "save_local_shap_values": True},
            "pdp": {"grid_resolution": 5, "features": ["a"]},
            "report": {"name": "report", "title": "Model report"},
        },
        "predictor": {"content_type": "text/csv", "accept_type": "text/csv", **predictor},
    }
    out = layout_job(tmp_path, config, data)
    return out, _run(tmp_path, _aws_env(url))


def _linear(rows: np.ndarray) -> np.ndarray:
    return rows[:, 1:] @ COEF  # column 0 is the facet, a feature the model ignores


def test_model_job_through_a_shadow_endpoint_is_cleaned_up(tmp_path: Path, stub_aws: Any) -> None:
    stub = stub_aws(_linear)
    out, done = _model_job(
        tmp_path, stub.url, {"model_name": "m1", "instance_type": "ml.m5.xlarge", "initial_instance_count": 1}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    operations = [op for op, _ in stub.calls]
    assert operations[:2] == ["CreateEndpointConfig", "CreateEndpoint"]
    assert {"DeleteEndpoint", "DeleteEndpointConfig"} <= set(operations) and not stub.endpoints
    created = dict(stub.calls)["CreateEndpoint"]["EndpointName"]
    assert created.startswith("sm-clarify-")
    analysis = json.loads((out / "analysis.json").read_text())
    post = analysis["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
    assert [m["name"] for m in post][:3] == ["AD", "CDDPL", "DAR"]
    shap = analysis["explanations"]["kernel_shap"]["label0"]
    assert shap["expected_value"] == pytest.approx(0.0)
    assert shap["global_shap_values"]["sex"] == pytest.approx(0.0, abs=1e-9)
    local = pd.read_csv(out / "explanations_shap" / "out.csv")
    assert list(local.columns) == ["sex_label0", "a_label0", "b_label0", "c_label0"]
    assert shap["global_shap_values"]["a"] == pytest.approx(local["a_label0"].abs().mean())
    pdp = analysis["explanations"]["pdp"][0]
    assert pdp["feature_name"] == "a" and len(pdp["feature_values"]) == 5
    assert sum(pdp["data_distribution"]) == pytest.approx(1.0)
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_malformed_predictions_fail_the_job_with_a_reason(tmp_path: Path, stub_aws: Any) -> None:
    stub = stub_aws(_linear)
    stub.malformed = True
    _, done = _model_job(tmp_path, stub.url, {"endpoint_name": "existing"})
    assert done.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("ClientError:") and "predictions" in reason
    assert (tmp_path / "output" / "message").read_text() == reason


def test_unknown_facet_column_fails_naming_the_field(tmp_path: Path) -> None:
    config = {
        "dataset_type": "text/csv",
        "label": "risk",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "gender"}],
        "methods": {"pre_training_bias": {"methods": "all"}},
    }
    layout_job(tmp_path, config, GERMAN_CREDIT.read_text())
    done = _run(tmp_path)
    assert done.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "'facet.name_or_index' names column 'gender'" in reason


def test_single_class_label_fails_naming_the_field(tmp_path: Path) -> None:
    config = {
        "dataset_type": "text/csv",
        "label": "risk",
        "label_values_or_threshold": [7],
        "facet": [{"name_or_index": "sex"}],
        "methods": {"pre_training_bias": {"methods": "all"}},
    }
    layout_job(tmp_path, config, GERMAN_CREDIT.read_text())
    assert _run(tmp_path).returncode == 1
    assert "label_values_or_threshold" in (tmp_path / "output" / "failure").read_text()


def test_jsonlines_dataset_with_jmespath(tmp_path: Path) -> None:
    lines = [json.dumps({"features": [i % 2, i], "target": int(i % 3 == 0)}) for i in range(60)]
    config = {
        "dataset_type": "application/jsonlines",
        "features": "features",
        "label": "target",
        "headers": ["sex", "n", "target"],
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "sex", "value_or_threshold": [1]}],
        "methods": {"pre_training_bias": {"methods": ["CI"]}},
    }
    out = layout_job(tmp_path, config, "\n".join(lines), name="data.jsonl")
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "analysis.json").read_text())["pre_training_bias_metrics"]
    assert report["facets"]["sex"][0]["metrics"][0]["value"] == pytest.approx(0.0)
