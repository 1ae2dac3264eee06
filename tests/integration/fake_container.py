"""A tiny SageMaker-contract container used only by the integration tests (stdlib only).

``python fake_container.py train`` / ``serve``. Hyperparameters steer it: ``fail`` (write the failure file and exit
1), ``sleep`` (seconds to train), ``marker`` (written into the model). Serving bodies ``error``, ``sleep <s>`` and
``hold <MiB> <s>`` steer the answer; ``FAKE_ECHO`` adds the request body to it. As the serving toolkit does, ``serve``
also listens on the unix socket ``SAGESTACK_BIND_TO_UNIX_SOCKET`` names (not with ``FAKE_SERVE_UNIX=none``); the
answer says which listener took the request (``via``).
"""

import json
import os
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def train():
    hps = json.loads((BASE / "input/config/hyperparameters.json").read_text())
    data = BASE / "input/data"
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file()) if data.exists() else []
    print(f"fake training with {hps} on {files}", flush=True)
    for epoch in range(3):
        print(f"[{epoch}]\ttrain-rmse:{1.0 / (epoch + 1):.3f}\tvalidation-rmse:{2.0 / (epoch + 1):.3f}", flush=True)
    print("custom: loss=0.25;", file=sys.stderr, flush=True)
    time.sleep(float(hps.get("sleep", "0")))
    if hps.get("fail"):
        (BASE / "output").mkdir(parents=True, exist_ok=True)
        (BASE / "output/failure").write_text(f"AlgorithmError: {hps['fail']}")
        print("failing on purpose", file=sys.stderr, flush=True)
        sys.exit(1)
    (BASE / "model").mkdir(parents=True, exist_ok=True)
    (BASE / "model/model.json").write_text(json.dumps({"marker": hps.get("marker", "m"), "files": files}))
    (BASE / "output/data").mkdir(parents=True, exist_ok=True)
    (BASE / "output/data/report.txt").write_text("ok")
    checkpoints = BASE / "checkpoints"
    if checkpoints.exists():
        (checkpoints / "ckpt.txt").write_text("epoch=3")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    via = "tcp"

    def log_message(self, fmt, *args):
        print("serve: " + fmt % args, flush=True)

    def _send(self, status, body, content_type="text/plain", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200 if self.path == "/ping" else 404, b"")

    def do_POST(self):
        if self.headers.get("Content-Type") == "application/x-unsupported":
            # As a model server does: answer 415 before reading the body, then drop the connection (kept alive as far
            # as the client knows: no "Connection: close").
            self._send(415, b"unsupported content type")
            self.close_connection = True
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if body == b"error":
            self._send(400, b"bad payload")
            return
        if body.startswith(b"sleep"):
            time.sleep(float(body.split(b" ")[1]))
        if body.startswith(b"hold"):  # hold <MiB> <seconds>: resident memory for a while
            held = bytearray(int(body.split(b" ")[1]) * 1024 * 1024)
            held[::4096] = b"x" * len(held[::4096])
            time.sleep(float(body.split(b" ")[2]))
        model = json.loads((BASE / "model/model.json").read_text()) if (BASE / "model/model.json").exists() else {}
        answer = {
            "marker": model.get("marker"),
            "variant": os.environ.get("VARIANT_TAG", ""),
            "content_type": self.headers.get("Content-Type"),
            "accept": self.headers.get("Accept"),
            "size": len(body),
            "via": self.via,
        }
        if os.environ.get("FAKE_ECHO"):  # what this container received (inference pipeline tests)
            answer["input"] = body.decode("utf-8", "replace")
        extra = {}
        if self.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            extra["X-Amzn-SageMaker-Custom-Attributes"] = "echo:" + self.headers["X-Amzn-SageMaker-Custom-Attributes"]
        self._send(200, json.dumps(answer).encode(), "application/json", extra)


class UnixHandler(Handler):
    via = "unix"

    def address_string(self):
        return "unix"


def serve():
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    print(f"fake serving on {port}", flush=True)
    path = os.environ.get("SAGESTACK_BIND_TO_UNIX_SOCKET")
    if path and os.environ.get("FAKE_SERVE_UNIX") != "none":
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o177)
        unix = socketserver.ThreadingUnixStreamServer(path, UnixHandler)
        os.umask(old)
        threading.Thread(target=unix.serve_forever, daemon=True).start()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    {"train": train, "serve": serve}[sys.argv[-1]]()
