"""The console in a real browser: pages render, the graph goes live, approvals and refusals act through the API."""

import json
import urllib.error
import urllib.request

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import unique
from tests.integration.helpers import training_request, wait_training
from tests.pipelines.conftest import create, definition, processing, wait


def _package(sm):
    group = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "sagestack-tests/fake:latest", "ModelDataUrl": "s3://sagestack-tests/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    return group, arn


def test_the_graph_goes_live_and_a_failed_steps_reason_is_shown(browser, console, sm, code_uri, bucket):
    name = create(
        sm,
        definition(
            [
                processing("Root", code_uri, bucket, env={"SLEEP": "1"}),
                processing("Slow", code_uri, bucket, env={"SLEEP": "2"}, DependsOn=["Root"]),
                processing("Broken", code_uri, bucket, env={"FAIL": "bad input column"}, DependsOn=["Root"]),
            ]
        ),
    )
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    browser.get(f"{console}/pipelines/{name}/executions/{arn.rsplit('/', 1)[-1]}")
    browser.execute_script("window.sameDocument = true")
    root = browser.find_element(By.CSS_SELECTOR, 'g.step[data-step="Root"]')
    boxes = browser.find_elements(By.CSS_SELECTOR, "g.step")
    assert {box.get_attribute("data-step") for box in boxes} == {"Root", "Slow", "Broken"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "path.edge")) == 2  # Root -> Slow, Root -> Broken
    # Root turns green while the execution still runs, in the same document (no reload).
    WebDriverWait(browser, 120, 0.2).until(lambda d: root.get_attribute("data-status") == "Succeeded")
    assert browser.execute_script("return window.sameDocument === true")
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    assert wait(sm, arn)["PipelineExecutionStatus"] == "Failed"

    page = f"{console}/pipelines/{name}/executions/{arn.rsplit('/', 1)[-1]}"
    WebDriverWait(browser, 30, 0.2).until(lambda d: d.find_element(By.ID, "execution-status").text == "Failed")
    browser.get(page)  # the final page lists every step's failure reason
    assert "bad input column" in browser.find_element(By.ID, "steps").text
    browser.find_element(By.CSS_SELECTOR, '#steps a[href$="/steps/Broken"]').click()
    assert "bad input column" in browser.find_element(By.ID, "failure-reason").text
    assert browser.find_element(By.ID, "cache-hit").text == "no"
    browser.find_element(By.CSS_SELECTOR, "a.job-link").click()
    assert "Failed" in browser.find_element(By.ID, "job-status").text

    browser.get(f"{console}/pipelines")
    assert name in browser.find_element(By.ID, "pipelines").text


def test_a_training_job_shows_its_metrics_and_logs(browser, console, sm, bucket):
    name = unique("console-train")
    sm.create_training_job(
        **training_request(
            name, bucket, AlgorithmSpecification={
                "TrainingImage": "sagestack-tests/fake:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "validation:rmse", "Regex": r"validation-rmse:([0-9.]+)"}],
            }
        )
    )  # fmt: skip
    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    browser.get(f"{console}/jobs/training?status=Completed")
    browser.find_element(By.LINK_TEXT, name).click()
    assert "validation:rmse" in browser.find_element(By.ID, "metrics").text
    assert "fake training" in browser.find_element(By.ID, "logs").text
    browser.get(f"{console}/jobs/training?status=Failed")
    assert name not in browser.page_source
    browser.get(f"{console}/endpoints")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Endpoints"


def test_approving_a_package_changes_its_status_through_the_api(browser, console, sm):
    group, arn = _package(sm)
    browser.get(f"{console}/models/{group}")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-version="1"]')
    assert "PendingManualApproval" in row.text
    row.find_element(By.NAME, "comment").send_keys("AUC 0.91 on the holdout")
    row.find_element(By.CSS_SELECTOR, 'button[value="approve"]').click()
    WebDriverWait(browser, 30, 0.2, (NoSuchElementException, StaleElementReferenceException)).until(
        lambda d: "Approved" in d.find_element(By.CSS_SELECTOR, 'tr[data-version="1"] .approval').text
    )
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "AUC 0.91 on the holdout"


def _post(url, fields, origin=None):
    data = "&".join(f"{key}={value}" for key, value in fields.items()).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if origin:
        request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_post_without_the_token_or_from_elsewhere_is_refused(browser, console, sm, stack_url):
    group, arn = _package(sm)
    url = f"{console}/models/{group}/approval"
    assert _post(url, {"arn": arn, "decision": "approve"}) == 403
    assert _post(url, {"arn": arn, "decision": "approve", "token": "guessed"}) == 403
    browser.get(f"{console}/models/{group}")
    token = browser.find_element(By.CSS_SELECTOR, 'meta[name="console-token"]').get_attribute("content")
    assert _post(url, {"arn": arn, "decision": "reject", "token": token}, origin="http://evil.example") == 403
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    assert json.loads(urllib.request.urlopen(f"{stack_url}/_sagestack/health").read())["status"] == "running"
