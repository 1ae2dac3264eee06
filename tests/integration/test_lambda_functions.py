"""The Lambda API served by the stack through boto3: functions run for real as local Python processes."""

import base64
import io
import json
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import REGION, ROLE, unique


def zipped(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


HANDLER = """
import os, helper
def handler(event, context):
    if event.get('raise'):
        raise ValueError('bad event: ' + event['raise'])
    if event.get('sleep'):
        import time; time.sleep(event['sleep'])
    if event.get('not_json'):
        return {1, 2}
    if event.get('allocate_mb'):
        blob = bytearray(event['allocate_mb'] * 1024 * 1024)
        return {'allocated': len(blob)}
    return {
        'echo': event, 'greeting': helper.greet(), 'name': context.function_name,
        'request_id': context.aws_request_id, 'remaining_ms': context.get_remaining_time_in_millis(),
        'colour': os.environ.get('COLOUR'), 'memory': context.memory_limit_in_mb,
    }
"""
LAYER_HELPER = "def greet():\n    return 'hello from the layer'\n"


@pytest.fixture(scope="module")
def lam(stack_url):
    return boto3.client(
        "lambda", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture(scope="module")
def function(lam):
    layer = lam.publish_layer_version(
        LayerName=unique("helpers"), Content={"ZipFile": zipped({"python/helper.py": LAYER_HELPER})}
    )
    name = unique("fn")
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zipped({"app.py": HANDLER})},
        Timeout=2,
        MemorySize=128,
        Environment={"Variables": {"COLOUR": "blue"}},
        Layers=[layer["LayerVersionArn"]],
    )
    return name, created


def invoke(lam, name, event, **kwargs):
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    return answer, json.loads(answer["Payload"].read())


def test_a_function_runs_with_its_layer_environment_and_context(lam, function):
    name, created = function
    assert created["FunctionArn"].endswith(f":function:{name}") and created["State"] == "Active"
    answer, body = invoke(lam, name, {"x": 1})
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert body["echo"] == {"x": 1} and body["greeting"] == "hello from the layer"
    assert body["name"] == name and body["colour"] == "blue" and body["memory"] == "128"
    assert body["request_id"] and 0 < body["remaining_ms"] <= 2000
    described = lam.get_function(FunctionName=created["FunctionArn"])
    assert described["Configuration"]["Handler"] == "app.handler" and described["Configuration"]["Timeout"] == 2


def test_function_errors_are_unhandled_function_errors(lam, function):
    name, _ = function
    answer, body = invoke(lam, name, {"raise": "no column"})
    assert answer["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad event: no column"
    answer, body = invoke(lam, name, {"sleep": 5})
    assert answer["FunctionError"] == "Unhandled" and "Task timed out after 2.00 seconds" in body["errorMessage"]
    answer, body = invoke(lam, name, {"not_json": True})
    assert body["errorType"] == "Runtime.MarshalError"
    answer, body = invoke(lam, name, {"allocate_mb": 1024})
    assert answer["FunctionError"] == "Unhandled"


def test_log_tail_and_update_code(lam, function):
    name, _ = function
    lam.update_function_code(
        FunctionName=name, ZipFile=zipped({"app.py": "def handler(e, c):\n    print('hi log')\n    return 7\n"})
    )
    answer, body = invoke(lam, name, {}, LogType="Tail")
    assert body == 7 and "hi log" in base64.b64decode(answer["LogResult"]).decode()


def test_aws_errors(lam, function):
    name, _ = function
    with pytest.raises(ClientError) as missing:
        lam.invoke(FunctionName="no-such-function")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as conflict:
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="a.b", Code={"ZipFile": zipped({"a.py": ""})}
        )
    assert conflict.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as unsafe:
        lam.create_function(
            FunctionName=unique("evil"),
            Runtime="python3.11",
            Role=ROLE,
            Handler="a.b",
            Code={"ZipFile": zipped({"../escape.py": "x = 1"})},
        )
    assert unsafe.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as reserved:
        lam.create_function(
            FunctionName=unique("env"),
            Runtime="python3.11",
            Role=ROLE,
            Handler="a.b",
            Code={"ZipFile": zipped({"a.py": ""})},
            Environment={"Variables": {"AWS_REGION": "x"}},
        )
    assert reserved.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_delete_function(lam):
    name = unique("gone")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="a.h", Code={"ZipFile": zipped({"a.py": ""})}
    )
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as missing:
        lam.get_function(FunctionName=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


COUNTER = """
import os
CALLS = []
def handler(event, context):
    CALLS.append(event)
    return {'calls': len(CALLS), 'colour': os.environ.get('COLOUR'), 'request_id': context.aws_request_id,
            'pid': os.getpid()}
"""


def test_every_invocation_is_a_fresh_process_with_the_current_configuration(lam):
    """The process started ahead for the next invocation (standby) never carries state or an old configuration."""
    name = unique("fresh")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="counter.handler",
        Code={"ZipFile": zipped({"counter.py": COUNTER})},
        Environment={"Variables": {"COLOUR": "blue"}},
    )
    answers = [invoke(lam, name, {"n": n})[1] for n in range(3)]
    assert [a["calls"] for a in answers] == [1, 1, 1]
    assert len({a["pid"] for a in answers}) == 3
    assert len({a["request_id"] for a in answers}) == 3
    assert {a["colour"] for a in answers} == {"blue"}
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"COLOUR": "green"}})
    assert invoke(lam, name, {})[1]["colour"] == "green"
    lam.update_function_code(FunctionName=name, ZipFile=zipped({"counter.py": COUNTER.replace("len(CALLS)", "-1")}))
    assert invoke(lam, name, {})[1]["calls"] == -1
