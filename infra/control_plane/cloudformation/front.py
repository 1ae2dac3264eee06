"""The edge's CloudFormation front: wraps moto's WSGI app.

Every request moto serves runs with the SageMaker registry bound (so stack operations create
``AWS::SageMaker::*`` resources in our control plane); ``ExecuteChangeSet`` is executed here
(:mod:`infra.control_plane.cloudformation.changesets`: events per resource, rollback on failure), on moto's
CloudFormation backend objects. Everything else about CloudFormation (change sets, stacks, events, outputs) is moto's.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import cloudformation_backends

from infra.control_plane.cloudformation.changesets import execute_change_set
from infra.control_plane.cloudformation.resource_types import SageMakerRegistry, bound, register

logger = logging.getLogger(__name__)

__all__ = ["CloudFormationFront"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request")
_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


class CloudFormationFront:
    """``CloudFormationFront(moto_app, registry, account_id, default_region)`` is itself a WSGI app."""

    def __init__(self, moto_app: WsgiApp, registry: SageMakerRegistry, account_id: str, default_region: str) -> None:
        register()
        self._moto = moto_app
        self._registry = registry
        self._account_id = account_id
        self._default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with bound(self._registry, self._account_id):
            scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            if scope is not None and scope.group("service") == "cloudformation":
                form = _form(environ)
                if form.get("Action") == "ExecuteChangeSet":
                    return self._execute(start_response, form, scope.group("region"))
            return self._moto(environ, start_response)

    def _execute(self, start_response: Callable[..., Any], form: dict[str, str], region: str) -> list[bytes]:
        backend = cloudformation_backends[self._account_id][region or self._default_region]
        request_id = str(uuid.uuid4())
        try:
            execute_change_set(backend, form.get("ChangeSetName", ""), form.get("StackName"))
        except ValidationError as exc:
            body = (
                f'<ErrorResponse xmlns="{_NAMESPACE}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                f"<Message>{escape(exc.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            return _reply(start_response, "400 Bad Request", body)
        body = (
            f'<ExecuteChangeSetResponse xmlns="{_NAMESPACE}"><ExecuteChangeSetResult/>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></ExecuteChangeSetResponse>"
        )
        return _reply(start_response, "200 OK", body)


def _form(environ: dict[str, Any]) -> dict[str, str]:
    """The query-protocol form of a request; the body is put back for moto to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


def _reply(start_response: Callable[..., Any], status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]
