"""``analysis_config.json`` parsed once into frozen dataclasses, with every check a user can act on.

The schema is the SDK's ``ANALYSIS_CONFIG_SCHEMA_V1_0`` (docs/clarify.md#analysis_configjson). Unknown metric names,
missing bias keys and contradictory SHAP settings are ``UserError``s that name the field, say why, and say how to fix
it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containers.toolkit.errors import UserError

__all__ = [
    "DATASET_TYPES",
    "POST_TRAINING_METRICS",
    "PRE_TRAINING_METRICS",
    "AnalysisConfig",
    "FacetConfig",
    "PdpConfig",
    "PredictorConfig",
    "ReportConfig",
    "ShapConfig",
    "load_config",
    "parse_config",
]

Scalar = int | float | str
Column = int | str

DATASET_TYPES = ("text/csv", "application/jsonlines", "application/json", "application/x-parquet")
PRE_TRAINING_METRICS = ("CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD")
POST_TRAINING_METRICS = ("AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE")
CONTENT_TYPES = ("text/csv", "application/jsonlines", "application/json")
AGG_METHODS = ("mean_abs", "median", "mean_sq")
_PREFIX = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


@dataclass(frozen=True)
class FacetConfig:
    name_or_index: Column
    value_or_threshold: tuple[Scalar, ...] | None = None


@dataclass(frozen=True)
class PredictorConfig:
    endpoint_name: str | None = None
    model_name: str | None = None
    instance_type: str | None = None
    initial_instance_count: int = 1
    accelerator_type: str | None = None
    endpoint_name_prefix: str = "sm-clarify"
    target_model: str | None = None
    custom_attributes: str | None = None
    content_type: str = "text/csv"
    accept_type: str = "text/csv"
    content_template: str | None = None
    label: Column | None = None
    probability: Column | None = None
    label_headers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ShapConfig:
    baseline: str | tuple[Any, ...] | None = None
    num_clusters: int | None = None
    num_samples: int | None = None
    agg_method: str = "mean_abs"
    use_logit: bool = False
    save_local_shap_values: bool = False
    seed: int | None = None
    features_to_explain: tuple[Column, ...] | None = None


@dataclass(frozen=True)
class PdpConfig:
    grid_resolution: int = 15
    features: tuple[Column, ...] | None = None
    top_k_features: int = 10


@dataclass(frozen=True)
class ReportConfig:
    name: str = "report"
    title: str = "SageMaker Analysis Report"


@dataclass(frozen=True)
class AnalysisConfig:
    dataset_type: str
    dataset_uri: str | None = None
    headers: tuple[str, ...] | None = None
    label: Column | None = None
    predicted_label: Column | None = None
    features: str | None = None
    label_values_or_threshold: tuple[Scalar, ...] | None = None
    probability_threshold: float = 0.5
    facets: tuple[FacetConfig, ...] = ()
    group_variable: Column | None = None
    joinsource: Column | None = None
    excluded_columns: tuple[Column, ...] = ()
    pre_training_methods: tuple[str, ...] | None = None
    post_training_methods: tuple[str, ...] | None = None
    shap: ShapConfig | None = None
    pdp: PdpConfig | None = None
    report: ReportConfig | None = None
    predictor: PredictorConfig | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def needs_model(self) -> bool:
        """True when some method needs predictions that the dataset does not carry."""
        post = self.post_training_methods is not None and self.predicted_label is None
        return post or self.shap is not None or self.pdp is not None


def load_config(path: Path) -> AnalysisConfig:
    """Read and validate ``analysis_config.json`` at ``path``."""
    if not path.is_file():
        raise UserError(
            f"analysis_config.json not found at {path}: the job needs a ProcessingInput named 'analysis_config' "
            "mounted at /opt/ml/processing/input/config. Fix: run the job through SageMakerClarifyProcessor."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"analysis_config.json is not valid UTF-8 JSON: {exc}. Fix the file.") from exc
    if not isinstance(raw, dict):
        raise UserError("analysis_config.json must be a JSON object.")
    return parse_config(raw)


def _fail(key: str, why: str, fix: str) -> UserError:
    return UserError(f"analysis_config.json: '{key}' {why}. Fix: {fix}")


def _column(raw: Mapping[str, Any], key: str) -> Column | None:
    value = raw.get(key)
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return value
    raise _fail(key, f"must be a column name or 0-based index, got {value!r}", "give a string or an integer")


def _scalars(value: Any, key: str) -> tuple[Scalar, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _fail(key, f"must be a non-empty list of values, got {value!r}", "write e.g. [1] or [40]")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise _fail(key, f"holds {item!r}, which is not a number or a string", "use numbers or strings")
    return tuple(value)


def _methods(block: Any, key: str, known: tuple[str, ...]) -> tuple[str, ...] | None:
    if block is None:
        return None
    methods = block.get("methods", "all") if isinstance(block, dict) else block
    if methods == "all":
        return known
    if not isinstance(methods, list) or not methods:
        raise _fail(f"methods.{key}.methods", f'must be "all" or a list of metric names, got {methods!r}', "fix it")
    unknown = [name for name in methods if name not in known]
    if unknown:
        raise _fail(
            f"methods.{key}.methods",
            f"names unknown metric(s) {unknown}",
            f'use "all" or names from {list(known)}',
        )
    return tuple(sorted(set(methods)))


def _facets(raw: Any) -> tuple[FacetConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("facet", "must be a list of {name_or_index, value_or_threshold}", "see BiasConfig")
    facets = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or "name_or_index" not in entry:
            raise _fail(f"facet[{index}]", "has no 'name_or_index'", "name the facet column")
        name = _column(entry, "name_or_index")
        assert name is not None
        facets.append(
            FacetConfig(name, _scalars(entry.get("value_or_threshold"), f"facet[{index}].value_or_threshold"))
        )
    return tuple(facets)


def _int(raw: Mapping[str, Any], key: str, default: int | None, minimum: int = 1) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, f"must be an integer ≥ {minimum}, got {value!r}", "fix the value")
    return value


def _shap(raw: Any) -> ShapConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("methods.shap", "must be an object", "see SHAPConfig")
    agg = raw.get("agg_method", "mean_abs")
    if agg not in AGG_METHODS:
        raise _fail("methods.shap.agg_method", f"is {agg!r}", f"use one of {list(AGG_METHODS)}")
    baseline = raw.get("baseline")
    if baseline is not None and raw.get("num_clusters") is not None:
        raise _fail("methods.shap.num_clusters", "is set together with 'baseline'", "give only one of them")
    if isinstance(baseline, dict):
        baseline = [baseline]
    if baseline is not None and not isinstance(baseline, (str, list)):
        raise _fail("methods.shap.baseline", "must be an S3 URI or a list of rows", "fix the value")
    explain = raw.get("features_to_explain")
    return ShapConfig(
        baseline=tuple(baseline) if isinstance(baseline, list) else baseline,
        num_clusters=_int(raw, "num_clusters", None),
        num_samples=_int(raw, "num_samples", None),
        agg_method=agg,
        use_logit=bool(raw.get("use_logit", False)),
        save_local_shap_values=bool(raw.get("save_local_shap_values", False)),
        seed=_int(raw, "seed", None, minimum=0),
        features_to_explain=tuple(explain) if explain else None,
    )


def _pdp(raw: Any, has_shap: bool) -> PdpConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("methods.pdp", "must be an object", "see PDPConfig")
    features = raw.get("features")
    if not features and not has_shap:
        raise _fail("methods.pdp.features", "is required when 'shap' is not requested", "list the features")
    grid = _int(raw, "grid_resolution", 15)
    top_k = _int(raw, "top_k_features", 10)
    assert grid is not None and top_k is not None
    return PdpConfig(grid_resolution=grid, features=tuple(features) if features else None, top_k_features=top_k)


def _label_headers(raw: Mapping[str, Any]) -> tuple[str, ...] | None:
    headers = raw.get("label_headers")
    return tuple(str(h) for h in headers) if headers else None


def _predictor(raw: Any, dataset_type: str) -> PredictorConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("predictor", "must be an object", "see ModelConfig")
    if not raw.get("endpoint_name") and not raw.get("model_name"):
        raise _fail("predictor", "names neither 'endpoint_name' nor 'model_name'", "give one of them")
    content_type = raw.get("content_type") or (dataset_type if dataset_type in CONTENT_TYPES else None)
    if content_type not in CONTENT_TYPES:
        raise _fail("predictor.content_type", f"is {content_type!r}", f"use one of {list(CONTENT_TYPES)}")
    accept_type = raw.get("accept_type") or content_type
    if accept_type not in CONTENT_TYPES:
        raise _fail("predictor.accept_type", f"is {accept_type!r}", f"use one of {list(CONTENT_TYPES)}")
    prefix = raw.get("endpoint_name_prefix") or "sm-clarify"
    if len(prefix) > 23 or not _PREFIX.match(prefix):
        raise _fail("predictor.endpoint_name_prefix", f"is {prefix!r}", "use ≤ 23 letters, digits and hyphens")
    template = raw.get("content_template")
    if isinstance(template, dict):
        template = json.dumps(template)
    placeholders = ("$features", "$record")
    if template is not None and content_type != "text/csv" and not any(p in template for p in placeholders):
        raise _fail("predictor.content_template", "has no '$features' or '$records'", "add the placeholder")
    return PredictorConfig(
        endpoint_name=raw.get("endpoint_name"),
        model_name=raw.get("model_name"),
        instance_type=raw.get("instance_type"),
        initial_instance_count=_int(raw, "initial_instance_count", 1) or 1,
        accelerator_type=raw.get("accelerator_type"),
        endpoint_name_prefix=prefix,
        target_model=raw.get("target_model"),
        custom_attributes=raw.get("custom_attributes"),
        content_type=content_type,
        accept_type=accept_type,
        content_template=template,
        label=_column(raw, "label"),
        probability=_column(raw, "probability"),
        label_headers=_label_headers(raw),
    )


def _check_bias(config: AnalysisConfig) -> None:
    wants_bias = config.pre_training_methods is not None or config.post_training_methods is not None
    if not wants_bias:
        return
    if config.label is None:
        raise _fail("label", "is missing but bias metrics were requested", "name the label column")
    if not config.label_values_or_threshold:
        raise _fail("label_values_or_threshold", "is missing", "give the positive label values or a threshold")
    if not config.facets:
        raise _fail("facet", "is missing but bias metrics were requested", "name at least one facet column")


def _check_model(config: AnalysisConfig) -> None:
    if config.needs_model and config.predictor is None:
        raise _fail(
            "predictor",
            "is missing: post-training bias (without 'predicted_label'), SHAP and PDP need a model",
            "add ModelConfig (model_name or endpoint_name)",
        )
    if config.dataset_type in ("application/jsonlines", "application/json") and not config.features:
        raise _fail("features", f"is required for dataset_type {config.dataset_type}", "give a JMESPath")


def _str_tuple(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(key, "must be a list of column names", "fix the value")
    return tuple(str(v) for v in value)


def parse_config(raw: Mapping[str, Any]) -> AnalysisConfig:
    """Validate a decoded ``analysis_config.json``."""
    version = raw.get("version", "1.0")
    if str(version) != "1.0":
        raise _fail("version", f"is {version!r}", 'use "1.0" (the only supported version)')
    dataset_type = raw.get("dataset_type")
    if dataset_type not in DATASET_TYPES:
        raise _fail("dataset_type", f"is {dataset_type!r}", f"use one of {list(DATASET_TYPES)}")
    methods = raw.get("methods")
    if not isinstance(methods, dict) or not set(methods) - {"report"}:
        raise _fail("methods", "requests no analysis", "add pre_training_bias, post_training_bias, shap or pdp")
    threshold = raw.get("probability_threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise _fail("probability_threshold", f"must be a number, got {threshold!r}", "write e.g. 0.5")
    shap = _shap(methods.get("shap"))
    report = methods.get("report")
    config = AnalysisConfig(
        dataset_type=dataset_type,
        dataset_uri=raw.get("dataset_uri"),
        headers=_str_tuple(raw.get("headers"), "headers"),
        label=_column(raw, "label"),
        predicted_label=_column(raw, "predicted_label"),
        features=raw.get("features"),
        label_values_or_threshold=_scalars(raw.get("label_values_or_threshold"), "label_values_or_threshold"),
        probability_threshold=float(threshold),
        facets=_facets(raw.get("facet")),
        group_variable=_column(raw, "group_variable"),
        joinsource=_column(raw, "joinsource_name_or_index"),
        excluded_columns=tuple(raw.get("excluded_columns") or ()),
        pre_training_methods=_methods(methods.get("pre_training_bias"), "pre_training_bias", PRE_TRAINING_METRICS),
        post_training_methods=_methods(methods.get("post_training_bias"), "post_training_bias", POST_TRAINING_METRICS),
        shap=shap,
        pdp=_pdp(methods.get("pdp"), shap is not None),
        report=_report(report),
        predictor=_predictor(raw.get("predictor"), dataset_type),
        raw=dict(raw),
    )
    _check_bias(config)
    _check_model(config)
    return config


def _report(raw: Any) -> ReportConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail("methods.report", "must be an object", 'write {"name": "report"}')
    return ReportConfig(
        name=str(raw.get("name") or "report"), title=str(raw.get("title") or "SageMaker Analysis Report")
    )
