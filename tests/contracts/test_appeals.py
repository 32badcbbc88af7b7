"""The appeal to the whole verifier set (issue #15, contracts/Appeals.vy): a jury vote is final only after its appeal
window; its loser may appeal once, with a bond; every eligible verifier but the parties votes again, and the final
verdict settles both juries. One deployment per module (`dc`, 7 verifiers: the appeal jury is the whole set of 6
non-parties); `crowd` (a second deployment, 70 verifiers) for a captured first jury and a full appeal jury of
APPEAL_JURY_MAX. brownie's fn_isolation reverts each test."""
from dataclasses import replace

import brownie
import pytest
from brownie import accounts, chain
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import RoundDriver, stake_fresh
from disputes_kit import (PARAMS, TRAINER_STAKE, VERIFIER_STAKE, AppealDriver, DisputeDriver, contradicted_round,  # noqa: F401
                          dc, deploy_with_disputes, finalize_after_dispute, money, named_dispute, rand32, rd, total_money)
from node import protocol as P
from node.rounds import Outcome


def voted_dispute(dc, rd, vote_of) -> DisputeDriver:
    """A member's dispute, its jury drawn and voted: vote_of(i, juror) -> True (the trainer's answer), False (the
    challenger's), bytes or None (absent), for the i-th juror."""
    dd = named_dispute(dc, rd)
    dd.vote({j: vote_of(i, j) for i, j in enumerate(dd.jury)})
    return dd


def first_reservations(dc, dd) -> dict:
    return {j.address: dc.disputes.juror_reservation(dd.dispute_id, j) for j in dd.jury}


def entries(c) -> list:
    """StakeManager's verifier registry as protocol.compute_eligible_verifiers reads it."""
    return [tuple(c.sm.entries(i)) for i in range(c.sm.entry_count())]


def expected_jury(c, ad) -> list:
    """The appeal jury protocol.compute_appeal_jury computes from the chain: the seed of the appeal's jury block."""
    s = ad.state
    seed = P.compute_jury_seed(bytes(chain[s["jury_block"]].hash), ad.appeal_id)
    return P.compute_appeal_jury(seed, entries(c), s["eligible_block"], s["challenger"],
                                 is_drawable=lambda v: c.sm.is_eligible(v, P.VERIFIER))


# ---------------------------------------------------------------- a jury vote is final only after its appeal window

def test_an_unappealed_vote_resolves_only_after_the_appeal_window(dc, rd):
    """No early resolve once every juror revealed: the loser has until compute_appeal_deadline to appeal."""
    dd = voted_dispute(dc, rd, lambda i, j: True)
    assert dd.state["n_revealed"] == len(dd.jury)  # all in: resolve used to pass here
    with brownie.reverts("disputes: jury vote not final (appeal window)"):
        dd.resolve(wait=False)
    deadline = P.compute_appeal_deadline(dd.state["reveal_deadline"], PARAMS.reveal_verdicts_window)
    assert deadline == dd.state["reveal_deadline"] + PARAMS.reveal_verdicts_window
    chain.mine(max(0, deadline - 1 - chain.height))
    with brownie.reverts("disputes: jury vote not final (appeal window)"):
        dd.resolve(wait=False)  # lands in the appeal deadline itself
    assert chain.height == deadline
    tx = dd.resolve(wait=False)
    assert tx.block_number == deadline + 1 and tx.events["DisputeResolved"]["trainer_won"] is True


def test_the_appeal_window(dc, rd):
    """An appeal lands after the jury's reveal deadline and by the appeal deadline, not before, not after."""
    dd = voted_dispute(dc, rd, lambda i, j: True)
    ad = AppealDriver(dd)
    with brownie.reverts("appeals: jury still voting"):
        ad.appeal(dd.challenger, mine=False)
    deadline = P.compute_appeal_deadline(dd.state["reveal_deadline"], PARAMS.reveal_verdicts_window)
    chain.mine(max(0, deadline - 1 - chain.height))
    tx = ad.appeal(dd.challenger, mine=False)
    assert tx.block_number == deadline
    chain.undo()
    chain.mine(1)
    with brownie.reverts("appeals: appeal window closed"):
        ad.appeal(dd.challenger, mine=False)
    assert dd.resolve(wait=False).events["DisputeResolved"]["trainer_won"] is True  # final: resolvable
    with brownie.reverts("appeals: not a jury vote"):
        ad.appeal(dd.challenger, mine=False)


