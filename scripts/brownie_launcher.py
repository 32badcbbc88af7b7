#!/usr/bin/env python3
"""Run brownie with the fixes trainchain needs: `python scripts/brownie_launcher.py test tests/contracts`.

1. Vyper >= 0.4 returns `evm.deployedBytecode.sourceMap` as a dict; brownie 1.22.2 (mypyc
   compiled, so it cannot be patched inside) expects the compressed string. We wrap
   `vyper.cli.vyper_json.compile_json` so brownie sees the string it expects.
2. brownie's development network is `cmd: anvil`: anvil must be on PATH, so we prepend
   node_modules/.bin and the venv's bin.
3. brownie would launch anvil on the fixed port 8545; teammates run chains concurrently, so
   unless TRAINCHAIN_BROWNIE_PORT is set we pick a free port for this run.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _prepend_path() -> None:
    extra = [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent)]
    os.environ["PATH"] = os.pathsep.join(extra + [os.environ.get("PATH", "")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fix_source_map(output: dict) -> dict:
    """Replace dict source maps by the compressed string brownie parses."""
    for contracts in output.get("contracts", {}).values():
        for contract in contracts.values():
            deployed = contract.get("evm", {}).get("deployedBytecode", {})
            source_map = deployed.get("sourceMap")
            if isinstance(source_map, dict):
                deployed["sourceMap"] = source_map.get("pc_pos_map_compressed", "")
    return output


def install_vyper_fix() -> None:
    from vyper.cli import vyper_json

    if getattr(vyper_json.compile_json, "_trainchain_fixed", False):
        return
    original = vyper_json.compile_json

    def compile_json(*args, **kwargs):
        return _fix_source_map(original(*args, **kwargs))

    compile_json._trainchain_fixed = True
    vyper_json.compile_json = compile_json


def use_free_port() -> None:
    from brownie._config import CONFIG

    port = int(os.environ.get("TRAINCHAIN_BROWNIE_PORT") or _free_port())
    dev = CONFIG.networks["development"]
    dev.setdefault("cmd_settings", {})["port"] = port


def main() -> None:
    os.chdir(ROOT)
    _prepend_path()
    install_vyper_fix()
    use_free_port()
    from brownie._cli.__main__ import main as brownie_main

    sys.argv = ["brownie", *sys.argv[1:]]
    brownie_main()


if __name__ == "__main__":
    main()
