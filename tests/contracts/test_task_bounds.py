"""Deployment-wide bounds on task parameters (issue #13, attacks 1 and 2): TaskRegistry.create_task
refuses windows outside [min, max], slash fractions above their caps and a zero verifier reward, with
the bound in words; the bounds are fixed in the constructor; node.protocol.check_task_bounds (the
Python reference) agrees with the contract's rule on random inputs."""
from dataclasses import replace

import brownie
import pytest
from brownie.exceptions import VirtualMachineError
from hypothesis import HealthCheck, given, settings, strategies as st

from node import protocol as P
from node.chain.contracts import DeployParams

from conftest import BOUNDS, PARAMS, rand32

D = DeployParams()


def create(c, creator, params, value=10**18):
    return c.registry.create_task("bafy-spec", rand32(), rand32(), "bafy-gen", params.as_tuple(), {"from": creator, "value": value})


def test_bounds_are_the_deployment_defaults(c):
    # the suite deploys without the new-task notice (its rounds start at once); the default has one
    assert tuple(c.registry.bounds()) == BOUNDS == (P.MIN_WINDOW_BLOCKS, P.MAX_WINDOW_BLOCKS, P.MAX_TRAINER_SLASH_BPS,
                                                     P.MAX_VERIFIER_SLASH_BPS, P.MAX_NO_SHOW_SLASH_BPS, 0)
    assert D.notice_blocks == P.TASK_NOTICE_BLOCKS > 0