# ---------------------------------------------------------------- who may appeal, once, with what

def test_only_the_loser_appeals_once_with_the_bond(dc, rd, trainer, outsider):
    dd = voted_dispute(dc, rd, lambda i, j: True)  # the challenger lost the vote
    ad = AppealDriver(dd)
    ad.mine_to_window()
    with brownie.reverts("appeals: only the loser of the vote"):
        ad.appeal(trainer, mine=False)
    with brownie.reverts("appeals: only the loser of the vote"):
        ad.appeal(outsider, mine=False)
    bond = ad.bond
    assert bond == P.compute_appeal_bond(PARAMS.verifier_reward_wei, 0) == PARAMS.verifier_reward_wei * (P.APPEAL_JURY_MAX + 1)
    with brownie.reverts("appeals: bond below rules.compute_appeal_bond"):
        ad.appeal(dd.challenger, value=bond - 1, mine=False)
    tx = ad.appeal(dd.challenger, mine=False)
    ev = tx.events["DisputeAppealed"]
    assert (ev["dispute_id"], ev["appeal_id"], ev["appellant"], ev["bond"]) == (dd.dispute_id, ad.appeal_id, dd.challenger, bond)
    assert ev["jury_block"] == P.compute_jury_block(tx.block_number) == ad.state["jury_block"]
    assert dc.appeals.appeal_of(dd.dispute_id) == ad.appeal_id == dc.appeals.appeal_count()
    assert dc.appeals.balance() == bond
    s, d = ad.state, dd.state
    assert d["phase"] == P.DISPUTE_APPEALED and s["phase"] == P.DISPUTE_STEP_NAMED
    assert (s["dispute_id"], s["round_id"], s["task_id"], s["trainer"], s["challenger"], s["appellant"]) == \
        (dd.dispute_id, rd.round_id, rd.task_id, trainer, dd.challenger, dd.challenger)
    assert (s["claimed_hash"], s["challenger_answer"], s["eligible_block"]) == \
        (d["claimed_hash"], d["challenger_answer"], d["eligible_block"])
    with brownie.reverts("appeals: already appealed"):
        ad.appeal(dd.challenger, mine=False)
    with brownie.reverts("disputes: appealed (Appeals.resolve settles it)"):
        dd.resolve(wait=False)
    dd.mine_past_appeal_window()
    with brownie.reverts("disputes: appealed (Appeals.resolve settles it)"):
        dd.resolve(wait=False)  # not after the window either: only the appeal settles it


def test_the_trainer_appeals_a_lost_vote(dc, rd, trainer):
    dd = voted_dispute(dc, rd, lambda i, j: False)  # the trainer lost the vote
    ad = AppealDriver(dd)
    ad.mine_to_window()
    with brownie.reverts("appeals: only the loser of the vote"):
        ad.appeal(dd.challenger, mine=False)
    ad.appeal(trainer, mine=False)
    assert ad.state["appellant"] == trainer


def test_a_vote_whose_challenger_kept_its_answer_is_not_appealable(dc, rd):
    """The challenger that never revealed its answer lost by its own miss: nothing for the whole set to judge."""
    dd = named_dispute(dc, rd)
    dd.vote({j: False for j in dd.jury}, challenger_reveals=False)
    with brownie.reverts("appeals: challenger's answer never revealed"):
        AppealDriver(dd).appeal(dd.challenger)


