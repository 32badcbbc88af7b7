"""Epochs (#14), contract level: abuses of the claim and aggregation rules (Epochs.vy), with web3 on LocalNet.

- A trainer squats the slots of an epoch (claims, never commits): each claim holds its own reservation of
  free stake, so it squats at most stake / reservation slots; each squatted slot pays the miss slash of its
  reservation; the epoch closes as soon as the claims are finalized (no other trainer waits for the
  aggregate deadline), and the next epoch is open to everyone.
- The poster tries to make its hash public before the committee committed (so that a lazy member could
  copy it): refused while the commit window is open and a member has not committed; once the window
  closed nobody can commit any more, so every counted commitment predates the post.
"""
from __future__ import annotations

import os

import pytest

from advkit import TOY_TASK
from node import protocol as P
from node.chain.contracts import ContractsError

EPOCH_TASK = TOY_TASK.__class__(**{**TOY_TASK.__dict__, "slots_per_epoch": 3, "outer_lr_bps": 7_000,
                                   "outer_momentum_bps": 9_000, "claim_window": 6, "train_window": 6})


def _reverts(fn, reason: str):
    with pytest.raises(ContractsError, match=reason):
        fn()


def test_slot_squatting_costs_a_miss_slash_per_slot(case, kit):
    c = case("epochs: a trainer claims every slot it can and never commits (slot squatting)",
             "at most stake / reservation slots; each pays the miss slash of its reservation; the epoch closes at once")
    task = kit.create_task(EPOCH_TASK, rounds_funded=20)
    squatter = kit.trainer
    stake0 = kit.call("StakeManager", "stake_of", squatter)
    reservation = P.compute_trainer_reservation(EPOCH_TASK.min_trainer_stake_wei, kit.call("StakeManager", "min_stake", P.TRAINER))
    n_free = stake0 // reservation
    claimed = []
    for slot in range(EPOCH_TASK.slots_per_epoch):
        if slot < n_free:
            kit.tx("Epochs", "claim", task, 0, slot, sender=squatter)
            claimed.append(kit.call("Epochs", "slot_ids", task, 0, slot))
        else:
            _reverts(lambda: kit.tx("Epochs", "claim", task, 0, slot, sender=squatter), "epochs: stake below the task's minimum")
    ep = kit.call("Epochs", "epochs", task, 0)
    kit.mine_past(ep[3])  # commit_deadline
    for slot_id in claimed:
        kit.tx("TrainingRounds", "finalize", slot_id, sender=kit.deployer)
    miss = P.compute_slash(reservation, P.compute_trainer_miss_bps(EPOCH_TASK.trainer_slash_bps, EPOCH_TASK.no_show_slash_bps))
    lost = stake0 - kit.call("StakeManager", "stake_of", squatter)
    # every claim finalized: the epoch closes before its aggregate deadline (from the block after the last
    # finalize: a gas estimate runs on the head), the state unchanged
    kit.mine(1)
    kit.tx("Epochs", "finalize_epoch", task, 0, sender=kit.deployer)
    closed_early = kit.head() <= kit.call("Epochs", "epochs", task, 0)[4]
    # the next epoch: another trainer claims at once
    kit.tx("Epochs", "claim", task, 1, 0, sender=kit.trainers[1])
    c.observe(f"squatted {len(claimed)} of {EPOCH_TASK.slots_per_epoch} slots (stake {stake0} wei, reservation {reservation}); "
              f"lost {lost} wei = {len(claimed)} x {miss}; epoch 0 closed before its aggregate deadline: {closed_early}; "
              f"epoch 1 claimed by another trainer")
    assert len(claimed) == min(n_free, EPOCH_TASK.slots_per_epoch) and 0 < len(claimed) < EPOCH_TASK.slots_per_epoch
    assert lost == len(claimed) * miss and kit.call("StakeManager", "reserved", squatter) == 0
    assert closed_early and kit.call("Epochs", "current_epoch", task) == 1


def test_post_cannot_precede_the_committees_commitments(case, kit):
    c = case("epochs: the poster publishes its aggregate hash while a member has not committed",
             "refused until the commit window closed; then no member can commit: every counted commitment predates the post")
    task = kit.create_task(EPOCH_TASK, rounds_funded=20)
    kit.tx("Epochs", "claim", task, 0, 0, sender=kit.trainer)
    slot_id = kit.call("Epochs", "slot_ids", task, 0, 0)
    trace = kit.build_trace(task)  # slot 0 of epoch 0 trains batches 0..S-1 on the genesis: the toy's schedule

    def commit_slot(trace, trainer=None):  # play_round's commit, for a claimed slot
        kit.tx("Epochs", "commit", slot_id, trace.hashes[0], trace.data_root, trace.trace_root, trace.proof(0),
               sender=trainer or kit.trainer)
        return slot_id

    kit.commit = commit_slot
    assert kit.play_round(task, trace).outcome_name == "accepted"
    ep = kit.call("Epochs", "epochs", task, 0)
    kit.mine_past(max(ep[2], kit.head()) + EPOCH_TASK.seal_delay_blocks)
    kit.tx("Epochs", "open_aggregation", task, 0, sender=kit.deployer)
    members = kit.call("Epochs", "committee_of", task, 0)
    state, salt = os.urandom(32), os.urandom(32)
    for m in members[:-1]:
        kit.tx("Epochs", "commit_aggregate", task, 0, P.compute_aggregate_commitment(task, 0, m, state, salt), sender=m)
    _reverts(lambda: kit.tx("Epochs", "post_aggregate", task, 0, state, "bafy-agg", sender=kit.trainer),
             "epochs: not this slot's turn to post")
    kit.mine_past(kit.call("Epochs", "epochs", task, 0)[15])  # the aggregation's commit deadline
    kit.tx("Epochs", "post_aggregate", task, 0, state, "bafy-agg", sender=kit.trainer)
    _reverts(lambda: kit.tx("Epochs", "commit_aggregate", task, 0, os.urandom(32), sender=members[-1]),
             "epochs: not taking aggregate commitments")
    c.observe(f"post refused with {len(members) - 1}/{len(members)} committed during the window; accepted after it; "
              "the late member's commitment refused after the post")
