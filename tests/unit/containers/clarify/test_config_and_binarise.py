"""analysis_config.json validation (errors name the field) and the rules of
docs/clarify.md#binarisation-smclarifys-rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from containers.clarify.bias.binarise import DataType, binarise_label, binarise_predicted, column_type, facet_groups
from containers.clarify.config import POST_TRAINING_METRICS, PRE_TRAINING_METRICS, parse_config
from containers.toolkit.errors import UserError

BIAS: dict[str, Any] = {
    "dataset_type": "text/csv",
    "label": "y",
    "label_values_or_threshold": [1],
    "facet": [{"name_or_index": "sex", "value_or_threshold": ["female"]}],
    "methods": {"pre_training_bias": {"methods": "all"}, "report": {"name": "report", "title": "Analysis Report"}},
}


def test_all_expands_to_every_metric_and_defaults_apply() -> None:
    config = parse_config(
        {**BIAS, "methods": {**BIAS["methods"], "post_training_bias": {"methods": "all"}}, "predicted_label": "p"}
    )
    assert config.pre_training_methods == PRE_TRAINING_METRICS
    assert config.post_training_methods == POST_TRAINING_METRICS
    assert config.probability_threshold == 0.5
    assert config.report is not None and config.report.title == "Analysis Report"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"methods": {"pre_training_bias": {"methods": ["CI", "XYZ"]}}}, "methods.pre_training_bias.methods"),
        ({"dataset_type": "text/plain"}, "dataset_type"),
        ({"label": None}, "label"),
        ({"facet": None}, "facet"),
        ({"label_values_or_threshold": []}, "label_values_or_threshold"),
        ({"methods": {"report": {}}}, "methods"),
        ({"methods": {"post_training_bias": {"methods": "all"}}}, "predictor"),
        ({"methods": {"shap": {"agg_method": "max"}}, "predictor": {"endpoint_name": "e"}}, "methods.shap.agg_method"),
        (
            {"methods": {"shap": {"baseline": [[1]], "num_clusters": 2}}, "predictor": {"endpoint_name": "e"}},
            "num_clusters",
        ),
        ({"methods": {"pdp": {"grid_resolution": 5}}, "predictor": {"endpoint_name": "e"}}, "methods.pdp.features"),
        ({"methods": {"shap": {}}, "predictor": {"instance_type": "ml.m5.xlarge"}}, "predictor"),
        (
            {"methods": {"shap": {}}, "predictor": {"endpoint_name": "e", "endpoint_name_prefix": "bad_prefix"}},
            "prefix",
        ),
    ],
)
def test_bad_config_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        parse_config({**BIAS, **change})


def test_predictor_content_types_default_to_dataset_type() -> None:
    config = parse_config(
        {**BIAS, "methods": {"shap": {}}, "predictor": {"model_name": "m", "instance_type": "ml.m5.xlarge"}}
    )
    assert config.predictor is not None
    assert (config.predictor.content_type, config.predictor.accept_type) == ("text/csv", "text/csv")
    assert config.predictor.endpoint_name_prefix == "sm-clarify"


def test_label_values_list_and_retry_with_the_columns_type() -> None:
    outcome = binarise_label(pd.Series(["1", "0", "2", "1"] * 30), [1])
    assert outcome.positive.tolist() == [True, False, False, True] * 30
    assert outcome.value_or_threshold == "1"
    several = binarise_label(pd.Series(["good", "bad", "ok"] * 10), ["good", "ok"])
    assert several.positive.tolist() == [True, False, True] * 10
    assert several.value_or_threshold == "good,ok"


def test_label_threshold_is_exclusive_and_reported_as_an_interval() -> None:
    series = pd.Series(np.arange(100))  # 100 % unique integers: continuous
    outcome = binarise_label(series, [40])
    assert outcome.data_type is DataType.CONTINUOUS
    assert outcome.value_or_threshold == "(40, 99]"
    assert int(outcome.positive.sum()) == 59 and not outcome.positive[40] and outcome.positive[41]


def test_column_type_rules() -> None:
    assert column_type(pd.Series([0, 1] * 50), [1]) is DataType.CATEGORICAL  # 2 % unique
    assert column_type(pd.Series(range(100)), [1]) is DataType.CONTINUOUS
    assert column_type(pd.Series([0.0, 1.0] * 50), [1]) is DataType.CONTINUOUS  # floats always
    assert column_type(pd.Series(range(100)), [1, 2]) is DataType.CATEGORICAL  # several values
    assert column_type(pd.Series(["a", "b"] * 50), ["a"]) is DataType.CATEGORICAL


def test_facet_one_vs_rest_values_and_threshold() -> None:
    series = pd.Series(["m", "f", "x", "f"] * 25)
    groups = facet_groups(series, None, "sex")
    assert [g.value_or_threshold for g in groups] == ["m", "f", "x"]
    assert groups[1].sensitive.tolist()[:4] == [False, True, False, True]
    assert facet_groups(series, ["f", "x"], "sex")[0].value_or_threshold == "f,x"
    ages = facet_groups(pd.Series(np.linspace(20.0, 70.0, 51)), [40], "age")[0]
    assert ages.value_or_threshold == "(40.0, 70.0]"
    assert int(ages.sensitive.sum()) == 30


def test_facet_value_absent_from_the_data_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"facet 'sex' value\(s\) \['unknown'\] do not occur"):
        facet_groups(pd.Series(["m", "f"] * 10), ["unknown"], "sex")


def test_predicted_labels_use_the_labels_positive_values() -> None:
    label = binarise_label(pd.Series([1, 0] * 50), [1])
    assert binarise_predicted(pd.Series([1, 1, 0, 0] * 25), label).tolist() == [True, True, False, False] * 25
    with pytest.raises(UserError, match="No predicted label is positive"):
        binarise_predicted(pd.Series([0] * 100), label)
