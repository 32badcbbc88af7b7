"""One training step: forward, backward, clipping, AdamW. Same bits on every replay.

Every random draw is a pure function of (seed, step, purpose, element index) (rng.py),
passed to the forward explicitly — never hidden RNG state, never torch's global
generator — so a replay from any checkpoint draws the same dropout masks, whatever other
threads of the process do (a trainer training ahead, in-process verifiers; issue #19).
A step changes no process-global torch state. AdamW is
written out here (not torch.optim, whose fused/foreach paths give different bits), and
its bias corrections use exact powers by repeated squaring, not libm `pow`.
"""
from __future__ import annotations

import hashlib
import math

import torch

from .model import build_model
from .exact.step import compute_power, exact_step  # compute_power: one rule for both modes
from .rng import StepRandom
from .runtime import compute_device
from .spec import TaskSpec
from .state import TrainingState


def seed_for(seed: int, step: int, purpose: str) -> int:
    """63-bit seed of one random stream: first 8 bytes of sha256("seed:step:purpose")."""
    digest = hashlib.sha256(f"{seed}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


class Trainer:
    """A model + optimizer state on the spec's device, stepping from a TrainingState."""

    def __init__(self, spec: TaskSpec, state: TrainingState):
        self.spec = spec
        self.device = torch.device(compute_device(spec))  # exact mode: this process's choice
        self.model = build_model(spec.model, self.device)  # empty: weights come from the state
        state.check_against(self.model)
        self.params = dict(sorted(self.model.named_parameters()))
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state.params[name])
        self.exp_avg = {n: state.exp_avg[n].to(self.device, copy=True) for n in self.params}
        self.exp_avg_sq = {n: state.exp_avg_sq[n].to(self.device, copy=True) for n in self.params}
        self.steps = {n: int(state.steps[n].item()) for n in self.params}
        self.global_step = state.global_step

    # ------------------------------------------------------------ the step
    def lr_at(self, g: int) -> float:
        """The learning rate of step g (the spec's schedule)."""
        return self.spec.lr.lr_at(g)

    def step(self, tokens: torch.Tensor, key: tuple | None = None) -> float:
        """Train on one batch (B, T+1) of token ids; returns the loss before the update.

        The lr position is global_step; the random key is v1's (seed, global_step) unless the
        caller passes the step's key (an epoch's slot: protocol.compute_step_key)."""
        spec, g = self.spec, self.global_step
        rng = StepRandom(key if key is not None else (spec.seed, g))
        tokens = tokens.to(self.device)
        x, y = tokens[:, :-1], tokens[:, 1:]  # (B, T) inputs and next-token targets
        lr = self.lr_at(g)
        if spec.runtime.mode == "exact":  # exact operators: the same bits on any machine (node/engine/exact/)
            loss = exact_step(spec, self.params, self.exp_avg, self.exp_avg_sq, self.steps, x, y, lr, rng)
            self.global_step = g + 1
            return loss
        self.model.train()
        for p in self.params.values():
            p.grad = None
        _, loss = self.model(x, y, rng=rng)  # dropout masks of this step's key
        loss.backward()
        self._clip_gradients(spec.optimizer.grad_clip)
        self._adamw(lr)
        self.global_step = g + 1
        return float(loss.item())

    @torch.no_grad()
    def _clip_gradients(self, max_norm: float) -> None:
        if max_norm <= 0:
            return
        grads = [p.grad for p in self.params.values()]
        total = torch.stack([g.norm(2.0) for g in grads]).norm(2.0)  # global L2 norm
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef)

    @torch.no_grad()
    def _adamw(self, lr: float) -> None:
        opt = self.spec.optimizer
        for name, p in self.params.items():
            grad, m, v = p.grad, self.exp_avg[name], self.exp_avg_sq[name]
            t = self.steps[name] + 1
            self.steps[name] = t
            if opt.weight_decay and p.dim() >= 2:  # decoupled decay, matrices only
                p.mul_(1.0 - lr * opt.weight_decay)
            m.mul_(opt.beta1).add_(grad, alpha=1.0 - opt.beta1)
            v.mul_(opt.beta2).addcmul_(grad, grad, value=1.0 - opt.beta2)
            bias1 = 1.0 - compute_power(opt.beta1, t)
            bias2_sqrt = math.sqrt(1.0 - compute_power(opt.beta2, t))  # IEEE sqrt: correctly rounded
            denom = v.sqrt().div_(bias2_sqrt).add_(opt.eps)  # in place: one temporary, same bits
            p.addcdiv_(m, denom, value=-lr / bias1)

    # ------------------------------------------------------------ state out
    def state(self) -> TrainingState:
        """A snapshot on the CPU (copies: later steps do not change it)."""
        cpu = lambda t: t.detach().to("cpu", copy=True)  # noqa: E731
        return TrainingState(
            params={n: cpu(p) for n, p in self.params.items()},
            exp_avg={n: cpu(t) for n, t in self.exp_avg.items()},
            exp_avg_sq={n: cpu(t) for n, t in self.exp_avg_sq.items()},
            steps={n: torch.tensor(s, dtype=torch.int64) for n, s in self.steps.items()},
            global_step=self.global_step,
        )
