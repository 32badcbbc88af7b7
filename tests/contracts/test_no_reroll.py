"""No re-roll (issue #13, attack 4): a re-commit of the same (task, base, trace root) is sealed with
the seed of its first seal, and a trainer that withholds after a seal pays at least the fraud slash."""
import brownie
from brownie import chain, web3
from hypothesis import HealthCheck, given, settings, strategies as st

from node import protocol as P
from conftest import MIN_TRAINER, PARAMS, TRAINER_STAKE, Trace, rand32

FRAUD_BPS = PARAMS.trainer_slash_bps


def withhold_starts(task):
    chain.mine(PARAMS.reveal_window + 1)
    return task.finalize()


def test_recommit_of_the_same_trace_reuses_the_first_seed(task, staked, trainer):
    task.commit()
    tx = task.seal()
    first_seed, first_samples, first_committee = bytes(task.round["seed"]), task.samples, task.committee
    key = P.compute_trace_key(task.task_id, task.trace.base, task.trace.root)
    assert bytes(staked.rounds.first_seed(key)) == first_seed == bytes(tx.events["RoundSealed"]["seed"])
    withhold_starts(task)
    assert task.outcome == P.Outcome.ABANDONED
    # the same roots again: another round id and seal block, the same seed, samples and committee
    trace = task.trace
    task.commit(trace)
    seal_tx = task.seal()
    fresh = P.compute_seed(bytes(web3.eth.get_block(task.round["commit_block"] + PARAMS.seal_delay_blocks)["hash"]), task.round_id)
    assert fresh != first_seed
    assert bytes(seal_tx.events["RoundSealed"]["seed"]) == first_seed
    assert (task.samples, task.committee) == (first_samples, first_committee)


def test_the_honest_trace_can_be_committed_again_and_accepted(task, staked):
    """After a void round (the committee did not show), the same honest trace is accepted on a re-commit."""
    task.commit()
    task.seal()
    task.reveal_starts()
    chain.mine(PARAMS.commit_verdicts_window + 1)
    task.reveal_ends()
    chain.mine(PARAMS.reveal_verdicts_window + 1)
    task.finalize()
    assert task.outcome == P.Outcome.VOID
    task.commit(task.trace)
    task.finish()
    assert task.outcome == P.Outcome.ACCEPTED


def test_another_trace_root_gets_a_fresh_seed(task, staked):
    task.commit()
    task.seal()
    first_seed = bytes(task.round["seed"])
    withhold_starts(task)
    task.commit(Trace(task.canonical, PARAMS.n_segments, PARAMS.steps_per_round))
    task.seal()
    fresh = P.compute_seed(bytes(web3.eth.get_block(task.round["commit_block"] + PARAMS.seal_delay_blocks)["hash"]), task.round_id)
    assert bytes(task.round["seed"]) == fresh != first_seed


def test_withholding_after_the_seal_costs_the_fraud_slash(task, staked, trainer):
    task.commit()
    task.seal()
    tx = withhold_starts(task)
    lost = P.compute_slash(MIN_TRAINER, FRAUD_BPS)
    assert staked.sm.stake_of(trainer) == TRAINER_STAKE - lost
    assert [(e["who"], e["amount"], e["reason"]) for e in tx.events["PenaltyApplied"]] == [(trainer, lost, "missed deadline")]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(task_id=st.integers(0, 2**256 - 1), base=st.binary(min_size=32, max_size=32), root=st.binary(min_size=32, max_size=32),
       fraud=st.integers(0, 10_000), no_show=st.integers(0, 10_000))
def test_reference_agrees_with_the_contract(staked, task_id, base, root, fraud, no_show):
    assert bytes(staked.rules.compute_trace_key(task_id, base, root)) == P.compute_trace_key(task_id, base, root)
    assert staked.rules.compute_trainer_miss_bps(fraud, no_show) == P.compute_trainer_miss_bps(fraud, no_show) >= fraud
