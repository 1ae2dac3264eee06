"""Whole runs of ``python -m containers.model_monitor`` with the environment the real analyzer takes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.unit.containers.model_monitor.conftest import capture_line, run_analyzer

CSV_FORMAT = json.dumps({"csv": {"header": True, "output_columns_position": "START"}})
CAPTURE_FORMAT = json.dumps({"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}})


def rows(n: int, seed: int, shift: float = 0.0) -> list[tuple[int, float, float, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(5 + shift, 1)
        label = int(x > 5)
        out.append((label, round(x, 4), round(rng.uniform(0, 10), 4), str(rng.choice(["a", "b", "c"]))))
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    base = tmp_path_factory.mktemp("baseline")
    data = base / "processing" / "input" / "baseline_dataset_input"
    data.mkdir(parents=True)
    lines = ["label,x,y,kind"] + [",".join(map(str, r)) for r in rows(2000, seed=1)]
    (data / "train.csv").write_text("\n".join(lines) + "\n")
    result = run_analyzer(
        base,
        {
            "dataset_format": CSV_FORMAT,
            "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
            "output_path": "/opt/ml/processing/output",
            "publish_cloudwatch_metrics": "Disabled",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return base


def test_baselining_job_writes_statistics_and_constraints(baseline) -> None:
    out = baseline / "processing" / "output"
    statistics = json.loads((out / "statistics.json").read_text())
    constraints = json.loads((out / "constraints.json").read_text())
    assert statistics["dataset"]["item_count"] == 2000
    types = {f["name"]: f["inferred_type"] for f in statistics["features"]}
    assert types == {"label": "Integral", "x": "Fractional", "y": "Fractional", "kind": "String"}
    assert {f["name"] for f in constraints["features"]} == set(types)
    assert (baseline / "output" / "message").read_text() == "Completed: Job completed successfully."


def monitor(tmp_path, baseline, captures: list[str], **extra: str):
    base = tmp_path / "exec"
    folder = base / "processing" / "input" / "endpoint" / "ep" / "AllTraffic" / "2024" / "05" / "01" / "10"
    folder.mkdir(parents=True)
    (folder / "00-00-000-a.jsonl").write_text("\n".join(captures) + "\n")
    baseline_dir = base / "processing" / "baseline"
    baseline_dir.mkdir(parents=True)
    for name in ("statistics.json", "constraints.json"):
        (baseline_dir / name).write_text((baseline / "processing" / "output" / name).read_text())
    env = {
        "dataset_format": CAPTURE_FORMAT,
        "dataset_source": "/opt/ml/processing/input/endpoint",
        "output_path": "/opt/ml/processing/resultdata",
        "baseline_statistics": "/opt/ml/processing/baseline/statistics.json",
        "baseline_constraints": "/opt/ml/processing/baseline/constraints.json",
        "publish_cloudwatch_metrics": "Enabled",
        "sagemaker_endpoint_name": "ep",
        "sagemaker_monitoring_schedule_name": "hourly",
        "start_time": "2024-05-01T10:00:00Z",
        "end_time": "2024-05-01T11:00:00Z",
        **extra,
    }
    result = run_analyzer(base, env)
    assert result.returncode == 0, result.stdout + result.stderr
    return base, result


def captures(data: list[tuple[int, float, float, str]]) -> list[str]:
    return [capture_line(f"{x},{y},{kind}", str(label), f"e{i}") for i, (label, x, y, kind) in enumerate(data)]


def test_monitoring_fresh_sample_has_no_violations(tmp_path, baseline) -> None:
    base, result = monitor(tmp_path, baseline, captures(rows(500, seed=2)))
    out = base / "processing" / "resultdata"
    assert json.loads((out / "constraint_violations.json").read_text()) == {"violations": []}
    assert json.loads((out / "statistics.json").read_text())["dataset"]["item_count"] == 500
    assert (base / "output" / "message").read_text() == "Completed: Job completed successfully with no violations."
    assert "CloudWatch publishing skipped" in result.stdout


def test_monitoring_drifted_traffic(tmp_path, baseline) -> None:
    drifted = [
        (label, x, y if i % 10 else "", "z" if i % 4 == 0 else kind)
        for i, (label, x, y, kind) in enumerate(rows(500, seed=3, shift=2.0))
    ]
    lines = [*captures(drifted), "{corrupt", capture_line("1,2,a", "0", "late", when="2024-05-01T11:30:00Z")]
    base, _ = monitor(tmp_path, baseline, lines)
    out = base / "processing" / "resultdata"
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"]
    found = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert {
        ("x", "baseline_drift_check"),
        ("y", "completeness_check"),
        ("kind", "categorical_values_check"),
        ("kind", "baseline_drift_check"),
    } <= found
    assert ("y", "baseline_drift_check") not in found
    message = (base / "output" / "message").read_text()
    assert message.startswith(f"CompletedWithViolations: Job completed successfully with {len(violations)} violations.")
    assert "1 corrupt record(s) skipped" in message
    metrics = [
        json.loads(line)
        for line in (base / "output" / "metrics" / "cloudwatch" / "cloudwatch_metrics.jsonl").read_text().splitlines()
    ]
    names = {m["MetricName"] for m in metrics}
    assert {"feature_data_x", "feature_non_null_y", "feature_baseline_drift_x", "feature_baseline_drift_kind"} <= names
    assert metrics[0]["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"
    assert metrics[0]["Dimensions"] == [
        {"Name": "Endpoint", "Value": "ep"},
        {"Name": "MonitoringSchedule", "Value": "hourly"},
    ]
    non_null_y = next(m for m in metrics if m["MetricName"] == "feature_non_null_y")
    assert non_null_y["Value"] == pytest.approx(0.9)
    report = out / "drift_report"
    assert (report / "index.html").read_text().count("<img") == 4
    assert (report / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_monitoring_empty_window_completes(tmp_path, baseline) -> None:
    base, _ = monitor(tmp_path, baseline, [capture_line("1,2,a", "0", "e1", when="2024-05-01T08:00:00Z")])
    out = base / "processing" / "resultdata"
    assert json.loads((out / "constraint_violations.json").read_text()) == {"violations": []}
    assert (base / "output" / "message").read_text().startswith("Completed: Job inputs had no data to analyze")


def test_schema_mismatch_reports_columns(tmp_path, baseline) -> None:
    base, _ = monitor(tmp_path, baseline, [capture_line("1,2", "0", f"e{i}") for i in range(5)])
    violations = json.loads((base / "processing" / "resultdata" / "constraint_violations.json").read_text())
    assert ("kind", "missing_column_check") in {
        (v["feature_name"], v["constraint_check_type"]) for v in violations["violations"]
    }


def test_bad_configuration_is_a_client_error(tmp_path) -> None:
    result = run_analyzer(tmp_path, {"dataset_format": "{not json"})
    assert result.returncode == 1
    assert (tmp_path / "output" / "message").read_text().startswith("ClientError: dataset_format is not JSON")
    missing = run_analyzer(tmp_path, {"dataset_format": CSV_FORMAT, "dataset_source": "/opt/ml/processing/nothing"})
    assert missing.returncode == 1
    assert "does not exist" in (tmp_path / "output" / "message").read_text()


def test_model_quality_baseline_and_monitoring(tmp_path) -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, size=300)
    prob = np.clip(truth * 0.5 + rng.uniform(size=300) * 0.5, 0, 1)
    base = tmp_path / "mq-baseline"
    data = base / "processing" / "input" / "baseline_dataset_input"
    data.mkdir(parents=True)
    (data / "eval.csv").write_text(
        "prob,label\n" + "\n".join(f"{p:.4f},{t}" for p, t in zip(prob, truth, strict=True)) + "\n"
    )
    common = {
        "analysis_type": "MODEL_QUALITY",
        "problem_type": "BinaryClassification",
        "probability_attribute": "prob",
        "probability_threshold_attribute": "0.5",
        "ground_truth_attribute": "label",
        "output_path": "/opt/ml/processing/output",
    }
    result = run_analyzer(base, {**common, "dataset_format": CSV_FORMAT})
    assert result.returncode == 0, result.stdout + result.stderr
    stats = json.loads((base / "processing" / "output" / "statistics.json").read_text())
    constraints = json.loads((base / "processing" / "output" / "constraints.json").read_text())
    assert stats["dataset"]["item_count"] == 300
    assert stats["binary_classification_metrics"]["accuracy"]["value"] > 0.7
    assert constraints["binary_classification_constraints"]["f1"]["comparison_operator"] == "LessThanThreshold"

    run = tmp_path / "mq-run"
    capture_dir = run / "processing" / "input" / "endpoint" / "ep"
    truth_dir = run / "processing" / "groundtruth" / "2024" / "05" / "01" / "12"
    capture_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    flipped = 1 - truth  # the model is now always wrong about the label
    (capture_dir / "a.jsonl").write_text(
        "\n".join(
            capture_line("1,2", f"{p:.4f}", f"ev{i}", inference_id=f"inf{i}" if i % 2 else None)
            for i, p in enumerate(prob)
        )
        + "\n"
    )
    (truth_dir / "gt.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "groundTruthData": {"data": str(t), "encoding": "CSV"},
                    "eventMetadata": {"eventId": f"inf{i}" if i % 2 else f"ev{i}"},
                    "eventVersion": "0",
                }
            )
            for i, t in enumerate(flipped)
            if i < 290
        )
        + "\n"
    )
    (run / "processing" / "baseline").mkdir(parents=True)
    (run / "processing" / "baseline" / "constraints.json").write_text(json.dumps(constraints))
    monitoring = {
        **common,
        "probability_attribute": "0",
        "ground_truth_attribute": "",
        "dataset_format": CAPTURE_FORMAT,
        "dataset_source": "/opt/ml/processing/input/endpoint",
        "baseline_constraints": "/opt/ml/processing/baseline/constraints.json",
        "output_path": "/opt/ml/processing/resultdata",
        "sagemaker_endpoint_name": "ep",
    }
    result = run_analyzer(run, monitoring)
    assert result.returncode == 0, result.stdout + result.stderr
    merged = json.loads((run / "processing" / "resultdata" / "statistics.json").read_text())
    assert merged["dataset"]["item_count"] == 290
    violations = json.loads((run / "processing" / "resultdata" / "constraint_violations.json").read_text())
    assert {"accuracy", "f1"} <= {v["metric_name"] for v in violations["violations"]}
    assert (run / "output" / "message").read_text().startswith("CompletedWithViolations:")
    records = (run / "output" / "metrics" / "cloudwatch" / "cloudwatch_metrics.jsonl").read_text()
    assert '"Namespace": "aws/sagemaker/Endpoints/model-metrics"' in records
