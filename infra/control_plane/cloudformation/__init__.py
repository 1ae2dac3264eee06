"""CloudFormation on the local stack: moto's engine, plus the resource types and the change set execution it lacks."""

from infra.control_plane.cloudformation.front import CloudFormationFront

__all__ = ["CloudFormationFront"]
