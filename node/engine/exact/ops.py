"""Exact operators: results whose bits do not depend on thread count, CPU ISA path, BLAS library or device.

Why each one is exact (../shared/notes/determinism.md has the measurements behind the recipe):

* An IEEE operation on one element (+ − × ÷ √, conversions, round, frexp, comparisons, max)
  is correctly rounded, so every CPU code path and every GPU gives the same bits for it.
  Everything here is built from such single operations, each its own torch op: a compiler
  may fuse a*b+c into one FMA inside a kernel (addcmul, lerp, alpha=), never across two ops.
* A library reduction (sum, mean, norm, matmul) adds in an order chosen by the library —
  per thread count, vector width, BLAS blocking, GPU — and floating-point addition is not
  associative. Two ways out, both used here:
  - make every partial sum exact: integers below 2^53 add exactly in fp64 in ANY order.
    `exact_matmul` scales each row of A and each column of B by a power of two and rounds
    them to β-bit integers, β = ⌊(53 − ⌈log2 K⌉)/2⌋, so every product is < 2^2β and every
    partial sum of K of them is < 2^53: one fp64 GEMM (any BLAS, any blocking, any thread
    count, CPU or GPU) returns the exact integer dot products; scaling back by powers of two
    is exact, and the one rounding to float32 at the end is correctly rounded.
  - fix the order: `tree_sum` adds halves elementwise, log2(n) elementwise ops, one order.
* exp and log come from a polynomial after range reduction, evaluated in fp64 with separate
  multiplies and adds (`exp64`, `log64`), never from libm / CUDA intrinsics (CUDA `expf`
  allows 2 ulp; glibc and MKL VML differ in the last bit).

One slice per operand: β bits relative to the largest element of a row (column) — 24 bits
at K ≤ 16, 22 at K ≤ 512, 20 at K ≤ 8192 — as precise as float32 for that row's largest
elements and coarser for elements far below them, whose contribution to the dot product is
small by the same factor. It is one fp64 GEMM per float32 GEMM (the Ozaki scheme's
three-or-more GEMMs buy precision past float32's, which training does not use).
"""
from __future__ import annotations

import math

import numpy as np
import torch

F32, F64 = torch.float32, torch.float64
MANTISSA_BITS_F64 = 53


# ------------------------------------------------------------------ powers of two
def pow2(n: torch.Tensor) -> torch.Tensor:
    """2**n as float64, built from the exponent bits (exact; no pow(), whose libm may round).

    n: integer tensor with -1022 <= n <= 1023.
    """
    return ((n.to(torch.int64) + 1023) << 52).view(F64)


def compute_slice_bits(k: int) -> int:
    """β = ⌊(53 − ⌈log2 K⌉)/2⌋: K products of two β-bit integers sum below 2^53, exactly."""
    if k < 1:
        raise ValueError("exact: a dot product needs K >= 1")
    return (MANTISSA_BITS_F64 - (k - 1).bit_length()) // 2