def test_only_appeals_moves_an_appealed_dispute(dc, rd, deployer, outsider):
    from brownie import Appeals

    dd = voted_dispute(dc, rd, lambda i, j: True)
    assert dc.disputes.appeals() == dc.appeals and dc.appeals.disputes() == dc.disputes
    with brownie.reverts("disputes: only Appeals"):
        dc.disputes.mark_appealed(dd.dispute_id, {"from": dd.challenger})
    with brownie.reverts("disputes: only Appeals"):
        dc.disputes.settle_appealed(dd.dispute_id, False, dd.challenger, {"from": deployer})
    for sender in (deployer, outsider):
        with brownie.reverts("appeals: disputes already set"):
            dc.appeals.set_disputes(outsider, {"from": sender})
    other = Appeals.deploy(dc.sm, dc.registry, {"from": deployer})
    with brownie.reverts("appeals: Disputes names another appeals contract"):
        other.set_disputes(dc.disputes, {"from": deployer})


# ---------------------------------------------------------------- the appeal jury

def test_the_appeal_jury_is_the_whole_set(dc, rd, verifiers, outsider):
    """draw_jury once the jury block is mined: every eligible verifier but the challenger (here all 6), as
    protocol.compute_appeal_jury walks them; seats reserved; the windows start at the draw."""
    dd = voted_dispute(dc, rd, lambda i, j: True)
    ad = AppealDriver(dd)
    ad.appeal(dd.challenger)
    with brownie.reverts("appeals: jury block not mined yet"):
        ad.draw_jury(mine=False)
    with brownie.reverts("appeals: jury not drawn yet (draw_jury)"):
        ad.resolve(wait=False)
    free = {v.address: dc.sm.free_stake(v) for v in verifiers}
    tx = ad.draw_jury(sender=outsider, mine=False)
    assert tx.return_value is True
    ev = tx.events["AppealJuryDrawn"]
    j_block = ad.state["jury_block"]
    assert ev["jury_block"] == j_block and tx.block_number > j_block
    assert bytes(ev["seed"]) == P.compute_jury_seed(bytes(chain[j_block].hash), ad.appeal_id)
    assert list(ev["jury"]) == [j.address for j in ad.jury] == expected_jury(dc, ad)
    assert sorted(j.address for j in ad.jury) == sorted(v.address for v in verifiers if v != dd.challenger)
    seat = dc.appeals.juror_seat(ad.appeal_id)
    assert seat == dc.sm.min_stake(P.VERIFIER)
    for j in ad.jury:  # the first jury's seats are still reserved: each reserves what it has free
        assert dc.appeals.juror_reservation(ad.appeal_id, j) == min(seat, free[j.address])
    assert ev["commit_deadline"] == ad.state["deadline"] == tx.block_number + PARAMS.commit_verdicts_window
    assert ev["reveal_deadline"] == ad.state["reveal_deadline"] == ev["commit_deadline"] + PARAMS.reveal_verdicts_window
    assert ad.state["phase"] == P.DISPUTE_JURY
    with brownie.reverts("appeals: not awaiting a jury draw"):
        ad.draw_jury()


def test_appeal_draw_retargets_an_expired_jury_block(dc, rd, outsider):
    dd = voted_dispute(dc, rd, lambda i, j: True)
    ad = AppealDriver(dd)
    ad.appeal(dd.challenger)
    j_block = ad.state["jury_block"]
    chain.mine(j_block + P.BLOCKHASH_HORIZON + 1 - chain.height)
    tx = ad.draw_jury(sender=outsider, mine=False)  # lands in J + 257: expired
    assert tx.return_value is False and "AppealJuryDrawn" not in tx.events
    ev = tx.events["AppealJuryBlockRetargeted"]
    assert ev["expired_block"] == j_block and ev["jury_block"] == tx.block_number + 1 == ad.state["jury_block"]
    drawn = ad.draw_jury(sender=outsider)
    assert bytes(drawn.events["AppealJuryDrawn"]["seed"]) == P.compute_jury_seed(bytes(chain[ev["jury_block"]].hash), ad.appeal_id)
    assert ad.state["phase"] == P.DISPUTE_JURY


