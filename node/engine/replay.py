"""What a verifier runs: replay k steps from a boundary checkpoint; recompute the data root."""
from __future__ import annotations

from typing import Callable

from node.protocol import compute_merkle_root

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
) -> bytes:
    """Load (and verify, if expected_hash) a state, run `steps` (default k) steps, return the end hash."""
    check_runtime(spec)  # a replay in another runtime would prove nothing
    steps = spec.segment_steps if steps is None else steps
    if steps < 0:
        raise ValueError("engine: steps must be >= 0")
    state = load_state(checkpoint, expected_hash)
    trainer = Trainer(spec, state)
    del state
    for _ in range(steps):
        g = trainer.global_step
        loss = trainer.step(dataset.batch_for(spec, g))
        if progress:
            progress(g, loss)
    return state_hash(trainer.state())


def compute_batch_hashes(spec: TaskSpec, dataset: Dataset, start_step: int, n: int | None = None) -> list[bytes]:
    """The scheduled batch hashes of steps start_step .. start_step+n-1 (n defaults to S)."""
    n = spec.steps_per_round if n is None else n
    return [batch_hash(dataset.batch_for(spec, g)) for g in range(start_step, start_step + n)]


def compute_data_root(spec: TaskSpec, dataset: Dataset, start_step: int, n: int | None = None) -> bytes:
    """The dataRoot an honest trainer commits for the round starting at start_step."""
    return compute_merkle_root(compute_batch_hashes(spec, dataset, start_step, n))
