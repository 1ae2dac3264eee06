"""The commands of ``pipelines``, one module per command, each run as ``python -m pipelines.commands.<name>``.

A command parses its flags, calls :mod:`pipelines.library` (or a pipeline definition), prints and returns its exit
code; the work itself lives in the library. ``run_pipeline`` (``make pipeline``), ``gate`` (``make gate``),
``executions`` (list, inspect, stop, retry executions), ``deploy`` (``make deploy``), ``deployments`` (``make
deployments``), ``monitor`` (``make monitor``).
"""
