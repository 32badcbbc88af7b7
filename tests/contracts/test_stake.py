"""StakeManager: staking by role, minimums, unbonding, reservations, claims, the active verifier set."""
import brownie
import pytest
from brownie import chain

from node import protocol as P
from conftest import BOUNDS, MIN_TRAINER, MIN_VERIFIER, UNBONDING, VERIFIER_STAKE


def test_stake_by_role_and_minimum(c, trainer, verifiers):
    with brownie.reverts("stake: below minimum"):
        c.sm.stake(P.TRAINER, {"from": trainer, "value": MIN_TRAINER - 1})
    tx = c.sm.stake(P.TRAINER, {"from": trainer, "value": MIN_TRAINER})
    assert tx.events["Staked"]["total"] == MIN_TRAINER
    assert c.sm.role_of(trainer) == P.TRAINER and c.sm.is_eligible(trainer, P.TRAINER)
    c.sm.stake(P.TRAINER, {"from": trainer, "value": 1})  # top-up needs no minimum once above it
    assert c.sm.stake_of(trainer) == MIN_TRAINER + 1
    with brownie.reverts("stake: address has another role"):
        c.sm.stake(P.VERIFIER, {"from": trainer, "value": MIN_VERIFIER})
    with brownie.reverts("stake: unknown role"):
        c.sm.stake(3, {"from": verifiers[0], "value": MIN_VERIFIER})
    with brownie.reverts("stake: zero value"):
        c.sm.stake(P.VERIFIER, {"from": verifiers[0], "value": 0})
    assert c.sm.balance() == MIN_TRAINER + 1


def test_verifier_set_follows_stake(c, verifiers):
    for v in verifiers[:3]:
        tx = c.sm.stake(P.VERIFIER, {"from": v, "value": MIN_VERIFIER})
        assert "VerifierActivated" in tx.events
    assert list(c.sm.active_verifier_list()) == [v.address for v in verifiers[:3]]
    tx = c.sm.request_unstake(1, {"from": verifiers[0]})  # below minimum: leaves the set
    assert "VerifierDeactivated" in tx.events
    assert list(c.sm.active_verifier_list()) == [verifiers[2].address, verifiers[1].address]  # swap-and-pop
    assert c.sm.active_verifier_count() == 2
    c.sm.stake(P.VERIFIER, {"from": verifiers[0], "value": 1})  # back to the minimum: back in
    assert c.sm.active_verifier_count() == 3 and c.sm.active_verifiers(2) == verifiers[0]


def test_unstake_then_withdraw_after_unbonding(c, verifiers):
    v = verifiers[0]
    c.sm.stake(P.VERIFIER, {"from": v, "value": 3 * MIN_VERIFIER})
    with brownie.reverts("stake: zero amount"):
        c.sm.request_unstake(0, {"from": v})
    with brownie.reverts("stake: amount exceeds stake"):
        c.sm.request_unstake(3 * MIN_VERIFIER + 1, {"from": v})
    with brownie.reverts("stake: nothing pending"):
        c.sm.withdraw({"from": v})
    tx = c.sm.request_unstake(MIN_VERIFIER, {"from": v})
    assert tx.events["UnstakeRequested"]["unlock_block"] == tx.block_number + UNBONDING
    with brownie.reverts("stake: still unbonding"):
        c.sm.withdraw({"from": v})
    chain.mine(UNBONDING)
    before = v.balance()
    tx = c.sm.withdraw({"from": v})
    assert tx.events["Withdrawn"]["amount"] == MIN_VERIFIER
    assert v.balance() == before + MIN_VERIFIER
    assert c.sm.stake_of(v) == 2 * MIN_VERIFIER and c.sm.stakers(v).dict()["pending"] == 0
    with brownie.reverts("stake: nothing pending"):
        c.sm.withdraw({"from": v})


def test_unstake_cannot_take_reserved_stake(task, staked, trainer):
    """An open round reserves the trainer's minimum and each seat's (issue #13, attack 7): only the
    free part of a stake can be unstaked while it is open."""
    task.commit()
    free = staked.sm.free_stake(trainer)
    assert free == staked.sm.stake_of(trainer) - MIN_TRAINER
    with brownie.reverts("stake: amount exceeds the free stake (reserved by open rounds)"):
        staked.sm.request_unstake(free + 1, {"from": trainer})
    task.seal()
    for v in task.committee:
        with brownie.reverts("stake: amount exceeds the free stake (reserved by open rounds)"):
            staked.sm.request_unstake(VERIFIER_STAKE - MIN_VERIFIER + 1, {"from": v})
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    task.finalize()
    staked.sm.request_unstake(1, {"from": trainer})
    for v in task.committee:
        staked.sm.request_unstake(VERIFIER_STAKE, {"from": v})
    chain.mine(UNBONDING)
    staked.sm.withdraw({"from": trainer})


