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
from node.roles.db import NodeDB
from node.localnet import LocalNet, wait_until
from node.chain.records import Round
from nodes_helpers import NODE_CONFIG, tiny_spec

STAKE = 4 * 10**18
ROUND_TIMEOUT = 150  # seconds; a round takes ~15 s here, more on a loaded 2-core machine


class Net(LocalNet):
    """The module's LocalNet (0.5 s blocks): three verifier processes running, a tiny spec, and what the tests add."""

    def __init__(self, root):
        from node.engine import TaskSpec, apply_runtime_pin
        from node.engine.runtime import is_torch_loaded

        if not is_torch_loaded():  # the genesis states are made here; the nodes pin their own processes
            apply_runtime_pin(TaskSpec.preset("tiny"))
        super().__init__(root, block_time=0.5)
        self.start()
        self.chain = self.client()
        self.verifiers = [self.node(f"verifier{i}", 2 + i, "verifier") for i in range(3)]
        self.spec = tiny_spec(self.store())
        self.first_task = self.new_task()  # before the verifiers start: they warm up on it
        for v in self.verifiers:
            self.spawn_verifier(v)

    def node(self, name: str, dev_index: int, role: str):
        return self.add_staked_node(name, dev_index, role, STAKE, config=NODE_CONFIG)

    def new_task(self) -> int:
        return self.create_task(self.spec, 2 * 10**18)["task_id"]

    def wait_finalized(self, task_id: int, n: int, **kw) -> list[Round]:
        """LocalNet's, with the verifiers watched (a dead one fails the test at once) and this module's timeout."""
        return super().wait_finalized(task_id, n, watch=self.verifiers, timeout=ROUND_TIMEOUT, **kw)

    def trainer_reservation(self, task_id: int) -> int:
        """What a round of `task_id` reserves of its trainer's stake: its slashes are fractions of it (#13)."""
        deployment_min = self.chain.call(self.chain.stake_manager.functions.min_stake(protocol.TRAINER))
        return protocol.compute_trainer_reservation(self.chain.get_task(task_id).params.min_trainer_stake_wei, deployment_min)

    def db(self, node, role: str) -> NodeDB:
        """A handle of its own: the tests close it with `with` (LocalNet.node_db's is shared and kept open)."""
        return NodeDB(node.datadir / f"{role}.sqlite")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Net(tmp_path_factory.mktemp("rounds"))
    try:
        yield network
    finally:
        network.stop()


def test_honest_rounds_finalize_and_update_the_oracle(net):
    task_id = net.first_task
    trainer = net.node("honest", 1, "trainer")
    proc = net.spawn_trainer(trainer, task_id, rounds=2)
    rounds = net.wait_finalized(task_id, 2)
    assert proc.wait(60) == 0, net.log_tail("honest")
    assert [r.outcome for r in rounds] == [protocol.Outcome.ACCEPTED] * 2

    # the oracle's latest version is round 2's final checkpoint, and it is in the store with that hash
    cid, state_hash, version, round_id, _, _ = net.chain.call(net.chain.oracle.functions.latest(task_id))
    assert (version, round_id, cid) == (2, rounds[1].round_id, rounds[1].final_cid)
    from node.engine import file_state_hash

    path = net.root / "pulled.safetensors"
    net.store().get_file(cid, path)
    assert file_state_hash(path) == bytes(state_hash)
    assert net.chain.get_task(task_id).rounds_accepted == 2

    # every verifier replayed and revealed both rounds; the trainer's loss went down
    for v in net.verifiers:
        with net.db(v, "verifier") as db:
            for r in rounds:
                rec = db.get_round("verifier", r.round_id)
                assert rec is not None and rec.data["outcome"] == "accepted" and rec.data["agrees"] is True
                assert rec.data["final_ok"] is True  # the final flag, committed before any reveal (#13 attack 5)
                duties = {(d["duty"], d["outcome"]) for d in db.duties(round_id=r.round_id)}
                assert {("commit_verdict", "ok"), ("commit_final", "ok"), ("reveal_verdict", "ok")} <= duties
    with net.db(trainer, "trainer") as db:
        losses = [db.get_round("trainer", r.round_id).data["mean_loss"] for r in rounds]
        assert losses[1] < losses[0]
        stages = db.timing_totals("trainer", rounds[0].round_id)  # per-round timings for bench/rounds.py
        assert {"fetch", "train", "upload", "tx:commit", "tx:reveal_starts", "tx:reveal_ends", "round", "wait"} <= set(stages)
        assert 0 < stages["train"] and stages["wait"] <= stages["round"]
        # pipelined (the default): round 2 was trained while round 1 was verified, and committed as it was
        first, second = (db.get_round("trainer", r.round_id).data for r in rounds)
        assert "ahead_done_at" not in first and second["ahead_done_at"] < second["started"]
        assert second["base_hash"] == first["boundary_hashes"][-1] == rounds[0].final_hash
        assert "wait_ahead" in db.timing_totals("trainer", rounds[1].round_id)
        assert db.get_json(f"ahead:{task_id}") is None  # the trainer stopped after 2 rounds: nothing trained for a 3rd
    # the trainer and the majority were paid (pull payments, claimed by the nodes)
    paid = {e["args"]["who"] for r in rounds for e in net.chain.events("RewardPaid", round_id=r.round_id)}
    assert {trainer.address, *(v.address for v in net.verifiers)} <= paid