def test_appeal_vote_checks(dc, rd):
    dd = voted_dispute(dc, rd, lambda i, j: True)
    ad = AppealDriver(dd)
    ad.appeal(dd.challenger)
    with brownie.reverts("appeals: not voting"):
        dc.appeals.commit_vote(ad.appeal_id, rand32(), {"from": dd.jury[0]})
    ad.draw_jury()
    j = ad.jury[0]
    with brownie.reverts("appeals: not a juror"):
        dc.appeals.commit_vote(ad.appeal_id, rand32(), {"from": dd.challenger})
    with brownie.reverts("appeals: empty commitment"):
        dc.appeals.commit_vote(ad.appeal_id, b"\x00" * 32, {"from": j})
    ad.commit_vote(j, True)
    with brownie.reverts("appeals: already committed"):
        dc.appeals.commit_vote(ad.appeal_id, rand32(), {"from": j})
    with brownie.reverts("appeals: jury still committing"):
        ad.reveal_vote(j)
    for other in ad.jury[1:-1]:
        ad.commit_vote(other, False)
    chain.mine(max(0, ad.state["deadline"] - chain.height))
    with brownie.reverts("appeals: commit window closed"):
        ad.commit_vote(ad.jury[-1], True)  # the last juror misses the commit window: a no-show
    with brownie.reverts("appeals: no commitment"):
        dc.appeals.reveal_vote(ad.appeal_id, rand32(), rand32(), {"from": ad.jury[-1]})
    with brownie.reverts("appeals: reveal does not match commitment"):
        dc.appeals.reveal_vote(ad.appeal_id, rand32(), ad.salts[j.address][1], {"from": j})
    tx = ad.reveal_vote(j)  # both answers are public: the side counts at once
    assert tx.events["AppealVoteRevealed"]["side"] == P.VOTE_TRAINER
    assert ad.reveal_vote(ad.jury[1]).events["AppealVoteRevealed"]["side"] == P.VOTE_CHALLENGER
    with brownie.reverts("appeals: already revealed"):
        ad.reveal_vote(j)
    with brownie.reverts("appeals: jury still voting"):
        ad.resolve(wait=False)
    chain.mine(max(0, ad.state["reveal_deadline"] - chain.height))
    with brownie.reverts("appeals: reveal window closed"):
        ad.reveal_vote(ad.jury[2])
    assert (ad.state["votes_trainer"], ad.state["votes_challenger"], ad.state["n_revealed"]) == (1, 1, 2)
    tx = ad.resolve()
    assert tx.events["AppealResolved"]["trainer_won"] is True  # 1:1, a tie keeps the trainer
    with brownie.reverts("appeals: not open"):
        ad.resolve()


# ---------------------------------------------------------------- the final verdict settles both juries

