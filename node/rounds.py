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
    CLAIMED = 6  # an epoch slot claimed in Epochs, not committed yet (numbered last: v1's order stays)

    @property
    def label(self) -> str:
        """The phase in words (what the round is waiting for)."""
        return PHASE_LABELS[self]


PHASE_LABELS = {
    Phase.NONE: "not committed", Phase.COMMITTED: "awaiting seal", Phase.SEALED: "awaiting the trainer's starts",
    Phase.STARTS_REVEALED: "taking verdict commitments", Phase.ENDS_REVEALED: "taking verdict reveals",
    Phase.FINALIZED: "finalized", Phase.CLAIMED: "claimed, awaiting the trainer's commit",
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
    COMMIT_FINAL = "commit_final"  # the second commit_verdict: the final flag's commitment, after the ends
    REVEAL_VERDICT = "reveal_verdict"
    FINALIZE = "finalize"


# the phase each action needs (finalize: any open phase). Who sends it: seal and finalize anyone,
# the reveals of starts and ends the trainer, the verdicts a committee member.
PHASE_OF = {Action.SEAL: Phase.COMMITTED, Action.REVEAL_STARTS: Phase.SEALED,
            Action.COMMIT_VERDICT: Phase.STARTS_REVEALED, Action.REVEAL_ENDS: Phase.STARTS_REVEALED,
            Action.COMMIT_FINAL: Phase.ENDS_REVEALED, Action.REVEAL_VERDICT: Phase.ENDS_REVEALED}


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


def compute_final_commit_deadline(ends_block: int, commit_verdicts_window: int) -> int:
    """Last block for the final flags' commitments; `commit_deadline` after reveal_ends (mined in `ends_block`)."""
    return ends_block + commit_verdicts_window


def compute_verdict_reveal_deadline(ends_block: int, commit_verdicts_window: int, reveal_verdicts_window: int) -> int:
    """Last block for reveal_verdict; `deadline` after reveal_ends (mined in `ends_block`): the reveal
    window runs from the close of the final flags' commit window (reveals may start earlier, once
    every member committed its final flag)."""
    return compute_final_commit_deadline(ends_block, commit_verdicts_window) + reveal_verdicts_window


# ---------------------------------------------------------------- predicates at an execution block
def is_committee_done_committing(rnd, block: int, committee_size: int) -> bool:
    """reveal_ends may come once every member committed or the commit window closed."""
    return rnd.n_committed == committee_size or block > rnd.commit_deadline


def is_committee_done_committing_finals(rnd, block: int) -> bool:
    """reveal_verdict may come once every member that committed a verdict committed its final flag, or
    that window closed (issue #13, attack 5: no verdict is seen before every tallied flag is committed)."""
    return rnd.n_final_committed == rnd.n_committed or block > rnd.commit_deadline


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
    elif action in (Action.COMMIT_VERDICT, Action.COMMIT_FINAL):
        if block > rnd.commit_deadline:
            return f"{action.value}: window closed at block {rnd.commit_deadline} (now {now})"
        return None
    elif action == Action.REVEAL_ENDS and not is_committee_done_committing(rnd, block, committee_size):
        return f"reveal_ends: the committee is still committing (until block {rnd.commit_deadline}, now {now})"
    elif action == Action.REVEAL_VERDICT and not is_committee_done_committing_finals(rnd, block):
        return (f"reveal_verdict: the committee is still committing final flags ({rnd.n_final_committed} of "
                f"{rnd.n_committed}, until block {rnd.commit_deadline}, now {now})")
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
    return Outcome.EXPIRED if phase in (Phase.COMMITTED, Phase.CLAIMED) else Outcome.ABANDONED


def is_trainer_penalized(outcome: Outcome) -> bool:
    """Outcomes that cost the trainer stake: fraud, and the missed deadlines."""
    return outcome in (Outcome.FRAUD, Outcome.EXPIRED, Outcome.ABANDONED)


# ================================================================ epochs (issue #14, contracts/Epochs.vy)
# An epoch task's epoch: opened by its first claim; claims until claim_deadline (or the N-th claim), commits until
# commit_deadline, each committed slot is a round above (slot id = round id) and counts in A if accepted
# by aggregate_deadline; then the aggregation: open_aggregation (committee drawn), commit_aggregate,
# post_aggregate (the lowest accepted slot's trainer; rank r after r post windows), reveal_aggregate,
# finalize_epoch. Deadlines: node.protocol.compute_epoch_deadlines / compute_post_opens / compute_post_deadline.
class EpochPhase(IntEnum):
    """Epochs.epochs(task, e).phase (contracts/lib/rules.vy EPOCH_*)."""

    NONE = 0  # not opened: the next claim opens it on the canonical state
    OPEN = 1  # claims, commits, the slots' rounds (until aggregate_deadline)
    AGGREGATING = 2  # the aggregation committee commits; then a trainer of an accepted slot posts
    POSTED = 3  # the committee reveals
    CLOSED = 4

    @property
    def label(self) -> str:
        return EPOCH_PHASE_LABELS[self]


EPOCH_PHASE_LABELS = {
    EpochPhase.NONE: "not opened (the next claim opens it)", EpochPhase.OPEN: "open (claims, commits, slot rounds)",
    EpochPhase.AGGREGATING: "taking aggregate commitments, then the post", EpochPhase.POSTED: "taking aggregate reveals",
    EpochPhase.CLOSED: "closed",
}


class EpochAction(str, Enum):
    """An epoch's transactions, by their Epochs function names (a slot's round: Action above)."""

    CLAIM = "claim"
    COMMIT = "commit"
    OPEN_AGGREGATION = "open_aggregation"
    COMMIT_AGGREGATE = "commit_aggregate"
    POST_AGGREGATE = "post_aggregate"
    REVEAL_AGGREGATE = "reveal_aggregate"
    FINALIZE_EPOCH = "finalize_epoch"


def is_finalize_epoch_allowed_at(ep, block: int, *, post_window: int) -> bool:
    """Whether finalize_epoch passes in `block` (Epochs.finalize_epoch): an open epoch after its ready block
    (A final: every claimed slot finalized once the claim phase is over, i.e. the claim window closed or
    every slot claimed; else the aggregate deadline) when A is empty, or once the aggregation seed expired;
    an aggregating one after the post deadline (nobody posted); a posted one once every committed member
    revealed or the window closed."""
    from node.protocol import BLOCKHASH_HORIZON, compute_post_deadline

    if ep.phase == EpochPhase.OPEN:
        ready = ep.ready_block_at(block)
        if ready is None or block <= ready:
            return False
        return ep.accepted == 0 or block > ready + ep.seal_delay_blocks + BLOCKHASH_HORIZON
    if ep.phase == EpochPhase.AGGREGATING:
        return block > compute_post_deadline(ep.deadline, bin(ep.accepted).count("1"), post_window)
    if ep.phase == EpochPhase.POSTED:
        return ep.n_revealed == ep.n_committed or block > ep.deadline
    return False


def why_not_epoch_at(action: EpochAction, ep, block: int, *, slot: int | None = None, committee_size: int | None = None,
                     post_window: int | None = None, n_slots: int | None = None, now: int | None = None) -> str | None:
    """None if Epochs accepts `action` on the epoch record `ep` (node.chain.records.Epoch) in block `block`
    (phase, windows, the slot's bits; stake, pool and membership are checked elsewhere), else the reason
    in words. `slot`: the slot index (claim, commit) or, for post_aggregate, the poster's accepted slot;
    `committee_size`: the drawn committee's size (post_aggregate); `post_window`: the task's reveal_window
    (post_aggregate, finalize_epoch); `n_slots`: the task's N (claim on an epoch not opened yet)."""
    from node.protocol import BLOCKHASH_HORIZON, compute_accepted_rank, compute_post_deadline, compute_post_opens

    action = EpochAction(action)
    now = block - 1 if now is None else now
    name = f"epoch {ep.epoch} of task {ep.task_id}"
    if ep.phase == EpochPhase.CLOSED:
        return f"{action.value}: {name} is closed"
    if action == EpochAction.CLAIM:
        if ep.phase == EpochPhase.OPEN and block > ep.claim_deadline:
            return f"claim: the claim window of {name} closed at block {ep.claim_deadline} (now {now})"
        if ep.phase not in (EpochPhase.NONE, EpochPhase.OPEN):
            return f"claim: {name} is {ep.phase.label}"
        if slot >= (ep.n_slots if ep.phase == EpochPhase.OPEN else n_slots):
            return f"claim: {name} has no slot {slot}"
        if (ep.claimed >> slot) & 1:
            return f"claim: slot {slot} of {name} is taken"
        return None
    if action == EpochAction.COMMIT:
        if ep.phase != EpochPhase.OPEN or block > ep.commit_deadline:
            return f"commit: the commit window of {name} closed at block {ep.commit_deadline} (now {now})"
        if not (ep.claimed >> slot) & 1:
            return f"commit: slot {slot} of {name} is not claimed"
        if (ep.committed >> slot) & 1:
            return f"commit: slot {slot} of {name} is already committed"
        return None
    if action == EpochAction.FINALIZE_EPOCH:
        if is_finalize_epoch_allowed_at(ep, block, post_window=post_window):
            return None
        return f"finalize_epoch: {name} is {ep.phase.label} (now {now})"
    if action == EpochAction.OPEN_AGGREGATION:
        if ep.phase != EpochPhase.OPEN:
            return f"open_aggregation: {name} is {ep.phase.label}"
        ready = ep.ready_block_at(block)
        if ready is None or block <= ready + ep.seal_delay_blocks:
            return (f"open_aggregation: the slots of {name} are still running (A is final at the latest at block "
                    f"{ep.aggregate_deadline}, its seed {ep.seal_delay_blocks} blocks later; now {now})")
        if ep.accepted == 0:
            return f"open_aggregation: no slot of {name} was accepted (finalize_epoch closes it)"
        if block > ready + ep.seal_delay_blocks + BLOCKHASH_HORIZON:
            return f"open_aggregation: the seed of {name} expired (finalize_epoch closes it)"
        return None
    if action == EpochAction.COMMIT_AGGREGATE:
        if ep.phase != EpochPhase.AGGREGATING:
            return f"commit_aggregate: {name} is {ep.phase.label}"
        if block > ep.deadline:
            return f"commit_aggregate: window closed at block {ep.deadline} (now {now})"
        return None
    if action == EpochAction.POST_AGGREGATE:
        if ep.phase != EpochPhase.AGGREGATING:
            return f"post_aggregate: {name} is {ep.phase.label}"
        if not (ep.accepted >> slot) & 1:
            return f"post_aggregate: slot {slot} of {name} is not in A"
        rank = compute_accepted_rank(ep.accepted, slot)
        opens = compute_post_opens(ep.deadline, rank, post_window)
        if not (rank == 0 and ep.n_committed == committee_size) and block < opens:
            return f"post_aggregate: slot {slot} (rank {rank} in A) may post from block {opens} (now {now})"
        closes = compute_post_deadline(ep.deadline, bin(ep.accepted).count("1"), post_window)
        if block > closes:
            return f"post_aggregate: the post window of {name} closed at block {closes} (now {now})"
        return None
    # reveal_aggregate
    if ep.phase != EpochPhase.POSTED:
        return f"reveal_aggregate: {name} is {ep.phase.label}"
    if block > ep.deadline:
        return f"reveal_aggregate: window closed at block {ep.deadline} (now {now})"
    return None


def why_not_epoch(action: EpochAction, ep, head: int, **kw) -> str | None:
    """None if `action` is safe to send at head `head` (holds at head and head+1), else the reason in words."""
    return why_not_epoch_at(action, ep, head, now=head, **kw) or why_not_epoch_at(action, ep, head + 1, now=head, **kw)
