#!/usr/bin/env bash
# Download the Python Workers SDK wheel (PyPI `workers-runtime-sdk`) into harness/vendor/ if missing.
# The harness unpacks it into Pyodide's site-packages, as the runtime does in production.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=1.9.5
WHEEL="vendor/workers_runtime_sdk-${VERSION}-py3-none-any.whl"
if [ ! -f "$WHEEL" ]; then
  PY=${PYTHON:-python3}
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
    "workers-runtime-sdk==${VERSION}" -d vendor
fi
test -f "$WHEEL"
