"""Epochs: N slots train H inner steps each from the epoch's base, then one outer step (issue #14).

The outer step (DiLoCo with Nesterov momentum), per element of every parameter:

    Δ  = Σ_{i ∈ A, slot order} (θ − θᵢ) / |A|      fp64: one IEEE sub, div, add per slot
    b' = μ·b + Δ                                     fp64 (b: the stored fp32 outer momentum)
    θ' = θ − lr·(Δ + μ·b')                           fp64, then θ' and b' rounded once to fp32

Δ is kept in fp64 up to θ' (not rounded to fp32 first): θ − round32(θ − θ₁) is not θ₁ when a
weight changed sign or scale (no Sterbenz), while in fp64 θ − θ₁ is exact whenever θ and θ₁
lie within 2^29 of each other, so with one slot and the identity outer step (lr 1, μ 0) the
epoch's state is the slot's final state bit for bit (tests/engine/test_outer.py).

Inner AdamW moments: averaged over A (fp64, rounded once; per-parameter step counts are equal
across slots), reset to zero with the step count (then AdamW's bias correction restarts), or
`corrected`: the first moment averaged (which is exactly what data-parallel's would be: m is
linear in the gradients) and the second moment data-parallel would have accumulated with an
|A|x batch. An averaged v carries every slot's own gradient noise s (one batch's), data-parallel's
only s/|A|, so the averaged v makes DiLoCo's inner steps smaller in noise-dominated coordinates
(bench/diloco-lr.md: a larger inner lr does not make up for it). Per element, with the epoch's
inner steps h (the slots' AdamW step count minus the base's) and c1 = b1^h, c2 = b2^h:

    new_i = v_i - c2·v_base        this epoch's part of slot i's v: an EMA of g_i², E = mu² + s
    d_i   = m_i - c1·m_base        this epoch's part of slot i's m: E[d_i·d_j] = (1 - c1)²·mu², i != j
    mu²   = max(0, ((Σ d_i)² - Σ d_i²) / (|A|(|A| - 1)(1 - c1)²))      (independent batches)
    v'    = c2·v_base + mean_i(new_i)/|A| + (1 - 1/|A|)(1 - c2)·mu²   (E[ḡ²] = E[g_i²]/|A| + (1 - 1/|A|)mu²)

in fp64, slot order, rounded once to fp32; one slot (no pair to estimate mu² from) is `average`.
|A| = 0: the state is returned unchanged. Every operation is elementwise in a fixed order, so
the result does not depend on threads or devices (no reductions across elements).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .spec import EpochConfig, OptimizerConfig, TaskSpec
from .state import TrainingState, load_state, save_state, state_hash


def compute_outer_step(base: TrainingState, slots: list[TrainingState], config: EpochConfig,
                       optimizer: OptimizerConfig | None = None) -> TrainingState:
    """The epoch's state from its base and the final states of its accepted slots (slot order);
    `optimizer` (the spec's: its betas) is needed by inner_moments `corrected`."""
    if not slots:
        return base  # no slot accepted: the state is unchanged (the epoch still advances)
    n = len(slots)
    for s in slots:
        if set(s.params) != set(base.params):
            raise ValueError("outer: a slot's parameters differ from the base's")
    lr, mu = config.outer_lr, config.outer_momentum
    params, momentum = {}, {}
    for name, theta32 in base.params.items():
        theta = theta32.double()
        delta = torch.zeros_like(theta)
        for s in slots:  # slot order: fp64 addition is not associative
            delta += (theta - s.params[name].double()) / n
        b = base.outer_momentum[name].double() if base.outer_momentum is not None else torch.zeros_like(theta)
        b = mu * b + delta
        params[name] = (theta - lr * (delta + mu * b)).float()
        momentum[name] = b.float()
    if config.inner_moments in ("average", "corrected"):
        steps = {}
        for n_ in base.params:
            counts = {int(s.steps[n_].item()) for s in slots}
            if len(counts) != 1:
                raise ValueError(f"outer: slots took different AdamW step counts for {n_}: {sorted(counts)}")
            steps[n_] = slots[0].steps[n_].clone()
        exp_avg = {n_: _mean([s.exp_avg[n_] for s in slots]) for n_ in base.params}
        if config.inner_moments == "corrected" and n > 1:  # one slot: no pair to estimate mu² from, `average`
            if optimizer is None:
                raise ValueError("outer: inner_moments 'corrected' needs the spec's optimizer (its betas)")
            exp_avg_sq = {n_: _data_parallel_second_moment(base, slots, n_, optimizer) for n_ in base.params}
        else:
            exp_avg_sq = {n_: _mean([s.exp_avg_sq[n_] for s in slots]) for n_ in base.params}
    else:  # reset
        exp_avg = {n_: torch.zeros_like(t) for n_, t in base.params.items()}
        exp_avg_sq = {n_: torch.zeros_like(t) for n_, t in base.params.items()}
        steps = {n_: torch.tensor(0, dtype=torch.int64) for n_ in base.params}
    global_steps = {s.global_step for s in slots}
    if len(global_steps) != 1:
        raise ValueError(f"outer: slots end at different steps {sorted(global_steps)}")
    # an identity outer step never stores momentum: the epoch state of a one-slot task is then the
    # slot's final state, tensor for tensor (hash included)
    keep_momentum = mu != 0.0
    return TrainingState(params, exp_avg, exp_avg_sq, steps, global_steps.pop(),
                         momentum if keep_momentum else None)


def _data_parallel_second_moment(base: TrainingState, slots: list[TrainingState], name: str,
                                 optimizer: OptimizerConfig) -> torch.Tensor:
    """inner_moments `corrected`: the AdamW second moment of `name` that data-parallel training with a
    len(slots)x batch would have after this epoch (the module docstring's formula)."""
    n = len(slots)
    h = int(slots[0].steps[name].item()) - int(base.steps[name].item())  # the epoch's inner steps
    if h <= 0:
        raise ValueError(f"outer: slots took {h} AdamW steps for {name} in this epoch")
    c1, c2 = optimizer.beta1 ** h, optimizer.beta2 ** h
    v_base, m_base = base.exp_avg_sq[name].double(), base.exp_avg[name].double()
    new_sum, d_sum, d_sq = torch.zeros_like(v_base), torch.zeros_like(v_base), torch.zeros_like(v_base)
    for s in slots:  # slot order
        d = s.exp_avg[name].double() - c1 * m_base
        new_sum += s.exp_avg_sq[name].double() - c2 * v_base
        d_sum += d
        d_sq += d * d
    mu2 = ((d_sum * d_sum - d_sq) / (n * (n - 1) * (1 - c1) ** 2)).clamp(min=0.0)
    v = c2 * v_base + new_sum / n / n + (1 - 1 / n) * (1 - c2) * mu2
    return v.clamp(min=0.0).float()


def _mean(tensors: list[torch.Tensor]) -> torch.Tensor:
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t in tensors:
        acc += t.double() / len(tensors)
    return acc.float()


def save_epoch_state(spec: TaskSpec, state: TrainingState, path) -> bytes:
    """Write an epoch's state file: the one writer of train-local's epochs and of the nodes' aggregates,
    so the same state is the same file (the same CID) wherever it was computed."""
    return save_state(path, state, {"spec_hash": "0x" + spec.spec_hash().hex()})


# ------------------------------------------------------------------ the local reference
@dataclass
class EpochRecord:
    epoch: int
    slot_final_hashes: list[bytes]
    state_hash: bytes
    checkpoint: Path
    losses: list[list[float]] = field(default_factory=list)  # per slot

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "slots": len(self.slot_final_hashes),
                "slot_final_hashes": ["0x" + h.hex() for h in self.slot_final_hashes],
                "state_hash": "0x" + self.state_hash.hex(), "checkpoint": str(self.checkpoint),
                "last_losses": [ls[-1] for ls in self.losses]}


