"""Who may call what, as one table: each restricted call from each wrong caller reverts with its reason."""
import brownie
import pytest

from conftest import rand32

ZERO = "0x" + "00" * 20
SM_ONLY = "stake: only an authorized protocol contract"
REGISTRY_ONLY = "registry: only an authorized protocol contract"
WIRED = "wiring: only the deployer, before finish_wiring"


def sealed(task):
    task.commit()
    task.seal()
    return task


# (name, setup, call(task, c, caller), wrong callers, reason)
TABLE = [
    ("sm.withdraw_treasury", None, lambda t, c, who: c.sm.withdraw_treasury(who, 0, {"from": who}), ["trainer", "outsider"], "stake: only owner"),
    ("sm.lock", None, lambda t, c, who: c.sm.lock(who, {"from": who}), ["deployer", "trainer", "outsider"], SM_ONLY),
    ("sm.unlock", None, lambda t, c, who: c.sm.unlock(who, {"from": who}), ["deployer", "trainer", "outsider"], SM_ONLY),
    ("sm.slash", None, lambda t, c, who: c.sm.slash(t.trainer, 1, who, {"from": who}), ["deployer", "trainer", "outsider"], SM_ONLY),
    ("sm.credit", None, lambda t, c, who: c.sm.credit(who, {"from": who, "value": 1}), ["deployer", "trainer", "outsider"], SM_ONLY),
    ("oracle.record", None, lambda t, c, who: c.oracle.record(1, "bafy", rand32(), 0, {"from": who}), ["deployer", "trainer", "outsider"], "oracle: only an authorized writer"),
    ("registry.pay", None, lambda t, c, who: c.registry.pay(t.task_id, [who], [1], {"from": who}), ["deployer", "trainer", "outsider"], REGISTRY_ONLY),
    ("registry.reserve", None, lambda t, c, who: c.registry.reserve(t.task_id, {"from": who}), ["deployer", "trainer", "outsider"], REGISTRY_ONLY),
    ("registry.release", None, lambda t, c, who: c.registry.release(t.task_id, {"from": who}), ["deployer", "trainer", "outsider"], REGISTRY_ONLY),
    ("registry.close_task", None, lambda t, c, who: c.registry.close_task(t.task_id, {"from": who}), ["trainer", "outsider"], "registry: only the task's creator"),
    ("registry.withdraw_pool", None, lambda t, c, who: c.registry.withdraw_pool(t.task_id, {"from": who}), ["trainer", "outsider"], "registry: only the task's creator"),
    ("registry.advance", None, lambda t, c, who: c.registry.advance(t.task_id, 1, rand32(), "bafy", {"from": who}), ["deployer", "trainer", "outsider"], REGISTRY_ONLY),
    # the wiring is frozen at deploy: nobody, the deployer included, can authorize another caller
    *[(f"{name}.authorize", None, lambda t, c, who, name=name: getattr(c, name).authorize(who, {"from": who}), ["deployer", "trainer", "outsider"], WIRED)
      for name in ("sm", "oracle", "registry")],
    *[(f"{name}.finish_wiring", None, lambda t, c, who, name=name: getattr(c, name).finish_wiring({"from": who}), ["deployer", "outsider"], WIRED)
      for name in ("sm", "oracle", "registry")],
    ("rounds.commit", None, lambda t, c, who: c.rounds.commit(t.task_id, t.canonical, rand32(), rand32(), [], {"from": who}), ["deployer", "member", "outsider"], "rounds: not a staked trainer"),
    ("rounds.reveal_starts", sealed, lambda t, c, who: c.rounds.reveal_starts(t.round_id, [], [], [], {"from": who}), ["deployer", "member", "outsider"], "rounds: only the trainer"),
    ("rounds.commit_verdict", "starts", lambda t, c, who: c.rounds.commit_verdict(t.round_id, rand32(), {"from": who}), ["deployer", "trainer", "outsider"], "rounds: not in committee"),
    ("rounds.reveal_ends", "committed", lambda t, c, who: c.rounds.reveal_ends(t.round_id, [], [], "bafy", {"from": who}), ["deployer", "member", "outsider"], "rounds: only the trainer"),
    # the second commit_verdict, after the ends (issue #13, attack 5): only a member with a verdict commitment
    ("rounds.commit_verdict.final", "ends", lambda t, c, who: c.rounds.commit_verdict(t.round_id, rand32(), {"from": who}), ["deployer", "trainer", "outsider"], "rounds: no commitment"),
    ("rounds.reveal_verdict", "ends", lambda t, c, who: c.rounds.reveal_verdict(t.round_id, [], True, rand32(), True, True, {"from": who}), ["deployer", "trainer", "outsider"], "rounds: no commitment"),
]


def advance(task, stage):
    if stage is None:
        return
    if stage is sealed:
        sealed(task)
        return
    sealed(task)
    task.reveal_starts()
    if stage == "starts":
        return
    for v in task.committee:
        task.commit_verdict(v)
    if stage == "committed":
        return
    task.reveal_ends()
    task.commit_finals(task.committee)


@pytest.mark.parametrize("name, stage, call, wrong, reason", TABLE, ids=[row[0] for row in TABLE])
def test_restricted_calls_refuse_wrong_callers(task, staked, deployer, outsider, name, stage, call, wrong, reason):
    advance(task, stage)
    member = getattr(task, "committee", [outsider])[0]
    who = {"deployer": deployer, "trainer": task.trainer, "outsider": outsider, "member": member}
    for kind in wrong:
        with brownie.reverts(reason):
            call(task, staked, who[kind])


