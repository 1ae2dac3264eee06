"""The edge's moto app, with the CloudFormation front put in front of it on the first request that may need it.

A request signed for another service (S3, IAM, Logs, ...) goes straight to moto; a request signed for
``cloudformation``, or one whose service cannot be told from its signature, first builds the real
:class:`~infra.control_plane.cloudformation.front.CloudFormationFront` (importing moto's CloudFormation, ~2 s once)
and goes through it from then on. Nothing in moto's CloudFormation exists before that import, so no stack is missed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from infra.control_plane.core.store import Registry
from infra.control_plane.sagemaker_backend import SageMakerBackend

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[a-z0-9-]+/(?P<service>[a-z0-9-]+)/aws4_request")


class DeferredFront:
    """``DeferredFront(moto_app, registry, account_id, default_region)`` is a WSGI app, like the front it defers."""

    def __init__(
        self, moto_app: WsgiApp, registry: Registry[SageMakerBackend], account_id: str, default_region: str
    ) -> None:
        self._moto = moto_app
        self._args = (registry, account_id, default_region)
        self._front: WsgiApp | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        front = self._front
        if front is None and _may_be_cloudformation(environ):
            front = self.load()
        return (front or self._moto)(environ, start_response)

    def load(self) -> WsgiApp:
        """The CloudFormation front, built once (the stack's restore calls this when stacks are stored)."""
        with self._lock:
            if self._front is None:
                from infra.control_plane.cloudformation.front import CloudFormationFront

                self._front = CloudFormationFront(self._moto, *self._args)
            return self._front


def _may_be_cloudformation(environ: dict[str, Any]) -> bool:
    found = _SERVICE.search(str(environ.get("HTTP_AUTHORIZATION") or ""))
    if found is not None:
        return found.group("service") == "cloudformation"
    return "X-Amz-Credential" not in str(environ.get("QUERY_STRING") or "")  # unsigned: moto guesses; so do we
