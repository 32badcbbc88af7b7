#!/usr/bin/env bash
# GPU check (issue #3): two separate-process GPU trainings + a replay, CPU vs GPU step times.
# Installs nothing from the network. On a machine without the project's venv, the wheels in
# .whl/ (pydantic, eth-utils and their needs, for its Python) are installed into /tmp/site.
#   scripts/gpu_check.sh [OUT_DIR] [cuda|cpu]     (default OUT_DIR: $OUT or bench/gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-bench/gpu}}
DEVICE=${2:-cuda}
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
if ! $PY -c "import pydantic, eth_utils" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec $PY scripts/gpu_check.py --out "$OUT_DIR" --device "$DEVICE" ${GPU_CHECK_ARGS:-}
