"""Epochs (#14), a property: whatever each slot and the poster do, money is conserved and the model
moves at most once per epoch. Per example one epoch of N = 3: each slot is unclaimed, claimed and never
committed, honest, or caught (fraud); the aggregate is posted honestly, forged, or not at all.
Invariants after the epoch closes:
- the pool: pool_before == pool_after + every PoolPaid total, and nothing stays reserved;
- StakeManager: its balance == stakes + pending + claimable + treasury of every address involved;
- ModelOracle: one version more iff the epoch's outcome is accepted (its state = the posted hash),
  else the canonical state is the epoch's base; the epoch advanced either way.
Few examples (CI time): each is one whole epoch on anvil."""
from brownie import accounts, chain
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import rand32
from epochkit import EpochDriver, make_trainers
from node import protocol as P
from node.rounds import EpochPhase, Outcome

st_slot = st.sampled_from(["absent", "no_commit", "honest", "fraud"])
st_poster = st.sampled_from(["honest", "forged", "silent"])


def stake_books(c, who) -> int:
    """What StakeManager owes: bonded + unbonding + claimable of `who` + the treasury (once)."""
    total = c.sm.treasury()
    for a in set(who):
        s = c.sm.stakers(a).dict()
        total += s["amount"] + s["pending"] + c.sm.claimable(a)
    return total


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(slots=st.tuples(st_slot, st_slot, st_slot), poster=st_poster)
def test_epoch_conserves_money_and_moves_the_model_once(staked, deployer, verifiers, slots, poster):
    chain.snapshot()
    try:
        trainers = make_trainers(staked, deployer, 3)
        ep = EpochDriver(staked, deployer, trainers)
        c, task = staked, ep.task_id
        people = list(trainers) + list(verifiers) + [deployer]
        pool0 = c.registry.tasks(task).dict()["pool"]
        versions0 = c.oracle.version_count(task)
        paid = []
        plays = {i: ep.slot(i) for i, kind in enumerate(slots) if kind != "absent"}
        for s in plays.values():
            s.claim()
        for i, s in plays.items():
            if slots[i] != "no_commit":
                s.commit()
        for i, s in plays.items():
            if slots[i] in ("honest", "fraud"):
                paid += _totals(s.play(liars=tuple(verifiers) if slots[i] == "fraud" else ()))
        e = ep.epoch_record()
        if any(kind == "no_commit" for kind in slots):
            ep.mine_past(e.commit_deadline)
            for i, s in plays.items():
                if slots[i] == "no_commit":
                    c.rounds.finalize(s.slot_id, {"from": deployer})
        e = ep.epoch_record()
        posted = rand32()
        if plays and e.accepted and poster != "silent":
            honest = rand32() if poster == "forged" else posted
            ep.open_aggregation()
            for m in ep.committee:
                ep.commit_aggregate(m, honest)
            poster_acct = trainers[e.accepted_slots[0]]
            c.epochs.post_aggregate(task, 0, posted, "bafy-agg", {"from": poster_acct})
            for m in ep.committee:
                ep.reveal_aggregate(m)
            tx = c.epochs.finalize_epoch(task, 0, {"from": deployer})
        elif plays:
            if e.accepted:
                ep.open_aggregation()
                e = ep.epoch_record()
                ep.mine_past(P.compute_post_deadline(e.deadline, len(e.accepted_slots), ep.params.reveal_window))
            else:
                ep.mine_past(e.ready_block_at(chain.height + 1))
            tx = c.epochs.finalize_epoch(task, 0, {"from": deployer})
        else:
            return  # nobody claimed: the epoch never opened
        paid += _totals(tx)
        outcome = tx.events["EpochClosed"]["outcome"]
        # the pool: everything that left it was paid out, nothing stays reserved
        assert c.registry.tasks(task).dict()["pool"] == pool0 - sum(paid)
        assert c.registry.reserved(task) == 0
        # StakeManager holds exactly what it owes
        assert c.sm.balance() == stake_books(c, people)
        # the model moved once iff the aggregate was accepted, to the posted state
        accepted = outcome == Outcome.ACCEPTED
        assert accepted == (poster == "honest" and bool(e.accepted))
        assert c.oracle.version_count(task) == versions0 + int(accepted)
        canonical = bytes(c.oracle.latest(task)[1])
        assert canonical == (posted if accepted else ep.base)
        assert ep.epoch == 1 and ep.phase(0) == EpochPhase.CLOSED
    finally:
        chain.revert()


def _totals(tx) -> list:
    return [ev["total"] for ev in tx.events["PoolPaid"]] if "PoolPaid" in tx.events else []
