"""Known answers for the selective-execution checks on a definition (no stack)."""

import json

import pytest

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.pipeline_engine.definition import parse_definition
from infra.control_plane.pipeline_engine.pipeline_requests import SelectiveExecutionConfig
from infra.control_plane.pipeline_engine.selective_execution import reused_records, selected_steps


def _step(name, depends=()):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:noop"
    return {"Name": name, "Type": "Lambda", "FunctionArn": arn, "Arguments": {}, "DependsOn": list(depends)}


# A -> B -> D, A -> C -> D, D -> E
DIAMOND = parse_definition(
    json.dumps(
        {
            "Version": "2020-12-01",
            "Steps": [
                _step("A"),
                _step("B", ["A"]),
                _step("C", ["A"]),
                _step("D", ["B", "C"]),
                _step("E", ["D"]),
            ],
        }
    )
)


def _config(*names):
    return SelectiveExecutionConfig.model_validate({"SelectedSteps": [{"StepName": n} for n in names]})


@pytest.mark.parametrize(
    ("names", "expected"),
    [(("E", "D"), ("D", "E")), (("B",), ("B",)), (("A", "B", "C", "D"), ("A", "B", "C", "D"))],
)
def test_connected_selections_come_back_in_run_order(names, expected):
    assert selected_steps(DIAMOND, _config(*names)) == expected


@pytest.mark.parametrize(
    ("names", "between"), [(("A", "D"), "['B', 'C']"), (("B", "E"), "['D']"), (("A", "B", "D"), "['C']")]
)
def test_a_step_between_two_selected_steps_must_be_selected(names, between):
    with pytest.raises(ValidationException, match=f"{between[1:-1]}"):
        selected_steps(DIAMOND, _config(*names))


def test_without_a_source_only_steps_with_no_unselected_upstream_may_run():
    assert reused_records(DIAMOND, ("A", "B"), None, "arn:p") == {}
    with pytest.raises(ValidationException, match=r"depend on steps that are not selected \(B, C\)"):
        reused_records(DIAMOND, ("D",), None, "arn:p")
