"""The ``docker`` runtime: every host of a job is a real container, run through the ``docker`` CLI (docs/images.md).

``docker_runtime`` is the runtime (:class:`DockerRuntime`, re-exported here); ``docker_cli`` wraps the CLI;
``docker_run`` builds one ``docker run``; ``docker_serving`` is an endpoint's container; ``docker_networks`` leases
job networks (reused, never shared); ``docker_relay`` lets containers reach the stack; ``docker_reaper`` removes what
a stopped engine left behind. Supervision is the process runtime's (:mod:`infra.runtime.process.jobs`).
"""

from infra.runtime.docker.docker_runtime import DockerRuntime

__all__ = ["DockerRuntime"]
