"""Spark on both ends of SageMaker: feature jobs, an endpoint transformer, and a Spark-native estimator API.

``spark_jobs`` talks to SageMaker only through boto3 (never through ``infra`` or ``containers``), so pointing it at
real AWS instead of the local stack is an endpoint change (``AWS_ENDPOINT_URL``), not a code change.
"""

from spark_jobs.errors import (
    EndpointInvocationError,
    EndpointModelError,
    EndpointNotFoundError,
    FeatureJobError,
    InputDataError,
    PayloadTooLargeError,
    SageMakerJobError,
    SparkJobsError,
)

__all__ = [
    "EndpointInvocationError",
    "EndpointModelError",
    "EndpointNotFoundError",
    "FeatureJobError",
    "InputDataError",
    "PayloadTooLargeError",
    "SageMakerJobError",
    "SparkJobsError",
]
