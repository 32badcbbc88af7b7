"""The sampling rule checks every segment, M-2 included (the last check spans (M-2, M) when M-2 is drawn).

A toy deterministic "training step" (a keccak chain) stands in for replay, so a verifier's
end hash really is recomputed from the revealed start: a faked segment is caught exactly
when a check's span covers it.
"""
from dataclasses import replace

import brownie
from eth_utils import keccak

from node import protocol as P
from conftest import PARAMS, TRAINER_STAKE, Trace


def step(h: bytes, n: int) -> bytes:
    """n toy training steps (k = 1 step per segment here)."""
    for _ in range(n):
        h = keccak(b"step" + h)
    return h


def honest_hashes(base: bytes, n_segments: int) -> list:
    hashes = [base]
    for _ in range(n_segments):
        hashes.append(step(hashes[-1], 1))
    return hashes


def faked_hashes(base: bytes, n_segments: int, fake: int) -> list:
    """Segment `fake` skipped: its end leaf is made up; every other segment trained honestly from there."""
    hashes = honest_hashes(base, n_segments)
    hashes[fake + 1] = keccak(b"made up" + base)
    for j in range(fake + 1, n_segments):
        hashes[j + 1] = step(hashes[j], 1)
    return hashes


def is_caught(hashes: list, samples: list, n_segments: int) -> bool:
    """A verifier replays each check (end - start) steps from its revealed start."""
    ends = P.compute_check_ends(samples, n_segments)
    return any(step(hashes[a], b - a) != hashes[b] for a, b in zip(samples, ends))


def seeds(n: int) -> list:
    return [keccak(i.to_bytes(32, "big")) for i in range(n)]


# ---------------------------------------------------------------- reference level

def test_every_segment_is_caught_for_some_seed():
    for n_segments, n_samples in [(3, 1), (5, 2), (7, 3), (12, 2), (32, 2)]:
        base = keccak(bytes([n_segments]))
        honest = honest_hashes(base, n_segments)
        draws = [P.compute_samples(seed, n_segments, n_samples) for seed in seeds(400)]
        assert not any(is_caught(honest, s, n_segments) for s in draws), "an honest trace was caught"
        for fake in range(n_segments):
            hashes = faked_hashes(base, n_segments, fake)
            assert any(is_caught(hashes, s, n_segments) for s in draws), f"M={n_segments}: segment {fake} never caught"


def test_faked_second_to_last_segment_is_caught_exactly_when_drawn():
    n_segments, n_samples = 12, 2
    hashes = faked_hashes(keccak(b"base"), n_segments, n_segments - 2)
    drawn = 0
    for seed in seeds(300):
        samples = P.compute_samples(seed, n_segments, n_samples)
        m2_drawn = samples[-1] == n_segments - 2
        drawn += m2_drawn
        assert is_caught(hashes, samples, n_segments) == m2_drawn
        if m2_drawn:  # the span (M-2, M): s checks, h_{M-1} neither a start nor an end
            assert len(samples) == n_samples and P.compute_check_ends(samples, n_segments)[-1] == n_segments
            assert n_segments - 1 not in samples + P.compute_check_ends(samples, n_segments)
        else:
            assert len(samples) == n_samples + 1 and samples[-1] == n_segments - 1
    assert drawn > 0


def test_check_ends_rejects_a_list_that_is_not_samples():
    for bad in ([], [0, 2]):
        try:
            P.compute_check_ends(bad, 7)
        except AssertionError as e:
            assert "rules:" in str(e)
        else:
            raise AssertionError(f"compute_check_ends accepted {bad}")


# ---------------------------------------------------------------- contract level

SMALL = replace(PARAMS, steps_per_round=5, samples=2)  # M = 5: M-2 is drawn in 2 of 3 rounds


def play_faked_round(task, fake: int):
    """The trainer commits a trace with segment `fake` faked; the committee replays the spans
    the chain names from the starts the trainer revealed, and votes."""
    M = task.params.n_segments
    trace = Trace(task.canonical, M, task.params.steps_per_round)
    trace.hashes = faked_hashes(task.canonical, M, fake)
    task.commit(trace)
    task.seal()
    task.reveal_starts()
    starts = [bytes(h) for h in task.c.rounds.start_hashes_of(task.round_id)]
    ends = task.ends
    computed = [step(h, b - a) for h, a, b in zip(starts, task.samples, ends)]
    for v in task.committee:
        task.commit_verdict(v, ends=computed)
    task.reveal_ends()
    task.commit_finals(task.committee)
    for v in task.committee:
        task.reveal_verdict(v)
    task.finalize()
    return task.samples, ends


def test_contract_checks_span_m2_to_m_and_catches_a_faked_m2(driver, staked, trainer):
    task = driver(SMALL, pool=20 * SMALL.round_cost)
    M = SMALL.n_segments
    for _ in range(12):
        samples, ends = play_faked_round(task, M - 2)
        assert ends == P.compute_check_ends(samples, M)
        if samples[-1] == M - 2:
            assert ends[-1] == M and len(samples) == SMALL.samples
            assert task.outcome == P.Outcome.FRAUD
            assert staked.sm.stake_of(trainer) < TRAINER_STAKE
            return
        # M-2 not drawn: the fake is out of every span and the round passes
        assert samples[-1] == M - 1 and task.outcome == P.Outcome.ACCEPTED
    raise AssertionError("M-2 never drawn in 12 rounds (chance 3^-12)")


def test_last_span_end_proof_must_be_leaf_m(driver):
    """When the last check is (M-2, M), an end proof for leaf M-1 (the old rule's) is refused."""
    task = driver(SMALL, pool=20 * SMALL.round_cost)
    M = SMALL.n_segments
    for _ in range(12):
        task.commit()
        task.seal()
        task.reveal_starts()
        for v in task.committee:
            task.commit_verdict(v)
        if task.samples[-1] == M - 2:
            old_rule = [task.trace.hashes[j + 1] for j in task.samples]
            proofs = [task.trace.proof(j + 1) for j in task.samples]
            with brownie.reverts("rounds: bad end proof"):
                task.c.rounds.reveal_ends(task.round_id, old_rule, proofs, "bafy", {"from": task.trainer})
            tx = task.reveal_ends()
            assert [bytes(h) for h in tx.events["EndsRevealed"]["end_hashes"]][-1] == task.trace.hashes[M]
            return
        task.reveal_ends()
        task.commit_finals(task.committee)
        for v in task.committee:
            task.reveal_verdict(v)
        task.finalize()
    raise AssertionError("M-2 never drawn in 12 rounds (chance 3^-12)")


def test_check_ends_are_empty_before_seal(task):
    task.commit()
    assert list(task.c.rounds.round_check_ends_of(task.round_id)) == []
