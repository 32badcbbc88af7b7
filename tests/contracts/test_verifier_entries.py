"""The verifier registry (issue #13, attacks 3 and 6): StakeManager keeps an append-only list of
verifier entries (opened when a verifier stake reaches the minimum, drawable from the next block,
closed for good when it falls below); TrainingRounds.seal draws the committee by rejection sampling
over the entries eligible at the commit block (StakeManager.draw_committee), the same as
node.protocol.compute_committee_by_rejection."""

import brownie
from brownie import accounts, chain

from node import protocol as P
from conftest import MIN_VERIFIER, PARAMS, VERIFIER_STAKE, stake_fresh


def entries(sm):
    return [tuple(sm.entries(i)) for i in range(sm.entry_count())]


def test_entries_are_append_only_and_never_reordered(c, verifiers):
    for v in verifiers[:3]:
        tx = c.sm.stake(P.VERIFIER, {"from": v, "value": MIN_VERIFIER})
        assert tx.events["EntryOpened"]["active_from"] == tx.block_number + 1
    first = entries(c.sm)
    tx = c.sm.request_unstake(1, {"from": verifiers[0]})  # below the minimum: its entry closes
    assert (tx.events["EntryClosed"]["index"], tx.events["EntryClosed"]["active_until"]) == (0, tx.block_number)
    c.sm.stake(P.VERIFIER, {"from": verifiers[0], "value": 1})  # back: a NEW entry at the end
    now = entries(c.sm)
    assert [e[0] for e in now] == [v.address for v in verifiers[:3]] + [verifiers[0].address]
    assert now[1:3] == first[1:3] and now[0][:2] == first[0][:2] and now[0][2] == tx.block_number
    assert c.sm.entry_of(verifiers[0]) == 4 and c.sm.open_entries() == 3
    c.sm.stake(P.VERIFIER, {"from": verifiers[1], "value": MIN_VERIFIER - 1})  # less than a minimum more: nothing
    assert c.sm.entry_count() == 4


