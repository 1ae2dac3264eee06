"""The ``sagemaker-metrics`` operations: BatchPutMetrics (points of a trial component) and BatchGetMetrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog, as_datetime
from infra.control_plane.experiments.experiment_records import MetricSummary
from infra.control_plane.experiments.metric_series import MetricPoint, MetricSeries, point_error


class SageMakerMetrics:
    def __init__(self, catalog: ExperimentCatalog, series: MetricSeries) -> None:
        self._catalog = catalog
        self.series = series

    def batch_put_metrics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Valid points are kept; each refused one is answered in ``Errors`` with its index, as AWS does."""
        component = self._catalog.components.get_or_raise(str(params["TrialComponentName"]))
        now = utcnow()
        errors: list[dict[str, Any]] = []
        accepted: dict[str, list[MetricPoint]] = {}
        with component.lock:
            for index, item in enumerate(params["MetricData"]):
                value, when = float(item["Value"]), as_datetime(item["Timestamp"])
                if point_error(value, when, now) is not None:
                    errors.append({"Code": "VALIDATION_ERROR", "MetricIndex": index})
                    continue
                name = str(item["MetricName"])
                step = item.get("Step")
                accepted.setdefault(name, []).append(MetricPoint(when.timestamp(), step, value))
                component.metrics.setdefault(name, MetricSummary(name)).add(value, when)
            if accepted:
                component.touch()
        for name, points in accepted.items():
            self.series.add(component.arn, name, points)
        return {"Errors": errors or None}

    def batch_get_metrics(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        return {"MetricQueryResults": [self.series.query(query) for query in params["MetricQueries"]]}