def train_epochs(spec: TaskSpec, dataset, base_checkpoint, out_dir, epochs: int, config: EpochConfig | None = None,
                 first_epoch: int = 0, progress: Callable[[int, int, int], None] | None = None) -> list[EpochRecord]:
    """What `train-local --trainers N --epochs E` computes: every slot of every epoch trained in turn
    on this machine (each a real trace: train_round with its Slot), then the outer step. Training
    ahead (docs/protocol-v2-interface.md): epoch e+1 starts from the aggregate of epoch e's slots,
    which is what an honest network trains ahead on, so the reference is the same either way."""
    from .trace import Slot, train_round

    config = config or spec.epochs or EpochConfig.identity()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_path, records = Path(base_checkpoint), []
    for e in range(first_epoch, first_epoch + epochs):
        base = load_state(base_path)
        slot_states, hashes, losses = [], [], []
        for i in range(config.slots):
            trace = train_round(spec, dataset, base_path, out_dir / f"epoch-{e:05d}" / f"slot-{i:02d}",
                                slot=Slot(e, i, config.slots))
            slot_states.append(load_state(trace.final_checkpoint, trace.final_hash))
            hashes.append(trace.final_hash)
            losses.append(trace.losses)
            if progress:
                progress(e, i, spec.steps_per_round)
        state = compute_outer_step(base, slot_states, config, spec.optimizer)
        path = out_dir / f"epoch-{e:05d}" / "state.safetensors"
        h = save_epoch_state(spec, state, path)
        assert h == state_hash(state)
        records.append(EpochRecord(e, hashes, h, path, losses))
        base_path = path
    (out_dir / "epochs.json").write_text(json.dumps([r.to_json() for r in records], indent=1) + "\n")
    return records
