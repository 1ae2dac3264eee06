"""Client request tokens as AWS honours them: the same token and request get the first answer again, the same token
with a different request is a ``ConflictException`` (docs/security.md).

Built with a ``kind`` inside a backend's record binding, the answers are stored like the control plane's records and
survive a restart (docs/local-stack.md#what-persists-where-and-how-to-reset): a client that retries a
``CreatePipeline`` across a restart gets the pipeline it created, not a second one. The oldest answers are dropped
beyond :data:`MAX_ANSWERS` per kind and account/region (nothing grows without bound).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.errors import ConflictException
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.core.store import DurableMap

MAX_ANSWERS = 10_000


@dataclass
class TokenAnswer:
    """The first answer given to one (operation, token), and the request it answered."""

    fingerprint: str
    answer: dict[str, Any]
    answered_at: datetime = field(default_factory=utcnow)


class IdempotencyTokens:
    """The answers given to requests that carried a ``ClientRequestToken``, per operation."""

    def __init__(self, kind: str | None = None) -> None:
        # (operation, token) -> its answer; stored when ``kind`` names it, else in memory only
        self._answers: DurableMap[TokenAnswer] = DurableMap(kind or "request-token", TokenAnswer if kind else None)
        self._lock = threading.Lock()

    def answer(self, operation: str, params: Mapping[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``action()``'s answer, run once per (operation, token); without a token it simply runs."""
        token = params.get("ClientRequestToken")
        if not token:
            return action()
        key, fingerprint = f"{operation}\t{token}", _fingerprint(params)
        with self._lock:
            known = self._answers.get(key)
            if known is not None:
                if known.fingerprint != fingerprint:
                    raise ConflictException(
                        f"ClientRequestToken {token} was already used for a {operation} request with different "
                        "parameters; use a new token for a different request."
                    )
                return known.answer
            result = action()
            self._answers[key] = TokenAnswer(fingerprint, result)
            self._drop_oldest()
            return result

    def _drop_oldest(self) -> None:
        excess = len(self._answers) - MAX_ANSWERS
        if excess > 0:
            by_age = sorted(self._answers.items(), key=lambda item: item[1].answered_at)
            for key, _ in by_age[:excess]:
                del self._answers[key]


def _fingerprint(params: Mapping[str, Any]) -> str:
    """The request's parameters without its token, in a canonical text."""
    return json.dumps({k: v for k, v in params.items() if k != "ClientRequestToken"}, sort_keys=True, default=str)
