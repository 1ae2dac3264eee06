"""The PyTorch framework images (``pytorch-training``, ``pytorch-inference``, CPU): script-mode training, with
``torchrun`` across the hosts for ``torch_distributed``, and serving of ``code/inference.py`` (docs/containers.md,
"Framework containers")."""

from __future__ import annotations

__all__ = ["HANDLER"]

# The serving handler, as ``serve`` imports it in every gunicorn worker.
HANDLER = "containers.pytorch.serve:PyTorchHandler"