def test_claim_rewards(task, staked, trainer, outsider):
    with brownie.reverts("stake: nothing to claim"):
        staked.sm.claim({"from": trainer})
    task.run()
    amount = staked.sm.claimable(trainer)
    before = trainer.balance()
    tx = staked.sm.claim({"from": trainer})
    assert tx.events["Claimed"]["amount"] == amount > 0
    assert trainer.balance() == before + amount and staked.sm.claimable(trainer) == 0
    with brownie.reverts("stake: nothing to claim"):
        staked.sm.claim({"from": trainer})


@pytest.mark.parametrize("call", ["lock", "unlock", "slash", "credit"])
def test_only_rounds_may_lock_unlock_slash_credit(staked, deployer, trainer, outsider, call):
    for who in (deployer, trainer, outsider):
        with brownie.reverts("stake: only an authorized protocol contract"):
            if call == "slash":
                staked.sm.slash(trainer, 1, who, {"from": who})
            elif call == "credit":
                staked.sm.credit(who, {"from": who, "value": 1})
            else:
                getattr(staked.sm, call)(trainer, {"from": who})


def test_owner_only_wiring_and_treasury(c, deployer, outsider, trainer):
    # the wiring is frozen at deploy: the owner keeps the treasury, not the power to authorize
    for contract in (c.sm, c.oracle, c.registry):
        for who in (deployer, outsider):
            with brownie.reverts("wiring: only the deployer, before finish_wiring"):
                contract.authorize(outsider, {"from": who})
    with brownie.reverts("stake: only owner"):
        c.sm.withdraw_treasury(outsider, 0, {"from": outsider})
    with brownie.reverts("stake: amount exceeds treasury"):
        c.sm.withdraw_treasury(outsider, 1, {"from": deployer})


def test_treasury_withdrawal_after_a_penalty(task, staked, deployer, outsider):
    task.commit()
    chain.mine(task.params.seal_delay_blocks + 257)
    task.finalize()  # expired: the trainer's penalty goes to the treasury
    amount = staked.sm.treasury()
    assert amount > 0
    before = outsider.balance()
    staked.sm.withdraw_treasury(outsider, amount, {"from": deployer})
    assert outsider.balance() == before + amount and staked.sm.treasury() == 0


def test_wiring_checks_at_deploy(StakeManager, TaskRegistry, TrainingRounds, deployer):
    with brownie.reverts("stake: minimum must be positive"):
        StakeManager.deploy(0, 1, 1, {"from": deployer})
    with brownie.reverts("rounds: zero address"):
        TrainingRounds.deploy("0x" + "00" * 20, deployer, {"from": deployer})
    with brownie.reverts("registry: zero address"):
        TaskRegistry.deploy(deployer, "0x" + "00" * 20, BOUNDS, {"from": deployer})


def test_oracle_record_only_by_rounds_and_lookups(c, deployer, outsider):
    for who in (deployer, outsider):
        with brownie.reverts("oracle: only an authorized writer"):
            c.oracle.record(1, "bafy", b"\x01" * 32, 0, {"from": who})
    with brownie.reverts("oracle: unknown task"):
        c.oracle.latest(1)
    with brownie.reverts("oracle: unknown version"):
        c.oracle.at(1, 0)


def test_oracle_history(task, staked):
    task.run()
    first = task.trace.hashes[-1]
    task.run()
    o = staked.oracle
    assert o.version_count(task.task_id) == 3
    assert o.at(task.task_id, 0)[0] == "bafy-genesis" and bytes(o.at(task.task_id, 0)[1]) == task.genesis
    assert bytes(o.at(task.task_id, 1)[1]) == first and o.at(task.task_id, 1)[2] == 1
    assert tuple(o.latest(task.task_id)) == tuple(o.at(task.task_id, 2))
    with brownie.reverts("oracle: unknown version"):
        o.at(task.task_id, 3)


def test_node_contracts_deploy_matches_brownie(web3, deployer):
    """node.chain.contracts compiles with the vyper package and deploys through plain web3."""
    from node.chain.contracts import WIRING, DeployParams, contract, deploy

    addresses = deploy(web3, deployer.address, DeployParams(min_trainer_stake=5, min_verifier_stake=7, unbonding_blocks=3))
    sm = contract(web3, "StakeManager", addresses["StakeManager"])
    for name, callers in WIRING.items():
        fns = contract(web3, name, addresses[name]).functions
        assert [fns.authorized_callers(i).call() for i in range(len(callers))] == [addresses[c] for c in callers]
        assert fns.wiring_admin().call() == "0x" + "00" * 20
    assert sm.functions.min_stake(P.VERIFIER).call() == 7 and sm.functions.unbonding_blocks().call() == 3
