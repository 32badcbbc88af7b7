"""Disputes (issue #15): each move, each timeout, each loser-pays path, with Disputes wired into the
round (no majority vote for fraud). One deployment per module; brownie's fn_isolation reverts each test."""
import brownie
import pytest
from brownie import accounts, chain
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import RoundDriver
from disputes_kit import (PARAMS, TRAINER_STAKE, DisputeDriver, contradicted_round, dc, finalize_after_dispute,  # noqa: F401
                          mine_past_round_deadline, money, named_dispute, play_round_to_reveals, rand32, rd, total_money)
from node import protocol as P
from node.rounds import Outcome


def reservation_slash(dc, rd) -> int:
    return P.compute_slash(dc.rounds.trainer_reservation(rd.round_id), PARAMS.trainer_slash_bps)


# ---------------------------------------------------------------- the round without a majority vote

def test_agreeing_round_waits_out_the_watch_window(dc, rd):
    """With Disputes even a round whose verdicts all agree is finalized only after its deadline: until then a
    watcher may dispute any segment (open_watch; tests/contracts/test_watchers.py)."""
    play_round_to_reveals(rd)
    with brownie.reverts("rounds: verdicts still being revealed"):
        rd.finalize()
    mine_past_round_deadline(dc, rd)
    rd.finalize()
    assert rd.outcome == Outcome.ACCEPTED


def test_undisputed_contradiction_is_not_fraud(dc, rd, trainer):
    """A lazy majority (2 of 3 contradict, nobody disputes) cannot convict: the round is accepted once the
    dispute window (the reveal window) closed, and the contradicting members lose their minority slash."""
    challenger, others = contradicted_round(rd, n_contradicting=2)
    with brownie.reverts("rounds: verdicts still being revealed"):
        rd.finalize()
    before = money(dc, challenger)
    mine_past_round_deadline(dc, rd)
    rd.finalize()
    assert rd.outcome == Outcome.ACCEPTED
    assert money(dc, challenger) < before  # the minority verdict slash of its seat


def test_open_checks(dc, rd, verifiers, outsider):
    challenger, others = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open(sender=others[0])
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open(sender=outsider)
    with brownie.reverts("disputes: bond below rules.compute_challenger_bond"):
        dd.open(value=dd.bond - 1)
    with brownie.reverts("disputes: no such check"):  # a member's dispute is over one of the round's checks
        dd.open(check_index=len(rd.samples))
    with brownie.reverts("rounds: only the disputes contract"):
        dc.rounds.open_dispute(rd.round_id, challenger, 0, {"from": challenger})
    with brownie.reverts("rounds: only the disputes contract"):
        dc.rounds.resolve(rd.round_id, False, {"from": challenger})
    dd.open()
    assert dd.state["phase"] == P.DISPUTE_OPENED and dd.state["span_steps"] == dd.span_steps
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open()  # one dispute per member and round
    with brownie.reverts("rounds: in dispute"):
        rd.finalize()


def test_open_after_the_window_is_refused(dc, rd):
    challenger, _ = contradicted_round(rd)
    mine_past_round_deadline(dc, rd)
    with brownie.reverts("rounds: not open to disputes"):
        DisputeDriver(dc, rd, challenger).open()


def test_set_disputes_once(dc, deployer, rd):
    with brownie.reverts("rounds: disputes already set"):
        dc.rounds.set_disputes(deployer, {"from": deployer})


# ---------------------------------------------------------------- moves and their checks

def test_post_steps_checks(dc, rd):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    h = dd.step_hashes
    with brownie.reverts("disputes: only the trainer"):
        dd.post_steps(sender=challenger)
    with brownie.reverts("disputes: steps do not match the span"):
        dd.post_steps(hashes=h[:-1])
    with brownie.reverts("disputes: steps do not match the span"):
        dd.post_steps(hashes=[rand32()] + h[1:])
    with brownie.reverts("disputes: steps do not match the span"):
        dd.post_steps(hashes=h[:-1] + [rand32()])
    with brownie.reverts("disputes: not awaiting a step"):
        dd.name_step()
    tx = dd.post_steps()
    assert [bytes(x) for x in tx.events["StepsPosted"]["step_hashes"]] == h
    with brownie.reverts("disputes: not awaiting steps"):
        dd.post_steps()


def test_post_steps_after_window_is_refused(dc, rd):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    chain.mine(PARAMS.reveal_window + 1)
    with brownie.reverts("disputes: move window closed"):
        dd.post_steps()


