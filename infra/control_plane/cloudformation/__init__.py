"""CloudFormation on the local stack: moto's engine, plus the resource types and the change set execution it lacks.

Importing moto's CloudFormation costs about 2 s (it loads moto's EC2 models and their region data), so the edge
holds a :class:`~infra.control_plane.cloudformation.deferred_front.DeferredFront` that imports it on the first
request that may be CloudFormation's, not at start-up (docs/local-stack.md#restart-semantics).
"""

from infra.control_plane.cloudformation.deferred_front import DeferredFront

__all__ = ["DeferredFront"]
