"""The monitored endpoint as an execution sees it: where its captures go, how to flush them, which model it serves.

A bias or explainability execution never sends its own requests to the monitored endpoint (they would land in its
data capture and be monitored later as traffic): the Clarify job gets the endpoint's model instead and calls a shadow
endpoint of it, as on AWS (``monitoring_clarify.py``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from infra.control_plane.hosting.data_capture import CaptureWriter
from infra.control_plane.hosting.endpoint_configs import EndpointConfigs
from infra.control_plane.hosting.endpoints import Endpoints
from infra.control_plane.hosting.hosting_requests import CreateEndpointConfigRequest, ProductionVariant

logger = logging.getLogger(__name__)

__all__ = ["CaptureSource", "EndpointCaptures"]


class CaptureSource(Protocol):
    """Where an endpoint's captures are (from its current endpoint config), how to flush its buffer, and the
    production variant (``ModelName``, ``InstanceType``, ...) that serves it."""

    def destination(self, endpoint: str) -> str | None: ...

    def flush(self, endpoint: str) -> None: ...

    def production_variant(self, endpoint: str) -> ProductionVariant | None: ...


class EndpointCaptures:
    """:class:`CaptureSource` over the endpoint services: the endpoint's config's ``DataCaptureConfig``."""

    def __init__(self, endpoints: Endpoints, configs: EndpointConfigs, writer: CaptureWriter) -> None:
        self._endpoints = endpoints
        self._configs = configs
        self._writer = writer

    def exists(self, endpoint: str) -> bool:
        return self._endpoints.store.find(endpoint) is not None

    def _config_request(self, endpoint: str) -> CreateEndpointConfigRequest | None:
        found = self._endpoints.store.find(endpoint)
        config = self._configs.store.find(found.config_name) if found is not None else None
        return config.request if config is not None else None

    def destination(self, endpoint: str) -> str | None:
        request = self._config_request(endpoint)
        capture = request.data_capture_config if request is not None else None
        if capture is None or not capture.destination_s3_uri or not capture.enable_capture:
            return None
        return capture.destination_s3_uri

    def flush(self, endpoint: str) -> None:
        self._writer.flush(endpoint)

    def production_variant(self, endpoint: str) -> ProductionVariant | None:
        """The first production variant of the endpoint's current config (``None`` when there is none)."""
        request = self._config_request(endpoint)
        return request.production_variants[0] if request is not None and request.production_variants else None
