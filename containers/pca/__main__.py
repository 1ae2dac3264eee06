"""``python -m containers.pca train|serve``: the image's entry point (the toolkit's dense-algorithm entry).

Only the standard library and the toolkit's entry are imported here; numpy and the BLAS behind it load in the
``train``/``serve`` functions of :func:`containers.toolkit.entrypoint.dense_algorithm_main`.
"""

from __future__ import annotations

from containers.toolkit.entrypoint import dense_algorithm_main, exit_process

if __name__ == "__main__":
    exit_process(dense_algorithm_main("containers.pca", "containers.pca.serve:PCAHandler"))
