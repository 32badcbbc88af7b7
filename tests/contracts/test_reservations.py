"""Stake reservations (issue #13, attack 7): each open round reserves the trainer's task minimum
(at least StakeManager's trainer minimum) and each committee seat the verifier minimum; a reserved
wei cannot back another round's minimum nor be unstaked; every slash of a round is a fraction of
its own reservation (never of whatever else is staked); finalize gives back what it does not take.
The StakeManager API (reserve / release / slash_reserved / settle_reserved) is what epochs (#14)
and disputes (#15) reuse."""
from dataclasses import replace

import brownie
from brownie import StakeManager, chain

from node import protocol as P
from conftest import MIN_TRAINER, MIN_VERIFIER, PARAMS, TRAINER_STAKE, VERIFIER_STAKE

ETH = 10**18


def test_one_stake_cannot_back_two_open_rounds(staked, driver, trainer):
    """The trainer's 4 ETH backs one task of minimum 3 ETH; the second task's commit is refused, and
    the reserved part cannot be unstaked; finalize releases it."""
    a, b = driver(replace(PARAMS, min_trainer_stake_wei=3 * ETH)), driver(replace(PARAMS, min_trainer_stake_wei=3 * ETH))
    tx = a.commit()
    assert tx.events["Reserved"]["amount"] == 3 * ETH and staked.sm.reserved(trainer) == 3 * ETH
    assert staked.sm.free_stake(trainer) == TRAINER_STAKE - 3 * ETH
    assert staked.rounds.trainer_reservation(a.round_id) == 3 * ETH
    with brownie.reverts("rounds: free stake below the task's minimum"):
        b.commit()
    with brownie.reverts("stake: amount exceeds the free stake (reserved by open rounds)"):
        staked.sm.request_unstake(TRAINER_STAKE - 3 * ETH + 1, {"from": trainer})
    staked.sm.request_unstake(TRAINER_STAKE - 3 * ETH, {"from": trainer})  # the free part may go
    a.finish()
    assert a.outcome == P.Outcome.ACCEPTED and staked.sm.reserved(trainer) == 0


def test_a_task_minimum_of_zero_reserves_the_stake_managers_minimum(staked, task, trainer):
    task.commit()  # PARAMS.min_trainer_stake_wei == 0
    assert staked.rounds.trainer_reservation(task.round_id) == MIN_TRAINER == staked.sm.reserved(trainer)


def test_each_seat_reserves_the_verifier_minimum_until_finalize(staked, task):
    task.commit()
    tx = task.seal()
    assert staked.rounds.seat_reservation(task.round_id) == MIN_VERIFIER
    assert [e["who"] for e in tx.events["Reserved"]] == [m.address for m in task.committee]
    for m in task.committee:
        assert staked.sm.reserved(m) == MIN_VERIFIER
        with brownie.reverts("stake: amount exceeds the free stake (reserved by open rounds)"):
            staked.sm.request_unstake(VERIFIER_STAKE - MIN_VERIFIER + 1, {"from": m})
    task.reveal_starts()
    for m in task.committee:
        task.commit_verdict(m)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for m in task.committee:
        task.reveal_verdict(m)
    task.finalize()
    assert all(staked.sm.reserved(m) == 0 for m in task.committee)


def test_slashes_are_fractions_of_the_reservation(staked, task, trainer):
    """Fraud costs trainer_slash_bps of the 1 ETH reservation, not of the 4 ETH staked; a no-show
    member no_show_slash_bps of its 1 ETH seat, not of its 2 ETH."""
    before = staked.sm.stake_of(trainer)
    task.commit()
    task.seal()
    liars, absent = task.committee[:2], task.committee[2:3]
    task.reveal_starts()
    # honest verifiers contradict a forged trace: stand in for it with 'liars' that are the majority
    for m in task.committee:
        if m not in absent:
            task.commit_verdict(m, ends=[bytes(32)] * len(task.samples) if m in liars else None)
    chain.mine(PARAMS.commit_verdicts_window + 1)
    task.reveal_ends()
    task.commit_finals([m for m in task.committee if m not in absent])
    stakes = {m: staked.sm.stake_of(m) for m in task.committee}
    for m in task.committee:
        if m not in absent:
            task.reveal_verdict(m)
    task.finalize()
    assert task.outcome == P.Outcome.FRAUD
    assert before - staked.sm.stake_of(trainer) == P.compute_slash(MIN_TRAINER, PARAMS.trainer_slash_bps)
    for m in absent:
        assert stakes[m] - staked.sm.stake_of(m) == P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)
    assert staked.sm.reserved(trainer) == 0 and all(staked.sm.reserved(m) == 0 for m in task.committee)


def test_reservation_api_checks(deployer, trainer, verifiers, outsider):
    """reserve / release / slash_reserved / settle_reserved: authorized callers only, never more than the
    free stake or the reservation; draw_committee does not look at reservations (they change after a commit)."""
    sm = StakeManager.deploy(MIN_TRAINER, MIN_VERIFIER, 10, {"from": deployer})
    sm.authorize(deployer, {"from": deployer})
    sm.finish_wiring({"from": deployer})
    sm.stake(P.TRAINER, {"from": trainer, "value": 4 * ETH})
    for call in (lambda: sm.reserve(trainer, 1, {"from": outsider}), lambda: sm.release(trainer, 1, {"from": outsider}),
                 lambda: sm.slash_reserved(trainer, 1, outsider, {"from": outsider}),
                 lambda: sm.settle_reserved(trainer, 1, 0, outsider, {"from": outsider})):
        with brownie.reverts("stake: only an authorized protocol contract"):
            call()
    sm.reserve(trainer, 3 * ETH, {"from": deployer})
    with brownie.reverts("stake: free stake below the reservation"):  # the 4 ETH backs 3 + 1, not 3 + 3
        sm.reserve(trainer, 3 * ETH, {"from": deployer})
    sm.reserve(trainer, ETH, {"from": deployer})
    with brownie.reverts("stake: release exceeds the reservation"):
        sm.release(trainer, 4 * ETH + 1, {"from": deployer})
    with brownie.reverts("stake: slash exceeds the reservation"):
        sm.slash_reserved(trainer, 4 * ETH + 1, outsider, {"from": deployer})
    with brownie.reverts("stake: slash exceeds the reservation"):
        sm.settle_reserved(trainer, ETH, ETH + 1, outsider, {"from": deployer})
    # the plain slash takes only the free stake: a reservation belongs to its round
    assert sm.slash(trainer, ETH, outsider, {"from": deployer}).return_value == 0
    tx = sm.settle_reserved(trainer, 3 * ETH, ETH // 2, outsider, {"from": deployer})  # one round: half an ETH of its 3
    assert tx.events["Slashed"]["amount"] == ETH // 2 and tx.events["Released"]["amount"] == 3 * ETH - ETH // 2
    assert sm.reserved(trainer) == ETH and sm.stake_of(trainer) == 4 * ETH - ETH // 2 and sm.claimable(outsider) == ETH // 2
    sm.slash_reserved(trainer, ETH, "0x" + "00" * 20, {"from": deployer})
    assert sm.reserved(trainer) == 0 and sm.treasury() == ETH

    v = verifiers[0]
    sm.stake(P.VERIFIER, {"from": v, "value": 2 * MIN_VERIFIER})
    chain.mine(1)
    at = chain.height
    assert list(sm.draw_committee(b"\x01" * 32, at, 1, 1)) == [v.address]
    sm.reserve(v, 2 * MIN_VERIFIER, {"from": deployer})  # no seat left free: still drawn
    assert list(sm.draw_committee(b"\x01" * 32, at, 1, 1)) == [v.address]


def test_a_member_short_of_a_free_seat_holds_what_it_has(staked, driver, trainer, verifiers):
    """Three rounds at once draw all 7 verifiers (2 ETH = two 1 ETH seats each): the third round's
    members have nothing free, reserve nothing (seat_shortfall = a seat) and risk nothing there; the
    committee is the same as if nobody were busy; finalize releases exactly what each round reserved."""
    p = replace(PARAMS, committee_size=7, quorum=4)
    tasks = [driver(p) for _ in range(3)]
    for t in tasks:
        t.commit()
    for t in tasks:
        t.seal()
        assert sorted(a.address for a in t.committee) == sorted(v.address for v in verifiers)
    third = tasks[2]
    for m in third.committee:
        assert staked.rounds.seat_shortfall(third.round_id, m) == MIN_VERIFIER
        assert staked.sm.reserved(m) == 2 * MIN_VERIFIER == staked.sm.stake_of(m)
    # the third round's members all stay silent: no-shows, but they held nothing there
    chain.mine(PARAMS.reveal_window + 1)
    third.finalize()
    assert third.outcome == P.Outcome.ABANDONED
    assert all(staked.sm.stake_of(m) == VERIFIER_STAKE and staked.sm.reserved(m) == 2 * MIN_VERIFIER for m in third.committee)
    for t in tasks[:2]:
        t.finalize()  # abandoned too (the trainer never revealed): seats released in full
    assert all(staked.sm.reserved(m) == 0 for m in verifiers) and staked.sm.reserved(trainer) == 0