def test_name_step_checks(dc, rd, verifiers, trainer):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    with brownie.reverts("disputes: not awaiting a jury draw"):
        dd.draw_jury(mine=False)
    dd.post_steps()
    with brownie.reverts("disputes: only the challenger"):
        dd.name_step(sender=trainer, draw=False)
    with brownie.reverts("disputes: not the posted steps"):
        dd.name_step(hashes=dd.step_hashes[:-1] + [rand32()], draw=False)
    with brownie.reverts("disputes: no such step"):
        dd.name_step(step=0, draw=False)
    with brownie.reverts("disputes: no such step"):
        dd.name_step(step=dd.span_steps + 1, draw=False)
    tx = dd.name_step(step=2, draw=False)
    ev = tx.events["StepNamed"]
    assert bytes(ev["agreed_hash"]) == dd.step_hashes[1] and bytes(ev["claimed_hash"]) == dd.step_hashes[2]
    # the jury block is the next one: its hash did not exist when the challenger sent the move
    assert ev["jury_block"] == dd.state["jury_block"] == P.compute_jury_block(tx.block_number) == tx.block_number + 1
    assert dd.state["phase"] == P.DISPUTE_STEP_NAMED and "JuryDrawn" not in tx.events
    assert list(dc.disputes.jury_of(dd.dispute_id)) == []
    with brownie.reverts("disputes: not awaiting a step"):
        dd.name_step(draw=False)
    with brownie.reverts("disputes: not voting"):
        dc.disputes.commit_vote(dd.dispute_id, rand32(), {"from": verifiers[-1]})
    with brownie.reverts("disputes: jury not drawn yet (draw_jury)"):
        dd.resolve()


def test_draw_jury(dc, rd, verifiers, outsider):
    """draw_jury: refused (with its reason) until the jury block is mined, then anyone's; the seed is
    blockhash(J) with J the block after name_step; seats reserved, the commit window starts at the draw."""
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    name = dd.name_step(step=2, draw=False)
    j_block = dd.state["jury_block"]
    assert chain.height + 1 == j_block  # the next transaction lands in J itself: blockhash(J) is not readable yet
    with brownie.reverts("disputes: jury block not mined yet"):
        dd.draw_jury(sender=outsider, mine=False)
    assert chain.height == j_block  # the refused draw was mined in J; J + 1 is the first block that can draw
    tx = dd.draw_jury(sender=outsider, mine=False)  # not a party, not a verifier: anyone
    assert tx.return_value is True and tx.block_number == j_block + 1
    ev = tx.events["JuryDrawn"]
    seed = P.compute_jury_seed(bytes(chain[j_block].hash), dd.dispute_id)
    assert ev["jury_block"] == j_block and bytes(ev["seed"]) == seed
    drawn = dc.sm.draw_committee(seed, dd.state["eligible_block"], P.JURY_MAX + 1, rd.task_id)
    assert list(ev["jury"]) == P.compute_jury(list(drawn), challenger.address) == [j.address for j in dd.jury]
    # every verifier but the challenger (7 staked, JURY_MAX 15), each seat reserved
    assert sorted(j.address for j in dd.jury) == sorted(v.address for v in verifiers if v != challenger)
    for j in dd.jury:
        assert dc.sm.reserved(j) >= dc.disputes.juror_seat(dd.dispute_id)
    # the commit window starts at the draw, not at the naming
    assert ev["commit_deadline"] == dd.state["deadline"] == tx.block_number + PARAMS.commit_verdicts_window
    assert ev["reveal_deadline"] == dd.state["reveal_deadline"] == ev["commit_deadline"] + PARAMS.reveal_verdicts_window
    assert ev["commit_deadline"] > name.block_number + PARAMS.commit_verdicts_window
    assert dd.state["phase"] == P.DISPUTE_JURY
    with brownie.reverts("disputes: jury already drawn"):
        dd.draw_jury(sender=challenger)
    dd.commit_vote(dd.jury[0], True)


def test_nobody_stakes_into_a_jury_after_the_commit(dc, rd, deployer):
    """Jurors are drawn over the verifier entries eligible at the round's commit block, as its committee was:
    verifiers staked after a contradiction is revealed (here 6 newcomers with 8 entries each, 48 entries against
    the 7 eligible ones, all open before the dispute) never sit on its jury. Drawn at the dispute's open block,
    they would fill most of it."""
    challenger, _ = contradicted_round(rd)
    commit_block = dc.rounds.rounds(rd.round_id)[7]  # Round.commit_block
    newcomers = [accounts.add() for _ in range(6)]
    for n in newcomers:
        deployer.transfer(n, 9 * 10**18)
        dc.sm.stake(P.VERIFIER, {"from": n, "value": 8 * 10**18})
    chain.mine(2)
    assert all(dc.sm.is_eligible(n, P.VERIFIER) for n in newcomers)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    assert dd.state["eligible_block"] == commit_block < chain.height
    dd.post_steps()
    dd.name_step(step=1)
    jury = {j.address for j in dd.jury}
    assert jury and not jury & {n.address for n in newcomers}
    assert jury <= {e[0] for e in (dc.sm.entries(i) for i in range(dc.sm.entry_count())) if e[1] <= commit_block}


