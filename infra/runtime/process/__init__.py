"""The ``process`` runtime: containers run as local subprocesses whose ``/opt/ml`` is a per-host directory.

``process_runtime`` is the runtime (:class:`ProcessRuntime`, re-exported here); ``layout`` lays out a host's
``/opt/ml`` tree; ``isolation`` makes that tree *be* ``/opt/ml``; ``host_process`` is one container process;
``jobs`` supervises the hosts of a job and ``job_runs`` collects what they wrote; ``warm_hosts`` keeps
warm-pool hosts pre-started; ``process_serving`` is a started ``serve`` process. The Docker runtime reuses
the layout and the supervision.
"""

from infra.runtime.process.process_runtime import ProcessRuntime

__all__ = ["ProcessRuntime"]
