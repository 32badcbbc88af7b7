"""The round's state machine, written once: phases, outcomes, deadlines, who may act at block b.

Pure functions over a node.chain.records.Round (no chain access). TrainingRounds enforces the same
rules (contracts/TrainingRounds.vy, numbers from contracts/lib/rules.vy); the trainer, the
verifier, the chain client's pre-flight checks and the bench consult this module, and
tests/contracts/test_round_machine.py holds it against the contract on random schedules.

    why_not_at(Action.SEAL, rnd, block, seal_delay_blocks=2)  # None: the contract accepts it in `block`
    why_not(Action.SEAL, rnd, head, seal_delay_blocks=2)      # None: safe to send now (see below)

Timing: a transaction built at head h has its gas estimated on block h and lands in block
h+1 or later, so it is safe to send when the rule holds at both h and h+1: a condition
"after block X" needs h > X, one "until block X" needs h + 1 <= X.
"""
from __future__ import annotations

from enum import Enum, IntEnum


class Phase(IntEnum):
    """TrainingRounds.rounds(id).phase (contracts/lib/rules.vy: COMMITTED .. FINALIZED)."""

    NONE = 0  # no such round
    COMMITTED = 1  # waiting for seal
    SEALED = 2  # waiting for the trainer's reveal_starts
    STARTS_REVEALED = 3  # the committee commits verdicts; then the trainer reveals ends
    ENDS_REVEALED = 4  # the committee reveals verdicts
    FINALIZED = 5

    @property
    def label(self) -> str:
        """The phase in words (what the round is waiting for)."""
        return PHASE_LABELS[self]


PHASE_LABELS = {
    Phase.NONE: "not committed", Phase.COMMITTED: "awaiting seal", Phase.SEALED: "awaiting the trainer's starts",
    Phase.STARTS_REVEALED: "taking verdict commitments", Phase.ENDS_REVEALED: "taking verdict reveals",
    Phase.FINALIZED: "finalized",
}


class Outcome(IntEnum):
    """TrainingRounds.rounds(id).outcome (contracts/lib/rules.vy OUTCOME_*); `.name.lower()` is its name."""

    NONE = 0
    ACCEPTED = 1
    FRAUD = 2  # a strict majority of the reveals contradicted the trainer
    VOID = 3  # fewer than quorum reveals
    EXPIRED = 4  # never sealed (the trainer pays the no-show slash: no seed grinding)
    ABANDONED = 5  # the trainer missed reveal_starts or reveal_ends

    @property
    def label(self) -> str:
        return self.name.lower()


def outcome_name(outcome: int) -> str:
    """'accepted', 'fraud', ... for a raw outcome number (str(n) if unknown)."""
    try:
        return Outcome(outcome).label
    except ValueError:
        return str(outcome)


class Action(str, Enum):
    """A round's transactions after commit, by their contract function names."""

    SEAL = "seal"
    REVEAL_STARTS = "reveal_starts"
    COMMIT_VERDICT = "commit_verdict"
    REVEAL_ENDS = "reveal_ends"
    REVEAL_VERDICT = "reveal_verdict"
    FINALIZE = "finalize"


# the phase each action needs (finalize: any open phase). Who sends it: seal and finalize anyone,
# the reveals of starts and ends the trainer, the verdicts a committee member.
PHASE_OF = {Action.SEAL: Phase.COMMITTED, Action.REVEAL_STARTS: Phase.SEALED,
            Action.COMMIT_VERDICT: Phase.STARTS_REVEALED, Action.REVEAL_ENDS: Phase.STARTS_REVEALED,
            Action.REVEAL_VERDICT: Phase.ENDS_REVEALED}


# ---------------------------------------------------------------- deadlines (set by each transition)
def compute_seal_block(commit_block: int, seal_delay_blocks: int) -> int:
    """The block whose hash seeds the round: seal is allowed in the blocks after it."""
    return commit_block + seal_delay_blocks


def compute_seal_deadline(commit_block: int, seal_delay_blocks: int) -> int:
    """Last block to seal (the seal block's hash must still be readable: protocol.BLOCKHASH_HORIZON
    blocks); `deadline` after commit."""
    from node.protocol import BLOCKHASH_HORIZON  # the constants table (node.protocol imports this module)

    return commit_block + seal_delay_blocks + BLOCKHASH_HORIZON


def compute_starts_deadline(seal_block_mined: int, reveal_window: int) -> int:
    """Last block for reveal_starts; `deadline` after seal (mined in `seal_block_mined`)."""
    return seal_block_mined + reveal_window


