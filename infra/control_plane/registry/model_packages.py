"""Model registry: model package groups and (versioned or unversioned) model packages."""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.errors import ConflictException, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store


class ModelApprovalStatus(str, enum.Enum):
    APPROVED = "Approved"
    REJECTED = "Rejected"
    PENDING_MANUAL_APPROVAL = "PendingManualApproval"


class ModelPackageStatus(str, enum.Enum):
    COMPLETED = "Completed"


class ModelPackageGroupStatus(str, enum.Enum):
    COMPLETED = "Completed"


_PACKAGE_ECHOED = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "SourceAlgorithmSpecification",
    "ValidationSpecification",
    "MetadataProperties",
    "ModelMetrics",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "DriftCheckBaselines",
    "AdditionalInferenceSpecifications",
    "SkipModelValidation",
    "SourceUri",
    "SecurityConfig",
    "ModelCard",
    "ModelLifeCycle",
)


@dataclass
class ModelPackageGroup:
    name: str
    arn: str
    description: str | None
    creation_time: datetime = field(default_factory=utcnow)

    def to_api(self) -> dict[str, Any]:
        return {
            "ModelPackageGroupName": self.name,
            "ModelPackageGroupArn": self.arn,
            "ModelPackageGroupDescription": self.description,
            "CreationTime": self.creation_time,
            "CreatedBy": {},
            "ModelPackageGroupStatus": ModelPackageGroupStatus.COMPLETED,
        }

    def summary(self) -> dict[str, Any]:
        body = self.to_api()
        body.pop("CreatedBy")
        return body


@dataclass
class ModelPackage:
    name: str
    arn: str
    request: Mapping[str, Any]
    group: str | None
    version: int | None
    approval: ModelApprovalStatus | None
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime | None = None
    approval_description: str | None = None
    customer_metadata: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        body = {key: self.request.get(key) for key in _PACKAGE_ECHOED}
        body.update(
            ModelPackageName=self.name,
            ModelPackageGroupName=self.group,
            ModelPackageVersion=self.version,
            ModelPackageArn=self.arn,
            CreationTime=self.creation_time,
            ModelPackageStatus=ModelPackageStatus.COMPLETED,
            ModelPackageStatusDetails={"ValidationStatuses": []},
            CertifyForMarketplace=bool(self.request.get("CertifyForMarketplace", False)),
            ModelApprovalStatus=self.approval,
            CreatedBy={},
            LastModifiedTime=self.last_modified,
            LastModifiedBy={} if self.last_modified else None,
            ApprovalDescription=self.approval_description,
            CustomerMetadataProperties=dict(self.customer_metadata) or None,
        )
        return body

    def summary(self) -> dict[str, Any]:
        return {
            "ModelPackageName": self.name,
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelPackageArn": self.arn,
            "ModelPackageDescription": self.request.get("ModelPackageDescription"),
            "CreationTime": self.creation_time,
            "ModelPackageStatus": ModelPackageStatus.COMPLETED,
            "ModelApprovalStatus": self.approval,
        }


_GROUP_LIST: ListSpec[ModelPackageGroup] = ListSpec(name=lambda g: g.name, creation_time=lambda g: g.creation_time)
_PACKAGE_LIST: ListSpec[ModelPackage] = ListSpec(name=lambda p: p.name, creation_time=lambda p: p.creation_time)


