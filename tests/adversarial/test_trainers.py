"""Cheating trainers against honest committees, at the contract level (toy replay, real CIDs).

Each test plays a round with an AdversaryKit and reads every outcome from the chain:
the round's outcome, the trainer's and every verifier's bonded stake and claimable balance.
"""
from __future__ import annotations

import os

import pytest

from node import protocol
from node.chain.contracts import ContractsError

from advkit import TOY_TASK, ToyCheat, reason_of

P = TOY_TASK
M = P.n_segments
# a trainer's missed deadline costs at least the fraud slash (#13: no cheap exit once the seed is public)
MISS_BPS = protocol.compute_trainer_miss_bps(P.trainer_slash_bps, P.no_show_slash_bps)
ETH = 10**18


def fmt(wei: int) -> str:
    return f"{wei / ETH:+.4f} ETH"


def check_fraud(out, kit, trainer):
    """Trainer lost trainer_slash_bps of its stake; contradicting verifiers got their share; nobody else lost."""
    slashed = protocol.compute_slash(kit.slash_base(trainer), P.trainer_slash_bps)
    r = kit.round(out.round_id)
    per_verifier, to_treasury = protocol.compute_fraud_split(slashed, P.fraud_reward_bps, r["n_contradicting"])
    assert out.outcome == protocol.Outcome.FRAUD, f"outcome {out.outcome_name}"
    assert out.stake_delta(trainer) == -slashed
    for v in out.committee:
        assert out.delta(v) == per_verifier, f"verifier {v}: {out.delta(v)} != {per_verifier}"
    for v in set(kit.verifiers) - set(out.committee):
        assert out.delta(v) == 0
    assert out.after["treasury"] - out.before["treasury"] == to_treasury
    return slashed, per_verifier


@pytest.fixture
def task(kit):
    return kit.create_task()


def play(kit, task, cheat, **kw):
    trace = kit.build_trace(task, cheat)
    base = bytes(kit.task(task)["canonical_hash"])
    out = kit.play_round(task, trace, **kw)
    out.base_hash = base
    return out


FRAUD_CASES = {
    "skip the steps of the last segment (always inside the last check)": ToyCheat(skip_segments=frozenset({M - 1})),
    "train the last segment on other data (commits the scheduled batch hashes)": ToyCheat(other_data_segments=frozenset({M - 1})),
    "train segment 0 on other data and commit the batches really used (data root)": ToyCheat(
        other_data_segments=frozenset({0}), report_actual_batches=True),
    "change one hyper-parameter (lr) in the last segment": ToyCheat(hp_segments=frozenset({M - 1})),
    "forge the intermediate states h_1..h_{M-2}": ToyCheat(forge_boundaries=frozenset(range(1, M - 1))),
    "substitute the final checkpoint (h_M not trained from h_{M-1})": ToyCheat(substitute_final=True),
}


@pytest.mark.parametrize("name", list(FRAUD_CASES))
def test_cheat_is_fraud(kit, task, case, name):
    c = case(name, f"fraud: trainer -{P.trainer_slash_bps / 100:.0f}% stake, honest committee shares "
                   f"{P.fraud_reward_bps / 100:.0f}% of it, rest to treasury; canonical unchanged")
    canonical = bytes(kit.task(task)["canonical_hash"])
    out = play(kit, task, FRAUD_CASES[name])
    slashed, per_verifier = check_fraud(out, kit, kit.trainer)
    assert bytes(kit.task(task)["canonical_hash"]) == canonical
    c.observe(f"outcome {out.outcome_name}; trainer stake {fmt(out.stake_delta(kit.trainer))} "
              f"({-out.stake_delta(kit.trainer) * 10_000 // out.before['stake'][kit.trainer]} bps); "
              f"each honest verifier {fmt(per_verifier)}; treasury {fmt(out.after['treasury'] - out.before['treasury'])}; "
              f"canonical unchanged")