def test_the_whole_set_reverses_a_tie_kept_for_the_trainer(dc, rd, trainer):
    """The first jury splits 3:3 (the trainer keeps a tie); the challenger appeals and the whole set convicts 4:2.
    The trainer's fraud slash pays as a won dispute does; the first jury's trainer side is slashed to the winning
    appellant; the appeal's majority is paid from the appeal bond, whose rest goes back to the challenger."""
    dd = voted_dispute(dc, rd, lambda i, j: i >= 3)  # jurors 0-2 the challenger's answer, 3-5 the trainer's
    first = first_reservations(dc, dd)
    ad = AppealDriver(dd)
    ch0, stake0, treasury0 = money(dc, dd.challenger), dc.sm.stake_of(trainer), dc.sm.treasury()
    ad.appeal(dd.challenger)
    ad.draw_jury()
    appeal_seats = {j.address: dc.appeals.juror_reservation(ad.appeal_id, j) for j in ad.jury}
    votes = {j: i >= 4 for i, j in enumerate(ad.jury)}  # 4 for the challenger, 2 for the trainer
    ad.vote(votes)
    pot = P.compute_slash(dc.rounds.trainer_reservation(rd.round_id), PARAMS.trainer_slash_bps)
    tx = ad.resolve()
    ev = tx.events["AppealResolved"]
    assert (ev["trainer_won"], ev["appellant_won"], ev["dispute_id"]) == (False, True, dd.dispute_id)
    resolved = tx.events["DisputeResolved"]
    assert (resolved["dispute_id"], resolved["trainer_won"], resolved["reason"]) == (dd.dispute_id, False, "appeal")
    assert dd.state["phase"] == P.DISPUTE_RESOLVED and dd.state["trainer_won"] is False
    assert dd.state["votes_challenger"] == 3  # the first jury's count closed by settle_appealed
    assert dc.sm.stake_of(trainer) == stake0 - pot
    # the challenger: its dispute bond back, its fraud reward, the first jury's trainer side's slashes, the appeal bond's rest
    _, to_challenger, _ = P.compute_dispute_payouts(pot, 3, PARAMS.verifier_reward_wei, 0, PARAMS.fraud_reward_bps)
    first_slashes = sum(P.compute_slash(first[j.address], PARAMS.verifier_slash_bps) for j in dd.jury[3:])
    per_juror, rest, _ = P.compute_dispute_payouts(ad.posted_bond, 4, PARAMS.verifier_reward_wei, 0, P.BPS)
    assert per_juror == PARAMS.verifier_reward_wei
    assert money(dc, dd.challenger) - ch0 == dd.posted_bond + to_challenger + first_slashes + rest
    # the appeal jury's minority slashed to the treasury (with the trainer pot's treasury share)
    appeal_slashes = sum(P.compute_slash(appeal_seats[j.address], PARAMS.verifier_slash_bps) for j in ad.jury[4:])
    _, _, pot_to_treasury = P.compute_dispute_payouts(pot, 3, PARAMS.verifier_reward_wei, 0, PARAMS.fraud_reward_bps)
    assert dc.sm.treasury() - treasury0 == appeal_slashes + pot_to_treasury
    assert dc.appeals.balance() == 0 and dc.disputes.balance() == 0
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.FRAUD


def test_an_appeal_that_loses_pays_the_other_party(dc, rd, trainer):
    """The first jury kept the trainer 4:2, the appeal confirms it 5:1: the appellant's bond pays the appeal's
    majority and its rest goes to the trainer; the first jury's minority is slashed to the treasury as in any dispute."""
    dd = voted_dispute(dc, rd, lambda i, j: i >= 2)
    first = first_reservations(dc, dd)
    ad = AppealDriver(dd)
    ad.appeal(dd.challenger)
    ad.draw_jury()
    appeal_seats = {j.address: dc.appeals.juror_reservation(ad.appeal_id, j) for j in ad.jury}
    tr0, ch0, treasury0 = money(dc, trainer), money(dc, dd.challenger), dc.sm.treasury()
    jurors0 = {j.address: money(dc, j) for j in ad.jury}
    ad.vote({j: i >= 1 for i, j in enumerate(ad.jury)})
    tx = ad.resolve()
    assert tx.events["AppealResolved"]["trainer_won"] is True and tx.events["AppealResolved"]["appellant_won"] is False
    per_juror, rest, _ = P.compute_dispute_payouts(ad.posted_bond, 5, PARAMS.verifier_reward_wei, 0, P.BPS)
    # the trainer: the appeal bond's rest and, as the winner of the dispute, the challenger's bond less the 4 first jurors
    _, to_trainer, _ = P.compute_dispute_payouts(dd.posted_bond, 4, PARAMS.verifier_reward_wei, 0, P.BPS)
    assert money(dc, trainer) - tr0 == rest + to_trainer
    assert money(dc, dd.challenger) == ch0  # both bonds were paid in; nothing comes back
    first_slashes = sum(P.compute_slash(first[j.address], PARAMS.verifier_slash_bps) for j in dd.jury[:2])
    appeal_slashes = P.compute_slash(appeal_seats[ad.jury[0].address], PARAMS.verifier_slash_bps)
    assert dc.sm.treasury() - treasury0 == first_slashes + appeal_slashes
    first_pay = P.compute_dispute_payouts(dd.posted_bond, 4, PARAMS.verifier_reward_wei, 0, P.BPS)[0]
    for j in ad.jury:  # each juror sat on both juries: settled on each by the final verdict
        on_appeal = per_juror if j != ad.jury[0] else -appeal_slashes
        on_first = first_pay if j in dd.jury[2:] else -P.compute_slash(first[j.address], PARAMS.verifier_slash_bps)
        assert money(dc, j) - jurors0[j.address] == on_appeal + on_first
    assert dc.appeals.balance() == 0 and dc.disputes.balance() == 0
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.ACCEPTED


