"""Whole rounds with real nodes: anvil (0.5 s blocks, --state), the contracts, three
verifiers and the trainers as separate `trainchain` processes sharing one store.

One network per module (starting processes that import torch is the expensive part);
every test makes its own task and trainer account, so tests do not depend on each
other's outcomes. Windows are small (tens of blocks) so a missed deadline costs seconds.
"""
from __future__ import annotations

import time

import pytest

from node import protocol
from node.roles.db import NodeDB, b32
from node.localnet import LocalNet, wait_until
from node.chain.records import Round
from nodes_helpers import NODE_CONFIG, tiny_spec

STAKE = 4 * 10**18
ROUND_TIMEOUT = 150  # seconds; a round takes ~15 s here, more on a loaded 2-core machine


class Net:
    """The module's network and what tests need to drive it."""

    def __init__(self, root):
        from node.engine import TaskSpec, apply_runtime_pin
        from node.engine.runtime import is_torch_loaded

        if not is_torch_loaded():  # the genesis states are made here; the nodes pin their own processes
            apply_runtime_pin(TaskSpec.preset("tiny"))
        self.local = LocalNet(root, block_time=0.5).start()
        self.chain = self.local.client()
        self.verifiers = [self.node(f"verifier{i}", 2 + i, "verifier") for i in range(3)]
        self.spec = tiny_spec(self.local.store())
        self.first_task = self.new_task()  # before the verifiers start: they warm up on it
        for v in self.verifiers:
            self.local.spawn_verifier(v)

    def node(self, name: str, dev_index: int, role: str):
        return self.local.add_staked_node(name, dev_index, role, STAKE, config=NODE_CONFIG)

    def new_task(self) -> int:
        return self.local.create_task(self.spec, 2 * 10**18)["task_id"]

    def rounds_of(self, task_id: int) -> list[Round]:
        return [self.chain.get_round(e["args"]["round_id"]) for e in self.chain.events("RoundCommitted", task_id=task_id)]

    def wait_finalized(self, task_id: int, n: int, proc=None, timeout: float = ROUND_TIMEOUT) -> list[dict]:
        def done():
            self.local.check_alive(*(v.name for v in self.verifiers))
            rounds = self.rounds_of(task_id)
            finished = [r for r in rounds if r.phase == protocol.Phase.FINALIZED]
            return finished if len(finished) >= n else None

        try:
            return wait_until(done, timeout, what=f"{n} finalized round(s) of task {task_id}")
        except TimeoutError:
            logs = "\n".join(f"--- {name}\n{self.local.log_tail(name, 15)}" for name in self.local.procs)
            raise AssertionError(f"rounds of task {task_id} did not finalize:\n{logs}") from None

    def stake_of(self, node) -> int:
        return self.chain.call(self.chain.stake_manager.functions.stake_of(node.address))

    def penalties(self, round_id: int) -> list[dict]:
        return [e["args"] for e in self.chain.events("PenaltyApplied", round_id=round_id)]

    def db(self, node, role: str) -> NodeDB:
        """A handle of its own: the tests close it with `with` (LocalNet.node_db's is shared and kept open)."""
        return NodeDB(node.datadir / f"{role}.sqlite")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Net(tmp_path_factory.mktemp("rounds"))
    try:
        yield network
    finally:
        network.local.stop()


def test_honest_rounds_finalize_and_update_the_oracle(net):
    task_id = net.first_task
    trainer = net.node("honest", 1, "trainer")
    proc = net.local.spawn_trainer(trainer, task_id, rounds=2)
    rounds = net.wait_finalized(task_id, 2)
    assert proc.wait(60) == 0, net.local.log_tail("honest")
    assert [r.outcome for r in rounds] == [protocol.Outcome.ACCEPTED] * 2

    # the oracle's latest version is round 2's final checkpoint, and it is in the store with that hash
    cid, state_hash, version, round_id, _, _ = net.chain.call(net.chain.oracle.functions.latest(task_id))
    assert (version, round_id, cid) == (2, rounds[1].round_id, rounds[1].final_cid)
    from node.engine import file_state_hash

    path = net.local.root / "pulled.safetensors"
    net.local.store().get_file(cid, path)
    assert file_state_hash(path) == bytes(state_hash)
    assert net.chain.get_task(task_id).rounds_accepted == 2

    # every verifier replayed and revealed both rounds; the trainer's loss went down
    for v in net.verifiers:
        with net.db(v, "verifier") as db:
            for r in rounds:
                rec = db.get_round("verifier", r.round_id)
                assert rec is not None and rec.data["outcome"] == "accepted" and rec.data["agrees"] is True
                duties = {(d["duty"], d["outcome"]) for d in db.duties(round_id=r.round_id)}
                assert {("commit_verdict", "ok"), ("reveal_verdict", "ok")} <= duties
    with net.db(trainer, "trainer") as db:
        losses = [db.get_round("trainer", r.round_id).data["mean_loss"] for r in rounds]
        assert losses[1] < losses[0]
        stages = db.timing_totals("trainer", rounds[0].round_id)  # per-round timings for bench/rounds.py
        assert {"fetch", "train", "upload", "tx:commit", "tx:reveal_starts", "tx:reveal_ends", "round", "wait"} <= set(stages)
        assert 0 < stages["train"] and stages["wait"] <= stages["round"]
        # pipelined (the default): round 2 was trained while round 1 was verified, and committed as it was
        first, second = (db.get_round("trainer", r.round_id).data for r in rounds)
        assert "ahead_done_at" not in first and second["ahead_done_at"] < second["started"]
        assert b32(second["base_hash"]) == b32(first["boundary_hashes"][-1]) == rounds[0].final_hash
        assert "wait_ahead" in db.timing_totals("trainer", rounds[1].round_id)
        assert db.get_json(f"ahead:{task_id}") is None  # the trainer stopped after 2 rounds: nothing trained for a 3rd
    # the trainer and the majority were paid (pull payments, claimed by the nodes)
    paid = {e["args"]["who"] for r in rounds for e in net.chain.events("RewardPaid", round_id=r.round_id)}
    assert {trainer.address, *(v.address for v in net.verifiers)} <= paid


