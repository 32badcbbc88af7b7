"""Who may call what, as one table: each restricted call from each wrong caller reverts with its reason."""
import brownie
import pytest

from conftest import rand32

ZERO = "0x" + "00" * 20


def sealed(task):
    task.commit()
    task.seal()
    return task


# (name, setup, call(task, c, caller), wrong callers, reason)
TABLE = [
    ("sm.set_rounds", None, lambda t, c, who: c.sm.set_rounds(who, {"from": who}), ["trainer", "outsider"], "stake: only owner"),
    ("sm.withdraw_treasury", None, lambda t, c, who: c.sm.withdraw_treasury(who, 0, {"from": who}), ["trainer", "outsider"], "stake: only owner"),
    ("sm.lock", None, lambda t, c, who: c.sm.lock(who, {"from": who}), ["deployer", "trainer", "outsider"], "stake: only rounds"),
    ("sm.unlock", None, lambda t, c, who: c.sm.unlock(who, {"from": who}), ["deployer", "trainer", "outsider"], "stake: only rounds"),
    ("sm.slash", None, lambda t, c, who: c.sm.slash(t.trainer, 1, who, {"from": who}), ["deployer", "trainer", "outsider"], "stake: only rounds"),
    ("sm.credit", None, lambda t, c, who: c.sm.credit(who, {"from": who, "value": 1}), ["deployer", "trainer", "outsider"], "stake: only rounds"),
    ("oracle.set_writer", None, lambda t, c, who: c.oracle.set_writer(who, {"from": who}), ["trainer", "outsider"], "oracle: only owner"),
    ("oracle.record", None, lambda t, c, who: c.oracle.record(1, "bafy", rand32(), 0, {"from": who}), ["deployer", "trainer", "outsider"], "oracle: only rounds"),
    ("rounds.commit", None, lambda t, c, who: c.rounds.commit(t.task_id, t.canonical, rand32(), rand32(), [], {"from": who}), ["deployer", "member", "outsider"], "rounds: not a staked trainer"),
    ("rounds.reveal_starts", sealed, lambda t, c, who: c.rounds.reveal_starts(t.round_id, [], [], [], {"from": who}), ["deployer", "member", "outsider"], "rounds: only the trainer"),
    ("rounds.commit_verdict", "starts", lambda t, c, who: c.rounds.commit_verdict(t.round_id, rand32(), {"from": who}), ["deployer", "trainer", "outsider"], "rounds: not in committee"),
    ("rounds.reveal_ends", "committed", lambda t, c, who: c.rounds.reveal_ends(t.round_id, [], [], "bafy", {"from": who}), ["deployer", "member", "outsider"], "rounds: only the trainer"),
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
    for v in task.committee:
        task.reveal_verdict(v)
    staked.rounds.finalize(task.round_id, {"from": outsider})
    assert task.round["outcome"] == 1
