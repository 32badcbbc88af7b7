"""The exact-mode step: exact forward/backward, tree-norm clipping, AdamW in single IEEE ops.

Called by step.Trainer when spec.runtime.mode == "exact"; it reads and updates the
Trainer's own tensors (params, exp_avg, exp_avg_sq, steps), so states, checkpoints, hashes
and traces are those of the plain step — only the bits inside differ.
"""
from __future__ import annotations

import math

import torch

from ..rng import StepRandom, keep_mask
from .model import Dropout, forward_backward, no_dropout
from .optim import adamw_update, clip_gradients


def step_dropout(rng: StepRandom, p: float, device) -> Dropout:
    """The step's keep-masks: the plain model's (rng.StepRandom: key purpose dropout/<site>)."""
    return lambda site, shape: keep_mask(rng.key(f"dropout/{site}"), shape, p, device)


def compute_power(base: float, n: int) -> float:
    """base**n by repeated squaring: IEEE multiplications only, same bits everywhere (both modes use it)."""
    result, b = 1.0, base
    while n:
        if n & 1:
            result *= b
        b *= b
        n >>= 1
    return result


@torch.no_grad()
def exact_step(spec, params: dict, exp_avg: dict, exp_avg_sq: dict, steps: dict, x: torch.Tensor,
               y: torch.Tensor, lr: float, rng: StepRandom | None = None) -> float:
    """One training step on (x, y) (B, T) in place; returns the loss before the update.

    rng: the step's random stream (dropout masks); None only with dropout 0.
    """
    opt = spec.optimizer
    dropout = no_dropout if rng is None else step_dropout(rng, spec.model.dropout, x.device)
    names = sorted(params)  # one order for the norm and the update
    loss, grads = forward_backward(spec.model, {n: params[n].detach() for n in names}, x, y, dropout)
    grad_list = [grads[n] for n in names]
    clip_gradients(grad_list, opt.grad_clip)
    for name, grad in zip(names, grad_list):
        t = steps[name] + 1
        steps[name] = t
        bias1 = 1.0 - compute_power(opt.beta1, t)
        bias2_sqrt = math.sqrt(1.0 - compute_power(opt.beta2, t))
        adamw_update(params[name].detach(), grad, exp_avg[name], exp_avg_sq[name], t, lr, opt.beta1, opt.beta2,
                     opt.eps, opt.weight_decay, bias1, bias2_sqrt)
    return loss
