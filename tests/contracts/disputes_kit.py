"""A deployment with Disputes and Appeals wired (StakeManager authorizes both, TrainingRounds.set_disputes,
Appeals.set_disputes) and drivers for one disputed round: the contract suite's RoundDriver plays the round,
DisputeDriver plays the dispute, AppealDriver its appeal to the whole verifier set."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from brownie import accounts, chain

from node import protocol as P
from node.chain.contracts import DISPUTES_CALLERS, WIRING, DeployParams
from node.chain.records import TaskParams

MIN_STAKE = 10**18
VERIFIER_STAKE = 2 * 10**18
TRAINER_STAKE = 4 * 10**18
# k = 4: a span is 4 or 8 steps; small windows so timeouts mine few blocks
PARAMS = TaskParams(steps_per_round=64, segment_steps=4, samples=2, committee_size=3, quorum=2, seal_delay_blocks=2,
                    reveal_window=12, commit_verdicts_window=12, reveal_verdicts_window=12)


def rand32() -> bytes:
    return os.urandom(32)


def deploy_with_disputes(deployer) -> SimpleNamespace:
    """The protocol as node.chain.contracts.WIRING wires it, plus Disputes and Appeals (authorized callers of
    StakeManager: DISPUTES_CALLERS; Disputes named by TrainingRounds.set_disputes before any round, and by
    Appeals.set_disputes; Appeals given to Disputes' constructor)."""
    from brownie import Appeals, Disputes, Epochs, ModelOracle, ProtocolRules, StakeManager, TaskRegistry, TrainingRounds

    # no notice for new tasks (#13 attack 1): the suite's rounds start right after their task is created (as conftest.SUITE_DEPLOY)
    p = DeployParams(min_trainer_stake=MIN_STAKE, min_verifier_stake=MIN_STAKE, unbonding_blocks=10, notice_blocks=0)
    sm = StakeManager.deploy(p.min_trainer_stake, p.min_verifier_stake, p.unbonding_blocks, {"from": deployer})
    oracle = ModelOracle.deploy({"from": deployer})
    registry = TaskRegistry.deploy(sm, oracle, p.task_bounds, {"from": deployer})
    rounds = TrainingRounds.deploy(sm, registry, {"from": deployer})
    appeals = Appeals.deploy(sm, registry, {"from": deployer})
    disputes = Disputes.deploy(sm, rounds, registry, appeals, {"from": deployer})
    appeals.set_disputes(disputes, {"from": deployer})
    epochs = Epochs.deploy(sm, registry, rounds, {"from": deployer})  # in WIRING (#14)
    rounds.set_epochs(epochs, {"from": deployer})
    deployed = {"StakeManager": sm, "ModelOracle": oracle, "TaskRegistry": registry, "TrainingRounds": rounds,
                "Disputes": disputes, "Appeals": appeals, "Epochs": epochs}
    wiring = {name: tuple(callers) for name, callers in WIRING.items()}
    wiring["StakeManager"] = wiring["StakeManager"] + DISPUTES_CALLERS
    for name, callers in wiring.items():
        for caller in callers:
            deployed[name].authorize(deployed[caller], {"from": deployer})
        deployed[name].finish_wiring({"from": deployer})
    rounds.set_disputes(disputes, {"from": deployer})
    return SimpleNamespace(sm=sm, oracle=oracle, registry=registry, rounds=rounds, disputes=disputes, appeals=appeals,
                           epochs=epochs, rules=ProtocolRules.deploy({"from": deployer}))


@pytest.fixture(scope="module")
def dc(deployer, trainer, verifiers):
    """A deployment with Disputes, its trainer and verifiers staked (one per test module)."""
    c = deploy_with_disputes(deployer)
    c.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})
    for v in verifiers:
        c.sm.stake(P.VERIFIER, {"from": v, "value": VERIFIER_STAKE})
    return c


