"""Scoring a DataFrame against a SageMaker endpoint: the transformer, its invoker, the request serializers and answer
deserializers, and the ``python -m spark_jobs.endpoint_scoring.score`` command.
"""
