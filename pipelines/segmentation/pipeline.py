"""The segmentation pipeline, defined with the SageMaker Python SDK v2 (same definition locally and on AWS).

``Prepare`` (processing: scikit-learn digits as CSV) -> ``PCA`` (built-in PCA training) -> ``PcaModel`` +
``Project`` (batch transform: every image projected, CSV) -> ``KMeans`` (built-in K-Means on the projections) ->
``KMeansModel`` + ``Assign`` (batch transform: closest cluster and distance per image) -> ``Summarize`` (processing:
per-cluster size, majority digit, purity; ``summary.json`` as a PropertyFile).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagemaker import image_uris
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.processing import SKLearnProcessor
from sagemaker.transformer import Transformer
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterInteger
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SKLEARN_VERSION = "1.2-1"
PIXELS = 64


@dataclass(frozen=True)
class SegmentationConfig:
    """What changes between environments; everything else is the definition."""

    name: str
    role: str
    bucket: str
    rows: int = 0  # 0: all 1797 digits
    instance_type: str = "ml.m5.large"
    cache_expire_after: str = "P30D"


def build(config: SegmentationConfig, session: PipelineSession) -> Pipeline:
    """The pipeline object; ``upsert()`` and ``start()`` it with the same session."""
    components = ParameterInteger("Components", default_value=16)
    clusters = ParameterInteger("Clusters", default_value=10)
    cache = CacheConfig(enable_caching=True, expire_after=config.cache_expire_after)
    prefix = f"s3://{config.bucket}/{config.name}"
    region = session.boto_region_name

    processor = SKLearnProcessor(
        framework_version=SKLEARN_VERSION,
        role=config.role,
        instance_type=config.instance_type,
        instance_count=1,
        base_job_name=f"{config.name}-proc",
        sagemaker_session=session,
    )
    prepare = ProcessingStep(
        "Prepare",
        step_args=processor.run(
            code=str(SCRIPTS / "prepare.py"),
            outputs=[ProcessingOutput(output_name=n, source=f"/opt/ml/processing/{n}") for n in ("features", "labels")],
            arguments=["--rows", str(config.rows)],
        ),
        cache_config=cache,
    )
    outputs = prepare.properties.ProcessingOutputConfig.Outputs
    features_uri = outputs["features"].S3Output.S3Uri

    pca = _estimator(config, session, "pca", f"{prefix}/models/pca")
    pca.set_hyperparameters(feature_dim=PIXELS, num_components=components, mini_batch_size=200)
    train_pca = TrainingStep(
        "PCA", step_args=pca.fit({"train": TrainingInput(features_uri, content_type="text/csv")}), cache_config=cache
    )
    pca_model, project = _model_and_transform(
        config,
        session,
        ("PcaModel", "Project"),
        image=image_uris.retrieve("pca", region),
        model_data=train_pca.properties.ModelArtifacts.S3ModelArtifacts,
        data=features_uri,
        output=f"{prefix}/projected",
        cache=cache,
    )
    projected_uri = project.properties.TransformOutput.S3OutputPath

    kmeans = _estimator(config, session, "kmeans", f"{prefix}/models/kmeans")
    kmeans.set_hyperparameters(k=clusters, feature_dim=components, mini_batch_size=500, init_method="kmeans++")
    train_kmeans = TrainingStep(
        "KMeans",
        step_args=kmeans.fit({"train": TrainingInput(projected_uri, content_type="text/csv")}),
        cache_config=cache,
    )
    kmeans_model, assign = _model_and_transform(
        config,
        session,
        ("KMeansModel", "Assign"),
        image=image_uris.retrieve("kmeans", region),
        model_data=train_kmeans.properties.ModelArtifacts.S3ModelArtifacts,
        data=projected_uri,
        output=f"{prefix}/clusters",
        cache=cache,
    )

    summary_file = PropertyFile(name="ClusterSummary", output_name="summary", path="summary.json")
    summarize = ProcessingStep(
        "Summarize",
        step_args=processor.run(
            code=str(SCRIPTS / "summarize.py"),
            inputs=[
                ProcessingInput(
                    source=assign.properties.TransformOutput.S3OutputPath,
                    destination="/opt/ml/processing/clusters",
                    input_name="clusters",
                ),
                ProcessingInput(
                    source=outputs["labels"].S3Output.S3Uri,
                    destination="/opt/ml/processing/labels",
                    input_name="labels",
                ),
            ],
            outputs=[ProcessingOutput(output_name="summary", source="/opt/ml/processing/summary")],
        ),
        property_files=[summary_file],
        cache_config=cache,
    )
    return Pipeline(
        name=config.name,
        parameters=[components, clusters],
        steps=[prepare, train_pca, pca_model, project, train_kmeans, kmeans_model, assign, summarize],
        sagemaker_session=session,
    )


def _estimator(config: SegmentationConfig, session: PipelineSession, algorithm: str, output: str) -> Estimator:
    return Estimator(
        image_uri=image_uris.retrieve(algorithm, session.boto_region_name),
        role=config.role,
        instance_type=config.instance_type,
        instance_count=1,
        output_path=output,
        sagemaker_session=session,
    )


def _model_and_transform(
    config: SegmentationConfig,
    session: PipelineSession,
    names: tuple[str, str],
    *,
    image: str,
    model_data: Any,
    data: Any,
    output: str,
    cache: CacheConfig,
) -> tuple[ModelStep, TransformStep]:
    """A Model step and a batch transform of ``data`` through it (CSV lines in, CSV lines out, order kept)."""
    model = Model(image_uri=image, model_data=model_data, role=config.role, sagemaker_session=session)
    model_step, transform_step = names
    create = ModelStep(model_step, step_args=model.create(instance_type=config.instance_type))
    transformer = Transformer(
        model_name=create.properties.ModelName,
        instance_type=config.instance_type,
        instance_count=1,
        accept="text/csv",
        assemble_with="Line",
        strategy="MultiRecord",
        output_path=output,
        sagemaker_session=session,
    )
    transform = TransformStep(
        transform_step,
        step_args=transformer.transform(data, content_type="text/csv", split_type="Line"),
        cache_config=cache,
    )
    return create, transform
