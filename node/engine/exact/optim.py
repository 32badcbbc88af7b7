"""Gradient clipping and AdamW with the same bits on every machine.

The plain step's versions are already written out, but `g.norm()` is a library reduction
(its order depends on threads and vector width) and `add_(alpha=)`, `addcmul_`, `addcdiv_`
may be one fused multiply-add on one device and two rounded operations on another. Here:
the norm is a tree sum in float64; every update is single IEEE operations, one torch op each;
scalars are rounded to float32 once, in Python, so no kernel sees a double.
"""
from __future__ import annotations

import functools
import math

import torch

from .ops import F32, F64, tree_sum


@functools.lru_cache(maxsize=4096)
def f32(x: float) -> torch.Tensor:
    """A Python float rounded once to a float32 0-dim tensor (an op's scalar operand; never written to)."""
    return torch.tensor(x, dtype=F32)


def compute_grad_norm(grads: list[torch.Tensor]) -> float:
    """Global L2 norm: Σ g² over every element (float64, one tree over all, in the given order), √ in Python."""
    flat = torch.cat([g.reshape(-1).to(F64) for g in grads])
    return math.sqrt(float(tree_sum(flat * flat, 0)))  # math.sqrt: IEEE, correctly rounded


def clip_gradients(grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale all gradients by min(1, max_norm / (norm + 1e-6)) in place, as the plain step."""
    if max_norm <= 0:
        return
    coef = min(max_norm / (compute_grad_norm(grads) + 1e-6), 1.0)
    if coef < 1.0:  # g·1 = g: skipping it changes no bit
        c = f32(coef)
        for g in grads:
            g.mul_(c)


def adamw_update(p: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr: float,
                 beta1: float, beta2: float, eps: float, weight_decay: float, bias1: float,
                 bias2_sqrt: float) -> None:
    """One AdamW step of one tensor, in place: each line one rounded IEEE operation per element.

    t is the step count after this update; bias1 = 1 − β1^t, bias2_sqrt = √(1 − β2^t),
    computed by the caller in Python doubles (exact powers by squaring, as the plain step).
    """
    if weight_decay and p.dim() >= 2:  # decoupled decay, matrices only
        p.mul_(f32(1.0 - lr * weight_decay))
    m.mul_(f32(beta1))
    m.add_(grad * f32(1.0 - beta1))
    v.mul_(f32(beta2))
    v.add_((grad * grad) * f32(1.0 - beta2))
    denom = v.sqrt()  # IEEE sqrt: correctly rounded on every device
    denom.div_(f32(bias2_sqrt))
    denom.add_(f32(eps))
    step = m / denom
    step.mul_(f32(-lr / bias1))
    p.add_(step)