@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(first=st.lists(st.sampled_from([True, False, None]), min_size=6, max_size=6),
       second=st.lists(st.sampled_from([True, False, None, b"\x07" * 32, b"\x00" * 32]), min_size=6, max_size=6))
def test_an_appeal_conserves_stake(dc, deployer, trainer, verifiers, first, second):
    """Whatever the two juries vote, no wei is made or lost: stakes + claimables + treasury + pools + held bonds grow
    by the two bonds only, neither contract holds anything once settled, every reservation is released."""
    chain.snapshot()
    try:
        rd = RoundDriver(dc, deployer, trainer, PARAMS)
        everyone = [trainer] + list(verifiers)
        challenger, _ = contradicted_round(rd)
        total0 = total_money(dc, everyone)
        dd = DisputeDriver(dc, rd, challenger)
        dd.open()
        dd.post_steps()
        dd.name_step()
        dd.vote(dict(zip(dd.jury, first)))
        n_challenger = sum(1 for v in first if v is False)
        loser = challenger if P.is_trainer_winner(sum(1 for v in first if v is True), n_challenger) else trainer
        ad = AppealDriver(dd)
        ad.appeal(loser)
        ad.draw_jury()
        ad.vote(dict(zip(ad.jury, second)))
        ad.resolve()
        finalize_after_dispute(dc, rd)
        assert dc.appeals.balance() == 0 and dc.disputes.balance() == 0
        assert total_money(dc, everyone) == total0 + dd.posted_bond + ad.posted_bond
        for who in everyone:
            assert dc.sm.reserved(who) == 0
    finally:
        chain.revert()


# ---------------------------------------------------------------- a network bigger than a jury

N_CROWD = 70  # the 7 suite verifiers and 63 more: a first jury of JURY_MAX, an appeal jury of APPEAL_JURY_MAX
# one transaction per block here: a jury of 64 needs 64 blocks to commit
CROWD_PARAMS = replace(PARAMS, commit_verdicts_window=80, reveal_verdicts_window=80)


@pytest.fixture(scope="module")
def crowd(deployer, trainer, verifiers):
    """A second deployment with N_CROWD staked verifiers (module scope: part of each test's snapshot)."""
    c = deploy_with_disputes(deployer)
    c.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})
    extra = [accounts.add() for _ in range(N_CROWD - len(verifiers))]
    for a in extra:
        deployer.transfer(a, VERIFIER_STAKE + 10**18)
    c.verifiers = list(verifiers) + extra
    for v in c.verifiers:
        c.sm.stake(P.VERIFIER, {"from": v, "value": VERIFIER_STAKE})
    return c


