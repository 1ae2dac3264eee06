"""``make screenshots``: PNGs of the console's main pages (docs/img/console-*.png) from a fresh in-process stack with a
small pipeline run, a training job and a registered model package, taken in headless chromium."""

import sys
import tempfile
import time
from pathlib import Path

import boto3

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.console.conftest import chromium_driver
from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE
from tests.integration.helpers import training_request, wait_training
from tests.pipelines.conftest import SCRIPT, auc_of, definition, processing, wait

BUCKET = "sagestack-console"


def _populate(url):
    clients = {
        name: boto3.client(name, endpoint_url=url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        for name in ("s3", "sagemaker")
    }
    s3, sm = clients["s3"], clients["sagemaker"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/step.py", Body=SCRIPT)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-1.csv", Body=b"1,0.5\n0,0.1\n")
    code = f"s3://{BUCKET}/code/step.py"
    body = definition(
        [
            processing("Preprocess", code, BUCKET),
            processing("Train", code, BUCKET, env={"AUC": "0.91"}, DependsOn=["Preprocess"]),
            processing("Baseline", code, BUCKET, DependsOn=["Preprocess"]),
            processing("Evaluate", code, BUCKET, env={"AUC": auc_of("Train")}, DependsOn=["Baseline"]),
        ]
    )
    sm.create_pipeline(PipelineName="credit-risk-demo", PipelineDefinition=body, RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="credit-risk-demo")["PipelineExecutionArn"]
    wait(sm, arn)
    sm.create_training_job(**training_request("xgboost-demo-train", BUCKET))
    wait_training(sm, "xgboost-demo-train")
    sm.create_model_package_group(
        ModelPackageGroupName="credit-risk", ModelPackageGroupDescription="credit-risk models"
    )
    for status in ("Approved", "PendingManualApproval"):
        sm.create_model_package(
            ModelPackageGroupName="credit-risk",
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": FAKE_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
    return arn.rsplit("/", 1)[-1]


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fake = str(Path(__file__).parents[1] / "integration" / "fake_container.py")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = StackSettings(
            data_dir=Path(data_dir), port=0, region=REGION, extra_images={FAKE_IMAGE: (sys.executable, fake)}
        )
        stack = LocalStack(settings)
        url = stack.start()
        driver = chromium_driver(1280, 800)
        try:
            execution = _populate(url)
            pages = {
                "pipelines": "/console/pipelines",
                "execution": f"/console/pipelines/credit-risk-demo/executions/{execution}",
                "step": f"/console/pipelines/credit-risk-demo/executions/{execution}/steps/Train",
                "jobs": "/console/jobs/processing",
                "training-job": "/console/jobs/training/xgboost-demo-train",
                "models": "/console/models/credit-risk",
            }
            for name, path in pages.items():
                driver.get(url + path)
                time.sleep(0.3)  # fonts and layout settle before the shot
                driver.save_screenshot(str(out / f"console-{name}.png"))
                print(out / f"console-{name}.png")
        finally:
            driver.quit()
            stack.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
