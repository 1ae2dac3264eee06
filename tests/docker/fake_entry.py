"""Entry point of the ``sagestack-tests/fake`` image: the integration tests' fake container, run as Docker runs it.

``fake_container.serve`` binds 127.0.0.1, which a published port cannot reach inside a container, so ``serve`` here
binds ``SAGEMAKER_BIND_TO_ADDRESS`` (0.0.0.0 in the Docker runtime) with the same handler; ``train`` is unchanged.
"""

import os
import sys
from http.server import ThreadingHTTPServer

import fake_container


def serve() -> None:
    address = os.environ.get("SAGEMAKER_BIND_TO_ADDRESS", "0.0.0.0")  # inside the container only
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    print(f"fake serving on {address}:{port}", flush=True)
    ThreadingHTTPServer((address, port), fake_container.Handler).serve_forever()


if __name__ == "__main__":
    {"train": fake_container.train, "serve": serve}[sys.argv[-1]]()
