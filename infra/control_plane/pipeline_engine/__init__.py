"""SageMaker Pipelines inside the local control plane: definitions, expressions, the execution engine and the APIs."""
