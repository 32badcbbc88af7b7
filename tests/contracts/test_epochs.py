"""Epochs (#14): N slots per epoch, each slot a v1 round, the checked aggregate, one oracle version per
epoch; the N = 1 identity task stays v1. Small windows (4 blocks): an epoch is ~40 mined blocks."""
from dataclasses import replace

import brownie
import pytest
from brownie import accounts, chain

from conftest import MIN_TRAINER, MIN_VERIFIER, PARAMS, TRAINER_STAKE, VERIFIER_STAKE, RoundDriver, rand32
from disputes_kit import dc  # noqa: F401  (the Disputes deployment, a fixture)
from epochkit import EPOCH_PARAMS, EpochDriver, make_trainers
from node import protocol as P
from node.rounds import EpochPhase, Outcome, Phase


@pytest.fixture(scope="module")
def trainers(staked, deployer):
    return make_trainers(staked, deployer, 3)


@pytest.fixture
def ep(staked, deployer, trainers):
    return EpochDriver(staked, deployer, trainers)


def versions(c, task_id) -> int:
    return c.oracle.version_count(task_id)


def test_honest_epoch_three_slots_one_version(ep, trainers):
    c = ep.c
    pool0 = c.registry.tasks(ep.task_id).dict()["pool"]
    plays = ep.run_slots()
    e = ep.epoch_record(0)
    assert e.phase == EpochPhase.OPEN and e.accepted == 0b111 and e.committed == 0b111
    # the deadlines are the Python rule's, from the block the first claim opened the epoch in
    assert (e.claim_deadline, e.commit_deadline, e.aggregate_deadline) == P.compute_task_epoch_deadlines(ep.params, e.opened_block, disputes=False)
    for s in plays:
        r = c.rounds.rounds(s.slot_id).dict()
        assert r["outcome"] == Outcome.ACCEPTED and c.epochs.slots(s.slot_id)[2] == s.index
    # accepted slots do not advance the task: only the epoch's aggregate does
    assert versions(c, ep.task_id) == 1
    aggregate = rand32()
    tx = ep.aggregate(aggregate, poster=trainers[0])
    assert tx.events["EpochClosed"]["outcome"] == Outcome.ACCEPTED and tx.events["EpochClosed"]["version"] == 1
    assert versions(c, ep.task_id) == 2
    assert bytes(c.oracle.latest(ep.task_id)[1]) == aggregate and c.oracle.latest(ep.task_id)[3] == plays[0].slot_id
    assert ep.epoch == 1 and ep.phase(1) == EpochPhase.NONE and ep.phase(0) == EpochPhase.CLOSED
    epoch, base, *_ = c.epochs.epoch_of(ep.task_id)
    assert epoch == 1 and bytes(base) == aggregate
    # pool: 3 slots' round costs and the committee's pay; nothing stays reserved
    p = ep.params
    paid = 3 * p.round_cost + len(ep.committee) * p.verifier_reward_wei
    assert c.registry.tasks(ep.task_id).dict()["pool"] == pool0 - paid and c.registry.reserved(ep.task_id) == 0
    # the next epoch opens on the aggregate at its first claim
    s = ep.slot(0)
    s.claim()
    assert bytes(ep.epoch_record(1).base_hash) == aggregate and s.commit().events["SlotCommitted"]["epoch"] == 1


def test_with_disputes_the_aggregate_deadline_waits_out_a_dispute(dc, deployer, trainer):
    """A deployment with Disputes: a slot's round may be disputed until its deadline and a jury vote is final only
    after its appeal window, so the epoch's aggregate deadline is a dispute span later (compute_dispute_span): a
    challenger that loses, appeal included, cannot push the honest slot past it (issue #15's known issue)."""
    ep = EpochDriver(dc, deployer, [trainer])
    tx = ep.slot(0).claim()
    e = ep.epoch_record(0)
    deadlines = (e.claim_deadline, e.commit_deadline, e.aggregate_deadline)
    assert deadlines == P.compute_task_epoch_deadlines(ep.params, e.opened_block, disputes=True)
    assert tx.events["EpochOpened"]["aggregate_deadline"] == e.aggregate_deadline
    plain = P.compute_task_epoch_deadlines(ep.params, e.opened_block, disputes=False)
    p = ep.params
    assert e.aggregate_deadline - plain[2] == P.compute_dispute_span(p.reveal_window, p.commit_verdicts_window,
                                                                     p.reveal_verdicts_window) > 0


