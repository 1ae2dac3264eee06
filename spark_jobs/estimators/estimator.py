"""Spark ML ``Estimator``/``Model`` over SageMaker: ``fit`` trains a SageMaker job, ``transform`` scores an endpoint.

``SageMakerEstimator.fit(df)`` writes the DataFrame to S3 (executors, ``spark_jobs.estimators.training_channels``), runs
``CreateTrainingJob``, creates the model and, per ``EndpointCreationPolicy``, the endpoint, and returns a
``SageMakerModel``. ``SageMakerModel.transform(df)`` appends prediction columns (``EndpointTransformer``). Both work
as stages of a ``pyspark.ml.Pipeline``. Hyperparameters are Spark ``Param``s on subclasses
(``spark_jobs.estimators.algorithms``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from pyspark.ml import Estimator, Model
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.config import AwsSettings
from spark_jobs.endpoint_scoring.deserializers import ResponseDeserializer
from spark_jobs.endpoint_scoring.endpoint_transformer import BatchingPolicy, EndpointTransformer, RuntimeClientFactory
from spark_jobs.endpoint_scoring.serializers import RequestSerializer
from spark_jobs.errors import InputDataError, SageMakerJobError
from spark_jobs.estimators.sagemaker_api import SageMakerApi, TrainingRequest, unique_name
from spark_jobs.estimators.training_channels import CONTENT_TYPES, check_numeric, write_channel
from spark_jobs.storage import Destination

logger = logging.getLogger(__name__)


class EndpointCreationPolicy(str, Enum):
    CREATE_ON_CONSTRUCT = "CREATE_ON_CONSTRUCT"  # at the end of fit()
    CREATE_ON_TRANSFORM = "CREATE_ON_TRANSFORM"  # lazily, on the first transform()
    DO_NOT_CREATE = "DO_NOT_CREATE"


@dataclass(frozen=True)
class TrainingSettings:
    image: str
    role: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    channel: str = "train"
    data_format: str = "csv"  # csv | recordio | parquet (how fit() writes the DataFrame)
    input_s3_uri: str | None = None  # default s3://sagemaker-<region>-<account>/sagestack-spark/<job>/input
    output_s3_uri: str | None = None
    max_runtime_s: int = 86400
    delete_staging_data: bool = True
    timeout_s: float = 3600.0


@dataclass(frozen=True)
class HostingSettings:
    image: str
    role: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    environment: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 1800.0


@dataclass
class CreatedResources:
    training_job: str | None = None
    model: str | None = None
    endpoint_config: str | None = None
    endpoint: str | None = None


@dataclass
class ScoringSettings:
    serializer: RequestSerializer
    deserializer: ResponseDeserializer
    features_col: str | None = "features"
    feature_columns: tuple[str, ...] = ()
    batching: BatchingPolicy = field(default_factory=BatchingPolicy)


def training_frame(
    df: DataFrame, features_col: str | None, feature_columns: tuple[str, ...], label: str | None
) -> DataFrame:
    """Label (if any) first, then one double column per feature, as the training channel formats want."""
    if label is not None and label not in df.columns:
        raise InputDataError(f"label column {label!r} is missing", fix=f"set label_col; available: {df.columns}")
    head = [F.col(label).cast("double").alias("label")] if label else []
    if feature_columns:
        missing = [c for c in feature_columns if c not in df.columns]
        if missing:
            raise InputDataError(f"feature columns {missing} are missing", fix=f"available: {df.columns}")
        out = df.select(*head, *[F.col(c) for c in feature_columns])
        check_numeric(out, "training data")
        return out.select(*[F.col(c).cast("double") for c in out.columns])
    if not features_col or features_col not in df.columns:
        raise InputDataError(f"features column {features_col!r} is missing", fix=f"available: {df.columns}")
    arrays = df.select(*head, vector_to_array(F.col(features_col)).alias("__f"))
    first = arrays.select(F.size("__f").alias("n")).first()
    if first is None:
        raise InputDataError("the training DataFrame is empty", fix="pass at least one row")
    width = int(first["n"])
    return arrays.select(*head, *[F.col("__f")[i].alias(f"f{i}") for i in range(width)])


class SageMakerModel(Model):
    """A trained SageMaker model (and maybe its endpoint) as a Spark ML ``Model``."""

    def __init__(
        self,
        scoring: ScoringSettings,
        *,
        endpoint_name: str | None = None,
        hosting: HostingSettings | None = None,
        model_data_url: str | None = None,
        policy: EndpointCreationPolicy = EndpointCreationPolicy.DO_NOT_CREATE,
        aws: AwsSettings | None = None,
        resources: CreatedResources | None = None,
    ) -> None:
        super().__init__()
        self.scoring, self.hosting, self.model_data_url = scoring, hosting, model_data_url
        self.policy, self.aws = policy, aws or AwsSettings.from_env()
        self.resources = resources or CreatedResources(endpoint=endpoint_name)
        self.endpoint_name = endpoint_name
        if policy is EndpointCreationPolicy.CREATE_ON_CONSTRUCT and not endpoint_name:
            self.create_endpoint()

    @classmethod
    def from_endpoint(
        cls, endpoint_name: str, scoring: ScoringSettings, aws: AwsSettings | None = None, timeout_s: float = 0.0
    ) -> SageMakerModel:
        """Score through an existing endpoint (it must be InService, or become so within ``timeout_s``)."""
        settings = aws or AwsSettings.from_env()
        api = SageMakerApi(settings, poll_s=1.0)
        try:
            api.wait_in_service(endpoint_name, timeout_s)
        except Exception as exc:
            if isinstance(exc, SageMakerJobError):
                raise
            raise SageMakerJobError(
                f"endpoint {endpoint_name!r} cannot be used: {exc}",
                fix="check the name (list_endpoints), region and AWS_ENDPOINT_URL",
            ) from exc
        return cls(scoring, endpoint_name=endpoint_name, aws=settings, resources=CreatedResources())

    def create_endpoint(self) -> str:
        if self.endpoint_name:
            return self.endpoint_name
        if self.hosting is None or self.model_data_url is None:
            raise SageMakerJobError(
                "this model has no endpoint and nothing to create one from",
                fix="use from_endpoint(...) or a model returned by fit()",
            )
        api = SageMakerApi(self.aws, poll_s=1.0)
        name = unique_name("sagestack-spark")
        api.create_model(
            name, self.hosting.image, self.model_data_url, self.hosting.role, dict(self.hosting.environment)
        )
        self.resources.model = name
        api.create_endpoint(name, name, self.hosting.instance_type, self.hosting.instance_count, self.hosting.timeout_s)
        self.resources.endpoint_config = self.resources.endpoint = self.endpoint_name = name
        logger.info("endpoint %s is InService", name)
        return name

    def transformer(self) -> EndpointTransformer:
        if not self.endpoint_name:
            if self.policy is not EndpointCreationPolicy.CREATE_ON_TRANSFORM:
                raise SageMakerJobError(
                    "this model has no endpoint",
                    why=f"endpoint creation policy is {self.policy.value}",
                    fix="call create_endpoint() first, or use CREATE_ON_TRANSFORM / CREATE_ON_CONSTRUCT",
                )
            self.create_endpoint()
        s = self.scoring
        return EndpointTransformer(
            endpoint_name=str(self.endpoint_name),
            features_col=s.features_col,
            feature_columns=s.feature_columns,
            serializer=s.serializer,
            deserializer=s.deserializer,
            batching=s.batching,
            client_factory=RuntimeClientFactory(self.aws),
        )

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.transformer().transform(dataset)

    def delete_resources(self) -> None:
        """Delete the endpoint, endpoint config and model this object created (never a from_endpoint one)."""
        r = self.resources
        SageMakerApi(self.aws).delete(r.endpoint if r.model else None, r.endpoint_config, r.model)
        self.resources = CreatedResources()


class SageMakerEstimator(Estimator):
    """Generic estimator: any training image that reads the written channel, any serving image."""

    hyperparameter_names: tuple[str, ...] = ()

    def __init__(
        self,
        training: TrainingSettings,
        hosting: HostingSettings,
        scoring: ScoringSettings,
        *,
        label_col: str | None = "label",
        hyperparameters: dict[str, Any] | None = None,
        endpoint_creation_policy: EndpointCreationPolicy = EndpointCreationPolicy.CREATE_ON_CONSTRUCT,
        aws: AwsSettings | None = None,
    ) -> None:
        super().__init__()
        self.training, self.hosting, self.scoring = training, hosting, scoring
        self.label_col, self.extra_hyperparameters = label_col, dict(hyperparameters or {})
        self.endpoint_creation_policy = endpoint_creation_policy
        self.aws = aws or AwsSettings.from_env()

    def hyperparameters(self) -> dict[str, str]:
        values = {
            name: self.getOrDefault(name)
            for name in self.hyperparameter_names
            if self.isSet(name) or self.hasDefault(name)
        }
        values.update(self.extra_hyperparameters)
        return {k: str(v) for k, v in values.items() if v is not None}

    def prepare_hyperparameters(self, data: DataFrame) -> None:
        """Hook: fill hyperparameters that depend on the data (e.g. ``feature_dim``)."""

    def _fit(self, dataset: DataFrame) -> SageMakerModel:
        t = self.training
        data = training_frame(dataset, self.scoring.features_col, self.scoring.feature_columns, self.label_col)
        self.prepare_hyperparameters(data)
        job = unique_name("sagestack-spark")
        input_uri = t.input_s3_uri or f"{self._default_prefix()}/{job}/input"
        output_uri = t.output_s3_uri or f"{self._default_prefix()}/{job}/output"
        staging = Destination(input_uri.rstrip("/"), self.aws)
        write_channel(data, staging, t.data_format, label_first=self.label_col is not None)
        request = TrainingRequest(
            job_name=job,
            image=t.image,
            role=t.role,
            channel=t.channel,
            s3_uri=staging.uri + "/",
            content_type=CONTENT_TYPES[t.data_format],
            output_s3_uri=output_uri,
            instance_type=t.instance_type,
            instance_count=t.instance_count,
            hyperparameters=self.hyperparameters(),
            max_runtime_s=t.max_runtime_s,
        )
        try:
            artifacts = SageMakerApi(self.aws, poll_s=1.0).train(request, t.timeout_s)
        finally:
            if t.delete_staging_data:
                staging.clear()  # only this job's own prefix (sagemaker-spark #162)
        return SageMakerModel(
            self.scoring,
            hosting=self.hosting,
            model_data_url=artifacts,
            policy=self.endpoint_creation_policy,
            aws=self.aws,
            resources=CreatedResources(training_job=job),
        )

    def _default_prefix(self) -> str:
        region = self.aws.region or "us-east-1"
        account = self.aws.client("sts").get_caller_identity()["Account"]
        bucket = f"sagemaker-{region}-{account}"
        s3 = self.aws.client("s3")
        names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in names:
            s3.create_bucket(Bucket=bucket) if region == "us-east-1" else s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        return f"s3://{bucket}/sagestack-spark"

    def with_scoring(self, **changes: Any) -> SageMakerEstimator:
        self.scoring = replace(self.scoring, **changes)
        return self
