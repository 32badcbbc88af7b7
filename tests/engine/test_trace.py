"""Rounds and replay: separate processes get the same bits; every boundary replays to the next."""
from __future__ import annotations

import json

import torch

from node.engine.replay import compute_batch_hashes, compute_data_root, replay_segment
from node.engine.state import load_state, state_hash
from node.engine.trace import load_trace
from node.protocol import compute_merkle_proof, compute_merkle_root, is_valid_merkle_proof

from engine_helpers import read_json, write_spec


def test_round_trace_has_one_hash_per_boundary_and_per_step(round_trace, tiny_spec):
    M = tiny_spec.segments_per_round
    assert len(round_trace.boundary_hashes) == M + 1 == len(round_trace.checkpoints)
    assert len(round_trace.batch_hashes) == tiny_spec.steps_per_round == len(round_trace.losses)
    assert len(set(round_trace.boundary_hashes)) == M + 1  # every segment changes the state
    for j, path in enumerate(round_trace.checkpoints):
        st = load_state(path, expected_hash=round_trace.boundary_hashes[j])
        assert st.global_step == j * tiny_spec.segment_steps


def test_roots_follow_the_project_merkle_rule(round_trace, tiny_spec, dataset):
    assert round_trace.trace_root == compute_merkle_root(round_trace.boundary_hashes)
    assert round_trace.data_root == compute_merkle_root(round_trace.batch_hashes)
    assert compute_batch_hashes(tiny_spec, dataset, 0) == round_trace.batch_hashes
    assert compute_data_root(tiny_spec, dataset, 0) == round_trace.data_root
    assert compute_data_root(tiny_spec, dataset, 1) != round_trace.data_root  # the schedule is per step
    M = len(round_trace.boundary_hashes) - 1
    for j in (0, M):
        proof = compute_merkle_proof(round_trace.boundary_hashes, j)
        assert is_valid_merkle_proof(round_trace.trace_root, M + 1, j, round_trace.boundary_hashes[j], proof)


def test_replay_from_every_boundary_reproduces_the_next_hash(round_trace, tiny_spec, dataset):
    hashes = round_trace.boundary_hashes
    for j in range(len(hashes) - 1):
        torch.manual_seed(12345 + j)  # hidden RNG state must not matter: streams are derived
        torch.rand(100)
        end = replay_segment(tiny_spec, dataset, round_trace.checkpoints[j], expected_hash=hashes[j])
        assert end == hashes[j + 1], f"segment {j} did not replay"


def test_replay_of_several_segments_and_of_zero_steps(round_trace, tiny_spec, dataset):
    k = tiny_spec.segment_steps
    assert replay_segment(tiny_spec, dataset, round_trace.checkpoints[1], 2 * k) == round_trace.boundary_hashes[3]
    assert replay_segment(tiny_spec, dataset, round_trace.checkpoints[2], 0) == round_trace.boundary_hashes[2]


def test_trace_json_round_trips(round_trace):
    again = load_trace(round_trace.checkpoints[0].parent)
    assert again.to_json() == round_trace.to_json()
    assert again.final_hash == state_hash(load_state(again.final_checkpoint))


def test_train_local_twice_in_separate_processes_is_bit_identical(cli, tmp_path, tiny_spec, round_trace):
    spec = write_spec(tmp_path / "spec.json", tiny_spec)
    outs = [tmp_path / "a", tmp_path / "b"]
    infos = [json.loads(cli("train-local", "--spec", spec, "--out", out, "--json").stdout) for out in outs]
    a, b = (read_json(out / "trace.json") for out in outs)
    assert (outs[0] / "trace.json").read_bytes() == (outs[1] / "trace.json").read_bytes()
    # and both equal the in-process round from the same genesis
    assert a["boundary_hashes"] == ["0x" + h.hex() for h in round_trace.boundary_hashes]
    assert infos[0]["trace_root"] == b["trace_root"] == "0x" + round_trace.trace_root.hex()
    # a replay CLI from a boundary prints the next boundary hash
    ckpt = outs[1] / a["checkpoints"][2]
    replayed = json.loads(cli("replay", "--spec", spec, "--checkpoint", ckpt, "--steps",
                              str(tiny_spec.segment_steps), "--expect", a["boundary_hashes"][2], "--json").stdout)
    assert replayed["end_hash"] == a["boundary_hashes"][3]
