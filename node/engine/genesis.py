"""Genesis: the only place model weights are drawn. Verifiers load this file, never re-draw.

Weights are drawn on the CPU from a generator of their own seeded with
seed_for(seed, 0, "init") (torch's global RNG is neither read nor written), whatever the
spec's device: randn differs across CPU capabilities and devices, which is fine because
the file, not the recipe, is what the task commits to (its hash is h_0 of round 1).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .model import build_model
from .spec import TaskSpec
from .state import TrainingState, save_state
from .step import seed_for


def compute_genesis_state(spec: TaskSpec) -> TrainingState:
    model = build_model(spec.model, "cpu")  # built on meta: nn.Linear's own init never runs
    model.init_weights(torch.Generator().manual_seed(seed_for(spec.seed, 0, "init")))
    params = {n: p.detach().clone() for n, p in sorted(model.named_parameters())}
    return TrainingState(
        params=params,
        exp_avg={n: torch.zeros_like(p) for n, p in params.items()},
        exp_avg_sq={n: torch.zeros_like(p) for n, p in params.items()},
        steps={n: torch.tensor(0, dtype=torch.int64) for n in params},
        global_step=0,
    )


def make_genesis(spec: TaskSpec, path, dataset=None) -> bytes:
    """Write the genesis state file; returns its state hash.

    (The dataset is not needed; `make_genesis(spec, dataset, path)`, the order in
    DEVELOPERS.md, is accepted too.)
    """
    if not isinstance(path, (str, Path)) and isinstance(dataset, (str, Path)):
        path, dataset = dataset, path
    return save_state(path, compute_genesis_state(spec), metadata={"spec_hash": "0x" + spec.spec_hash().hex()})