def test_skip_a_middle_segment_is_caught_iff_sampled(kit, task, case):
    c = case("skip the steps of segment 0 (sampled or not, by chance)",
             "fraud and -50% if segment 0 is sampled; else accepted (v1 limit: unsampled segments are unchecked)")
    outcomes = []
    for _ in range(4):
        out = play(kit, task, ToyCheat(skip_segments=frozenset({0})))
        sampled = 0 in out.samples
        outcomes.append(f"{'sampled' if sampled else 'unsampled'}->{out.outcome_name}")
        if sampled:
            check_fraud(out, kit, kit.trainer)
            break  # a second fraud would leave the trainer below the minimum stake: it could not commit
        assert out.outcome == protocol.Outcome.ACCEPTED
    c.observe(f"{rounds_of(outcomes)}: {', '.join(outcomes)}")


def rounds_of(played: list) -> str:
    return "1 round" if len(played) == 1 else f"{len(played)} rounds"


def play_until_m2_is_drawn(kit, task, cheat, c, rounds: int = 25):
    """Rounds of the same cheat until segment M-2 is drawn (the last check is then the span (M-2, M));
    before that the cheat is out of every span and passes. Returns the round that drew it."""
    seen = []
    for _ in range(rounds):
        out = play(kit, task, cheat)
        drawn = out.samples[-1] == M - 2
        seen.append(f"{out.samples}->{out.outcome_name}")
        if drawn:
            assert len(out.samples) == P.samples, "the span (M-2, M) is the last of s checks"
            c.observe(f"{rounds_of(seen)} (starts->outcome): {', '.join(seen)}; when M-2 was drawn the check "
                      f"(M-2, M) replayed 2k steps: trainer stake {fmt(out.stake_delta(kit.trainer))}")
            return out
        assert out.samples[-1] == M - 1 and out.outcome == protocol.Outcome.ACCEPTED, seen
    raise AssertionError(f"segment M-2 never drawn in {rounds} rounds (chance (2/3)^{rounds}): {seen}")


def test_skip_segment_m2_is_caught_when_drawn(kit, task, case):
    c = case("skip the steps of segment M-2 (drawn with the other segments; then checked as the span (M-2, M))",
             "fraud and -50% when M-2 is drawn (about 1 round in 3 here); accepted before")
    out = play_until_m2_is_drawn(kit, task, ToyCheat(skip_segments=frozenset({M - 2})), c)
    check_fraud(out, kit, kit.trainer)


def test_forge_the_last_start_state_is_caught_when_m2_drawn(kit, task, case):
    c = case("forge h_{M-1}, train the last segment honestly from it (h_{M-1} is never revealed by the span (M-2, M))",
             "fraud and -50% when M-2 is drawn; accepted before")
    out = play_until_m2_is_drawn(kit, task, ToyCheat(forge_boundaries=frozenset({M - 1})), c)
    check_fraud(out, kit, kit.trainer)
    assert bytes(kit.task(task)["canonical_hash"]) != bytes(kit.round(out.round_id)["final_hash"])


@pytest.mark.parametrize("what", ["another state's CID", "a CID nobody has"])
def test_final_cid_does_not_hash_to_final_state(kit, task, case, what):
    c = case(f"publish a final CID whose content does not hash to h_M ({what})",
             "fraud (final_ok false): trainer -50%; the CID never becomes canonical")
    trace = kit.build_trace(task)
    bad_cid = trace.cids[M - 1] if what == "another state's CID" else __import__("node.store", fromlist=["compute_cid"]).compute_cid(os.urandom(64))
    out = kit.play_round(task, trace, final_cid=bad_cid)
    _, per_verifier = check_fraud(out, kit, kit.trainer)
    cid_now = kit.task(task)["canonical_cid"]
    assert cid_now != bad_cid
    c.observe(f"outcome {out.outcome_name}; trainer stake {fmt(out.stake_delta(kit.trainer))}; honest verifiers "
              f"{fmt(per_verifier)} each; canonical CID still {cid_now[:16]}...")


@pytest.mark.parametrize("phase", ["starts", "ends"])
def test_withheld_reveals(kit, task, case, phase):
    c = case(f"withhold the {phase} reveal", f"abandoned: trainer -{MISS_BPS / 100:.0f}% stake (the fraud slash); "
                                            "no verifier loses anything; canonical unchanged")
    canonical = bytes(kit.task(task)["canonical_hash"])
    out = kit.play_round(task, kit.build_trace(task), withhold=phase)
    lost = protocol.compute_slash(kit.slash_base(kit.trainer), MISS_BPS)
    assert out.outcome == protocol.Outcome.ABANDONED
    assert out.stake_delta(kit.trainer) == -lost
    assert all(out.delta(v) == 0 for v in kit.verifiers)
    assert bytes(kit.task(task)["canonical_hash"]) == canonical
    assert kit.task(task)["open_round"] == 0  # the task is free for the next trainer
    c.observe(f"outcome {out.outcome_name}; trainer {fmt(out.stake_delta(kit.trainer))} "
              f"({lost * 10_000 // out.before['stake'][kit.trainer]} bps); verifiers' changes "
              f"{sorted({out.delta(v) for v in kit.verifiers})}; task free again")


