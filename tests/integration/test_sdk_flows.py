"""SageMaker SDK v2 flows of the second half: processors, model registry, data capture on deploy."""

import json
import time

import pytest

from tests.integration.conftest import FAKE_IMAGE, ROLE, XGBOOST_IMAGE, unique

SCRIPT = """
import sys
from pathlib import Path
import pandas as pd
frame = pd.read_csv("/opt/ml/processing/input/data/rows.csv", header=None)
out = Path("/opt/ml/processing/output")
out.mkdir(parents=True, exist_ok=True)
(out / "total.txt").write_text(str(int(frame.values.sum())) + " " + " ".join(sys.argv[1:]))
print("sdk processing done")
"""


@pytest.fixture
def script(tmp_path, s3, bucket):
    s3.put_object(Bucket=bucket, Key="sdk-proc/data/rows.csv", Body=b"1,2\n3,4\n")
    path = tmp_path / "process.py"
    path.write_text(SCRIPT)
    return str(path)


def _processor_io(bucket, name):
    from sagemaker.processing import ProcessingInput, ProcessingOutput

    inputs = [ProcessingInput(source=f"s3://{bucket}/sdk-proc/data", destination="/opt/ml/processing/input/data")]
    destination = f"s3://{bucket}/sdk-proc/out/{name}"
    outputs = [ProcessingOutput(source="/opt/ml/processing/output", destination=destination)]
    return inputs, outputs


@pytest.mark.expensive
def test_sdk_v2_sklearn_and_script_processors(sdk_env, script, s3, bucket):
    from sagemaker.processing import ScriptProcessor
    from sagemaker.sklearn.processing import SKLearnProcessor

    session, _ = sdk_env
    common = {"role": ROLE, "instance_type": "ml.m5.large", "instance_count": 1, "sagemaker_session": session}
    processors = {
        "sklearn": SKLearnProcessor(framework_version="1.2-1", **common),
        "xgb-script": ScriptProcessor(image_uri=XGBOOST_IMAGE, command=["python3"], **common),
    }
    for label, processor in processors.items():
        name = unique(label)
        inputs, outputs = _processor_io(bucket, name)
        processor.run(
            code=script, inputs=inputs, outputs=outputs, arguments=["--tag", label], job_name=name, logs=False
        )
        assert processor.latest_job.describe()["ProcessingJobStatus"] == "Completed"
        total = s3.get_object(Bucket=bucket, Key=f"sdk-proc/out/{name}/total.txt")["Body"].read().decode()
        assert total == f"10 --tag {label}"


@pytest.mark.expensive
def test_sdk_v2_model_register(sdk_env, sm):
    from sagemaker.model import Model

    session, bucket = sdk_env
    group = unique("sdk-group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    model = Model(
        image_uri=FAKE_IMAGE, model_data=f"s3://{bucket}/m/model.tar.gz", role=ROLE, sagemaker_session=session
    )
    package = model.register(
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"],
        model_package_group_name=group,
        approval_status="Approved",
    )
    described = sm.describe_model_package(ModelPackageName=package.model_package_arn)
    assert described["ModelApprovalStatus"] == "Approved" and described["ModelPackageVersion"] == 1
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == FAKE_IMAGE


@pytest.mark.expensive
def test_sdk_v2_deploy_with_data_capture(sdk_env, s3):
    from sagemaker.model import Model
    from sagemaker.model_monitor import DataCaptureConfig
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    session, bucket = sdk_env
    destination = f"s3://{bucket}/sdk-capture"
    model = Model(image_uri=FAKE_IMAGE, role=ROLE, sagemaker_session=session)
    name = unique("sdk-cap")
    model.deploy(
        1,
        "ml.m5.large",
        endpoint_name=name,
        data_capture_config=DataCaptureConfig(
            enable_capture=True, sampling_percentage=100, destination_s3_uri=destination
        ),
    )
    predictor = Predictor(name, sagemaker_session=session, serializer=CSVSerializer())
    try:
        predictor.predict("0.5,0.3", inference_id="sdk-1")
        deadline, records = time.monotonic() + 30, []
        while not records and time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"sdk-capture/{name}/AllTraffic/").get("Contents", [])
            records = [
                json.loads(line)
                for item in listed
                for line in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines()
            ]
            time.sleep(0.1)
        [record] = records
        assert record["captureData"]["endpointInput"]["data"] == "0.5,0.3"
        assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
        assert record["eventMetadata"]["inferenceId"] == "sdk-1"
    finally:
        predictor.delete_endpoint()