def test_draw_jury_retargets_an_expired_jury_block(dc, rd, outsider):
    """Nobody drew while blockhash(J) was readable: draw_jury does not revert (that would undo the fix) but
    re-targets J to the block after it and says so; the next draw after the new J draws from its hash.
    At exactly J + BLOCKHASH_HORIZON the draw still reads blockhash(J)."""
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step(draw=False)
    j_block = dd.state["jury_block"]
    assert not P.is_jury_block_expired(j_block, j_block + P.BLOCKHASH_HORIZON)
    assert P.is_jury_block_expired(j_block, j_block + P.BLOCKHASH_HORIZON + 1)
    chain.mine(j_block + P.BLOCKHASH_HORIZON - (chain.height + 1))
    last = dd.draw_jury(mine=False)  # lands in J + 256: the last block that can read blockhash(J)
    assert last.block_number == j_block + P.BLOCKHASH_HORIZON and last.return_value is True
    assert bytes(last.events["JuryDrawn"]["seed"]) == P.compute_jury_seed(bytes(chain[j_block].hash), dd.dispute_id)
    chain.undo()  # (not chain.snapshot: that would replace the test isolation's own snapshot)
    chain.mine(1)
    tx = dd.draw_jury(sender=outsider, mine=False)  # lands in J + 257: expired
    assert tx.return_value is False and "JuryDrawn" not in tx.events
    ev = tx.events["JuryBlockRetargeted"]
    assert ev["expired_block"] == j_block and ev["jury_block"] == tx.block_number + 1 == dd.state["jury_block"]
    assert dd.state["phase"] == P.DISPUTE_STEP_NAMED and list(dc.disputes.jury_of(dd.dispute_id)) == []
    with brownie.reverts("disputes: jury block not mined yet"):
        dd.draw_jury(mine=False)
    drawn = dd.draw_jury(sender=outsider)
    new_block = ev["jury_block"]
    assert bytes(drawn.events["JuryDrawn"]["seed"]) == P.compute_jury_seed(bytes(chain[new_block].hash), dd.dispute_id)
    assert drawn.events["JuryDrawn"]["jury_block"] == new_block and dd.state["phase"] == P.DISPUTE_JURY
    # the dispute goes on as usual
    dd.vote({j: True for j in dd.jury})
    assert dd.resolve().events["DisputeResolved"]["trainer_won"] is True


def test_timing_name_step_does_not_choose_the_seed(dc, rd):
    """The grinding of issue #15: before, name_step drew with blockhash(block.number - 1), which the challenger
    reads before sending, so waiting W blocks gave it W known seeds to choose from. Now, whichever block it names
    in, the seed is blockhash(name block + 1): every seed it could have computed before sending differs from the
    one drawn (so does the one the old rule would have used), and the seed follows J's hash alone."""
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    known = set()
    for _ in range(4):  # the challenger waits, reading each new block's hash: the seeds it could grind on
        chain.mine(1)
        known.add(P.compute_jury_seed(bytes(chain[chain.height].hash), dd.dispute_id))
    name = dd.name_step(draw=False)
    old_rule_seed = P.compute_jury_seed(bytes(chain[name.block_number - 1].hash), dd.dispute_id)
    assert old_rule_seed in known  # what the challenger chose under the old rule
    tx = dd.draw_jury()
    seed = bytes(tx.events["JuryDrawn"]["seed"])
    assert tx.events["JuryDrawn"]["jury_block"] == name.block_number + 1
    assert seed == P.compute_jury_seed(bytes(chain[name.block_number + 1].hash), dd.dispute_id)
    assert seed not in known
    # the draw does not depend on when draw_jury is sent either: a later draw reads the same blockhash(J)
    chain.undo()
    chain.mine(10)
    assert bytes(dd.draw_jury(mine=False).events["JuryDrawn"]["seed"]) == seed


def test_busy_verifiers_still_sit_on_the_jury(dc, rd, deployer, trainer, verifiers):
    """A verifier whose stake is reserved by other rounds is drawn all the same and reserves what it has free
    (skipping it would let a trainer steer the jury by keeping verifiers busy)."""
    other = RoundDriver(dc, deployer, trainer, PARAMS)
    dc.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})  # a second round needs a second reservation
    other.commit()
    other.seal()  # its committee's seats are reserved until it ends
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    assert sorted(j.address for j in dd.jury) == sorted(v.address for v in verifiers if v != challenger)
    busy = [j for j in dd.jury if j in rd.committee and j in other.committee]
    for j in dd.jury:
        assert dc.disputes.juror_reservation(dd.dispute_id, j) == (0 if j in busy else dc.disputes.juror_seat(dd.dispute_id))


