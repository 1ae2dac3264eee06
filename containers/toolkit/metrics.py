"""Metric specs and metric lines in the built-in algorithms' log format.

A metric is declared once, next to the code that prints it: its name (``validation:auc``), the regex SageMaker's
``MetricDefinitions`` use to find it in the logs, and its direction for tuning. SageMaker's log pipeline shows a TAB
as ``#011`` (rsyslog escaping), and the built-in regexes are written against that form; ``escape_control_chars``
gives the same text so tests can check a printed line against the regex exactly as the platform would.
"""

from __future__ import annotations

import enum
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class Direction(str, enum.Enum):
    MAXIMIZE = "Maximize"
    MINIMIZE = "Minimize"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    regex: str
    direction: Direction = Direction.MINIMIZE
    tunable: bool = True

    def definition(self) -> dict[str, str]:
        """The ``MetricDefinition`` shape of the SageMaker API."""
        return {"Name": self.name, "Regex": self.regex}

    def match(self, line: str) -> float | None:
        """The value this metric's regex finds in ``line`` as the platform would see it, else None."""
        for candidate in (escape_control_chars(line), line):
            found = re.search(self.regex, candidate)
            if found:
                return leading_float(found.group(1)) if found.groups() else None
        return None


_LEADING_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)", re.IGNORECASE)


def leading_float(text: str | None) -> float | None:
    """The number a captured group starts with. With ``#011`` escaping, a built-in regex's ``(\\S+)`` runs on into
    the next metric (``0.99280#011validation-error:0.1``) unless its metric is last on the line; SageMaker reads the
    leading number, and so do we."""
    if not text:
        return None
    found = _LEADING_FLOAT.match(text)
    return float(found.group(0)) if found else None


def escape_control_chars(line: str) -> str:
    """rsyslog-style escaping: each control character becomes ``#`` plus three octal digits (TAB -> ``#011``)."""
    return "".join(f"#{ord(ch):03o}" if ord(ch) < 32 and ch != "\n" else ch for ch in line)


def tunable_definitions(specs: Iterable[MetricSpec]) -> list[dict[str, str]]:
    return [spec.definition() for spec in specs if spec.tunable]


def quality_metric_regex(channel: str, metric: str) -> str:
    """Regex of a ``#quality_metric`` line (K-Means, PCA), e.g. ``test msd``."""
    return rf"#quality_metric: host=\S+, {re.escape(channel)} {re.escape(metric)} <(?:loss|score)>=(\S+)"


class MetricsWriter:
    """Prints metric lines in the built-in formats on the container's stdout (which SageMaker scans)."""

    def __init__(self, host: str, stream: logging.Logger | None = None) -> None:
        self._host = host
        self._log = stream or logger

    def quality(self, channel: str, metric: str, value: float, *, kind: str = "loss") -> None:
        """``#quality_metric: host=algo-1, test msd <loss>=0.0657``."""
        self._log.info("#quality_metric: host=%s, %s %s <%s>=%s", self._host, channel, metric, kind, repr(float(value)))

    def progress(self, percent: float) -> None:
        self._log.info("#progress_metric: host=%s, completed %s %% of epochs", self._host, _pct(percent))

    def throughput(self, channel: str, records_per_second: float) -> None:
        self._log.info(
            "#throughput_metric: host=%s, %s throughput=%.2f records/second", self._host, channel, records_per_second
        )

    def rounds(self, iteration: int, results: Sequence[tuple[str, str, float]]) -> None:
        """XGBoost's per-round line: ``[3]\\ttrain-auc:0.91234\\tvalidation-auc:0.88765``."""
        parts = [f"{data}-{metric}:{value:.5f}" for data, metric, value in results]
        sys.stdout.write(f"[{iteration}]\t{chr(9).join(parts)}\n")  # bare, as xgboost's EvaluationMonitor prints it
        sys.stdout.flush()


def _pct(percent: float) -> str:
    return str(int(percent)) if float(percent).is_integer() else f"{percent:.1f}"
