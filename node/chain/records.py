"""Typed records of what the contracts hold: TaskParams, Task, Round, ModelVersion.

Decoded once, at the chain boundary (node.chain.client.ChainClient.get_task / get_round /
latest_model), from the ABI's tuples: hashes are `bytes` (32), addresses checksummed
strings, phases and outcomes node.rounds.Phase / Outcome. Nothing inside the node converts
hex strings back and forth; `.to_json()` is for output (CLI --json, logs) only.

TaskParams is the contracts' rules.TaskParams under the TaskSpec's `protocol` names, in
ABI order; its protocol fields default to the spec's defaults (one set of defaults).
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, field, fields
from decimal import Decimal, localcontext

from node.rounds import EpochPhase, Outcome, Phase


def format_ether(wei: int) -> str:
    """wei -> '1.5 ETH' with no float rounding."""
    with localcontext(prec=len(str(wei)) + 30):
        text = format(Decimal(wei) / 10**18, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


def _spec_default(name: str):
    """The default of TaskSpec.protocol.<name>: the one set of defaults for task parameters."""
    from node.engine.spec import ProtocolParams

    return field(default=ProtocolParams.model_fields[name].default)


def _epoch_default(name: str):
    """The default of TaskSpec.epochs.<name> (the epoch windows)."""
    from node.engine.spec import EpochConfig

    return field(default=EpochConfig.model_fields[name].default)


def _json(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (Phase, Outcome, EpochPhase)):
        return value.name.lower()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


class _Record:
    def __getitem__(self, name: str):
        """rec["field"] == rec.field: for code written against the old struct dicts (the values
        are typed now: bytes, Phase, Outcome); new code reads attributes."""
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def to_json(self) -> dict:
        """Hex strings for bytes, names for phases and outcomes: for --json output and logs."""
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class TaskParams(_Record):
    """rules.TaskParams (field order is the ABI tuple order), under the TaskSpec's names:
    `TaskParams.from_spec(spec)` maps a spec field for field. S and k have no default."""

    steps_per_round: int
    segment_steps: int
    samples: int = _spec_default("samples")
    committee_size: int = _spec_default("committee_size")
    quorum: int = _spec_default("quorum")
    seal_delay_blocks: int = _spec_default("seal_delay_blocks")
    reveal_window: int = _spec_default("reveal_window")
    commit_verdicts_window: int = _spec_default("commit_verdicts_window")
    reveal_verdicts_window: int = _spec_default("reveal_verdicts_window")
    trainer_reward_wei: int = _spec_default("trainer_reward_wei")
    verifier_reward_wei: int = _spec_default("verifier_reward_wei")
    trainer_slash_bps: int = _spec_default("trainer_slash_bps")
    fraud_reward_bps: int = _spec_default("fraud_reward_bps")
    verifier_slash_bps: int = _spec_default("verifier_slash_bps")
    no_show_slash_bps: int = _spec_default("no_show_slash_bps")
    min_trainer_stake_wei: int = _spec_default("min_trainer_stake_wei")
    # epochs (#14): the spec's `epochs` section (None: a v1 task, these defaults); Epochs.vy runs a task
    # only when is_epoch_task (more than one slot or a non-identity outer step)
    slots_per_epoch: int = 1
    outer_lr_bps: int = 10_000  # outer_lr x 10^4
    outer_momentum_bps: int = 0  # outer_momentum x 10^4
    claim_window: int = _epoch_default("claim_window")
    train_window: int = _epoch_default("train_window")

    @classmethod
    def from_spec(cls, spec) -> "TaskParams":
        """The on-chain parameters of a TaskSpec: its S, k, its `protocol` section (same names) and its
        `epochs` section (slots, the outer optimizer in basis points, the two epoch windows)."""
        epochs = {}
        if spec.epochs is not None:
            from node.protocol import compute_bps

            epochs = dict(slots_per_epoch=spec.epochs.slots, outer_lr_bps=compute_bps(spec.epochs.outer_lr),
                          outer_momentum_bps=compute_bps(spec.epochs.outer_momentum),
                          claim_window=spec.epochs.claim_window, train_window=spec.epochs.train_window)
        return cls(steps_per_round=spec.steps_per_round, segment_steps=spec.segment_steps, **spec.protocol.model_dump(),
                   **epochs)

    @property
    def is_epoch_task(self) -> bool:
        """Whether Epochs runs the task (claims, slots, aggregation): node.protocol.is_epoch_task."""
        from node.protocol import is_epoch_task

        return is_epoch_task(self.slots_per_epoch, self.outer_lr_bps, self.outer_momentum_bps)

    @classmethod
    def from_abi(cls, values) -> "TaskParams":
        return cls(*(int(v) for v in values))

    def as_tuple(self) -> tuple:
        return astuple(self)

    @property
    def n_segments(self) -> int:
        return self.steps_per_round // self.segment_steps

    @property
    def round_cost(self) -> int:
        from node.protocol import compute_round_cost

        return compute_round_cost(self.trainer_reward_wei, self.verifier_reward_wei, self.committee_size)


@dataclass(frozen=True)
class Task(_Record):
    """TaskRegistry.tasks(id) + TrainingRounds.open_round(id)."""

    task_id: int
    creator: str
    spec_cid: str
    spec_hash: bytes
    canonical_hash: bytes  # h_0 of the next round
    canonical_cid: str
    pool: int  # wei left for rewards
    rounds_accepted: int
    params: TaskParams
    open_round: int  # 0 when free

    @classmethod
    def from_abi(cls, task_id: int, values, open_round: int) -> "Task":
        creator, spec_cid, spec_hash, canonical_hash, canonical_cid, pool, rounds_accepted, params = values
        return cls(task_id, creator, spec_cid, bytes(spec_hash), bytes(canonical_hash), canonical_cid, int(pool),
                   int(rounds_accepted), TaskParams.from_abi(params), int(open_round))

    @property
    def exists(self) -> bool:
        return int(self.creator, 16) != 0

    @property
    def base_step(self) -> int:
        """Global step of the canonical state: every accepted round trained S steps."""
        return self.rounds_accepted * self.params.steps_per_round


@dataclass(frozen=True)
class Round(_Record):
    """TrainingRounds.rounds(id)."""

    round_id: int
    task_id: int
    trainer: str
    base_hash: bytes
    data_root: bytes
    trace_root: bytes
    phase: Phase
    outcome: Outcome
    commit_block: int
    seed: bytes
    deadline: int  # last block of the current phase
    commit_deadline: int  # last block for commit_verdict (after the ends: for the final flags)
    n_committed: int
    n_revealed: int
    n_contradicting: int
    final_hash: bytes
    final_cid: str
    n_final_committed: int = 0  # TrainingRounds.n_final_committed(id): members whose final flag is committed

    @classmethod
    def from_abi(cls, round_id: int, values, n_final_committed: int = 0) -> "Round":
        (task_id, trainer, base_hash, data_root, trace_root, phase, outcome, commit_block, seed, deadline,
         commit_deadline, n_committed, n_revealed, n_contradicting, final_hash, final_cid) = values
        return cls(round_id, int(task_id), trainer, bytes(base_hash), bytes(data_root), bytes(trace_root), Phase(phase),
                   Outcome(outcome), int(commit_block), bytes(seed), int(deadline), int(commit_deadline),
                   int(n_committed), int(n_revealed), int(n_contradicting), bytes(final_hash), final_cid,
                   int(n_final_committed))

    @property
    def exists(self) -> bool:
        return self.phase != Phase.NONE


@dataclass(frozen=True)
class ModelVersion(_Record):
    """ModelOracle.latest(task) / at(task, version)."""

    cid: str
    state_hash: bytes
    version: int
    round_id: int  # 0 for genesis
    block: int
    timestamp: int

    @classmethod
    def from_abi(cls, values) -> "ModelVersion":
        cid, state_hash, version, round_id, block, timestamp = values
        return cls(cid, bytes(state_hash), int(version), int(round_id), int(block), int(timestamp))


@dataclass(frozen=True)
class Epoch(_Record):
    """Epochs.epochs(task, e) (contracts/Epochs.vy): an epoch of an epoch task. Bit masks: bit i = slot i."""

    task_id: int
    epoch: int
    base_hash: bytes  # every slot's h_0: the canonical state when the epoch opened
    opened_block: int  # 0: not opened (the next claim opens it)
    claim_deadline: int
    commit_deadline: int
    aggregate_deadline: int
    phase: EpochPhase
    outcome: Outcome  # once closed: accepted = a new canonical state; else unchanged
    n_slots: int
    n_segments: int
    seal_delay_blocks: int
    claimed: int
    committed: int
    accepted: int  # the set A (slots accepted by aggregate_deadline)
    finalized: int  # slots whose round is finalized (any outcome)
    last_finalized_block: int
    deadline: int  # aggregation: last block to commit (AGGREGATING) or reveal (POSTED)
    n_committed: int
    n_revealed: int
    n_matching: int
    poster_slot: int  # slot id whose trainer posted
    seat_reservation: int  # what each aggregation seat reserves (the verifier minimum)
    poster_reservation: int  # what the post reserves of the poster's free stake
    state_hash: bytes  # the posted aggregate
    cid: str

    @classmethod
    def from_abi(cls, task_id: int, epoch: int, values) -> "Epoch":
        (base_hash, opened_block, claim_deadline, commit_deadline, aggregate_deadline, phase, outcome, n_slots, n_segments,
         seal_delay_blocks, claimed, committed, accepted, finalized, last_finalized_block, deadline, n_committed, n_revealed,
         n_matching, poster_slot, seat_reservation, poster_reservation, state_hash, cid) = values
        return cls(task_id, epoch, bytes(base_hash), int(opened_block), int(claim_deadline), int(commit_deadline),
                   int(aggregate_deadline), EpochPhase(phase), Outcome(outcome), int(n_slots), int(n_segments),
                   int(seal_delay_blocks), int(claimed), int(committed), int(accepted), int(finalized),
                   int(last_finalized_block), int(deadline), int(n_committed),
                   int(n_revealed), int(n_matching), int(poster_slot), int(seat_reservation), int(poster_reservation),
                   bytes(state_hash), cid)

    @property
    def accepted_slots(self) -> list[int]:
        """A in slot order (the outer step's order)."""
        return [i for i in range(16) if (self.accepted >> i) & 1]

    @property
    def claimed_slots(self) -> list[int]:
        return [i for i in range(16) if (self.claimed >> i) & 1]

    @property
    def every_slot_claimed(self) -> bool:
        """All N slots claimed (node.protocol.is_every_slot_claimed): the claim phase is over."""
        from node.protocol import is_every_slot_claimed

        return is_every_slot_claimed(self.n_slots, self.claimed)

    def is_claim_phase_over_at(self, block: int) -> bool:
        """Whether the claim phase is over in `block` (node.protocol.is_claim_phase_over): the claim window
        closed, or every slot is claimed."""
        from node.protocol import is_claim_phase_over

        return is_claim_phase_over(block, self.claim_deadline, self.every_slot_claimed)

    def ready_block_at(self, block: int) -> int | None:
        """The block from which A is final (node.protocol.compute_ready_block), as Epochs computes it in
        `block`; None while the claim phase is not over (the claim window open and a slot still free)."""
        from node.protocol import compute_ready_block

        if not self.is_claim_phase_over_at(block):
            return None
        return compute_ready_block(self.claim_deadline, self.aggregate_deadline, self.last_finalized_block,
                                   self.finalized == self.claimed, self.every_slot_claimed)

    def free_slots(self, n_slots: int) -> list[int]:
        """Slots nobody claimed (n_slots: the task's N, also before the epoch opened)."""
        return [i for i in range(n_slots) if not (self.claimed >> i) & 1]


@dataclass(frozen=True)
class Slot(_Record):
    """Epochs.slots(slot_id): where a slot (a TrainingRounds round) sits; its round is get_round(slot_id)."""

    slot_id: int
    task_id: int
    epoch: int
    index: int  # i, 0 <= i < N
    trainer: str

    @classmethod
    def from_abi(cls, slot_id: int, values) -> "Slot":
        task_id, epoch, index, trainer = values
        return cls(slot_id, int(task_id), int(epoch), int(index), trainer)

    @property
    def exists(self) -> bool:
        return int(self.trainer, 16) != 0
