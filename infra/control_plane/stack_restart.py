"""The stack's durable state at start and stop: open the database, restore, recover, flush (docs/local-stack.md).

At start: the state database is opened (refusing a newer schema), moto's S3 is refilled from the object mirror and
its IAM, CloudWatch Logs and metrics and ECR from theirs,
every account/region with stored records gets its backend (its stores load their records), and each family
recovers what was running: jobs, executions and tuning jobs end Failed with the restart reason, monitoring
schedules are armed again, and endpoints are re-deployed through the deployer, in parallel, in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from infra.config import StackSettings
from infra.control_plane.core.durable.moto_mirror import MirroredService, MotoMirror
from infra.control_plane.core.durable.record_journal import RecordJournal, bind_records
from infra.control_plane.core.durable.s3_mirror import S3Mirror
from infra.control_plane.core.durable.state_database import StateDatabase
from infra.control_plane.core.store import Registry
from infra.control_plane.sagemaker_backend import SageMakerBackend

logger = logging.getLogger(__name__)


class DurableState:
    """The open database, the record journal and the S3 mirror of one running stack."""

    def __init__(self, settings: StackSettings, extra: Mapping[str, MirroredService] | None = None) -> None:
        """``extra``: moto services mirrored for the layers above (the edge's CloudFormation stacks)."""
        self.db = StateDatabase(settings.data_dir)
        self.journal = RecordJournal(self.db, settings.state_flush_seconds)
        self.s3 = S3Mirror(self.db, settings.data_dir / "s3", settings.state_flush_seconds * 4)
        self.moto = MotoMirror(self.db, settings.state_flush_seconds * 4, extra)

    @contextmanager
    def binding(self, account_id: str, region: str) -> Iterator[None]:
        with bind_records(self.journal, account_id, region):
            yield

    def restore(self, registry: Registry[SageMakerBackend]) -> list[threading.Thread]:
        """Refill moto, rebuild the stored backends, recover them; the endpoint re-deployments' threads."""
        self.s3.restore()
        self.moto.restore()
        deployments: list[threading.Thread] = []
        for account_id, region in self.journal.regions():
            backend = registry.get(account_id, region)
            deployments += recover(backend)
        self.journal.flush()
        self.journal.start()
        self.s3.start()
        self.moto.start()
        return deployments

    def close(self) -> None:
        self.s3.stop()
        self.moto.stop()
        self.journal.stop()
        self.db.close()


def recover(backend: SageMakerBackend) -> list[threading.Thread]:
    """Restart semantics for one backend (docs/local-stack.md, "Restart semantics")."""
    backend.training_jobs.recover_after_restart()
    backend.processing_jobs.recover_after_restart()
    backend.transform_jobs.recover_after_restart()
    backend.tuning_jobs.recover_after_restart(backend.training_jobs.store)
    backend.pipelines.recover_after_restart()
    backend.monitoring_schedules.recover_after_restart()
    backend.feature_store.feature_groups.recover_after_restart()
    backend.lambda_functions.recover_after_restart()
    backend.athena.recover_after_restart()
    backend.mlflow_servers.recover_after_restart()
    return backend.endpoints.recover_after_restart()


def backend_factory(
    build: Callable[[str, str], SageMakerBackend], state: DurableState | None
) -> Callable[[str, str], SageMakerBackend]:
    """``build`` run inside the state binding, so the backend's stores load and write their records."""
    if state is None:
        return build

    def build_bound(account_id: str, region: str) -> SageMakerBackend:
        with state.binding(account_id, region):
            return build(account_id, region)

    return build_bound
