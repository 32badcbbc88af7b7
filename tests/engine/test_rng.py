"""Counter-based random bits (node/engine/rng.py): the tensors equal the plain-Python definition
on random keys and indices, uniforms and masks follow from the bits exactly, and the bits look
random enough for dropout (rates, bit balance, independence across keys)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.engine.rng import (
    MASK32,
    StepRandom,
    _mix,
    compute_bits_reference,
    compute_keep_threshold,
    compute_key,
    compute_mix_reference,
    keep_mask,
    random_bits,
    uniform,
)

word = st.integers(0, MASK32)
keys = st.tuples(word, word)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(word, min_size=1, max_size=200))
def test_mix_on_tensors_equals_the_reference(values):
    values += [0, 1, MASK32, MASK32 - 1, 2**31, 2**31 - 1]  # the edges: top bit set, all ones
    out = _mix(torch.tensor(values, dtype=torch.int64)).tolist()
    assert out == [compute_mix_reference(v) for v in values]
    assert all(0 <= v <= MASK32 for v in out)


@settings(max_examples=60, deadline=None)
@given(key=keys, n=st.integers(1, 3000), picks=st.lists(st.integers(0, 2999), min_size=1, max_size=20))
def test_random_bits_equal_the_reference_at_random_indices(key, n, picks):
    bits = random_bits(key, (n,))
    assert bits.dtype == torch.int64
    for i in {p % n for p in picks} | {0, n - 1}:
        assert bits[i].item() == compute_bits_reference(key, i)


@settings(max_examples=40, deadline=None)
@given(key=keys, shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       p=st.floats(0.0, 1.0, exclude_max=True))
def test_uniforms_and_masks_follow_from_the_bits_exactly(key, shape, p):
    n = math.prod(shape)
    ref = [compute_bits_reference(key, i) >> 8 for i in range(n)]
    u = uniform(key, shape)
    assert u.shape == tuple(shape) and u.dtype == torch.float32
    assert u.flatten().tolist() == [r * 2.0**-24 for r in ref]  # exact: 24-bit integers times 2^-24
    keep = keep_mask(key, shape, p)
    assert keep.flatten().tolist() == [r * 2.0**-24 >= p for r in ref]  # u >= p, p a double


@given(seed=st.integers(0, 2**63 - 1), counters=st.lists(st.integers(0, 2**40), max_size=4),
       purpose=st.text(max_size=20))
def test_compute_key_is_a_pure_function_of_its_parts(seed, counters, purpose):
    key = compute_key(seed, *counters, purpose=purpose)
    assert key == compute_key(seed, *counters, purpose=purpose)
    assert all(0 <= w <= MASK32 for w in key)
    assert key != compute_key(seed, *counters, 0, purpose=purpose)  # one more counter, another key
    assert key != compute_key(seed, *counters, purpose=purpose + "x")


def test_key_encodings_do_not_collide_and_bad_parts_are_refused():
    assert compute_key(1, 23, purpose="p") != compute_key(12, 3, purpose="p")
    assert compute_key(1, 2, purpose="3/p") != compute_key(1, 2, 3, purpose="p")
    for bad in (-1, True, 1.0, "1"):
        with pytest.raises(ValueError, match="non-negative integers"):
            compute_key(bad, purpose="p")
    with pytest.raises(ValueError, match="not in"):
        compute_keep_threshold(1.0)


def test_dropout_rate_and_bit_balance_over_a_million_draws():
    n = 1 << 20
    bits = random_bits(compute_key(1337, 0, purpose="stats"), (n,))
    for b in range(32):  # every bit position is a fair coin (5 sigma = 2560 of 2^20)
        ones = ((bits >> b) & 1).sum().item()
        assert abs(ones - n / 2) < 5 * math.sqrt(n / 4), f"bit {b} set {ones} times of {n}"
    for p in (0.1, 0.5):
        kept = keep_mask(compute_key(1337, 0, purpose=f"rate{p}"), (n,), p).sum().item()
        assert abs(kept - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))


def test_masks_of_neighbouring_steps_sites_and_elements_are_independent():
    n, p = 1 << 18, 0.1
    a = keep_mask(StepRandom((7, 10)).key("dropout/h.0.attn"), (n,), p).float()
    others = [keep_mask(StepRandom((7, 11)).key("dropout/h.0.attn"), (n,), p).float(),  # next step
              keep_mask(StepRandom((7, 10)).key("dropout/h.0.mlp"), (n,), p).float(),  # other site
              a.roll(1)]  # neighbouring element of the same draw
    for b in others:
        corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
        assert abs(corr.item()) < 5 / math.sqrt(n), corr.item()


def test_step_dropout_scales_kept_elements_and_zeroes_the_rest():
    rng = StepRandom((1, 2))
    x = torch.randn(4, 8, 16, generator=torch.Generator().manual_seed(0))
    y = rng.dropout(x, 0.25, "h.0.mlp")
    keep = keep_mask(rng.key("dropout/h.0.mlp"), x.shape, 0.25)
    assert torch.equal(y, x * keep.float() * (1 / 0.75))
    assert torch.equal(rng.dropout(x, 0.25, "h.0.mlp"), y)  # no state: the same call, the same bits
    assert not torch.equal(rng.dropout(x, 0.25, "h.0.attn"), y)
    assert rng.dropout(x, 0.0, "h.0.mlp") is x


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bits_equal_cpu_bits():
    key = compute_key(1337, 5, purpose="dropout/h.0.attn")
    shape = (8, 4, 64, 64)
    assert torch.equal(random_bits(key, shape, "cuda").cpu(), random_bits(key, shape))
    assert torch.equal(keep_mask(key, shape, 0.1, "cuda").cpu(), keep_mask(key, shape, 0.1))
