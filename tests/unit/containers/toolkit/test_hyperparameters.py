"""Contract tests: declarative hyperparameter specs (hyperparameters.py,
docs/reference/container-contract.md#hyperparametersjson)."""

from __future__ import annotations

import pytest

from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import (
    BooleanHyperparameter,
    CategoricalHyperparameter,
    ContinuousHyperparameter,
    CustomHyperparameter,
    HyperparameterSpec,
    IntegerHyperparameter,
    Interval,
    unquote,
)


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",")]


SPEC = HyperparameterSpec(
    parameters=[
        IntegerHyperparameter("num_round", required=True, range=Interval(min=1), tunable=True),
        ContinuousHyperparameter("eta", default=0.3, range=Interval(min=0, max=1), tunable=True, description="lr"),
        IntegerHyperparameter("max_depth", default=6, range=Interval(min=0)),
        CategoricalHyperparameter(
            "objective", default="reg:squarederror", choices=("binary:logistic", "reg:squarederror")
        ),
        CategoricalHyperparameter("tree_method", choices=("auto", "hist", "GPU_hist"), case_sensitive=False),
        BooleanHyperparameter("verbose", default=False),
        CustomHyperparameter("weights", parser=_floats, valid_text="comma-separated floats"),
    ],
    aliases={"learning_rate": "eta"},
    ignored=("hidden_key",),
)


def test_interval_text_and_bounds() -> None:
    assert str(Interval(min=1)) == "[1, inf)"
    assert str(Interval(min=0, max=1)) == "[0, 1]"
    assert str(Interval(min=0, max=1, min_open=True)) == "(0, 1]"
    assert str(Interval(max=0.5, max_open=True)) == "(-inf, 0.5)"
    closed = Interval(min=0, max=1)
    assert 0 in closed and 1 in closed and 0.5 in closed
    assert -0.01 not in closed and 1.01 not in closed
    half_open = Interval(min=0, max=1, min_open=True, max_open=True)
    assert 0 not in half_open and 1 not in half_open and 0.5 in half_open
    assert float("nan") not in Interval()


@pytest.mark.parametrize(("raw", "expected"), [('"x"', "x"), ("x", "x"), ('"', '"'), ('"1"', "1"), (" 2 ", "2")])
def test_unquote(raw: str, expected: str) -> None:
    assert unquote(raw) == expected


def test_plain_and_json_quoted_values_parse_the_same() -> None:
    plain = SPEC.validate({"num_round": "10", "eta": "0.2", "objective": "binary:logistic"})
    quoted = SPEC.validate({"num_round": '"10"', "eta": "0.2", "objective": '"binary:logistic"'})
    assert plain == quoted
    assert plain["num_round"] == 10 and isinstance(plain["num_round"], int)
    assert plain["eta"] == 0.2
    assert plain["objective"] == "binary:logistic"


def test_defaults_fill_in() -> None:
    values = SPEC.validate({"num_round": "5"})
    assert values == {"num_round": 5, "eta": 0.3, "max_depth": 6, "objective": "reg:squarederror", "verbose": False}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("True", True),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("False", False),
        ("false", False),
        ('"false"', False),
        ("0", False),
    ],
)
def test_booleans_in_either_case(raw: str, expected: bool) -> None:
    assert SPEC.validate({"num_round": "1", "verbose": raw})["verbose"] is expected


def test_integer_accepts_integral_floats_and_rejects_fractions() -> None:
    assert SPEC.validate({"num_round": "1e2"})["num_round"] == 100
    assert SPEC.validate({"num_round": "3.0"})["num_round"] == 3
    with pytest.raises(UserError, match=r"^Hyperparameter num_round: could not parse value '2.5' as integer"):
        SPEC.validate({"num_round": "2.5"})


def test_out_of_range_message_names_parameter_value_and_range() -> None:
    with pytest.raises(UserError) as info:
        SPEC.validate({"num_round": "10", "eta": "1.5"})
    assert info.value.message == "Hyperparameter eta: value 1.5 not in range [0, 1]"
    with pytest.raises(UserError, match=r"^Hyperparameter num_round: value 0 not in range \[1, inf\)$"):
        SPEC.validate({"num_round": "0"})


def test_unparseable_number_names_the_allowed_range() -> None:
    with pytest.raises(UserError) as info:
        SPEC.validate({"num_round": "10", "eta": "fast"})
    assert info.value.message == "Hyperparameter eta: could not parse value 'fast' as continuous; allowed range [0, 1]"
    with pytest.raises(UserError, match="could not parse value 'nan' as continuous"):
        SPEC.validate({"num_round": "10", "eta": "nan"})
    with pytest.raises(UserError, match=r"value 'maybe' as categorical; allowed range \[true, false\]"):
        SPEC.validate({"num_round": "10", "verbose": "maybe"})


