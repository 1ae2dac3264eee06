"""The console's only way to the state: the SageMaker operations a user calls, through the stack's dispatcher.

Pages read with the same List/Describe operations boto3 would send, and actions are the same Update/Stop calls, so the
console never holds a second copy of the state and never bypasses validation (docs/console.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.control_plane.core.aws_services import LogsAccess
from infra.control_plane.core.resource_helpers import arn_for
from infra.control_plane.sagemaker_dispatcher import SageMakerDispatcher

MAX_LOG_EVENTS = 500


@dataclass
class ConsoleApiError(Exception):
    """A SageMaker error answer (e.g. ``ResourceNotFound``), shown on the page that asked."""

    status: int
    code: str
    message: str


class ConsoleApi:
    """Calls SageMaker operations for one account/region and reads CloudWatch Logs events of the stack."""

    def __init__(
        self, dispatcher: SageMakerDispatcher, logs: Callable[[], LogsAccess], account_id: str, region: str
    ) -> None:
        self._dispatcher = dispatcher
        self._logs = logs
        self.account_id = account_id
        self.region = region

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        body = json.dumps(params).encode()
        status, answer = self._dispatcher.handle(operation, body, self.account_id, self.region)
        if status != 200:
            code = str(answer.get("__type") or "Error")
            raise ConsoleApiError(status, code, str(answer.get("message") or answer.get("Message") or code))
        return answer

    def list_all(self, operation: str, key: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
        """Follow ``NextToken`` until ``limit`` items (the console's lists are bounded)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while len(items) < limit:
            page = self.call(operation, **params, **({"NextToken": token} if token else {}))
            items.extend(page.get(key) or [])
            token = page.get("NextToken")
            if not token:
                break
        return items[:limit]

    def log_events(self, group: str, stream_prefix: str) -> list[tuple[str, int, str]]:
        return self._logs().read(group, stream_prefix, MAX_LOG_EVENTS)

    def execution_arn(self, pipeline: str, execution_id: str) -> str:
        return f"{arn_for('pipeline', pipeline, self.account_id, self.region)}/execution/{execution_id}"
