"""Epochs (#14): what a cheating slot and a cheating aggregator can and cannot do, with real nodes.

Two trainers share each epoch (tests/nodes/epoch_helpers.py: the real TrainerNode / VerifierNode in this
process, ticked block by block, three verifiers):

- a CheatingTrainer skips the steps of its slot's last segment (always checked): its slot is convicted and
  slashed, the epoch aggregates the honest slot alone and is accepted — the canonical state is the outer step
  over that slot, recomputed here from the store;
- a trainer whose slot is honest posts a WRONG aggregate (a perturbed state, put in the store): the aggregation
  committee, which committed to its own computation before any post, contradicts it — the epoch closes without
  a new state, the poster pays the trainer slash, the honest verifiers keep their stakes.
"""
from __future__ import annotations

import sys

import pytest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes"))  # epoch_helpers

from epoch_helpers import STAKE, EpochNet  # noqa: E402


def test_cheating_slot_is_left_out_and_the_others_aggregated(tmp_path, case):
    from node.adversaries.trainers import CheatingTrainer
    from node.roles.epochs import StateRef, compute_aggregate, slot_finals
    from node.rounds import Outcome

    c = case("epochs: a CheatingTrainer's slot (skips its last segment) beside an honest slot",
             "its slot fraud, trainer slashed, left out of A; the epoch accepted with the honest slot alone "
             "(state = the outer step over it); honest stakes kept")
    with EpochNet.start(tmp_path, n_slots=2, max_slots=1, trainer_cls={1: CheatingTrainer},
                        trainer_kw={1: {"skip_segments": {3}}}) as net:
        dev = net.dev
        net.run(1)
        chain, ep = net.chain, net.chain.get_epoch(net.task_id, 0)
        cheat_round = chain.get_round(chain.slot_id(net.task_id, 0, 1))
        base = chain.call(chain.oracle.functions.at(net.task_id, 0))
        agg = compute_aggregate(net.spec, net.store, StateRef(base[0], bytes(base[1])),
                                slot_finals(chain, net.task_id, 0, ep.accepted), tmp_path / "check")
        latest = chain.latest_model(net.task_id)
        stake = {a.address: chain.call(chain.stake_manager.functions.stake_of(a.address)) for a in dev[1:6]}
        c.observe(f"slot 1: {cheat_round.outcome.label}; A = {ep.accepted_slots}; epoch {ep.outcome.label}; "
                  f"cheater stake {stake[dev[2].address] / 1e18:g} ETH of {STAKE / 1e18:g}; "
                  f"canonical == outer step over slot 0: {latest.state_hash == agg.state_hash}; penalties "
                  + ", ".join(f"{p['who'][:8]} {p['reason']}" for p in net.penalties()))
        assert cheat_round.outcome == Outcome.FRAUD
        assert ep.accepted_slots == [0] and ep.outcome == Outcome.ACCEPTED
        assert latest.version == 1 and latest.state_hash == agg.state_hash
        assert stake[dev[2].address] < STAKE
        assert all(stake[a.address] >= STAKE for a in (dev[1], dev[3], dev[4], dev[5]))


def test_wrong_aggregate_is_contradicted(tmp_path, case):
    import torch

    from node.engine import load_state
    from node.engine.outer import save_epoch_state
    from node.roles.trainer import TrainerNode
    from node.rounds import Outcome

    class WrongAggregator(TrainerNode):
        """Posts the honest aggregate with one weight changed (its file in the store, so the CID resolves)."""

        def posted_aggregate(self, ep, mine):
            done = super().posted_aggregate(ep, mine)
            if done is None or done.get("forged"):
                return done
            state = load_state(done["path"])
            name = next(iter(state.params))
            state.params[name] = state.params[name] + torch.full_like(state.params[name], 1e-3)
            path = Path(done["path"]).with_name("forged.safetensors")
            h = save_epoch_state(self.spec, state, path)
            forged = {**done, "state_hash": h, "cid": self.store.put_file(path), "path": str(path), "forged": True}
            self.db.put_json(f"aggregate:{self.task_id}:{ep.epoch}", forged)
            return self.db.get_json(f"aggregate:{self.task_id}:{ep.epoch}")

    c = case("epochs: the lowest accepted slot's trainer posts a wrong aggregate (one weight +1e-3)",
             "the committee (committed first) contradicts it: epoch fraud, state unchanged, poster slashed; "
             "honest verifiers keep their stakes")
    with EpochNet.start(tmp_path, n_slots=2, max_slots=1, trainer_cls={0: WrongAggregator}) as net:
        dev = net.dev
        net.run(1)
        chain, ep = net.chain, net.chain.get_epoch(net.task_id, 0)
        latest = chain.latest_model(net.task_id)
        stake = {a.address: chain.call(chain.stake_manager.functions.stake_of(a.address)) for a in dev[1:6]}
        posted = chain.events("AggregatePosted", task_id=net.task_id)
        c.observe(f"posted by {'slot 0' if posted and posted[0]['args']['poster'] == dev[1].address else '?'}; "
                  f"epoch {ep.outcome.label}; canonical version {latest.version}; poster stake "
                  f"{stake[dev[1].address] / 1e18:g} ETH of {STAKE / 1e18:g}")
        assert ep.accepted_slots == [0, 1] and ep.outcome == Outcome.FRAUD
        assert latest.version == 0  # the state is unchanged
        assert stake[dev[1].address] < STAKE
        assert all(stake[a.address] >= STAKE for a in (dev[2], dev[3], dev[4], dev[5]))