def test_vote_checks(dc, rd, outsider):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    j = dd.jury[0]
    with brownie.reverts("disputes: not a juror"):
        dc.disputes.commit_vote(dd.dispute_id, rand32(), {"from": challenger})
    with brownie.reverts("disputes: empty commitment"):
        dc.disputes.commit_vote(dd.dispute_id, b"\x00" * 32, {"from": j})
    dd.commit_vote(j, True)
    with brownie.reverts("disputes: already committed"):
        dc.disputes.commit_vote(dd.dispute_id, rand32(), {"from": j})
    with brownie.reverts("disputes: jury still committing"):
        dd.reveal_vote(j)
    for other in dd.jury[1:]:
        dd.commit_vote(other, True)
    with brownie.reverts("disputes: reveal does not match commitment"):
        dc.disputes.reveal_vote(dd.dispute_id, rand32(), dd.salts[j.address][1], {"from": j})
    with brownie.reverts("disputes: jury vote not final (appeal window)"):
        dd.resolve(wait=False)
    dd.reveal_vote(j)
    with brownie.reverts("disputes: already revealed"):
        dd.reveal_vote(j)


# ---------------------------------------------------------------- timeouts: a missed move loses

def test_trainer_stalling_loses(dc, rd, trainer):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    with brownie.reverts("disputes: trainer may still post"):
        dd.resolve()
    stake0, ch0 = dc.sm.stake_of(trainer), dc.sm.claimable(challenger)
    slash = reservation_slash(dc, rd)
    chain.mine(PARAMS.reveal_window + 1)
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is False
    assert dc.sm.stake_of(trainer) == stake0 - slash
    # bond back + gas refund + fraud_reward_bps of the rest (no juror voted)
    _, to_challenger, _ = P.compute_dispute_payouts(slash, 0, PARAMS.verifier_reward_wei,
                                                    P.CHALLENGER_GAS_ALLOWANCE * dd.state["gas_price"], PARAMS.fraud_reward_bps)
    assert dc.sm.claimable(challenger) == ch0 + dd.posted_bond + to_challenger
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.FRAUD
    assert dc.sm.reserved(trainer) == 0 and dc.sm.stake_of(trainer) == stake0 - slash  # the rest released, not slashed twice
    assert dc.disputes.balance() == 0


def test_challenger_stalling_loses(dc, rd, trainer):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    with brownie.reverts("disputes: challenger may still name"):
        dd.resolve()
    tr0 = dc.sm.claimable(trainer)
    chain.mine(PARAMS.reveal_window + 1)
    with brownie.reverts("disputes: move window closed"):
        dd.name_step()
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    assert dc.sm.claimable(trainer) == tr0 + dd.posted_bond  # no juror: the whole bond to the trainer
    with brownie.reverts("disputes: not open"):
        dd.resolve()
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.ACCEPTED


# ---------------------------------------------------------------- the jury decides; loser pays