@pytest.mark.parametrize("change", [
    {"reveal_window": D.min_window_blocks, "commit_verdicts_window": D.min_window_blocks, "reveal_verdicts_window": D.min_window_blocks},
    {"reveal_window": D.max_window_blocks, "commit_verdicts_window": D.max_window_blocks, "reveal_verdicts_window": D.max_window_blocks},
    {"trainer_slash_bps": D.max_trainer_slash_bps, "verifier_slash_bps": D.max_verifier_slash_bps,
     "no_show_slash_bps": D.max_no_show_slash_bps},
    {"verifier_reward_wei": 1},
    {"segment_steps": P.MAX_SPAN_STEPS // 2, "steps_per_round": 8 * (P.MAX_SPAN_STEPS // 2)},  # its last check is disputable
])
def test_params_on_the_bounds_are_accepted(c, deployer, change):
    params = replace(PARAMS, **change)
    P.check_task_bounds(params, D)  # the reference accepts them too
    tx = create(c, deployer, params)
    assert tuple(int(x) for x in c.registry.task_params(tx.return_value)) == params.as_tuple()


@pytest.mark.parametrize("change, reason", [
    ({"reveal_window": D.min_window_blocks - 1}, "rules: window below the deployment minimum"),
    ({"commit_verdicts_window": D.min_window_blocks - 1}, "rules: window below the deployment minimum"),
    ({"reveal_verdicts_window": D.min_window_blocks - 1}, "rules: window below the deployment minimum"),
    ({"reveal_window": D.max_window_blocks + 1}, "rules: window above the deployment maximum"),
    ({"reveal_verdicts_window": 2**200}, "rules: window above the deployment maximum"),  # attack 2
    ({"commit_verdicts_window": D.max_window_blocks + 1}, "rules: window above the deployment maximum"),
    ({"no_show_slash_bps": D.max_no_show_slash_bps + 1}, "rules: no-show slash above the cap"),
    ({"no_show_slash_bps": 10_000}, "rules: no-show slash above the cap"),  # attack 1
    ({"verifier_slash_bps": D.max_verifier_slash_bps + 1}, "rules: verifier slash above the cap"),
    ({"verifier_reward_wei": 0}, "rules: zero verifier reward"),
    # a check no dispute could narrow (the last one spans 2k steps > MAX_SPAN_STEPS): found by the whitepaper review of #15
    ({"segment_steps": P.MAX_SPAN_STEPS // 2 + 1, "steps_per_round": 8 * (P.MAX_SPAN_STEPS // 2 + 1)}, "rules: segment too long to dispute"),
])
def test_params_outside_the_bounds_are_refused(c, deployer, change, reason):
    params = replace(PARAMS, **change)
    with pytest.raises(ValueError, match=reason):
        P.check_task_params(params)
        P.check_task_bounds(params, D)
    with brownie.reverts(reason):
        create(c, deployer, params)
    assert c.registry.task_count() == 0


def test_a_deployment_with_a_lower_trainer_cap(deployer):
    """The caps are the deployment's: a registry deployed with a 40% trainer cap refuses 50%."""
    from brownie import ModelOracle, StakeManager, TaskRegistry

    bounds = replace(D, max_trainer_slash_bps=4_000)
    sm = StakeManager.deploy(1, 1, 1, {"from": deployer})
    registry = TaskRegistry.deploy(sm, ModelOracle.deploy({"from": deployer}), bounds.task_bounds, {"from": deployer})
    assert tuple(registry.bounds()) == bounds.task_bounds
    with brownie.reverts("rules: trainer slash above the cap"):
        registry.create_task("bafy", rand32(), rand32(), "bafy", replace(PARAMS, trainer_slash_bps=5_000).as_tuple(),
                             {"from": deployer, "value": 10**18})


@pytest.mark.parametrize("change, reason", [
    ({"min_window_blocks": 0}, "rules: bad window bounds"),
    ({"min_window_blocks": 11, "max_window_blocks": 10}, "rules: bad window bounds"),
    ({"max_no_show_slash_bps": 10_001}, "rules: cap above 10000"),
    ({"max_trainer_slash_bps": 10_001}, "rules: cap above 10000"),
    ({"notice_blocks": 1_001, "max_window_blocks": 1_000}, "rules: notice above the window maximum"),
])
def test_bad_bounds_are_refused_at_deploy(deployer, change, reason):
    from brownie import ModelOracle, StakeManager, TaskRegistry

    sm = StakeManager.deploy(1, 1, 1, {"from": deployer})
    oracle = ModelOracle.deploy({"from": deployer})
    with brownie.reverts(reason):
        TaskRegistry.deploy(sm, oracle, replace(D, **change).task_bounds, {"from": deployer})


st_window = st.integers(min_value=1, max_value=2_000) | st.sampled_from([3, 4, 5, 999, 1_000, 1_001])
st_bps = st.integers(min_value=0, max_value=10_000) | st.sampled_from([999, 1_000, 1_001])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(w=st.tuples(st_window, st_window, st_window), bps=st.tuples(st_bps, st_bps, st_bps),
       caps=st.tuples(st_bps, st_bps, st_bps), lo=st.integers(1, 10), hi=st.integers(10, 1_500))
def test_reference_agrees_with_the_contract(staked, w, bps, caps, lo, hi):
    params = replace(PARAMS, reveal_window=w[0], commit_verdicts_window=w[1], reveal_verdicts_window=w[2],
                     trainer_slash_bps=bps[0], verifier_slash_bps=bps[1], no_show_slash_bps=bps[2])
    bounds = replace(D, min_window_blocks=lo, max_window_blocks=hi, max_trainer_slash_bps=caps[0],
                     max_verifier_slash_bps=caps[1], max_no_show_slash_bps=caps[2])
    try:
        P.check_task_bounds(params, bounds)
        expected = None
    except ValueError as exc:
        expected = str(exc)
    try:
        assert staked.rules.check_task_bounds(params.as_tuple(), bounds.task_bounds) is True
        got = None
    except VirtualMachineError as exc:
        got = exc.revert_msg
    assert got == expected


NOTICE = 5


def test_no_round_or_slot_of_a_new_task_before_its_notice(deployer):
    """#13 attack 1: verifiers are drawn for every task they have not opted out of, so a new task takes no commit
    (TrainingRounds) and no claim (Epochs) before bounds.notice_blocks have passed — the time a running verifier
    node has to screen the spec and opt out; from opens_block on, both go through."""
    from brownie import accounts, chain

    from conftest import MIN_TRAINER, MIN_VERIFIER, PARAMS, Trace
    from deploy import deploy_all as deploy_wired
    from epochkit import EPOCH_PARAMS

    d = deploy_wired(deployer, replace(D, min_trainer_stake=MIN_TRAINER, min_verifier_stake=MIN_VERIFIER,
                                       notice_blocks=NOTICE))
    registry, rounds, epochs, sm = d["TaskRegistry"], d["TrainingRounds"], d["Epochs"], d["StakeManager"]
    trainers = accounts[1:3]
    for t in trainers:
        sm.stake(P.TRAINER, {"from": t, "value": MIN_TRAINER})
    for v in accounts[3:6]:
        sm.stake(P.VERIFIER, {"from": v, "value": MIN_VERIFIER})
    trace = Trace(rand32(), PARAMS.n_segments, PARAMS.steps_per_round)
    tx = registry.create_task("bafy-spec", rand32(), trace.base, "bafy-gen", PARAMS.as_tuple(),
                              {"from": deployer, "value": 10 * PARAMS.round_cost})
    v1_task, opens = tx.return_value, tx.block_number + NOTICE
    tx = registry.create_task("bafy-spec", rand32(), rand32(), "bafy-gen", EPOCH_PARAMS.as_tuple(),
                              {"from": deployer, "value": 10 * EPOCH_PARAMS.round_cost})
    epoch_task, epoch_opens = tx.return_value, tx.block_number + NOTICE
    assert registry.opens_block(v1_task) == opens == P.compute_task_opens_block(opens - NOTICE, NOTICE)
    assert registry.opens_block(epoch_task) == epoch_opens
    commit = (v1_task, trace.base, trace.data_root, trace.root, trace.proof(0))
    with brownie.reverts("rounds: task not open yet"):
        rounds.commit(*commit, {"from": trainers[0]})
    with brownie.reverts("epochs: task not open yet"):
        epochs.claim(epoch_task, epochs.current_epoch(epoch_task), 0, {"from": trainers[1]})
    chain.mine(max(0, opens - chain.height - 1))  # the next transaction is mined in block `opens`
    tx = rounds.commit(*commit, {"from": trainers[0]})
    assert tx.block_number == opens and rounds.rounds(tx.return_value)[5] == P.Phase.COMMITTED
    chain.mine(max(0, epoch_opens - chain.height - 1))
    tx = epochs.claim(epoch_task, epochs.current_epoch(epoch_task), 0, {"from": trainers[1]})
    assert tx.block_number >= epoch_opens and tx.events["SlotClaimed"]["trainer"] == trainers[1]
