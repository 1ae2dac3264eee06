"""The monitored endpoint as an execution sees it: where its captures go, how to flush them, which model it serves.

A bias or explainability execution never sends its own requests to the monitored endpoint (they would land in its
data capture and be monitored later as traffic): the Clarify job gets the endpoint's model instead and calls a shadow
endpoint of it, as on AWS (``monitoring_clarify.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from infra.control_plane.hosting.data_capture import CaptureWriter
from infra.control_plane.hosting.endpoint_configs import EndpointConfigs
from infra.control_plane.hosting.endpoints import Endpoints

logger = logging.getLogger(__name__)

__all__ = ["CaptureSource", "EndpointCaptures"]


class CaptureSource(Protocol):
    """Where an endpoint's captures are (from its current endpoint config), how to flush its buffer, and the
    production variant (``ModelName``, ``InstanceType``, ...) that serves it."""

    def destination(self, endpoint: str) -> str | None: ...

    def flush(self, endpoint: str) -> None: ...

    def production_variant(self, endpoint: str) -> Mapping[str, Any] | None: ...


class EndpointCaptures:
    """:class:`CaptureSource` over the endpoint services: the endpoint's config's ``DataCaptureConfig``."""

    def __init__(self, endpoints: Endpoints, configs: EndpointConfigs, writer: CaptureWriter) -> None:
        self._endpoints = endpoints
        self._configs = configs
        self._writer = writer

    def exists(self, endpoint: str) -> bool:
        return self._endpoints.store.find(endpoint) is not None

    def _config_request(self, endpoint: str) -> Mapping[str, Any]:
        found = self._endpoints.store.find(endpoint)
        config = self._configs.store.find(found.config_name) if found is not None else None
        return config.request if config is not None else {}

    def destination(self, endpoint: str) -> str | None:
        capture = self._config_request(endpoint).get("DataCaptureConfig") or {}
        uri = capture.get("DestinationS3Uri")
        return str(uri) if uri and capture.get("EnableCapture", True) else None

    def flush(self, endpoint: str) -> None:
        self._writer.flush(endpoint)

    def production_variant(self, endpoint: str) -> Mapping[str, Any] | None:
        """The first production variant of the endpoint's current config (``None`` when there is none)."""
        variants = self._config_request(endpoint).get("ProductionVariants") or []
        return variants[0] if variants and isinstance(variants[0], Mapping) else None
