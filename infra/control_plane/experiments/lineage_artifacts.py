"""Lineage artifacts and associations, as far as ``Run.log_confusion_matrix`` and friends use them.

CreateArtifact / DescribeArtifact / ListArtifacts / DeleteArtifact and AddAssociation / ListAssociations /
DeleteAssociation; lineage queries and contexts/actions are not implemented (docs/experiments.md).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.errors import ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import tags_from, utcnow
from infra.control_plane.core.store import DurableMap
from infra.control_plane.experiments.experiments_api import list_params


@dataclass
class Artifact:
    arn: str
    name: str | None
    artifact_type: str | None
    source: dict[str, Any]
    properties: dict[str, str] = field(default_factory=dict)
    creation_time: datetime = field(default_factory=utcnow)

    def to_api(self) -> dict[str, Any]:
        return {
            "ArtifactArn": self.arn,
            "ArtifactName": self.name,
            "ArtifactType": self.artifact_type,
            "Source": self.source,
            "Properties": self.properties or None,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.creation_time,
        }


@dataclass(frozen=True)
class Association:
    source_arn: str
    destination_arn: str
    association_type: str | None
    creation_time: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "SourceArn": self.source_arn,
            "DestinationArn": self.destination_arn,
            "SourceType": _type_of(self.source_arn),
            "DestinationType": _type_of(self.destination_arn),
            "AssociationType": self.association_type,
            "CreationTime": self.creation_time,
        }


def _type_of(arn: str) -> str:
    kind = arn.split(":", 5)[-1].split("/", 1)[0]
    return {"artifact": "Artifact", "experiment-trial-component": "TrialComponent"}.get(kind, kind)


_ARTIFACTS: ListSpec[Artifact] = ListSpec(name=lambda a: a.name or a.arn, creation_time=lambda a: a.creation_time)
_ASSOCIATIONS: ListSpec[Association] = ListSpec(name=lambda a: a.source_arn, creation_time=lambda a: a.creation_time)


class LineageArtifacts:
    def __init__(self, account_id: str, region: str) -> None:
        self._account_id, self._region = account_id, region
        # Durable under the record journal (docs/experiments.md#what-differs-from-aws); an association is keyed by
        # "<source ARN> <destination ARN>" (an ARN holds no space).
        self._artifacts: MutableMapping[str, Artifact] = DurableMap("lineage-artifact", Artifact)
        self._associations: MutableMapping[str, Association] = DurableMap("lineage-association", Association)
        self._lock = threading.Lock()
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("lineage-artifact-tags", list)

    def create_artifact(self, params: Mapping[str, Any]) -> dict[str, Any]:
        arn = f"arn:aws:sagemaker:{self._region}:{self._account_id}:artifact/{secrets.token_hex(16)}"
        artifact = Artifact(
            arn,
            params.get("ArtifactName"),
            params.get("ArtifactType"),
            dict(params["Source"]),
            dict(params.get("Properties") or {}),
        )
        with self._lock:
            self._artifacts[arn] = artifact
            self.tags[arn] = tags_from(params)
        return {"ArtifactArn": arn}

    def _artifact(self, arn: str) -> Artifact:
        with self._lock:
            found = self._artifacts.get(arn)
        if found is None:
            raise ResourceNotFound(f"Artifact '{arn}' does not exist.")
        return found

    def describe_artifact(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._artifact(str(params["ArtifactArn"])).to_api()

    def list_artifacts(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                a
                for a in self._artifacts.values()
                if (not params.get("SourceUri") or a.source.get("SourceUri") == params["SourceUri"])
                and (not params.get("ArtifactType") or a.artifact_type == params["ArtifactType"])
            ]
        page, token = paginate(items, list_params(params), _ARTIFACTS)
        return {"ArtifactSummaries": [a.to_api() for a in page], "NextToken": token}

    def delete_artifact(self, params: Mapping[str, Any]) -> dict[str, Any]:
        arn = params.get("ArtifactArn")
        if not arn:
            raise ValidationException("ArtifactArn is required by the local stack to delete an artifact.")
        self._artifact(str(arn))
        with self._lock:
            self._artifacts.pop(str(arn), None)
            self.tags.pop(str(arn), None)
        return {"ArtifactArn": arn}

    def add_association(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = (str(params["SourceArn"]), str(params["DestinationArn"]))
        with self._lock:
            if " ".join(key) in self._associations:
                raise ValidationException(f"Association between {key[0]} and {key[1]} already exists.")
            self._associations[" ".join(key)] = Association(*key, params.get("AssociationType"), utcnow())
        return {"SourceArn": key[0], "DestinationArn": key[1]}

    def list_associations(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            items = [
                a
                for a in self._associations.values()
                if (not params.get("SourceArn") or a.source_arn == params["SourceArn"])
                and (not params.get("DestinationArn") or a.destination_arn == params["DestinationArn"])
                and (not params.get("AssociationType") or a.association_type == params["AssociationType"])
            ]
        page, token = paginate(items, list_params(params), _ASSOCIATIONS)
        return {"AssociationSummaries": [a.to_api() for a in page], "NextToken": token}

    def delete_association(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = (str(params["SourceArn"]), str(params["DestinationArn"]))
        with self._lock:
            if self._associations.pop(" ".join(key), None) is None:
                raise ResourceNotFound(f"Association between {key[0]} and {key[1]} does not exist.")
        return {"SourceArn": key[0], "DestinationArn": key[1]}
