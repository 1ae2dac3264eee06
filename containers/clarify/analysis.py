"""One Clarify job: the dataset, the model when needed, every requested method, and the output files.

Output layout (docs/clarify.md#outputs): ``analysis.json``; ``<report name>.html`` (+ ``.pdf``);
``explanations_shap/out.csv`` when local SHAP values are saved; ``explanations_shap/baseline.csv`` when the baseline was
computed.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from containers.clarify.bias.bias_report import bias_report, label_outcome, select_metrics
from containers.clarify.bias.binarise import Outcome, binarise_predicted
from containers.clarify.bias.posttraining import POST_TRAINING
from containers.clarify.bias.pretraining import PRE_TRAINING
from containers.clarify.config import AnalysisConfig, PdpConfig, ShapConfig
from containers.clarify.dataset import Dataset, load_dataset, resolve_column
from containers.clarify.explainability.kernel_shap import ShapResult, explain, global_values
from containers.clarify.explainability.pdp import partial_dependence
from containers.clarify.explainability.shap_baseline import resolve_baseline
from containers.clarify.model_access.predictor import Model, connect_model, predicted_labels
from containers.clarify.paths import ProcessingPaths
from containers.clarify.report import write_reports
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["analyse", "run_job"]


def _predicted_index(dataset: Dataset, config: AnalysisConfig, outcome: Outcome, model: Model | None) -> np.ndarray:
    if dataset.predicted_label is not None:
        return binarise_predicted(dataset.frame[dataset.predicted_label], outcome)
    assert model is not None
    labels, from_score = predicted_labels(model.predict(dataset.feature_frame()), config.probability_threshold)
    if not from_score:
        return binarise_predicted(labels, outcome)
    positive = labels.to_numpy() == 1
    if not positive.any():
        raise UserError(
            f"No score is above probability_threshold {config.probability_threshold}: the post-training metrics are "
            "undefined. Fix: check probability_threshold and what the model returns."
        )
    return positive


def _players(shap: ShapConfig, dataset: Dataset) -> list[str]:
    if not shap.features_to_explain:
        return list(dataset.features)
    frame = dataset.feature_frame()
    return [resolve_column(frame, ref, "methods.shap.features_to_explain") for ref in shap.features_to_explain]


def _shap_block(result: ShapResult, method: str) -> dict[str, Any]:
    aggregated = global_values(result.local, method)
    return {
        output: {
            "global_shap_values": {f: float(aggregated[j, o]) for j, f in enumerate(result.features)},
            "expected_value": float(result.expected_value[o]),
        }
        for o, output in enumerate(result.outputs)
    }


def _local_frame(result: ShapResult, dataset: Dataset) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    if dataset.joinsource is not None:
        columns[dataset.joinsource] = dataset.frame[dataset.joinsource].to_numpy()
    for o, output in enumerate(result.outputs):
        for j, feature in enumerate(result.features):
            columns[f"{feature}_{output}"] = result.local[:, j, o]
    return pd.DataFrame(columns)


def _run_shap(model: Model, shap: ShapConfig, dataset: Dataset, config: AnalysisConfig, out: Path) -> ShapResult:
    rows = dataset.feature_frame()
    baseline = resolve_baseline(shap, config, rows, shap.seed)
    if shap.baseline is None:
        (out / "explanations_shap").mkdir(parents=True, exist_ok=True)
        baseline.to_csv(out / "explanations_shap" / "baseline.csv", header=False, index=False)
    result = explain(
        model,
        rows,
        baseline,
        _players(shap, dataset),
        num_samples=shap.num_samples,
        seed=shap.seed,
        use_logit=shap.use_logit,
    )
    if shap.save_local_shap_values:
        (out / "explanations_shap").mkdir(parents=True, exist_ok=True)
        _local_frame(result, dataset).to_csv(out / "explanations_shap" / "out.csv", index=False)
    return result


def _pdp_features(pdp: PdpConfig, dataset: Dataset, shap: dict[str, Any] | None) -> list[str]:
    if pdp.features:
        frame = dataset.feature_frame()
        return [resolve_column(frame, ref, "methods.pdp.features") for ref in pdp.features]
    assert shap is not None
    first = next(iter(shap.values()))["global_shap_values"]
    ranked = sorted(first, key=lambda name: -abs(first[name]))
    return ranked[: pdp.top_k_features]


def _explanations(model: Model, dataset: Dataset, config: AnalysisConfig, out: Path) -> dict[str, Any]:
    explanations: dict[str, Any] = {}
    if config.shap is not None:
        result = _run_shap(model, config.shap, dataset, config, out)
        explanations["kernel_shap"] = _shap_block(result, config.shap.agg_method)
    if config.pdp is not None:
        features = _pdp_features(config.pdp, dataset, explanations.get("kernel_shap"))
        seed = config.shap.seed if config.shap else None
        rows = dataset.feature_frame()
        explanations["pdp"] = partial_dependence(model, rows, features, config.pdp.grid_resolution, seed)
    return explanations


def analyse(config: AnalysisConfig, dataset: Dataset, out: Path, model: Model | None = None) -> dict[str, Any]:
    """Every requested method on ``dataset``; ``model`` answers when predictions are needed."""
    analysis: dict[str, Any] = {"version": "1.0"}
    wants_bias = config.pre_training_methods is not None or config.post_training_methods is not None
    outcome = label_outcome(dataset, config) if wants_bias else None
    if config.pre_training_methods is not None and outcome is not None:
        metrics = select_metrics(PRE_TRAINING, config.pre_training_methods)
        analysis["pre_training_bias_metrics"] = bias_report(dataset, config, metrics, outcome)
    if config.post_training_methods is not None and outcome is not None:
        predicted = _predicted_index(dataset, config, outcome, model)
        metrics = select_metrics(POST_TRAINING, config.post_training_methods)
        analysis["post_training_bias_metrics"] = bias_report(dataset, config, metrics, outcome, predicted)
    if config.shap is not None or config.pdp is not None:
        assert model is not None
        analysis["explanations"] = _explanations(model, dataset, config, out)
    return analysis


def run_job(config: AnalysisConfig, paths: ProcessingPaths, model: Model | None = None) -> dict[str, Any]:
    """Read the data, connect the model (shadow endpoint deleted on exit), analyse, write every output."""
    dataset = load_dataset(config, paths.data_dir)
    out = paths.output_dir
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if model is None and config.needs_model:
            assert config.predictor is not None
            model = stack.enter_context(connect_model(config.predictor))
        analysis = analyse(config, dataset, out, model)
    (out / "analysis.json").write_text(json.dumps(analysis, indent=2), encoding="utf-8")
    write_reports(analysis, config, out)
    logger.info("wrote %s", out / "analysis.json")
    return analysis