def test_fraudulent_slot_left_out_lowest_accepted_posts(ep, trainers, verifiers):
    c = ep.c
    # slot 0 is caught (every member contradicts): A = {1, 2}, slot 1's trainer posts first
    plays = ep.run_slots(liars_of={0: tuple(verifiers)})
    assert c.rounds.rounds(plays[0].slot_id).dict()["outcome"] == Outcome.FRAUD
    assert ep.epoch_record().accepted == 0b110
    ep.open_aggregation()
    for m in ep.committee:
        ep.commit_aggregate(m, b"\x01" * 32)
    with brownie.reverts("epochs: not the trainer of an accepted slot"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x01" * 32, "bafy-agg", {"from": trainers[0]})
    with brownie.reverts("epochs: not this slot's turn to post"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x01" * 32, "bafy-agg", {"from": trainers[2]})
    tx = c.epochs.post_aggregate(ep.task_id, 0, b"\x01" * 32, "bafy-agg", {"from": trainers[1]})
    assert tx.events["AggregatePosted"]["slot_id"] == plays[1].slot_id
    for m in ep.committee:
        ep.reveal_aggregate(m)
    closed = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]}).events["EpochClosed"]
    assert closed["accepted_slots"] == 0b110 and closed["outcome"] == Outcome.ACCEPTED


def test_claimed_slot_that_never_commits_pays_the_miss_slash(ep, trainers):
    c = ep.c
    s = ep.slot(0)
    s.claim()
    assert c.rounds.rounds(s.slot_id).dict()["phase"] == Phase.CLAIMED
    with brownie.reverts("rounds: deadline not passed"):
        c.rounds.finalize(s.slot_id, {"from": trainers[1]})
    ep.mine_past(ep.epoch_record().commit_deadline)
    with brownie.reverts("epochs: commit window closed"):
        s.commit()
    # a claimed slot is not finalized yet: A is not final before the aggregate deadline
    with brownie.reverts("epochs: slots still running"):
        c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]})
    stake = c.sm.stake_of(trainers[0])
    tx = c.rounds.finalize(s.slot_id, {"from": trainers[1]})
    assert tx.events["RoundFinalized"]["outcome"] == Outcome.EXPIRED
    assert not tx.events["SlotFinalized"]["accepted"]
    # the slot reserved the trainer's reservation at its claim: the miss slash is a fraction of it
    reservation = P.compute_trainer_reservation(ep.params.min_trainer_stake_wei, MIN_TRAINER)
    miss = P.compute_slash(reservation, P.compute_trainer_miss_bps(ep.params.trainer_slash_bps, ep.params.no_show_slash_bps))
    assert c.sm.stake_of(trainers[0]) == stake - miss
    # every claimed slot finalized, none accepted: the epoch closes at once (no need to wait for the
    # aggregate deadline), the state unchanged, no version written
    chain.mine(ep.params.seal_delay_blocks + 1)
    with brownie.reverts("epochs: no slot accepted (finalize_epoch closes the epoch)"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": trainers[1]})
    assert chain.height < ep.epoch_record().aggregate_deadline
    closed = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]}).events["EpochClosed"]
    assert closed["outcome"] == Outcome.EXPIRED and closed["version"] == 0 and bytes(closed["state_hash"]) == ep.base
    assert ep.epoch == 1 and versions(c, ep.task_id) == 1 and c.registry.reserved(ep.task_id) == 0


def test_takeover_after_a_post_window(ep, trainers):
    c = ep.c
    ep.run_slots()
    ep.open_aggregation()
    committee = ep.committee
    for m in committee[:-1]:  # one member stays silent: posting waits for the commit window
        ep.commit_aggregate(m, b"\x02" * 32)
    e = ep.epoch_record()
    with brownie.reverts("epochs: not this slot's turn to post"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x02" * 32, "bafy", {"from": trainers[0]})
    ep.mine_past(e.deadline)
    # rank 0 lets its window pass; rank 1 (slot 1) takes over after W = reveal_window blocks
    with brownie.reverts("epochs: not this slot's turn to post"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x02" * 32, "bafy", {"from": trainers[1]})
    ep.mine_past(P.compute_post_opens(e.deadline, 1, ep.params.reveal_window) - 2)
    c.epochs.post_aggregate(ep.task_id, 0, b"\x02" * 32, "bafy", {"from": trainers[1]})
    for m in committee[:-1]:
        ep.reveal_aggregate(m)
    stake = c.sm.stake_of(committee[-1])
    tx = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]})
    assert tx.events["EpochClosed"]["outcome"] == Outcome.ACCEPTED
    # a seat reserves the verifier minimum: the no-show slash is a fraction of it, the rest released
    assert c.sm.stake_of(committee[-1]) == stake - P.compute_slash(MIN_VERIFIER, ep.params.no_show_slash_bps)
    assert c.sm.reserved(committee[-1]) == 0


