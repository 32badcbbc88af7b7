#!/usr/bin/env python3
"""Run brownie with the fixes trainchain needs: `python scripts/brownie_launcher.py test tests/contracts`.

1. Vyper >= 0.4 returns `evm.deployedBytecode.sourceMap` as a dict; brownie 1.22.2 (mypyc
   compiled, so it cannot be patched inside) expects the compressed string. We wrap
   `vyper.cli.vyper_json.compile_json` so brownie sees the string it expects.
2. brownie's development network is `cmd: anvil`: anvil must be on PATH, so we prepend
   node_modules/.bin and the venv's bin.
3. brownie would launch anvil on the fixed port 8545; teammates run chains concurrently, so
   unless TRAINCHAIN_BROWNIE_PORT is set we pick a free port for this run.
4. contracts/lib/ holds Vyper 0.4 modules (imported by the contracts, never deployed):
   brownie compiles every .vy it finds, and a module crashes it (internal functions only:
   its coverage step; `uses:`: cannot compile alone). The wrapper asks vyper for the
   output of the top-level contracts only; the modules stay in `sources` for the imports.
5. The development network settings (DEVELOPMENT below) are also applied in memory, so a run
   works even if $HOME/.brownie was reset after `make setup` (which writes them to disk).
6. brownie declares a transaction dropped ("Tx dropped without known replacement") when the
   sender's nonce has moved past it while its receipt is not found yet. anvil bumps the nonce a
   moment before the mined receipt can be read, and on a loaded machine brownie's poll lands in
   that moment: a test fails on a transaction that was mined. We wait for the receipt first
   (a short poll; a transaction whose receipt never comes is still reported dropped, after a
   grace period), then hand over to brownie's own confirmation.
7. brownie's rpc wrapper calls inspect.stack() (source lines of every frame) on each chain.snapshot /
   revert / mine / sleep just to check its caller: we give it the caller's frame without the source.
8. brownie recompiles every contract whenever it loads the project: the Vyper modules in contracts/lib/ never get
   a build artifact of their own (4.), so it counts them, and all that import them, as changed. The same sources
   and settings always compile to the same output, so the wrapper keeps vyper's output by a hash of its input
   (build/vyper-json/): `brownie compile` pays once, each later `brownie test` session reads it (~40 s of CPU each).
9. requests walks the whole environment twice per HTTP request to find proxies (~10 % of a contract test's CPU,
   one JSON-RPC request after another); the environment does not change during a run, so once per host is enough.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from node.tools import free_port  # noqa: E402  (dependency-free: one free_port for the project)
# brownie's `development` network: anvil on PATH, Prague (EIP-2537 BLS precompiles), zero base fee
DEVELOPMENT = {
    "cmd": "anvil",
    "host": "http://127.0.0.1",
    "evm_version": "prague",
    "base_fee": 0,
    "gas_limit": 30_000_000,
    "accounts": 10,
    "default_balance": 1_000_000,  # ether per account (anvil --balance)
}


def _prepend_path() -> None:
    extra = [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent)]
    os.environ["PATH"] = os.pathsep.join(extra + [os.environ.get("PATH", "")])


def _fix_source_map(output: dict) -> dict:
    """Replace dict source maps by the compressed string brownie parses."""
    for contracts in output.get("contracts", {}).values():
        for contract in contracts.values():
            deployed = contract.get("evm", {}).get("deployedBytecode", {})
            source_map = deployed.get("sourceMap")
            if isinstance(source_map, dict):
                deployed["sourceMap"] = source_map.get("pc_pos_map_compressed", "")
    return output


def is_module_source(path: str) -> bool:
    """A Vyper module under contracts/lib/ (compiled into the contracts that import it)."""
    return "/lib/" in "/" + path.replace("\\", "/")


def _top_level_only(input_json: dict) -> dict:
    """Restrict outputSelection to the top-level contracts (see 4. above)."""
    selection = input_json.get("settings", {}).get("outputSelection")
    sources = input_json.get("sources", {})
    if not isinstance(selection, dict) or "*" not in selection or not any(map(is_module_source, sources)):
        return input_json
    wanted = selection["*"]
    settings = {**input_json["settings"], "outputSelection": {p: wanted for p in sources if not is_module_source(p)}}
    return {**input_json, "settings": settings}


VYPER_JSON_CACHE = ROOT / "build" / "vyper-json"  # see 8. above


def install_vyper_fix() -> None:
    import hashlib
    import json

    import vyper
    from vyper.cli import vyper_json

    if getattr(vyper_json.compile_json, "_trainchain_fixed", False):
        return
    original = vyper_json.compile_json

    def compile_json(input_json, *args, **kwargs):
        input_json = _top_level_only(input_json)
        if args or kwargs:
            return _fix_source_map(original(input_json, *args, **kwargs))
        key = hashlib.sha256(json.dumps([vyper.__version__, input_json], sort_keys=True).encode()).hexdigest()
        cached = VYPER_JSON_CACHE / f"{key}.json"
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            pass
        output = _fix_source_map(original(input_json))
        VYPER_JSON_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # two sessions may compile at once: whole files only
        tmp.write_text(json.dumps(output))
        os.replace(tmp, cached)
        return output

    compile_json._trainchain_fixed = True
    vyper_json.compile_json = compile_json


RECEIPT_GRACE_S = 10.0  # a nonce past the transaction with no receipt for this long: dropped, as brownie says


def install_receipt_fix() -> None:
    """See 6. above: brownie's network/transaction.py is plain Python (not mypyc), so it can be wrapped."""
    import time

    from brownie.network import transaction
    from brownie.network.web3 import web3
    from web3.exceptions import TransactionNotFound

    receipt_cls = transaction.TransactionReceipt
    if getattr(receipt_cls._await_confirmation, "_trainchain_fixed", False):
        return
    original = receipt_cls._await_confirmation

    def _await_confirmation(self, block_number=None, required_confs=1):
        if block_number is None and self.nonce is not None:
            grace_ends = None
            while True:
                try:
                    receipt = web3.eth.get_transaction_receipt(self.txid)
                    if receipt is not None and receipt["blockHash"] is not None:
                        break
                except TransactionNotFound:
                    pass
                if web3.eth.get_transaction_count(str(self.sender)) > self.nonce:
                    grace_ends = grace_ends or time.monotonic() + RECEIPT_GRACE_S
                    if time.monotonic() > grace_ends:
                        break  # no receipt for a nonce long past: brownie reports it dropped
                time.sleep(0.05)
        return original(self, block_number, required_confs)

    _await_confirmation._trainchain_fixed = True
    receipt_cls._await_confirmation = _await_confirmation