class ModelPackages:
    """Handlers for model package groups and model packages of one account/region."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()
        self.groups: Store[ModelPackageGroup] = Store(
            "model-package-group",
            lambda name: ValidationException(f"ModelPackageGroup {name} does not exist."),
            ModelPackageGroup,
        )
        self.packages: Store[ModelPackage] = Store(
            "model-package", lambda arn: ValidationException(f"ModelPackage {arn} does not exist."), ModelPackage
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("model-package-tags", list)

    def _arn(self, kind: str, name: str) -> str:
        return arn_for(kind, name, self._account_id, self._region)

    # --- groups ---------------------------------------------------------------------------------------------
    def create_model_package_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["ModelPackageGroupName"])
        description = params.get("ModelPackageGroupDescription")
        group = ModelPackageGroup(name, self._arn("model-package-group", name), description)
        self.groups.add(name, group, lambda n: ValidationException(f"Model Package Group already exists: {group.arn}"))
        self.tags[group.arn] = tags_from(params)
        return {"ModelPackageGroupArn": group.arn}

    def describe_model_package_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.groups, _name_of(str(params["ModelPackageGroupName"]))).to_api()

    def list_model_package_groups(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.groups.values(), params, _GROUP_LIST)
        return {"ModelPackageGroupSummaryList": [g.summary() for g in page], "NextToken": token}

    def delete_model_package_group(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = _name_of(str(params["ModelPackageGroupName"]))
        with self._lock:
            group = get_or_raise(self.groups, name)
            if any(p.group == name for p in self.packages.values()):
                raise ConflictException(
                    f"Model Package Group {group.arn} cannot be deleted because it contains model packages. "
                    "Delete the model packages first."
                )
            self.groups.remove(name)
        return {}

    # --- packages -------------------------------------------------------------------------------------------
    def create_model_package(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group_name = params.get("ModelPackageGroupName")
        with self._lock:
            package = self._versioned(params, str(group_name)) if group_name else self._unversioned(params)
            self.packages.add(
                package.arn, package, lambda arn: ValidationException(f"Model Package already exists: {arn}")
            )
        self.tags[package.arn] = tags_from(params)
        return {"ModelPackageArn": package.arn}

    def _versioned(self, params: Mapping[str, Any], group_name: str) -> ModelPackage:
        name = _name_of(group_name)
        get_or_raise(self.groups, name)
        version = 1 + max((p.version or 0 for p in self.packages.values() if p.group == name), default=0)
        status = ModelApprovalStatus(params.get("ModelApprovalStatus") or ModelApprovalStatus.PENDING_MANUAL_APPROVAL)
        package = ModelPackage(
            name, self._arn("model-package", f"{name}/{version}"), dict(params), name, version, status
        )
        package.customer_metadata.update(params.get("CustomerMetadataProperties") or {})
        return package

    def _unversioned(self, params: Mapping[str, Any]) -> ModelPackage:
        name = params.get("ModelPackageName")
        if not name:
            raise ValidationException("Either ModelPackageName or ModelPackageGroupName must be specified.")
        approval = params.get("ModelApprovalStatus")
        package = ModelPackage(
            str(name),
            self._arn("model-package", str(name)),
            dict(params),
            None,
            None,
            ModelApprovalStatus(approval) if approval else None,
        )
        package.customer_metadata.update(params.get("CustomerMetadataProperties") or {})
        return package

    def _package(self, name_or_arn: str) -> ModelPackage:
        arn = name_or_arn if name_or_arn.startswith("arn:") else self._arn("model-package", name_or_arn)
        return get_or_raise(self.packages, arn)

    def describe_model_package(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._package(str(params["ModelPackageName"])).to_api()

    def list_model_packages(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = params.get("ModelPackageGroupName")
        kind = params.get("ModelPackageType") or ("Versioned" if group else "Unversioned")
        approval = params.get("ModelApprovalStatus")
        selected = [
            p
            for p in self.packages.values()
            if (not group or p.group == _name_of(str(group)))
            and (kind == "Both" or (p.version is not None) == (kind == "Versioned"))
            and (not approval or (p.approval is not None and p.approval.value == approval))
        ]
        page, token = paginate(selected, params, _PACKAGE_LIST)
        return {"ModelPackageSummaryList": [p.summary() for p in page], "NextToken": token}

    def update_model_package(self, params: Mapping[str, Any]) -> dict[str, Any]:
        package = self._package(str(params["ModelPackageArn"]))
        with self._lock:
            if params.get("ModelApprovalStatus"):
                package.approval = ModelApprovalStatus(params["ModelApprovalStatus"])
            if params.get("ApprovalDescription") is not None:
                package.approval_description = str(params["ApprovalDescription"])
            package.customer_metadata.update(params.get("CustomerMetadataProperties") or {})
            for key in params.get("CustomerMetadataPropertiesToRemove") or []:
                package.customer_metadata.pop(key, None)
            package.last_modified = utcnow()
        return {"ModelPackageArn": package.arn}

    def delete_model_package(self, params: Mapping[str, Any]) -> dict[str, Any]:
        package = self._package(str(params["ModelPackageName"]))
        self.packages.remove(package.arn)
        self.tags.pop(package.arn, None)
        return {}


def _name_of(name_or_arn: str) -> str:
    """A group given by ARN (``...:model-package-group/<name>``) or by name."""
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