def test_categorical_lists_the_choices() -> None:
    with pytest.raises(UserError) as info:
        SPEC.validate({"num_round": "1", "objective": "multi:softmax"})
    assert info.value.message == (
        "Hyperparameter objective: value multi:softmax not in range [binary:logistic, reg:squarederror]"
    )


def test_case_insensitive_categorical_returns_the_declared_choice() -> None:
    assert SPEC.validate({"num_round": "1", "tree_method": "HIST"})["tree_method"] == "hist"
    assert SPEC.validate({"num_round": "1", "tree_method": "gpu_hist"})["tree_method"] == "GPU_hist"


def test_custom_parameter_and_its_message() -> None:
    assert SPEC.validate({"num_round": "1", "weights": "1,2.5"})["weights"] == [1.0, 2.5]
    with pytest.raises(UserError) as info:
        SPEC.validate({"num_round": "1", "weights": "1,x"})
    assert info.value.message == "Hyperparameter weights: value 1,x not in range comma-separated floats"


def test_aliases_map_to_the_canonical_name() -> None:
    assert SPEC.validate({"num_round": "1", "learning_rate": "0.05"})["eta"] == 0.05
    with pytest.raises(UserError, match=r"^Hyperparameter eta: value 2 not in range"):
        SPEC.validate({"num_round": "1", "learning_rate": "2"})


def test_extraneous_and_missing() -> None:
    with pytest.raises(UserError, match=r"^Extraneous hyperparameter found: colsample$"):
        SPEC.validate({"num_round": "1", "colsample": "0.5"})
    with pytest.raises(UserError, match=r"^Missing required hyperparameter: num_round$"):
        SPEC.validate({"eta": "0.1"})


def test_platform_keys_are_accepted_and_dropped() -> None:
    raw = {
        "num_round": "1",
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://b/k"',
        "hidden_key": "x",
        "_tuning_objective_metric": "validation:auc",
    }
    values = SPEC.validate(raw)
    assert set(values) == {"num_round", "eta", "max_depth", "objective", "verbose"}


def test_tuning_objective_metric_is_validated_when_declared() -> None:
    spec = HyperparameterSpec(
        [CategoricalHyperparameter("_tuning_objective_metric", choices=("validation:auc", "validation:rmse"))]
    )
    assert spec.validate({"_tuning_objective_metric": "validation:auc"}) == {
        "_tuning_objective_metric": "validation:auc"
    }
    with pytest.raises(UserError, match="value validation:map not in range"):
        spec.validate({"_tuning_objective_metric": "validation:map"})


def test_cross_parameter_check_runs_on_typed_values() -> None:
    def check(values: dict) -> None:
        if values["max_depth"] > values["num_round"]:
            raise UserError("max_depth must not exceed num_round")

    spec = HyperparameterSpec(SPEC.parameters, check=check)
    with pytest.raises(UserError, match="max_depth must not exceed num_round"):
        spec.validate({"num_round": "2"})


def test_describe_gives_the_api_hyperparameter_specification() -> None:
    described = {item["Name"]: item for item in SPEC.describe()}
    assert described["num_round"] == {"Name": "num_round", "Type": "Integer", "IsTunable": True, "IsRequired": True}
    assert described["eta"] == {
        "Name": "eta",
        "Type": "Continuous",
        "IsTunable": True,
        "IsRequired": False,
        "Description": "lr",
        "DefaultValue": "0.3",
        "Range": {"ContinuousParameterRangeSpecification": {"MinValue": "0", "MaxValue": "1"}},
    }
    assert described["objective"]["Range"] == {
        "CategoricalParameterRangeSpecification": {"Values": ["binary:logistic", "reg:squarederror"]}
    }
    assert described["verbose"]["Type"] == "Categorical"
    assert described["weights"]["Type"] == "FreeText"
    assert [item["Name"] for item in SPEC.describe()] == [p.name for p in SPEC.parameters]


def test_describe_is_accepted_by_the_api_model() -> None:
    botocore_session = pytest.importorskip("botocore.session")
    from botocore.validate import ParamValidator

    model = botocore_session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("HyperParameterSpecifications")
    report = ParamValidator().validate(SPEC.describe(), shape)
    assert not report.has_errors(), report.generate_report()