def install_rpc_fix() -> None:
    """See 7. above: brownie.network.rpc's `internal` decorator asks `inspect.stack()[1]` on every snapshot, revert,
    mine and sleep only to warn callers that bypass `chain`; inspect.stack reads the source lines of every frame
    (~40 ms a call here, ~20 % of the contract suite's test time). The shim gives the same frames without source."""
    import importlib
    import types

    rpc = importlib.import_module("brownie.network.rpc")  # the module (brownie.network.rpc the name is its Rpc)
    if getattr(rpc.inspect, "_trainchain_fixed", False):
        return

    def stack() -> list:
        frame, frames = sys._getframe(1), []  # frame 0: the wrapper that asked; 1: its caller
        while frame is not None and len(frames) < 2:
            frames.append(types.SimpleNamespace(frame=frame))
            frame = frame.f_back
        return frames

    rpc.inspect = types.SimpleNamespace(stack=stack, _trainchain_fixed=True)


def install_proxy_fix() -> None:
    """See 9. above: the proxies of a URL's host, looked up in the environment once per host, not per request."""
    import functools
    from urllib.parse import urlsplit

    import requests.sessions
    import requests.utils

    if getattr(requests.utils.get_environ_proxies, "_trainchain_fixed", False):
        return
    original = requests.utils.get_environ_proxies
    by_host = functools.lru_cache(maxsize=64)(lambda scheme_host, no_proxy: original(scheme_host, no_proxy=no_proxy))

    def get_environ_proxies(url: str, no_proxy: str | None = None) -> dict:
        parts = urlsplit(url)
        return dict(by_host(f"{parts.scheme}://{parts.netloc}", no_proxy))

    get_environ_proxies._trainchain_fixed = True
    requests.utils.get_environ_proxies = requests.sessions.get_environ_proxies = get_environ_proxies


def configure_in_memory() -> None:
    """Apply DEVELOPMENT and a free port to brownie's loaded network config (this process only)."""
    from brownie._config import CONFIG

    dev = CONFIG.networks["development"]
    settings = dev.setdefault("cmd_settings", {})
    for key, value in DEVELOPMENT.items():
        if key in ("cmd", "host"):
            dev[key] = value
        else:
            settings[key] = value
    settings["port"] = int(os.environ.get("TRAINCHAIN_BROWNIE_PORT") or free_port())


def main() -> None:
    os.chdir(ROOT)
    _prepend_path()
    install_vyper_fix()
    install_receipt_fix()
    install_rpc_fix()
    install_proxy_fix()
    if sys.argv[1:2] != ["networks"]:
        configure_in_memory()
    from brownie._cli.__main__ import main as brownie_main

    sys.argv = ["brownie", *sys.argv[1:]]
    brownie_main()


if __name__ == "__main__":
    main()
