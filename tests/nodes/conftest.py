"""Fixtures for node tests: a real anvil on a free port, the contracts deployed, dev accounts.

Run with brownie's pytest plugin off (it would start anvil on 8545):
    .venv/bin/pytest -p no:pytest-brownie tests/nodes

Fixtures (all function-scoped: every test gets a fresh chain, killed afterwards):
- `anvil_factory(block_time=None, state=None, **kw) -> node.chain.devnet.Anvil` — started; all
  stopped at teardown. block_time=None: automine (a block per transaction, fastest);
  block_time=1 (or 0.5) for node loops that wait for blocks. `state=path` lets
  `anvil.restart(down_for=2)` bring the same chain back (RPC outage tests).
- `anvil` — anvil_factory() with automine and a state file.
- `dev` — the 10 anvil dev accounts (LocalAccount, 10 000 ETH each): dev[0] deploys.
- `deploy_params` — node.chain.contracts.DeployParams used by `deployed` (override it in a test
  module to change minimum stakes / unbonding / the new-task notice, 0 here).
- `deployed` — a Devnet: node/localnet.py's LocalNet (anvil automining, the contracts deployed
  with `deploy_params`) whose root is the node data dir (`datadir`, `deployment.json` there);
  `anvil`, `url`, `deployment`, `accounts` (= dev), `chain` (a ChainClient signing as dev[0]).
- `keyed_datadir` — `deployed` plus keystores (light scrypt, password "test-password",
  in `<datadir>/password.txt`) for dev[1..4]; returns (devnet, [addresses]).
- `client(account=None, **kw)` factory — a ChainClient on `deployed` with short timeouts.
- `open_round()` — task 1 + three staked verifiers + round 1 committed by dev[1] (random trace).
- `cli_run(*args, input=None, ok=True, env=None)` — the trainchain CLI through CliRunner.
Env vars TRAINCHAIN_* are cleared for every test so the developer's own config never leaks in.
"""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import pytest

from node.chain.devnet import Anvil, dev_accounts
from node.localnet import LocalNet

PASSWORD = "test-password"
FAST_CLIENT = dict(tx_timeout=30, tx_replace_after=5, rpc_retries=2, rpc_backoff=0.1, poll_interval=0.05)


@pytest.fixture(autouse=True)
def _clean_trainchain_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TRAINCHAIN_"):
            monkeypatch.delenv(key)


@pytest.fixture
def anvil_factory(tmp_path):
    started: list[Anvil] = []

    def make(block_time: float | None = None, state: str | Path | None = None, **kw) -> Anvil:
        anvil = Anvil(block_time=block_time, state=state, log_path=tmp_path / f"anvil-{len(started)}.log", **kw)
        started.append(anvil)
        return anvil.start()

    yield make
    for anvil in started:
        anvil.stop()


@pytest.fixture
def anvil(anvil_factory, tmp_path) -> Anvil:
    return anvil_factory(state=tmp_path / "anvil-state.json")


@pytest.fixture(scope="session")
def dev():
    return dev_accounts(10)


@pytest.fixture
def deploy_params():
    from node.chain.contracts import DeployParams

    # notice_blocks=0: these tests commit right after creating a task on an automining chain (tests/nodes/
    # test_task_notice.py covers the notice; LocalNet-based node runs keep the default)
    return DeployParams(min_trainer_stake=10**18, min_verifier_stake=10**18, unbonding_blocks=5, notice_blocks=0)


class Devnet(LocalNet):
    """The node tests' chain: a LocalNet whose root is the node data dir."""

    @property
    def datadir(self) -> Path:
        return self.root

    @property
    def deployment_path(self) -> Path:
        return self.root / "deployment.json"

    @property
    def accounts(self) -> list:
        return self.dev

    @cached_property
    def chain(self):
        return self.client(self.dev[0], **FAST_CLIENT)


@pytest.fixture
def deployed(deploy_params, tmp_path):
    with Devnet(tmp_path / "datadir", block_time=None, deploy_params=deploy_params) as net:
        yield net


@pytest.fixture
def client(deployed):
    from node.chain.client import ChainClient

    def make(account=None, **kw) -> ChainClient:
        opts = {**FAST_CLIENT, **kw}
        return ChainClient(kw.pop("rpc_urls", None) or [deployed.url], deployed.deployment, account, **{
            k: v for k, v in opts.items() if k != "rpc_urls"})

    return make


@pytest.fixture
def keyed_datadir(deployed, dev):
    from node.keys import LIGHT_KDF, Keystore

    ks = Keystore(deployed.datadir, scrypt_n=LIGHT_KDF)
    addresses = [ks.import_key(acct.key, PASSWORD) for acct in dev[1:5]]
    (deployed.datadir / "password.txt").write_text(PASSWORD + "\n")
    return deployed, addresses


@pytest.fixture
def cli_run():
    """cli_run(*args, input=None, ok=True) -> click Result; asserts the exit code (0 if ok else != 0)."""
    from click.testing import CliRunner

    from node.cli import cli

    runner = CliRunner()

    def run(*args, input: str | None = None, ok: bool = True, env: dict | None = None):
        result = runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, f"{args} failed: {result.output}"
        else:
            assert result.exit_code != 0, f"{args} should have failed: {result.output}"
        return result

    return run


@pytest.fixture
def open_round(deployed, client, dev):
    """open_round() -> the trainer's ChainClient: task 1 (M=4, 1 sample, committee 2 of the three
    staked verifiers dev[2..4], seal delay 2, windows of 10 blocks), trainer dev[1] committed round 1
    on a random trace (no training: for chain and CLI tests, not for replay)."""

    def make():
        import os

        from node.chain.records import TaskParams
        from node.protocol import compute_merkle_proof, compute_merkle_root

        owner = deployed.chain
        params = TaskParams(steps_per_round=4, segment_steps=1, samples=1, committee_size=2, quorum=2, seal_delay_blocks=2,
                            reveal_window=10, commit_verdicts_window=10, reveal_verdicts_window=10)
        trace = [os.urandom(32) for _ in range(5)]
        owner.transact(owner.registry.functions.create_task("bafyspec", b"\x02" * 32, trace[0], "bafygenesis",
                                                          params.as_tuple()), value=10**18)
        for v in dev[2:5]:
            c = client(v)
            c.transact(c.stake_manager.functions.stake(2), value=10**18)
        trainer = client(dev[1])
        trainer.transact(trainer.stake_manager.functions.stake(1), value=10**18)
        trainer.transact(trainer.rounds.functions.commit(1, trace[0], os.urandom(32), compute_merkle_root(trace),
                                                          compute_merkle_proof(trace, 0)))
        return trainer

    return make