@pytest.fixture
def rd(dc, deployer, trainer):
    """A RoundDriver for a fresh task of PARAMS on `dc`."""
    from conftest import RoundDriver

    return RoundDriver(dc, deployer, trainer, PARAMS)


def money(c, who) -> int:
    """What an address has in the protocol: bonded stake + claimable."""
    return c.sm.stake_of(who) + c.sm.claimable(who)


def total_money(c, addrs) -> int:
    """Stakes + claimables of `addrs`, the treasury, the task pools (TaskRegistry) and the bonds Disputes and Appeals hold."""
    return sum(money(c, a) for a in addrs) + c.sm.treasury() + c.registry.balance() + c.disputes.balance() + c.appeals.balance()


class DisputeDriver:
    """One dispute over check `check_index` of the driver's round, move by move."""

    def __init__(self, c, rd, challenger, check_index=0):
        self.c, self.rd, self.challenger, self.check_index = c, rd, challenger, check_index
        start, end = rd.samples[check_index], rd.ends[check_index]
        self.span_steps = (end - start) * rd.params.segment_steps
        # the trainer's per-step hashes of the span: its revealed start and end leaves and fresh ones between
        self.step_hashes = [rd.trace.hashes[start]] + [rand32() for _ in range(self.span_steps - 1)] + [rd.trace.hashes[end]]
        self.salts: dict = {}
        # the challenger's own answer (what its replay gives after the named step), committed with its naming move
        self.answer, self.answer_salt = rand32(), rand32()

    def answer_commitment(self, answer=None, salt=None) -> bytes:
        return P.compute_vote_commitment(self.rd.round_id, self.challenger.address, self.answer if answer is None else answer,
                                         self.answer_salt if salt is None else salt)

    @property
    def bond(self) -> int:
        return self.c.disputes.bond_for(self.rd.params.verifier_reward_wei)

    def open(self, sender=None, value=None, check_index=None):
        tx = self.c.disputes.open(self.rd.round_id, self.check_index if check_index is None else check_index,
                                  {"from": sender or self.challenger, "value": self.bond if value is None else value})
        self.dispute_id = tx.events["DisputeOpened"]["dispute_id"]
        self.posted_bond = tx.value
        return tx

    def open_flag(self, flag, sender=None, value=None):
        """A flag dispute (Disputes.open_flag): no span; the jury block is the next block."""
        tx = self.c.disputes.open_flag(self.rd.round_id, flag, self.answer_commitment(),
                                       {"from": sender or self.challenger, "value": self.bond if value is None else value})
        self.dispute_id = tx.events["DisputeOpened"]["dispute_id"]
        self.posted_bond = tx.value
        return tx

    def post_steps(self, hashes=None, sender=None):
        return self.c.disputes.post_steps(self.dispute_id, self.step_hashes if hashes is None else hashes,
                                          {"from": sender or self.rd.trainer})

    def name_step(self, step=1, hashes=None, sender=None, draw=True, commitment=None):
        """The challenger's move (its answer committed); with `draw`, the jury is drawn too (draw_jury by a bystander
        once the jury block is mined): most tests need a jury, not the draw's own timing (tests of the draw pass draw=False)."""
        tx = self.c.disputes.name_step(self.dispute_id, step, self.step_hashes if hashes is None else hashes,
                                       self.answer_commitment() if commitment is None else commitment,
                                       {"from": sender or self.challenger})
        if draw:
            self.draw_jury()
        return tx

    def draw_jury(self, sender=None, mine=True):
        """Anyone's draw_jury; with `mine`, first mine up to the jury block (a draw needs block.number > J)."""
        if mine:
            chain.mine(max(0, self.state["jury_block"] + 1 - (chain.height + 1)))
        tx = self.c.disputes.draw_jury(self.dispute_id, {"from": sender or accounts[0]})
        self.jury = [accounts.at(a) for a in self.c.disputes.jury_of(self.dispute_id)]
        return tx

    def answer_of(self, vote) -> bytes:
        """A juror's answer: True = the trainer's (claimed_hash), False = the challenger's, bytes as they are."""
        if vote is True:
            return bytes(self.state["claimed_hash"])
        if vote is False:
            return self.answer
        return bytes(vote)

    def commit_vote(self, juror, vote):
        """vote: True (the trainer's answer), False (the challenger's), or an answer (bytes; zero = abstain)."""
        salt = rand32()
        answer = self.answer_of(vote)
        self.salts[juror.address] = (answer, salt)
        commitment = P.compute_vote_commitment(self.dispute_id, juror.address, answer, salt)
        return self.c.disputes.commit_vote(self.dispute_id, commitment, {"from": juror})

    def reveal_vote(self, juror):
        answer, salt = self.salts[juror.address]
        return self.c.disputes.reveal_vote(self.dispute_id, answer, salt, {"from": juror})

    def reveal_answer(self, sender=None, answer=None, salt=None):
        """The challenger opens its answer (after the jury committed)."""
        return self.c.disputes.reveal_answer(self.dispute_id, self.answer if answer is None else answer,
                                             self.answer_salt if salt is None else salt, {"from": sender or self.challenger})

    def vote(self, votes: dict, challenger_reveals=True):
        """votes: {juror: True (the trainer's answer) | False (the challenger's) | bytes (an answer) | None (absent)};
        commit all, then the challenger reveals its answer (unless told not to), then every juror reveals."""
        for j, v in votes.items():
            if v is not None:
                self.commit_vote(j, v)
        if any(v is None for v in votes.values()):
            chain.mine(self.rd.params.commit_verdicts_window + 1)
        if challenger_reveals:
            self.reveal_answer()
        for j, v in votes.items():
            if v is not None:
                self.reveal_vote(j)
        if any(v is None for v in votes.values()) or not challenger_reveals:
            chain.mine(max(0, self.state["reveal_deadline"] - chain.height))  # the next transaction: past the reveals

    def mine_past_appeal_window(self):
        """Mine until the next transaction lands after the jury vote's appeal deadline (it is final then)."""
        chain.mine(max(0, P.compute_appeal_deadline(self.state["reveal_deadline"], self.rd.params.reveal_verdicts_window) - chain.height))

    def resolve(self, sender=None, wait=True):
        """Anyone's resolve; with `wait`, a jury vote's appeal window is mined past first (resolve refuses it before)."""
        if wait and self.state["phase"] == P.DISPUTE_JURY:
            self.mine_past_appeal_window()
        return self.c.disputes.resolve(self.dispute_id, {"from": sender or accounts[0]})

    @property
    def state(self) -> dict:
        return self.c.disputes.disputes(self.dispute_id).dict()


