"""A tiny SageMaker Runtime speaking InvokeEndpoint over HTTP, with injectable faults.

Endpoint ``scorer``: CSV rows ``id,x1,x2,...`` -> one line per row, ``id * 10 + sum(x)``. Every 7th request is
throttled (400 ThrottlingException), every 11th fails with 503; every served row id is recorded. Endpoint
``broken``: always ModelError (424) with the container's message. Any other name: ValidationError "not found".
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRuntime:
    def __init__(self, throttle_every: int = 7, fail_every: int = 11) -> None:
        self.throttle_every, self.fail_every = throttle_every, fail_every
        self.lock = threading.Lock()
        self.requests = 0
        self.throttled = 0
        self.failed = 0
        self.served: Counter[int] = Counter()
        self.max_rows_seen = 0
        self.max_bytes_seen = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def _decide(self, body: bytes) -> str:
        with self.lock:
            self.requests += 1
            n = self.requests
            self.max_bytes_seen = max(self.max_bytes_seen, len(body))
            if n % self.throttle_every == 0:
                self.throttled += 1
                return "throttle"
            if n % self.fail_every == 0:
                self.failed += 1
                return "fail"
            return "ok"

    def _score(self, body: bytes) -> bytes:
        out, ids = [], []
        for line in body.decode().strip().split("\n"):
            values = [float(v) for v in line.split(",")]
            ids.append(int(values[0]))
            out.append(repr(values[0] * 10 + sum(values[1:])))
        with self.lock:
            self.served.update(ids)
            self.max_rows_seen = max(self.max_rows_seen, len(ids))
        return ("\n".join(out) + "\n").encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, error_type: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if error_type else "text/csv")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                name = self.path.split("/")[2]
                if name == "broken":
                    error = {
                        "message": 'Received client error (400) from primary with message "bad input"',
                        "OriginalStatusCode": 400,
                        "OriginalMessage": "could not parse: feature count 3 != 5",
                        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/broken",
                    }
                    return self._send(424, json.dumps(error).encode(), "ModelError")
                if name != "scorer":
                    msg = {"message": f"Endpoint {name} of account 123456789012 not found."}
                    return self._send(400, json.dumps(msg).encode(), "ValidationError")
                decision = fake._decide(body)
                if decision == "throttle":
                    return self._send(400, b'{"message":"Rate exceeded"}', "ThrottlingException")
                if decision == "fail":
                    return self._send(503, b'{"message":"unavailable"}', "ServiceUnavailable")
                return self._send(200, fake._score(body))

        return Handler