def test_wrong_proofs(kit, task, case):
    c = case("reveal wrong proofs (leaf-0 proof, start proofs, end proofs, a hash not in the trace)",
             "each reverts with the reason; a trainer left with only wrong proofs is abandoned (-50%, the fraud slash)")
    trace = kit.build_trace(task)
    seen = {}
    other = kit.build_trace(task, ToyCheat(hp_segments=frozenset({0})))  # another trace of the same base
    try:
        kit.commit(trace, proof0=[os.urandom(32) for _ in trace.proof(0)])
    except ContractsError as e:
        seen["bad proof0"] = reason_of(e)
    before = kit.balances()
    round_id = kit.commit(trace)
    kit.seal(round_id)
    samples = kit.call("TrainingRounds", "round_samples_of", round_id)
    attempts = {
        "start proofs of another trace": dict(proofs=[other.proof(j) for j in samples]),
        "start proofs of the wrong leaves": dict(proofs=[trace.proof((j + 1) % (M + 1)) for j in samples]),
        "forged start hashes": dict(hashes=[os.urandom(32) for _ in samples]),
    }
    for label, override in attempts.items():
        try:
            kit.reveal_starts(round_id, trace, **override)
        except ContractsError as e:
            seen[label] = reason_of(e)
    kit.reveal_starts(round_id, trace)
    check_ends = kit.call("TrainingRounds", "round_check_ends_of", round_id)
    for label, override in {"end proofs of the start leaves": dict(proofs=[trace.proof(j) for j in samples]),
                            "end hashes of another trace": dict(hashes=[other.hashes[e] for e in check_ends])}.items():
        r = kit.round(round_id)
        kit.mine_past(r["commit_deadline"])  # nobody commits: the trainer may reveal ends
        try:
            kit.reveal_ends(round_id, trace, **override)
        except ContractsError as e:
            seen[label] = reason_of(e)
    kit.mine_past(kit.round(round_id)["deadline"])
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    after = kit.balances()
    r = kit.round(round_id)
    lost = before["stake"][kit.trainer] - after["stake"][kit.trainer]
    expected_miss = protocol.compute_slash(kit.slash_base(kit.trainer), MISS_BPS)
    assert seen["bad proof0"] == "rounds: bad leaf-0 proof"
    assert all(seen[k] == "rounds: bad start proof" for k in attempts)
    assert seen["end proofs of the start leaves"] == seen["end hashes of another trace"] == "rounds: bad end proof"
    assert r["outcome"] == protocol.Outcome.ABANDONED and lost == expected_miss
    c.observe(f"reverts: {sorted(set(seen.values()))} ({len(seen)} attempts); outcome "
              f"{protocol.outcome_name(r['outcome'])}; trainer -{lost / ETH:.4f} ETH "
              f"({lost * 10_000 // before['stake'][kit.trainer]} bps); verifiers' changes "
              f"{sorted({after['stake'][v] - before['stake'][v] for v in kit.verifiers})}")
    assert all(after["stake"][v] == before["stake"][v] for v in kit.verifiers)


def test_stale_base_and_replayed_trace(kit, task, case):
    c = case("commit on a stale base / replay an old round's trace",
             "both revert 'rounds: base hash is not canonical'; no stake moves")
    old = kit.build_trace(task)
    out = kit.play_round(task, old)
    assert out.outcome == protocol.Outcome.ACCEPTED
    stale = kit.build_trace(task, base=old.blobs[0])  # trained anew on the old base
    before = kit.balances()
    seen = []
    for trace in (stale, old):
        with pytest.raises(ContractsError) as e:
            kit.commit(trace)
        seen.append(reason_of(e.value))
    # a stale base proved with a forged proof0 for a trace holding the canonical hash elsewhere
    with pytest.raises(ContractsError) as e:
        kit.commit(stale, base_hash=bytes(kit.task(task)["canonical_hash"]))
    seen.append(reason_of(e.value))
    after = kit.balances()
    assert seen[:2] == ["rounds: base hash is not canonical"] * 2
    assert seen[2] == "rounds: bad leaf-0 proof"
    assert before == after
    c.observe(f"reverts {seen}; balances unchanged: {before == after}")