def play_round_to_reveals(rd, contradict=(), absent=()):
    """Commit .. reveal_verdict of one round; `contradict` members commit wrong ends (all of them)."""
    rd.commit()
    rd.seal()
    rd.reveal_starts()
    for v in rd.committee:
        if v in absent:
            continue
        rd.commit_verdict(v, ends=[rand32() for _ in rd.samples] if v in contradict else None)
    if absent:
        chain.mine(rd.params.commit_verdicts_window + 1)
    rd.reveal_ends()
    rd.commit_finals([v for v in rd.committee if v not in absent])
    for v in rd.committee:
        if v not in absent:
            rd.reveal_verdict(v)


def contradicted_round(rd, n_contradicting=1):
    """A round whose first n members contradicted the trainer; returns (challenger, other members)."""
    rd.commit()
    rd.seal()
    members = list(rd.committee)
    play_round_to_reveals_after_seal(rd, contradict=members[:n_contradicting])
    return members[0], members[1:]


def play_round_to_reveals_after_seal(rd, contradict=()):
    rd.reveal_starts()
    for v in rd.committee:
        rd.commit_verdict(v, ends=[rand32() for _ in rd.samples] if v in contradict else None)
    rd.reveal_ends()
    rd.commit_finals(rd.committee)  # the final flags' own commitments (#13 attack 5) before any reveal
    for v in rd.committee:
        rd.reveal_verdict(v)


