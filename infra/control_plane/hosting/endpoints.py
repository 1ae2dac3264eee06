"""Endpoints: Create/Describe/List/Delete/Update, deployed in the background through :class:`Deployer`."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.durable.record_codec import TRANSIENT
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.hosting.data_capture import CaptureWriter
from infra.control_plane.hosting.endpoint_configs import EndpointConfig, EndpointConfigs, instance_count
from infra.control_plane.hosting.endpoint_deployer import Deployer, Deployment, DeploymentError, Variant, stop_all

logger = logging.getLogger(__name__)


_DRAIN_SECONDS = 5.0


class EndpointStatus(str, enum.Enum):
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    status: EndpointStatus = EndpointStatus.CREATING
    failure_reason: str | None = None
    deployment: Deployment | None = field(default=None, metadata=TRANSIENT)  # live containers: re-deployed
    lock: threading.RLock = field(default_factory=threading.RLock)

    def set_status(self, status: EndpointStatus, reason: str | None = None) -> None:
        with self.lock:
            self.status = status
            self.failure_reason = reason
            self.last_modified = utcnow()

    def to_api(self, config: EndpointConfig | None) -> dict[str, Any]:
        with self.lock:
            deployment = self.deployment
            return {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "EndpointConfigName": self.config_name,
                "ProductionVariants": _variant_summaries(deployment) if deployment else None,
                "DataCaptureConfig": _capture_summary(config),
                "AsyncInferenceConfig": config.params.get("AsyncInferenceConfig") if config else None,
                "EndpointStatus": self.status,
                "FailureReason": self.failure_reason,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified,
            }

    def summary(self) -> dict[str, Any]:
        return {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "EndpointStatus": self.status,
        }


def _variant_summaries(deployment: Deployment) -> list[dict[str, Any]]:
    return [_variant_summary(v) for v in deployment.variants]


def _variant_summary(variant: Variant) -> dict[str, Any]:
    image = {"SpecifiedImage": variant.image, "ResolvedImage": variant.image, "ResolutionTime": variant.resolved_at}
    summary: dict[str, Any] = {
        "VariantName": variant.name,
        "DeployedImages": [image],
        "CurrentWeight": variant.weight,
        "DesiredWeight": variant.weight,
    }
    if variant.serverless is not None:
        config = {"MemorySizeInMB": variant.serverless.memory_mb, "MaxConcurrency": variant.serverless.max_concurrency}
        summary.update(CurrentServerlessConfig=config, DesiredServerlessConfig=config)
    else:
        summary.update(CurrentInstanceCount=len(variant.instances), DesiredInstanceCount=len(variant.instances))
    return summary


def _capture_summary(config: EndpointConfig | None) -> dict[str, Any] | None:
    capture = (config.params.get("DataCaptureConfig") if config else None) or None
    if capture is None:
        return None
    return {
        "EnableCapture": bool(capture.get("EnableCapture", True)),
        "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
        "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage"),
        "DestinationS3Uri": capture.get("DestinationS3Uri"),
        "KmsKeyId": capture.get("KmsKeyId"),
    }


# Create/UpdateEndpoint answer once the containers are up, if that takes at most this long (else while still
# Creating/Updating, as AWS always does). A local deployment takes seconds, and the SDK polls every 30 s: answering
# after the switch saves every `deploy()` a 30-second sleep. Clients that poll see the same statuses either way.
_SETTLE_SECONDS = 20.0

_LIST_SPEC: ListSpec[Endpoint] = ListSpec(
    name=lambda e: e.name,
    creation_time=lambda e: e.creation_time,
    status=lambda e: e.status.value,
    last_modified=lambda e: e.last_modified,
)


class Endpoints:
    def __init__(
        self,
        account_id: str,
        region: str,
        configs: EndpointConfigs,
        deployer: Deployer,
        capture: CaptureWriter,
        quotas: QuotaLedger | None = None,
    ) -> None:
        self._capture = capture
        self._account_id = account_id
        self._region = region
        self._configs = configs
        self._deployer = deployer
        self.store: Store[Endpoint] = Store(
            "endpoint", lambda name: ValidationException(f'Could not find endpoint "{name}".'), Endpoint
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("endpoint-tags", list)
        self._quotas = quotas or QuotaLedger()
        self._quotas.register("endpoint", lambda: [self._instances(e) for e in self.store.values()])

    @property
    def account_id(self) -> str:
        return self._account_id

    def arn(self, name: str) -> str:
        return arn_for("endpoint", name, self._account_id, self._region)

    def _instances(self, endpoint: Endpoint) -> int:
        """The serving containers an endpoint runs (none once Failed)."""
        config = self._configs.store.find(endpoint.config_name)
        if endpoint.status is EndpointStatus.FAILED or config is None:
            return 0
        return sum(instance_count(v) for v in config.variants)

    def create_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["EndpointName"])
        config = get_or_raise(self._configs.store, str(params["EndpointConfigName"]))
        self._quotas.check_endpoint([instance_count(v) for v in config.variants], new_endpoint=True)
        endpoint = Endpoint(name=name, arn=self.arn(name), config_name=config.name)
        self.store.add(
            name,
            endpoint,
            lambda n: ValidationException(f'Cannot create already existing endpoint "{self.arn(n)}".'),
        )
        self.tags[endpoint.arn] = tags_from(params)
        self._start(endpoint, config).join(_SETTLE_SECONDS)
        return {"EndpointArn": endpoint.arn}

    def config_of(self, endpoint: Endpoint) -> EndpointConfig | None:
        """The endpoint config the endpoint serves now."""
        return self._configs.store.find(endpoint.config_name)

    def describe_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        endpoint = get_or_raise(self.store, str(params["EndpointName"]))
        return endpoint.to_api(self._configs.store.find(endpoint.config_name))

    def list_endpoints(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.store.values(), params, _LIST_SPEC)
        return {"Endpoints": [e.summary() for e in page], "NextToken": token}

    def delete_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        endpoint = self.store.remove(str(params["EndpointName"]))
        endpoint.set_status(EndpointStatus.DELETING)
        with endpoint.lock:
            deployment, endpoint.deployment = endpoint.deployment, None
        stop_all([deployment])
        self._capture.flush(endpoint.name)
        return {}

    def update_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        endpoint = get_or_raise(self.store, str(params["EndpointName"]))
        config = get_or_raise(self._configs.store, str(params["EndpointConfigName"]))
        with endpoint.lock:
            if endpoint.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.FAILED):
                raise ValidationException(f'Cannot update in-progress endpoint "{endpoint.arn}".')
            counts = [instance_count(v) for v in config.variants]
            self._quotas.check_endpoint(counts, new_endpoint=False, replaced=self._instances(endpoint))
            endpoint.set_status(EndpointStatus.UPDATING)
        self._start(endpoint, config).join(_SETTLE_SECONDS)
        return {"EndpointArn": endpoint.arn}

    def halt_supervision(self) -> None:
        """Stack stop: the endpoints' containers are no longer restarted when they die (they are being stopped)."""
        for endpoint in self.store.values():
            deployment = endpoint.deployment
            if deployment is not None:
                deployment.halt_supervision()

    def recover_after_restart(self) -> list[threading.Thread]:
        """Endpoints that were serving (or being created or updated) are deployed again through the deployer, in
        parallel, from their stored endpoint config; they show Updating until their containers answer, then
        InService (Failed with the reason when the config or model is gone). Deleting ones finish deleting."""
        threads = []
        for endpoint in self.store.values():
            if endpoint.status is EndpointStatus.DELETING:
                self.store.remove(endpoint.name)
                continue
            if endpoint.status is EndpointStatus.FAILED:
                continue
            config = self._configs.store.find(endpoint.config_name)
            if config is None:
                endpoint.set_status(EndpointStatus.FAILED, f"EndpointConfig {endpoint.config_name} no longer exists.")
                self.store.changed(endpoint.name)
                continue
            endpoint.set_status(EndpointStatus.UPDATING)
            threads.append(self._start(endpoint, config))
        return threads

    def _start(self, endpoint: Endpoint, config: EndpointConfig) -> threading.Thread:
        thread = threading.Thread(
            target=self._deploy, args=(endpoint, config), name=f"endpoint-{endpoint.name}", daemon=True
        )
        thread.start()
        return thread

    def _deploy(self, endpoint: Endpoint, config: EndpointConfig) -> None:
        """Start the new deployment, then switch to it and stop the old one: no failed requests in between."""
        try:
            deployment = self._deployer.deploy(endpoint.name, config)
        except DeploymentError as exc:
            self._failed(endpoint, str(exc))
            return
        except Exception as exc:
            logger.exception("endpoint %s: deployment crashed", endpoint.name)
            self._failed(endpoint, f"InternalServerError: {exc}")
            return
        with endpoint.lock:
            if endpoint.status == EndpointStatus.DELETING:
                stop_all([deployment])
                return
            old, endpoint.deployment = endpoint.deployment, deployment
            endpoint.config_name = config.name
            endpoint.set_status(EndpointStatus.IN_SERVICE)
            deployment.on_lost = lambda reason: self._lost(endpoint, deployment, reason)
        stop_all([old], drain_seconds=_DRAIN_SECONDS)

    def _lost(self, endpoint: Endpoint, deployment: Deployment, reason: str) -> None:
        """A running deployment whose container cannot be restarted: the endpoint fails with the reason."""
        with endpoint.lock:
            if endpoint.deployment is deployment:
                endpoint.deployment = None
                endpoint.set_status(EndpointStatus.FAILED, reason[:1024])
        stop_all([deployment])

    def _failed(self, endpoint: Endpoint, reason: str) -> None:
        with endpoint.lock:
            if endpoint.deployment is not None:  # a failed update rolls back to the running deployment
                endpoint.set_status(EndpointStatus.IN_SERVICE, reason[:1024])
            else:
                endpoint.set_status(EndpointStatus.FAILED, reason[:1024])
