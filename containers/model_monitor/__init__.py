"""The Model Monitor analyzer: ``python -m containers.model_monitor`` (the ``sagemaker-model-monitor-analyzer`` image).

Baselining and monitoring for data quality and model quality, per docs/reference/model-monitor-files.md; see
docs/model-monitor.md.
"""

from __future__ import annotations

__all__: list[str] = []
