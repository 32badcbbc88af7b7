"""Every missed deadline, and the early-advance rules (deadlines are upper bounds)."""
import brownie
from brownie import chain

from node import protocol as P
from conftest import MIN_TRAINER, MIN_VERIFIER, PARAMS, TRAINER_STAKE, VERIFIER_STAKE, rand32

# a trainer that lets its round expire or abandons it pays at least the fraud slash (#13, no re-roll)
MISS = P.compute_slash(MIN_TRAINER, P.compute_trainer_miss_bps(PARAMS.trainer_slash_bps, PARAMS.no_show_slash_bps))


def test_seal_too_early_then_in_window(task):
    task.commit()
    with brownie.reverts("rounds: seal block not mined yet"):
        task.c.rounds.seal(task.round_id, {"from": task.trainer})
    task.seal()
    assert task.round["phase"] == P.Phase.SEALED


def test_unsealed_round_expires_and_trainer_pays_for_it(task, staked, trainer, outsider):
    task.commit()
    with brownie.reverts("rounds: deadline not passed"):
        task.finalize(outsider)
    chain.mine(PARAMS.seal_delay_blocks + P.BLOCKHASH_HORIZON + 1)
    with brownie.reverts("rounds: seal window closed"):
        staked.rounds.seal(task.round_id, {"from": outsider})
    task.finalize(outsider)
    assert task.outcome == P.Outcome.EXPIRED
    assert staked.sm.stake_of(trainer) == TRAINER_STAKE - MISS
    assert staked.sm.reserved(trainer) == 0
    assert staked.rounds.open_round(task.task_id) == 0


def test_trainer_misses_reveal_starts(task, staked, trainer):
    task.commit()
    task.seal()
    with brownie.reverts("rounds: deadline not passed"):
        task.finalize()
    chain.mine(PARAMS.reveal_window + 1)
    with brownie.reverts("rounds: reveal window closed"):
        task.reveal_starts()
    task.finalize()
    assert task.outcome == P.Outcome.ABANDONED
    assert staked.sm.stake_of(trainer) == TRAINER_STAKE - MISS
    for v in task.committee:  # committee released, not penalized
        assert staked.sm.stake_of(v) == VERIFIER_STAKE
        assert staked.sm.reserved(v) == 0
    assert staked.oracle.latest(task.task_id)[2] == 0


def test_trainer_misses_reveal_ends(task, staked, trainer):
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    chain.mine(PARAMS.commit_verdicts_window + PARAMS.reveal_window + 1)
    with brownie.reverts("rounds: reveal window closed"):
        task.reveal_ends()
    task.finalize()
    assert task.outcome == P.Outcome.ABANDONED
    assert staked.sm.stake_of(trainer) == TRAINER_STAKE - MISS


def test_verifier_misses_commit_window_is_penalized_as_no_show(task, staked):
    task.commit()
    task.seal()
    task.reveal_starts()
    late, *on_time = task.committee
    for v in on_time:
        task.commit_verdict(v)
    with brownie.reverts("rounds: committee still committing"):
        task.reveal_ends()
    chain.mine(PARAMS.commit_verdicts_window + 1)
    with brownie.reverts("rounds: commit window closed"):
        task.commit_verdict(late)
    task.reveal_ends()
    task.commit_finals(on_time)  # the late member has no verdict to complete: reveals need not wait for it
    for v in on_time:
        task.reveal_verdict(v)
    task.finalize()  # every committed member revealed: no need to wait
    assert task.outcome == P.Outcome.ACCEPTED
    assert staked.sm.stake_of(late) == VERIFIER_STAKE - P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)
    assert staked.sm.claimable(late) == 0


def test_verifier_misses_reveal_window(task, staked):
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    silent, *revealers = task.committee
    for v in revealers:
        task.reveal_verdict(v)
    with brownie.reverts("rounds: verdicts still being revealed"):
        task.finalize()
    # the reveal window closes ends_block + commit_verdicts_window + reveal_verdicts_window
    assert task.round["deadline"] == task.round["commit_deadline"] + PARAMS.reveal_verdicts_window
    chain.mine(task.round["deadline"] - chain.height)  # the next transaction executes one block past it
    with brownie.reverts("rounds: reveal window closed"):
        task.reveal_verdict(silent)
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED  # 2 reveals = quorum
    assert staked.sm.stake_of(silent) == VERIFIER_STAKE - P.compute_slash(MIN_VERIFIER, PARAMS.no_show_slash_bps)


def test_round_advances_as_soon_as_everyone_acted(task):
    """No mining between steps beyond the seal delay: every phase ends early."""
    task.commit()
    task.seal()
    start = chain.height
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    task.finalize()
    assert task.outcome == P.Outcome.ACCEPTED
    assert chain.height - start == 3 + 3 * len(task.committee)  # one block per transaction


def test_no_end_hash_is_public_before_commit_window_closes_or_all_committed(task):
    task.commit()
    task.seal()
    task.reveal_starts()
    task.commit_verdict(task.committee[0])
    with brownie.reverts("rounds: committee still committing"):
        task.reveal_ends()
    assert list(task.c.rounds.end_hashes_of(task.round_id)) == []


def test_finalize_twice_or_unknown_round(task, outsider):
    task.run()
    with brownie.reverts("rounds: not open"):
        task.finalize(outsider)
    with brownie.reverts("rounds: not open"):
        task.c.rounds.finalize(999, {"from": outsider})


def test_seal_at_the_last_block_whose_hash_is_still_available(task, staked, web3):
    tx = task.commit()
    last = tx.block_number + PARAMS.seal_delay_blocks + P.BLOCKHASH_HORIZON  # the round's seal deadline
    assert task.round["deadline"] == last
    chain.mine(last - 1 - chain.height)  # the seal transaction is mined in block `last`
    seal = staked.rounds.seal(task.round_id, {"from": task.trainer})
    assert seal.block_number == last
    seed = P.compute_seed(bytes(web3.eth.get_block(tx.block_number + PARAMS.seal_delay_blocks)["hash"]), task.round_id)
    assert bytes(task.round["seed"]) == seed
    assert list(staked.rounds.round_samples_of(task.round_id)) == P.compute_samples(seed, PARAMS.n_segments, PARAMS.samples)


def test_samples_are_empty_before_seal(task):
    task.commit()
    assert list(task.c.rounds.round_samples_of(task.round_id)) == []
