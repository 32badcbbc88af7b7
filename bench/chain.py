"""Node runtime numbers: CLI start-up, devnet up, transaction latency, RPC failover cost.

    .venv/bin/python -m bench chain

What a user waits for outside training: a `trainchain` command that does not train
should answer in well under a second, a devnet should be up in seconds, and a dead
first RPC URL should cost one refused connection, not a timeout.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINCHAIN = [str(Path(sys.executable).parent / "trainchain")]


def _median_s(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 4)


def _cli(*args: str) -> None:
    subprocess.run([*TRAINCHAIN, *args], check=True, capture_output=True)


def run() -> dict:
    from node.chain.client import ChainClient
    from node.chain.devnet import Anvil, deploy_contracts, dev_accounts, devnet_down, devnet_up
    from node.tools import free_port

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["cli_keys_list_s"] = _median_s(lambda: _cli("keys", "list", "--datadir", tmp), 5)
        t = time.perf_counter()
        devnet_up(Path(tmp) / "dd", block_time=1)
        out["devnet_up_s"] = round(time.perf_counter() - t, 2)
        try:
            out["cli_status_s"] = _median_s(
                lambda: _cli("status", "0x" + "11" * 20, "--datadir", str(Path(tmp) / "dd")), 3)
        finally:
            devnet_down(Path(tmp) / "dd")

    accounts = dev_accounts(2)
    for label, block_time in (("automine", None), ("block_time_1s", 1)):
        with Anvil(block_time=block_time) as anvil:
            deployment = deploy_contracts(anvil.url, accounts[0])
            chain = ChainClient([anvil.url], deployment, accounts[1], poll_interval=0.05)
            fn = chain.stake_manager.functions.stake(2)
            out[f"stake_tx_{label}_s"] = _median_s(lambda: chain.transact(fn, value=10**18), 5)
            out[f"view_call_{label}_s"] = _median_s(lambda: chain.call(chain.stake_manager.functions.stake_of(accounts[1].address)), 20)
            dead = f"http://127.0.0.1:{free_port()}"
            failover = ChainClient([dead, anvil.url], deployment, rpc_retries=1)

            def first_call_via_failover():
                failover.provider.active = 0  # start on the dead URL every time
                failover.block_number()

            out[f"failover_first_call_{label}_s"] = _median_s(first_call_via_failover, 5)
    for k, v in out.items():
        print(f"   {k}: {v}")
    return out
