"""Bad inputs and calls outside their window: each reverts with its reason and changes nothing."""
from dataclasses import replace

import brownie
import pytest
from brownie import chain

from node import protocol as P
from conftest import MIN_TRAINER, PARAMS, Trace, rand32


def test_commit_rejects_wrong_base_hash(task):
    trace = Trace(rand32(), PARAMS.n_segments, PARAMS.steps_per_round)
    with brownie.reverts("rounds: base hash is not canonical"):
        task.commit(trace)


@pytest.mark.parametrize("how", ["wrong_sibling", "short", "long"])
def test_commit_rejects_bad_leaf0_proof(task, how):
    trace = Trace(task.canonical, PARAMS.n_segments, PARAMS.steps_per_round)
    proof = trace.proof(0)
    proof = {"wrong_sibling": [rand32()] + proof[1:], "short": proof[:-1], "long": proof + [rand32()]}[how]
    with brownie.reverts("rounds: bad leaf-0 proof"):
        task.c.rounds.commit(task.task_id, trace.base, trace.data_root, trace.root, proof, {"from": task.trainer})


def test_double_commit_and_commit_while_open(task, staked, trainer):
    task.commit()
    with brownie.reverts("rounds: task has an open round"):
        task.commit()


def test_commit_needs_a_staked_trainer_and_a_known_task(task, staked, verifiers, outsider):
    trace = Trace(task.canonical, PARAMS.n_segments, PARAMS.steps_per_round)
    for who in (verifiers[0], outsider):
        with brownie.reverts("rounds: not a staked trainer"):
            staked.rounds.commit(task.task_id, trace.base, trace.data_root, trace.root, trace.proof(0), {"from": who})
    with brownie.reverts("rounds: unknown task"):
        staked.rounds.commit(77, trace.base, trace.data_root, trace.root, trace.proof(0), {"from": task.trainer})


def test_commit_needs_the_tasks_minimum_trainer_stake(driver, staked, trainer):
    from conftest import TRAINER_STAKE

    task = driver(params=replace(PARAMS, min_trainer_stake_wei=TRAINER_STAKE + 1))
    assert staked.registry.task_params(task.task_id)[15] == TRAINER_STAKE + 1  # stored (min_trainer_stake_wei), and in TaskCreated
    with brownie.reverts("rounds: free stake below the task's minimum"):
        task.commit()
    staked.sm.stake(P.TRAINER, {"from": trainer, "value": 1})  # top up to exactly the minimum
    tx = task.commit()
    assert "RoundCommitted" in tx.events and staked.sm.stake_of(trainer) == TRAINER_STAKE + 1
    open_task = driver()  # the default 0: the StakeManager minimum only ...
    with brownie.reverts("rounds: free stake below the task's minimum"):  # ... and the open round reserved it all (#13)
        open_task.commit()
    staked.sm.stake(P.TRAINER, {"from": trainer, "value": MIN_TRAINER})
    open_task.commit()


def test_commit_refused_when_pool_cannot_pay_a_round(driver, staked, deployer):
    task = driver(pool=PARAMS.round_cost)
    task.run()
    with brownie.reverts("registry: task pool exhausted"):
        task.commit()
    staked.registry.fund_task(task.task_id, {"from": deployer, "value": PARAMS.round_cost})
    task.commit()


def test_reveal_starts_rejects_bad_proofs_and_counts(task):
    task.commit()
    task.seal()
    s, t = task.samples, task.trace
    hashes, cids, proofs = [t.hashes[j] for j in s], ["bafy"] * len(s), [t.proof(j) for j in s]
    r = task.c.rounds
    with brownie.reverts("rounds: bad start proof"):
        r.reveal_starts(task.round_id, [rand32()] + hashes[1:], cids, proofs, {"from": task.trainer})
    with brownie.reverts("rounds: bad start proof"):  # a real leaf, but not the sampled one
        r.reveal_starts(task.round_id, [t.hashes[s[0] + 1]] + hashes[1:], cids, [t.proof(s[0] + 1)] + proofs[1:], {"from": task.trainer})
    with brownie.reverts("rounds: wrong number of starts"):
        r.reveal_starts(task.round_id, hashes[:-1], cids[:-1], proofs[:-1], {"from": task.trainer})
    with brownie.reverts("rounds: empty cid"):
        r.reveal_starts(task.round_id, hashes, [""] + cids[1:], proofs, {"from": task.trainer})
    with brownie.reverts("rounds: only the trainer"):
        r.reveal_starts(task.round_id, hashes, cids, proofs, {"from": task.committee[0]})
    task.reveal_starts()
    with brownie.reverts("rounds: not awaiting starts"):
        task.reveal_starts()