def quantize(x: torch.Tensor, dim: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block floating point along `dim`: x ≈ q · s with q integer-valued, |q| <= 2^bits.

    The shared exponent e is that of the block's largest magnitude (|x| < 2^e), so
    q = round(x · 2^(bits−e)) (ties to even) and s = 2^(e−bits). Returns (q float64,
    s float64 with `dim` kept as size 1). x · 2^k and the rounding are exact in x's own
    dtype (|q| <= 2^26 and q is an integer or already had no fraction bits), so a float32
    x is scaled and rounded in float32 (half the bytes) and widened after, exactly.
    """
    # amax = m·2^e with m in [0.5, 1): m·2^bits / amax is 2^(bits−e) exactly (an exact quotient, correctly rounded).
    # The clamp makes a zero block's amax 2^(bits−top) (q = 0 anyway) and keeps 2^(bits−e) finite in
    # x's dtype: blocks whose largest element is below that are quantized coarser, the same everywhere
    top = 128 if x.dtype == F32 else 1023
    amax = x.abs().amax(dim=dim, keepdim=True).clamp_(min=2.0 ** (bits - top))  # max: exact in any order
    m = torch.frexp(amax).mantissa
    scale = (m * 2.0**bits).div_(amax)  # 2^(bits−e), exact and a normal number
    q = (x * scale).round_()
    return q.to(F64), (amax.to(F64) / m.to(F64)).mul_(2.0**-bits)  # 2^(e−bits), exact (in float64: no overflow)


def integer_matmul(qa: torch.Tensor, qb: torch.Tensor) -> torch.Tensor:
    """qa @ qb for integer-valued float64 operands whose every partial sum is below 2^53.

    Any BLAS gives the same bits for these, so the fastest is used: on the CPU numpy's
    (OpenBLAS: ~1.3x MKL's fp64 GEMM on the AMD EPYC measured), elsewhere torch's (cuBLAS).
    """
    if qa.device.type == "cpu":
        return torch.from_numpy(np.matmul(qa.numpy(), qb.numpy()))
    return torch.matmul(qa, qb)


def exact_matmul(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype = F32) -> torch.Tensor:
    """a @ b (batched like torch.matmul) with the same bits on every machine.

    a: (..., M, K), b: (..., K, N), float32 or float64. Rows of `a` and columns of `b` are
    quantized to β-bit integers (see the module docstring); the fp64 GEMM of the integers is
    exact whatever order the BLAS adds in; the scales are powers of two, so the float64
    result is exact and `out_dtype=float32` rounds it once.
    """
    bits = compute_slice_bits(a.shape[-1])
    qa, sa = quantize(a, -1, bits)  # sa: (..., M, 1)
    qb, sb = quantize(b, -2, bits)  # sb: (..., 1, N)
    c = integer_matmul(qa, qb)  # integers < 2^53: every partial sum exact
    c.add_(0.0)  # a sum of zero products is -0 or +0 depending on the BLAS's order: make it +0
    c = c.mul_(sa).mul_(sb)  # exact: powers of two, no underflow (|c| >= 1 or 0, scales >= 2^-400)
    return c if out_dtype == F64 else c.to(out_dtype)


# ------------------------------------------------------------------ reductions
def tree_sum(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Sum along `dim` in one fixed order: pairwise halves, elementwise adds only.

    n values: the first ⌊n/2⌋ are added to the last ⌊n/2⌋ (x[i] + x[i + ⌈n/2⌉]); an odd
    middle element is carried to the next level. The same sequence of IEEE additions on every
    machine; the error grows with log2(n), as in a library's pairwise sum.
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    if n == 0:
        shape = list(x.shape)
        shape[dim] = 1
        out = x.new_zeros(shape)
        return out if keepdim else out.squeeze(dim)
    while n > 1:
        half, ceil_half = n // 2, (n + 1) // 2
        low, middle, high = x.tensor_split([half, ceil_half], dim)  # views; middle is empty for even n
        pairs = low + high
        x = torch.cat([pairs, middle], dim) if n % 2 else pairs
        n = ceil_half
    return x if keepdim else x.squeeze(dim)


# ------------------------------------------------------------------ exp / log in fp64
LN2 = math.log(2.0)
INV_LN2 = 1.0 / LN2
LN2_HI = math.ldexp(round(math.ldexp(LN2, 31)), -31)  # ln 2 to 31 bits: n · LN2_HI exact for |n| < 2^22
LN2_LO = LN2 - LN2_HI  # the rest (exact subtraction: same leading bits)
ROUNDER = 2.0**52 + 2.0**51  # t + ROUNDER - ROUNDER rounds |t| < 2^51 to an integer (ties to even)
EXP_DEGREE = 10  # Taylor on |r| <= ln2/2: r^11/11! < 3e-13, far below float32's 6e-8
EXP_COEFFS = [1.0 / math.factorial(i) for i in range(EXP_DEGREE + 1)]
EXP_MIN = -708.0  # e^-708 is still a normal float64 (2^n buildable from its exponent bits)
SQRT_HALF = math.sqrt(0.5)
LOG_TERMS = 9  # atanh series: f^(2·9+1)/19 with |f| <= 0.1716 is < 2e-16


def exp64(z: torch.Tensor) -> torch.Tensor:
    """e^z for z <= 0 (every caller: softmax, cross-entropy, tanh), float64; same bits everywhere.

    z = n·ln2 + r with n an integer and |r| <= ln2/2; e^r by Horner (multiply, then add:
    two ops, never an FMA); times 2^n built from its bits. z is clamped to [-708, 0] (callers
    mask what must be exactly 0; e^-708 ≈ 3e-308 is 0 in float32 anyway).
    """
    z = z.to(F64).clamp(EXP_MIN, 0.0)
    t = z * INV_LN2
    t.add_(ROUNDER)  # t − ROUNDER = n = round(z / ln2); t's low mantissa bits hold n
    n = t - ROUNDER
    r = z.sub_(n * LN2_HI).sub_(n.mul_(LN2_LO))  # Cody–Waite: z − n·ln2 in two exact-ish steps
    p = r * EXP_COEFFS[-1]
    p.add_(EXP_COEFFS[-2])
    for c in reversed(EXP_COEFFS[:-2]):
        p.mul_(r).add_(c)
    # 2^n: t's bits are those of ROUNDER + n; + 1023 makes the low 11 bits n's biased exponent
    # (0 < n + 1023 < 2048 for z >= -708), & 2047 keeps just them, << 52 puts them in the exponent field
    two_n = ((t.add_(1023.0).view(torch.int64) & 2047) << 52).view(F64)
    return p.mul_(two_n)


def log64(s: torch.Tensor) -> torch.Tensor:
    """ln s for s > 0 in float64: s = m·2^e, m in [√½, √2), ln m = 2·atanh((m−1)/(m+1)) by its series."""
    m, e = torch.frexp(s.to(F64))  # m in [0.5, 1)
    low = m < SQRT_HALF
    m = torch.where(low, m * 2.0, m)
    e = (e - low.to(e.dtype)).to(F64)
    f = (m - 1.0) / (m + 1.0)
    f2 = f * f
    p = torch.full_like(f, 1.0 / (2 * LOG_TERMS - 1))
    for k in reversed(range(LOG_TERMS - 1)):
        p = p * f2 + 1.0 / (2 * k + 1)
    return e * LN2_HI + (e * LN2_LO + (f * p) * 2.0)


# ------------------------------------------------------------------ row-wise functions, in chunks
CHUNK_ELEMENTS = 32768  # 256 KB of float64: a chunk's temporaries stay in cache (4x faster than whole tensors)


def map_rows(fn, *xs: torch.Tensor):
    """fn(*chunks) over chunks of dim 0 of `xs`, results written into whole tensors.

    Only for row-wise fn (each output row depends on its own input rows): the chunking
    changes no bit, only how long the ~30 elementwise passes of exp & co. stay in cache.
    """
    n = xs[0].shape[0]
    rows = max(1, CHUNK_ELEMENTS // max(1, xs[0][0].numel() if n else 1))
    if rows >= n:
        return fn(*xs)
    outs, single = None, False
    for i in range(0, n, rows):
        res = fn(*(x[i:i + rows] for x in xs))
        if outs is None:
            single = not isinstance(res, tuple)
            outs = [torch.empty((n, *r.shape[1:]), dtype=r.dtype, device=r.device) for r in ((res,) if single else res)]
        for out, r in zip(outs, (res,) if single else res):
            out[i:i + rows] = r
    return outs[0] if single else tuple(outs)


# ------------------------------------------------------------------ softmax, GELU, LayerNorm
def _softmax_rows(s: torch.Tensor, keep: torch.Tensor | None, out_dtype: torch.dtype, scale: float) -> torch.Tensor:
    s = s.to(F64, copy=True)
    if scale != 1.0:
        s.mul_(scale)
    if keep is not None:
        s.masked_fill_(~keep, -math.inf)
    e = exp64(s.sub_(s.amax(dim=-1, keepdim=True)))  # max is exact in any order
    if keep is not None:
        e.masked_fill_(~keep, 0.0)
    return e.div_(tree_sum(e, -1, keepdim=True)).to(out_dtype)


def softmax_rows(s: torch.Tensor, keep: torch.Tensor | None = None, out_dtype: torch.dtype = F32,
                 scale: float = 1.0) -> torch.Tensor:
    """Softmax of scale·s over the last dim in float64 (exp64, tree_sum, one division), rounded once
    to out_dtype; `keep` (broadcast over the leading dims) masks entries to exactly 0."""
    return map_rows(lambda chunk: _softmax_rows(chunk, keep, out_dtype, scale), s)


def _softmax_backward(dp: torch.Tensor, p: torch.Tensor, keep: torch.Tensor | None, drop_scale: float,
                      scale: float) -> torch.Tensor:
    a = p.to(F64)
    dp = dp.to(F64, copy=True)
    if keep is not None:  # the backward of dropout applied to the softmax's output: dp · keep · 1/(1−p)
        dp.mul_(keep).mul_(drop_scale)
    return ((dp - tree_sum(dp * a, -1, keepdim=True)) * a).mul_(scale).to(F32)


def softmax_backward(dp: torch.Tensor, p: torch.Tensor, scale: float = 1.0, keep: torch.Tensor | None = None,
                     drop_scale: float = 1.0) -> torch.Tensor:
    """scale · d softmax: (dp − Σ_j dp·p)·p in float64 (tree sum), rounded once (masked p = 0 gives 0).

    With `keep`, dp is first taken through the backward of dropout (dp · keep · drop_scale), so
    dp is the gradient of the dropped-out probabilities.
    """
    if keep is None:
        return map_rows(lambda d, a: _softmax_backward(d, a, None, drop_scale, scale), dp, p)
    return map_rows(lambda d, a, k: _softmax_backward(d, a, k, drop_scale, scale), dp, p, keep)


GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def _gelu_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(F64)
    z = x * x
    z.mul_(x).mul_(GELU_A).add_(x).mul_(GELU_C)  # (x + x³·a)·c
    e = exp64(z.abs().mul_(-2.0))
    t = (1.0 - e).div_(e.add_(1.0))
    t.copysign_(z)  # tanh is odd
    y = x * 0.5
    return y.mul_(t + 1.0).to(F32), t


def gelu_forward(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GELU, tanh form (0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))), in float64, rounded once.

    The tanh form because it needs only exp (exact here); erf would need its own polynomial.
    tanh(|z|) = (1 − e^(−2|z|)) / (1 + e^(−2|z|)): no overflow. Returns (y float32, tanh
    float64 for the backward).
    """
    return map_rows(_gelu_forward, x)


def _gelu_backward(dy: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    x = x.to(F64)
    dz = x * x
    dz.mul_(3.0 * GELU_A).add_(1.0).mul_(GELU_C)
    d = (1.0 - t * t).mul_(x * 0.5).mul_(dz)
    d.add_((t + 1.0).mul_(0.5))
    return d.mul_(dy).to(F32)


def gelu_backward(dy: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """d/dx of the tanh GELU: 0.5(1+t) + 0.5·x·(1−t²)·√(2/π)(1 + 3·0.044715x²), in float64."""
    return map_rows(_gelu_backward, dy, x, t)


def layer_norm_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, eps: float = 1e-5):
    """LayerNorm over the last dim in float64 (tree sums), rounded once. Returns (y, (xhat, rstd))."""
    n = x.shape[-1]
    x = x.to(F64)
    xc = x - tree_sum(x, -1, keepdim=True) / n
    var = tree_sum(xc * xc, -1, keepdim=True) / n  # biased variance, as torch's LayerNorm
    rstd = 1.0 / torch.sqrt(var + eps)
    xhat = xc * rstd
    y = xhat * w.to(F64)
    if b is not None:
        y = y + b.to(F64)
    return y.to(F32), (xhat, rstd)


def layer_norm_backward(dy: torch.Tensor, w: torch.Tensor, cache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dw, db) of layer_norm_forward; x is (rows, n). Row sums for dw/db in tree order."""
    xhat, rstd = cache
    n = dy.shape[-1]
    dy = dy.to(F64)
    dw, db = tree_sum(torch.stack([dy * xhat, dy], 1), 0).to(F32).unbind(0)  # both row sums in one tree
    dxhat = dy * w.to(F64)
    means = tree_sum(torch.stack([dxhat, dxhat * xhat], 0), -1, keepdim=True) / n  # the same sums, one tree
    dx = ((dxhat - means[0]) - xhat * means[1]) * rstd
    return dx.to(F32), dw, db
