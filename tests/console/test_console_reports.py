"""The console's report pages in a real browser, each over resources made through the public API: a monitoring
execution's violations and drift charts, an endpoint's data-capture records, an experiment's runs on one chart, a
feature record looked up, a DeepRacer run's reward graph and evaluation laps on the track."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import unique
from tests.integration.conftest import REGION
from tests.integration.feature_store_helpers import create_group, record
from tests.integration.helpers import wait_training
from tests.integration.test_monitoring import (  # noqa: F401  (the module's baseline fixture, reused)
    _definition,
    _deploy_with_capture,
    _invoke,
    _now_schedule,
    _rows,
    _wait_execution,
    baseline,
)
from tests.integration.test_rl_deepracer import TINY, channel, custom_files, rl_job_request  # noqa: F401

_STALE = (NoSuchElementException, StaleElementReferenceException)


def _shown(browser, element_id):
    """The element once the page a click navigated to has it (a click may return before the new page is there)."""
    return WebDriverWait(browser, 30, 0.2, _STALE).until(lambda d: d.find_element(By.ID, element_id))


def _series_drawn(browser, count):
    """Wait for the page the Draw button loads to show ``count`` series (the click navigates)."""
    WebDriverWait(browser, 30, 0.2, _STALE).until(
        lambda d: (
            "metric=" in d.current_url and len(d.find_elements(By.CSS_SELECTOR, "#metric-chart g.series")) == count
        )
    )
    return browser.find_elements(By.CSS_SELECTOR, "#metric-chart g.series")


def _client(stack_url, service):
    return boto3.client(
        service, endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def test_the_drift_report_and_the_endpoints_capture_records_render(
    browser,
    console,
    sm,
    smr,
    bucket,
    baseline,  # noqa: F811 (the fixture imported above)
    stack_url,
):
    endpoint = _deploy_with_capture(sm, bucket)
    try:
        _invoke(smr, endpoint, _rows(60, shift=4.0, missing=0.3, seed=7))
        schedule = _now_schedule(sm, _definition(sm, bucket, endpoint, baseline))
        execution = _wait_execution(sm, schedule)
        assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")

        browser.get(f"{console}/monitoring")
        browser.find_element(By.LINK_TEXT, schedule).click()
        # the drift distance the execution published to CloudWatch, per feature over time
        _shown(browser, "monitoring-executions")
        published = browser.find_elements(By.CSS_SELECTOR, '#drift-over-time g.series[data-series="_c0"] circle')
        assert len(published) == 1 and float(published[0].get_attribute("data-y")) > 0.5
        job = execution["ProcessingJobArn"].rsplit("/", 1)[-1]
        browser.find_element(By.LINK_TEXT, job).click()
        violations = _shown(browser, "violations").text
        assert "baseline_drift_check" in violations and "completeness_check" in violations
        feature = browser.find_element(By.CSS_SELECTOR, '#drift-charts .feature[data-feature="_c0"]')
        assert "baseline_drift_check" in feature.text  # the chart carries its feature's violation
        bars = feature.find_elements(By.CSS_SELECTOR, "rect.bar")
        for series in ("baseline", "window"):
            shares = [float(b.get_attribute("data-value")) for b in bars if b.get_attribute("data-series") == series]
            assert len(shares) == 10 and sum(shares) == pytest.approx(1.0)
        window = [float(b.get_attribute("data-value")) for b in bars if b.get_attribute("data-series") == "window"]
        base = [float(b.get_attribute("data-value")) for b in bars if b.get_attribute("data-series") == "baseline"]
        # the window is shifted by +4 standard deviations: its mass sits in higher bins than the baseline's
        centre = lambda shares: sum(i * s for i, s in enumerate(shares))  # noqa: E731
        assert centre(window) > centre(base) + 2
        categorical = browser.find_element(By.CSS_SELECTOR, '#drift-charts .feature[data-feature="_c1"]')
        labels = {b.get_attribute("data-label") for b in categorical.find_elements(By.CSS_SELECTOR, "rect.bar")}
        assert labels == {"a", "b", "c"}

        record = {  # what `make deploy` writes for each attempt (docs/deploy.md)
            "endpoint": endpoint,
            "endpoint_config": f"{endpoint}-20261207T050000Z",
            "package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/credit-risk/3",
            "package_version": 3,
            "started": "2026-12-07T05:00:00+00:00",
            "finished": "2026-12-07T05:01:00+00:00",
            "outcome": "RolledBack",
            "reason": "health check: 2 of 5 probes failed",
        }
        _client(stack_url, "s3").create_bucket(Bucket="sagemaker-us-east-1-123456789012")
        _client(stack_url, "s3").put_object(
            Bucket="sagemaker-us-east-1-123456789012",
            Key=f"deployments/{endpoint}/{record['endpoint_config']}.json",
            Body=json.dumps(record).encode(),
        )
        browser.get(f"{console}/endpoints")
        browser.find_element(By.LINK_TEXT, endpoint).click()
        history = _shown(browser, "deployments").text
        assert "RolledBack" in history and "health check: 2 of 5 probes failed" in history and "v3" in history
        _shown(browser, "captures")
        captures = browser.find_elements(By.CSS_SELECTOR, "#captures tbody tr")
        assert len(captures) == 20  # the newest 20 of the 60 captured requests
        assert "AllTraffic" in browser.find_element(By.ID, "variants").text
        assert browser.find_element(By.ID, "invocation-charts")
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_an_experiments_runs_are_compared_on_one_chart(browser, console, sm, stack_url):
    metrics = _client(stack_url, "sagemaker-metrics")
    experiment = unique("exp")
    sm.create_experiment(ExperimentName=experiment)
    sm.create_trial(TrialName=unique("trial"), ExperimentName=experiment)
    trial = sm.list_trials(ExperimentName=experiment)["TrialSummaries"][0]["TrialName"]
    start = datetime.now(UTC) - timedelta(minutes=5)
    for run, slope in (("run-a", 1.0), ("run-b", 2.0)):
        name = unique(run)
        sm.create_trial_component(TrialComponentName=name, Parameters={"lr": {"NumberValue": slope / 10}})
        sm.associate_trial_component(TrialComponentName=name, TrialName=trial)
        data = [
            {"MetricName": "loss", "Timestamp": start + timedelta(seconds=step), "Step": step, "Value": slope * step}
            for step in range(5)
        ]
        assert not metrics.batch_put_metrics(TrialComponentName=name, MetricData=data).get("Errors")
    browser.get(f"{console}/experiments")
    browser.find_element(By.LINK_TEXT, experiment).click()
    _shown(browser, "runs")
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert len(rows) == 2 and "lr" in browser.find_element(By.ID, "runs").text
    browser.find_element(By.ID, "draw").click()
    series = _series_drawn(browser, 2)
    for group in series:
        ys = [float(c.get_attribute("data-y")) for c in group.find_elements(By.CSS_SELECTOR, "circle.point")]
        xs = [float(c.get_attribute("data-x")) for c in group.find_elements(By.CSS_SELECTOR, "circle.point")]
        slope = 1.0 if group.get_attribute("data-series").startswith("run-a") else 2.0
        assert xs == [0, 1, 2, 3, 4] and ys == [slope * x for x in xs]
    # only one run chosen: one series
    browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")[0].find_element(By.NAME, "run").click()
    browser.find_element(By.ID, "draw").click()
    WebDriverWait(browser, 30, 0.2, _STALE).until(lambda d: d.current_url.count("run=") == 1)
    assert len(_series_drawn(browser, 1)) == 1


def test_a_feature_record_is_looked_up_with_get_record(browser, console, sm, stack_url, bucket):
    group = create_group(sm, bucket, offline=False)
    runtime = _client(stack_url, "sagemaker-featurestore-runtime")
    runtime.put_record(FeatureGroupName=group, Record=record("c-42", 1700000000.0, age=51, segment="gold"))
    browser.get(f"{console}/features")
    browser.find_element(By.LINK_TEXT, group).click()
    assert "balance" in _shown(browser, "features").text
    browser.find_element(By.NAME, "record").send_keys("c-42")
    browser.find_element(By.ID, "get-record").click()
    shown = _shown(browser, "record").text
    assert "51" in shown and "gold" in shown
    browser.find_element(By.NAME, "record").clear()
    browser.find_element(By.NAME, "record").send_keys("nobody")
    browser.find_element(By.ID, "get-record").click()
    WebDriverWait(browser, 30, 0.2, _STALE).until(
        lambda d: d.find_elements(By.ID, "no-record") or d.find_elements(By.ID, "lookup-error")
    )


def test_a_deepracer_run_shows_its_reward_graph_and_laps_on_the_track(browser, console, sm, bucket, custom_files):  # noqa: F811
    name = unique("console-racer")
    sm.create_training_job(**rl_job_request(name, bucket, [channel("custom_files", custom_files)], TINY))
    described = wait_training(sm, name, timeout=600)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    browser.get(f"{console}/deepracer")
    browser.find_element(By.LINK_TEXT, name).click()
    _shown(browser, "reward-charts")
    rewards = browser.find_elements(By.CSS_SELECTOR, '#reward-charts g.series[data-series="train_reward"] circle')
    assert [float(c.get_attribute("data-x")) for c in rewards] == [1.0, 2.0]  # TINY: two iterations
    final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert float(rewards[-1].get_attribute("data-y")) == pytest.approx(final["train_reward"])
    track = browser.find_element(By.ID, "track")
    assert len(track.find_elements(By.CSS_SELECTOR, "polyline.border")) == 2
    laps = track.find_elements(By.CSS_SELECTOR, "polyline.lap")
    assert len(laps) == 1 and len(laps[0].get_attribute("points").split()) > 10  # TINY: one evaluation lap
    assert "evaluation lap 1" in browser.find_element(By.ID, "lap-lines").text
    video = browser.find_element(By.ID, "lap-video")  # the GIF the container rendered, served by the console
    loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", video)
    assert loaded and loaded > 320  # the camera view (320 px) and the top-down view side by side