def test_nobody_posts_epoch_abandoned(ep, trainers):
    c = ep.c
    ep.run_slots([0])
    ep.open_aggregation()
    for m in ep.committee:
        ep.commit_aggregate(m, b"\x03" * 32)
    e = ep.epoch_record()
    with brownie.reverts("epochs: aggregate not posted yet"):
        c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]})
    # a post reserves a trainer reservation of free stake: a poster whose stake is all held elsewhere cannot post
    other = EpochDriver(c, ep.trainers[0], trainers, replace(EPOCH_PARAMS, min_trainer_stake_wei=c.sm.stake_of(trainers[0])))
    other.slot(0, trainers[0]).claim()
    with brownie.reverts("epochs: free stake below the task's minimum"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x03" * 32, "bafy", {"from": trainers[0]})
    ep.mine_past(P.compute_post_deadline(e.deadline, 1, ep.params.reveal_window))
    with brownie.reverts("epochs: post window closed"):
        c.epochs.post_aggregate(ep.task_id, 0, b"\x03" * 32, "bafy", {"from": trainers[0]})
    closed = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]}).events["EpochClosed"]
    assert closed["outcome"] == Outcome.ABANDONED and versions(c, ep.task_id) == 1 and c.registry.reserved(ep.task_id) == 0


def test_majority_mismatch_rejects_the_post(ep, trainers):
    c = ep.c
    ep.run_slots([0, 1])
    honest = rand32()
    ep.open_aggregation()
    for m in ep.committee:
        ep.commit_aggregate(m, honest)
    c.epochs.post_aggregate(ep.task_id, 0, rand32(), "bafy-forged", {"from": trainers[0]})
    for m in ep.committee:
        assert not ep.reveal_aggregate(m).events["AggregateRevealed"]["matches"]
    stake = c.sm.stake_of(trainers[0])
    closed = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[1]}).events["EpochClosed"]
    assert closed["outcome"] == Outcome.FRAUD and bytes(closed["state_hash"]) == ep.base and versions(c, ep.task_id) == 1
    # the post reserved the poster's trainer reservation: the fraud fraction of it is taken
    assert c.sm.stake_of(trainers[0]) == stake - P.compute_slash(MIN_TRAINER, ep.params.trainer_slash_bps)
    assert c.sm.reserved(trainers[0]) == 0
    assert ep.epoch == 1 and c.registry.reserved(ep.task_id) == 0


def test_aggregation_seat_short_of_free_stake_holds_what_it_has(ep, staked, deployer, trainers, verifiers):
    """#13 draws committees without looking at reservations: an aggregation member whose whole stake is
    held by open v1 rounds is still drawn. Its seat reserves what it has (0 here; TrainingRounds.seal's
    shortfall rule): open_aggregation no longer reverts on StakeManager.reserve, the epoch aggregates and
    finalizes, and every reservation is back to exactly what it was (the v1 rounds' seats untouched)."""
    c = ep.c
    # open v1 rounds whose committees seat all seven verifiers (2 verifier minimums staked each) until
    # none has a free verifier minimum left; the rounds stay open: their seats stay reserved
    busy = replace(PARAMS, committee_size=len(verifiers))
    for k in range(4):
        if all(c.sm.free_stake(v) == 0 for v in verifiers):
            break
        rd = RoundDriver(c, deployer, trainers[k % 3], busy)
        rd.commit()
        rd.seal()
    assert all(c.sm.free_stake(v) == 0 for v in verifiers)
    # two fresh verifiers with free stake: a committee of three has at least one short member
    fresh = [accounts.add() for _ in range(2)]
    for v in fresh:
        deployer.transfer(v, 2 * VERIFIER_STAKE)
        c.sm.stake(P.VERIFIER, {"from": v, "value": VERIFIER_STAKE})
    everyone = list(verifiers) + fresh
    ep.run_slots()
    reserved0 = {v.address: c.sm.reserved(v) for v in everyone}
    stake0 = {v.address: c.sm.stake_of(v) for v in everyone}
    free0 = {v.address: c.sm.free_stake(v) for v in everyone}
    tx = ep.open_aggregation()
    seat = MIN_VERIFIER
    short = [m for m in ep.committee if free0[m.address] < seat]
    assert short and len(tx.events["AggregationSeatShort"]) == len(short)
    for m in ep.committee:
        held = min(seat, free0[m.address])
        assert c.sm.reserved(m) == reserved0[m.address] + held
        assert c.epochs.seat_shortfall(ep.task_id, 0, m) == seat - held
    # a short member stays silent: its no-show slash is a fraction of what it held (nothing)
    silent = short[0]
    talking = [m for m in ep.committee if m != silent]
    aggregate = rand32()
    for m in talking:
        ep.commit_aggregate(m, aggregate)
    ep.mine_past(ep.epoch_record().deadline)
    c.epochs.post_aggregate(ep.task_id, 0, aggregate, "bafy-aggregate", {"from": trainers[0]})
    for m in talking:
        ep.reveal_aggregate(m)
    closed = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[0]}).events["EpochClosed"]
    assert closed["outcome"] == Outcome.ACCEPTED and bytes(closed["state_hash"]) == aggregate
    assert {v.address: c.sm.reserved(v) for v in everyone} == reserved0
    assert c.sm.stake_of(silent) == stake0[silent.address] - P.compute_slash(seat - c.epochs.seat_shortfall(ep.task_id, 0, silent),
                                                                             ep.params.no_show_slash_bps)
    assert all(c.sm.stake_of(m) == stake0[m.address] for m in talking)