def test_same_key_twice_on_chain(kit, task, case):
    c = case("run the same trainer key twice (two commits for one task)",
             "second commit reverts 'rounds: task has an open round'; first round goes on, honest outcome")
    first, second = kit.build_trace(task), kit.build_trace(task, ToyCheat(hp_segments=frozenset({1})))
    round_id = kit.commit(first)
    with pytest.raises(ContractsError) as e:
        kit.commit(second)
    reason = reason_of(e.value)
    # the first round then completes normally
    kit.seal(round_id)
    kit.reveal_starts(round_id, first)
    verdict = kit.replay_verdict(round_id)
    committee = kit.call("TrainingRounds", "committee_of", round_id)
    salts = {m: os.urandom(32) for m in committee}
    for m in committee:
        kit.tx("TrainingRounds", "commit_verdict", round_id,
               protocol.compute_verdict_commitment(round_id, m, verdict["ends"], verdict["data_ok"], True, salts[m]), sender=m)
    kit.reveal_ends(round_id, first)
    for m in committee:  # the final flags, before any reveal (issue #13, attack 5)
        kit.commit_final(round_id, m, kit.final_ok(round_id), salts[m])
    for m in committee:
        kit.tx("TrainingRounds", "reveal_verdict", round_id, verdict["ends"], verdict["data_ok"], salts[m], True,
               kit.final_ok(round_id), sender=m)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    outcome = kit.round(round_id)["outcome"]
    assert reason == "rounds: task has an open round"
    assert outcome == protocol.Outcome.ACCEPTED
    c.observe(f"second commit: '{reason}'; first round {protocol.outcome_name(outcome)}")


def test_start_cid_of_another_state(kit, task, case):
    c = case("reveal a start checkpoint CID whose content is another state (the hash and proof are right)",
             "verifiers flag starts_ok=false: fraud, trainer -50%; honest committee paid")
    trace = kit.build_trace(task)
    real = kit.reveal_starts

    def reveal_wrong_cids(round_id, tr, trainer=None, **override):
        samples = kit.call("TrainingRounds", "round_samples_of", round_id)
        real(round_id, tr, trainer, cids=[tr.cids[(j + 1) % len(tr.cids)] for j in samples])

    kit.reveal_starts = reveal_wrong_cids
    out = kit.play_round(task, trace)
    _, per_verifier = check_fraud(out, kit, kit.trainer)
    c.observe(f"outcome {out.outcome_name}; trainer stake {fmt(out.stake_delta(kit.trainer))}; honest verifiers "
              f"{fmt(per_verifier)} each")


def test_nobody_seals(kit, task, case):
    c = case("trainer commits, then nobody seals (e.g. waiting for a seal blockhash it likes)",
             f"after the blockhash horizon the round expires: trainer -{MISS_BPS / 100:g}%, no verifier loses, "
             "sealing late reverts")
    before = kit.balances()
    round_id = kit.commit(kit.build_trace(task))
    kit.mine_past(kit.round(round_id)["deadline"])
    with pytest.raises(ContractsError) as late:
        kit.tx("TrainingRounds", "seal", round_id, sender=kit.deployer)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    after = kit.balances()
    lost = before["stake"][kit.trainer] - after["stake"][kit.trainer]
    outcome = kit.round(round_id)["outcome"]
    assert outcome == protocol.Outcome.EXPIRED
    assert lost == protocol.compute_slash(kit.slash_base(kit.trainer), MISS_BPS)
    assert all(after["stake"][v] == before["stake"][v] for v in kit.verifiers)
    c.observe(f"late seal: '{reason_of(late.value)}'; outcome {protocol.outcome_name(outcome)}; trainer "
              f"-{lost / ETH:.4f} ETH; verifiers unchanged")
