#!/usr/bin/env bash
# GPU check (issue #3): two separate-process GPU trainings + a replay, CPU vs GPU step times.
# Installs nothing from the network: scripts/device_env.sh puts the carried wheels (.whl/) into /tmp/site.
#   scripts/gpu_check.sh [OUT_DIR] [cuda|cpu]     (default OUT_DIR: $OUT or bench/gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-bench/gpu}}
DEVICE=${2:-cuda}
source scripts/device_env.sh
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec $PY scripts/gpu_check.py --out "$OUT_DIR" --device "$DEVICE" ${GPU_CHECK_ARGS:-}