def test_eligible_verifiers_sample_the_registry(crowd, rd_crowd):
    """StakeManager.eligible_verifiers == protocol.compute_eligible_verifiers for any seed (140 entries, 2 per
    verifier: the random sample, then the walk where it fell short), with an opt-out and an unstaked verifier left
    out and entries opened after the block never read; distinct verifiers."""
    c = crowd
    at = chain.height
    out, gone = c.verifiers[3], c.verifiers[5]
    c.sm.optout(rd_crowd.task_id, {"from": out})
    c.sm.request_unstake(VERIFIER_STAKE, {"from": gone})
    late = accounts.add()
    accounts[0].transfer(late, VERIFIER_STAKE + 10**18)
    c.sm.stake(P.VERIFIER, {"from": late, "value": VERIFIER_STAKE})
    chain.mine(1)
    reg = entries(c)
    drawable = {v.address: c.sm.is_eligible(v, P.VERIFIER) and not c.sm.opted_out(rd_crowd.task_id, v) for v in c.verifiers}
    seeds = [bytes(32), b"\xff" * 32] + [rand32() for _ in range(4)]
    for seed, limit in zip(seeds, (P.APPEAL_JURY_MAX + 1, P.APPEAL_JURY_MAX + 1, 10, 200, 68, 1)):
        got = list(c.sm.eligible_verifiers(at, rd_crowd.task_id, seed, limit))
        assert got == P.compute_eligible_verifiers(reg, at, seed, limit, lambda v: drawable.get(v, False))
        assert len(got) == len(set(got)) == min(limit, P.APPEAL_JURY_MAX + 1)
        assert out.address not in got and gone.address not in got and late.address not in got
    assert list(c.sm.eligible_verifiers(0, rd_crowd.task_id, bytes(32), 10)) == []  # no entry opened by block 0


@pytest.fixture
def rd_crowd(crowd, deployer, trainer):
    return RoundDriver(crowd, deployer, trainer, CROWD_PARAMS)


