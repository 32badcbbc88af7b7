"""Per-step state hashes of a span (issue #15): what a trainer posts in a dispute and what a challenger and
the jurors compare it with. Real replays of the tiny spec."""
from __future__ import annotations

import hashlib

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


def test_a_forged_span_is_named_at_its_first_wrong_step(tiny_spec, dataset, genesis, round_trace, store, tmp_path):
    """A trainer that skipped segment 1 and posts step hashes between its leaves: the
    challenger's real replay from the revealed start CID names step 1, and a juror replaying that one step
    disagrees with the claim."""
    from node.adversaries.cheats import Cheat, CheatingRounds
    from node.roles.disputes import compute_first_disputed_step, compute_span_replay

    k = tiny_spec.segment_steps
    cheat = CheatingRounds(Cheat(skip_segments=frozenset({1}))).train_round(tiny_spec, dataset, genesis, tmp_path / "cheat")
    h = cheat.boundary_hashes
    # the forger's post: its states stand still but for the step counter (stand-ins between its leaves)
    posted = [h[1]] + [hashlib.sha256(b"skipped" + bytes([t])).digest() for t in range(1, k)] + [h[2]]
    cid = store.put_file(cheat.checkpoints[1])
    mine = compute_span_replay(tiny_spec, dataset, store, cid, h[1], 1, k, tmp_path / "v")
    assert protocol.is_valid_span_hashes(posted, k, h[1], h[2]) and len(mine) == k + 1 and mine[0] == h[1]
    step = compute_first_disputed_step(mine, posted)
    assert step == 1 and mine[k] != h[2], "the real replay of the skipped segment misses the committed end leaf"
    juror = compute_span_replay(tiny_spec, dataset, store, cid, h[1], 1, step, tmp_path / "j")
    assert juror[step] != posted[step]
    # a start CID that does not hash to the start leaf is the start's own case: no step hashes
    assert compute_span_replay(tiny_spec, dataset, store, cid, h[0], 1, k, tmp_path / "x") == []


def test_first_disputed_step_and_disputed_check():
    from node.roles.disputes import compute_disputed_check, compute_first_disputed_step

    a, b = [bytes([i]) * 32 for i in range(5)], [bytes([i]) * 32 for i in range(5)]
    assert compute_first_disputed_step(a, b) is None and compute_disputed_check(a, b) is None
    b[3] = b"\xff" * 32
    assert compute_first_disputed_step(a, b) == 3 and compute_disputed_check(a, b) == 3
    # a check the member could not replay (its start unavailable: ZERO_HASH, the starts_ok flag) is no span to
    # dispute: a challenger naming it could not replay either and would lose its bond to the withholding trainer
    from node.protocol import ZERO_HASH

    b[1] = ZERO_HASH
    assert compute_disputed_check(a, b) == 3
    b[3] = a[3]
    assert compute_disputed_check(a, b) is None


def test_a_wrong_flag_is_disputed_first_then_an_unavailable_checkpoint():
    """A member whose contradiction is a flag disputes the first false flag its own check proves wrong, with its
    answer; failing that, the first whose checkpoints it could not fetch, answering ANSWER_UNAVAILABLE (an
    availability challenge: protocol.is_availability_challenge); the data root is never "unavailable". A juror that
    cannot fetch a flag's checkpoints answers ANSWER_UNAVAILABLE, not an abstention. Without a flag check a node
    disputes no flag."""
    from types import SimpleNamespace

    from node.roles.disputes import DisputeDuties, compute_flag_status

    trainers = {f: bytes([f]) * 32 for f in (protocol.FLAG_DATA_ROOT, protocol.FLAG_STARTS, protocol.FLAG_FINAL)}
    found = {protocol.FLAG_DATA_ROOT: trainers[protocol.FLAG_DATA_ROOT], protocol.FLAG_STARTS: None,
             protocol.FLAG_FINAL: b"\x09" * 32}
    chain = SimpleNamespace(disputes=None, appeals=None)
    duties = DisputeDuties(chain, None, span_hashes=None, flag_answer=lambda round_id, flag: found[flag])
    duties.trainer_flag_answer = lambda round_id, flag: trainers[flag]
    flags = protocol.compute_false_flags(data_root_ok=False, starts_ok=False, final_ok=False)
    assert duties.disputable_flag(7, flags) == (protocol.FLAG_FINAL, b"\x09" * 32)  # wrong beats unavailable
    found[protocol.FLAG_FINAL] = None
    assert duties.disputable_flag(7, flags) == (protocol.FLAG_STARTS, protocol.ANSWER_UNAVAILABLE)
    found[protocol.FLAG_STARTS] = trainers[protocol.FLAG_STARTS]
    assert duties.disputable_flag(7, flags) == (protocol.FLAG_FINAL, protocol.ANSWER_UNAVAILABLE)
    found[protocol.FLAG_DATA_ROOT] = b"\x05" * 32
    assert duties.disputable_flag(7, flags) == (protocol.FLAG_DATA_ROOT, b"\x05" * 32)
    found.update({protocol.FLAG_DATA_ROOT: None, protocol.FLAG_FINAL: trainers[protocol.FLAG_FINAL]})
    assert duties.disputable_flag(7, flags) is None  # an unrecomputable data root is no availability challenge
    assert duties.disputable_flag(7, protocol.compute_false_flags(True, True, True)) is None
    assert [compute_flag_status(a, b"\x01" * 32) for a in (None, b"\x01" * 32, b"\x02" * 32)] == ["unavailable", "right", "wrong"]
    assert DisputeDuties(chain, None, span_hashes=None).disputable_flag(7, flags) is None
    # as a juror
    view = SimpleNamespace(dispute_id=3, round_id=7, flag=protocol.FLAG_STARTS)
    found[protocol.FLAG_STARTS] = None
    assert duties.juror_answer(view) == protocol.ANSWER_UNAVAILABLE
    view.flag = protocol.FLAG_DATA_ROOT
    assert duties.juror_answer(view) == protocol.ZERO_HASH  # could not recompute it: abstains
    found[protocol.FLAG_STARTS] = b"\x07" * 32
    view.flag = protocol.FLAG_STARTS
    assert duties.juror_answer(view) == b"\x07" * 32
    assert protocol.is_availability_challenge(protocol.FLAG_FINAL, protocol.ANSWER_UNAVAILABLE)
    assert not protocol.is_availability_challenge(protocol.FLAG_DATA_ROOT, protocol.ANSWER_UNAVAILABLE)
    assert not protocol.is_availability_challenge(protocol.FLAG_FINAL, b"\x09" * 32)
