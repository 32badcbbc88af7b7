"""A node's dispute duties (node/roles/disputes.py) on a real LocalNet with Disputes deployed: the challenger
opens and names the first step its replay disagrees with, the trainer posts its step hashes, every juror
replays and votes, and whoever is due resolves — across a restart (a fresh DisputeDuties on the same sqlite)
that must neither miss a move nor vote twice. The rounds are RoundKit's (stand-in states, real CIDs); the
replay is a stand-in list here (the engine's per-step replay is tests/engine/test_step_hashes.py)."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from node import protocol
from node.chain.contracts import DeployParams
from node.errors import TrainchainError
from node.localnet import LocalNet
from node.roles.db import NodeDB
from node.roles.disputes import DisputeDuties, compute_first_disputed_step
from node.rounds import Outcome

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/ (last: shadows nothing): roundkit
from roundkit import SMALL_TASK, RoundKit  # noqa: E402

# windows long enough for the duties' transactions, short enough to mine through
TASK = replace(SMALL_TASK, segment_steps=2, steps_per_round=16, reveal_window=8, commit_verdicts_window=8,
               reveal_verdicts_window=8)


def test_first_disputed_step():
    a, b = [bytes([i]) * 32 for i in range(5)], [bytes([i]) * 32 for i in range(5)]
    assert compute_first_disputed_step(a, b) is None
    b[3] = b"\xff" * 32
    assert compute_first_disputed_step(a, b) == 3


def honest_hashes(d, steps: int) -> list[bytes]:
    """The span's true per-step hashes (what an honest replay gives) — inner steps derived from the start leaf."""
    inner = [hashlib.sha256(d.start_hash + i.to_bytes(4, "big")).digest() for i in range(1, d.span_steps)]
    return ([d.start_hash] + inner + [d.end_hash])[: steps + 1]


def forged_hashes(d, steps: int) -> list[bytes]:
    """A forger's post: right up to step 1, then other states, ending at the (forged) end leaf it committed."""
    h = honest_hashes(d, d.span_steps)
    forged = h[:2] + [hashlib.sha256(b"forged" + x).digest() for x in h[2:-1]] + [d.end_hash]
    return forged[: steps + 1]


def truth_of_a_forgery(d, steps: int) -> list[bytes]:
    """What an honest replay of a forged span gives: it agrees up to step 1, then differs (end included)."""
    h = honest_hashes(d, d.span_steps)
    return (h[:2] + [hashlib.sha256(b"true" + x).digest() for x in h[2:]])[: steps + 1]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = LocalNet(tmp_path_factory.mktemp("disputes"), block_time=None,
                   deploy_params=DeployParams(disputes=True, min_window_blocks=4)).start()
    yield net
    net.stop()


@pytest.fixture(scope="module")
def kit(net):
    kit = RoundKit.on(net, trainer=net.dev[1], verifiers=net.dev[2:8], store=net.store())
    kit.stake_all()
    return kit


class FirstMemberContradicts(dict):
    """RoundKit verdicts: the first committee member asked contradicts, the others agree."""

    def __bool__(self):  # RoundKit reads `verdicts or {}`
        return True

    def get(self, member, default=None):
        self.setdefault("first", member)
        return "contradict" if member == self["first"] else "agree"


def contradicted_round(kit, task_id):
    """A round whose first member contradicted: RoundKit's finalize is refused while a dispute may open."""
    verdicts = FirstMemberContradicts()
    with pytest.raises(TrainchainError, match="verdicts still being revealed"):
        kit.run_round(task_id, verdicts=verdicts)
    rounds = kit.contract("TrainingRounds").functions
    return rounds.round_count().call(), verdicts["first"]


def play(duties_by_name: dict, kit, until, max_blocks=60):
    """Tick every node once per block until `until()`; mine a block between passes."""
    for _ in range(max_blocks):
        for duties in duties_by_name.values():
            duties.tick()
        if until():
            return
        kit.mine(1)
    raise AssertionError("dispute did not settle")


def test_forgery_convicted_across_a_restart(net, kit, tmp_path):
    """The trainer forged the span; one contradicting member disputes; jurors replay the truth. The challenger
    and a juror are 'killed' after the jury's commits and restarted from their sqlite."""
    dev = net.dev
    trainer, verifiers = dev[1], dev[2:8]
    task_id = kit.create_task(TASK)
    round_id, challenger = contradicted_round(kit, task_id)
    by_addr = {a.address: a for a in verifiers}
    dbs = {a: NodeDB(tmp_path / f"{a}.sqlite") for a in [trainer.address] + [v.address for v in verifiers]}

    def duties(addr):
        provider = forged_hashes if addr == trainer.address else truth_of_a_forgery
        acct = trainer if addr == trainer.address else by_addr[addr]
        return DisputeDuties(net.client(acct), dbs[addr], provider)

    nodes = {a: duties(a) for a in dbs}
    # nobody calls open: the challenger's tick finds its own contradicting reveal and disputes the differing check
    nodes[challenger].tick()
    dispute_id = nodes[challenger].disputes.functions.dispute_count().call()
    assert nodes[challenger].view(dispute_id).challenger == challenger
    disputes = nodes[challenger].disputes.functions

    def phase():
        return nodes[challenger].view(dispute_id).phase

    play(nodes, kit, lambda: phase() == protocol.DISPUTE_JURY and nodes[challenger].view(dispute_id).n_committed > 0)
    assert nodes[challenger].view(dispute_id).step == 2  # the first step the forged post and the truth disagree
    # kill/restart: fresh duty objects (and chain clients) over the same sqlite files
    nodes = {a: duties(a) for a in dbs}
    play(nodes, kit, lambda: phase() == protocol.DISPUTE_RESOLVED)
    d = disputes.disputes(dispute_id).call()
    assert d[-1] is False  # trainer_won
    jury = disputes.jury_of(dispute_id).call()
    assert all(disputes.votes(dispute_id, j).call() == 2 for j in jury)  # every juror voted once, for the challenger
    kit.mine(TASK.reveal_verdicts_window + 1)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    assert kit.contract("TrainingRounds").functions.rounds(round_id).call()[6] == Outcome.FRAUD


def test_false_challenge_loses(net, kit, tmp_path):
    """The trainer was honest: the challenger's replay (a lazy/lying member) disagrees, the jury replays the
    truth, the trainer wins and the round is accepted."""
    dev = net.dev
    trainer, verifiers = dev[1], dev[2:8]
    task_id = kit.create_task(TASK)
    round_id, challenger = contradicted_round(kit, task_id)
    by_addr = {a.address: a for a in verifiers}
    nodes = {}
    for addr in [trainer.address] + [v.address for v in verifiers]:
        provider = truth_of_a_forgery if addr == challenger else honest_hashes
        acct = trainer if addr == trainer.address else by_addr[addr]
        nodes[addr] = DisputeDuties(net.client(acct), NodeDB(tmp_path / f"{addr}.sqlite"), provider)
    dispute_id = nodes[challenger].open(round_id, check_index=0)
    play(nodes, kit, lambda: nodes[challenger].view(dispute_id).phase == protocol.DISPUTE_RESOLVED)
    assert nodes[challenger].disputes.functions.disputes(dispute_id).call()[-1] is True
    kit.mine(TASK.reveal_verdicts_window + 1)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    assert kit.contract("TrainingRounds").functions.rounds(round_id).call()[6] == Outcome.ACCEPTED
