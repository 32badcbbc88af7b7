# Sourced by the device scripts (scripts/gpu_check.sh, scripts/device_epochs.sh) on a machine without the project's
# venv or npm install (the GPU machine: its own python3 with torch, nothing to download): the wheels carried in
# $WHL_DIR (default .whl: pydantic, web3, vyper and their needs, for its Python) go into /tmp/site, and anvil
# comes from .device/anvil.xz (node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil, xz-compressed to travel).
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
if ! $PY -c "import pydantic, eth_utils, web3, vyper, multiformats" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${WHL_DIR:-.whl}"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -z "${TRAINCHAIN_ANVIL:-}" ] && [ ! -x node_modules/.bin/anvil ] && [ -f .device/anvil.xz ]; then
  mkdir -p /tmp/bin
  $PY -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open('.device/anvil.xz'), open('/tmp/bin/anvil', 'wb'))"
  chmod +x /tmp/bin/anvil
  export TRAINCHAIN_ANVIL=/tmp/bin/anvil
fi
if [ -z "${BENCH_COMMIT:-}" ] && [ -f .device/commit ]; then export BENCH_COMMIT=$(cat .device/commit); fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
