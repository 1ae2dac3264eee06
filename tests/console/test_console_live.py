"""The console's live pages in a real browser: a running job's logs stream and its metric chart fills, a tuning job's
objective marks the best job, an execution is started with parameters and a failed one retried from the page."""

import json
import urllib.error
import urllib.request

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import unique
from tests.integration.conftest import FAKE_IMAGE, ROLE
from tests.integration.helpers import training_request, wait_training
from tests.pipelines.conftest import create, definition, processing, wait

RMSE = [{"Name": "validation:rmse", "Regex": r"validation-rmse:([0-9.]+)"}]
SPEC = {"TrainingImage": FAKE_IMAGE, "TrainingInputMode": "File"}
_STALE = (NoSuchElementException, StaleElementReferenceException)


def _points(browser, selector):
    return [
        (float(p.get_attribute("data-x")), float(p.get_attribute("data-y")))
        for p in browser.find_elements(By.CSS_SELECTOR, selector)
    ]


def test_a_running_jobs_logs_stream_and_its_metric_chart_fills_without_a_reload(browser, console, sm, bucket):
    name = unique("console-live")
    spec = {"TrainingImage": FAKE_IMAGE, "TrainingInputMode": "File", "MetricDefinitions": RMSE}
    request = training_request(name, bucket, AlgorithmSpecification=spec)
    request["HyperParameters"]["sleep"] = "12"  # long enough for a loaded machine to stream the lines first
    sm.create_training_job(**request)
    browser.get(f"{console}/jobs/training/{name}")
    browser.execute_script("window.sameDocument = true")
    assert browser.find_element(By.ID, "metric-charts").get_attribute("data-terminal") == "false"
    # The fake container prints its lines, then sleeps 12 s: the lines stream in while the job is still running.
    WebDriverWait(browser, 120, 0.2, _STALE).until(lambda d: "fake training" in d.find_element(By.ID, "logs").text)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    WebDriverWait(browser, 120, 0.2, _STALE).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, '#metric-charts g.series[data-series="validation:rmse"] circle')) == 3
        )
    )
    assert browser.execute_script("return window.sameDocument === true")
    values = [y for _, y in _points(browser, "#metric-charts circle.point")]
    assert values == [2.0, 1.0, 0.667]  # validation-rmse of the fake container's three epochs, in order
    assert browser.find_element(By.ID, "logs").text.count("fake training") == 1  # streamed once, not repeated
    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    WebDriverWait(browser, 30, 0.2, _STALE).until(lambda d: "Completed" in d.find_element(By.ID, "job-status").text)


def test_a_tuning_jobs_objective_is_charted_with_the_best_job_marked(browser, console, sm, bucket):
    name = unique("console-tune")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "marker", "Values": ["a", "b"]}]},
        },
        TrainingJobDefinition={
            "AlgorithmSpecification": {**SPEC, "MetricDefinitions": RMSE},
            "RoleArn": ROLE,
            "InputDataConfig": training_request(name, bucket)["InputDataConfig"],
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning-output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    )
    WebDriverWait(sm, 300, 0.5).until(
        lambda c: (
            c.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"]
            == "Completed"
        )
    )
    best = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["BestTrainingJob"]
    browser.get(f"{console}/jobs/tuning/{name}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#objective-chart circle.point")) == 2
    marked = browser.find_elements(By.CSS_SELECTOR, "#objective-chart circle.marked")
    assert len(marked) == 1
    assert float(marked[0].get_attribute("data-y")) == best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert browser.find_element(By.ID, "best-job").text == best["TrainingJobName"]
    assert "★ best" in browser.find_element(By.CSS_SELECTOR, "#tuning-trainings tr.best").text


def test_starting_with_parameters_creates_an_execution_through_the_api(browser, console, sm, code_uri, bucket):
    body = json.loads(definition([processing("Only", code_uri, bucket)]))
    body["Parameters"] = [
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
        {"Name": "Region", "Type": "String", "DefaultValue": "eu"},
    ]
    name = create(sm, json.dumps(body))
    # without the page's token the start is refused (403) and nothing runs
    request = urllib.request.Request(f"{console}/pipelines/{name}/start", data=b"request_token=" + b"x" * 32)
    try:
        urllib.request.urlopen(request)
        raise AssertionError("a start without the token was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403
    assert sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []
    browser.get(f"{console}/pipelines/{name}")
    form = browser.find_element(By.ID, "start-form")
    assert form.find_element(By.NAME, "parameter.Threshold").get_attribute("placeholder") == "0.5"
    form.find_element(By.NAME, "parameter.Threshold").send_keys("0.8")
    form.find_element(By.NAME, "display_name").send_keys("from-the-console")
    form.find_element(By.ID, "start-execution").click()
    WebDriverWait(browser, 30, 0.2, _STALE).until(lambda d: "/executions/" in d.current_url)
    executions = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert len(executions) == 1
    arn = executions[0]["PipelineExecutionArn"]
    assert browser.current_url.endswith(arn.rsplit("/", 1)[-1])
    parameters = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in parameters} == {"Threshold": "0.8", "Region": "eu"}  # blank = default
    assert executions[0]["PipelineExecutionDisplayName"] == "from-the-console"
    assert wait(sm, arn)["PipelineExecutionStatus"] == "Succeeded"


def test_a_failed_execution_is_retried_from_its_page(browser, console, sm, code_uri, bucket):
    name = create(sm, definition([processing("Broken", code_uri, bucket, env={"FAIL": "flaky input"})]))
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait(sm, arn)["PipelineExecutionStatus"] == "Failed"
    first = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"][0]["StartTime"]
    browser.get(f"{console}/pipelines/{name}/executions/{arn.rsplit('/', 1)[-1]}")
    browser.find_element(By.ID, "retry-execution").click()
    WebDriverWait(sm, 120, 0.2).until(
        lambda c: [
            s for s in c.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
            if s["StartTime"] > first
        ]
    )  # fmt: skip
    assert wait(sm, arn)["PipelineExecutionStatus"] == "Failed"  # the step fails again, on its own retry
    assert len(sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1
