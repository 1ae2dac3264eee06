"""``make score``'s feature reading (``pipelines/commands/score.py``): the test rows' features from the online store,
in the model's column order, 100 identifiers a BatchGetRecord call; rows without a record are an error."""

import time

import pytest

from pipelines.commands.score import OnlineFeaturesError, online_features, read_scoring_rows, write_features_csv
from tests.integration.feature_store_helpers import client, create_group, record


def test_features_come_from_the_online_store_in_column_order(sm, s3, bucket, stack_url, tmp_path):
    name = create_group(sm, bucket, offline=False)
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    now = time.time()
    for i in range(150):  # two BatchGetRecord calls
        fsr.put_record(FeatureGroupName=name, Record=record(f"c{i}", now, age=i, balance=i / 4, segment="ab"[i % 2]))
    prefix = f"scoring-{name}"
    rows_csv = "applicant_id,risk\n" + "".join(f"c{i},{i % 2}\n" for i in range(150))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/online_scoring.csv", Body=rows_csv.encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/feature_names.json", Body=b'["balance", "age"]')
    rows, names = read_scoring_rows(s3, f"s3://{bucket}/{prefix}/")
    assert names == ["balance", "age"] and rows[3] == ("c3", "1")
    features = online_features(fsr, name, [identifier for identifier, _ in rows], names)
    assert features["c7"] == ["1.75", "7"] and len(features) == 150
    write_features_csv(tmp_path / "test.csv", rows, features)
    assert (tmp_path / "test.csv").read_text().splitlines()[7] == "1,1.75,7"
    with pytest.raises(OnlineFeaturesError, match="1 of 2 rows have no record"):
        online_features(fsr, name, ["c1", "nobody"], names)
