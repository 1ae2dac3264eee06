"""Helpers for the Clarify container tests: a processing-job tree under a base directory, an in-process model, and a
stub of the two AWS APIs the container calls (SageMaker endpoint management and runtime InvokeEndpoint)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from containers.clarify.model_access.predictor_codec import ModelOutput

REPO = Path(__file__).resolve().parents[4]
GERMAN_CREDIT = REPO / "data" / "german_credit.csv"


class FunctionModel:
    """An in-process model: ``fn(features as float matrix) -> scores``; counts the rows it saw."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.fn = fn
        self.rows = 0

    def predict(self, frame: pd.DataFrame) -> ModelOutput:
        self.rows += len(frame)
        scores = np.asarray(self.fn(frame.to_numpy(dtype=np.float64)), dtype=np.float64)
        return ModelOutput(scores.reshape(len(frame), -1), None)


def layout_job(base: Path, config: dict[str, Any], data: str, name: str = "data.csv") -> Path:
    """``<base>/processing/input/{config,data}`` as the platform mounts them; returns the output directory."""
    config_dir = base / "processing" / "input" / "config"
    data_dir = base / "processing" / "input" / "data"
    config_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    (config_dir / "analysis_config.json").write_text(json.dumps(config))
    (data_dir / name).write_text(data)
    return base / "processing" / "output"


@dataclass
class StubAws:
    """Records every SageMaker call; ``score`` turns a CSV feature matrix into one score per row."""

    score: Callable[[np.ndarray], np.ndarray]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    url: str = ""
    malformed: bool = False


def _handler(stub: StubAws) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/endpoints/"):
                self._invoke(body)
            else:
                self._sagemaker(self.headers.get("X-Amz-Target", "").split(".")[-1], json.loads(body or b"{}"))

        def _invoke(self, body: bytes) -> None:
            rows = np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2)
            scores = stub.score(rows)
            text = "\n".join(repr(float(s)) for s in scores) if not stub.malformed else "oops\n"
            self._reply(200, text.encode(), "text/csv")

        def _sagemaker(self, operation: str, request: dict[str, Any]) -> None:
            stub.calls.append((operation, request))
            answer: dict[str, Any] = {}
            if operation == "CreateEndpoint":
                stub.endpoints[request["EndpointName"]] = "InService"
                answer = {"EndpointArn": f"arn:aws:sagemaker:us-east-1:0:endpoint/{request['EndpointName']}"}
            elif operation == "CreateEndpointConfig":
                answer = {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:0:endpoint-config/x"}
            elif operation == "DescribeEndpoint":
                answer = {
                    "EndpointName": request["EndpointName"],
                    "EndpointArn": "arn:aws:sagemaker:us-east-1:0:endpoint/x",
                    "EndpointConfigName": request["EndpointName"],
                    "EndpointStatus": stub.endpoints.get(request["EndpointName"], "Failed"),
                    "CreationTime": 0,
                    "LastModifiedTime": 0,
                }
            elif operation == "DeleteEndpoint":
                stub.endpoints.pop(request["EndpointName"], None)
            self._reply(200, json.dumps(answer).encode(), "application/x-amz-json-1.1")

    return Handler


@pytest.fixture
def stub_aws() -> Iterator[Callable[[Callable[[np.ndarray], np.ndarray]], StubAws]]:
    servers: list[ThreadingHTTPServer] = []

    def start(score: Callable[[np.ndarray], np.ndarray]) -> StubAws:
        stub = StubAws(score)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        stub.url = f"http://127.0.0.1:{server.server_address[1]}"
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
