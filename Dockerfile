# syntax=docker/dockerfile:1
# The metrics-server image: the server and the typed client installed from wheels into a virtual
# environment (not the simulator: sim/ is its own distribution and stays out of the build context), run as UID 65534 with a read-only root filesystem (the only writable path is the
# --cert-dir emptyDir at /tmp). Build from the repository root:
#   docker build -t ghcr.io/k8s-metrics-server/metrics-server:v0.1.0 .
# Reproducible: the base is pinned by digest (python:3.11-slim-bookworm), and every dependency
# is installed from image/requirements.lock with its hash (image/install.sh, which CI runs too).
# To move the base: `docker buildx imagetools inspect python:3.11-slim-bookworm`, put its digest
# here, and run `python image/lock.py` if the Python minor version or Debian release changes.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY client/ client/
COPY server/ server/
COPY image/ image/
COPY pyproject.toml README.md ./
# The locked dependencies (hash-checked, no resolution), then the client and the server built
# from this tree, so the runtime stage receives a finished environment and no build tools.
RUN sh image/install.sh /opt/venv

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
