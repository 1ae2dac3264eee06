"""Built-in algorithm estimators: XGBoost (CSV in, CSV out), K-Means and PCA (recordIO-protobuf in and out).

Hyperparameters are Spark ``Param``s with ``set_<name>`` setters (``xgb.set_num_round(15)``); anything else goes
through ``set_hyperparameter(name, value)``. ``feature_dim`` is filled from the data when not set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import DataFrame

from spark_jobs.config import AwsSettings
from spark_jobs.deserializers import XGBoostCSVDeserializer, kmeans_protobuf, pca_protobuf
from spark_jobs.endpoint_transformer import BatchingPolicy
from spark_jobs.estimator import (
    EndpointCreationPolicy,
    HostingSettings,
    SageMakerEstimator,
    ScoringSettings,
    TrainingSettings,
)
from spark_jobs.serializers import CSVSerializer, RecordIOProtobufSerializer

logger = logging.getLogger(__name__)

_IMAGES = {"xgboost": ("xgboost", "1.7-1"), "kmeans": ("kmeans", "1"), "pca": ("pca", "1")}


def image_uri(algorithm: str, region: str | None) -> str:
    """The AWS image URI of a built-in algorithm (offline, from the SageMaker SDK's tables)."""
    from sagemaker import image_uris

    framework, version = _IMAGES[algorithm]
    return str(image_uris.retrieve(framework, region or "us-east-1", version))


def _param(name: str, doc: str, converter: Callable[[Any], Any]) -> Param[Any]:
    return Param(Params._dummy(), name, doc, typeConverter=converter)


def _setter(name: str) -> Callable[[SageMakerEstimator, Any], SageMakerEstimator]:
    def set_value(self: SageMakerEstimator, value: Any) -> SageMakerEstimator:
        self._set(**{name: value})
        return self

    set_value.__name__ = f"set_{name}"
    return set_value


class _BuiltIn(SageMakerEstimator):
    algorithm = ""
    training_format = "recordio"

    def __init__(
        self,
        *,
        sagemaker_role: str,
        training_instance_type: str = "ml.m5.xlarge",
        training_instance_count: int = 1,
        endpoint_instance_type: str = "ml.m5.xlarge",
        endpoint_initial_instance_count: int = 1,
        features_col: str | None = "features",
        feature_columns: tuple[str, ...] = (),
        label_col: str | None = "label",
        endpoint_creation_policy: EndpointCreationPolicy = EndpointCreationPolicy.CREATE_ON_CONSTRUCT,
        training_input_s3_uri: str | None = None,
        training_output_s3_uri: str | None = None,
        image: str | None = None,
        batching: BatchingPolicy | None = None,
        aws: AwsSettings | None = None,
    ) -> None:
        settings = aws or AwsSettings.from_env()
        uri = image or image_uri(self.algorithm, settings.region)
        training = TrainingSettings(
            image=uri,
            role=sagemaker_role,
            instance_type=training_instance_type,
            instance_count=training_instance_count,
            data_format=self.training_format,
            input_s3_uri=training_input_s3_uri,
            output_s3_uri=training_output_s3_uri,
        )
        hosting = HostingSettings(uri, sagemaker_role, endpoint_instance_type, endpoint_initial_instance_count)
        scoring = self.default_scoring()
        scoring.features_col, scoring.feature_columns = features_col, tuple(feature_columns)
        scoring.batching = batching or BatchingPolicy()
        super().__init__(
            training,
            hosting,
            scoring,
            label_col=label_col,
            endpoint_creation_policy=endpoint_creation_policy,
            aws=settings,
        )

    def default_scoring(self) -> ScoringSettings:
        raise NotImplementedError

    def set_hyperparameter(self, name: str, value: Any) -> SageMakerEstimator:
        if name in self.hyperparameter_names:
            self._set(**{name: value})
        else:
            self.extra_hyperparameters[name] = value
        return self

    def prepare_hyperparameters(self, data: DataFrame) -> None:
        if "feature_dim" in self.hyperparameter_names and not self.isSet("feature_dim"):
            self._set(feature_dim=len(data.columns) - (1 if self.label_col else 0))


class XGBoostSageMakerEstimator(_BuiltIn):
    """SageMaker XGBoost 1.7-1 (algorithm mode): trains on CSV (label first), scores CSV -> ``prediction``."""

    algorithm, training_format = "xgboost", "csv"
    hyperparameter_names = (
        "num_round",
        "objective",
        "num_class",
        "max_depth",
        "eta",
        "subsample",
        "min_child_weight",
        "gamma",
        "colsample_bytree",
        "eval_metric",
        "seed",
        "tree_method",
    )
    num_round = _param("num_round", "boosting rounds", TypeConverters.toInt)
    objective = _param("objective", "learning objective", TypeConverters.toString)
    num_class = _param("num_class", "classes (multi:*)", TypeConverters.toInt)
    max_depth = _param("max_depth", "tree depth", TypeConverters.toInt)
    eta = _param("eta", "learning rate", TypeConverters.toFloat)
    subsample = _param("subsample", "row subsampling", TypeConverters.toFloat)
    min_child_weight = _param("min_child_weight", "minimum child weight", TypeConverters.toFloat)
    gamma = _param("gamma", "minimum split loss", TypeConverters.toFloat)
    colsample_bytree = _param("colsample_bytree", "column subsampling", TypeConverters.toFloat)
    eval_metric = _param("eval_metric", "evaluation metric", TypeConverters.toString)
    seed = _param("seed", "random seed", TypeConverters.toInt)
    tree_method = _param("tree_method", "tree method", TypeConverters.toString)
    set_num_round, set_objective, set_num_class = _setter("num_round"), _setter("objective"), _setter("num_class")
    set_max_depth, set_eta, set_subsample = _setter("max_depth"), _setter("eta"), _setter("subsample")
    set_min_child_weight, set_gamma = _setter("min_child_weight"), _setter("gamma")
    set_colsample_bytree, set_eval_metric = _setter("colsample_bytree"), _setter("eval_metric")
    set_seed, set_tree_method = _setter("seed"), _setter("tree_method")

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(CSVSerializer(), XGBoostCSVDeserializer())

    def prepare_hyperparameters(self, data: DataFrame) -> None:
        super().prepare_hyperparameters(data)
        if self.isSet("objective") and self.getOrDefault("objective") == "multi:softprob":
            width = int(self.getOrDefault("num_class"))
            self.scoring.deserializer = XGBoostCSVDeserializer(width=width)


class KMeansSageMakerEstimator(_BuiltIn):
    """SageMaker K-Means: trains on recordIO-protobuf, scores -> ``closest_cluster``, ``distance_to_cluster``."""

    algorithm = "kmeans"
    hyperparameter_names = (
        "k",
        "feature_dim",
        "mini_batch_size",
        "init_method",
        "max_iterations",
        "tol",
        "epochs",
        "extra_center_factor",
        "local_lloyd_max_iter",
        "eval_metrics",
    )
    k = _param("k", "number of clusters", TypeConverters.toInt)
    feature_dim = _param("feature_dim", "features per row (default: from the data)", TypeConverters.toInt)
    mini_batch_size = _param("mini_batch_size", "rows per mini-batch", TypeConverters.toInt)
    init_method = _param("init_method", "random | kmeans++", TypeConverters.toString)
    max_iterations = _param("max_iterations", "local Lloyd iterations", TypeConverters.toInt)
    tol = _param("tol", "tolerance", TypeConverters.toFloat)
    epochs = _param("epochs", "passes over the data", TypeConverters.toInt)
    extra_center_factor = _param("extra_center_factor", "extra centers factor", TypeConverters.toString)
    local_lloyd_max_iter = _param("local_lloyd_max_iter", "local Lloyd iterations", TypeConverters.toInt)
    eval_metrics = _param("eval_metrics", "metrics", TypeConverters.toString)
    set_k, set_feature_dim, set_mini_batch_size = _setter("k"), _setter("feature_dim"), _setter("mini_batch_size")
    set_init_method, set_max_iterations, set_tol = _setter("init_method"), _setter("max_iterations"), _setter("tol")
    set_epochs, set_eval_metrics = _setter("epochs"), _setter("eval_metrics")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label_col", None)
        super().__init__(**kwargs)

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(RecordIOProtobufSerializer(), kmeans_protobuf())


class PCASageMakerEstimator(_BuiltIn):
    """SageMaker PCA: trains on recordIO-protobuf, scores -> ``projection`` (array<double>)."""

    algorithm = "pca"
    hyperparameter_names = (
        "num_components",
        "feature_dim",
        "mini_batch_size",
        "algorithm_mode",
        "subtract_mean",
        "extra_components",
    )
    num_components = _param("num_components", "principal components", TypeConverters.toInt)
    feature_dim = _param("feature_dim", "features per row (default: from the data)", TypeConverters.toInt)
    mini_batch_size = _param("mini_batch_size", "rows per mini-batch", TypeConverters.toInt)
    algorithm_mode = _param("algorithm_mode", "regular | randomized", TypeConverters.toString)
    subtract_mean = _param("subtract_mean", "center the data", TypeConverters.toBoolean)
    extra_components = _param("extra_components", "randomized mode extra components", TypeConverters.toInt)
    set_num_components, set_feature_dim = _setter("num_components"), _setter("feature_dim")
    set_mini_batch_size, set_algorithm_mode = _setter("mini_batch_size"), _setter("algorithm_mode")
    set_subtract_mean, set_extra_components = _setter("subtract_mean"), _setter("extra_components")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label_col", None)
        super().__init__(**kwargs)

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(RecordIOProtobufSerializer(), pca_protobuf())
