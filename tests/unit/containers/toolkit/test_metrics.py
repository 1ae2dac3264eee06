"""Contract tests: metric lines and the regexes SageMaker matches against them (metrics.py,
docs/reference/container-contract.md#metric-lines)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from containers.toolkit.metrics import (
    Direction,
    MetricSpec,
    MetricsWriter,
    escape_control_chars,
    quality_metric_regex,
    tunable_definitions,
)

XGB_VALIDATION_AUC = MetricSpec("validation:auc", r".*\[[0-9]+\].*#011validation-auc:(\S+)", Direction.MAXIMIZE)
XGB_LINE = "[3]\ttrain-auc:0.91234\tvalidation-auc:0.88765"


def test_escape_turns_tab_into_octal_011() -> None:
    assert escape_control_chars(XGB_LINE) == "[3]#011train-auc:0.91234#011validation-auc:0.88765"
    assert escape_control_chars("a\rb\x1bc") == "a#015b#033c"
    assert escape_control_chars("line\n") == "line\n"
    assert escape_control_chars("plain ascii: 1.0 <loss>=2") == "plain ascii: 1.0 <loss>=2"


def test_xgb_regex_matches_the_escaped_line_with_the_first_group() -> None:
    found = re.search(XGB_VALIDATION_AUC.regex, escape_control_chars(XGB_LINE))
    assert found is not None and found.group(1) == "0.88765"
    assert re.search(XGB_VALIDATION_AUC.regex, XGB_LINE) is None  # the raw line has TABs, not #011
    assert XGB_VALIDATION_AUC.match(XGB_LINE) == pytest.approx(0.88765)


def test_match_also_tries_the_raw_line() -> None:
    raw_style = MetricSpec("validation:auc", r"\tvalidation-auc:(\S+)")
    assert raw_style.match(XGB_LINE) == pytest.approx(0.88765)
    assert MetricSpec("train_error", r"Train_error=(.*?);").match("Train_error=0.138318;  Valid_error=0.3;") == (
        pytest.approx(0.138318)
    )


def test_match_gives_none_without_a_number() -> None:
    assert XGB_VALIDATION_AUC.match("[3]\ttrain-auc:0.9") is None
    assert MetricSpec("x", r"x=(\S+)").match("x=abc") is None
    assert MetricSpec("x", r"x=\S+").match("x=1.0") is None  # no capture group


def test_definitions_and_tunable_filter() -> None:
    hidden = MetricSpec("train:progress", r"completed (\S+) %", tunable=False)
    assert XGB_VALIDATION_AUC.definition() == {"Name": "validation:auc", "Regex": XGB_VALIDATION_AUC.regex}
    assert tunable_definitions([XGB_VALIDATION_AUC, hidden]) == [XGB_VALIDATION_AUC.definition()]


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="test.metrics")
    return caplog


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    # Only this test's logger: background threads of earlier tests (py4j's, say) may log meanwhile.
    return [record.getMessage() for record in caplog.records if record.name == "test.metrics"]


def test_kmeans_quality_line_and_its_regex(captured: pytest.LogCaptureFixture) -> None:
    writer = MetricsWriter("algo-1", logging.getLogger("test.metrics"))
    writer.quality("test", "msd", 0.0657)
    writer.quality("test", "msd", np.float64(1.5))
    writer.quality("train", "ssd", 3.0, kind="score")
    lines = _lines(captured)
    assert lines == [
        "#quality_metric: host=algo-1, test msd <loss>=0.0657",
        "#quality_metric: host=algo-1, test msd <loss>=1.5",
        "#quality_metric: host=algo-1, train ssd <score>=3.0",
    ]
    spec = MetricSpec("test:msd", quality_metric_regex("test", "msd"))
    assert spec.regex == r"#quality_metric: host=\S+, test msd <(?:loss|score)>=(\S+)"
    assert spec.match(lines[0]) == pytest.approx(0.0657)
    assert spec.match(lines[2]) is None  # another channel and metric
    assert MetricSpec("train:ssd", quality_metric_regex("train", "ssd")).match(lines[2]) == 3.0


def test_progress_throughput_and_rounds_lines(
    captured: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = MetricsWriter("algo-2", logging.getLogger("test.metrics"))
    writer.progress(50)
    writer.progress(12.345)
    writer.throughput("train", 1234.5678)
    writer.rounds(3, [("train", "auc", 0.912341), ("validation", "auc", 0.887652)])
    assert _lines(captured) == [
        "#progress_metric: host=algo-2, completed 50 % of epochs",
        "#progress_metric: host=algo-2, completed 12.3 % of epochs",
        "#throughput_metric: host=algo-2, train throughput=1234.57 records/second",
    ]
    # The per-round line is printed bare on stdout, exactly as xgboost's EvaluationMonitor prints it.
    assert capsys.readouterr().out == XGB_LINE + "\n"
    assert XGB_VALIDATION_AUC.match(XGB_LINE) == pytest.approx(0.88765)


def test_rounds_line_matches_with_escaping_and_a_following_metric(capsys: pytest.CaptureFixture[str]) -> None:
    writer = MetricsWriter("algo-1", logging.getLogger("test.metrics"))
    writer.rounds(0, [("train", "error", 0.14588), ("validation", "error", 0.15525), ("validation", "auc", 0.9)])
    line = capsys.readouterr().out.rstrip("\n")
    spec = MetricSpec("validation:error", r".*\[[0-9]+\].*#011validation-error:(\S+)")
    assert escape_control_chars(line).startswith("[0]#011train-error:0.14588#011validation-error:0.15525#011")
    # (\S+) runs on into "#011validation-auc:..." after escaping: the leading number is the value.
    assert spec.match(line) == pytest.approx(0.15525)
