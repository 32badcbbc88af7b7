"""What a verifier runs: replay k steps from a boundary checkpoint; recompute the data root."""
from __future__ import annotations

from typing import Callable

from node.protocol import compute_batch_index, compute_lr_step, compute_merkle_root, compute_step_key

from .dataset import Dataset, batch_hash
from .runtime import check_runtime
from .spec import TaskSpec
from .state import load_state, state_hash
from .step import Trainer


def replay_segment(
    spec: TaskSpec,
    dataset: Dataset,
    checkpoint,
    steps: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    expected_hash: bytes | None = None,
    slot=None,
    slot_step: int = 0,
    step_hashes: list | None = None,
) -> bytes:
    """Load (and verify, if expected_hash) a state, run `steps` (default k) steps, return the end hash.

    With `slot` (trace.Slot), the steps are inner steps slot_step, slot_step+1, ... of that slot: the
    schedule comes from the epoch rules, not from the checkpoint's counter (an epoch's base may carry
    the counter of an earlier epoch when an epoch accepted no slot).

    With `step_hashes` (a list), the state hash after every step is appended to it, preceded by the start
    state's: what a trainer posts in a dispute and what a challenger compares it with (issue #15)."""
    check_runtime(spec)  # a replay in another runtime would prove nothing
    steps = spec.segment_steps if steps is None else steps
    if steps < 0:
        raise ValueError("engine: steps must be >= 0")
    state = load_state(checkpoint, expected_hash)
    trainer = Trainer(spec, state)
    if step_hashes is not None:
        step_hashes.append(state_hash(state))
    del state
    S = spec.steps_per_round
    if slot is not None:
        trainer.global_step = compute_lr_step(slot.epoch, slot_step, S)
    for j in range(steps):
        g = trainer.global_step
        if slot is None:
            loss = trainer.step(dataset.batch_for(spec, g))
        else:
            t = slot_step + j
            b = compute_batch_index(slot.epoch, slot.index, t, slot.n_slots, S)
            loss = trainer.step(dataset.batch_for(spec, b),
                                key=compute_step_key(spec.seed, slot.epoch, slot.index, t, slot.n_slots, S))
        if progress:
            progress(g, loss)
        if step_hashes is not None:
            step_hashes.append(state_hash(trainer.state()))
    return state_hash(trainer.state()) if step_hashes is None else step_hashes[-1]


def compute_batch_hashes(spec: TaskSpec, dataset: Dataset, start_step: int, n: int | None = None,
                         slot=None) -> list[bytes]:
    """The scheduled batch hashes of steps start_step .. start_step+n-1 (n defaults to S); with `slot`,
    of that slot's inner steps start_step .. (batch g = (e·N + i)·H + t)."""
    n, S = (spec.steps_per_round if n is None else n), spec.steps_per_round
    if slot is None:
        indices = range(start_step, start_step + n)
    else:
        indices = [compute_batch_index(slot.epoch, slot.index, t, slot.n_slots, S) for t in range(start_step, start_step + n)]
    return [batch_hash(dataset.batch_for(spec, g)) for g in indices]


def compute_data_root(spec: TaskSpec, dataset: Dataset, start_step: int, n: int | None = None, slot=None) -> bytes:
    """The dataRoot an honest trainer commits for the round starting at start_step (or for `slot`, from 0)."""
    return compute_merkle_root(compute_batch_hashes(spec, dataset, start_step, n, slot))