def test_every_slot_claimed_aggregation_opens_before_the_claim_deadline(staked, deployer, trainers):
    """The N-th claim ends the claim phase: with all N slots claimed and finalized, A is final at the last
    finalize (rules.compute_ready_block), the aggregation opens and the epoch closes long before the claim
    deadline (claim window 200 blocks here)."""
    c = staked
    ep = EpochDriver(c, deployer, trainers, replace(EPOCH_PARAMS, claim_window=200))
    plays = ep.run_slots()
    e = ep.epoch_record()
    assert e.claimed == e.finalized == 0b111 and e.every_slot_claimed and chain.height < e.claim_deadline
    assert e.ready_block_at(chain.height + 1) == e.last_finalized_block
    with brownie.reverts("epochs: slot taken"):  # nothing left to claim
        c.epochs.claim.call(ep.task_id, 0, 1, {"from": trainers[0]})
    tx = ep.open_aggregation()
    # (the driver leaves one empty block after the seed block)
    assert tx.block_number == e.last_finalized_block + e.seal_delay_blocks + 2 < e.claim_deadline - 100
    aggregate = rand32()
    for m in ep.committee:
        ep.commit_aggregate(m, aggregate)
    c.epochs.post_aggregate(ep.task_id, 0, aggregate, "bafy-aggregate", {"from": trainers[0]})
    for m in ep.committee:
        ep.reveal_aggregate(m)
    tx = c.epochs.finalize_epoch(ep.task_id, 0, {"from": trainers[0]})
    assert tx.events["EpochClosed"]["outcome"] == Outcome.ACCEPTED and tx.block_number < e.claim_deadline
    assert bytes(c.oracle.latest(ep.task_id)[1]) == aggregate and c.oracle.latest(ep.task_id)[3] == plays[0].slot_id


