"""The final flag's own commitment (issue #13, attack 5): after reveal_ends each member that committed a
verdict calls commit_verdict a second time with rules.compute_final_commitment(round, verifier, final_ok,
salt) (its verdict's salt) within commit_verdicts_window blocks; reveal_verdict waits for every member's
final commitment or that window's close, and opens both commitments. So no flag counted in the tally is
chosen after another member's reveal."""
import brownie
from brownie import chain

from conftest import MIN_VERIFIER, PARAMS, VERIFIER_STAKE, rand32
from node import protocol as P


def to_ends(task, absent=()):
    """Commit .. reveal_ends with every member but `absent` committed (honest ends); returns the ends tx."""
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        if v not in absent:
            task.commit_verdict(v)
    if absent:
        chain.mine(PARAMS.commit_verdicts_window + 1)
    return task.reveal_ends()


def test_two_part_commit_then_reveal(task, staked):
    """Verdict commitment before the ends, final flag's after; the ends open a commit window, then the reveal window."""
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        tx = task.commit_verdict(v)
        assert "VerdictCommitted" in tx.events and "FinalCommitted" not in tx.events
    verdicts = {v: bytes(staked.rounds.commitments(task.round_id, v)) for v in task.committee}
    ends_tx = task.reveal_ends()
    rnd = task.round
    assert rnd["commit_deadline"] == ends_tx.block_number + PARAMS.commit_verdicts_window
    assert rnd["deadline"] == ends_tx.block_number + PARAMS.commit_verdicts_window + PARAMS.reveal_verdicts_window
    assert ends_tx.events["EndsRevealed"]["deadline"] == rnd["deadline"]
    assert staked.rounds.n_final_committed(task.round_id) == 0
    for i, v in enumerate(task.committee):
        tx = task.commit_final(v)
        ev = tx.events["FinalCommitted"]
        salt = task.salts[v.address][3]
        assert (ev["round_id"], ev["verifier"], bytes(ev["commitment"])) == (
            task.round_id, v.address, P.compute_final_commitment(task.round_id, v.address, True, salt))
        assert "VerdictCommitted" not in tx.events
        assert staked.rounds.n_final_committed(task.round_id) == i + 1
        assert bytes(staked.rounds.commitments(task.round_id, v)) == verdicts[v]  # the verdict's stays
    assert task.round["n_committed"] == len(task.committee)
    for v in task.committee:
        ev = task.reveal_verdict(v).events["VerdictRevealed"]
        assert ev["final_ok"] is True and ev["contradicts"] is False
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED
    for v in task.committee:
        assert staked.sm.claimable(v) == PARAMS.verifier_reward_wei


def test_a_final_commitment_before_the_ends_is_the_verdict_commitment(task):
    """Before the ends (phase STARTS_REVEALED) commit_verdict takes the verdict commitment: a final-flag
    commitment sent then is that member's verdict, which its verdict never opens."""
    task.commit()
    task.seal()
    task.reveal_starts()
    early, *others = task.committee
    task.commit_verdict(early)
    salt = task.salts[early.address][3]
    with brownie.reverts("rounds: already committed"):  # not a second, final, commitment: its verdict is taken
        task.c.rounds.commit_verdict(task.round_id, P.compute_final_commitment(task.round_id, early.address, True, salt), {"from": early})
    # a member that sends its final flag's commitment first has committed that as its verdict
    premature = others[0]
    salt = rand32()
    task.salts[premature.address] = (task.true_ends(), True, True, salt)
    tx = task.c.rounds.commit_verdict(task.round_id, P.compute_final_commitment(task.round_id, premature.address, True, salt),
                                      {"from": premature})
    assert "VerdictCommitted" in tx.events and "FinalCommitted" not in tx.events
    task.commit_verdict(others[1])
    task.reveal_ends()
    task.commit_finals(task.committee)
    with brownie.reverts("rounds: reveal does not match commitment"):
        task.reveal_verdict(premature)


def test_a_second_final_commitment_is_refused(task):
    to_ends(task)
    v = task.committee[0]
    task.commit_final(v)
    with brownie.reverts("rounds: already committed"):
        task.commit_final(v, final_ok=False)
    with brownie.reverts("rounds: already committed"):
        task.c.rounds.commit_verdict(task.round_id, rand32(), {"from": v})
    with brownie.reverts("rounds: empty commitment"):
        task.c.rounds.commit_verdict(task.round_id, bytes(32), {"from": task.committee[1]})
    assert task.c.rounds.n_final_committed(task.round_id) == 1


