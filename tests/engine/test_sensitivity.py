"""Anything that changes the computation changes the hash: data, hyper-parameters, optimizer state."""
from __future__ import annotations

import torch

from node.adversaries.cheats import Cheat, CheatingRounds
from node.engine.genesis import compute_genesis_state
from node.engine.replay import replay_segment
from node.engine.state import load_state, save_state, state_hash


def test_a_changed_batch_changes_the_next_boundary(round_trace, tiny_spec, dataset, genesis, tmp_path):
    cheat = CheatingRounds(Cheat(other_data_segments=frozenset({1}))).train_round(
        tiny_spec, dataset, genesis, tmp_path)
    honest = round_trace.boundary_hashes
    assert cheat.boundary_hashes[:2] == honest[:2]
    assert cheat.boundary_hashes[2] != honest[2]
    assert cheat.data_root == round_trace.data_root  # it claims the schedule...
    # ...so a verifier replaying segment 1 on the scheduled batches catches it
    assert replay_segment(tiny_spec, dataset, cheat.checkpoints[1]) != cheat.boundary_hashes[2]


def test_reporting_the_batches_really_used_changes_the_data_root(round_trace, tiny_spec, dataset, genesis, tmp_path):
    cheat = CheatingRounds(Cheat(other_data_segments=frozenset({0}), report_actual_batches=True)).train_round(
        tiny_spec, dataset, genesis, tmp_path)
    assert cheat.data_root != round_trace.data_root
    assert cheat.batch_hashes[tiny_spec.segment_steps:] == round_trace.batch_hashes[tiny_spec.segment_steps:]


def test_a_changed_hyper_parameter_changes_the_hash(round_trace, tiny_spec, dataset, genesis, tmp_path):
    h1 = round_trace.boundary_hashes[1]
    for i, changed in enumerate([
        tiny_spec.with_(optimizer={"weight_decay": 0.05}),
        tiny_spec.with_(lr={"max_lr": 0.002}),
        tiny_spec.with_(optimizer={"beta2": 0.95}),
        tiny_spec.with_(model={"dropout": 0.0}),
    ]):
        end = replay_segment(changed, dataset, genesis)
        assert end != h1, f"change {i} did not change the state"
    lr_cheat = CheatingRounds(Cheat(lr_scale=1.5, lr_segments=frozenset({2}))).train_round(
        tiny_spec, dataset, genesis, tmp_path)
    assert lr_cheat.boundary_hashes[:3] == round_trace.boundary_hashes[:3]
    assert lr_cheat.boundary_hashes[3] != round_trace.boundary_hashes[3]


def test_skipped_segment_is_caught_by_replay(round_trace, tiny_spec, dataset, genesis, tmp_path):
    lazy = CheatingRounds(Cheat(skip_segments=frozenset({0}))).train_round(
        tiny_spec, dataset, genesis, tmp_path)
    assert lazy.boundary_hashes[1] != round_trace.boundary_hashes[1]
    assert replay_segment(tiny_spec, dataset, lazy.checkpoints[0]) == round_trace.boundary_hashes[1]


def test_a_missing_adam_moment_or_step_changes_the_replay(round_trace, tiny_spec, dataset, tmp_path):
    """A checkpoint that dropped (zeroed) part of the optimizer state replays to another hash."""
    j = 2
    expected = round_trace.boundary_hashes[j + 1]
    for what in ("exp_avg", "exp_avg_sq", "steps"):
        state = load_state(round_trace.checkpoints[j])
        name = sorted(state.params)[0]
        part = getattr(state, what)
        part[name] = torch.zeros_like(part[name])
        path = tmp_path / f"no_{what}.safetensors"
        h = save_state(path, state)
        assert h != round_trace.boundary_hashes[j]
        assert replay_segment(tiny_spec, dataset, path) != expected, f"zeroed {what} went unnoticed"


def test_genesis_is_a_pure_function_of_the_spec(tiny_spec, round_trace):
    assert state_hash(compute_genesis_state(tiny_spec)) == round_trace.boundary_hashes[0]
    assert state_hash(compute_genesis_state(tiny_spec.with_(seed=1))) != round_trace.boundary_hashes[0]
