"""Run by SDK v3's interpreter (.venv-sdk3) for test_sdk3_experiments: a v3 ``Run`` against the stack.

Arguments: experiment name, run name, default bucket. The environment is what ``sagestack env`` exports.
"""

import sys

import boto3
from sagemaker.core.experiments.run import Run
from sagemaker.core.helper.session_helper import Session


def main(experiment: str, run_name: str, bucket: str) -> None:
    # A default bucket: v3's Session.account_id() asks STS at its public endpoint (it ignores AWS_ENDPOINT_URL).
    session = Session(boto_session=boto3.Session(), default_bucket=bucket)
    with Run(experiment_name=experiment, run_name=run_name, sagemaker_session=session) as run:
        run.log_parameters({"eta": 0.3, "objective": "binary:logistic"})
        for step in range(5):
            run.log_metric("auc", 0.5 + step / 10, step=step)
        run.log_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="confusion")


if __name__ == "__main__":
    main(*sys.argv[1:4])
