"""SageMaker pipeline definitions (SDK v2) and the glue that upserts, starts and reports on them.

Everything here talks to SageMaker through boto3 and the SageMaker SDK only, so the same code runs against the local
stack (``AWS_ENDPOINT_URL``) and against AWS. The one exception is :mod:`pipelines.bootstrap`, which starts the local
stack as a subprocess (``python -m infra.cli up``) without importing ``infra``.
"""
