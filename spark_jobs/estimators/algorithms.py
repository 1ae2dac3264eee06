"""Built-in algorithm estimators: XGBoost (CSV in, CSV out), K-Means and PCA (recordIO-protobuf in and out).

Hyperparameters are Spark ``Param``s with ``set_<name>`` setters (``xgb.set_num_round(15)``); anything else goes
through ``set_hyperparameter(name, value)``. ``feature_dim`` is filled from the data when not set. The Params, images
and training formats come from the containers' manifests, generated into :mod:`spark_jobs.estimators.builtin_params`.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame

from spark_jobs.config import AwsSettings
from spark_jobs.endpoint_scoring.deserializers import XGBoostCSVDeserializer, kmeans_protobuf, pca_protobuf
from spark_jobs.endpoint_scoring.endpoint_transformer import BatchingPolicy
from spark_jobs.endpoint_scoring.serializers import CSVSerializer, RecordIOProtobufSerializer
from spark_jobs.estimators.builtin_params import BUILTIN_IMAGES, KMeansParams, PCAParams, XGBoostParams
from spark_jobs.estimators.estimator import (
    EndpointCreationPolicy,
    HostingSettings,
    SageMakerEstimator,
    ScoringSettings,
    TrainingSettings,
)

logger = logging.getLogger(__name__)


def image_uri(algorithm: str, region: str | None) -> str:
    """The AWS image URI of a built-in algorithm (offline, from the SageMaker SDK's tables)."""
    from sagemaker import image_uris

    framework, version = BUILTIN_IMAGES[algorithm]
    return str(image_uris.retrieve(framework, region or "us-east-1", version))


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


class XGBoostSageMakerEstimator(XGBoostParams, _BuiltIn):
    """SageMaker XGBoost 1.7-1 (algorithm mode): trains on CSV (label first), scores CSV -> ``prediction``."""

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(CSVSerializer(), XGBoostCSVDeserializer())

    def prepare_hyperparameters(self, data: DataFrame) -> None:
        super().prepare_hyperparameters(data)
        if self.isSet("objective") and self.getOrDefault("objective") == "multi:softprob":
            width = int(self.getOrDefault("num_class"))
            self.scoring.deserializer = XGBoostCSVDeserializer(width=width)


class KMeansSageMakerEstimator(KMeansParams, _BuiltIn):
    """SageMaker K-Means: trains on recordIO-protobuf, scores -> ``closest_cluster``, ``distance_to_cluster``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label_col", None)
        super().__init__(**kwargs)

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(RecordIOProtobufSerializer(), kmeans_protobuf())


class PCASageMakerEstimator(PCAParams, _BuiltIn):
    """SageMaker PCA: trains on recordIO-protobuf, scores -> ``projection`` (array<double>)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label_col", None)
        super().__init__(**kwargs)

    def default_scoring(self) -> ScoringSettings:
        return ScoringSettings(RecordIOProtobufSerializer(), pca_protobuf())
