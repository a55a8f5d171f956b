#!/usr/bin/env bash
# Generate the typed client from the OpenAPI spec, reproducibly.
#
#   ./codegen.sh           regenerate client/k8s_metrics/_generated and the server's packaged spec copy
#   ./codegen.sh --check   regenerate into a temporary directory and compare; list the stale files and
#                          exit 1 when the committed output differs from what the spec produces, 0 otherwise
#
# The generator and its formatter are pinned and run from their own virtualenv (.codegen-venv, created on
# first use; CODEGEN_VENV overrides the location). The ruff hooks run with --isolated so no ruff
# configuration in the repository can change the output.
set -euo pipefail
cd "$(dirname "$0")"

GENERATOR_PIN="openapi-python-client==0.29.1"
RUFF_PIN="ruff==0.17.6"
SPEC=openapi/metrics.k8s.io-v1beta1.yaml
CONFIG=openapi/codegen.yaml
CLIENT_OUT=client/k8s_metrics/_generated
SERVER_SPEC=server/metrics_server/openapi/metrics.k8s.io-v1beta1.yaml

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

VENV=${CODEGEN_VENV:-.codegen-venv}
if ! "$VENV/bin/python" -m pip show -q openapi-python-client ruff >/dev/null 2>&1 \
   || [ "$("$VENV/bin/openapi-python-client" --version 2>/dev/null)" != "openapi-python-client version: 0.29.1" ] \
   || [ "$("$VENV/bin/ruff" --version 2>/dev/null)" != "ruff 0.17.6" ]; then
  echo "codegen.sh: installing $GENERATOR_PIN and $RUFF_PIN into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$GENERATOR_PIN" "$RUFF_PIN" >&2
fi
VENV_BIN=$(cd "$VENV/bin" && pwd)
export PATH="$VENV_BIN:$PATH"   # the generator's post_hooks look ruff up on PATH
export PYTHONHASHSEED=0
unset RUFF_CACHE_DIR

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The output directory is named after the package so ruff's isort sees the relative imports as local.
openapi-python-client generate --path "$SPEC" --config "$CONFIG" --meta none \
  --output-path "$tmp/_generated" --fail-on-warning >"$tmp/generate.log" 2>&1 \
  || { cat "$tmp/generate.log" >&2; exit 1; }
rm -rf "$tmp/_generated/.ruff_cache"
find "$tmp/_generated" -name __pycache__ -type d -prune -exec rm -rf {} +

if [ "$mode" = check ]; then
  stale=0
  if ! diff -r -q -x __pycache__ "$tmp/_generated" "$CLIENT_OUT" >"$tmp/client.diff" 2>&1; then
    stale=1
    sed -e "s|$tmp/_generated|<generated>|g" "$tmp/client.diff" >&2
  fi
  if ! cmp -s "$SPEC" "$SERVER_SPEC"; then
    stale=1
    echo "Files $SPEC and $SERVER_SPEC differ" >&2
  fi
  if [ "$stale" -ne 0 ]; then
    echo "codegen.sh --check: generated files are stale; run ./codegen.sh" >&2
    exit 1
  fi
  echo "codegen.sh --check: up to date"
  exit 0
fi

rm -rf "$CLIENT_OUT"
mkdir -p "$(dirname "$CLIENT_OUT")"
cp -R "$tmp/_generated" "$CLIENT_OUT"
mkdir -p "$(dirname "$SERVER_SPEC")"
cp "$SPEC" "$SERVER_SPEC"
echo "codegen.sh: wrote $CLIENT_OUT and $SERVER_SPEC"
