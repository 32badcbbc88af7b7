"""verifier/replay.py's checks on the real engine: the last check may span two segments (M-2, M).

Skipping segment M-2 and training the last one honestly from the result passes the one-segment
check (M-1, M) — the gap of the first sampling rule — and fails the span (M-2, M).
"""
from __future__ import annotations

from node import protocol
from node.adversaries.cheats import Cheat, CheatingRounds
from verifier.replay import check_segment


def test_span_of_two_segments_replays_to_the_final_state(round_trace, tiny_spec, dataset, store, tmp_path):
    M = tiny_spec.segments_per_round
    h = round_trace.boundary_hashes
    cid = store.put_file(round_trace.checkpoints[M - 2])
    two = check_segment(tiny_spec, dataset, store, M - 2, cid, h[M - 2], tmp_path, span=2)
    one = check_segment(tiny_spec, dataset, store, M - 2, cid, h[M - 2], tmp_path)
    assert two.start_ok and two.end_hash == h[M], "the span (M-2, M) did not replay to h_M"
    assert one.start_ok and one.end_hash == h[M - 1]


def test_skipped_segment_m2_fails_the_span_and_only_the_span(tiny_spec, dataset, genesis, store, tmp_path):
    M = tiny_spec.segments_per_round
    cheat = CheatingRounds(Cheat(skip_segments=frozenset({M - 2}))).train_round(
        tiny_spec, dataset, genesis, tmp_path / "trace")
    h = cheat.boundary_hashes
    last_alone = check_segment(tiny_spec, dataset, store, M - 1, store.put_file(cheat.checkpoints[M - 1]), h[M - 1],
                               tmp_path / "v1")
    assert last_alone.start_ok and last_alone.end_hash == h[M], "(M-1, M) alone cannot see a skipped M-2"
    span = check_segment(tiny_spec, dataset, store, M - 2, store.put_file(cheat.checkpoints[M - 2]), h[M - 2],
                         tmp_path / "v2", span=2)
    assert span.start_ok and span.end_hash != h[M], "the span (M-2, M) missed a skipped segment M-2"


def test_verifier_flow_catches_a_skipped_m2_exactly_when_drawn(tiny_spec, dataset, genesis, store, tmp_path):
    """The checks a verifier derives from the rules (starts, ends, span = end - start), over seeds."""
    M, s = tiny_spec.segments_per_round, 1  # M = 4 allows s = 1 (M >= 2s + 1)
    cheat = CheatingRounds(Cheat(skip_segments=frozenset({M - 2}))).train_round(
        tiny_spec, dataset, genesis, tmp_path / "trace")
    h = cheat.boundary_hashes
    cids = [store.put_file(p) for p in cheat.checkpoints]
    seen = set()
    for i in range(12):
        samples = protocol.compute_samples(protocol.compute_seed(i.to_bytes(32, "big"), 1), M, s)
        key = tuple(samples)
        if key in seen:
            continue
        seen.add(key)
        ends = protocol.compute_check_ends(samples, M)
        caught = any(check_segment(tiny_spec, dataset, store, j, cids[j], h[j], tmp_path / f"v{i}", span=e - j).end_hash
                     != h[e] for j, e in zip(samples, ends))
        assert caught == (samples[-1] == M - 2), f"samples {samples}, ends {ends}: caught {caught}"
    assert (M - 2,) in {k[-1:] for k in seen}, f"M-2 never drawn in 12 seeds: {seen}"
