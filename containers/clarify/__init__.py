"""The SageMaker Clarify processing container: bias metrics, Kernel SHAP and PDP from ``analysis_config.json``.

Started as ``python -m containers.clarify`` (the image's managed entrypoint); see ``docs/clarify.md``.
"""

from __future__ import annotations

from containers.clarify.analysis import analyse, run_job
from containers.clarify.config import AnalysisConfig, load_config, parse_config

__all__ = ["AnalysisConfig", "analyse", "load_config", "parse_config", "run_job"]
