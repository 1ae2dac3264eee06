from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from containers.model_monitor.config import DatasetFormat
from containers.model_monitor.data_quality.statistics import DatasetProfile
from containers.model_monitor.inputs.readers import read_dataset

CSV = """age,income,city,flag
1,10.5,paris,true
2,,london,false
3,30.0,paris,true
,40.25,,true
3,50,paris,false
"""


@pytest.fixture
def stats(tmp_path) -> dict:
    (tmp_path / "data.csv").write_text(CSV)
    profile = DatasetProfile()
    for table in read_dataset(tmp_path, DatasetFormat("csv", header=True)):
        profile.update(table)
    document = profile.to_json()
    return {"doc": document, **{f["name"]: f for f in document["features"]}}


def test_dataset_and_types(stats) -> None:
    assert stats["doc"]["version"] == 0.0
    assert stats["doc"]["dataset"] == {"item_count": 5}
    assert [f["name"] for f in stats["doc"]["features"]] == ["age", "income", "city", "flag"]
    assert stats["age"]["inferred_type"] == "Integral"
    assert stats["income"]["inferred_type"] == "Fractional"  # "50" mixed with decimals is still Fractional
    assert stats["city"]["inferred_type"] == "String"
    assert stats["flag"]["inferred_type"] == "String"  # Boolean is reported as String


def test_numeric_known_answers(stats) -> None:
    age = stats["age"]["numerical_statistics"]
    assert age["common"] == {"num_present": 4, "num_missing": 1}
    assert age["sum"] == 9.0
    assert age["mean"] == 2.25
    assert age["min"] == 1.0 and age["max"] == 3.0
    assert age["std_dev"] == pytest.approx(np.std([1, 2, 3, 3]))  # population std
    income = stats["income"]["numerical_statistics"]
    assert income["sum"] == pytest.approx(130.75)
    assert income["std_dev"] == pytest.approx(np.std([10.5, 30.0, 40.25, 50.0]))


def test_kll_buckets_and_sketch(stats) -> None:
    kll = stats["age"]["numerical_statistics"]["distribution"]["kll"]
    assert kll["sketch"] == {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[1.0, 2.0, 3.0, 3.0]]}
    buckets = kll["buckets"]
    assert len(buckets) == 10
    assert buckets[0] == {"lower_bound": 1.0, "upper_bound": 1.2, "count": 1.0}
    assert buckets[5]["lower_bound"] == 2.0 and buckets[5]["count"] == 1.0
    assert buckets[9]["upper_bound"] == 3.0 and buckets[9]["count"] == 2.0  # the last bucket includes max
    assert sum(b["count"] for b in buckets) == 4.0


def test_string_statistics(stats) -> None:
    city = stats["city"]["string_statistics"]
    assert city["common"] == {"num_present": 4, "num_missing": 1}
    assert city["distinct_count"] == 2.0
    assert city["distribution"]["categorical"]["buckets"] == [
        {"value": "paris", "count": 3},
        {"value": "london", "count": 1},
    ]


def test_sdk_fixture_population_std() -> None:
    """24 x 1, 21 x 2, 55 x 3: mean 2.31, population std 0.8330
    (docs/reference/model-monitor-files.md#statisticsjson)."""
    profile = DatasetProfile()
    values = ["1"] * 24 + ["2"] * 21 + ["3"] * 55
    profile.update(pa.table({"_c0": pa.array(values)}))
    numeric = profile.to_json()["features"][0]["numerical_statistics"]
    assert numeric["mean"] == pytest.approx(2.31)
    assert numeric["std_dev"] == pytest.approx(0.8330, abs=1e-4)


def test_type_inference_rules() -> None:
    profile = DatasetProfile()
    profile.update(
        pa.table(
            {
                "ints": pa.array(["1", "-2", "+3"]),
                "mixed": pa.array(["1", "x", "2.5"]),
                "exp": pa.array(["1e3", "2", None]),
                "empty": pa.array([None, None, None], type=pa.string()),
                "nan": pa.array(["nan", "1", "2"]),
            }
        )
    )
    types = {f["name"]: f["inferred_type"] for f in profile.to_json()["features"]}
    assert types == {"ints": "Integral", "mixed": "String", "exp": "Fractional", "empty": "Unknown", "nan": "String"}


def test_chunks_and_late_columns_count_missing() -> None:
    profile = DatasetProfile()
    profile.update(pa.table({"a": pa.array(["1", "2"])}))
    profile.update(pa.table({"a": pa.array(["3"]), "b": pa.array(["x"])}))
    features = {f["name"]: f for f in profile.to_json()["features"]}
    assert features["b"]["string_statistics"]["common"] == {"num_present": 1, "num_missing": 2}
    assert features["a"]["numerical_statistics"]["mean"] == 2.0


def test_parquet_types(tmp_path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"f": [1.0, 2.0, math.nan], "i": [1, 2, 3], "s": ["a", "b", None]}), tmp_path / "d.parquet")
    profile = DatasetProfile()
    for table in read_dataset(tmp_path, DatasetFormat("parquet")):
        profile.update(table)
    features = {f["name"]: f for f in profile.to_json()["features"]}
    assert features["f"]["inferred_type"] == "Fractional"
    assert features["f"]["numerical_statistics"]["mean"] == 1.5
    assert features["i"]["inferred_type"] == "Integral"
    assert features["s"]["string_statistics"]["common"]["num_missing"] == 1


def test_second_pass_for_late_strings() -> None:
    from containers.model_monitor.data_quality import profile as profile_module

    profile = DatasetProfile()
    chunks = [
        pa.table({"c": pa.array([str(i) for i in range(profile_module.NUMERIC_DISTINCT_CAP + 5)])}),
        pa.table({"c": pa.array(["word"])}),
    ]
    for table in chunks:
        profile.update(table)
    assert profile.recount_columns() == ["c"]
    profile.recount(iter(chunks), ["c"])
    feature = profile.to_json()["features"][0]
    assert feature["inferred_type"] == "String"
    assert feature["string_statistics"]["distinct_count"] == profile_module.NUMERIC_DISTINCT_CAP + 6