def test_reveal_ends_rejects_bad_proofs(task):
    task.commit()
    task.seal()
    task.reveal_starts()
    for v in task.committee:
        task.commit_verdict(v)
    ends, proofs = task.true_ends(), [task.trace.proof(e) for e in task.ends]
    r = task.c.rounds
    with brownie.reverts("rounds: bad end proof"):
        r.reveal_ends(task.round_id, ends[:-1] + [rand32()], proofs, "bafy", {"from": task.trainer})
    with brownie.reverts("rounds: wrong number of ends"):
        r.reveal_ends(task.round_id, ends[:-1], proofs[:-1], "bafy", {"from": task.trainer})
    with brownie.reverts("rounds: empty cid"):
        r.reveal_ends(task.round_id, ends, proofs, "", {"from": task.trainer})
    with brownie.reverts("rounds: only the trainer"):
        r.reveal_ends(task.round_id, ends, proofs, "bafy", {"from": task.committee[0]})


def test_verdict_commit_and_reveal_checks(task, outsider):
    task.commit()
    task.seal()
    r = task.c.rounds
    v = task.committee[0]
    with brownie.reverts("rounds: not accepting verdicts"):
        r.commit_verdict(task.round_id, rand32(), {"from": v})
    task.reveal_starts()
    with brownie.reverts("rounds: not in committee"):
        r.commit_verdict(task.round_id, rand32(), {"from": outsider})
    with brownie.reverts("rounds: empty commitment"):
        r.commit_verdict(task.round_id, bytes(32), {"from": v})
    for m in task.committee:
        task.commit_verdict(m)
    with brownie.reverts("rounds: already committed"):
        r.commit_verdict(task.round_id, rand32(), {"from": v})
    ends, ok, _, salt = task.salts[v.address]
    with brownie.reverts("rounds: not accepting reveals"):
        task.reveal_verdict(v)
    task.reveal_ends()
    task.commit_finals(task.committee)
    with brownie.reverts("rounds: reveal does not match commitment"):
        r.reveal_verdict(task.round_id, ends, ok, rand32(), True, True, {"from": v})
    with brownie.reverts("rounds: reveal does not match commitment"):
        r.reveal_verdict(task.round_id, ends, not ok, salt, True, True, {"from": v})
    with brownie.reverts("rounds: reveal does not match commitment"):
        r.reveal_verdict(task.round_id, [rand32()] + ends[1:], ok, salt, True, True, {"from": v})
    with brownie.reverts("rounds: reveal does not match commitment"):  # starts_ok is committed too (#13)
        r.reveal_verdict(task.round_id, ends, ok, salt, False, True, {"from": v})
    with brownie.reverts("rounds: no commitment"):
        r.reveal_verdict(task.round_id, ends, ok, salt, True, True, {"from": outsider})
    # a member's commitment cannot be replayed by someone else: it binds the verifier's address
    with brownie.reverts("rounds: reveal does not match commitment"):
        r.reveal_verdict(task.round_id, ends, ok, salt, True, True, {"from": task.committee[1]})
    task.reveal_verdict(v)
    with brownie.reverts("rounds: already revealed"):
        task.reveal_verdict(v)