def test_cheating_trainer_is_slashed(net):
    task_id = net.new_task()
    cheater = net.node("cheater", 5, "trainer")
    before = net.stake_of(cheater.address)
    last_segment = net.spec.segments_per_round - 1  # always sampled
    proc = net.spawn_adversary(cheater, task_id, "--skip-segment", str(last_segment), "--rounds", "1")
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.log_tail("cheater")
    assert rnd.outcome == protocol.Outcome.FRAUD
    assert rnd.n_contradicting == 3
    fraud = [p for p in net.penalties(rnd.round_id) if p["who"] == cheater.address]
    assert [p["reason"] for p in fraud] == ["fraud"]
    params = net.chain.get_task(task_id).params
    slash = protocol.compute_slash(net.trainer_reservation(task_id), params.trainer_slash_bps)  # of the round's reservation (#13)
    assert net.stake_of(cheater.address) == before - fraud[0]["amount"] == before - slash
    # canonical unchanged: still the genesis (version 0)
    assert net.chain.call(net.chain.oracle.functions.latest(task_id))[2] == 0
    with net.db(net.verifiers[0], "verifier") as db:
        assert db.get_round("verifier", rnd.round_id).data["agrees"] is False


def test_nodes_killed_mid_round_restart_and_meet_their_deadlines(net):
    task_id = net.new_task()
    trainer = net.node("trainer-k", 7, "trainer")
    victim = net.verifiers[0]
    net.spawn_trainer(trainer, task_id, rounds=1)

    def first(event: str, **filters):
        found = [e for e in net.chain.events(event, **filters)
                 if net.chain.get_round(e["args"]["round_id"]).task_id == task_id]
        return found[0]["args"]["round_id"] if found else None

    # the trainer dies right after its commit is mined (maybe before its DB saw the round id)
    round_id = wait_until(lambda: first("RoundCommitted"), ROUND_TIMEOUT, interval=0.1, what="the commit")
    net.kill_process(trainer.name)
    proc = net.spawn_trainer(trainer, task_id, rounds=1)
    # a verifier dies right after its verdict commitment (its salt only in its sqlite)
    wait_until(lambda: first("VerdictCommitted", verifier=victim.address), ROUND_TIMEOUT, interval=0.1,
               what="the victim's verdict commitment")
    net.kill_process(victim.name)  # SIGKILL: no clean shutdown
    time.sleep(1)
    net.spawn_verifier(victim)
    (rnd,) = net.wait_finalized(task_id, 1)
    assert rnd.round_id == round_id and rnd.outcome == protocol.Outcome.ACCEPTED
    assert net.chain.call(net.chain.rounds.functions.revealed(round_id, victim.address))
    assert not net.penalties(round_id)  # nobody missed a deadline
    assert proc.wait(60) == 0, net.log_tail(trainer.name)
    with net.db(trainer, "trainer") as db:
        assert db.get_round("trainer", round_id).phase == "done"


def test_trainer_that_never_reveals_is_slashed(net):
    task_id = net.new_task()
    withholder = net.node("withholder", 6, "trainer")
    before = net.stake_of(withholder.address)
    proc = net.spawn_adversary(withholder, task_id, "--withhold", "--rounds", "1")
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.log_tail("withholder")
    assert rnd.outcome == protocol.Outcome.ABANDONED
    penalty = [p for p in net.penalties(rnd.round_id) if p["who"] == withholder.address]
    assert [p["reason"] for p in penalty] == ["missed deadline"]
    params = net.chain.get_task(task_id).params
    miss_bps = protocol.compute_trainer_miss_bps(params.trainer_slash_bps, params.no_show_slash_bps)  # >= the fraud slash (#13)
    assert net.stake_of(withholder.address) == before - protocol.compute_slash(net.trainer_reservation(task_id), miss_bps)
    # the verifiers, not the absent trainer, closed the round
    finalizers = set()
    for v in net.verifiers:
        with net.db(v, "verifier") as db:
            finalizers |= {d["round_id"] for d in db.duties(duty="finalize") if d["outcome"] == "ok"}
    assert rnd.round_id in finalizers


def test_nodes_recover_when_the_rpc_endpoint_restarts_mid_round(net):
    task_id = net.new_task()
    trainer = net.node("trainer-r", 8, "trainer")
    proc = net.spawn_trainer(trainer, task_id, rounds=1)

    def sealed():
        for e in net.chain.events("RoundSealed"):
            if net.chain.get_round(e["args"]["round_id"]).task_id == task_id:
                return e["args"]["round_id"]
        return None

    round_id = wait_until(sealed, ROUND_TIMEOUT, interval=0.2, what="the round to be sealed")
    head = net.chain.block_number()
    net.anvil.restart(down_for=3)  # SIGTERM dumps --state; the chain comes back on the same port
    assert net.chain.block_number() >= head  # same chain, not a fresh one
    (rnd,) = net.wait_finalized(task_id, 1)
    assert proc.wait(60) == 0, net.log_tail("trainer-r")
    assert rnd.round_id == round_id and rnd.outcome == protocol.Outcome.ACCEPTED
    assert rnd["n_revealed"] == 3
