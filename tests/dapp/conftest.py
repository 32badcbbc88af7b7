"""Fixtures for the dapp tests: a devnet with a finalized round, `trainchain dapp serve`
as a real process, and one headless Chromium page (Debian's, via playwright-core).

Everything is per module, on free ports, and torn down at the end.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/ (last: shadows nothing): roundkit

from browser import Browser, browser_missing  # noqa: E402
from roundkit import RoundKit, RoundResult  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRAINCHAIN = str(Path(sys.executable).with_name("trainchain"))


@dataclass
class Devnet:
    anvil: object
    w3: object
    kit: RoundKit
    datadir: Path
    task_id: int
    first_round: RoundResult

    @property
    def oracle(self):
        return self.kit.contract("ModelOracle")


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    """anvil (automine) + the contracts + one task whose first round is finalized."""
    from web3 import Web3

    from node.chain.client import Deployment
    from node.chain.devnet import Anvil, dev_accounts
    from node.store import open_store

    datadir = tmp_path_factory.mktemp("dapp-node")
    accounts = dev_accounts(5)
    with Anvil(block_time=None) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deploy_block = w3.eth.block_number
        kit = RoundKit.deploy(w3, accounts[0], accounts[1], accounts[2:5], open_store(datadir))
        Deployment(chain_id=w3.eth.chain_id, rpc_urls=[anvil.url], addresses=kit.addresses,
                   deploy_block=deploy_block).save(datadir / "deployment.json")
        kit.stake_all()
        task_id = kit.create_task()
        first = kit.run_round(task_id)
        assert first.outcome == 1, "the first round must be accepted"
        yield Devnet(anvil, w3, kit, datadir, task_id, first)


@pytest.fixture(scope="module")
def dapp(devnet):
    """`trainchain dapp serve` on a free port, reading the devnet's deployment.json."""
    proc = subprocess.Popen([TRAINCHAIN, "dapp", "serve", "--port", "0", "--json", "--datadir", str(devnet.datadir)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"dapp serve exited: {proc.stderr.read()}")
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One headless Chromium page with a fresh profile."""
    why = browser_missing()
    if why:
        pytest.fail(f"cannot run the browser tests: {why}")
    with Browser(tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser
