"""The InvokeEndpoint path: routing a call to a variant's container (sagemaker_runtime), the kept-alive relay to the
containers that the runtime front uses (container_relay), and the AWS/SageMaker invocation metrics
(docs/performance.md#the-runtime-front)."""