def test_open_calls_anyone_may_make(task, staked, outsider):
    """seal and finalize are open to anyone (the protocol must not stall on one party)."""
    task.commit()
    task.mine_to_seal()
    staked.rounds.seal(task.round_id, {"from": outsider})
    task.samples = list(staked.rounds.round_samples_of(task.round_id))
    task.committee = [brownie.accounts.at(a) for a in staked.rounds.committee_of(task.round_id)]
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    staked.rounds.finalize(task.round_id, {"from": outsider})
    assert task.round["outcome"] == 1


def test_wiring_is_the_deployment_and_frozen(staked, deployer):
    """Who may call what is exactly what node.chain.contracts.deploy wires, and no admin is left."""
    c = staked
    assert [c.sm.authorized_callers(i) for i in range(2)] == [c.rounds, c.registry]
    assert c.oracle.authorized_callers(0) == c.registry and c.registry.authorized_callers(0) == c.rounds
    for contract in (c.sm, c.oracle, c.registry):
        assert contract.wiring_admin() == ZERO
        assert not contract.is_authorized(deployer)
    assert c.registry.oracle() == c.oracle and c.registry.stake_manager() == c.sm and c.rounds.registry() == c.registry


def test_wiring_checks_and_events(deployer, outsider):
    """Before finish_wiring: no zero address, no duplicate, an event per caller; finish needs a caller."""
    from brownie import ModelOracle

    oracle = ModelOracle.deploy({"from": deployer})
    with brownie.reverts("wiring: no caller authorized"):
        oracle.finish_wiring({"from": deployer})
    with brownie.reverts("wiring: caller is the zero address"):
        oracle.authorize(ZERO, {"from": deployer})
    tx = oracle.authorize(outsider, {"from": deployer})
    assert tx.events["CallerAuthorized"]["caller"] == outsider
    with brownie.reverts("wiring: caller already authorized"):
        oracle.authorize(outsider, {"from": deployer})
    tx = oracle.finish_wiring({"from": deployer})
    assert list(tx.events["WiringFinished"]["callers"]) == [outsider]
    oracle.record(7, "bafy", rand32(), 0, {"from": outsider})  # the authorized caller writes
    assert oracle.version_count(7) == 1


def test_registry_pay_and_advance_checks(staked, deployer, outsider, trainer):
    """A registry whose authorized caller is an account: pay moves pool wei to claimable balances,
    never more than the pool, with an event; advance moves the canonical state and appends to the oracle."""
    from brownie import ModelOracle, StakeManager, TaskRegistry

    from conftest import BOUNDS, MIN_TRAINER, MIN_VERIFIER, PARAMS, UNBONDING

    sm = StakeManager.deploy(MIN_TRAINER, MIN_VERIFIER, UNBONDING, {"from": deployer})
    oracle = ModelOracle.deploy({"from": deployer})
    registry = TaskRegistry.deploy(sm, oracle, BOUNDS, {"from": deployer})
    for contract in (sm, oracle):
        contract.authorize(registry, {"from": deployer})
        contract.finish_wiring({"from": deployer})
    registry.authorize(outsider, {"from": deployer})
    registry.finish_wiring({"from": deployer})
    pool = 3 * PARAMS.round_cost
    task_id = registry.create_task("bafy-spec", rand32(), rand32(), "bafy-gen", PARAMS.as_tuple(),
                                   {"from": deployer, "value": pool}).return_value
    with brownie.reverts("registry: payees and amounts differ in length"):
        registry.pay(task_id, [trainer], [1, 2], {"from": outsider})
    with brownie.reverts("registry: nothing reserved"):  # pay frees the reservation a commit made
        registry.pay(task_id, [trainer], [1], {"from": outsider})
    for _ in range(3):
        registry.reserve(task_id, {"from": outsider})
    with brownie.reverts("registry: task pool exhausted"):  # a 4th round is not covered
        registry.reserve(task_id, {"from": outsider})
    assert registry.reserved(task_id) == pool
    with brownie.reverts("registry: pool exhausted"):
        registry.pay(task_id, [trainer, deployer], [pool, 1], {"from": outsider})
    tx = registry.pay(task_id, [trainer, deployer], [5, 7], {"from": outsider})
    assert registry.reserved(task_id) == pool - PARAMS.round_cost
    assert (tx.events["PoolPaid"]["total"], tx.events["PoolPaid"]["pool"]) == (12, pool - 12)
    assert registry.tasks(task_id).dict()["pool"] == pool - 12 and registry.balance() == pool - 12
    assert (sm.claimable(trainer), sm.claimable(deployer), sm.balance()) == (5, 7, 12)
    new_hash = rand32()
    tx = registry.advance(task_id, 9, new_hash, "bafy-next", {"from": outsider})
    assert tx.events["TaskAdvanced"]["rounds_accepted"] == 1
    task = registry.tasks(task_id).dict()
    assert (bytes(task["canonical_hash"]), task["canonical_cid"]) == (new_hash, "bafy-next")
    assert oracle.version_count(task_id) == 2 and oracle.latest(task_id)[3] == 9
