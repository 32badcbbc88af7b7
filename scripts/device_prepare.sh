#!/usr/bin/env bash
# Before a run on the GPU machine (`device`): what the device scripts need there that its image lacks, into two
# folders that git ignores (.git/info/exclude) and the run carries (`carry: [".whl", ".device", "build/trainchain"]`):
#   .whl/     wheels for its Python (3.12) of the node's pure needs not in its image: pydantic, web3, vyper, ...
#   .device/  anvil.xz (node_modules' anvil, xz-compressed: 44 MB -> 12 MB of the 64 MiB that travel)
# build/trainchain (the compiled contracts, cached by source hash) saves the vyper compile there.
#   scripts/device_prepare.sh [PYTHON_VERSION]      (default 3.12, the image's python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${1:-3.12}
for d in /.whl/ /.device/; do grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
mkdir -p .whl .device
# the node's versions (the venv's), with their needs; the image already has torch, numpy, safetensors, click, rich,
# psutil, requests, aiohttp and the rest of the web stack (KINDS.md's package list): those are not carried
.venv/bin/pip freeze | grep -v "^-e\|@ file\|^python-dotenv" >/tmp/device-constraints.txt  # brownie pins an old dotenv
python3 -m pip download -q --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any -c /tmp/device-constraints.txt -d .whl \
  web3==7.16.0 pydantic==2.13.4 pydantic-settings vyper==0.4.3 multiformats cbor2 platformdirs tenacity py-ecc==8.0.0
# safe-pysha3 (node.protocol's keccak): the venv's 1.0.5 has no wheels; 1.0.4 is the same C code
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl safe-pysha3==1.0.4
for p in aiohttp aiohappyeyeballs aiosignal attrs certifi charset_normalizer frozenlist idna multidict propcache \
         yarl requests urllib3 packaging typing_extensions wheel regex toolz; do
  rm -f .whl/${p}-*.whl  # in the image: a second copy would shadow the one its torch stack was built with
done
xz -T2 -6 -c node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil >.device/anvil.xz
.venv/bin/python -c "from node.chain.contracts import compile_contracts; compile_contracts()"  # fills build/trainchain
git rev-parse --short HEAD >.device/commit  # the copy on the device has no .git: the reports name this commit
du -sh .whl .device build/trainchain
