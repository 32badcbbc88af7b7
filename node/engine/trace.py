"""A round: train S steps from a base state, keep every k-th boundary state, commit roots.

    h_0 = hash(base state), h_j = hash(state after j·k steps), j = 1..M (M = S/k)
    traceRoot = merkle_root([h_0 … h_M])        dataRoot = merkle_root(batch hashes)

with the project's Merkle rule (node.protocol). trace.json holds all of it.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from node.protocol import compute_batch_index, compute_lr_step, compute_merkle_root, compute_step_key

from .dataset import Dataset, batch_hash
from .runtime import check_runtime
from .spec import TaskSpec
from .state import load_state, save_state, state_hash
from .step import Trainer

Progress = Callable[[int, float], None]  # (global step just done, its loss)


@dataclass(frozen=True)
class Slot:
    """Slot `index` of epoch `epoch` in a task with `n_slots` slots per epoch (issue #14): its steps
    use the schedule of node.protocol (batch g = (e·N + i)·H + t, key (seed, e, i, t), lr at e·H + t)."""

    epoch: int
    index: int
    n_slots: int


@dataclass
class RoundTrace:
    spec_hash: bytes
    start_step: int
    steps: int
    segment_steps: int
    boundary_hashes: list[bytes]  # h_0 .. h_M
    batch_hashes: list[bytes]  # one per step, in step order
    data_root: bytes
    trace_root: bytes
    checkpoints: list[Path]  # the state file of each boundary
    losses: list[float] = field(default_factory=list)

    @property
    def final_checkpoint(self) -> Path:
        return self.checkpoints[-1]

    @property
    def final_hash(self) -> bytes:
        return self.boundary_hashes[-1]

    def to_json(self) -> dict:
        hx = lambda b: "0x" + b.hex()  # noqa: E731
        return {
            "format": "trainchain-trace-v1",
            "spec_hash": hx(self.spec_hash),
            "start_step": self.start_step,
            "steps": self.steps,
            "segment_steps": self.segment_steps,
            "boundary_hashes": [hx(h) for h in self.boundary_hashes],
            "batch_hashes": [hx(h) for h in self.batch_hashes],
            "data_root": hx(self.data_root),
            "trace_root": hx(self.trace_root),
            "checkpoints": [p.name for p in self.checkpoints],
            "losses": self.losses,
        }

    @classmethod
    def from_json(cls, data: dict, directory) -> "RoundTrace":
        hb = lambda s: bytes.fromhex(s[2:])  # noqa: E731
        return cls(
            spec_hash=hb(data["spec_hash"]),
            start_step=data["start_step"],
            steps=data["steps"],
            segment_steps=data["segment_steps"],
            boundary_hashes=[hb(h) for h in data["boundary_hashes"]],
            batch_hashes=[hb(h) for h in data["batch_hashes"]],
            data_root=hb(data["data_root"]),
            trace_root=hb(data["trace_root"]),
            checkpoints=[Path(directory) / n for n in data["checkpoints"]],
            losses=list(data["losses"]),
        )


def checkpoint_name(global_step: int) -> str:
    return f"state-{global_step:08d}.safetensors"


class RoundTrainer:
    """Trains rounds; `train_round` below is this class as it is (the honest trainer).

    A trainer that deviates (node/adversaries/cheats.py, adversarial suite only) subclasses it and
    overrides what it changes: `batches` (what it trains on, what it commits), `step`, `make_trainer`.
    The honest loop has no switch for any of that."""

    def make_trainer(self, spec: TaskSpec, base) -> Trainer:
        return Trainer(spec, base)

    def batches(self, spec: TaskSpec, dataset: Dataset, b: int, segment: int) -> tuple:
        """(the batch trained on, the batch whose hash is committed) at batch index b: the same one."""
        batch = dataset.batch_for(spec, b)
        return batch, batch

    def step(self, trainer: Trainer, tokens, key: tuple | None, segment: int) -> float:
        return trainer.step(tokens, key)

    def train_round(
        self,
        spec: TaskSpec,
        dataset: Dataset,
        base_checkpoint,
        out_dir,
        start_step: int | None = None,
        progress: Progress | None = None,
        steps: int | None = None,
        expected_base_hash: bytes | None = None,
        slot: Slot | None = None,
    ) -> RoundTrace:
        """Train one round (spec.steps_per_round steps, or `steps`) and write trace.json.

        Without `slot`, step i of a v1 round is global step g0 + i of the base (batch, key, lr).
        With `slot`, the epoch schedule decides all three, whatever step the base recorded."""
        check_runtime(spec)  # refuse to train bits a verifier could not reproduce
        k = spec.segment_steps
        S = spec.steps_per_round if steps is None else steps
        if S < 1 or S % k:
            raise ValueError(f"engine: {S} steps is not a positive multiple of segment_steps {k}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        base = load_state(base_checkpoint, expected_base_hash)
        g0 = base.global_step
        if start_step is not None and start_step != g0:
            raise ValueError(f"engine: base state is at step {g0}, not {start_step}")
        trainer = self.make_trainer(spec, base)
        if slot is not None:
            if not (0 <= slot.index < slot.n_slots):
                raise ValueError(f"engine: slot {slot.index} outside 0..{slot.n_slots - 1}")
            g0 = trainer.global_step = compute_lr_step(slot.epoch, 0, S)  # the state's counter is the lr position
        h0 = state_hash(base)
        first = out_dir / checkpoint_name(g0)
        if Path(base_checkpoint).resolve() != first.resolve():
            shutil.copyfile(base_checkpoint, first)
        del base
        metadata = {"spec_hash": "0x" + spec.spec_hash().hex()}  # once: canonical JSON + keccak is ~2 ms
        boundary_hashes, checkpoints = [h0], [first]
        batch_hashes, losses = [], []
        for i in range(S):
            g, segment = g0 + i, i // k
            b = g if slot is None else compute_batch_index(slot.epoch, slot.index, i, slot.n_slots, S)
            key = None if slot is None else compute_step_key(spec.seed, slot.epoch, slot.index, i, slot.n_slots, S)
            tokens, committed = self.batches(spec, dataset, b, segment)
            batch_hashes.append(batch_hash(committed))
            losses.append(self.step(trainer, tokens, key, segment))
            if progress:
                progress(g, losses[-1])
            if (i + 1) % k == 0:
                path = out_dir / checkpoint_name(g + 1)
                boundary_hashes.append(save_state(path, trainer.state(), metadata))
                checkpoints.append(path)
        trace = RoundTrace(
            spec_hash=spec.spec_hash(),
            start_step=g0,
            steps=S,
            segment_steps=k,
            boundary_hashes=boundary_hashes,
            batch_hashes=batch_hashes,
            data_root=compute_merkle_root(batch_hashes),
            trace_root=compute_merkle_root(boundary_hashes),
            checkpoints=checkpoints,
            losses=losses,
        )
        (out_dir / "trace.json").write_text(json.dumps(trace.to_json(), indent=1) + "\n")
        return trace


train_round = RoundTrainer().train_round


def load_trace(out_dir) -> RoundTrace:
    out_dir = Path(out_dir)
    return RoundTrace.from_json(json.loads((out_dir / "trace.json").read_text()), out_dir)