def test_false_challenge_loses_its_bond(dc, rd, trainer):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step(step=dd.span_steps)
    jurors0 = {j.address: money(dc, j) for j in dd.jury}
    tr0, ch0 = money(dc, trainer), money(dc, challenger)
    dd.vote({j: True for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    per_juror, to_trainer, _ = P.compute_dispute_payouts(dd.posted_bond, len(dd.jury), PARAMS.verifier_reward_wei,
                                                         P.DEFENDER_GAS_ALLOWANCE * dd.state["gas_price"], P.BPS)
    for j in dd.jury:
        assert money(dc, j) == jurors0[j.address] + per_juror
    assert money(dc, trainer) == tr0 + to_trainer
    assert money(dc, challenger) == ch0  # the bond was already paid in; nothing comes back
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.ACCEPTED
    assert dc.disputes.balance() == 0


def test_one_honest_member_convicts_a_forgery(dc, rd, trainer):
    """A colluding majority (2 of 3) accepts a forgery; the one honest member disputes and the jury convicts."""
    challenger, colluders = contradicted_round(rd, n_contradicting=1)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step(step=1)
    stake0 = dc.sm.stake_of(trainer)
    slash = reservation_slash(dc, rd)
    # the colluders sit on the jury too and vote for the trainer; the honest rest outvote them
    dd.vote({j: (j in colluders) for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is False
    assert dc.sm.stake_of(trainer) == stake0 - slash
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.FRAUD
    assert dc.sm.reserved(trainer) == 0


def test_lying_juror_minority_is_slashed(dc, rd):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    liars, absent = dd.jury[:2], dd.jury[2:3]
    honest = dd.jury[3:]
    before = {j.address: money(dc, j) for j in dd.jury}
    dd.vote({j: (False if j in liars else (None if j in absent else True)) for j in dd.jury})
    dd.resolve()
    seat = dc.disputes.juror_seat(dd.dispute_id)
    for j in liars:
        assert money(dc, j) == before[j.address] - P.compute_slash(dc.disputes.juror_reservation(dd.dispute_id, j), PARAMS.verifier_slash_bps)
    for j in absent:
        assert money(dc, j) == before[j.address] - P.compute_slash(dc.disputes.juror_reservation(dd.dispute_id, j), PARAMS.no_show_slash_bps)
    for j in honest:
        assert money(dc, j) > before[j.address]


def test_jurors_without_the_challengers_answer_cannot_convict(dc, rd, trainer):
    """Answer votes (#15): jurors that did not replay and answer anything but the trainer's hash (here all of them,
    each a guess: a lazy majority) count for nobody, since the challenger's answer was hidden until they committed.
    The trainer wins 0:0, the guessers are neither paid nor slashed, the challenger loses its bond."""
    dd = named_dispute(dc, rd)
    before = {j.address: money(dc, j) for j in dd.jury}
    tr0 = money(dc, trainer)
    dd.vote({j: rand32() for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    assert (dd.state["votes_trainer"], dd.state["votes_challenger"], dd.state["n_revealed"]) == (0, 0, len(dd.jury))
    for j in dd.jury:
        assert dc.disputes.votes(dd.dispute_id, j) == P.VOTE_ABSTAIN
        assert money(dc, j) == before[j.address]
    assert money(dc, trainer) > tr0  # the bond, less nothing for jurors: no majority


def test_a_challenger_that_keeps_its_answer_gets_no_votes(dc, rd, trainer):
    """Jurors that answer the challenger's value (told by it: colluders) count only once the challenger reveals it;
    one that never does gets no votes and loses, after the reveal deadline (resolve waits for its reveal until then)."""
    dd = named_dispute(dc, rd)
    before = {j.address: money(dc, j) for j in dd.jury}
    for j in dd.jury:
        dd.commit_vote(j, False)
    for j in dd.jury:
        dd.reveal_vote(j)
    with brownie.reverts("disputes: jury vote not final (appeal window)"):  # every juror revealed, the challenger not yet
        dd.resolve(wait=False)
    chain.mine(max(0, dd.state["reveal_deadline"] - chain.height))
    with brownie.reverts("disputes: reveal window closed"):
        dd.reveal_answer()
    assert dd.resolve().events["DisputeResolved"]["trainer_won"] is True
    for j in dd.jury:
        assert dc.disputes.votes(dd.dispute_id, j) == P.VOTE_ABSTAIN and money(dc, j) == before[j.address]


def test_reveal_answer_checks(dc, rd, outsider):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    with brownie.reverts("disputes: empty answer commitment"):
        dd.name_step(draw=False, commitment=b"\x00" * 32)
    dd.name_step()
    with brownie.reverts("disputes: only the challenger"):
        dd.reveal_answer(sender=outsider)
    dd.commit_vote(dd.jury[0], True)
    with brownie.reverts("disputes: jury still committing"):  # before the jury committed: nobody may copy it
        dd.reveal_answer()
    for j in dd.jury[1:]:
        dd.commit_vote(j, True)
    with brownie.reverts("disputes: empty answer"):
        dd.reveal_answer(answer=b"\x00" * 32)
    with brownie.reverts("disputes: reveal does not match commitment"):
        dd.reveal_answer(answer=rand32())
    with brownie.reverts("disputes: reveal does not match commitment"):
        dd.reveal_answer(salt=rand32())
    tx = dd.reveal_answer()
    assert bytes(tx.events["ChallengerAnswerRevealed"]["answer"]) == dd.answer
    assert bytes(dd.state["challenger_answer"]) == dd.answer
    with brownie.reverts("disputes: answer already revealed"):
        dd.reveal_answer()


def test_tie_keeps_the_trainer(dc, rd):
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    dd.post_steps()
    dd.name_step()
    votes = {j: None for j in dd.jury}
    votes[dd.jury[0]], votes[dd.jury[1]] = True, False
    dd.vote(votes)
    assert dd.resolve().events["DisputeResolved"]["trainer_won"] is True


# ---------------------------------------------------------------- conservation

@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["trainer_stalls", "challenger_stalls", "jury"]),
       votes=st.lists(st.sampled_from([True, False, None]), min_size=6, max_size=6))
def test_dispute_conserves_stake(dc, deployer, trainer, verifiers, path, votes):
    """Whatever happens, no wei is made or lost: stakes + claimables + treasury + held bonds grow by the bond
    only, and Disputes holds nothing once resolved."""
    chain.snapshot()
    try:
        check_conservation(dc, deployer, trainer, verifiers, path, votes)
    finally:
        chain.revert()


def check_conservation(dc, deployer, trainer, verifiers, path, votes):
    rd = RoundDriver(dc, deployer, trainer, PARAMS)
    challenger, _ = contradicted_round(rd)
    everyone = [trainer] + list(verifiers)
    total0 = total_money(dc, everyone)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open()
    if path == "trainer_stalls":
        chain.mine(PARAMS.reveal_window + 1)
    else:
        dd.post_steps()
        if path == "challenger_stalls":
            chain.mine(PARAMS.reveal_window + 1)
        else:
            dd.name_step()
            dd.vote(dict(zip(dd.jury, votes)))
    dd.resolve()
    finalize_after_dispute(dc, rd)
    assert dc.disputes.balance() == 0
    assert total_money(dc, everyone) == total0 + dd.posted_bond
    assert dc.sm.reserved(trainer) == 0
    for v in verifiers:
        assert dc.sm.reserved(v) == 0


# ---------------------------------------------------------------- gas (bench/gas.md's dispute rows)

def test_dispute_gas(dc, rd):
    """Gas of each move of a dispute with a full jury of the 6 other verifiers, on the longest span of this task
    (8 steps; post_steps grows ~+1k gas per step of calldata and hashing); bounds keep a regression visible."""
    challenger, _ = contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger, check_index=len(rd.samples) - 1)
    gas = {"open": dd.open().gas_used, "post_steps": dd.post_steps().gas_used,
           "name_step": dd.name_step(draw=False).gas_used, "draw_jury (jury draw + seats)": dd.draw_jury().gas_used}
    gas["commit_vote"] = dd.commit_vote(dd.jury[0], True).gas_used
    for j in dd.jury[1:]:
        dd.commit_vote(j, True)
    gas["reveal_answer"] = dd.reveal_answer().gas_used
    gas["reveal_vote"] = dd.reveal_vote(dd.jury[0]).gas_used
    for j in dd.jury[1:]:
        dd.reveal_vote(j)
    gas["resolve (6 jurors paid)"] = dd.resolve().gas_used
    gas["finalize (after a dispute)"] = finalize_after_dispute(dc, rd).gas_used
    print("dispute gas, span", dd.span_steps, "steps, jury", len(dd.jury), ":", gas)
    assert sum(gas.values()) < 3_300_000  # answer votes (#15) added the challenger's reveal_answer and resolve's tally
    # the refunds cover what the moves cost: the trainer posts steps and may resolve; the challenger opens and names
    assert gas["post_steps"] + gas["resolve (6 jurors paid)"] < P.DEFENDER_GAS_ALLOWANCE
    # (the challenger's node draws the jury too when nobody else did first)
    challenger_moves = ("open", "name_step", "draw_jury (jury draw + seats)", "reveal_answer", "resolve (6 jurors paid)")
    assert sum(gas[m] for m in challenger_moves) < P.CHALLENGER_GAS_ALLOWANCE


# ---------------------------------------------------------------- flag disputes: no span to narrow

def flag_contradicted_round(rd, final_ok=None, data_root_ok=True, starts_ok=True):
    """A round whose first member agrees on every end hash but reveals a false flag (final_ok False by default,
    or data_root_ok / starts_ok False): a contradiction with no span to narrow. Returns (challenger, the other members)."""
    rd.commit()
    rd.seal()
    rd.reveal_starts()
    members = list(rd.committee)
    for v in members:
        first = v == members[0]
        rd.commit_verdict(v, data_root_ok=data_root_ok if first else True, starts_ok=starts_ok if first else True)
    rd.reveal_ends()
    rd.commit_finals(members, final_ok={members[0]: False} if final_ok is None else final_ok)
    for v in members:
        rd.reveal_verdict(v)
    return members[0], members[1:]


def test_false_flags_in_the_verdicts_order():
    assert P.compute_false_flags(True, True, True) == []
    assert P.compute_false_flags(False, True, False) == [P.FLAG_DATA_ROOT, P.FLAG_FINAL]


def test_flag_constants_match_the_contract(dc):
    assert (dc.disputes.FLAG_DATA_ROOT(), dc.disputes.FLAG_STARTS(), dc.disputes.FLAG_FINAL()) == \
        (P.FLAG_DATA_ROOT, P.FLAG_STARTS, P.FLAG_FINAL)


def test_open_flag_checks(dc, rd, outsider):
    challenger, others = flag_contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    for bad in (0, P.FLAG_FINAL + 1):
        with brownie.reverts("disputes: no such flag"):
            dd.open_flag(bad)
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open_flag(P.FLAG_FINAL, sender=others[0])
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open_flag(P.FLAG_FINAL, sender=outsider)
    with brownie.reverts("disputes: bond below rules.compute_challenger_bond"):
        dd.open_flag(P.FLAG_FINAL, value=dd.bond - 1)
    tx = dd.open_flag(P.FLAG_FINAL)
    ev = tx.events["FlagDisputed"]
    assert ev["flag"] == P.FLAG_FINAL and ev["jury_block"] == tx.block_number + 1
    assert dc.disputes.flag_of(dd.dispute_id) == P.FLAG_FINAL
    assert dd.state["phase"] == P.DISPUTE_STEP_NAMED  # nothing to narrow: straight to the jury draw
    with brownie.reverts("rounds: not a contradicting member"):
        dd.open(check_index=0)  # one dispute per member and round: a span or a flag
    with brownie.reverts("disputes: not awaiting steps"):
        dd.post_steps()
    with brownie.reverts("disputes: not awaiting a step"):
        dd.name_step(draw=False)
    with brownie.reverts("disputes: jury not drawn yet (draw_jury)"):
        dd.resolve()
    with brownie.reverts("rounds: in dispute"):
        rd.finalize()


def test_open_flag_after_the_window_is_refused(dc, rd):
    challenger, _ = flag_contradicted_round(rd)
    mine_past_round_deadline(dc, rd)
    with brownie.reverts("rounds: not open to disputes"):
        DisputeDriver(dc, rd, challenger).open_flag(P.FLAG_FINAL)


def test_a_swapped_final_checkpoint_is_convicted_by_a_flag_dispute(dc, rd, trainer):
    """With Disputes, a bad final checkpoint (final_ok false, every end hash right) used to open no dispute and the
    round was accepted; now the member disputes the flag, the jury checks the checkpoint and convicts."""
    challenger, others = flag_contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open_flag(P.FLAG_FINAL)
    assert bytes(dd.state["claimed_hash"]) == bytes(dc.rounds.rounds(rd.round_id).dict()["final_hash"])  # h_M: its answer
    dd.draw_jury()
    stake0, ch0 = dc.sm.stake_of(trainer), money(dc, challenger)
    slash = reservation_slash(dc, rd)
    dd.vote({j: False for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is False
    assert dc.sm.stake_of(trainer) == stake0 - slash
    assert money(dc, challenger) - ch0 > dd.posted_bond  # its bond back (claimable), its gas refund and its share
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.FRAUD
    assert dc.sm.reserved(trainer) == 0
    assert dc.disputes.balance() == 0


def test_a_false_flag_challenge_loses_its_bond(dc, rd, trainer):
    challenger, _ = flag_contradicted_round(rd, final_ok={}, data_root_ok=False)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open_flag(P.FLAG_DATA_ROOT)
    assert bytes(dd.state["claimed_hash"]) == bytes(dc.rounds.rounds(rd.round_id).dict()["data_root"])  # its answer
    dd.draw_jury()
    tr0, ch0 = money(dc, trainer), money(dc, challenger)
    dd.vote({j: True for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    assert money(dc, trainer) > tr0 and money(dc, challenger) == ch0
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.ACCEPTED
    assert dc.disputes.balance() == 0


# ---------------------------------------------------------------- availability challenges
def test_a_final_checkpoint_served_to_nobody_is_convicted(dc, rd, trainer):
    """A member that could not fetch the final checkpoint disputes FLAG_FINAL answering ANSWER_UNAVAILABLE; jurors
    that cannot fetch it either answer the same: the trainer is convicted like any fraud (with Disputes, such a round
    used to be accepted, its canonical CID serving nothing)."""
    challenger, _ = flag_contradicted_round(rd)
    dd = DisputeDriver(dc, rd, challenger)
    dd.answer = P.ANSWER_UNAVAILABLE
    dd.open_flag(P.FLAG_FINAL)
    dd.draw_jury()
    stake0, ch0 = dc.sm.stake_of(trainer), money(dc, challenger)
    dd.vote({j: P.ANSWER_UNAVAILABLE for j in dd.jury})
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is False
    assert dc.sm.stake_of(trainer) == stake0 - reservation_slash(dc, rd)
    assert money(dc, challenger) - ch0 > dd.posted_bond  # its bond back, its gas refund and its share
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.FRAUD
    assert dc.disputes.balance() == 0


@pytest.mark.parametrize("flag", [P.FLAG_STARTS, P.FLAG_FINAL])
def test_a_trainer_serving_only_the_jury_wins_but_earns_nothing(dc, rd, trainer, flag):
    """The availability challenge's other side: the trainer served the jury (a majority found its answer), so it
    wins, but who withheld is not attributable: the majority jurors are paid from the bond and the rest goes back
    to the challenger, none of it to the trainer (withholding from the committee to collect bonds earns nothing)."""
    challenger, _ = (flag_contradicted_round(rd, final_ok={}, starts_ok=False) if flag == P.FLAG_STARTS
                     else flag_contradicted_round(rd))
    dd = DisputeDriver(dc, rd, challenger)
    dd.answer = P.ANSWER_UNAVAILABLE
    dd.open_flag(flag)
    dd.draw_jury()
    assert len(dd.jury) >= 3
    tr0, ch0 = money(dc, trainer), money(dc, challenger)
    votes = {j: True for j in dd.jury}
    votes[dd.jury[0]] = P.ANSWER_UNAVAILABLE  # one juror could not fetch it either: on the losing side
    dd.vote(votes)
    tx = dd.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    n_majority = len(dd.jury) - 1
    per_juror, to_trainer, rest = P.compute_dispute_payouts(dd.posted_bond, n_majority, PARAMS.verifier_reward_wei, 0, 0)
    assert to_trainer == 0 and rest > 0
    assert money(dc, trainer) == tr0
    assert money(dc, challenger) - ch0 == rest == dd.posted_bond - per_juror * n_majority
    assert [e["reason"] for e in tx.events["DisputePaid"] if e["who"] == challenger.address] == ["availability bond back"]
    finalize_after_dispute(dc, rd)
    assert rd.outcome == Outcome.ACCEPTED
    assert dc.disputes.balance() == 0


def test_unavailable_is_no_refund_outside_a_checkpoint_flag(dc, rd, trainer):
    """ANSWER_UNAVAILABLE buys a refund only in a FLAG_STARTS / FLAG_FINAL dispute: a data-root challenger answering it
    (the data root is recomputed, never fetched) loses its bond to the trainer as any false challenge."""
    challenger, _ = flag_contradicted_round(rd, final_ok={}, data_root_ok=False)
    dd = DisputeDriver(dc, rd, challenger)
    dd.answer = P.ANSWER_UNAVAILABLE
    dd.open_flag(P.FLAG_DATA_ROOT)
    dd.draw_jury()
    tr0, ch0 = money(dc, trainer), money(dc, challenger)
    dd.vote({j: True for j in dd.jury})
    assert dd.resolve().events["DisputeResolved"]["trainer_won"] is True
    assert money(dc, trainer) > tr0 and money(dc, challenger) == ch0


def test_a_starts_flag_dispute_answers_over_every_start_leaf(dc, rd, trainer):
    """FLAG_STARTS: the trainer's answer is keccak256(abi.encode(its start leaves)) (protocol.compute_starts_answer);
    jurors that find the same answer under the start CIDs keep the trainer."""
    challenger, _ = flag_contradicted_round(rd, final_ok={}, starts_ok=False)
    dd = DisputeDriver(dc, rd, challenger)
    dd.open_flag(P.FLAG_STARTS)
    starts = [bytes(h) for h in dc.rounds.start_hashes_of(rd.round_id)]
    assert bytes(dd.state["claimed_hash"]) == P.compute_starts_answer(starts)
    dd.draw_jury()
    dd.vote({j: P.compute_starts_answer(starts) for j in dd.jury})
    assert dd.resolve().events["DisputeResolved"]["trainer_won"] is True


# ---------------------------------------------------------------- checks dealt out (issue #15)

def test_checks_are_dealt_out_with_disputes(dc, rd):
    """With Disputes the seal draws c·s checks (M permitting) in one draw, not v1's s: the committee covers c times
    as much, and each member replays only its own (same work per member as v1)."""
    rd.commit()
    rd.seal()
    committee = list(dc.rounds.committee_of(rd.round_id))
    seed = bytes(rd.round["seed"])
    n_segments = PARAMS.steps_per_round // PARAMS.segment_steps
    assert rd.samples == P.compute_dealt_samples(seed, n_segments, PARAMS.samples, len(committee))
    assert rd.samples == P.compute_round_samples(seed, n_segments, PARAMS.samples, len(committee), True)
    assert len(rd.samples) >= len(committee) * PARAMS.samples  # c·s draws (+1 when M-1 is the last check's start)
    assert len(P.compute_samples(seed, n_segments, PARAMS.samples)) <= PARAMS.samples + 1  # what v1 would check


def test_a_member_answers_for_its_own_checks_only(dc, rd):
    """A wrong end hash on a check dealt to another member is not read (no contradiction); on one of its own it
    contradicts. The last check (it ends at h_M) is every member's."""
    rd.commit()
    rd.seal()
    rd.reveal_starts()
    committee = list(rd.committee)
    n = len(rd.samples)
    truth = rd.true_ends()
    expected = {}
    for m, v in enumerate(committee):
        mine = P.compute_member_checks(n, len(committee), m)
        others = [i for i in range(n) if i not in mine]
        ends = list(truth)
        if m == 0:
            ends[others[0]] = rand32()      # someone else's check: not read
        elif m == 1:
            ends[mine[0]] = rand32()        # its own: contradicts
        expected[v.address] = m == 1
        rd.commit_verdict(v, ends=ends)
    rd.reveal_ends()
    rd.commit_finals(committee)
    for v in committee:
        tx = rd.reveal_verdict(v)
        assert tx.events["VerdictRevealed"]["contradicts"] is expected[v.address], v
