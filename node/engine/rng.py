"""Counter-based random bits: a pure function of (key, element index), the same on every device.

Every random draw of the engine is keyed by (seed, *counters, purpose) — v1 steps pass
(seed, g), v2 epochs (seed, e, i, t) — and element n of a draw is

    bits(key, n) = mix(mix((n + k0) mod 2^32) XOR k1)        (32 bits)

where (k0, k1) are the first 8 bytes of sha256 of the key and `mix` is a 32-bit integer
hash (two multiply–xorshift rounds, H. Wellons' hash-prospector family). No generator
state exists anywhere: two threads, two processes or a CPU and a GPU drawing the same
(key, n) get the same bits, and torch's global RNG is neither read nor written.

Why not torch.Generator: its CPU and CUDA streams differ for one seed, and a generator
that is shared (the global one) is moved by whatever else the process does — an
honest trainer was convicted that way (issue #19).

The tensor path is built from int64 operations on values < 2^32 whose results stay
below 2^63 (the multipliers are < 2^31), so there is no overflow, and every right
shift is of a non-negative number (logical = arithmetic): exact on any backend.
Uniforms are the top 24 bits times 2^-24 (exact in float32); a dropout keep-mask is
`u >= p`, compared as integers: (bits >> 8) >= ceil(p · 2^24).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

MASK32 = 0xFFFF_FFFF
MAX_ELEMENTS = 2**32  # one draw indexes its elements with 32 bits
# multiply–xorshift rounds (shift, multiplier, shift, multiplier, shift): hash-prospector's
# [16 21f0aaad 15 735a2d97 15]; both multipliers < 2^31 so x * c < 2^63 for any 32-bit x
SHIFT_1, MULT_1, SHIFT_2, MULT_2, SHIFT_3 = 16, 0x21F0AAAD, 15, 0x735A2D97, 15


def compute_key(seed: int, *counters: int, purpose: str) -> tuple[int, int]:
    """The two 32-bit key words of the draw (seed, *counters, purpose): sha256, first 8 bytes.

    Integers are written in decimal joined by ':' and the purpose follows a '/', so no two
    different keys share an encoding.
    """
    for value in (seed, *counters):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"rng: key parts must be non-negative integers, got {value!r}")
    encoded = ":".join(str(v) for v in (seed, *counters)) + "/" + purpose
    digest = hashlib.sha256(encoded.encode()).digest()
    return int.from_bytes(digest[0:4], "big"), int.from_bytes(digest[4:8], "big")


# ---------------------------------------------------------------- the reference (plain Python)
def compute_mix_reference(x: int) -> int:
    x ^= x >> SHIFT_1
    x = (x * MULT_1) & MASK32
    x ^= x >> SHIFT_2
    x = (x * MULT_2) & MASK32
    return x ^ (x >> SHIFT_3)


def compute_bits_reference(key: tuple[int, int], index: int) -> int:
    """Element `index` of the draw `key`: 32 random bits (the definition the tensors follow)."""
    k0, k1 = key
    return compute_mix_reference(compute_mix_reference((index + k0) & MASK32) ^ k1)


# ---------------------------------------------------------------- tensors
def _mix(x: torch.Tensor) -> torch.Tensor:
    """compute_mix_reference on an int64 tensor of values in [0, 2^32), in place."""
    x.bitwise_xor_(x >> SHIFT_1)
    x.mul_(MULT_1).bitwise_and_(MASK32)
    x.bitwise_xor_(x >> SHIFT_2)
    x.mul_(MULT_2).bitwise_and_(MASK32)
    return x.bitwise_xor_(x >> SHIFT_3)


def random_bits(key: tuple[int, int], shape, device="cpu") -> torch.Tensor:
    """int64 tensor of `shape` holding bits(key, n) for n = 0 .. numel-1 in row-major order."""
    shape = tuple(shape)
    n = math.prod(shape)
    if n > MAX_ELEMENTS:
        raise ValueError(f"rng: a draw of {n} elements exceeds {MAX_ELEMENTS} (32-bit element index)")
    k0, k1 = key
    x = torch.arange(n, dtype=torch.int64, device=device).add_(k0).bitwise_and_(MASK32)
    return _mix(_mix(x).bitwise_xor_(k1)).view(shape)


def uniform(key: tuple[int, int], shape, device="cpu") -> torch.Tensor:
    """float32 uniforms in [0, 1): the top 24 bits times 2^-24 (every value exact)."""
    return (random_bits(key, shape, device) >> 8).to(torch.float32).mul_(2.0**-24)


def compute_keep_threshold(p: float) -> int:
    """The integer t with (u >= p) == (bits >> 8 >= t) for u = (bits >> 8) · 2^-24."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"rng: dropout probability {p} not in [0, 1)")
    return math.ceil(p * 2**24)  # p · 2^24 is exact in a double: only the exponent changes


def keep_mask(key: tuple[int, int], shape, p: float, device="cpu") -> torch.Tensor:
    """bool tensor: element kept (u >= p), dropped with probability p (to 2^-24)."""
    return (random_bits(key, shape, device) >> 8) >= compute_keep_threshold(p)


# ---------------------------------------------------------------- a forward's stream
@dataclass(frozen=True)
class StepRandom:
    """The random stream of one training step, passed explicitly to the model's forward.

    `counters` is the step's key without the purpose: (seed, g) in v1, (seed, e, i, t)
    for epochs (docs/protocol-v2-interface.md `compute_random_key`). Each draw site names
    its purpose ("dropout/h.0.attn", ...), so sites never share bits and a new site does
    not shift the others.
    """

    counters: tuple[int, ...]

    def key(self, purpose: str) -> tuple[int, int]:
        return compute_key(*self.counters, purpose=purpose)

    def dropout(self, x: torch.Tensor, p: float, site: str) -> torch.Tensor:
        """Inverted dropout of x: kept elements scaled by 1/(1-p), the mask from (counters, site)."""
        if p == 0.0:
            return x
        keep = keep_mask(self.key(f"dropout/{site}"), x.shape, p, x.device)
        return x * keep.to(x.dtype) * (1.0 / (1.0 - p))
