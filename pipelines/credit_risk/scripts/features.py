"""Not a processing script any more: the ``Features`` step runs the Spark job ``spark_jobs/features/credit.py``.

Kept only because ``pipelines/monitor/data.py`` imports ``LABEL`` and ``build_table`` from here; they now live in
``pipelines.credit_risk.encoding`` (the Spark job's encoding in pandas). Delete this file once that import moves.
"""

from __future__ import annotations

from pipelines.credit_risk.encoding import LABEL, build_table

__all__ = ["LABEL", "build_table"]
