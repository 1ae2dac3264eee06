"""One SageMaker backend per account/region: the resource services, wired to the shared executors."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import timedelta

from infra.config import StackSettings
from infra.control_plane.athena.query_engine import DeferredQueryEngine, QueryEngine
from infra.control_plane.athena.query_executions import QueryExecutions
from infra.control_plane.core.aws_services import LogsAccess, S3Access, SqsAccess, put_metric_records
from infra.control_plane.core.catalogs.glue_catalog import GlueAccess
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.emr.emr_clusters import EmrClusters, EmrSettings
from infra.control_plane.emr.spark_steps import StepEnvironment
from infra.control_plane.execution.container_host import ContainerHost
from infra.control_plane.execution.executor_context import ExecutorContext
from infra.control_plane.execution.work_retention import EndpointFolders, JobFolders, RetentionRule, RetentionSweeper
from infra.control_plane.experiment_wiring import pipeline_jobs, search_providers, training_log_lines
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog
from infra.control_plane.experiments.experiments_api import Experiments
from infra.control_plane.experiments.job_tracking import PROCESSING, TRAINING, TRANSFORM, JobTracking
from infra.control_plane.experiments.lineage_artifacts import LineageArtifacts
from infra.control_plane.experiments.metric_series import MetricSeries
from infra.control_plane.experiments.metrics_api import SageMakerMetrics
from infra.control_plane.experiments.search_api import Search
from infra.control_plane.experiments.trial_components_api import TrialComponents
from infra.control_plane.feature_store.feature_store import FeatureStore, build_feature_store
from infra.control_plane.hosting.data_capture import CaptureWriter
from infra.control_plane.hosting.endpoint_configs import EndpointConfigs
from infra.control_plane.hosting.endpoint_deployer import Deployer, HostingContext
from infra.control_plane.hosting.endpoints import Endpoints
from infra.control_plane.hosting.invocation.invocation_metrics import NAMESPACE as INVOCATION_NAMESPACE
from infra.control_plane.hosting.invocation.invocation_metrics import InvocationMetrics
from infra.control_plane.hosting.models import Models
from infra.control_plane.lambda_functions.functions import LambdaFunctions
from infra.control_plane.mlflow_servers.mlflow_process import installed_mlflow_version
from infra.control_plane.mlflow_servers.tracking_servers import MlflowHosting, MlflowTrackingServers
from infra.control_plane.monitoring.monitoring_definitions import MonitoringJobDefinitions
from infra.control_plane.monitoring.monitoring_executions import EndpointCaptures, ExecutionContext, ExecutionRunner
from infra.control_plane.monitoring.monitoring_schedules import MonitoringSchedules
from infra.control_plane.pipeline_engine.engine import EngineSettings
from infra.control_plane.pipeline_engine.service import Pipelines
from infra.control_plane.pipeline_engine.step_types.notebook_job_step import NotebookRunner
from infra.control_plane.processing.processing_executor import ProcessingExecutor
from infra.control_plane.processing.processing_jobs import ProcessingJobs
from infra.control_plane.registry.model_packages import ModelPackages
from infra.control_plane.training.training_executor import TrainingExecutor
from infra.control_plane.training.training_jobs import TrainingJobs
from infra.control_plane.transform.transform_executor import TransformExecutor
from infra.control_plane.transform.transform_jobs import TransformJobs
from infra.control_plane.tuning.tuning_jobs import TuningJobs
from infra.control_plane.tuning.tuning_logs import LogTap
from infra.control_plane.tuning.tuning_runner import build_tuning_jobs


@dataclass
class SageMakerBackend:
    account_id: str
    region: str
    training_jobs: TrainingJobs
    models: Models
    endpoint_configs: EndpointConfigs
    endpoints: Endpoints
    transform_jobs: TransformJobs
    processing_jobs: ProcessingJobs
    model_packages: ModelPackages
    logs: LogsAccess
    capture: CaptureWriter
    invocation_metrics: InvocationMetrics
    pipelines: Pipelines = field(init=False)  # set by build_backend: its steps call the services above
    tuning_jobs: TuningJobs = field(init=False)  # set by build_backend: creates training jobs
    monitoring_job_definitions: MonitoringJobDefinitions = field(init=False)  # set by build_backend
    monitoring_schedules: MonitoringSchedules = field(init=False)  # set by build_backend: runs processing jobs
    feature_store: FeatureStore = field(init=False)  # set by build_backend: feature groups and their stores
    athena: QueryExecutions = field(init=False)  # set by build_backend: Athena over the Glue tables (offline store)
    lambda_functions: LambdaFunctions = field(init=False)  # set by build_backend: Lambda, run as local processes
    emr: EmrClusters = field(init=False)  # set by build_backend: EMR clusters as local Spark standalone clusters
    experiments: Experiments = field(init=False)  # set by build_backend (with trial_components, search, ...)
    trial_components: TrialComponents = field(init=False)
    search: Search = field(init=False)  # reads every family above
    lineage: LineageArtifacts = field(init=False)
    sagemaker_metrics: SageMakerMetrics = field(init=False)  # the sagemaker-metrics service (edge: by path)
    retention: RetentionSweeper = field(init=False)  # set by build_backend: removes expired job/endpoint folders
    mlflow_servers: MlflowTrackingServers = field(init=False)  # set by build_backend: managed MLflow servers

    def services(self) -> tuple[object, ...]:
        """The objects whose ``snake_case`` methods are API operations."""
        return (
            self.training_jobs,
            self.models,
            self.endpoint_configs,
            self.endpoints,
            self.transform_jobs,
            self.processing_jobs,
            self.model_packages,
            self.pipelines,
            self.pipelines.callbacks,
            self.pipelines.versions,
            self.tuning_jobs,
            self.monitoring_job_definitions,
            self.monitoring_schedules,
            self.feature_store.feature_groups,
            self.experiments,
            self.trial_components,
            self.search,
            self.lineage,
            self.mlflow_servers,
        )

    def close(self) -> None:
        """Stack stop: no endpoint container is restarted any more, stop the monitoring scheduler, write what data
        capture still buffers (the container runtime then stops the containers)."""
        self.endpoints.halt_supervision()
        self.training_jobs.warm_pools.close()
        self.retention.close()
        self.monitoring_schedules.close()
        self.capture.close()
        self.invocation_metrics.close()
        self.athena.close()
        self.feature_store.close()
        self.lambda_functions.close()
        self.emr.close()
        self.mlflow_servers.close()


def _athena_engine(s3: S3Access, glue: GlueAccess) -> QueryEngine:
    """Athena's SQL engine over the Glue tables; imported here, at the first query (DuckDB, sqlglot, pyarrow)."""
    from infra.control_plane.athena.sql_engine import SqlEngine
    from infra.control_plane.athena.table_sources import TableSources

    return SqlEngine(TableSources(s3, glue))


