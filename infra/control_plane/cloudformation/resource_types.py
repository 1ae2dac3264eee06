"""CloudFormation resource types the embedded moto lacks or applies only in part, registered with moto's engine.

moto's CloudFormation finds a resource type's model among the direct subclasses of ``CloudFormationModel`` (keyed by
``cloudformation_type()``; a later class wins), so defining the classes below and clearing its lookup caches is the
whole registration. What each one adds:

* ``AWS::SageMaker::ModelPackageGroup``: created in OUR control plane (the edge answers the SageMaker API, not moto),
  through the registry bound to the request that runs the stack operation (:func:`bound`).
* ``AWS::IAM::OIDCProvider`` and ``AWS::S3::BucketPolicy``: moto has the APIs but no CloudFormation model.
* ``AWS::S3::Bucket``: moto's model applies BucketEncryption and Tags only; this one delegates to it, then applies
  VersioningConfiguration, PublicAccessBlockConfiguration and OwnershipControls too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.iam.models import iam_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition

from infra.control_plane.core.store import Registry
from infra.control_plane.sagemaker_backend import SageMakerBackend

SageMakerRegistry = Registry[SageMakerBackend]

logger = logging.getLogger(__name__)

__all__ = ["SageMakerRegistry", "bound", "register"]

_REGISTRY: ContextVar[tuple[SageMakerRegistry, str] | None] = ContextVar("sagestack_cloudformation", default=None)


class CloudFormationResourceError(RuntimeError):
    """A resource handler cannot run (e.g. a SageMaker resource outside a request that came through the edge)."""


@contextmanager
def bound(registry: SageMakerRegistry, account_id: str) -> Iterator[None]:
    """Stack operations run inside this block create SageMaker resources in ``registry`` (the edge's account)."""
    token = _REGISTRY.set((registry, account_id))
    try:
        yield
    finally:
        _REGISTRY.reset(token)


def register() -> None:
    """Make moto's engine see the models of this module (its model lookups are cached on first use)."""
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _properties(cloudformation_json: Mapping[str, Any]) -> dict[str, Any]:
    return dict(cloudformation_json.get("Properties") or {})


class ModelPackageGroupResource(CloudFormationModel):
    """``AWS::SageMaker::ModelPackageGroup`` in the Sagestack control plane. ``Ref`` is the group's ARN."""

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SageMaker::ModelPackageGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ModelPackageGroupName"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ModelPackageGroupArn", "ModelPackageGroupStatus")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "ModelPackageGroupArn":
            return self.arn
        if attribute_name == "ModelPackageGroupStatus":
            return "Completed"
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def _model_packages(account_id: str, region_name: str) -> Any:
        binding = _REGISTRY.get()
        if binding is None:
            raise CloudFormationResourceError(
                "AWS::SageMaker::ModelPackageGroup resources are created by the Sagestack edge: send the stack "
                "operation to the stack's endpoint"
            )
        registry, edge_account = binding  # the account the edge serves SageMaker for (moto's may differ)
        return registry.get(edge_account, region_name).model_packages

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ModelPackageGroupResource:
        props = _properties(cloudformation_json)
        name = str(props.get("ModelPackageGroupName") or resource_name)
        request: dict[str, Any] = {"ModelPackageGroupName": name, "Tags": props.get("Tags") or []}
        if props.get("ModelPackageGroupDescription"):
            request["ModelPackageGroupDescription"] = props["ModelPackageGroupDescription"]
        created = cls._model_packages(account_id, region_name).create_model_package_group(request)
        logger.info("CloudFormation created model package group %s", name)
        return cls(name, str(created["ModelPackageGroupArn"]))

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> ModelPackageGroupResource:
        props = _properties(cloudformation_json)
        name = str(props.get("ModelPackageGroupName") or original_resource.name)
        services = cls._model_packages(account_id, region_name)
        if name == original_resource.name:  # the description: updated in place
            services.groups.get_or_raise(name).description = props.get("ModelPackageGroupDescription")
            return original_resource
        replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        original_resource.delete(account_id, region_name)
        return replacement

    def delete(self, account_id: str, region_name: str) -> None:
        self._model_packages(account_id, region_name).delete_model_package_group({"ModelPackageGroupName": self.name})


class OIDCProviderResource(CloudFormationModel):
    """``AWS::IAM::OIDCProvider`` through moto's IAM backend. ``Ref`` is the provider's ARN."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::IAM::OIDCProvider"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> OIDCProviderResource:
        props = _properties(cloudformation_json)
        provider = iam_backends[account_id][get_partition(region_name)].create_open_id_connect_provider(
            url=str(props["Url"]),
            thumbprint_list=list(props.get("ThumbprintList") or []),
            client_id_list=list(props.get("ClientIdList") or []),
            tags=list(props.get("Tags") or []),
        )
        return cls(provider.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> OIDCProviderResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        iam_backends[account_id][get_partition(region_name)].delete_open_id_connect_provider(self.arn)


class BucketPolicyResource(CloudFormationModel):
    """``AWS::S3::BucketPolicy`` through moto's S3 backend (stored; moto enforces bucket policies only with auth on)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> BucketPolicyResource:
        props = _properties(cloudformation_json)
        bucket, document = str(props["Bucket"]), props["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        s3_backends[account_id][get_partition(region_name)].put_bucket_policy(bucket, text.encode())
        return cls(bucket)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> BucketPolicyResource:
        if str(_properties(cloudformation_json)["Bucket"]) != original_resource.bucket:
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        try:
            s3_backends[account_id][get_partition(region_name)].delete_bucket_policy(self.bucket)
        except MissingBucket:  # the bucket went first: its policy went with it
            logger.debug("bucket %s is gone with its policy", self.bucket)


class BucketResource(CloudFormationModel):
    """``AWS::S3::Bucket``: moto's model, then the settings it leaves out. Instances are moto's ``FakeBucket``."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::Bucket"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "BucketName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return FakeBucket.has_cfn_attr(attr)

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeBucket:
        bucket = FakeBucket.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        _apply_bucket_settings(bucket.name, _properties(cloudformation_json), account_id, region_name)
        return bucket

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> FakeBucket:
        bucket = FakeBucket.update_from_cloudformation_json(
            original_resource, new_resource_name, cloudformation_json, account_id, region_name
        )
        _apply_bucket_settings(bucket.name, _properties(cloudformation_json), account_id, region_name)
        return bucket

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        FakeBucket.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name)


def _apply_bucket_settings(bucket: str, props: Mapping[str, Any], account_id: str, region_name: str) -> None:
    backend = s3_backends[account_id][get_partition(region_name)]
    versioning = props.get("VersioningConfiguration") or {}
    if versioning.get("Status"):
        backend.put_bucket_versioning(bucket, str(versioning["Status"]))
    block = props.get("PublicAccessBlockConfiguration")
    if block:
        backend.put_public_access_block(bucket, {key: str(value).lower() for key, value in block.items()})
    ownership = (props.get("OwnershipControls") or {}).get("Rules") or []
    if ownership:
        backend.put_bucket_ownership_controls(bucket, ownership[0]["ObjectOwnership"])