def test_no_final_commitment_without_a_verdict_commitment(task, outsider):
    task.commit()
    task.seal()
    task.reveal_starts()
    absent, *present = task.committee
    for v in present:
        task.commit_verdict(v)
    chain.mine(PARAMS.commit_verdicts_window + 1)
    task.reveal_ends()
    for who in (absent, outsider):
        with brownie.reverts("rounds: no commitment"):
            task.c.rounds.commit_verdict(task.round_id, P.compute_final_commitment(task.round_id, who.address, True, rand32()),
                                         {"from": who})
    task.commit_finals(present)  # every member that committed a verdict: the reveals need not wait for the absent one
    for v in present:
        task.reveal_verdict(v)
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED
    assert task.c.sm.stake_of(absent) == VERIFIER_STAKE - P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)


def test_final_commit_window(task):
    """Open through commit_deadline (ends block + commit_verdicts_window), closed after it."""
    to_ends(task)
    first, second, third = task.committee
    task.commit_final(first)
    deadline = task.round["commit_deadline"]
    chain.mine(deadline - chain.height - 1)
    tx = task.commit_final(second)  # executes in the window's last block
    assert tx.block_number == deadline
    with brownie.reverts("rounds: commit window closed"):
        task.commit_final(third)
    assert task.c.rounds.n_final_committed(task.round_id) == 2


def test_reveals_wait_for_every_final_commitment_or_the_window(task):
    """No verdict is revealed while a member that committed one may still commit its final flag; once the
    window closed the others reveal, and the member without a final commitment cannot: a no-show."""
    to_ends(task)
    late, *prompt = task.committee
    task.commit_finals(prompt)
    for v in prompt:
        with brownie.reverts("rounds: committee still committing"):
            task.reveal_verdict(v)
    chain.mine(task.round["commit_deadline"] - chain.height)  # the next transaction executes past the window
    with brownie.reverts("rounds: commit window closed"):
        task.commit_final(late)
    for v in prompt:
        task.reveal_verdict(v)
    for final_ok in (True, False):
        with brownie.reverts("rounds: final flag does not match commitment"):
            task.reveal_verdict(late, final_ok=final_ok)
    with brownie.reverts("rounds: verdicts still being revealed"):
        task.finalize()
    chain.mine(task.round["deadline"] - chain.height)
    with brownie.reverts("rounds: reveal window closed"):
        task.reveal_verdict(late)
    tx = task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED  # 2 reveals = quorum
    assert [e["who"] for e in tx.events["PenaltyApplied"]] == [late.address]
    assert task.c.sm.stake_of(late) == VERIFIER_STAKE - P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)
    for v in prompt:
        assert task.c.sm.stake_of(v) == VERIFIER_STAKE and task.c.sm.claimable(v) == PARAMS.verifier_reward_wei


def test_reveals_start_as_soon_as_every_final_flag_is_committed(task):
    to_ends(task)
    *early, last = task.committee
    task.commit_finals(early)
    with brownie.reverts("rounds: committee still committing"):
        task.reveal_verdict(early[0])
    task.commit_final(last)
    assert chain.height < task.round["commit_deadline"]
    task.reveal_verdict(early[0])


def test_a_final_flag_other_than_the_committed_one_does_not_open(task):
    to_ends(task)
    a, b, d = task.committee
    task.commit_final(a, final_ok=True)
    task.commit_final(b, final_ok=False)
    # d's final commitment under another salt than its verdict's: neither flag opens it
    task.c.rounds.commit_verdict(task.round_id, P.compute_final_commitment(task.round_id, d.address, True, rand32()), {"from": d})
    with brownie.reverts("rounds: final flag does not match commitment"):
        task.reveal_verdict(a, final_ok=False)
    with brownie.reverts("rounds: final flag does not match commitment"):
        task.reveal_verdict(b, final_ok=True)
    for final_ok in (True, False):
        with brownie.reverts("rounds: final flag does not match commitment"):
            task.reveal_verdict(d, final_ok=final_ok)
    assert task.reveal_verdict(a).events["VerdictRevealed"]["contradicts"] is False
    ev = task.reveal_verdict(b).events["VerdictRevealed"]
    assert ev["final_ok"] is False and ev["contradicts"] is True
    assert task.round["n_revealed"] == 2 and task.round["n_contradicting"] == 1


def test_no_commit_after_the_round_is_finalized(task):
    task.run()
    with brownie.reverts("rounds: not accepting verdicts"):
        task.c.rounds.commit_verdict(task.round_id, rand32(), {"from": task.committee[0]})
