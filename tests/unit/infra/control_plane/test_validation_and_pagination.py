from datetime import UTC, datetime, timedelta

import botocore.session
import pytest

from infra.control_plane.core.errors import ValidationException, as_service_error
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request

MODEL = botocore.session.get_session().get_service_model("sagemaker")


def test_pattern_violation_has_the_aws_message():
    shape = MODEL.operation_model("DescribeTrainingJob").input_shape
    with pytest.raises(ValidationException) as raised:
        validate_request({"TrainingJobName": "bad_name"}, shape)
    assert raised.value.message == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_max_length_and_enum_violations_are_counted():
    shape = MODEL.operation_model("ListTrainingJobs").input_shape
    with pytest.raises(ValidationException) as raised:
        validate_request({"NameContains": "x" * 64, "SortBy": "Size"}, shape)
    assert raised.value.message.startswith("2 validation errors detected:")


def test_serializer_drops_empty_structures_and_unknown_keys():
    shape = MODEL.operation_model("DescribeModel").output_shape
    when = datetime(2026, 1, 1, tzinfo=UTC)
    body = shape_response({"ModelName": "m", "VpcConfig": {}, "Bogus": 1, "CreationTime": when}, shape)
    assert body == {"ModelName": "m", "CreationTime": when.timestamp()}


def test_paginator_filters_sorts_and_pages():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [(f"job-{i}", start + timedelta(minutes=i), "Completed" if i % 2 else "Failed") for i in range(7)]
    spec = ListSpec(name=lambda t: t[0], creation_time=lambda t: t[1], status=lambda t: t[2])
    page, token = paginate(items, {"StatusEquals": "Completed", "MaxResults": 2}, spec)
    assert [t[0] for t in page] == ["job-5", "job-3"]
    page, token = paginate(items, {"StatusEquals": "Completed", "MaxResults": 2, "NextToken": token}, spec)
    assert [t[0] for t in page] == ["job-1"] and token is None
    after = (start + timedelta(minutes=4)).timestamp()
    page, _ = paginate(items, {"CreationTimeAfter": after, "SortOrder": "Ascending"}, spec)
    assert [t[0] for t in page] == ["job-5", "job-6"]
    with pytest.raises(ValidationException):
        paginate(items, {"NextToken": "%%%"}, spec)


def test_empty_structures_stay_in_lists_where_aws_keeps_them():
    """An Athena row's NULL datum is ``{}``: dropping it would shift every later column of the row."""
    shape = botocore.session.get_session().get_service_model("athena").operation_model("GetQueryResults").output_shape
    rows = [{"Data": [{"VarCharValue": "c1"}, {}, {"VarCharValue": "true"}]}]
    body = shape_response({"ResultSet": {"Rows": rows}}, shape)
    assert body["ResultSet"]["Rows"] == [{"Data": [{"VarCharValue": "c1"}, {}, {"VarCharValue": "true"}]}]


def test_a_front_answers_a_service_error_as_itself_and_a_bug_as_internal_failure_naming_only_its_type(caplog):
    refused = ValidationException("bad")
    assert as_service_error(refused, "AmazonAthena.GetQueryResults") is refused
    with caplog.at_level("ERROR"):
        error = as_service_error(KeyError("/home/someone/secret"), "AmazonAthena.GetQueryResults")
    assert (error.status, error.to_body()) == (
        500,
        {"__type": "InternalFailure", "message": "Internal error while handling GetQueryResults: KeyError"},
    )
    assert "AmazonAthena.GetQueryResults failed" in caplog.text and "Traceback" not in error.message
