"""Exact operators (node/engine/exact/ops.py) against independent references, bit for bit.

The references are plain Python (integers, math.frexp, round-half-even) or another BLAS
(numpy's), never the code under test; invariance is checked over blockings, thread counts
and operand layouts. Whole-trace invariance across processes is in test_exact_mode.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from node.engine.exact.ops import (F64, compute_slice_bits, exact_matmul, exp64, gelu_backward, gelu_forward,
                                   layer_norm_backward, layer_norm_forward, log64, quantize, softmax_rows, tree_sum)


def _random_matrix(gen: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    """float32 with a wide range inside rows (exponents over ~2^±20), zeros and a zero row."""
    x = torch.randn(rows, cols, generator=gen) * torch.exp2(torch.randint(-20, 20, (rows, cols), generator=gen).float())
    x[0, 0] = 0.0
    x[-1] = 0.0
    return x


def _reference_matmul(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """The definition in plain Python: per-row/column exponent, round-half-even to β bits,
    integer dot products, exact power-of-two scaling, one rounding to float32."""
    A, B = a.double().tolist(), b.double().tolist()
    K = len(B)
    bits = (53 - math.ceil(math.log2(K))) // 2 if K > 1 else 26

    def exponent(values):
        m = max(abs(v) for v in values)
        return math.frexp(m)[1]  # m = f·2^e, 0.5 <= f < 1; 0 for m = 0

    ea = [exponent(row) for row in A]
    eb = [exponent([B[k][j] for k in range(K)]) for j in range(len(B[0]))]
    qa = [[round(math.ldexp(v, bits - e)) for v in row] for row, e in zip(A, ea)]
    qb = [[round(math.ldexp(B[k][j], bits - eb[j])) for j in range(len(B[0]))] for k in range(K)]
    out = np.zeros((len(A), len(B[0])), dtype=np.float32)
    for i in range(len(A)):
        for j in range(len(B[0])):
            dot = sum(qa[i][k] * qb[k][j] for k in range(K))  # Python int: exact
            assert abs(dot) <= 2**53
            out[i, j] = np.float32(math.ldexp(float(dot), ea[i] + eb[j] - 2 * bits))  # exact double, then one rounding
    return out


@pytest.mark.parametrize("m, k, n, seed", [(5, 1, 3, 0), (7, 37, 5, 1), (4, 64, 9, 2), (3, 300, 4, 3)])
def test_exact_matmul_equals_the_integer_reference_bit_for_bit(m, k, n, seed):
    gen = torch.Generator().manual_seed(seed)
    a, b = _random_matrix(gen, m, k), _random_matrix(gen, k, n).t().contiguous().t()  # b column-major too
    got = exact_matmul(a, b).numpy()
    assert got.view(np.uint32).tolist() == _reference_matmul(a, b).view(np.uint32).tolist()


def test_slice_bits_keep_every_partial_sum_below_2_pow_53():
    for k in (1, 2, 3, 16, 17, 64, 4096, 4097, 10**6):
        bits = compute_slice_bits(k)
        assert k * 2 ** (2 * bits) <= 2**53 < k * 2 ** (2 * bits + 2)  # the largest β that is exact
    with pytest.raises(ValueError, match="K >= 1"):
        compute_slice_bits(0)


def test_exact_matmul_is_the_same_under_any_blocking_layout_thread_count_and_blas():
    gen = torch.Generator().manual_seed(7)
    a, b = _random_matrix(gen, 96, 200), _random_matrix(gen, 200, 80)
    full = exact_matmul(a, b)
    blocked = torch.cat([torch.cat([exact_matmul(a[i:i + 32], b[:, j:j + 16]) for j in range(0, 80, 16)], 1)
                         for i in range(0, 96, 32)], 0)
    assert torch.equal(full.view(torch.int32), blocked.view(torch.int32))
    transposed = exact_matmul(b.t().contiguous(), a.t().contiguous()).t()  # (BᵀAᵀ)ᵀ: another GEMM entirely
    assert torch.equal(full.view(torch.int32), transposed.view(torch.int32))
    batched = exact_matmul(a.view(3, 32, 200), b.expand(3, 200, 80))  # bmm instead of mm
    assert torch.equal(full.view(torch.int32), batched.reshape(96, 80).view(torch.int32))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = exact_matmul(a, b)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(full.view(torch.int32), two.view(torch.int32))
    # the same integer operands through the other BLAS (exact_matmul uses numpy's on the CPU; torch's is MKL)
    bits = compute_slice_bits(200)
    qa, sa = quantize(a, -1, bits)
    qb, sb = quantize(b, -2, bits)
    for blas in (torch.matmul, lambda x, y: torch.from_numpy(x.numpy() @ y.numpy())):
        other = blas(qa, qb).add_(0.0).mul_(sa).mul_(sb).float()
        assert torch.equal(full.view(torch.int32), other.view(torch.int32))
    # precision: β bits relative to each row's / column's largest element (not to each element):
    # |error| <= K·2^(ea+eb−β) + the final float32 rounding, ea, eb the block exponents
    ref = a.double() @ b.double()
    row_max = a.double().abs().amax(1, keepdim=True) * 2  # >= 2^ea
    col_max = b.double().abs().amax(0, keepdim=True) * 2
    bound = 200 * row_max * col_max * 2.0**-bits + ref.abs() * 2.0**-24
    assert ((full.double() - ref).abs() <= bound).all()


def test_quantize_shares_one_power_of_two_per_block():
    x = torch.tensor([[3.0, -0.5, 1e-9], [0.0, 0.0, 0.0]])
    q, s = quantize(x, -1, 10)
    assert q.tolist() == [[768.0, -128.0, 0.0], [0.0, 0.0, 0.0]]  # 3 < 2^2: scale 2^(10-2)
    assert s[0].item() == 2.0**-8
    assert all(math.frexp(v)[0] == 0.5 for v in s.view(-1).tolist())  # powers of two (a zero row's is unused)


def _reference_tree_sum(values: list[float]) -> float:
    """The documented order in Python floats: x[i] + x[i + ceil(n/2)], an odd middle carried."""
    while len(values) > 1:
        n, half = len(values), len(values) // 2
        values = [values[i] + values[i + (n + 1) // 2] for i in range(half)] + ([values[half]] if n % 2 else [])
    return values[0]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 385])
def test_tree_sum_follows_its_documented_order(n):
    gen = torch.Generator().manual_seed(n)
    magnitudes = torch.exp2(torch.randint(-30, 30, (3, n), generator=gen).to(F64))  # order matters at these ranges
    x = torch.randn(3, n, generator=gen, dtype=F64) * magnitudes
    got = tree_sum(x, -1)
    assert got.tolist() == [_reference_tree_sum(row) for row in x.tolist()]
    assert torch.equal(tree_sum(x.t().contiguous(), 0), got)  # either axis, same order


def test_exp_and_log_are_accurate_and_their_float32_results_correctly_rounded():
    z = torch.linspace(-103.0, 0.0, 400_001, dtype=F64)
    e = exp64(z)
    ref = torch.tensor([math.exp(v) for v in z.tolist()], dtype=F64)
    assert ((e - ref).abs() / ref).max() < 1e-12
    assert (e.float() == ref.float()).float().mean() > 0.9999  # float32: correctly rounded except rare ties of the double
    assert exp64(torch.tensor([-math.inf, -1000.0, 0.0], dtype=F64)).tolist()[2] == 1.0
    s = torch.logspace(-20, 20, 100_001, dtype=F64)
    ref_log = torch.tensor([math.log(v) for v in s.tolist()], dtype=F64)
    assert (log64(s) - ref_log).abs().max() < 1e-13


def test_softmax_gelu_layernorm_match_torch_closely():
    gen = torch.Generator().manual_seed(3)
    s = torch.randn(4, 6, 6, generator=gen, dtype=F64) * 5
    keep = torch.ones(6, 6, dtype=torch.bool).tril()
    ref = torch.softmax(s.masked_fill(~keep, -math.inf), -1)
    assert (softmax_rows(s, keep, F64) - ref).abs().max() < 1e-13
    x = torch.randn(1000, generator=gen) * 4
    y, t = gelu_forward(x)
    assert (y - torch.nn.functional.gelu(x.double(), approximate="tanh")).abs().max() < 1e-6
    xd = x.double().requires_grad_()
    torch.nn.functional.gelu(xd, approximate="tanh").sum().backward()
    assert (gelu_backward(torch.ones_like(x), x, t) - xd.grad).abs().max() < 1e-6
    h = torch.randn(50, 32, generator=gen) * 3 + 1
    w, b = torch.randn(32, generator=gen), torch.randn(32, generator=gen)
    out, cache = layer_norm_forward(h, w, b)
    hd, wd, bd = (t.double().requires_grad_() for t in (h, w, b))
    ref = torch.nn.functional.layer_norm(hd, (32,), wd, bd)
    assert (out - ref).abs().max() < 1e-5
    dy = torch.randn(50, 32, generator=gen)
    ref.backward(dy.double())
    dx, dw, db = layer_norm_backward(dy, w, cache)
    for got, want in ((dx, hd.grad), (dw, wd.grad), (db, bd.grad)):
        assert ((got - want).abs().max() / want.abs().max()) < 1e-5


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_exact_forward_backward_matches_autograd_of_the_plain_model(monkeypatch, dropout):
    """The hand-written backward is the gradient of the plain GPT (with tanh GELU) to float32 precision,
    with the same dropout masks (the step's counter-based stream, same sites)."""
    import node.engine.model as plain
    from node.engine.exact.model import forward_backward
    from node.engine.exact.step import step_dropout
    from node.engine.rng import StepRandom
    from node.engine.spec import ModelConfig

    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=dropout)
    gen = torch.Generator().manual_seed(5)
    model = plain.build_model(cfg)
    params = dict(sorted(model.named_parameters()))
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.02 if p.dim() >= 2 else 0.1) + (1.0 if "ln_" in name and
                                                                                             "weight" in name else 0))
    gelu = torch.nn.functional.gelu
    monkeypatch.setattr(plain.F, "gelu", lambda x: gelu(x, approximate="tanh"))
    idx = torch.randint(0, 256, (3, 17), generator=gen)
    rng = StepRandom((1337, 5))
    model.train()
    _, loss = model(idx[:, :-1], idx[:, 1:], rng=rng)
    loss.backward()
    exact_loss, grads = forward_backward(cfg, {n: p.detach() for n, p in params.items()}, idx[:, :-1], idx[:, 1:],
                                         step_dropout(rng, dropout, "cpu"))
    assert abs(exact_loss - loss.item()) < 1e-5
    assert sorted(grads) == sorted(params)
    for name, p in params.items():
        assert grads[name].dtype == torch.float32 and grads[name].shape == p.shape
        assert (grads[name] - p.grad).abs().max() <= 1e-4 * p.grad.abs().max() + 1e-9, name
