"""Task close and pool withdrawal (issue #13): each open round reserves its cost of the pool from
commit to finalize; the creator can close its task (no new rounds, no funding) and take the pool
its open rounds do not reserve, credited to its claimable balance in StakeManager."""
import brownie
from brownie import chain

from node import protocol as P
from conftest import PARAMS, TRAINER_STAKE

COST = PARAMS.round_cost


def test_a_round_reserves_its_cost_from_commit_to_finalize(task, staked):
    tx = task.commit()
    assert staked.registry.reserved(task.task_id) == COST
    assert tx.events["PoolReserved"]["amount"] == COST
    tx = task.finish()
    assert task.outcome == P.Outcome.ACCEPTED
    assert staked.registry.reserved(task.task_id) == 0
    # an accepted round pays and penalizes nobody (the release path is only for the other outcomes)
    assert "PenaltyApplied" not in tx.events
    assert [e["amount"] for e in tx.events["PoolReleased"]] == [COST]  # freed once, by pay
    assert staked.sm.stake_of(task.trainer) == TRAINER_STAKE


def test_a_round_that_is_not_accepted_releases_its_reservation(task, staked):
    task.commit()
    task.seal()
    chain.mine(PARAMS.reveal_window + 1)
    tx = task.finalize()
    assert task.outcome == P.Outcome.ABANDONED
    assert tx.events["PoolReleased"]["amount"] == COST and staked.registry.reserved(task.task_id) == 0
    assert staked.registry.tasks(task.task_id).dict()["pool"] == 10 * COST  # nothing paid


def test_creator_closes_a_free_task_and_gets_the_pool(task, staked, deployer):
    pool = staked.registry.tasks(task.task_id).dict()["pool"]
    claimable = staked.sm.claimable(deployer)
    tx = staked.registry.close_task(task.task_id, {"from": deployer})
    assert tx.events["TaskClosed"]["creator"] == deployer
    assert (tx.events["PoolWithdrawn"]["amount"], tx.events["PoolWithdrawn"]["pool"]) == (pool, 0)
    assert staked.registry.tasks(task.task_id).dict()["pool"] == 0 and staked.registry.closed(task.task_id)
    assert staked.sm.claimable(deployer) == claimable + pool
    balance = deployer.balance()
    staked.sm.claim({"from": deployer})
    assert deployer.balance() == balance + claimable + pool
    with brownie.reverts("registry: task closed"):
        task.commit()
    with brownie.reverts("registry: task closed"):
        staked.registry.fund_task(task.task_id, {"from": deployer, "value": COST})
    with brownie.reverts("registry: task closed"):
        staked.registry.close_task(task.task_id, {"from": deployer})


def test_closing_with_an_open_round_keeps_its_reservation(task, staked, deployer):
    pool = staked.registry.tasks(task.task_id).dict()["pool"]
    task.commit()
    tx = staked.registry.close_task(task.task_id, {"from": deployer})
    assert (tx.events["PoolWithdrawn"]["amount"], tx.events["PoolWithdrawn"]["pool"]) == (pool - COST, COST)
    with brownie.reverts("registry: the rest is reserved by an open round"):
        staked.registry.withdraw_pool(task.task_id, {"from": deployer})
    # the open round still runs to the end and is paid from its reservation
    task.finish()
    assert task.outcome == P.Outcome.ACCEPTED
    left = staked.registry.tasks(task.task_id).dict()["pool"]
    assert left == 0  # the trainer's reward and the whole committee's: exactly one round's cost
    tx = staked.registry.withdraw_pool(task.task_id, {"from": deployer})  # nothing left: no event, no revert
    assert "PoolWithdrawn" not in tx.events
    assert staked.registry.balance() == 0


def test_withdraw_after_a_void_round_returns_its_reservation(task, staked, deployer):
    task.commit()
    staked.registry.close_task(task.task_id, {"from": deployer})
    task.seal()
    chain.mine(PARAMS.reveal_window + 1)
    task.finalize()
    tx = staked.registry.withdraw_pool(task.task_id, {"from": deployer})
    assert (tx.events["PoolWithdrawn"]["amount"], tx.events["PoolWithdrawn"]["pool"]) == (COST, 0)


def test_withdraw_needs_a_closed_task_of_the_caller(task, staked, deployer, outsider):
    with brownie.reverts("registry: task not closed"):
        staked.registry.withdraw_pool(task.task_id, {"from": deployer})
    with brownie.reverts("registry: only the task's creator"):
        staked.registry.close_task(task.task_id, {"from": outsider})
    with brownie.reverts("registry: only the task's creator"):
        staked.registry.close_task(12345, {"from": outsider})
    assert not staked.registry.closed(task.task_id)
