"""BatchPutMetrics' quick check says yes only where the generic validator does (docs/experiments.md#metrics)."""

import copy

import pytest

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.validation import validate_request
from infra.control_plane.experiments.sagemaker_metrics import metrics_model, put_metrics_form

NOW = 1_765_000_000.5
GOOD = {
    "TrialComponentName": "run-1",
    "MetricData": [
        {"MetricName": "loss", "Value": 0.5, "Step": 0, "Timestamp": NOW},
        {"MetricName": "validation:auc", "Value": 1, "Timestamp": int(NOW)},
        {"MetricName": "loss", "Value": float("nan"), "Step": 3, "Timestamp": NOW},  # a point rule, not a shape rule
    ],
}


def _shape():
    return metrics_model().operation_model("BatchPutMetrics").input_shape


def _changed(path, value):
    request = copy.deepcopy(GOOD)
    target = request
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return request


_DROP = object()
REFUSED = [
    _changed(("TrialComponentName",), "Run_1"),  # outside the model's pattern
    _changed(("TrialComponentName",), "r" * 121),
    _changed(("TrialComponentName",), 7),
    _changed(("TrialComponentName",), _DROP),
    _changed(("MetricData",), []),
    _changed(("MetricData",), [GOOD["MetricData"][0]] * 11),
    _changed(("MetricData",), {"MetricName": "loss"}),
    _changed(("Extra",), 1),
    _changed(("MetricData", 0, "MetricName"), ""),
    _changed(("MetricData", 0, "MetricName"), "m" * 256),
    _changed(("MetricData", 0, "MetricName"), "a\x00b"),
    _changed(("MetricData", 0, "MetricName"), _DROP),
    _changed(("MetricData", 0, "Timestamp"), _DROP),
    _changed(("MetricData", 0, "Timestamp"), None),
    _changed(("MetricData", 0, "Timestamp"), 1e300),
    _changed(("MetricData", 0, "Value"), _DROP),
    _changed(("MetricData", 0, "Value"), "1.0"),
    _changed(("MetricData", 0, "Step"), -1),
    _changed(("MetricData", 0, "Step"), 1.5),
    _changed(("MetricData", 0, "Step"), None),
    _changed(("MetricData", 0, "Other"), 1),
]


def test_the_usual_request_is_accepted_by_both():
    validate_request(GOOD, _shape())
    assert put_metrics_form(_shape()).accepts(GOOD)


@pytest.mark.parametrize("request_params", REFUSED)
def test_a_request_the_generic_validator_refuses_is_not_waved_through(request_params):
    with pytest.raises(ValidationException):
        validate_request(request_params, _shape())
    assert not put_metrics_form(_shape()).accepts(request_params)


def test_a_request_the_check_does_not_know_goes_to_the_generic_validator():
    iso = _changed(("MetricData", 0, "Timestamp"), "2025-12-06T10:00:00Z")  # valid, but not the usual form
    validate_request(iso, _shape())
    assert not put_metrics_form(_shape()).accepts(iso)
