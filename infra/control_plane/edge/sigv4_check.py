"""SigV4 verification: botocore's own signer recomputes the client's signature from the request as received.

Checked when the settings ask for it, and always when the stack binds to a non-loopback address
(``docs/security.md``). S3 signs a declared payload hash (``X-Amz-Content-SHA256``), which is used as declared.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.config import JobCredentials, is_loopback
from infra.control_plane.edge.http_guards import EdgeRefusal

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/(?P<service>[^/\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;._-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_MAX_SKEW = timedelta(minutes=15)  # AWS refuses requests signed further from its clock than this
_ENVIRON_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def verify_signature(
    environ: Mapping[str, Any], body: bytes | None, keys: Mapping[str, str], job: JobCredentials | None = None
) -> None:
    """Raise ``EdgeRefusal`` unless the request is signed with one of ``keys``, or with ``job`` from a loopback peer
    (``body=None``: the payload hash as declared)."""
    header = str(environ.get("HTTP_AUTHORIZATION") or "")
    if not header:
        raise EdgeRefusal(
            403, "MissingAuthenticationTokenException", "Request is missing Authentication Token", "AccessDenied"
        )
    match = _AUTHORIZATION.match(header.strip())
    if match is None:
        raise EdgeRefusal(400, "IncompleteSignatureException", "Authorization header is not AWS SigV4.", "BadRequest")
    secret = _secret(match.group("key"), keys, environ, job)
    timestamp = str(environ.get("HTTP_X_AMZ_DATE") or "")
    _check_clock(timestamp, match.group("date"))
    request = _as_signed(environ, body, match.group("signed").split(";"))
    request.context["timestamp"] = timestamp
    signer_type = S3SigV4Auth if match.group("service") == "s3" else SigV4Auth
    signer = signer_type(Credentials(match.group("key"), secret), match.group("service"), match.group("region"))
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match.group("signature")):
        raise EdgeRefusal(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
            "SignatureDoesNotMatch",
        )


def _secret(key_id: str, keys: Mapping[str, str], environ: Mapping[str, Any], job: JobCredentials | None) -> str:
    if key_id in keys:
        return keys[key_id]
    if job is not None and key_id == job.key_id and is_loopback(str(environ.get("REMOTE_ADDR") or "")):
        return job.secret  # the key this start handed its jobs' containers; they reach the stack over loopback
    raise EdgeRefusal(
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "InvalidAccessKeyId",
    )


def _check_clock(timestamp: str, scope_date: str) -> None:
    try:
        signed_at = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise EdgeRefusal(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed.") from exc
    if abs(datetime.now(UTC) - signed_at) > _MAX_SKEW or not timestamp.startswith(scope_date):
        raise EdgeRefusal(
            403, "InvalidSignatureException", "Signature expired or not yet valid.", "RequestTimeTooSkewed"
        )


def _as_signed(environ: Mapping[str, Any], body: bytes | None, signed: list[str]) -> AWSRequest:
    """The request as the client signed it: its raw URI, exactly its signed headers, and its body."""
    headers: dict[str, str] = {}
    for name in signed:
        value = environ.get(_ENVIRON_NAMES.get(name, "HTTP_" + name.upper().replace("-", "_")))
        if value is None:
            raise EdgeRefusal(403, "InvalidSignatureException", f"Signed header {name} is missing.")
        headers[name] = str(value)
    host = str(environ.get("HTTP_HOST") or "")
    raw_uri = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/")
    method = str(environ.get("REQUEST_METHOD"))
    request = AWSRequest(method=method, url=f"http://{host}{raw_uri}", headers=headers, data=body or b"")
    if body is None and "x-amz-content-sha256" not in headers:
        raise EdgeRefusal(403, "InvalidSignatureException", "The payload hash is missing.")
    return request
