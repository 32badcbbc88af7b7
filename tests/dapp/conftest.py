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
    """A LocalNet (anvil automining + the contracts; its deployment.json in the node's data dir) and one
    task whose first round is finalized."""
    from node.localnet import LocalNet
    from node.store import open_store

    datadir = tmp_path_factory.mktemp("dapp-node")
    with LocalNet(datadir, block_time=None) as net:
        kit = RoundKit.on(net, net.dev[1], net.dev[2:5], open_store(datadir))
        kit.stake_all()
        task_id = kit.create_task()
        first = kit.run_round(task_id)
        assert first.outcome == 1, "the first round must be accepted"
        yield Devnet(net.anvil, kit.w3, kit, datadir, task_id, first)


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
