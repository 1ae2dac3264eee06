"""clarify_shap_speed: Kernel SHAP for 500 rows × 9 features (num_samples 200, 10 baseline rows) with every
prediction going through a local endpoint (``InvokeEndpoint`` via boto3 at ``AWS_ENDPOINT_URL``, a threaded HTTP
server hosting the model), versus ``shap.KernelExplainer`` calling the same model in-process with the same rows,
background and ``nsamples``. Goal: ratio = ours / shap <= 1.5.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import emit

ROWS = 500
FEATURES = 9
NUM_SAMPLES = 200
BASELINE_ROWS = 10


def make_model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - x[:, 3] + rng.normal(0, 0.5, 5000) > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(x, y)
    rows = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    return model, rows


def serve(model: Any) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rows = pd.read_csv(pd.io.common.BytesIO(body), header=None).to_numpy()
            scores = model.predict_proba(rows)[:, 1]
            answer = "\n".join(map(repr, scores.tolist())).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    try:
        import shap
    except ImportError:
        emit("clarify_shap_speed", "shap not installed: no reference to compare with", ratio="n/a")
        return
    from containers.clarify.config import PredictorConfig
    from containers.clarify.explainability.kernel_shap import explain
    from containers.clarify.explainability.shap_baseline import cluster_baseline
    from containers.clarify.model_access.predictor import EndpointModel

    model, rows = make_model()
    baseline = cluster_baseline(rows, BASELINE_ROWS, 0)
    server = serve(model)
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{server.server_address[1]}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
    )
    endpoint = EndpointModel("bench", PredictorConfig(endpoint_name="bench"))
    started = time.perf_counter()
    ours = explain(endpoint, rows, baseline, list(rows.columns), num_samples=NUM_SAMPLES, seed=0)
    our_seconds = time.perf_counter() - started
    explainer = shap.KernelExplainer(lambda x: model.predict_proba(x)[:, 1], baseline.to_numpy())
    started = time.perf_counter()
    reference = explainer.shap_values(rows.to_numpy(), nsamples=NUM_SAMPLES, silent=True)
    shap_seconds = time.perf_counter() - started
    server.shutdown()
    gap = float(np.abs(np.asarray(reference) - ours.local[:, :, 0]).max())
    emit(
        "clarify_shap_speed",
        f"shap {shap.__version__} KernelExplainer in-process vs ours through InvokeEndpoint on a local HTTP model; "
        "goal ratio <= 1.5",
        ratio=round(our_seconds / shap_seconds, 3),
        ours_s=round(our_seconds, 2),
        shap_s=round(shap_seconds, 2),
        max_abs_diff_vs_shap=f"{gap:.3g}",
    )


if __name__ == "__main__":
    main()
