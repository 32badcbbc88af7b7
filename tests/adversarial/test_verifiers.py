"""Dishonest and lazy verifiers, at the contract level (toy replay, real CIDs).

Three verifiers are staked, so the committee of 3 is all of them and each test knows which
member misbehaves. Every amount is read from the chain and checked against node/protocol.py.
"""
from __future__ import annotations

import os

import pytest

from node import protocol
from node.chain.contracts import ContractsError

from advkit import TOY_TASK, ToyCheat, reason_of

P = TOY_TASK
M = P.n_segments
ETH = 10**18


def fmt(wei: int) -> str:
    return f"{wei / ETH:+.4f} ETH"


@pytest.fixture
def kit(kit_factory):
    return kit_factory(3)


@pytest.fixture
def task(kit):
    return kit.create_task()


def check_accepted_with_bad_member(out, kit, bad, bps, trace):
    """Honest trainer paid, honest members paid, `bad` loses `bps` of its stake, the final state is canonical."""
    assert out.outcome == protocol.Outcome.ACCEPTED, out.outcome_name
    assert out.delta(kit.trainer) == P.trainer_reward_wei
    assert out.stake_delta(kit.trainer) == 0
    for v in out.committee:
        if v != bad:
            assert out.delta(v) == P.verifier_reward_wei and out.stake_delta(v) == 0
    lost = protocol.compute_slash(kit.slash_base(bad), bps)
    assert out.delta(bad) == -lost
    assert bytes(kit.task(trace.task_id)["canonical_hash"]) == trace.hashes[-1]
    return lost


CASES = {
    # behaviour: (case, bps it must lose, why)
    "lazy": ("approve without replaying (commits the only hashes it can see: the starts)", P.verifier_slash_bps, "minority"),
    "reject": ("reject everything (random ends, every flag false)", P.verifier_slash_bps, "minority"),
    "silent": ("commit, then never reveal", P.no_show_slash_bps, "no-show"),
    "absent": ("never commit", P.no_show_slash_bps, "no-show"),
    "equivocate": ("reveal something other than what it committed", P.no_show_slash_bps, "no-show (its reveal reverts)"),
}


@pytest.mark.parametrize("behaviour", list(CASES))
def test_bad_verifier_with_honest_trainer(kit, task, case, behaviour):
    name, bps, why = CASES[behaviour]
    c = case(f"verifier: {name}", f"round accepted; that verifier -{bps / 100:g}% stake ({why}); honest trainer "
                                  f"+{P.trainer_reward_wei / ETH:g} ETH and honest verifiers +{P.verifier_reward_wei / ETH:g} ETH")
    trace = kit.build_trace(task)
    bad = kit.verifiers[0]
    out = kit.play_round(task, trace, verifiers={bad: behaviour})
    lost = check_accepted_with_bad_member(out, kit, bad, bps, trace)
    extra = f"; its reveal reverted: '{out.reverts[bad]}'" if bad in out.reverts else ""
    if behaviour == "equivocate":
        assert out.reverts[bad] == "rounds: reveal does not match commitment"
    c.observe(f"outcome {out.outcome_name}; bad verifier {fmt(out.delta(bad))} ({lost * 10_000 // out.before['stake'][bad]} bps)"
              f"{extra}; trainer {fmt(out.delta(kit.trainer))}; honest verifiers "
              f"{sorted({fmt(out.delta(v)) for v in out.committee if v != bad})}")


def test_lazy_verifier_with_cheating_trainer(kit, task, case):
    c = case("verifier approves without replaying while the trainer cheats (skips the last segment)",
             "fraud; the lazy verifier cannot match end hashes it never saw, so its verdict contradicts too and it "
             "shares the fraud reward (it pays -5% in every honest round instead); trainer -50%")
    out = kit.play_round(task, kit.build_trace(task, ToyCheat(skip_segments=frozenset({M - 1}))),
                         verifiers={kit.verifiers[0]: "lazy"})
    assert out.outcome == protocol.Outcome.FRAUD, out.outcome_name
    slashed = protocol.compute_slash(kit.slash_base(kit.trainer), P.trainer_slash_bps)
    per_verifier, _ = protocol.compute_fraud_split(slashed, P.fraud_reward_bps, len(out.committee))
    assert out.stake_delta(kit.trainer) == -slashed
    assert all(out.delta(v) == per_verifier for v in out.committee)
    c.observe(describe_fraud(out, kit, kit.verifiers[0]))


def test_minority_colluding_with_cheating_trainer(kit, task, case):
    c = case("a minority (1 of 3) colludes with a cheating trainer (commits the trainer's hashes, all flags true)",
             "fraud; colluder -5% (minority); trainer -50%; the 2 honest verifiers share 50% of the slash")
    out = kit.play_round(task, kit.build_trace(task, ToyCheat(skip_segments=frozenset({M - 1}))),
                         verifiers={kit.verifiers[0]: "collude"})
    check_minority_collusion(out, kit, kit.verifiers[0])
    c.observe(describe_fraud(out, kit, kit.verifiers[0]))


