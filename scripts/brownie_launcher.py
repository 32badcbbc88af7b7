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


def install_vyper_fix() -> None:
    from vyper.cli import vyper_json

    if getattr(vyper_json.compile_json, "_trainchain_fixed", False):
        return
    original = vyper_json.compile_json

    def compile_json(input_json, *args, **kwargs):
        return _fix_source_map(original(_top_level_only(input_json), *args, **kwargs))

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
    if sys.argv[1:2] != ["networks"]:
        configure_in_memory()
    from brownie._cli.__main__ import main as brownie_main

    sys.argv = ["brownie", *sys.argv[1:]]
    brownie_main()


if __name__ == "__main__":
    main()
