"""Per-step state hashes of a span (issue #15): what a trainer posts in a dispute and what a challenger and
the jurors compare it with. Real replays of the tiny spec."""
from __future__ import annotations

from node import protocol
from node.engine import replay_segment


def test_step_hashes_run_from_the_start_leaf_to_the_end_leaf(round_trace, tiny_spec, dataset):
    h, k = round_trace.boundary_hashes, tiny_spec.segment_steps
    hashes: list = []
    end = replay_segment(tiny_spec, dataset, round_trace.checkpoints[1], 2 * k, step_hashes=hashes)
    assert len(hashes) == 2 * k + 1 and end == hashes[-1]
    assert hashes[0] == h[1] and hashes[k] == h[2] and hashes[2 * k] == h[3]
    assert protocol.is_valid_span_hashes(hashes, 2 * k, h[1], h[3])
    assert len(set(hashes)) == len(hashes), "every step changes the state"


def test_a_juror_replaying_t_steps_gets_the_posted_hash_t(round_trace, tiny_spec, dataset):
    """Jurors replay only up to the named step t: the same bits as the first t steps of the full span."""
    k = tiny_spec.segment_steps
    full: list = []
    replay_segment(tiny_spec, dataset, round_trace.checkpoints[0], k, step_hashes=full)
    t = k // 2 + 1
    assert replay_segment(tiny_spec, dataset, round_trace.checkpoints[0], t) == full[t]
