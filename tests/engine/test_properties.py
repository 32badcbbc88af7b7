"""Property tests of the engine's invariants (hypothesis)."""
from __future__ import annotations

import json

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.engine.dataset import Dataset
from node.engine.spec import TaskSpec
from node.engine.state import hash_tensors

names = st.text(alphabet="abcdefghij._", min_size=1, max_size=12)
shapes = st.lists(st.integers(0, 5), min_size=0, max_size=3)


@st.composite
def tensor_maps(draw):
    out = {}
    for name in draw(st.lists(names, min_size=1, max_size=6, unique=True)):
        shape = draw(shapes)
        if draw(st.booleans()):
            out[name] = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
        else:
            out[name] = torch.randint(-5, 5, shape, dtype=torch.int64)
    return out


@settings(max_examples=60, deadline=None)
@given(tensor_maps(), st.randoms(use_true_random=False))
def test_state_hash_ignores_order_and_threading(tensors, rnd):
    items = list(tensors.items())
    rnd.shuffle(items)
    assert hash_tensors(dict(items), parallel=True) == hash_tensors(tensors, parallel=False)


@settings(max_examples=60, deadline=None)
@given(tensor_maps(), st.data())
def test_state_hash_changes_with_any_element(tensors, data):
    candidates = [n for n, t in tensors.items() if t.numel()]
    if not candidates:
        return
    name = data.draw(st.sampled_from(candidates))
    i = data.draw(st.integers(0, tensors[name].numel() - 1))
    changed = dict(tensors)
    t = tensors[name].clone()
    t.view(-1)[i] += 1
    changed[name] = t
    assert hash_tensors(changed) != hash_tensors(tensors)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), g=st.integers(0, 10**9), B=st.integers(1, 8), T=st.integers(2, 64),
       extra=st.integers(1, 500))
def test_batches_are_in_range_windows_of_the_stream(seed, g, B, T, extra):
    ds = Dataset(bytes((i * 7) % 256 for i in range(T + extra)))
    offsets = ds.offsets(seed, g, B, T)
    assert all(0 <= o < len(ds) - T for o in offsets)
    batch = ds.batch(seed, g, B, T)
    assert batch.shape == (B, T + 1)
    for row, o in zip(batch, offsets):
        assert torch.equal(row, ds.tokens[o:o + T + 1].long())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), batch=st.integers(1, 64), k=st.integers(1, 16), m=st.integers(2, 16),
       lr=st.floats(1e-6, 1.0), name=st.text(max_size=20))
def test_spec_canonical_json_round_trips(seed, batch, k, m, lr, name):
    spec = TaskSpec.default("bafkreitest").with_(seed=seed, batch_size=batch, segment_steps=k,
                                                  steps_per_round=k * m, name=name,
                                                  lr={"max_lr": lr, "min_lr": lr / 10})
    again = TaskSpec.from_json(spec.canonical_json())
    assert again == spec and again.spec_hash() == spec.spec_hash()
    assert json.loads(spec.canonical_json())["seed"] == seed
