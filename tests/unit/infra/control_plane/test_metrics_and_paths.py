from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.control_plane.core.aws_services import S3AccessError, relative_key, safe_join
from infra.control_plane.training.builtin_metrics import (
    MetricCollector,
    builtin_metric_definitions,
    escape_control_chars,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_tabs_are_escaped_rsyslog_style():
    assert escape_control_chars("[0]\ttrain-error:0.1") == "[0]#011train-error:0.1"


def test_collector_keeps_the_last_value_and_tries_raw_and_escaped_lines():
    collector = MetricCollector(
        [
            {"Name": "validation:error", "Regex": ".*\\[[0-9]+\\].*#011validation-error:(\\S+)"},
            {"Name": "raw", "Regex": "\tvalidation-error:(\\S+)"},
            {"Name": "broken", "Regex": "(unclosed"},
        ]
    )
    collector.feed("[0]\ttrain-error:0.2\tvalidation-error:0.3", NOW)
    collector.feed("[1]\ttrain-error:0.1\tvalidation-error:0.25", NOW)
    collector.feed("no metric here", NOW)
    values = {m["MetricName"]: m["Value"] for m in collector.final()}
    assert values == {"validation:error": 0.25, "raw": 0.25}


def test_xgboost_builtin_definitions_use_the_escaped_form():
    definitions = builtin_metric_definitions("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1")
    assert {"Name": "validation:auc", "Regex": ".*\\[[0-9]+\\].*#011validation-auc:(\\S+)"} in definitions
    assert builtin_metric_definitions("my/own:image") == []


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", ""])
def test_unsafe_keys_are_rejected(tmp_path: Path, key):
    with pytest.raises(S3AccessError):
        safe_join(tmp_path, key)


def test_relative_key_follows_sagemaker_layout():
    assert relative_key("data/train", "data/train/a.csv") == "a.csv"
    assert relative_key("data/train/", "data/train/sub/a.csv") == "sub/a.csv"
    assert relative_key("data/train.csv", "data/train.csv") == "train.csv"
    assert relative_key("data/tr", "data/train.csv") == "train.csv"
