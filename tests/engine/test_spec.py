"""TaskSpec: strict, canonical, hashed; the LR schedule uses + − × ÷ only."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.engine.errors import SpecError
from node.engine.spec import PRESETS, LRSchedule, TaskSpec


def test_canonical_json_round_trips_and_hash_is_keccak_of_it():
    from eth_utils import keccak

    spec = TaskSpec.default("bafkreiexample")
    again = TaskSpec.from_json(spec.canonical_json())
    assert again == spec
    assert again.canonical_json() == spec.canonical_json()
    assert spec.spec_hash() == keccak(spec.canonical_json())
    assert len(spec.spec_hash()) == 32


def test_key_order_and_whitespace_do_not_change_the_canonical_form():
    spec = TaskSpec.default("bafkreiexample")
    data = json.loads(spec.canonical_json())
    shuffled = json.dumps(dict(reversed(list(data.items()))), indent=3)
    assert TaskSpec.from_json(shuffled).canonical_json() == spec.canonical_json()


@pytest.mark.parametrize("change", [
    {"seed": 1338},
    {"batch_size": 9},
    {"lr": {"max_lr": 0.002}},
    {"optimizer": {"weight_decay": 0.0}},
    {"model": {"dropout": 0.0}},
    {"runtime": {"threads": 2}},
    {"protocol": {"samples": 3}},
    {"dataset": {"manifest_cid": "bafkreiother"}},
])
def test_every_field_changes_the_hash(change):
    spec = TaskSpec.default("bafkreiexample")
    assert spec.with_(**change).spec_hash() != spec.spec_hash()


@pytest.mark.parametrize("bad, words", [
    ({"batch_size": "8"}, "batch_size"),  # strict: no coercion from strings
    ({"batch_size": 8.0}, "batch_size"),
    ({"unknown_field": 1}, "unknown_field"),  # extra keys are refused
    ({"steps_per_round": 60, "segment_steps": 8}, "not a multiple"),
    ({"steps_per_round": 257 * 4, "segment_steps": 257}, "could not be disputed"),  # the last check spans 2k > 512 steps
    ({"runtime": {"device": "cuda"}}, "gpu_name"),
    ({"runtime": {"deterministic": False}}, "deterministic"),
    ({"protocol": {"quorum": 4, "committee_size": 3}}, "quorum"),
    ({"model": {"n_embd": 66, "n_head": 4}}, "divisible"),
    ({"version": 2}, "version"),
])
def test_invalid_specs_are_refused_with_the_field_named(bad, words):
    data = json.loads(TaskSpec.default().canonical_json())
    for key, value in bad.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    with pytest.raises(SpecError, match=words):
        TaskSpec.from_json(json.dumps(data))


def test_malformed_json_is_a_spec_error():
    with pytest.raises(SpecError, match="invalid task spec"):
        TaskSpec.from_json(b"{not json")


def test_presets_are_valid_and_demo_is_sized_for_two_cores():
    for name in PRESETS:
        assert TaskSpec.preset(name).name == name
    for demo in (TaskSpec.default(), TaskSpec.preset("demo")):
        assert demo.runtime.threads == 1 and demo.model.dropout > 0
        assert demo.segments_per_round >= demo.protocol.samples + 2
    demo = TaskSpec.preset("demo")  # what make demo runs: long rounds (pipelined: the chain's latency is hidden)
    assert demo.model == TaskSpec.default().model and demo.steps_per_round >= 1024
    assert demo.lr.decay_steps > 3 * demo.steps_per_round  # still decaying over the demo's honest rounds
    with pytest.raises(SpecError, match="unknown preset"):
        TaskSpec.preset("nope")


@settings(max_examples=200, deadline=None)
@given(max_lr=st.floats(1e-5, 1.0), ratio=st.floats(0.0, 1.0), warmup=st.integers(0, 100),
       decay=st.integers(1, 1000), step=st.integers(0, 2000))
def test_lr_schedule_stays_between_min_and_max(max_lr, ratio, warmup, decay, step):
    sched = LRSchedule(max_lr=max_lr, min_lr=max_lr * ratio, warmup_steps=warmup, decay_steps=decay)
    lr = sched.lr_at(step)
    if step < warmup:
        assert 0 < lr <= max_lr * (1 + 1e-12)
    else:
        assert sched.min_lr * (1 - 1e-12) <= lr <= max_lr * (1 + 1e-12)
    assert sched.lr_at(warmup + decay + step) == sched.min_lr


def test_lr_schedule_shape():
    sched = LRSchedule(max_lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=90)
    assert sched.lr_at(0) == 0.1 and sched.lr_at(9) == 1.0
    assert sched.lr_at(10) == 1.0 and sched.lr_at(55) == pytest.approx(0.55)
    assert sched.lr_at(100) == 0.1
