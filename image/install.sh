#!/bin/sh
# Install the server into a new virtual environment exactly as the image does:
#
#   image/install.sh VENV
#
# The dependencies come from image/requirements.lock only (--require-hashes --no-deps: every file
# is the one hashed there), then the client and the server are built as wheels from this source
# tree and installed without dependencies; `pip check` proves the lock covers what they need.
# Used by the Dockerfile's build stage and by CI (.ci/run), which then runs `VENV/bin/metrics-server
# --version`.
set -eu
venv=$1
src=$(cd "$(dirname "$0")/.." && pwd)
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install --quiet --no-cache-dir --require-hashes --no-deps -r "$src/image/requirements.lock"
$pip wheel --quiet --no-cache-dir --no-deps --wheel-dir "$wheels" "$src/client" "$src"
$pip install --quiet --no-cache-dir --no-deps --no-index --find-links "$wheels" k8s-metrics-client k8s-metrics-server
$pip check
