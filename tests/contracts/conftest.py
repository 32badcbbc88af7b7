"""Fixtures for the contract suite (brownie on anvil): one deployment per module, every test
isolated by brownie's fn_isolation (snapshot/revert), roles as fixtures, a round driver."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from brownie import accounts, chain

from node import protocol as P
from node.chain.contracts import DeployParams
from node.chain.records import TaskParams

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # deploy.py: the brownie deployment
MIN_TRAINER = 10**18
MIN_VERIFIER = 10**18
UNBONDING = 10
VERIFIER_STAKE = 2 * 10**18
TRAINER_STAKE = 4 * 10**18
# TaskRegistry's bounds on task parameters: the deployment defaults, but no notice for new tasks (the suite's rounds
# start right after their task is created; tests/contracts/test_task_bounds.py covers the notice)
SUITE_DEPLOY = DeployParams(min_trainer_stake=MIN_TRAINER, min_verifier_stake=MIN_VERIFIER, unbonding_blocks=UNBONDING,
                            notice_blocks=0)
BOUNDS = SUITE_DEPLOY.task_bounds
# small windows so deadline tests mine few blocks
PARAMS = TaskParams(steps_per_round=32, segment_steps=1, seal_delay_blocks=2, reveal_window=10, commit_verdicts_window=10, reveal_verdicts_window=10)


def pytest_configure(config):
    # brownie's own fixtures call rpc.snapshot/revert, which warn on every test
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning")


def rand32() -> bytes:
    return os.urandom(32)


def stake_fresh(sm, role: int, value: int) -> str:
    """A fresh address, funded and impersonated on anvil, stakes `value` as `role`; returns it. Sent with plain web3:
    brownie's tracking of hundreds of new senders costs a transfer and its bookkeeping each (and flakes on a loaded
    machine), where a registry of many stakers needs only their entries."""
    from brownie import web3

    addr = web3.to_checksum_address("0x" + os.urandom(20).hex())
    web3.provider.make_request("anvil_setBalance", [addr, hex(value + 10**18)])
    web3.provider.make_request("anvil_impersonateAccount", [addr])
    tx = web3.eth.send_transaction({"from": addr, "to": sm.address, "value": value, "data": sm.stake.encode_input(role),
                                    "gas": 500_000})
    assert web3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    return addr


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="module")
def deployer():
    return accounts[0]


@pytest.fixture(scope="module")
def trainer():
    return accounts[1]


@pytest.fixture(scope="module")
def verifiers():
    return list(accounts[2:9])


@pytest.fixture(scope="module")
def outsider():
    return accounts[9]


def deploy_all(deployer) -> SimpleNamespace:
    """A fresh deployment as scripts/deploy.py makes it (wired as node.chain.contracts.deploy, frozen), plus ProtocolRules."""
    from brownie import ProtocolRules

    from deploy import deploy_all as deploy_wired  # scripts/deploy.py: one brownie deployment

    d = deploy_wired(deployer, SUITE_DEPLOY)
    rules = ProtocolRules.deploy({"from": deployer})
    return SimpleNamespace(sm=d["StakeManager"], oracle=d["ModelOracle"], registry=d["TaskRegistry"],
                           rounds=d["TrainingRounds"], epochs=d["Epochs"], rules=rules)


@pytest.fixture(scope="module")
def c(deployer):
    return deploy_all(deployer)


@pytest.fixture(scope="module")
def staked(c, trainer, verifiers):
    """Trainer and 7 verifiers staked (module scope: part of every test's snapshot)."""
    c.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})
    for v in verifiers:
        c.sm.stake(P.VERIFIER, {"from": v, "value": VERIFIER_STAKE})
    return c


@dataclass
class Trace:
    """A fake round trace: boundary hashes h_0..h_M and S batch hashes."""

    base: bytes
    n_segments: int
    steps: int
    hashes: list = field(default_factory=list)
    batches: list = field(default_factory=list)

    def __post_init__(self):
        self.hashes = [self.base] + [rand32() for _ in range(self.n_segments)]
        self.batches = [rand32() for _ in range(self.steps)]

    @property
    def root(self) -> bytes:
        return P.compute_merkle_root(self.hashes)

    @property
    def data_root(self) -> bytes:
        return P.compute_merkle_root(self.batches)

    def proof(self, i: int) -> list:
        return P.compute_merkle_proof(self.hashes, i)