def check_minority_collusion(out, kit, bad):
    assert out.outcome == protocol.Outcome.FRAUD, out.outcome_name
    slashed = protocol.compute_slash(kit.slash_base(kit.trainer), P.trainer_slash_bps)
    per_verifier, _ = protocol.compute_fraud_split(slashed, P.fraud_reward_bps, len(out.committee) - 1)
    assert out.stake_delta(kit.trainer) == -slashed
    assert out.delta(bad) == -protocol.compute_slash(kit.slash_base(bad), P.verifier_slash_bps)
    for v in out.committee:
        if v != bad:
            assert out.delta(v) == per_verifier


def describe_fraud(out, kit, bad) -> str:
    honest = sorted({fmt(out.delta(v)) for v in out.committee if v != bad})
    return (f"outcome {out.outcome_name}; trainer stake {fmt(out.stake_delta(kit.trainer))}; bad verifier "
            f"{fmt(out.delta(bad))}; honest verifiers {honest}")


def test_copying_is_impossible(kit, task, case):
    c = case("verifier copies another verifier",
             "no end hash is public before it commits (reveal_ends reverts while it has not); the copied commitment "
             "binds the other's address, so it cannot open it: no-show, -10%")
    trace = kit.build_trace(task)
    round_id = kit.commit(trace)
    kit.seal(round_id)
    kit.reveal_starts(round_id, trace)
    honest = kit.replay_verdict(round_id)
    a, b, copier = kit.call("TrainingRounds", "committee_of", round_id)
    salts = {a: os.urandom(32), b: os.urandom(32)}
    for m in (a, b):
        kit.tx("TrainingRounds", "commit_verdict", round_id,
               protocol.compute_verdict_commitment(round_id, m, honest["ends"], honest["data_ok"], True, salts[m]), sender=m)
    # what can the copier see now? no end hash: the trainer cannot reveal them yet
    with pytest.raises(ContractsError) as early:
        kit.reveal_ends(round_id, trace)
    public_ends = kit.call("TrainingRounds", "end_hashes_of", round_id)
    copied = kit.call("TrainingRounds", "commitments", round_id, a)
    kit.tx("TrainingRounds", "commit_verdict", round_id, copied, sender=copier)
    before = kit.balances()
    kit.reveal_ends(round_id, trace)
    for m in (a, b):  # the final flags (issue #13, attack 5); the copier copies a's from its FinalCommitted event
        kit.commit_final(round_id, m, kit.final_ok(round_id), salts[m])
    ev = kit.contract("TrainingRounds").events.FinalCommitted().get_logs(
        from_block=kit.round(round_id)["commit_block"], argument_filters={"round_id": round_id, "verifier": a})
    kit.tx("TrainingRounds", "commit_verdict", round_id, ev[-1]["args"]["commitment"], sender=copier)
    # the copier learns the ends now, but a's commitment binds a's address (and a's salt)
    reverts = []
    for salt in (os.urandom(32), salts[a]):  # even with the original salt (say a leaked it)
        try:
            kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], True, salt, True, True, sender=copier)
        except ContractsError as e:
            reverts.append(reason_of(e))
    for m in (a, b):
        kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], honest["data_ok"], salts[m], True, True, sender=m)
    kit.mine_past(kit.round(round_id)["deadline"])
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    after = kit.balances()
    lost = before["stake"][copier] - after["stake"][copier]
    assert reason_of(early.value) == "rounds: committee still committing"
    assert public_ends == []
    assert reverts == ["rounds: reveal does not match commitment"] * 2
    assert kit.round(round_id)["outcome"] == protocol.Outcome.ACCEPTED
    assert lost == protocol.compute_slash(kit.slash_base(copier), P.no_show_slash_bps)
    c.observe(f"reveal_ends before the copier committed: '{reason_of(early.value)}'; end hashes public then: "
              f"{len(public_ends)}; copier's reveals: {reverts}; copier -{lost / ETH:.4f} ETH; round accepted")


@pytest.mark.parametrize("behaviour", ["lazy", "reject"])
def test_dishonest_majority_is_the_v1_limit(kit, task, case, behaviour):
    c = case(f"a MAJORITY (2 of 3) of verifiers {'approve without replaying' if behaviour == 'lazy' else 'reject everything'}, "
             "honest trainer (outside v1's honest-majority assumption)",
             "documented limit: the honest trainer is convicted (fraud, -50%) and the one honest verifier is slashed "
             "as the minority (-5%); the bad pair splits the fraud reward")
    trace = kit.build_trace(task)
    bad = kit.verifiers[:2]
    out = kit.play_round(task, trace, verifiers={v: behaviour for v in bad})
    honest = kit.verifiers[2]
    slashed = protocol.compute_slash(kit.slash_base(kit.trainer), P.trainer_slash_bps)
    per_verifier, _ = protocol.compute_fraud_split(slashed, P.fraud_reward_bps, 2)
    assert out.outcome == protocol.Outcome.FRAUD
    assert out.stake_delta(kit.trainer) == -slashed
    assert out.delta(honest) == -protocol.compute_slash(kit.slash_base(honest), P.verifier_slash_bps)
    assert all(out.delta(v) == per_verifier for v in bad)
    c.observe(f"outcome {out.outcome_name}; honest trainer {fmt(out.stake_delta(kit.trainer))}; honest verifier "
              f"{fmt(out.delta(honest))}; each bad verifier {fmt(per_verifier)}")
