"""Selective execution (``SelectiveExecutionConfig`` on StartPipelineExecution) through boto3."""

import botocore.exceptions
import pytest

from tests.pipelines.conftest import create, definition, processing, run, steps_of


def _selective(steps, source=None):
    config = {"SelectedSteps": [{"StepName": name} for name in steps]}
    if source is not None:
        config["SourcePipelineExecutionArn"] = source
    return {"SelectiveExecutionConfig": config}


def test_only_the_selected_step_runs_and_reuses_the_source_results(sm, linear):
    name = create(sm, linear)
    source, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    before = steps_of(sm, source)

    arn, described = run(sm, name, **_selective(["C"], source))
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert described["SelectiveExecutionConfig"] == {
        "SelectedSteps": [{"StepName": "C"}],
        "SourcePipelineExecutionArn": source,
    }
    after = steps_of(sm, arn)
    assert set(after) == {"A", "B", "C"}
    for reused in ("A", "B"):
        assert after[reused]["StepStatus"] == "Succeeded"
        assert after[reused]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": source}
        assert after[reused]["Metadata"] == before[reused]["Metadata"]
    assert "SelectiveExecutionResult" not in after["C"]
    assert after["C"]["StepStatus"] == "Succeeded"
    assert after["C"]["Metadata"]["ProcessingJob"]["Arn"] != before["C"]["Metadata"]["ProcessingJob"]["Arn"]
    assert f"/c-{arn.rsplit('/', 1)[-1]}-" in after["C"]["Metadata"]["ProcessingJob"]["Arn"]


def test_a_first_step_needs_no_source_and_the_rest_do_not_run(sm, linear):
    name = create(sm, linear)
    arn, described = run(sm, name, **_selective(["A"]))
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert set(steps_of(sm, arn)) == {"A"}


def test_a_failed_source_supplies_its_succeeded_steps(sm, code_uri, bucket):
    body = definition(
        [
            processing("Root", code_uri, bucket),
            processing("Broken", code_uri, bucket, env={"FAIL": "bad input column"}, DependsOn=["Root"]),
        ]
    )
    name = create(sm, body)
    source, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Failed"
    sm.update_pipeline(
        PipelineName=name,
        PipelineDefinition=definition(
            [processing("Root", code_uri, bucket), processing("Broken", code_uri, bucket, DependsOn=["Root"])]
        ),
    )
    arn, described = run(sm, name, **_selective(["Broken"], source))
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert steps_of(sm, arn)["Root"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": source}


@pytest.mark.parametrize(
    ("selected", "with_source", "message"),
    [
        (["Nope"], True, "Selected steps ['Nope'] are not in the pipeline definition"),
        (["A", "C"], True, "['B'] lie between"),
        (["C"], False, "SourcePipelineExecutionArn is required: the selected steps depend on steps that are not "),
        (["B", "B"], True, "names a step twice"),
    ],
)
def test_bad_selections_are_rejected(sm, linear, selected, with_source, message):
    name = create(sm, linear)
    source = None
    if with_source:
        source, _ = run(sm, name, **_selective(["A"]))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.start_pipeline_execution(PipelineName=name, **_selective(selected, source))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_a_source_must_have_ended_belong_to_the_pipeline_and_hold_the_inputs(sm, linear, code_uri, bucket):
    name, other = create(sm, linear), create(sm, linear)
    only_a, _ = run(sm, name, **_selective(["A"]))
    foreign, _ = run(sm, other, **_selective(["A"]))
    slow = create(sm, definition([processing("A", code_uri, bucket, env={"SLEEP": "3"})]))
    running = sm.start_pipeline_execution(PipelineName=slow)["PipelineExecutionArn"]
    cases = [
        (name, ["C"], only_a, "did not succeed in source pipeline execution"),
        (name, ["B"], foreign, "belongs to another pipeline"),
        (slow, ["A"], running, "it must be Succeeded or Failed"),
    ]
    for pipeline, selected, source, message in cases:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            sm.start_pipeline_execution(PipelineName=pipeline, **_selective(selected, source))
        assert caught.value.response["Error"]["Code"] == "ValidationException", message
        assert message in caught.value.response["Error"]["Message"]
    missing = f"{foreign[: foreign.rindex('/')]}/doesnotexist"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.start_pipeline_execution(PipelineName=name, **_selective(["B"], missing))
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"


def test_a_branch_step_needs_its_condition_to_have_taken_that_branch(sm, condition_branches):
    name = create(sm, condition_branches)
    low, described = run(sm, name, PipelineParameters=[{"Name": "Auc", "Value": "0.5"}])
    assert described["PipelineExecutionStatus"] == "Failed"  # the TooLow Fail step
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sm.start_pipeline_execution(PipelineName=name, **_selective(["Good"], low))
    assert "is in the If branch of Gate, which evaluated to False" in caught.value.response["Error"]["Message"]
    arn, described = run(sm, name, **_selective(["Gate", "Good"], low))
    # Eval is reused, so its AUC (0.5) is still below 0.7: Gate takes the Else branch, whose Fail step is not selected
    assert described["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_of(sm, arn)
    assert steps["Gate"]["Metadata"]["Condition"]["Outcome"] == "False"
    assert set(steps) == {"Eval", "Gate"}
