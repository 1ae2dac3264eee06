"""The monitor demo's data (``pipelines/library/monitor_demo/monitor_data.py``): the baseline is the pipeline's
``labelled_train`` split and the traffic its ``labelled_test`` split, read where the ``Features`` step wrote them.

The splits here are German credit rows encoded the way the step writes them (header, label first, whole numbers as
integers); the S3 client is a small in-memory fake, so nothing is started.
"""

import io

import numpy as np
import pandas as pd
import pytest

from pipelines.credit_risk.encoding import build_table
from pipelines.library.monitor_demo import monitor_data as data

PREFIX = "credit-risk/features"


def _split_csv(table):
    return "\n".join([",".join(table.columns), *data.csv_lines(table)]) + "\n"


@pytest.fixture(scope="module")
def tables():
    """Rows 0-59 as the training split and 60-89 as the test split, one encoding (levels from every row)."""
    table = build_table(pd.read_csv(data.DATASET, nrows=90))
    return table.iloc[:60].reset_index(drop=True), table.iloc[60:].reset_index(drop=True)


class FakeS3:
    """``list_objects_v2`` (paginated) and ``get_object`` over a dict of keys in one bucket."""

    def __init__(self, bucket, objects):
        self.bucket, self.objects = bucket, objects

    def get_paginator(self, operation):
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix):
        keys = [k for k in self.objects if Bucket == self.bucket and k.startswith(Prefix)]
        return [{"Contents": [{"Key": k} for k in keys]}] if keys else [{}]

    def get_object(self, Bucket, Key):
        return {"Body": io.BytesIO(self.objects[Key].encode())}


def _splits(tables, **extra):
    train, test = tables
    objects = {
        f"{PREFIX}/labelled_train/labelled_train.csv": _split_csv(train),
        f"{PREFIX}/labelled_test/labelled_test.csv": _split_csv(test),
        # other outputs of the step, which must not be mistaken for the two labelled splits
        f"{PREFIX}/test/test.csv": _split_csv(train.head(5)),
        f"{PREFIX}/labelled_test_old/labelled_test.csv": _split_csv(train.head(5)),
        **extra,
    }
    return data.S3Splits(FakeS3("bucket", objects), "bucket")


def test_holdout_rows_are_the_labelled_test_split_and_the_baseline_the_training_split(tables):
    train, test = tables
    loaded = data.load_splits(_splits(tables))

    assert loaded.columns == list(test.columns[1:])
    pd.testing.assert_frame_equal(loaded.train, train)
    assert len(loaded.holdout_raw) == len(test) == 30
    assert loaded.holdout_raw[data.LABEL].tolist() == test[data.LABEL].astype(int).tolist()
    # encoded again, the traffic is exactly the test split's rows (so none of them is a training row)
    traffic = data.encode(loaded.holdout_raw, loaded.columns)
    pd.testing.assert_frame_equal(traffic, test[loaded.columns])
    assert data.csv_lines(traffic) == data.csv_lines(test.drop(columns=[data.LABEL]))
    assert data.continuous_columns(loaded.train, max_categories=10) == ["credit_amount", "duration", "age"]


def test_drifted_traffic_is_built_on_the_test_split(tables):
    _, test = tables
    loaded = data.load_splits(_splits(tables))
    normal = data.encode(loaded.holdout_raw, loaded.columns)
    drifted = data.encode(data.drifted(loaded.holdout_raw), loaded.columns)

    purpose = [c for c in loaded.columns if c.startswith("purpose__")]
    assert (drifted[purpose].sum(axis=1) == 0).any()  # the new purpose has no column
    assert (drifted["job"] == data.NEW_JOB).any()
    assert drifted["age"].isna().any() and drifted["duration"].isna().any()
    amounts = drifted["credit_amount"].dropna()
    assert np.allclose(amounts, (normal["credit_amount"] * 2.5 + 2000).round())
    assert len(drifted) == len(test)


def test_missing_split_names_the_prefix_and_the_make_target(tables):
    train, _ = tables
    only_train = data.S3Splits(
        FakeS3("bucket", {f"{PREFIX}/labelled_train/labelled_train.csv": _split_csv(train)}), "bucket"
    )
    with pytest.raises(data.SplitsError) as raised:
        data.load_splits(only_train)
    message = str(raised.value)
    assert "s3://bucket/credit-risk/features/labelled_test/" in message
    assert "run `make pipeline` first" in message


def test_splits_of_another_pipeline_name_are_read_from_its_prefix(tables):
    train, test = tables
    objects = {
        "nightly/features/labelled_train/part-1.csv": _split_csv(train.iloc[:40]),
        "nightly/features/labelled_train/part-2.csv": _split_csv(train.iloc[40:]),
        "nightly/features/labelled_test/labelled_test.csv": _split_csv(test),
    }
    loaded = data.load_splits(data.S3Splits(FakeS3("b", objects), "b", pipeline="nightly"))
    pd.testing.assert_frame_equal(loaded.train, train)
    with pytest.raises(data.SplitsError, match="s3://b/credit-risk/features/labelled_train/"):
        data.load_splits(data.S3Splits(FakeS3("b", objects), "b"))