def test_cheating_trainer_is_slashed(net):
    task_id = net.new_task()
    cheater = net.node("cheater", 5, "trainer")
    before = net.stake_of(cheater)
    last_segment = net.spec.segments_per_round - 1  # always sampled
    proc = net.local.spawn_adversary(cheater, task_id, "--skip-segment", str(last_segment), "--rounds", "1")
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.local.log_tail("cheater")
    assert rnd.outcome == protocol.Outcome.FRAUD
    assert rnd.n_contradicting == 3
    fraud = [p for p in net.penalties(rnd.round_id) if p["who"] == cheater.address]
    assert [p["reason"] for p in fraud] == ["fraud"]
    assert net.stake_of(cheater) == before - fraud[0]["amount"] == before // 2
    # canonical unchanged: still the genesis (version 0)
    assert net.chain.call(net.chain.oracle.functions.latest(task_id))[2] == 0
    with net.db(net.verifiers[0], "verifier") as db:
        assert db.get_round("verifier", rnd.round_id).data["agrees"] is False


def test_nodes_killed_mid_round_restart_and_meet_their_deadlines(net):
    task_id = net.new_task()
    trainer = net.node("trainer-k", 7, "trainer")
    victim = net.verifiers[0]
    net.local.spawn_trainer(trainer, task_id, rounds=1)

    def first(event: str, **filters):
        found = [e for e in net.chain.events(event, **filters)
                 if net.chain.get_round(e["args"]["round_id"]).task_id == task_id]
        return found[0]["args"]["round_id"] if found else None

    # the trainer dies right after its commit is mined (maybe before its DB saw the round id)
    round_id = wait_until(lambda: first("RoundCommitted"), ROUND_TIMEOUT, interval=0.1, what="the commit")
    net.local.kill_process(trainer.name)
    proc = net.local.spawn_trainer(trainer, task_id, rounds=1)
    # a verifier dies right after its verdict commitment (its salt only in its sqlite)
    wait_until(lambda: first("VerdictCommitted", verifier=victim.address), ROUND_TIMEOUT, interval=0.1,
               what="the victim's verdict commitment")
    net.local.kill_process(victim.name)  # SIGKILL: no clean shutdown
    time.sleep(1)
    net.local.spawn_verifier(victim)
    (rnd,) = net.wait_finalized(task_id, 1)
    assert rnd.round_id == round_id and rnd.outcome == protocol.Outcome.ACCEPTED
    assert net.chain.call(net.chain.rounds.functions.revealed(round_id, victim.address))
    assert not net.penalties(round_id)  # nobody missed a deadline
    assert proc.wait(60) == 0, net.local.log_tail(trainer.name)
    with net.db(trainer, "trainer") as db:
        assert db.get_round("trainer", round_id).phase == "done"


def test_trainer_that_never_reveals_is_slashed(net):
    task_id = net.new_task()
    withholder = net.node("withholder", 6, "trainer")
    before = net.stake_of(withholder)
    proc = net.local.spawn_adversary(withholder, task_id, "--withhold", "--rounds", "1")
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.local.log_tail("withholder")
    assert rnd.outcome == protocol.Outcome.ABANDONED
    penalty = [p for p in net.penalties(rnd.round_id) if p["who"] == withholder.address]
    assert [p["reason"] for p in penalty] == ["missed deadline"]
    params = net.chain.get_task(task_id).params
    miss_bps = protocol.compute_trainer_miss_bps(params.trainer_slash_bps, params.no_show_slash_bps)  # >= the fraud slash (#13)
    assert net.stake_of(withholder) == before - before * miss_bps // 10_000
    # the verifiers, not the absent trainer, closed the round
    finalizers = set()
    for v in net.verifiers:
        with net.db(v, "verifier") as db:
            finalizers |= {d["round_id"] for d in db.duties(duty="finalize") if d["outcome"] == "ok"}
    assert rnd.round_id in finalizers


def test_nodes_recover_when_the_rpc_endpoint_restarts_mid_round(net):
    task_id = net.new_task()
    trainer = net.node("trainer-r", 8, "trainer")
    proc = net.local.spawn_trainer(trainer, task_id, rounds=1)

    def sealed():
        for e in net.chain.events("RoundSealed"):
            if net.chain.get_round(e["args"]["round_id"]).task_id == task_id:
                return e["args"]["round_id"]
        return None

    round_id = wait_until(sealed, ROUND_TIMEOUT, interval=0.2, what="the round to be sealed")
    head = net.chain.block_number()
    net.local.anvil.restart(down_for=3)  # SIGTERM dumps --state; the chain comes back on the same port
    assert net.chain.block_number() >= head  # same chain, not a fresh one
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.local.log_tail("trainer-r")
    assert rnd.round_id == round_id and rnd.outcome == protocol.Outcome.ACCEPTED
    assert rnd["n_revealed"] == 3
