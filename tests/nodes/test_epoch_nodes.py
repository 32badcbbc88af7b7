"""Epochs (#14), the proof: N honest trainers and three verifiers — the real TrainerNode and VerifierNode,
in this process, each with its own key, sqlite and work dir, sharing one store — run E epochs of an
epoch task on a real anvil, and the canonical state the network ends with is `train-local --trainers N
--epochs E`'s, bit for bit (the state hash of every epoch, and the very file: the same CID).

The trainers train ahead (the CLI's default): their slot of epoch e+1 on the aggregate of every committed
slot of e, committed the moment e+1 opens on it (tests/nodes/epoch_helpers.py drives the nodes). A trainer
knows that aggregate at the epoch's last commit (its own final state from its trace, its co-trainers' from the
final handoff), and starts there rather than at the ends reveals.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # epoch_helpers

from epoch_helpers import EpochNet, check_network_equals_train_local  # noqa: E402

N, E = 2, 2  # trainers (slots per epoch), epochs


def test_network_epochs_equal_train_local(tmp_path):
    """With inner_moments `corrected` (the rule with the most arithmetic: the verifiers' aggregates, the trainers'
    training ahead and train-local must all compute it alike; the demo uses it too, every other epoch test `average`)."""
    with EpochNet.start(tmp_path, n_slots=N, max_slots=E, inner_moments="corrected") as net:
        assert net.spec.epochs.inner_moments == "corrected"
        check_network_equals_train_local(net, tmp_path, n=N, epochs=E)
        check_co_trainers_started_ahead_before_the_reveal(net)


def check_co_trainers_started_ahead_before_the_reveal(net):
    """The final handoff (node/roles/handoff.py): each trainer of epoch 0 got its co-trainer's final state from it,
    verified, and started training epoch 1 ahead after the last commit and before that slot's ends reveal."""
    chain = net.chain
    commits = [e["blockNumber"] for e in chain.events("SlotCommitted", task_id=net.task_id) if e["args"]["epoch"] == 0]
    for i, trainer in enumerate(net.trainers):
        mine = trainer.db.get_json(trainer.slot_key(0))
        others = [j for j in range(N) if j != i]
        assert mine["ahead_handed"] == others, mine
        for j in others:
            slot_id = chain.slot_id(net.task_id, 0, j)
            revealed = [e["blockNumber"] for e in chain.events("EndsRevealed") if e["args"]["round_id"] == slot_id]
            assert len(commits) == N and max(commits) <= mine["ahead_started"] < revealed[0], (commits, mine, revealed)
    assert all(t.handoff_board.served >= 1 for t in net.trainers)


def test_a_lone_slot_trains_the_next_epoch_ahead_from_its_commit(tmp_path):
    """N = 1: the trainer knows the epoch's aggregate (the outer step over its own final state) when it commits,
    so its slot of epoch 1 starts training ahead then, before the slot's ends reveal (its final checkpoint's
    publication, which waits for the committee's replays); the network still equals train-local."""
    with EpochNet.start(tmp_path, n_slots=1, max_slots=E) as net:
        check_network_equals_train_local(net, tmp_path, n=1, epochs=E)
        (trainer,), chain = net.trainers, net.chain
        slot_id = chain.slot_id(net.task_id, 0, 0)
        committed = [e["blockNumber"] for e in chain.events("SlotCommitted", task_id=net.task_id)
                     if e["args"]["epoch"] == 0]
        revealed = [e["blockNumber"] for e in chain.events("EndsRevealed") if e["args"]["round_id"] == slot_id]
        started = trainer.db.get_json(trainer.slot_key(0))["ahead_started"]  # the block it started training ahead
        assert committed and revealed and committed[0] <= started < revealed[0], (committed, started, revealed)


def test_no_final_handoff_neither_hands_over_nor_asks(tmp_path):
    """`trainer run --no-final-handoff` (final_handoff=False) on trainer 0: it serves no offer (trainer 1, which asks,
    waits for slot 0's ends reveal) and asks for none (trainer 1's offer is never served); the network still
    equals train-local."""
    with EpochNet.start(tmp_path, n_slots=N, max_slots=E, trainer_kw={0: {"final_handoff": False}}) as net:
        check_network_equals_train_local(net, tmp_path, n=N, epochs=E)
        chain, (t0, t1) = net.chain, net.trainers
        assert t0.handoff_board is None and t1.handoff_board.served == 0
        for trainer, other in ((t0, 1), (t1, 0)):
            mine = trainer.db.get_json(trainer.slot_key(0))
            slot_id = chain.slot_id(net.task_id, 0, other)
            revealed = [e["blockNumber"] for e in chain.events("EndsRevealed") if e["args"]["round_id"] == slot_id]
            assert mine["ahead_handed"] == [] and mine["ahead_started"] >= revealed[0], (mine, revealed)


def test_an_unreachable_co_trainer_is_not_asked_every_block(tmp_path, monkeypatch):
    """Trainer 1 advertises a gateway nobody answers on: trainer 0's asks for its final state fail, and each failure
    pauses that slot's asks for HANDOFF_PAUSE_S (a tick must not wait on a dead peer every block); trainer 0 trains
    ahead from the reveal, trainer 1 from trainer 0's handoff, and the network still equals train-local."""
    import node.roles.handoff as handoff
    from node.roles.epoch_trainer import HANDOFF_PAUSE_S
    from node.store.peers import advertise

    asked = []
    real = handoff.request_final
    monkeypatch.setattr(handoff, "request_final", lambda url, *a, **kw: (asked.append((url, a[3], a[4])), real(url, *a, **kw))[1])
    with EpochNet.start(tmp_path, n_slots=N, max_slots=E) as net:
        t0, t1 = net.trainers
        dead = "http://127.0.0.1:9"  # the discard port: nothing listens
        advertise(t1.chain, dead)
        check_network_equals_train_local(net, tmp_path, n=N, epochs=E)
        to_dead = [a for a in asked if a[0] == dead and a[1:] == (0, 1)]
        first = t0.db.get_json(t0.slot_key(0))
        assert first["ahead_handed"] == [] and t1.db.get_json(t1.slot_key(0))["ahead_handed"] == [0]
        # the slot's commit -> its reveal takes a few passes here (seconds, < HANDOFF_PAUSE_S): one ask, not one per
        # block (without the pause: one per pass, 4 when this was written)
        assert len(to_dead) == 1, (to_dead, HANDOFF_PAUSE_S)
