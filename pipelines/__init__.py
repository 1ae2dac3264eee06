"""SageMaker pipeline definitions (SDK v2), the library they and the commands share, and the commands.

- ``credit_risk/``, ``segmentation/``: the pipeline definitions (each with the ``scripts/`` its steps run inside
  the containers, referenced by file path).
- ``library/``: what the definitions and the commands share: where a command runs (``run_settings``,
  ``local_stack``, ``sdk_config``, ``console``), following an execution and its report (``execution_watch``,
  ``run_report``), deploying a model (``deployment/``) and the Model Monitor demo (``monitor_demo/``).
- ``commands/``: one module per command, named for it, each run as ``python -m pipelines.commands.<name>``.

Everything here talks to SageMaker through boto3 and the SageMaker SDK only, so the same code runs against the local
stack (``AWS_ENDPOINT_URL``) and against AWS. The one exception is :mod:`pipelines.library.local_stack`, which starts
the local stack as a subprocess (``python -m infra.cli up``) without importing ``infra``.
"""