def test_a_captured_jury_is_reversed_by_the_whole_set(crowd, rd_crowd, trainer):
    """Colluders hold 8 of the 15 seats of the first jury and convict an honest trainer 8:7 (the capture the jury's
    price allows). The trainer appeals: 64 of the 69 other verifiers sit on the appeal jury and keep it, the colluders
    among them outvoted. The trainer keeps its stake and wins the dispute; the captured jurors lose their seats'
    slash on both juries (the first to the trainer); the honest first-jury minority is paid; the round is accepted.
    Also measures the appeal's gas with a full jury against APPEAL_GAS_ALLOWANCE."""
    c, rd = crowd, rd_crowd
    everyone = [trainer] + c.verifiers
    challenger, _ = contradicted_round(rd)
    total0 = total_money(c, everyone)
    dd = DisputeDriver(c, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    assert len(dd.jury) == P.JURY_MAX
    colluders = dd.jury[:8]
    first = first_reservations(c, dd)
    dd.vote({j: j not in colluders for j in dd.jury})  # 8:7 for the challenger
    ad = AppealDriver(dd)
    ad.mine_to_window()
    with brownie.reverts("appeals: only the loser of the vote"):
        ad.appeal(challenger, mine=False)
    stake0, tr0, treasury0 = c.sm.stake_of(trainer), money(c, trainer), c.sm.treasury()
    ad.appeal(trainer, mine=False)
    gas = {"draw_jury": ad.draw_jury().gas_used}
    assert len(ad.jury) == P.APPEAL_JURY_MAX and challenger not in ad.jury
    assert [j.address for j in ad.jury] == expected_jury(c, ad)
    seats = {j.address: c.appeals.juror_reservation(ad.appeal_id, j) for j in ad.jury}
    ad.vote({j: j not in colluders for j in ad.jury})
    tx = ad.resolve()
    gas["resolve"] = tx.gas_used
    print("appeal gas with", len(ad.jury), "jurors:", gas)
    assert gas["draw_jury"] + gas["resolve"] < P.APPEAL_GAS_ALLOWANCE
    assert tx.events["AppealResolved"]["trainer_won"] is True and tx.events["AppealResolved"]["appellant_won"] is True
    assert dd.state["trainer_won"] is True and dd.state["phase"] == P.DISPUTE_RESOLVED
    in_appeal = [j for j in colluders if j in ad.jury]
    n_majority = len(ad.jury) - len(in_appeal)
    per_juror, rest, _ = P.compute_dispute_payouts(ad.posted_bond, n_majority, PARAMS.verifier_reward_wei, 0, P.BPS)
    first_slashes = sum(P.compute_slash(first[j.address], PARAMS.verifier_slash_bps) for j in colluders)
    _, to_trainer, _ = P.compute_dispute_payouts(dd.posted_bond, 7, PARAMS.verifier_reward_wei, 0, P.BPS)
    assert c.sm.stake_of(trainer) == stake0
    assert money(c, trainer) - tr0 == rest + first_slashes + to_trainer
    assert c.sm.treasury() - treasury0 == sum(P.compute_slash(seats[j.address], PARAMS.verifier_slash_bps) for j in in_appeal)
    assert c.appeals.balance() == 0 and c.disputes.balance() == 0
    finalize_after_dispute(c, rd)
    assert rd.outcome == Outcome.ACCEPTED
    assert total_money(c, everyone) == total0 + dd.posted_bond + ad.posted_bond
    for who in everyone:
        assert c.sm.reserved(who) == 0


# ---------------------------------------------------------------- a registry bigger than the appeal jury

@pytest.fixture(scope="module")
def throng(deployer):
    """A StakeManager alone with 180 verifiers registered in three runs: 60 honest (every sixth with 3 minimums: 3
    entries in a row), a coalition of 60 one-entry verifiers registered together, 60 honest one-entry (200 entries)."""
    from brownie import StakeManager

    from disputes_kit import MIN_STAKE

    sm = StakeManager.deploy(MIN_STAKE, MIN_STAKE, 10, {"from": deployer})
    runs = {"honest": [], "coalition": []}
    for run, n in (("honest", 60), ("coalition", 60), ("honest", 60)):
        for i in range(n):
            minimums = 3 if run == "honest" and len(runs["honest"]) < 60 and i % 6 == 0 else 1
            runs[run].append(stake_fresh(sm, P.VERIFIER, minimums * MIN_STAKE))
    chain.mine(1)
    return sm, runs


def test_a_contiguous_coalition_meets_the_sample_on_chain(throng):
    """StakeManager.eligible_verifiers == protocol.compute_eligible_verifiers on a registry where a third of the
    verifiers registered in one run (tests/contracts/test_disputes_rules.py measures, with the mirror, that such a
    coalition captures the appeal jury about as rarely as independent draws), for seeds and registry prefixes of ~66
    (a sample short of duplicates: the walk fills it), ~130 and 200 entries; the gas of each draw is printed."""
    sm, runs = throng
    reg = [tuple(sm.entries(i)) for i in range(sm.entry_count())]
    assert len(reg) == 200
    wanted = P.APPEAL_JURY_MAX + 1
    for target in (66, 130, 200):
        at = reg[target - 1][1]  # entry target - 1 is opened by then (with the rest of its staker's run)
        n = sum(1 for e in reg if e[1] <= at)
        assert n - target in (0, 1, 2) and sm.eligible_verifiers(at - 1, 1, bytes(32), 1) != []
        for seed in (bytes(32), rand32(), rand32()):
            got = list(sm.eligible_verifiers(at, 1, seed, wanted))
            assert got == P.compute_eligible_verifiers(reg, at, seed, wanted)
            assert len(got) == len(set(got)) == min(wanted, len({e[0] for e in reg[:n]}))
        print(f"eligible_verifiers over {n} entries: {sm.eligible_verifiers.estimate_gas(at, 1, seed, wanted)} gas")
    seated = [sum(1 for v in P.compute_eligible_verifiers(reg, chain.height, rand32(), wanted) if v in runs["coalition"])
              for _ in range(200)]
    assert max(seated) < P.APPEAL_JURY_MAX // 2 + 1  # never a majority in 200 draws (a walk: ~1 in 3)


def test_appeal_constants_match_the_contracts(dc):
    assert dc.appeals.APPEAL_JURY_MAX() == P.APPEAL_JURY_MAX
    assert dc.appeals.bond_for(PARAMS.verifier_reward_wei) == dc.rules.compute_appeal_bond(PARAMS.verifier_reward_wei, 0)