def _retention(settings: StackSettings, jobs: list[JobFolders], endpoints: list[EndpointFolders]) -> RetentionSweeper:
    """The retention sweeper of one account/region's job and endpoint folders, started."""
    rule = RetentionRule(
        timedelta(hours=settings.keep_completed_jobs_hours), timedelta(hours=settings.keep_failed_jobs_hours)
    )
    sweeper = RetentionSweeper(rule, jobs, endpoints, settings.retention_sweep_seconds)
    sweeper.start()
    return sweeper


def build_backend(settings: StackSettings, containers: ContainerHost, account_id: str, region: str) -> SageMakerBackend:
    s3, logs = S3Access(account_id), LogTap(account_id, region)  # LogTap: tuning jobs read training logs
    quotas = QuotaLedger(settings.quotas)  # one per account/region, as AWS's quotas
    catalog, series = ExperimentCatalog(account_id, region), MetricSeries()
    tracking = JobTracking(catalog, series, training_log_lines(account_id, region))  # wraps the job launchers
    training = ExecutorContext(
        account_id=account_id,
        region=region,
        stack_url=settings.url,
        work_root=settings.data_dir / "training-jobs" / account_id / region,
        containers=containers,
        s3=s3,
        logs=logs,
        job_credentials=settings.job_credentials,
        quotas=settings.quotas,
    )
    models = Models(account_id, region)
    configs = EndpointConfigs(account_id, region, models, quotas)
    capture = CaptureWriter(s3, settings.capture_flush_seconds)
    hosting = HostingContext(
        account_id=account_id,
        region=region,
        work_root=settings.data_dir / "endpoints" / account_id / region,
        containers=containers,
        s3=s3,
        logs=logs,
        startup_timeout_seconds=settings.endpoint_startup_timeout_seconds,
        restart_check_seconds=settings.restart_check_seconds,
    )
    deployer = Deployer(hosting, models)
    endpoints = Endpoints(account_id, region, configs, deployer, capture, quotas)
    transform_ctx = replace(training, work_root=settings.data_dir / "transform-jobs" / account_id / region)
    processing_ctx = replace(training, work_root=settings.data_dir / "processing-jobs" / account_id / region)
    backend = SageMakerBackend(
        account_id=account_id,
        region=region,
        training_jobs=TrainingJobs(
            account_id,
            region,
            tracking.launcher(TrainingExecutor(training), TRAINING),
            quotas,
            containers.release_warm_pool,
        ),
        models=models,
        endpoint_configs=configs,
        endpoints=endpoints,
        transform_jobs=TransformJobs(
            account_id,
            region,
            models,
            tracking.launcher(
                TransformExecutor(transform_ctx, models, settings.endpoint_startup_timeout_seconds), TRANSFORM
            ),
            quotas,
        ),
        processing_jobs=ProcessingJobs(
            account_id, region, tracking.launcher(ProcessingExecutor(processing_ctx), PROCESSING), quotas
        ),
        model_packages=ModelPackages(account_id, region),
        logs=logs,
        capture=capture,
        invocation_metrics=InvocationMetrics(
            functools.partial(put_metric_records, account_id, region, default_namespace=INVOCATION_NAMESPACE),
            settings.endpoint_metrics_seconds,
        ),
    )
    backend.tuning_jobs = build_tuning_jobs(settings, backend.training_jobs, logs, account_id, region, quotas)
    captures = EndpointCaptures(endpoints, configs, capture)
    backend.monitoring_job_definitions = MonitoringJobDefinitions(
        account_id, region, lambda name: backend.processing_jobs.store.find(name) is not None
    )
    backend.monitoring_schedules = MonitoringSchedules(
        account_id,
        region,
        backend.monitoring_job_definitions,
        ExecutionRunner(
            ExecutionContext(account_id, region, s3, backend.processing_jobs, captures, processing_ctx.work_root)
        ),
        captures.exists,
        settings.monitor_tick_seconds,
    )
    backend.feature_store = build_feature_store(
        account_id, region, s3, settings.data_dir, settings.feature_store_flush_seconds
    )
    backend.retention = _retention(
        settings,
        [
            JobFolders(training.work_root, backend.training_jobs.store.values),
            JobFolders(processing_ctx.work_root, backend.processing_jobs.store.values),
            JobFolders(transform_ctx.work_root, backend.transform_jobs.store.values),
        ],
        [EndpointFolders(hosting.work_root, deployer.working_dirs)],
    )
    engine = DeferredQueryEngine(lambda: _athena_engine(s3, GlueAccess(account_id, region)))
    backend.athena = QueryExecutions(s3, engine, backend.feature_store.offline.flush)
    backend.lambda_functions = LambdaFunctions(
        account_id, region, s3, settings.data_dir / "lambda" / account_id / region, settings.url
    )
    engine_settings = EngineSettings(
        settings.pipeline_poll_seconds,
        settings.pipeline_max_parallel_steps,
        settings.pipeline_callback_timeout_seconds,
    )
    backend.pipelines = Pipelines(
        account_id, region, backend.services, s3, engine_settings, SqsAccess(account_id, region)
    )
    backend.pipelines.invoke_lambda = backend.lambda_functions.invoke_function
    backend.emr = EmrClusters(
        account_id,
        region,
        StepEnvironment(settings.url, region, s3),
        EmrSettings(settings.data_dir / "emr" / account_id / region, settings.url),
    )
    backend.pipelines.emr = backend.emr
    backend.pipelines.notebooks = NotebookRunner(
        settings.data_dir / "notebook-jobs" / account_id / region, s3, settings.url, region
    )
    _add_experiments(backend, catalog, series)
    tracking.gather_from(pipeline_jobs(backend))
    backend.mlflow_servers = MlflowTrackingServers(
        account_id, region, _mlflow_hosting(settings, s3, account_id, region), backend.model_packages
    )
    return backend


def _mlflow_hosting(settings: StackSettings, s3: S3Access, account_id: str, region: str) -> MlflowHosting:
    stack_env = {
        "AWS_ENDPOINT_URL": settings.url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **settings.job_credentials.environment(),
    }
    return MlflowHosting(
        work_root=settings.data_dir / "mlflow-tracking-servers" / account_id / region,
        stack_env=stack_env,
        startup_timeout_seconds=settings.endpoint_startup_timeout_seconds,
        mlflow_version=installed_mlflow_version(),
        bucket_exists=s3.bucket_exists,
    )


def _add_experiments(backend: SageMakerBackend, catalog: ExperimentCatalog, series: MetricSeries) -> None:
    backend.experiments = Experiments(catalog)
    backend.trial_components = TrialComponents(catalog, series)
    backend.sagemaker_metrics = SageMakerMetrics(catalog, series)
    backend.lineage = LineageArtifacts(backend.account_id, backend.region)
    backend.search = Search(catalog, search_providers(backend))