def mine_past_round_deadline(dc, rd):
    """Mine until the next transaction lands after the round's deadline (its reveal window: ends block +
    commit_verdicts_window for the final flags + reveal_verdicts_window), the window a dispute may open in."""
    chain.mine(max(0, dc.rounds.rounds(rd.round_id).dict()["deadline"] - chain.height))


def finalize_after_dispute(dc, rd):
    """finalize once the round's own deadline passed (a dispute may settle before it does)."""
    mine_past_round_deadline(dc, rd)
    return rd.finalize()


def named_dispute(dc, rd) -> DisputeDriver:
    """A member's dispute over check 0 of a freshly contradicted round: steps posted, step 1 named, jury drawn."""
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    return dd


class AppealDriver:
    """The appeal of a DisputeDriver's jury vote to the whole verifier set (Appeals.vy), move by move."""

    def __init__(self, dd: DisputeDriver):
        self.c, self.dd, self.rd = dd.c, dd, dd.rd
        self.salts: dict = {}

    @property
    def bond(self) -> int:
        return self.c.appeals.bond_for(self.rd.params.verifier_reward_wei)

    def mine_to_window(self):
        """Mine until the next transaction lands in the appeal window (just after the jury's reveal deadline)."""
        chain.mine(max(0, self.dd.state["reveal_deadline"] - chain.height))

    def appeal(self, sender, value=None, mine=True):
        """`sender` appeals the dispute's jury vote; with `mine`, first mine into the appeal window."""
        if mine:
            self.mine_to_window()
        tx = self.c.appeals.appeal(self.dd.dispute_id, {"from": sender, "value": self.bond if value is None else value})
        self.appeal_id = tx.events["DisputeAppealed"]["appeal_id"]
        self.appellant = sender
        self.posted_bond = tx.value
        return tx

    def draw_jury(self, sender=None, mine=True):
        """Anyone's draw_jury; with `mine`, first mine up to the jury block (a draw needs block.number > J)."""
        if mine:
            chain.mine(max(0, self.state["jury_block"] + 1 - (chain.height + 1)))
        tx = self.c.appeals.draw_jury(self.appeal_id, {"from": sender or accounts[0]})
        self.jury = [accounts.at(a) for a in self.c.appeals.jury_of(self.appeal_id)]
        return tx

    def commit_vote(self, juror, vote):
        """vote: True (the trainer's answer), False (the challenger's), or an answer (bytes; zero = abstain)."""
        salt = rand32()
        answer = self.dd.answer_of(vote)
        self.salts[juror.address] = (answer, salt)
        commitment = P.compute_vote_commitment(self.appeal_id, juror.address, answer, salt)
        return self.c.appeals.commit_vote(self.appeal_id, commitment, {"from": juror})

    def reveal_vote(self, juror):
        answer, salt = self.salts[juror.address]
        return self.c.appeals.reveal_vote(self.appeal_id, answer, salt, {"from": juror})

    def vote(self, votes: dict):
        """votes: {juror: True | False | bytes | None (absent)}; commit all, then reveal all."""
        for j, v in votes.items():
            if v is not None:
                self.commit_vote(j, v)
        if any(v is None for v in votes.values()):
            chain.mine(self.rd.params.commit_verdicts_window + 1)
        for j, v in votes.items():
            if v is not None:
                self.reveal_vote(j)

    def resolve(self, sender=None, wait=True):
        """Anyone's resolve; with `wait`, the appeal's reveal deadline is mined past first."""
        if wait:
            chain.mine(max(0, self.state["reveal_deadline"] - chain.height))
        return self.c.appeals.resolve(self.appeal_id, {"from": sender or accounts[0]})

    @property
    def state(self) -> dict:
        return self.c.appeals.appeals(self.appeal_id).dict()
