"""Whole rounds: honest, fraud, void, minority — who is paid, who is slashed, what the oracle says."""
import brownie
from brownie import chain

from node import protocol as P
from conftest import MIN_TRAINER, MIN_VERIFIER, PARAMS, TRAINER_STAKE, VERIFIER_STAKE


def test_honest_round_pays_trainer_and_committee_and_updates_oracle(task, staked, trainer):
    c = staked
    pool_before = c.registry.tasks(task.task_id).dict()["pool"]
    tx = task.run()
    assert task.outcome == P.Outcome.ACCEPTED
    assert tx.events["RoundFinalized"]["outcome"] == P.Outcome.ACCEPTED
    assert c.sm.claimable(trainer) == PARAMS.trainer_reward_wei
    for v in task.committee:
        assert c.sm.claimable(v) == PARAMS.verifier_reward_wei
        assert c.sm.stake_of(v) == VERIFIER_STAKE
    assert c.registry.tasks(task.task_id).dict()["pool"] == pool_before - PARAMS.round_cost
    cid, state_hash, version, round_id, block_number, _ = c.oracle.latest(task.task_id)
    assert (cid, bytes(state_hash), version, round_id) == ("bafy-final", task.trace.hashes[-1], 1, task.round_id)
    assert tx.events["CanonicalModelUpdated"]["version"] == 1
    assert c.registry.tasks(task.task_id).dict()["canonical_hash"] == "0x" + task.trace.hashes[-1].hex()
    # reservations released: everyone can unstake again
    for who in [trainer, *task.committee]:
        assert c.sm.reserved(who) == 0


def test_next_round_builds_on_the_new_canonical_state(task, staked):
    task.run()
    old_base = task.trace.base
    with brownie.reverts("rounds: base hash is not canonical"):
        staked.rounds.commit(task.task_id, old_base, task.trace.data_root, task.trace.root, task.trace.proof(0), {"from": task.trainer})
    task.run()
    assert task.outcome == P.Outcome.ACCEPTED
    assert staked.oracle.latest(task.task_id)[2] == 2


def test_fraud_round_slashes_trainer_and_pays_majority(task, staked, trainer):
    c = staked
    task.commit()
    task.seal()
    task.reveal_starts()
    liar_ends = [bytes(32 * [7]) for _ in task.samples]
    honest, *majority = task.committee  # 1 agrees with the trainer, 2 contradict
    task.commit_verdict(honest)
    for v in majority:
        task.commit_verdict(v, ends=liar_ends)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    tx = task.finalize()
    assert task.outcome == P.Outcome.FRAUD
    slashed = P.compute_slash(MIN_TRAINER, PARAMS.trainer_slash_bps)
    per_verifier, to_treasury = P.compute_fraud_split(slashed, PARAMS.fraud_reward_bps, 2)
    assert c.sm.stake_of(trainer) == TRAINER_STAKE - slashed
    for v in majority:
        assert c.sm.claimable(v) == per_verifier
    minority_slash = P.compute_slash(MIN_VERIFIER, PARAMS.verifier_slash_bps)
    assert c.sm.stake_of(honest) == VERIFIER_STAKE - minority_slash
    assert c.sm.treasury() == to_treasury + minority_slash
    assert c.sm.claimable(trainer) == 0
    assert c.oracle.latest(task.task_id)[2] == 0  # canonical unchanged
    assert "CanonicalModelUpdated" not in tx.events


def test_minority_verifier_is_slashed_in_an_accepted_round(task, staked):
    c = staked
    task.commit()
    task.seal()
    task.reveal_starts()
    liar, *honest = task.committee
    task.commit_verdict(liar, ends=[bytes(32) for _ in task.samples])
    for v in honest:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED
    assert c.sm.stake_of(liar) == VERIFIER_STAKE - P.compute_slash(MIN_VERIFIER, PARAMS.verifier_slash_bps)
    assert c.sm.claimable(liar) == 0
    for v in honest:
        assert c.sm.claimable(v) == PARAMS.verifier_reward_wei


def test_starts_flag_is_committed_before_the_ends_final_flag_after(task, staked):
    """Issue #13, attack 5: starts_ok is inside the verdict commitment (a committed False contradicts; a
    False revealed over a committed True does not open the commitment); final_ok, knowable only after
    the ends, has its own commitment after them (the second commit_verdict) and counts (a swapped final
    checkpoint is fraud); a final flag other than the committed one does not open it either."""
    task.commit()
    task.seal()
    task.reveal_starts()
    a, b, d = task.committee
    task.commit_verdict(a, starts_ok=False)  # a start checkpoint that did not hash (or never came in time)
    task.commit_verdict(b)
    task.commit_verdict(d)
    task.reveal_ends()
    task.commit_finals([a, d])
    task.commit_final(b, final_ok=False)  # the final checkpoint did not hash to h_M
    task.reveal_verdict(a)
    with brownie.reverts("rounds: reveal does not match commitment"):  # a flag other than the committed one
        task.reveal_verdict(b, starts_ok=False)
    with brownie.reverts("rounds: final flag does not match commitment"):
        task.reveal_verdict(b, final_ok=True)
    tx = task.reveal_verdict(b)
    assert tx.events["VerdictRevealed"]["final_ok"] is False and tx.events["VerdictRevealed"]["contradicts"] is True
    task.reveal_verdict(d)
    task.finalize()
    assert task.outcome == P.Outcome.FRAUD
    assert staked.rounds.contradicted(task.round_id, a) and not staked.rounds.contradicted(task.round_id, d)


def test_void_round_when_quorum_missed(task, staked, trainer):
    c = staked
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    task.reveal_verdict(task.committee[0])  # 1 reveal < quorum 2
    with brownie.reverts("rounds: verdicts still being revealed"):
        task.finalize()
    chain.mine(PARAMS.commit_verdicts_window + PARAMS.reveal_verdicts_window + 1)  # the reveal window ends a final-commit window later
    tx = task.finalize()
    assert task.outcome == P.Outcome.VOID
    assert c.sm.stake_of(trainer) == TRAINER_STAKE and c.sm.claimable(trainer) == 0
    assert c.sm.reserved(trainer) == 0
    penalty = P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)
    assert c.sm.stake_of(task.committee[0]) == VERIFIER_STAKE
    for v in task.committee[1:]:
        assert c.sm.stake_of(v) == VERIFIER_STAKE - penalty
    assert c.oracle.latest(task.task_id)[2] == 0
    assert len(tx.events["PenaltyApplied"]) == 2


def test_committee_of_seven_three_liars_are_a_minority(driver, staked):
    from dataclasses import replace

    params = replace(PARAMS, committee_size=7, quorum=4)
    task = driver(params)
    task.commit()
    task.seal()
    assert len(task.committee) == 7 and len(set(task.committee)) == 7
    liars = set(task.committee[:3])
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v, ends=[bytes(32) for _ in task.samples] if v in liars else None)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED
    for v in liars:
        assert staked.sm.stake_of(v) < VERIFIER_STAKE

    task.run()  # next round: committee redrawn, all honest
    assert task.outcome == P.Outcome.ACCEPTED
