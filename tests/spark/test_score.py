"""``python -m spark_jobs.endpoint_scoring.score`` against the fake runtime (throttles and 5xx included): every row
scored, in order."""

from __future__ import annotations

import json

import pytest

from spark_jobs.endpoint_scoring.score import main


@pytest.fixture
def runtime_env(fake_runtime, monkeypatch):
    for key, value in {
        "AWS_ENDPOINT_URL": fake_runtime.url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(key, value)
    return fake_runtime


def _split(tmp_path, rows: int):
    # label first, no header (the SageMaker CSV layout); the fake "scorer" answers id * 10 + sum(rest)
    path = tmp_path / "test" / "test.csv"
    path.parent.mkdir()
    path.write_text("".join(f"{i % 2},{i},{(i % 2) * 0.5}\n" for i in range(rows)))
    return path.parent


def test_score_cli_scores_the_split_in_order_and_reports_auc(spark, runtime_env, tmp_path, capsys):
    split, out = _split(tmp_path, 40), tmp_path / "scored"
    argv = ["--endpoint", "scorer", "--input", str(split), "--output", str(out), "--max-rows", "7"]
    assert main(argv, session=spark) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 40 and 0.0 <= summary["auc"] <= 1.0 and "accuracy_at_0.5" in summary
    rows = spark.read.parquet(str(out)).orderBy("_c1").collect()
    assert [r["prediction"] for r in rows] == [i * 10 + (i % 2) * 0.5 for i in range(40)]


def test_score_cli_missing_endpoint_exits_1_naming_it(spark, runtime_env, tmp_path, capsys):
    assert main(["--endpoint", "nope", "--input", str(_split(tmp_path, 3))], session=spark) == 1
    err = capsys.readouterr().err
    assert "EndpointNotFoundError" in err and "nope" in err


def test_score_cli_missing_input_exits_1(spark, runtime_env, tmp_path, capsys):
    assert main(["--endpoint", "scorer", "--input", str(tmp_path / "none")], session=spark) == 1
    assert "does not exist" in capsys.readouterr().err