class RoundDriver:
    """Drives one task's rounds through the contracts, step by step or all at once."""

    def __init__(self, c, creator, trainer, params: TaskParams = PARAMS, pool: int | None = None):
        self.c, self.trainer, self.params = c, trainer, params
        self.genesis = rand32()
        tx = c.registry.create_task("bafy-spec", rand32(), self.genesis, "bafy-genesis", params.as_tuple(),
                                  {"from": creator, "value": pool if pool is not None else 10 * params.round_cost})
        self.task_id = tx.events["TaskCreated"]["task_id"]  # not tx.return_value: brownie traces the tx for it
        self.canonical = self.genesis
        self.salts: dict = {}
        self.finals: dict = {}  # member -> final_ok of its final commitment

    def commit(self, trace: Trace | None = None):
        p = self.params
        self.trace = trace or Trace(self.canonical, p.n_segments, p.steps_per_round)
        tx = self.c.rounds.commit(self.task_id, self.trace.base, self.trace.data_root, self.trace.root,
                                  self.trace.proof(0), {"from": self.trainer})
        self.round_id = tx.events["RoundCommitted"]["round_id"]
        self.finals = {}
        return tx

    def mine_to_seal(self):
        chain.mine(self.params.seal_delay_blocks + 1)

    def seal(self, sender=None):
        self.mine_to_seal()
        tx = self.c.rounds.seal(self.round_id, {"from": sender or self.trainer})
        self.samples = list(self.c.rounds.round_samples_of(self.round_id))
        self.committee = [accounts.at(a) for a in self.c.rounds.committee_of(self.round_id)]
        return tx

    def reveal_starts(self):
        s = self.samples
        return self.c.rounds.reveal_starts(self.round_id, [self.trace.hashes[j] for j in s], [f"bafy-start-{j}" for j in s],
                                           [self.trace.proof(j) for j in s], {"from": self.trainer})

    @property
    def ends(self) -> list:
        """End leaf of each check (the last is M, from M-2 or M-1)."""
        return list(self.c.rounds.round_check_ends_of(self.round_id))

    def true_ends(self) -> list:
        return [self.trace.hashes[e] for e in self.ends]

    def commit_verdict(self, v, ends=None, data_root_ok=True, starts_ok=True):
        ends = self.true_ends() if ends is None else ends
        salt = rand32()
        self.salts[v.address] = (ends, data_root_ok, starts_ok, salt)
        commitment = P.compute_verdict_commitment(self.round_id, v.address, ends, data_root_ok, starts_ok, salt)
        return self.c.rounds.commit_verdict(self.round_id, commitment, {"from": v})

    def reveal_ends(self, final_cid="bafy-final"):
        return self.c.rounds.reveal_ends(self.round_id, self.true_ends(), [self.trace.proof(e) for e in self.ends], final_cid,
                                         {"from": self.trainer})

    def commit_final(self, v, final_ok=True):
        """v's second commitment, after the ends: its final flag with its verdict's salt (issue #13, attack 5)."""
        salt = self.salts[v.address][3]
        self.finals[v.address] = final_ok
        commitment = P.compute_final_commitment(self.round_id, v.address, final_ok, salt)
        return self.c.rounds.commit_verdict(self.round_id, commitment, {"from": v})

    def commit_finals(self, members, final_ok=True):
        """commit_final for each member; final_ok: one flag for all, or {member: flag} (default True)."""
        for v in members:
            self.commit_final(v, final_ok.get(v, True) if isinstance(final_ok, dict) else final_ok)

    def reveal_verdict(self, v, starts_ok=None, final_ok=None):
        """Open v's commitments; starts_ok and final_ok default to the committed flags (another value does not open them)."""
        ends, data_root_ok, committed_starts_ok, salt = self.salts[v.address]
        starts_ok = committed_starts_ok if starts_ok is None else starts_ok
        final_ok = self.finals.get(v.address, True) if final_ok is None else final_ok
        return self.c.rounds.reveal_verdict(self.round_id, ends, data_root_ok, salt, starts_ok, final_ok, {"from": v})

    def finalize(self, sender=None):
        tx = self.c.rounds.finalize(self.round_id, {"from": sender or self.trainer})
        if self.outcome == P.Outcome.ACCEPTED:
            self.canonical = self.trace.hashes[-1]
        return tx

    @property
    def round(self):
        return self.c.rounds.rounds(self.round_id).dict()

    @property
    def outcome(self) -> int:
        return self.round["outcome"]

    def run(self, liars=(), absent=(), silent=()):
        """A whole round. liars: commit wrong ends; absent: never commit; silent: commit (both parts), never reveal."""
        self.commit()
        return self.finish(liars, absent, silent)

    def finish(self, liars=(), absent=(), silent=()):
        """The rest of a committed round, from seal to finalize (the arguments as in `run`)."""
        self.seal()
        self.reveal_starts()
        members = list(self.committee)
        for v in members:
            if v in absent:
                continue
            self.commit_verdict(v, ends=[rand32() for _ in self.samples] if v in liars else None)
        if any(v in absent for v in members):
            chain.mine(self.params.commit_verdicts_window + 1)
        self.reveal_ends()
        self.commit_finals([v for v in members if v not in absent])
        for v in members:
            if v not in absent and v not in silent:
                self.reveal_verdict(v)
        if any(v in silent for v in members):
            chain.mine(self.params.reveal_verdicts_window + 1)
        return self.finalize()


@pytest.fixture
def driver(staked, deployer, trainer):
    def make(params: TaskParams = PARAMS, pool: int | None = None) -> RoundDriver:
        return RoundDriver(staked, deployer, trainer, params, pool)
    return make


@pytest.fixture
def task(driver):
    return driver()
