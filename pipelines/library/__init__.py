"""What the pipeline definitions and the commands of ``pipelines`` share (boto3 and the SageMaker SDK only).

``run_settings`` (the target and ``conf/<target>.yml``), ``local_stack`` (starts the local stack as a subprocess),
``sdk_config`` (the SDK's config validator), ``console`` (the commands' parser start, logging and progress lines),
``execution_watch`` (follow an execution, summarise its steps), ``run_report`` (the run report), ``deployment/``
(blue/green deployment with health check, rollback and history) and ``monitor_demo/`` (the Model Monitor demo).
"""
