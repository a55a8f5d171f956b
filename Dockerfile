# syntax=docker/dockerfile:1
# The metrics-server image: the server and the typed client installed from wheels into a virtual
# environment, run as UID 65534 with a read-only root filesystem (the only writable path is the
# --cert-dir emptyDir at /tmp). Build from the repository root:
#   docker build -t ghcr.io/k8s-metrics-server/metrics-server:v0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY client/ client/
COPY server/ server/
COPY sim/ sim/
COPY pyproject.toml README.md ./
# Wheels for the two local projects and every dependency, then an install from those wheels
# only, so the runtime stage receives a finished environment and no build tools.
RUN python -m pip wheel --wheel-dir /wheels ./client . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels k8s-metrics-client k8s-metrics-server

FROM ${PYTHON_IMAGE}
# pip compiled the bytecode at install time; nothing may be written at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PATH=/opt/venv/bin:$PATH
COPY --from=build /opt/venv /opt/venv
# The nobody user: numeric, so the kubelet can enforce runAsNonRoot.
USER 65534:65534
# Relative paths (the default --cert-dir is apiserver.local.config/certificates) land on /tmp.
WORKDIR /tmp
EXPOSE 10250
ENTRYPOINT ["metrics-server"]
