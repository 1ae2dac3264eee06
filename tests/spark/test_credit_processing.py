"""The feature job's processing entry (``credit.py --processing``): the outputs the credit-risk pipeline reads."""

from __future__ import annotations

import csv
import subprocess
import sys

import pandas as pd
import pytest

from pipelines.credit_risk.encoding import build_table
from pipelines.credit_risk.scripts import training_set
from spark_jobs.errors import InputDataError
from spark_jobs.features import processing

DATA = "data/german_credit.csv"


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def outputs(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("processing")
    counts = processing.run(processing.parse_args(["--processing", "--input", DATA, "--output", str(base)]))
    return base, counts


def test_every_output_is_one_csv_file_with_the_split_sizes(outputs):
    base, counts = outputs
    assert counts == {
        "train": 700,
        "validation": 150,
        "test": 150,
        "test_features": 150,
        "labelled_train": 700,
        "labelled_test": 150,
    }
    for name, rows in counts.items():
        assert [p.name for p in (base / name).iterdir()] == [f"{name}.csv"]
        assert len(_rows(base / name / f"{name}.csv")) == rows + name.startswith("labelled_")


def test_columns_and_order_match_the_pandas_encoding_the_monitor_uses(outputs):
    base, _ = outputs
    header, *body = _rows(base / "labelled_train" / "labelled_train.csv")
    expected = list(build_table(pd.read_csv(DATA)).columns)
    assert header == expected and header[0] == "risk" and "sex" in header
    assert all(name == name.lower() and name.replace("_", "").isalnum() for name in header)  # Spark-compliant
    assert {len(row) for row in body} == {len(header)}
    sex = header.index("sex")
    assert {row[sex] for row in body} == {"0", "1"}
    assert all("." not in cell for row in body for cell in row)  # whole numbers written as integers


def test_label_first_without_header_and_test_features_drop_only_the_label(outputs):
    base, _ = outputs
    train = _rows(base / "train" / "train.csv")
    assert {row[0] for row in train} == {"0", "1"} and train[0][0] in ("0", "1")
    test = _rows(base / "test" / "test.csv")
    assert _rows(base / "test_features" / "test_features.csv") == [row[1:] for row in test]
    assert _rows(base / "labelled_test" / "labelled_test.csv")[1:] == test
    assert _rows(base / "labelled_train" / "labelled_train.csv")[1:] == train


def test_each_split_keeps_the_share_of_good_risks(outputs):
    base, _ = outputs
    for name in ("train", "validation", "test"):
        labels = [row[0] for row in _rows(base / name / f"{name}.csv")]
        assert labels.count("1") / len(labels) == pytest.approx(0.7)


@pytest.mark.parametrize("format_value", [processing.format_value, training_set.format_value])
def test_cells_are_integers_when_whole_and_empty_when_missing(format_value):
    """The feature job and the TrainingSet step's script (which runs alone in its container, so it keeps its own
    copy) write the same cells."""
    assert [format_value(v) for v in (1.0, 0.0, 2319.5, None, float("nan"), 7)] == ["1", "0", "2319.5", "", "", "7"]


def test_an_empty_input_channel_is_a_clear_error(spark, tmp_path):
    config = processing.parse_args(["--processing", "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    with pytest.raises(InputDataError, match="no CSV input"):
        processing.run(config)


def test_credit_py_dispatches_processing_mode_without_pyarrow():
    """The processing entry must not import the CLI's pyarrow/numpy/boto3 modules (AWS's Spark image lacks them)."""
    code = (
        "import sys, runpy; sys.modules['pyarrow'] = None; sys.modules['numpy'] = None; sys.modules['boto3'] = None; "
        "sys.argv = ['credit.py', '--processing', '--help']; runpy.run_path('spark_jobs/features/credit.py', "
        "run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    usage = " ".join(done.stdout.split())
    assert "[--processing]" in usage and "(default: /opt/ml/processing/input)" in usage