def test_stake_weight_one_entry_per_minimum(c, verifiers):
    """One entry per verifier minimum staked, at most MAX_ENTRIES_PER_VERIFIER: a stake split over
    addresses draws no more than on one; closing takes the last opened first; counts stay exact."""
    v, w = verifiers[:2]
    tx = c.sm.stake(P.VERIFIER, {"from": v, "value": 3 * MIN_VERIFIER})
    assert [e["index"] for e in tx.events["EntryOpened"]] == [0, 1, 2]
    assert list(c.sm.open_entries_of(v, i) for i in range(3)) == [0, 1, 2] and c.sm.entry_of(v) == 1
    c.sm.stake(P.VERIFIER, {"from": w, "value": 20 * MIN_VERIFIER})  # capped
    assert c.sm.open_entries() == 3 + 8 and c.sm.eligible_entry_count() == 2  # entries vs distinct verifiers
    tx = c.sm.request_unstake(MIN_VERIFIER + MIN_VERIFIER // 2, {"from": v})  # 1.5 minimums left: one entry
    assert [e["index"] for e in tx.events["EntryClosed"]] == [2, 1]
    assert c.sm.entry_of(v) == 1 and c.sm.open_entries() == 1 + 8
    c.sm.request_unstake(MIN_VERIFIER, {"from": v})  # below the minimum: no entry, not counted
    assert c.sm.entry_of(v) == 0 and c.sm.eligible_entry_count() == 1
    assert [e[2] == 0 for e in entries(c.sm)][:3] == [False, False, False]  # closed for good, never reordered


def test_entries_opened_in_this_block_are_not_eligible_yet(c, verifiers):
    tx = c.sm.stake(P.VERIFIER, {"from": verifiers[0], "value": MIN_VERIFIER})
    assert c.sm.eligible_entry_count() == 1  # open (the commit's quick check) ...
    assert list(c.sm.draw_committee(b"\x01" * 32, tx.block_number, 3, 1)) == []  # ... but not drawable in its own block
    chain.mine(1)
    assert list(c.sm.draw_committee(b"\x01" * 32, tx.block_number + 1, 3, 1)) == [verifiers[0].address]


def test_no_cap_on_verifiers(c, deployer):
    """Attack 6: the 256-address view list being full never refuses a staker, whose entry is drawable."""
    sm = c.sm
    n_before = sm.entry_count()
    # fill the view list cheaply: 257 fresh addresses (funded and impersonated on anvil) staking the
    # minimum, sent with plain web3 (brownie's own tracking of 257 senders flakes on a loaded machine)
    fresh = [stake_fresh(sm, P.VERIFIER, MIN_VERIFIER) for _ in range(257)]
    assert sm.active_verifier_count() == 256
    assert sm.entry_count() == n_before + 257 and sm.entry_of(fresh[-1]) == n_before + 257


def test_sealed_committee_ignores_stakes_after_the_commit(task, staked, trainer, deployer):
    """Attack 3: verifiers staked after the commit (the seed may be known) are never drawn, and the draw
    equals the reference over the entries eligible at the commit block."""
    task.commit()
    commit_block = task.round["commit_block"]
    late = [accounts.add() for _ in range(10)]
    for a in late:
        deployer.transfer(a, VERIFIER_STAKE)
        staked.sm.stake(P.VERIFIER, {"from": a, "value": MIN_VERIFIER})
    task.seal()
    members = [m.address for m in task.committee]
    assert not set(members) & {a.address for a in late}
    seed = bytes(task.round["seed"])
    assert members == P.compute_committee_by_rejection(seed, entries(staked.sm), commit_block, PARAMS.committee_size,
                                                       lambda v: staked.sm.is_eligible(v, P.VERIFIER))


def test_a_member_that_left_after_the_commit_is_replaced(task, staked, verifiers):
    """Eligible at the commit block but below the minimum at the seal: rejected, the next attempt takes the seat."""
    task.commit()
    gone = verifiers[0]
    staked.sm.request_unstake(VERIFIER_STAKE, {"from": gone})
    task.seal()
    assert gone not in task.committee and len(task.committee) == PARAMS.committee_size


def test_commit_needs_eligible_entries(driver, staked, verifiers, deployer):
    task = driver()
    for v in verifiers:
        staked.sm.request_unstake(VERIFIER_STAKE, {"from": v})
    with brownie.reverts("rounds: too few active verifiers"):
        task.commit()


def test_opted_out_verifiers_are_never_drawn_for_that_task(driver, staked, verifiers, trainer, outsider):
    """Attack 1: a verifier refuses a task (e.g. a spec it cannot replay) by opting out of it."""
    task = driver()
    out = verifiers[:4]
    for v in out:
        tx = staked.sm.optout(task.task_id, {"from": v})
        assert tx.events["TaskOptIn"]["opted_in"] is False
    with brownie.reverts("stake: already opted out"):
        staked.sm.optout(task.task_id, {"from": out[0]})
    for who in (trainer, outsider):
        with brownie.reverts("stake: only a verifier opts in or out"):
            staked.sm.optout(task.task_id, {"from": who})
    with brownie.reverts("stake: not opted out"):
        staked.sm.optin(task.task_id, {"from": verifiers[5]})
    task.commit()
    task.seal()
    assert set(task.committee) == set(verifiers[4:7])  # only those who did not opt out
    other = driver()  # another task: everyone is drawable there
    assert staked.sm.opted_out(other.task_id, out[0]) is False


def test_opting_back_in_after_a_commit_does_not_seat_you_in_that_round(driver, staked, verifiers):
    task = driver()
    for v in verifiers[:4]:
        staked.sm.optout(task.task_id, {"from": v})
    task.commit()
    for v in verifiers[:4]:  # the seed may be known now: opting in must not buy a seat in this round
        staked.sm.optin(task.task_id, {"from": v})
    task.seal()
    assert not set(task.committee) & set(verifiers[:4])
    entries_now = entries(staked.sm)
    assert [m.address for m in task.committee] == P.compute_committee_by_rejection(
        bytes(task.round["seed"]), entries_now, task.round["commit_block"], PARAMS.committee_size,
        lambda v: staked.sm.is_eligible(v, P.VERIFIER) and staked.sm.opted_in_block(task.task_id, v) < task.round["commit_block"])