def compute_verdict_commit_deadline(starts_block: int, commit_verdicts_window: int) -> int:
    """Last block for commit_verdict; `commit_deadline` after reveal_starts (mined in `starts_block`)."""
    return starts_block + commit_verdicts_window


def compute_ends_deadline(commit_deadline: int, reveal_window: int) -> int:
    """Last block for reveal_ends: the trainer's window runs from the close of the commit window."""
    return commit_deadline + reveal_window


def compute_verdict_reveal_deadline(ends_block: int, reveal_verdicts_window: int) -> int:
    """Last block for reveal_verdict; `deadline` after reveal_ends (mined in `ends_block`)."""
    return ends_block + reveal_verdicts_window


# ---------------------------------------------------------------- predicates at an execution block
def is_committee_done_committing(rnd, block: int, committee_size: int) -> bool:
    """reveal_ends may come once every member committed or the commit window closed."""
    return rnd.n_committed == committee_size or block > rnd.commit_deadline


def is_finalize_allowed_at(rnd, block: int) -> bool:
    """Whether finalize passes in `block`: after the ends once every committed member revealed
    or the window closed; before them only once the pending deadline passed."""
    if rnd.phase in (Phase.NONE, Phase.FINALIZED):
        return False
    if rnd.phase == Phase.ENDS_REVEALED:
        return rnd.n_revealed == rnd.n_committed or block > rnd.deadline
    return block > rnd.deadline


def why_not_at(action: Action, rnd, block: int, *, seal_delay_blocks: int | None = None,
               committee_size: int | None = None, now: int | None = None) -> str | None:
    """None if TrainingRounds accepts `action` on `rnd` in block `block` (phase and windows; who
    sends it is checked elsewhere), else the reason in words (`now`: the head it names, by
    default block - 1). `seal_delay_blocks` is needed for seal, `committee_size` for reveal_ends."""
    action = Action(action)
    now = block - 1 if now is None else now
    if rnd.phase == Phase.FINALIZED:
        return f"round {rnd.round_id} is already finalized (outcome {outcome_name(rnd.outcome)})"
    if rnd.phase == Phase.NONE:
        return f"round {rnd.round_id} does not exist"
    if action == Action.FINALIZE:
        if is_finalize_allowed_at(rnd, block):
            return None
        return f"finalize: round {rnd.round_id} is {rnd.phase.label} until block {rnd.deadline} (now {now})"
    if rnd.phase != PHASE_OF[action]:
        return f"{action.value} is not possible now: round {rnd.round_id} is {rnd.phase.label}"
    if action == Action.SEAL:
        seal_block = compute_seal_block(rnd.commit_block, seal_delay_blocks)
        if block <= seal_block:
            return f"seal: round {rnd.round_id} can be sealed after block {seal_block} (now {now})"
    elif action == Action.COMMIT_VERDICT:
        if block > rnd.commit_deadline:
            return f"commit_verdict: window closed at block {rnd.commit_deadline} (now {now})"
        return None
    elif action == Action.REVEAL_ENDS and not is_committee_done_committing(rnd, block, committee_size):
        return f"reveal_ends: the committee is still committing (until block {rnd.commit_deadline}, now {now})"
    if block > rnd.deadline:
        return f"{action.value}: window closed at block {rnd.deadline} (now {now})"
    return None


def why_not(action: Action, rnd, head: int, **kw) -> str | None:
    """None if `action` is safe to send at head `head` (estimated on `head`, mined in head+1 or
    later: the rule must hold in both), else the reason in words."""
    return why_not_at(action, rnd, head, now=head, **kw) or why_not_at(action, rnd, head + 1, now=head, **kw)


def can_act(action: Action, rnd, head: int, **kw) -> bool:
    return why_not(action, rnd, head, **kw) is None


def is_finalize_due(rnd, head: int) -> bool:
    """Whether finalize is safe to send at head (and stays so in every later block)."""
    return can_act(Action.FINALIZE, rnd, head)


def compute_missed_outcome(phase: Phase) -> Outcome:
    """The outcome of a round finalized after a missed deadline before the ends: expired if
    never sealed, else abandoned (the trainer missed a reveal)."""
    return Outcome.EXPIRED if phase == Phase.COMMITTED else Outcome.ABANDONED


def is_trainer_penalized(outcome: Outcome) -> bool:
    """Outcomes that cost the trainer stake: fraud, and the missed deadlines."""
    return outcome in (Outcome.FRAUD, Outcome.EXPIRED, Outcome.ABANDONED)
