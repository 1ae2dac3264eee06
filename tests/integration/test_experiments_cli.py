"""``sagestack experiments list|show|compare`` against the stack: tables of runs and a metric chart."""

from datetime import UTC, datetime

import boto3

from infra.experiments_cli import run
from tests.integration.conftest import REGION, unique


def _clients(url):
    def client(service):
        return boto3.client(
            service, endpoint_url=url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )

    return client


def test_list_show_and_compare_runs(sm, stack_url, tmp_path):
    clients = _clients(stack_url)
    experiment = unique("cli")
    sm.create_experiment(ExperimentName=experiment)
    sm.create_trial(TrialName=f"{experiment}-g", ExperimentName=experiment)
    now = datetime.now(tz=UTC)
    for index, eta in enumerate((0.1, 0.3)):
        name = f"{experiment}-r{index}"
        sm.create_trial_component(TrialComponentName=name, Parameters={"eta": {"NumberValue": eta}})
        sm.associate_trial_component(TrialComponentName=name, TrialName=f"{experiment}-g")
        points = [{"MetricName": "auc", "Value": eta + step / 10, "Step": step, "Timestamp": now} for step in range(4)]
        clients("sagemaker-metrics").batch_put_metrics(TrialComponentName=name, MetricData=points)

    lines: list[str] = []
    assert run(["list"], clients, lines.append) == 0
    assert experiment in "\n".join(lines)

    lines.clear()
    chart = tmp_path / "auc.png"
    assert run(["compare", experiment, "--metric", "auc", "--chart", str(chart)], clients, lines.append) == 0
    text = "\n".join(lines)
    header, first, second = text.splitlines()[:3]
    assert header.split() == ["run", "status", "eta", "auc"]
    assert first.split() == [f"{experiment}-r0", "0.1", "0.4"]
    assert second.split() == [f"{experiment}-r1", "0.3", "0.6"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    lines.clear()
    assert run(["show", f"{experiment}-r1"], clients, lines.append) == 0
    assert any(line.split()[:2] == ["auc", "0.6"] for line in "\n".join(lines).splitlines())
