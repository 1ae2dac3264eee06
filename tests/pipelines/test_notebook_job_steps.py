"""NotebookJobStep built with the SDK: the notebook runs headlessly (papermill) with its parameters; the executed
copy and the notebook's files are uploaded as ``output.tar.gz``; a cell that raises fails the step naming the cell."""

import io
import json
import tarfile

import nbformat

from tests.integration.conftest import ROLE
from tests.pipelines.conftest import create, run, steps_of, unique

IMAGE = "542918446943.dkr.ecr.us-east-1.amazonaws.com/sagemaker-distribution-prod:1-cpu"


def _notebook(path, *sources):
    cells = [nbformat.v4.new_code_cell("rows = 2\nlabel = 'default'\nfail = False")]
    cells[0].metadata["tags"] = ["parameters"]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    kernel = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), str(path))
    return str(path)


def _step(sdk_env, notebook, name, parameters, **extra):
    from sagemaker.workflow.notebook_job_step import NotebookJobStep

    _, bucket = sdk_env
    return NotebookJobStep(
        name=name,
        input_notebook=notebook,
        image_uri=IMAGE,
        kernel_name="python3",
        role=ROLE,
        s3_root_uri=f"s3://{bucket}/notebook-jobs",
        parameters=parameters,
        environment_variables={"GREETING": "hello"},
        **extra,
    )


def _run(sm, sdk_env, steps, name="nb"):
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    body = Pipeline(name=name, steps=steps, sagemaker_session=session).definition()
    return run(sm, create(sm, body), timeout=600)


def _archive(s3, bucket, key):
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def test_a_notebook_runs_with_its_parameters_and_its_outputs_are_uploaded(sm, s3, sdk_env, tmp_path):
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals
    from sagemaker.workflow.fail_step import FailStep

    notebook = _notebook(
        tmp_path / "report.ipynb",
        "import json, os\nresult = {'rows': rows * 10, 'label': label, 'greeting': os.environ['GREETING']}",
        "json.dump(result, open('result.json', 'w'))\nprint('wrote', result)",
    )
    step = _step(sdk_env, notebook, "Report", {"rows": "5", "label": "weekly"})
    gate = ConditionStep(
        name="Check",
        conditions=[ConditionEquals(left=step.properties.ComputingJobStatus, right="Completed")],
        if_steps=[],
        else_steps=[FailStep(name="NotCompleted", error_message="the notebook job did not complete")],
    )
    pipeline = unique("nb")
    arn, described = _run(sm, sdk_env, [step, gate], pipeline)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert steps_of(sm, arn)["Check"]["Metadata"]["Condition"]["Outcome"] == "True"

    _, bucket = sdk_env
    prefix = f"notebook-jobs/{pipeline}/{arn.rsplit('/', 1)[-1]}/Report/"  # S3OutputPath joins the execution id
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith("/output/output.tar.gz"), keys
    files = _archive(s3, bucket, keys[0])
    assert json.loads(files["result.json"]) == {"rows": 50, "label": "weekly", "greeting": "hello"}
    outputs = [n for n in files if n.endswith(".ipynb") and n != "report.ipynb"]
    assert len(outputs) == 1  # the executed copy, named SM_OUTPUT_NOTEBOOK_NAME
    executed = nbformat.reads(files[outputs[0]].decode(), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "rows = 5" in injected[0].source and 'label = "weekly"' in injected[0].source
    assert "wrote" in executed.cells[-1].outputs[0]["text"]


def test_a_cell_that_raises_fails_the_step_naming_the_cell(sm, sdk_env, tmp_path):
    notebook = _notebook(
        tmp_path / "broken.ipynb",
        "total = rows + 1",
        "if fail:\n    raise ValueError(f'no data for {label}')",
        "print('never reached')",
    )
    arn, described = _run(sm, sdk_env, [_step(sdk_env, notebook, "Broken", {"fail": "True", "label": "monday"})])
    assert described["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, arn)["Broken"]["FailureReason"]
    # the third cell of the user's notebook (the injected parameters ran as In [2])
    assert "cell 3 (In [4]: 'if fail:') raised ValueError: no data for monday" in reason
