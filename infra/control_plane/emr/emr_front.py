"""EMR's JSON protocol (``X-Amz-Target: ElasticMapReduce.<Op>``, signed for ``elasticmapreduce``).

Every EMR request is answered here, never by moto (whose clusters run nothing): the operations of
:data:`EMR_OPERATIONS` by :class:`EmrClusters`, any other with ``UnknownOperationException`` naming what is served.
Requests are validated against botocore's EMR model; errors carry EMR's shape (``Message``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any

import botocore.session
from botocore.model import ServiceModel

from infra.control_plane.core.errors import UnknownOperationException, as_service_error
from infra.control_plane.core.serialize import shape_response
from infra.control_plane.core.validation import validate_request
from infra.control_plane.emr.emr_clusters import EmrClusters
from infra.control_plane.emr.emr_resources import InvalidRequestException

logger = logging.getLogger(__name__)

TARGET_PREFIX = "ElasticMapReduce"
SIGNING_NAME = "elasticmapreduce"
EMR_OPERATIONS = (
    "RunJobFlow",
    "DescribeCluster",
    "ListClusters",
    "TerminateJobFlows",
    "SetTerminationProtection",
    "AddJobFlowSteps",
    "DescribeStep",
    "ListSteps",
    "CancelSteps",
)
_WORD = re.compile(r"(?<=[a-z])(?=[A-Z])")


def is_emr_request(target: str, service: str | None) -> bool:
    return target.partition(".")[0] == TARGET_PREFIX or service == SIGNING_NAME


class EmrFront:
    def __init__(self, clusters: Callable[[str, str], EmrClusters]) -> None:
        self._clusters = clusters  # (account id, region) -> that account/region's clusters

    @cached_property
    def model(self) -> ServiceModel:
        return botocore.session.get_session().get_service_model("emr")

    def handle(self, target: str, body: bytes, account_id: str, region: str) -> tuple[int, dict[str, Any]]:
        prefix, _, operation = target.partition(".")
        try:
            if prefix != TARGET_PREFIX or operation not in EMR_OPERATIONS:
                raise UnknownOperationException(
                    f"{target or '(no X-Amz-Target)'}: this stack serves the EMR operations "
                    f"{', '.join(EMR_OPERATIONS)} (docs/spark.md#8-emr-clusters-locally)."
                )
            op_model = self.model.operation_model(operation)
            params = _request(body)
            validate_request(params, op_model.input_shape)
            handler = getattr(self._clusters(account_id, region), _WORD.sub("_", operation).lower())
            return 200, shape_response(handler(params), op_model.output_shape)
        except Exception as exc:
            error = as_service_error(exc, f"ElasticMapReduce.{operation}")
            return error.status, error.to_body()


def _request(body: bytes) -> dict[str, Any]:
    """The JSON object of the request (EMR answers a malformed body as an invalid request)."""
    try:
        document = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequestException(f"The request body is not a JSON document ({type(exc).__name__}).") from exc
    if isinstance(document, dict):
        return document
    raise InvalidRequestException("The request body must be a JSON object.")
