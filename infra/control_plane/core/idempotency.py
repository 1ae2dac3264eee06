"""Client request tokens as AWS honours them: the same token and request get the first answer again, the same token
with a different request is a ``ConflictException`` (docs/security.md)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from infra.control_plane.core.errors import ConflictException


class IdempotencyTokens:
    """The answers given to requests that carried a ``ClientRequestToken``, per operation."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}  # -> (request fingerprint, answer)
        self._lock = threading.Lock()

    def answer(self, operation: str, params: Mapping[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``action()``'s answer, run once per (operation, token); without a token it simply runs."""
        token = params.get("ClientRequestToken")
        if not token:
            return action()
        key, fingerprint = (operation, str(token)), _fingerprint(params)
        with self._lock:
            known = self._answers.get(key)
            if known is not None:
                if known[0] != fingerprint:
                    raise ConflictException(
                        f"ClientRequestToken {token} was already used for a {operation} request with different "
                        "parameters; use a new token for a different request."
                    )
                return known[1]
            result = action()
            self._answers[key] = (fingerprint, result)
            return result


def _fingerprint(params: Mapping[str, Any]) -> str:
    """The request's parameters without its token, in a canonical text."""
    return json.dumps({k: v for k, v in params.items() if k != "ClientRequestToken"}, sort_keys=True, default=str)
