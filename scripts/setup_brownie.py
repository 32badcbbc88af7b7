#!/usr/bin/env python3
"""Configure brownie for trainchain (run by `make setup`; idempotent and quick when done).

- The `development` network: anvil (from node_modules, put on PATH by the launcher), a
  hardfork with the EIP-2537 BLS precompiles (prague), zero base fee, 10 funded accounts.
  brownie keeps network settings under $HOME/.brownie; brownie-config.yaml must not carry a
  `networks:` key (crashes brownie 1.22.2), so we use `brownie networks modify`.
- The Vyper 0.4.3 source-map fix lives in scripts/brownie_launcher.py (brownie is mypyc
  compiled, so the fix wraps vyper's compile_json before brownie runs); we check it works.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = [sys.executable, str(ROOT / "scripts" / "brownie_launcher.py")]
sys.path.insert(0, str(ROOT / "scripts"))
from brownie_launcher import DEVELOPMENT as WANTED  # noqa: E402  (one source for the settings)


def current_development() -> dict:
    """Read $HOME/.brownie/network-config.yaml afresh (brownie creates it on first import)."""
    import brownie._config  # noqa: F401  (creates the data folder on a fresh machine)
    import yaml

    config = yaml.safe_load((Path.home() / ".brownie" / "network-config.yaml").read_text())
    dev = next(n for n in config["development"] if n["id"] == "development")
    flat = {"cmd": dev.get("cmd"), "host": dev.get("host")}
    flat.update(dev.get("cmd_settings", {}))
    return flat


def configure_network() -> None:
    have = current_development()
    if all(str(have.get(k)) == str(v) for k, v in WANTED.items()):
        print("setup_brownie: development network already configured")
        return
    args = [f"{k}={v}" for k, v in WANTED.items()]
    subprocess.run([*LAUNCHER, "networks", "modify", "development", *args], check=True, cwd=ROOT)
    have = current_development()
    bad = {k: have.get(k) for k, v in WANTED.items() if str(have.get(k)) != str(v)}
    if bad:
        sys.exit(f"setup_brownie: development network not configured as wanted: {bad}")
    print("setup_brownie: development network configured")


def check_vyper_fix() -> None:
    import brownie_launcher
    from vyper.cli import vyper_json

    brownie_launcher.install_vyper_fix()
    out = vyper_json.compile_json(
        {
            "language": "Vyper",
            "sources": {"t.vy": {"content": "@external\ndef f() -> uint256:\n    return 1\n"}},
            "settings": {"outputSelection": {"*": ["evm.deployedBytecode.sourceMap"]}},
        }
    )
    source_map = out["contracts"]["t.vy"]["t"]["evm"]["deployedBytecode"]["sourceMap"]
    if not isinstance(source_map, str):
        sys.exit("setup_brownie: vyper source-map fix did not apply")
    print("setup_brownie: vyper 0.4 source-map fix works")


if __name__ == "__main__":
    configure_network()
    check_vyper_fix()