def test_a_slot_dispute_is_replayed_on_the_slots_schedule(tmp_path, case):
    """Disputes deployed: a lazy accuser (MisbehavingVerifier "accuse") contradicts both honest slots of an epoch and
    disputes them. Each trainer must post its span's step hashes — valid on chain only if its replay follows the
    slot's schedule (batch (e·N + i)·H + t, lr at e·H + t), not v1's — and the jurors' replay of the named step
    must give the trainer's hash (node/roles/epochs.slot_of_round in both)."""
    from node.adversaries.verifiers import MisbehavingVerifier
    from node.rounds import Outcome

    c = case("epochs + Disputes: a lazy accuser disputes both honest slots (real nodes, slot schedule)",
             "each trainer posts its slot's step hashes, the jury replays the named step on the slot's schedule "
             "and sides with the trainer: every dispute won by the trainer, the accuser loses its bonds; both "
             "slots in A (the aggregate deadline waits out a lost dispute), the epoch accepted")
    with EpochNet.start(tmp_path, n_slots=2, max_slots=1, disputes=True, verifier_cls={0: MisbehavingVerifier},
                        verifier_kw={0: {"mode": "accuse"}}) as net:
        # the epoch's aggregate deadline waits out a lost dispute, appeal window included (compute_dispute_span)
        net.run(1, max_passes=900)
        chain = net.chain
        accuser = net.verifiers[0].address
        opened = [e["args"] for e in chain.events("DisputeOpened")]
        posted = chain.events("StepsPosted")
        resolved = [e["args"] for e in chain.events("DisputeResolved")]
        votes = [e["args"]["trainer_right"] for e in chain.events("VoteRevealed")]
        slots = [chain.get_round(chain.slot_id(net.task_id, 0, i)).outcome.label for i in range(2)]
        ep = chain.get_epoch(net.task_id, 0)
        c.observe(f"{len(opened)} dispute(s) by the accuser, {len(posted)} step posts, votes {votes}, resolved "
                  f"{[(r['trainer_won'], r['reason']) for r in resolved]}; slots {slots}; epoch {ep.outcome.label}, "
                  f"A = {ep.accepted_slots}")
        assert len(opened) == 2 and all(o["challenger"] == accuser for o in opened)
        assert len(posted) == 2  # both trainers' replays ended at their committed leaves: the slot schedule
        assert votes and all(votes)
        assert len(resolved) == 2 and all(r["trainer_won"] and r["reason"] == "jury" for r in resolved)
        assert slots == ["accepted", "accepted"]
        assert ep.outcome == Outcome.ACCEPTED and ep.accepted_slots == [0, 1]


def _handing_off(forge):
    """A TrainerNode (its slot honest) whose final handoff (node/roles/handoff.py) offers `forge(offer)` instead."""
    from node.roles.handoff import FINAL_ROUTE, HandoffBoard
    from node.roles.trainer import TrainerNode

    class ForgingBoard(HandoffBoard):
        def offer(self, offer, allowed):
            super().offer(forge(offer), allowed)

    class ForgingHandoff(TrainerNode):
        def serve_finals(self, gateway):
            self.handoff_board = ForgingBoard(self.chain.chain_id)
            gateway.routes[FINAL_ROUTE] = self.handoff_board.answer

    return ForgingHandoff


@pytest.mark.parametrize("what", ["hash", "cid"])
def test_a_bad_final_handoff_costs_the_co_trainer_only_the_wait(tmp_path, case, what):
    """Slot 1's trainer trains honestly but hands its co-trainer a forged final state before its ends reveal: a
    hash that is not leaf M of its committed trace root (`hash`), or its true h_M and proof with another
    checkpoint's CID (`cid`: the base's, in the store). The co-trainer refuses the first (the proof), and the
    second fails the checkpoint's hash check inside its training ahead; either way it trains ahead once slot 1's
    ends are revealed, as without the handoff — and the network still equals train-local."""
    from dataclasses import replace

    from epoch_helpers import check_network_equals_train_local

    forges = {"hash": lambda o: replace(o, final_hash=bytes(32 * [0xAB])),
              "cid": lambda o: replace(o, final_cid=base_cid[0])}
    base_cid = []
    c = case(f"epochs: a co-trainer's final handoff forged ({'h_M not in its trace root' if what == 'hash' else 'true h_M, another checkpoint CID'})",
             "the honest trainer refuses it (proof) or its training ahead fails the checkpoint hash, then trains ahead "
             "from the ends reveal; both slots accepted, nobody slashed, the network == train-local")
    with EpochNet.start(tmp_path, n_slots=2, max_slots=2, trainer_cls={1: _handing_off(forges[what])}) as net:
        base_cid.append(net.task["genesis_cid"])
        check_network_equals_train_local(net, tmp_path, n=2, epochs=2)
        chain, honest = net.chain, net.trainers[0]
        mine = honest.db.get_json(honest.slot_key(0))
        forger_slot = chain.slot_id(net.task_id, 0, 1)
        revealed = [e["blockNumber"] for e in chain.events("EndsRevealed") if e["args"]["round_id"] == forger_slot]
        refused = [d for d in honest.db.duties("trainer", duty="final_handoff") if d["outcome"] == "refused"]
        c.observe(f"honest trainer: handed {mine.get('ahead_handed')}, refused {[d['detail'][:60] for d in refused]}, "
                  f"handoff failed {bool(mine.get('handoff_failed'))}; ahead started at block {mine['ahead_started']}, "
                  f"slot 1's ends revealed at {revealed}; both epochs A = [0, 1], no penalties, == train-local")
        assert revealed and mine["ahead_started"] >= revealed[0]  # it waited for the reveal: no earlier
        assert mine["ahead_handed"] == []  # the ahead training that counted used the revealed final state
        if what == "hash":
            assert [d["round_id"] for d in refused] == [forger_slot] and not mine.get("handoff_failed")
        else:
            assert mine.get("handoff_failed") and not refused
