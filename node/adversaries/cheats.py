"""How a dishonest trainer deviates from the engine's round (adversarial suite and demo only).

    trace = CheatingRounds(Cheat(skip_segments=frozenset({3}))).train_round(spec, dataset, base, out_dir)

CheatingRounds subclasses the engine's honest RoundTrainer and overrides only what the cheat
changes; node/engine has no cheat switch. Imports torch: import this module after the runtime pin.
"""
from __future__ import annotations

from dataclasses import dataclass

from node.engine.step import Trainer
from node.engine.trace import RoundTrainer


@dataclass(frozen=True)
class Cheat:
    """How a dishonest trainer deviates. Segments are 0-based.

    skip_segments: those segments' steps are not run (the state stands still).
    other_data_segments: those segments train on the batches of step g + data_offset.
    lr_scale / lr_segments: a changed hyper-parameter (all segments if lr_segments is None).
    report_actual_batches: commit the hashes of the batches really used (else the schedule's).
    """

    skip_segments: frozenset[int] = frozenset()
    other_data_segments: frozenset[int] = frozenset()
    data_offset: int = 1_000_003
    lr_scale: float = 1.0
    lr_segments: frozenset[int] | None = None
    report_actual_batches: bool = False

    @classmethod
    def of(cls, **kw) -> "Cheat":
        """From plain values (lists or sets of segments): what the tests and the CLI pass."""
        return cls(**{k: frozenset(v) if k.endswith("segments") and v is not None else v for k, v in kw.items()})


class ScaledLrTrainer(Trainer):
    """The engine's Trainer with its learning rate multiplied by `lr_scale` (1.0: the spec's)."""

    lr_scale = 1.0

    def lr_at(self, g: int) -> float:
        return super().lr_at(g) * self.lr_scale


class CheatingRounds(RoundTrainer):
    """The honest round loop, deviating as `cheat` says."""

    def __init__(self, cheat: Cheat):
        self.cheat = cheat

    def make_trainer(self, spec, base) -> Trainer:
        return ScaledLrTrainer(spec, base)

    def batches(self, spec, dataset, b: int, segment: int) -> tuple:
        scheduled = dataset.batch_for(spec, b)
        if segment not in self.cheat.other_data_segments:
            return scheduled, scheduled
        used = dataset.batch_for(spec, b + self.cheat.data_offset)
        return used, (used if self.cheat.report_actual_batches else scheduled)

    def step(self, trainer: ScaledLrTrainer, tokens, key, segment: int) -> float:
        if segment in self.cheat.skip_segments:
            trainer.global_step += 1  # pretend: the step counter moves, the weights do not
            return float("nan")
        lr_on = self.cheat.lr_segments is None or segment in self.cheat.lr_segments
        trainer.lr_scale = self.cheat.lr_scale if lr_on else 1.0
        return super().step(trainer, tokens, key, segment)