def test_fewer_slots_claimed_aggregation_waits_for_the_claim_deadline(staked, deployer, trainers):
    """N - 1 of N slots claimed and finalized: a slot is still free, so A is final only once the claim window
    closed (unchanged): open_aggregation waits for claim_deadline + seal_delay_blocks."""
    c = staked
    ep = EpochDriver(c, deployer, trainers, replace(EPOCH_PARAMS, claim_window=200))
    ep.run_slots([0, 1])
    e = ep.epoch_record()
    assert e.finalized == e.claimed == 0b011 and not e.every_slot_claimed and e.ready_block_at(chain.height + 1) is None
    with brownie.reverts("epochs: slots still running"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": trainers[0]})
    ep.mine_past(e.claim_deadline + e.seal_delay_blocks - 2)  # the next block is the seed block, claim_deadline + seal_delay
    with brownie.reverts("epochs: slots still running"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": trainers[0]})
    assert ep.epoch_record().ready_block_at(chain.height + 1) == e.claim_deadline
    tx = c.epochs.open_aggregation(ep.task_id, 0, {"from": trainers[0]})
    assert tx.block_number == e.claim_deadline + e.seal_delay_blocks + 1
    assert ep.phase() == EpochPhase.AGGREGATING


def test_one_slot_identity_task_stays_v1(staked, driver, trainers, deployer):
    """N = 1 with the identity outer step: TrainingRounds.commit as in v1, finalize advances the task
    (one version per accepted round = per epoch); Epochs refuses it, and v1 commit refuses an epoch task."""
    task = driver(PARAMS)
    assert task.run().events["RoundFinalized"]["outcome"] == Outcome.ACCEPTED
    assert versions(staked, task.task_id) == 2
    with brownie.reverts("epochs: a one-slot identity task commits with TrainingRounds.commit"):
        staked.epochs.claim(task.task_id, 0, 0, {"from": trainers[0]})
    ep = EpochDriver(staked, deployer, trainers)
    with brownie.reverts("rounds: an epoch task: claim a slot in Epochs"):
        staked.rounds.commit(ep.task_id, ep.base, rand32(), rand32(), [], {"from": trainers[0]})


def test_claim_reverts(ep, staked, trainers, outsider, deployer, driver):
    c = ep.c
    with brownie.reverts("epochs: unknown task"):
        c.epochs.claim(999, 0, 0, {"from": trainers[0]})
    with brownie.reverts("epochs: not the open epoch"):
        c.epochs.claim(ep.task_id, 1, 0, {"from": trainers[0]})
    with brownie.reverts("epochs: no such slot"):
        c.epochs.claim(ep.task_id, 0, 3, {"from": trainers[0]})
    with brownie.reverts("epochs: not a staked trainer"):
        c.epochs.claim(ep.task_id, 0, 0, {"from": deployer})
    s = ep.slot(0)
    tx = s.claim()
    assert tx.events["EpochOpened"]["epoch"] == 0 and tx.events["SlotClaimed"]["slot_id"] == s.slot_id
    with brownie.reverts("epochs: slot taken"):
        c.epochs.claim(ep.task_id, 0, 0, {"from": trainers[1]})
    ep.mine_past(ep.epoch_record().claim_deadline)
    with brownie.reverts("epochs: claim window closed"):
        c.epochs.claim(ep.task_id, 0, 1, {"from": trainers[1]})


def test_claim_needs_stake_pool_and_verifiers(staked, deployer, trainers):
    c = staked
    rich = EpochDriver(c, deployer, trainers, replace(EPOCH_PARAMS, min_trainer_stake_wei=TRAINER_STAKE + 1))
    with brownie.reverts("epochs: stake below the task's minimum"):
        c.epochs.claim(rich.task_id, 0, 0, {"from": trainers[0]})
    # the pool covers the aggregation and one slot, not a second slot
    poor = EpochDriver(c, deployer, trainers, pool=2 * EPOCH_PARAMS.round_cost)
    poor.slot(0).claim()
    with brownie.reverts("epochs: pool exhausted"):
        c.epochs.claim(poor.task_id, 0, 1, {"from": trainers[1]})
    poorer = EpochDriver(c, deployer, trainers, pool=2 * EPOCH_PARAMS.round_cost - 1)
    with brownie.reverts("epochs: pool exhausted"):
        c.epochs.claim(poorer.task_id, 0, 0, {"from": trainers[0]})
    quorum = EpochDriver(c, deployer, trainers, replace(EPOCH_PARAMS, committee_size=16, quorum=8))
    with brownie.reverts("epochs: too few eligible verifiers"):
        c.epochs.claim(quorum.task_id, 0, 0, {"from": trainers[0]})


def test_commit_reverts(ep, trainers):
    c = ep.c
    s = ep.slot(0)
    s.claim()
    t = s.trace
    with brownie.reverts("epochs: only the slot's claimer"):
        c.epochs.commit(s.slot_id, t.base, t.data_root, t.root, t.proof(0), {"from": trainers[1]})
    with brownie.reverts("epochs: base hash is not the epoch's base"):
        c.epochs.commit(s.slot_id, rand32(), t.data_root, t.root, t.proof(0), {"from": trainers[0]})
    with brownie.reverts("epochs: bad leaf-0 proof"):
        c.epochs.commit(s.slot_id, t.base, t.data_root, rand32(), t.proof(0), {"from": trainers[0]})
    with brownie.reverts("epochs: empty data root"):
        c.epochs.commit(s.slot_id, t.base, bytes(32), t.root, t.proof(0), {"from": trainers[0]})
    assert s.commit().events["RoundCommitted"]["round_id"] == s.slot_id
    with brownie.reverts("epochs: slot already committed"):
        s.commit()
    with brownie.reverts("epochs: only TrainingRounds"):
        c.epochs.slot_finalized(s.slot_id, True, {"from": trainers[0]})
    with brownie.reverts("rounds: only the epochs contract"):
        c.rounds.open_slot(ep.task_id, trainers[0], 0, 10**6, {"from": trainers[0]})
    with brownie.reverts("rounds: epochs already set"):
        c.rounds.set_epochs(trainers[0], {"from": trainers[0]})
    with brownie.reverts("rounds: only the epochs contract"):
        c.rounds.commit_slot(s.slot_id, t.base, t.data_root, t.root, 1, {"from": trainers[0]})


def test_aggregation_reverts(ep, trainers, outsider):
    c = ep.c
    with brownie.reverts("epochs: not an open epoch"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": outsider})
    ep.run_slots([0])
    with brownie.reverts("epochs: slots still running"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": outsider})
    with brownie.reverts("epochs: not taking aggregate commitments"):
        c.epochs.commit_aggregate(ep.task_id, 0, rand32(), {"from": outsider})
    with brownie.reverts("epochs: not awaiting the aggregate"):
        c.epochs.post_aggregate(ep.task_id, 0, rand32(), "bafy", {"from": trainers[0]})
    ep.open_aggregation()
    m = ep.committee[0]
    with brownie.reverts("epochs: not in the aggregation committee"):
        c.epochs.commit_aggregate(ep.task_id, 0, rand32(), {"from": outsider})
    with brownie.reverts("epochs: empty commitment"):
        c.epochs.commit_aggregate(ep.task_id, 0, bytes(32), {"from": m})
    h = rand32()
    for member in ep.committee:
        ep.commit_aggregate(member, h)
    with brownie.reverts("epochs: already committed"):
        c.epochs.commit_aggregate(ep.task_id, 0, rand32(), {"from": m})
    with brownie.reverts("epochs: not taking aggregate reveals"):
        ep.reveal_aggregate(m)
    with brownie.reverts("epochs: empty state hash"):
        c.epochs.post_aggregate(ep.task_id, 0, bytes(32), "bafy", {"from": trainers[0]})
    with brownie.reverts("epochs: empty cid"):
        c.epochs.post_aggregate(ep.task_id, 0, h, "", {"from": trainers[0]})
    c.epochs.post_aggregate(ep.task_id, 0, h, "bafy", {"from": trainers[0]})
    with brownie.reverts("epochs: no commitment"):
        c.epochs.reveal_aggregate(ep.task_id, 0, h, rand32(), {"from": outsider})
    with brownie.reverts("epochs: reveal does not match commitment"):
        c.epochs.reveal_aggregate(ep.task_id, 0, rand32(), rand32(), {"from": m})
    ep.reveal_aggregate(m)
    with brownie.reverts("epochs: already revealed"):
        ep.reveal_aggregate(m)
    with brownie.reverts("epochs: aggregate reveals still open"):
        c.epochs.finalize_epoch(ep.task_id, 0, {"from": outsider})
    ep.mine_past(ep.epoch_record().deadline)
    with brownie.reverts("epochs: reveal window closed"):
        ep.reveal_aggregate(ep.committee[1])
    with brownie.reverts("epochs: not an open epoch"):
        c.epochs.finalize_epoch(ep.task_id, 1, {"from": outsider})


def test_seed_expiry_and_late_windows(ep, trainers, outsider):
    c = ep.c
    ep.run_slots([0])
    e = ep.epoch_record()
    with brownie.reverts("epochs: aggregation not opened yet"):
        c.epochs.finalize_epoch(ep.task_id, 0, {"from": outsider})
    ep.mine_past(e.aggregate_deadline + e.seal_delay_blocks + P.BLOCKHASH_HORIZON)
    with brownie.reverts("epochs: aggregation seed expired (finalize_epoch closes the epoch)"):
        c.epochs.open_aggregation(ep.task_id, 0, {"from": outsider})
    assert c.epochs.finalize_epoch(ep.task_id, 0, {"from": outsider}).events["EpochClosed"]["outcome"] == Outcome.EXPIRED


def test_commit_window_of_the_aggregation_closes(ep, trainers, outsider):
    c = ep.c
    ep.run_slots([0])
    ep.open_aggregation()
    ep.mine_past(ep.epoch_record().deadline)
    with brownie.reverts("epochs: commit window closed"):
        ep.commit_aggregate(ep.committee[0], rand32())
    with brownie.reverts("epochs: not an open epoch"):
        c.epochs.finalize_epoch(ep.task_id, 5, {"from": outsider})
