"""SageMaker's managed MLflow: each tracking server a real ``mlflow server`` process.

See docs/experiments.md#managed-mlflow.
"""
