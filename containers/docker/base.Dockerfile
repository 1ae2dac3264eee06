# Sagestack shared base image: Python 3.11, a virtual environment on PATH, and the wheels containers/toolkit imports
# (numpy, scipy, pandas, pyarrow, Flask, gunicorn). Every algorithm image starts FROM this one, so these layers are
# stored once.
#
# Offline (this is what `python -m infra.images build` does): BASE_IMAGE is a Debian bookworm root file system made
#   with debootstrap and `docker import`ed, the build context holds a wheelhouse, and the build runs with
#   `--network none --build-arg PIP_INSTALL_OPTIONS=--no-index`.
# Online, from the repository root:
#   docker build -f containers/docker/base.Dockerfile -t sagestack/base:latest .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG PIP_INSTALL_OPTIONS=""

LABEL org.opencontainers.image.title="sagestack-base" \
      org.opencontainers.image.description="Python 3.11 and the Sagestack container toolkit's dependencies"

# XGBoost and scikit-learn need the OpenMP runtime. The offline base already has it (debootstrap --include=libgomp1);
# apt-get runs only on an online base that lacks it.
RUN if ! ldconfig -p | grep -q 'libgomp.so.1'; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOME=/tmp

# One layer: the wheels are installed, trimmed (trim-python.sh: no test suites, headers, Flight) and deleted in the
# same RUN, so neither the wheelhouse nor what the trim removes is stored.
COPY containers/docker/requirements/ wheel[s] /tmp/build/
COPY containers/docker/trim-python.sh /tmp/build/
RUN python3 -m venv "$VIRTUAL_ENV" \
    && python -m pip install $PIP_INSTALL_OPTIONS --find-links /tmp/build -r /tmp/build/base.txt \
    && sh /tmp/build/trim-python.sh "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && python -c "import flask, gunicorn, numpy, pandas, pyarrow.csv, pyarrow.parquet, scipy.sparse" \
    && rm -rf /tmp/build \
    && chmod -R a+rX "$VIRTUAL_ENV"