def test_calls_outside_their_phase(task, outsider):
    r = task.c.rounds
    task.commit()
    with brownie.reverts("rounds: not awaiting starts"):
        task.reveal_starts() if hasattr(task, "samples") else r.reveal_starts(task.round_id, [], [], [], {"from": task.trainer})
    with brownie.reverts("rounds: not awaiting ends"):
        r.reveal_ends(task.round_id, [], [], "bafy", {"from": task.trainer})
    task.seal()
    with brownie.reverts("rounds: not awaiting seal"):
        r.seal(task.round_id, {"from": outsider})
    with brownie.reverts("rounds: not awaiting seal"):
        r.seal(12345, {"from": outsider})


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"segment_steps": 0}, "rules: steps not a multiple of segment"),
        ({"steps_per_round": 33, "segment_steps": 2}, "rules: steps not a multiple of segment"),
        ({"steps_per_round": 8192}, "rules: too many segments"),
        ({"samples": 0}, "rules: samples out of range"),
        ({"samples": 65, "steps_per_round": 4096}, "rules: samples out of range"),
        ({"samples": 16}, "rules: needs segments >= 2*samples+1"),
        ({"committee_size": 0, "quorum": 0}, "rules: committee out of range"),
        ({"committee_size": 17}, "rules: committee out of range"),
        ({"quorum": 0}, "rules: quorum out of range"),
        ({"quorum": 4}, "rules: quorum out of range"),
        ({"seal_delay_blocks": 0}, "rules: seal delay out of range"),
        ({"seal_delay_blocks": 129}, "rules: seal delay out of range"),
        ({"commit_verdicts_window": 0}, "rules: zero window"),
        ({"trainer_slash_bps": 10_001}, "rules: bps above 10000"),
    ],
)
def test_create_task_rejects_bad_params(staked, deployer, change, reason):
    params = replace(PARAMS, **change)
    with brownie.reverts(reason):
        staked.registry.create_task("bafy-spec", rand32(), rand32(), "bafy-gen", params.as_tuple(), {"from": deployer, "value": 10**18})


def test_create_task_rejects_empty_fields_and_underfunding(staked, deployer):
    r = staked.registry
    with brownie.reverts("registry: empty cid"):
        r.create_task("", rand32(), rand32(), "bafy", PARAMS.as_tuple(), {"from": deployer, "value": 10**18})
    with brownie.reverts("registry: empty hash"):
        r.create_task("bafy", bytes(32), rand32(), "bafy", PARAMS.as_tuple(), {"from": deployer, "value": 10**18})
    with brownie.reverts("registry: pool below one round"):
        r.create_task("bafy", rand32(), rand32(), "bafy", PARAMS.as_tuple(), {"from": deployer, "value": PARAMS.round_cost - 1})
    assert r.task_count() == 0


def test_create_task_records_genesis_as_version_0(staked, deployer):
    genesis = rand32()
    tx = staked.registry.create_task("bafy-spec", rand32(), genesis, "bafy-gen", PARAMS.as_tuple(), {"from": deployer, "value": 10**18})
    task_id = tx.return_value
    assert tx.events["TaskCreated"]["task_id"] == task_id
    assert tx.events["CanonicalModelUpdated"]["version"] == 0
    cid, h, version, round_id, block, ts = staked.oracle.latest(task_id)
    assert (cid, bytes(h), version, round_id, block) == ("bafy-gen", genesis, 0, 0, tx.block_number)
    assert tuple(int(x) for x in staked.registry.task_params(task_id)) == PARAMS.as_tuple()


def test_fund_task_checks(staked, task, outsider):
    with brownie.reverts("registry: unknown task"):
        staked.registry.fund_task(99, {"from": outsider, "value": 1})
    with brownie.reverts("registry: zero value"):
        staked.registry.fund_task(task.task_id, {"from": outsider, "value": 0})
    before = staked.registry.tasks(task.task_id).dict()["pool"]
    tx = staked.registry.fund_task(task.task_id, {"from": outsider, "value": 5})
    assert staked.registry.tasks(task.task_id).dict()["pool"] == before + 5
    assert tx.events["TaskFunded"]["pool"] == before + 5


def test_commit_needs_enough_active_verifiers(deployer, trainer):
    from conftest import RoundDriver, TRAINER_STAKE, deploy_all

    c = deploy_all(deployer)  # no verifier staked here
    c.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})
    task = RoundDriver(c, deployer, trainer)
    with brownie.reverts("rounds: too few active verifiers"):
        task.commit()
