"""A node's dispute duties (issue #15), for every role a node can hold in a dispute: challenger (a committee
member whose verdict contradicted the trainer), defender (the trainer), juror (any opted-in verifier drawn).

    duties = DisputeDuties(chain, db, span_hashes)   # span_hashes(view, steps) -> [h_start, ..., h_steps]
    duties.tick(head)     # every block: open (after its own contradicting reveal), post, name, draw, vote, reveal, resolve

Votes are answers (Disputes.compute_vote_side): a juror commits the state hash its own replay of the named step
gives (a flag dispute: the data root it recomputes, what it finds under the checkpoint CIDs), and the challenger
commits its own with its naming move and reveals it only after the jury committed. A juror that cannot compute
an answer abstains (zero: neither paid nor slashed); a guess counts for nobody.

`span_hashes` is the node's replay (node.engine.replay_segment(..., step_hashes=[])) of the disputed span
from its start checkpoint: the trainer replays from its own checkpoint, a verifier fetches the revealed
start CID (the same replay it ran for its verdict). Everything a move needs later (answers and their salts,
the disputes this node is part of) is written to the node's sqlite BEFORE the transaction, so a node killed
mid-dispute resumes where it was and never sends a second, different vote (tests/nodes/test_dispute_duties.py).

The jury is drawn by `Disputes.draw_jury` from the hash of the block after `name_step` (the challenger cannot know
it when it names, issue #15): the challenger sends it as soon as that block is mined (its refund allowance covers the
draw; the trainer's does not), the trainer and any other verifier node after DRAW_GRACE_BLOCKS more (backups if the
challenger does not); losing that race ("jury already drawn") is harmless.
"""
from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from web3.logs import DISCARD

from node import protocol
from node.errors import TrainchainError

log = logging.getLogger("trainchain.disputes")

BOND_MARGIN_NUM, BOND_MARGIN_DEN = 9, 8  # the basefee may rise 12.5 % a block before the open is mined
DRAW_GRACE_BLOCKS = 2  # a node that is no party draws a jury only this many blocks after the parties may


@dataclass(frozen=True)
class DisputeView:
    """Disputes.disputes(id), typed (node-side, decoded once here)."""

    dispute_id: int
    round_id: int
    task_id: int
    trainer: str
    challenger: str
    check_index: int
    span_steps: int
    start_hash: bytes
    end_hash: bytes
    phase: int
    eligible_block: int
    deadline: int
    reveal_deadline: int
    step: int
    claimed_hash: bytes
    jury_block: int           # J: blockhash(J) seeds the jury; draw_jury is open from J + 1 (0 before name_step)
    n_committed: int
    votes_trainer: int
    votes_challenger: int
    challenger_answer: bytes  # revealed after the jury committed (ZERO_HASH before)
    n_revealed: int           # jurors that revealed an answer
    trainer_won: bool         # once resolved
    flag: int = 0             # Disputes.flag_of: protocol.FLAG_* of a flag dispute (no span: the jury checks the flag)

    @classmethod
    def from_abi(cls, dispute_id: int, v) -> "DisputeView":
        (round_id, task_id, trainer, challenger, check_index, span_steps, start_hash, end_hash, phase, eligible_block,
         deadline, reveal_deadline, _gas_price, _bond, _steps_hash, step, _agreed, claimed_hash, jury_block,
         n_committed, votes_trainer, votes_challenger, trainer_won, _commitment, challenger_answer, n_revealed) = v
        return cls(dispute_id, round_id, task_id, trainer, challenger, check_index, span_steps, bytes(start_hash),
                   bytes(end_hash), phase, eligible_block, deadline, reveal_deadline, step, bytes(claimed_hash),
                   jury_block, n_committed, votes_trainer, votes_challenger, bytes(challenger_answer), n_revealed,
                   bool(trainer_won))


def decode_hashes(values) -> list[bytes]:
    """bytes32[] from an event's args (0x-text or bytes, as the client decodes them)."""
    return [bytes.fromhex(h[2:]) if isinstance(h, str) else bytes(h) for h in values]


def compute_first_disputed_step(mine: list[bytes], posted: list[bytes]) -> int | None:
    """The step a challenger names: the first t >= 1 whose posted hash differs from its own replay (it agrees
    with step t - 1 because both start from the revealed start leaf); None if the whole span agrees."""
    for t in range(1, min(len(mine), len(posted))):
        if bytes(mine[t]) != bytes(posted[t]):
            return t
    return None


def compute_disputed_check(trainer_ends: list[bytes], my_ends: list[bytes]) -> int | None:
    """The check a contradicting member disputes: the first whose end hash it computed differently. None when
    its contradiction is a flag only (data root, start checkpoints): not a span to narrow — the start's own case."""
    for i, (theirs, mine) in enumerate(zip(trainer_ends, my_ends)):
        if bytes(mine) == protocol.ZERO_HASH:
            continue  # no replay of this check (its start was missing or wrong): the starts_ok flag, nothing to narrow
        if bytes(theirs) != bytes(mine):
            return i
    return None


def compute_draw_due(d: DisputeView, head: int, is_challenger: bool) -> bool:
    """Whether this node sends draw_jury at `head`: the step is named and the jury block mined (the contract wants
    block.number > jury_block; a gas estimate runs in the context of the head block, so head > jury_block), at
    once for the challenger (CHALLENGER_GAS_ALLOWANCE covers the draw), DRAW_GRACE_BLOCKS later for anyone else,
    the trainer included (its allowance covers post_steps and resolve only). An expired jury block is due too:
    that send re-targets it (protocol.is_jury_block_expired) and a later one draws."""
    if d.phase != protocol.DISPUTE_STEP_NAMED:
        return False
    return head > d.jury_block + (0 if is_challenger else DRAW_GRACE_BLOCKS)


def compute_resolve_due(d: DisputeView, head: int, reveal_verdicts_window: int, is_trainer: bool) -> bool:
    """Whether a party sends Disputes.resolve at `head`: once it would pass in block head + 1 (the contract's own
    conditions: a missed move once its deadline passed, a jury vote once its appeal window passed,
    protocol.compute_appeal_deadline with the task's reveal_verdicts_window; never an appealed one, Appeals.resolve
    settles it), at once for the trainer (its gas allowance covers the resolve), DRAW_GRACE_BLOCKS later for the
    challenger, a backup: both at once raced into the same block and the second reverted on chain, as the appeal's
    resolve did (compute_appeal_resolve_due)."""
    # head > deadline, not head + 1: a gas estimate runs in the context of the head block
    grace = 0 if is_trainer else DRAW_GRACE_BLOCKS
    if d.phase in (protocol.DISPUTE_OPENED, protocol.DISPUTE_STEPS_POSTED):
        return head > d.deadline + grace
    if d.phase == protocol.DISPUTE_JURY:
        return head > protocol.compute_appeal_deadline(d.reveal_deadline, reveal_verdicts_window) + grace
    return False


def compute_reveal_open(d: DisputeView, jury_size: int, head: int) -> bool:
    """Answers (a juror's, the challenger's) may be revealed in block head + 1: every juror committed or the commit
    window closed, and the reveal window is still open (Disputes._assert_reveal_open)."""
    return (d.phase == protocol.DISPUTE_JURY and (d.n_committed == jury_size or head + 1 > d.deadline)
            and head + 1 <= d.reveal_deadline)


@dataclass(frozen=True)
class AppealView:
    """Appeals.appeals(id), typed. `phase` reuses the dispute phases: DISPUTE_STEP_NAMED (jury not drawn),
    DISPUTE_JURY (voting), DISPUTE_RESOLVED; so compute_draw_due and compute_reveal_open read it as a dispute."""

    appeal_id: int
    dispute_id: int
    round_id: int
    task_id: int
    trainer: str
    challenger: str
    appellant: str
    claimed_hash: bytes
    challenger_answer: bytes
    eligible_block: int
    jury_block: int
    phase: int
    deadline: int
    reveal_deadline: int
    bond: int
    n_committed: int
    n_revealed: int
    votes_trainer: int
    votes_challenger: int
    trainer_won: bool

    @classmethod
    def from_abi(cls, appeal_id: int, v) -> "AppealView":
        (dispute_id, round_id, task_id, trainer, challenger, appellant, claimed_hash, challenger_answer, eligible_block,
         jury_block, phase, deadline, reveal_deadline, bond, n_committed, n_revealed, votes_trainer, votes_challenger,
         trainer_won) = v
        return cls(appeal_id, dispute_id, round_id, task_id, trainer, challenger, appellant, bytes(claimed_hash),
                   bytes(challenger_answer), eligible_block, jury_block, phase, deadline, reveal_deadline, bond,
                   n_committed, n_revealed, votes_trainer, votes_challenger, bool(trainer_won))


def compute_vote_loser(d: DisputeView, juror_answers: list[bytes]) -> str:
    """Who loses a dispute's jury vote as it stands (Appeals._first_verdict): each revealed answer's side against
    both parties' answers, then protocol.is_trainer_winner."""
    sides = [protocol.compute_vote_side(a, d.claimed_hash, d.challenger_answer) for a in juror_answers]
    trainer_won = protocol.is_trainer_winner(sides.count(protocol.VOTE_TRAINER), sides.count(protocol.VOTE_CHALLENGER))
    return d.challenger if trainer_won else d.trainer


def compute_appeal_open(d: DisputeView, head: int, reveal_verdicts_window: int) -> bool:
    """Appeals.appeal would pass in block head + 1 as far as time goes: the jury's reveal deadline passed (head >
    it: a gas estimate runs in the head block's context), the appeal deadline not yet, the challenger's answer
    revealed (an unrevealed one lost by its own miss: nothing to appeal)."""
    return (d.phase == protocol.DISPUTE_JURY and d.challenger_answer != protocol.ZERO_HASH and head > d.reveal_deadline
            and head + 1 <= protocol.compute_appeal_deadline(d.reveal_deadline, reveal_verdicts_window))


def compute_appeal_resolve_due(a: AppealView, head: int, is_appellant: bool) -> bool:
    """Whether a party sends Appeals.resolve at `head`: after the appeal jury's reveal deadline (head > it: a gas
    estimate runs in the head block's context), at once for the appellant (its bond's allowance covers the resolve),
    DRAW_GRACE_BLOCKS later for the other party, a backup: both at once raced into the same block and the second
    reverted on chain (3 of 3 appeals between node processes in tests/adversarial/test_appeal_nodes.py)."""
    return a.phase == protocol.DISPUTE_JURY and head > a.reveal_deadline + (0 if is_appellant else DRAW_GRACE_BLOCKS)


def compute_bond_with_margin(bond: int) -> int:
    """What a node sends for a bond the contract prices at this block's basefee (Disputes.bond_for, Appeals.bond_for):
    the basefee may rise before the move is mined; what is above the formula is bond too."""
    return bond * BOND_MARGIN_NUM // BOND_MARGIN_DEN + 1


def compute_flag_status(answer: bytes | None, trainer_answer: bytes) -> str:
    """What a node's own check of a trainer's flag finds: "unavailable" (no answer: a checkpoint not fetched),
    "right" (its answer is the trainer's), "wrong" (another value: provable, every juror finds the same)."""
    if answer is None:
        return "unavailable"
    return "right" if bytes(answer) == bytes(trainer_answer) else "wrong"


class DisputeDuties:
    """Plays every move this node owes in the disputes it is part of (see the module docstring)."""

    def __init__(self, chain, db, span_hashes: Callable[[DisputeView, int], list[bytes]], role: str = "verifier",
                 flag_answer: Callable[[int, int], bytes | None] | None = None,
                 segment_end: Callable[[int, int, bytes], bytes | None] | None = None, watch_share: float = 0.0,
                 appeal: bool = True):
        """`flag_answer(round_id, flag) -> bytes | None`: the node's own answer to a trainer's flag
        (VerifierNode.dispute_flag_answer; None: a checkpoint not fetched); without one the node opens no flag
        dispute and, as a juror of one, abstains."""
        self.chain, self.db, self.span_hashes, self.role, self.flag_answer = chain, db, span_hashes, role, flag_answer
        # a watcher (verifier --watch SHARE): `segment_end(round_id, segment, h_segment)` replays one posted segment
        # from its checkpoint (None: not fetched, or not hashing to h_segment); each segment is watched with
        # probability `watch_share`
        self.segment_end, self.watch_share = segment_end, watch_share
        self.disputes, self.appeals = chain.disputes, chain.appeals
        # a party that loses a jury vote appeals it to the whole verifier set (its own answer is its own replay: it
        # knows the vote wrong); `appeal=False` leaves it lost
        self.appeal = appeal and self.appeals is not None
        self._flags: dict[int, int] = {}  # Disputes.flag_of, fixed when a dispute opens: read once
        self._reveal_windows: dict[int, int] = {}  # task -> reveal_verdicts_window (_reveal_window)

    @property
    def me(self) -> str:
        return self.chain.address

    def _send(self, fn, what: str, value: int = 0) -> dict:
        """A dispute move: twice the estimate (a move's gas depends on the block it lands in: windows, first
        writes), so a move is never lost to an out-of-gas revert; unused gas is not paid."""
        try:
            gas = 2 * fn.estimate_gas({"from": self.me, "value": value})
        except Exception:  # noqa: BLE001  (transact estimates again and raises ChainError with the reason)
            gas = None
        return self.chain.transact(fn, value=value, what=what, gas=gas)

    # ------------------------------------------------------------ reads
    def view(self, dispute_id: int) -> DisputeView:
        v = DisputeView.from_abi(dispute_id, self.chain.call(self.disputes.functions.disputes(dispute_id)))
        if dispute_id not in self._flags:
            self._flags[dispute_id] = self.chain.call(self.disputes.functions.flag_of(dispute_id))
        return replace(v, flag=self._flags[dispute_id]) if self._flags[dispute_id] else v

    def jury(self, dispute_id: int) -> list[str]:
        return list(self.chain.call(self.disputes.functions.jury_of(dispute_id)))

    def posted_steps(self, dispute_id: int) -> list[bytes]:
        return decode_hashes(self.chain.events("StepsPosted", dispute_id=dispute_id)[-1]["args"]["step_hashes"])

    def _state(self, dispute_id: int) -> dict:
        return self.db.get_json(f"dispute:{dispute_id}", {})

    def _save(self, dispute_id: int, **fields) -> None:
        self.db.put_json(f"dispute:{dispute_id}", {**self._state(dispute_id), **fields})

    def discover(self) -> list[int]:
        """Disputes this node is part of (as trainer, challenger, or drawn juror), new ones found from events; also
        every dispute whose step was named and whose jury is not drawn yet (any node may draw it: `undrawn`)."""
        known = set(self.db.get_json("disputes:mine", []))
        undrawn = set(self.db.get_json("disputes:undrawn", []))
        cursor = self.db.get_cursor("disputes")
        head = self.chain.block_number()
        for ev in self.chain.events("DisputeOpened", from_block=cursor or None, to_block=head):
            if self.me in (ev["args"]["challenger"], ev["args"]["trainer"]):
                known.add(ev["args"]["dispute_id"])
        for name in ("StepNamed", "FlagDisputed"):  # a flag dispute awaits its jury from the start
            for ev in self.chain.events(name, from_block=cursor or None, to_block=head):
                undrawn.add(ev["args"]["dispute_id"])
        for ev in self.chain.events("JuryDrawn", from_block=cursor or None, to_block=head):
            undrawn.discard(ev["args"]["dispute_id"])
            if self.me in ev["args"]["jury"]:
                known.add(ev["args"]["dispute_id"])
        self.db.put_json("disputes:mine", sorted(known))
        self.db.put_json("disputes:undrawn", sorted(undrawn))
        self.db.set_cursor("disputes", head + 1)
        return sorted(known)

    @property
    def undrawn(self) -> list[int]:
        """Disputes whose step was named and whose jury this node has not seen drawn (discover keeps it)."""
        return self.db.get_json("disputes:undrawn", [])

    # ------------------------------------------------------------ moves
    def open(self, round_id: int, check_index: int) -> int:
        """Challenger: dispute check `check_index` of `round_id` (its revealed verdict contradicted it)."""
        return self._open(round_id, self.disputes.functions.open(round_id, check_index), "open dispute",
                          {"check": check_index}, f"check {check_index}")

    def open_flag(self, round_id: int, flag: int, answer: bytes, salt: bytes) -> int:
        """Challenger: dispute the trainer's flag `flag` (protocol.FLAG_*) of `round_id` with its own answer (committed
        under the round: the dispute id is not known before the open is mined): no span, a jury at once."""
        commitment = protocol.compute_vote_commitment(round_id, self.me, answer, salt)
        return self._open(round_id, self.disputes.functions.open_flag(round_id, flag, commitment), "open flag dispute",
                          {"flag": flag, "answer": answer.hex(), "answer_salt": salt.hex()}, f"flag {flag}")

    def _open(self, round_id: int, fn, what: str, decided: dict, detail: str, bond: int | None = None) -> int:
        """Send an open move with the bond (the formula at this block plus a margin) and record the dispute."""
        if bond is None:
            bond = self.chain.call(self.disputes.functions.bond_for(self._verifier_reward(round_id)))
        bond = compute_bond_with_margin(bond)
        receipt = self._send(fn, value=bond, what=what)
        dispute_id = self.disputes.events.DisputeOpened().process_receipt(receipt, errors=DISCARD)[0]["args"]["dispute_id"]
        self._save(dispute_id, role="challenger", round_id=round_id, bond=bond, **decided)
        self.db.put_json(f"dispute:round:{round_id}", {**decided, "dispute": dispute_id})
        self.db.put_json("disputes:mine", sorted(set(self.db.get_json("disputes:mine", [])) | {dispute_id}))
        self.db.record_duty(self.role, round_id, "dispute:open", "sent", f"dispute {dispute_id} {detail}")
        log.info("round %d: opened dispute %d on %s (bond %d wei)", round_id, dispute_id, detail, bond)
        return dispute_id

    def trainer_flag_answer(self, round_id: int, flag: int) -> bytes:
        """The trainer's answer to its own flag, as Disputes._flag_answer reads it from TrainingRounds."""
        if flag == protocol.FLAG_STARTS:
            return protocol.compute_starts_answer(self.chain.call(self.chain.rounds.functions.start_hashes_of(round_id)))
        rnd = self.chain.call(self.chain.rounds.functions.rounds(round_id))
        return bytes(rnd[3] if flag == protocol.FLAG_DATA_ROOT else rnd[14])  # Round.data_root, Round.final_hash

    def disputable_flag(self, round_id: int, flags: list[int]) -> tuple[int, bytes] | None:
        """The flag of `flags` (false in this node's verdict) to dispute, with its answer: the first its own check
        finds wrong now (provable: it pays the fraud reward), else the first over checkpoints it still cannot fetch,
        answered protocol.ANSWER_UNAVAILABLE (an availability challenge: protocol.is_availability_challenge); None
        if every one is right now, or without a flag check."""
        if self.flag_answer is None:
            return None
        status = {}
        for flag in flags:
            answer = self.flag_answer(round_id, flag)
            status[flag] = compute_flag_status(answer, self.trainer_flag_answer(round_id, flag))
            if status[flag] == "wrong":
                return flag, bytes(answer)
        unavailable = [f for f in flags if status[f] == "unavailable" and protocol.is_checkpoint_flag(f)]
        return (unavailable[0], protocol.ANSWER_UNAVAILABLE) if unavailable else None

    def open_my_contradictions(self, head: int) -> list[int]:
        """Challenger: every round where this node's revealed verdict contradicted the trainer's end hashes and
        the round is still open to disputes gets its dispute (on the first differing check), once."""
        if self.me is None:
            return []
        cursor = self.db.get_cursor("disputes:reveals")
        opened = []
        for ev in self.chain.events("VerdictRevealed", from_block=cursor or None, to_block=head, verifier=self.me):
            round_id = ev["args"]["round_id"]
            decided = self.db.get_json(f"dispute:round:{round_id}")
            if not ev["args"]["contradicts"] or (decided is not None and (
                    "dispute" in decided or (decided.get("check") is None and decided.get("flag") is None))):
                continue  # disputed already, or decided there is nothing to dispute (a crash before the open: retried)
            if self.chain.call(self.chain.rounds.functions.disputed(round_id, self.me)):
                continue
            rnd = self.chain.call(self.chain.rounds.functions.rounds(round_id))
            phase, deadline = rnd[5], rnd[9]  # Round.phase, Round.deadline
            if phase != protocol.Phase.ENDS_REVEALED or head + 1 > deadline:
                continue
            mine = decode_hashes(ev["args"]["end_hashes"])
            if decided is None:  # decided once, written before sending
                check = compute_disputed_check(self.chain.call(self.chain.rounds.functions.end_hashes_of(round_id)), mine)
                flag = answer = None
                if check is None:  # no span to narrow: a flag the node can prove wrong, if any, and its answer
                    a = ev["args"]
                    found = self.disputable_flag(round_id, protocol.compute_false_flags(a["data_root_ok"], a["starts_ok"], a["final_ok"]))
                    flag, answer = found if found else (None, None)
                decided = {"check": check, "flag": flag}
                if answer is not None:
                    decided.update(answer=answer.hex(), answer_salt=os.urandom(32).hex())
                self.db.put_json(f"dispute:round:{round_id}", decided)
            check, flag = decided.get("check"), decided.get("flag")
            if check is not None:
                opened.append(self.open(round_id, check))
            elif flag is not None:
                opened.append(self.open_flag(round_id, flag, bytes.fromhex(decided["answer"]),
                                             bytes.fromhex(decided["answer_salt"])))
        self.db.set_cursor("disputes:reveals", head + 1)
        return opened

    # ------------------------------------------------------------ watchers (any verifier, any segment)
    def watch(self, head: int) -> list[str]:
        """A verifier's watch over every round in its watch window (its ends revealed, its deadline not passed):
        convict a trainer that did not post its boundaries by the final flags' window, or posted boundaries off its
        trace root; with a watch share, replay a random share of the posted segments and dispute one whose end is
        not the posted next boundary (open_watch). Each round is looked at once per kind of check (NodeDB)."""
        if self.me is None:
            return []
        watched = set(self.db.get_json("watch:rounds", []))
        cursor = self.db.get_cursor("watch")
        for ev in self.chain.events("EndsRevealed", from_block=cursor or None, to_block=head):
            watched.add(ev["args"]["round_id"])
        self.db.set_cursor("watch", head + 1)
        done = []
        for round_id in sorted(watched):
            rnd = self.chain.call(self.chain.rounds.functions.rounds(round_id))
            phase, commit_deadline, deadline, trace_root = rnd[5], rnd[10], rnd[9], bytes(rnd[4])
            if phase != protocol.Phase.ENDS_REVEALED or head + 1 > deadline:
                watched.discard(round_id)
                continue
            state = self.db.get_json(f"watch:{round_id}", {})
            posted = self.chain.call(self.disputes.functions.boundaries_hash(round_id)) != protocol.ZERO_HASH
            if not posted:
                # head > commit_deadline, not head + 1: a gas estimate runs in the context of the head block
                if head > commit_deadline and not self.chain.call(self.disputes.functions.round_convicted(round_id)):
                    done += self._convict(round_id, self.disputes.functions.convict_unposted(round_id), "boundaries not posted")
                continue
            if state.get("checked"):
                continue
            ev = self.chain.events("BoundariesPosted", round_id=round_id)[-1]["args"]
            hashes = decode_hashes(ev["boundary_hashes"])
            state = {**state, "checked": True}
            self.db.put_json(f"watch:{round_id}", state)  # decided once, before any transaction
            if protocol.compute_merkle_root(hashes) != trace_root:
                done += self._convict(round_id, self.disputes.functions.convict_off_root(round_id, hashes), "boundaries off the trace root")
                continue
            segment = self.find_bad_segment(round_id, hashes)
            if segment is not None and not self.is_watch_redundant(round_id, segment):
                done.append(f"watched {self.open_watch(round_id, segment, hashes)}")
        self.db.put_json("watch:rounds", sorted(watched))
        return done

    def find_bad_segment(self, round_id: int, hashes: list[bytes]) -> int | None:
        """The first of a random `watch_share` of the round's segments whose replay does not end at the posted next
        boundary (a segment whose start is unusable is skipped: unattributable, as for flags); None if all agree."""
        if self.segment_end is None or self.watch_share <= 0:
            return None
        rng = random.Random(os.urandom(16))
        chosen = [j for j in range(len(hashes) - 1) if rng.random() < self.watch_share]
        for segment in chosen:
            end = self.segment_end(round_id, segment, hashes[segment])
            if end is not None and bytes(end) != hashes[segment + 1]:
                log.warning("round %d: watched segment %d ends at 0x%s, the trainer posted 0x%s", round_id, segment,
                            bytes(end).hex()[:12], hashes[segment + 1].hex()[:12])
                return segment
        log.info("round %d: watched %d of %d segments: all agree", round_id, len(chosen), len(hashes) - 1)
        return None

    def is_watch_redundant(self, round_id: int, segment: int) -> bool:
        """Another watch would add nothing (and cost a doubled bond, rules.compute_watch_bond): the trainer is convicted
        already, or a watch dispute over this segment is still open or was won. One that was lost (a bogus watcher may
        name the right segment and lose on purpose) does not stop ours."""
        if self.chain.call(self.disputes.functions.round_convicted(round_id)):
            return True
        n_checks = len(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id)))
        for ev in self.chain.events("DisputeOpened", round_id=round_id):
            if ev["args"]["check_index"] == n_checks + segment:
                d = self.view(ev["args"]["dispute_id"])
                if d.phase != protocol.DISPUTE_RESOLVED or not d.trainer_won:
                    log.info("round %d: segment %d is disputed already (dispute %d): not watching it again", round_id,
                             segment, d.dispute_id)
                    return True
        return False

    def open_watch(self, round_id: int, segment: int, hashes: list[bytes]) -> int:
        """Watcher: dispute segment `segment` of `round_id` (the span between its posted boundaries), with the watch
        bond of the round (doubled per earlier watch)."""
        bond = self.chain.call(self.disputes.functions.watch_bond_for(round_id, self._verifier_reward(round_id)))
        return self._open(round_id, self.disputes.functions.open_watch(round_id, segment, hashes), "open watch dispute",
                          {"segment": segment}, f"segment {segment}", bond=bond)

    def _convict(self, round_id: int, fn, why: str) -> list[str]:
        """convict_unposted / convict_off_root: every watching node may send it; one lands, the rest revert
        ("already convicted"): logged; a failed send is tried again next block while the round is open."""
        try:
            self._send(fn, what=f"convict ({why})")
        except TrainchainError as e:
            log.info("round %d: conviction (%s) not sent: %s", round_id, why, e)
            return []
        self.db.record_duty(self.role, round_id, "dispute:convict", "sent", why)
        return [f"convicted round {round_id} ({why})"]

    def _verifier_reward(self, round_id: int) -> int:
        task_id = self.chain.call(self.chain.rounds.functions.rounds(round_id))[0]
        return self.chain.call(self.chain.registry.functions.task_params(task_id))[10]

    def tick(self, head: int | None = None) -> list[str]:
        """One pass over this node's open disputes: every move that is due and ours. Returns what was done."""
        head = self.chain.block_number() if head is None else head
        done = [f"opened {i}" for i in self.open_my_contradictions(head)]
        if self.role == "verifier":
            done += self.watch(head)
        mine = self.discover()
        for dispute_id in self.undrawn:
            if dispute_id not in mine:  # no party: a backup drawer only (the parties' own pass below draws first)
                what = self._draw(self.view(dispute_id), self.chain.block_number())
                if what:
                    done.append(f"{what} {dispute_id}")
        for dispute_id in mine:
            d = self.view(dispute_id)
            if d.phase == protocol.DISPUTE_RESOLVED:
                continue
            for move in (self._defend, self._name, self._draw, self._vote, self._reveal_answer, self._appeal,
                         self._resolve):
                what = move(d, self.chain.block_number())  # fresh: this node's own moves mine blocks too
                if what:
                    done.append(f"{what} {dispute_id}")
                    d = self.view(dispute_id)
        if self.appeals is not None:
            done += self.tick_appeals(self.chain.block_number())
        return done

    def _defend(self, d: DisputeView, head: int) -> str | None:
        if d.phase != protocol.DISPUTE_OPENED or d.trainer != self.me or head + 1 > d.deadline:
            return None
        hashes = self.span_hashes(d, d.span_steps)
        self._send(self.disputes.functions.post_steps(d.dispute_id, hashes), what="post dispute steps")
        self.db.record_duty(self.role, d.round_id, "dispute:post_steps", "sent", f"dispute {d.dispute_id}")
        return "posted steps"

    def _name(self, d: DisputeView, head: int) -> str | None:
        if d.phase != protocol.DISPUTE_STEPS_POSTED or d.challenger != self.me or head + 1 > d.deadline:
            return None
        posted = self.posted_steps(d.dispute_id)
        mine = self.span_hashes(d, d.span_steps)
        step = compute_first_disputed_step(mine, posted)
        if step is None:  # our replay agrees after all: concede (naming a step would also cost the jury's pay)
            self.db.record_duty(self.role, d.round_id, "dispute:name_step", "conceded", f"dispute {d.dispute_id}")
            return None
        # our answer (what our replay gives after the step), decided once and written before sending: a restart
        # commits the same one and can still reveal it
        state = self._state(d.dispute_id)
        if state.get("step") != step or "answer" not in state:
            state = {"step": step, "answer": bytes(mine[step]).hex(), "answer_salt": os.urandom(32).hex()}
            self._save(d.dispute_id, **state)
        commitment = protocol.compute_vote_commitment(d.round_id, self.me, bytes.fromhex(state["answer"]),
                                                      bytes.fromhex(state["answer_salt"]))
        self._send(self.disputes.functions.name_step(d.dispute_id, step, posted, commitment), what="name dispute step")
        self.db.record_duty(self.role, d.round_id, "dispute:name_step", "sent", f"dispute {d.dispute_id} step {step}")
        return f"named step {step}"

    def _draw(self, d: DisputeView, head: int) -> str | None:
        """Anyone's move: draw the jury once the jury block is mined (the challenger at once, any other node after
        DRAW_GRACE_BLOCKS). Another node's draw landing first makes ours revert: harmless, nothing to retry."""
        if not compute_draw_due(d, head, self.me == d.challenger):
            return None
        expired = protocol.is_jury_block_expired(d.jury_block, head + 1)
        receipt = self._send_draw(self.disputes.functions.draw_jury(d.dispute_id), "dispute", d.dispute_id, d, self.view)
        if receipt is None:
            return None
        if self.disputes.events.JuryDrawn().process_receipt(receipt, errors=DISCARD):
            self.db.record_duty(self.role, d.round_id, "dispute:draw_jury", "sent", f"dispute {d.dispute_id} J={d.jury_block}")
            return "drew jury"
        ev = self.disputes.events.JuryBlockRetargeted().process_receipt(receipt, errors=DISCARD)
        new_block = ev[0]["args"]["jury_block"] if ev else None
        self.db.record_duty(self.role, d.round_id, "dispute:draw_jury", "retargeted",
                            f"dispute {d.dispute_id} J={d.jury_block} expired -> {new_block}")
        log.warning("dispute %d: jury block %d expired before anyone drew%s; re-targeted to %s", d.dispute_id,
                    d.jury_block, "" if expired else " (in the block the draw landed in)", new_block)
        return "re-targeted jury block"

    def _send_draw(self, fn, what: str, vote_id: int, v, reread: Callable[[int], object]) -> dict | None:
        """Send a jury draw (a dispute's or an appeal's `vote_id`: `v` its view, `reread(vote_id)` a fresh one); None
        when another node's draw (or re-target) landed first, which makes ours revert: harmless, nothing to retry."""
        try:
            return self._send(fn, what=f"draw {what} jury")
        except TrainchainError as e:
            now = reread(vote_id)
            if now.phase != protocol.DISPUTE_STEP_NAMED or now.jury_block != v.jury_block:
                log.info("%s %d: jury drawn (or re-targeted) by another node first (%s)", what, vote_id, e)
                return None
            raise

    def juror_answer(self, d: DisputeView) -> bytes:
        """This juror's answer: the state hash its replay gives after the named step (a flag dispute: its own answer
        to the flag; protocol.ANSWER_UNAVAILABLE if it could not fetch the flag's checkpoints: serving them is the
        trainer's duty); ZERO_HASH, an abstention, when it cannot compute one (a span whose start is unavailable or
        does not hash to its leaf; no flag check): never a guess, which would count for nobody anyway."""
        if d.flag:
            answer = self.flag_answer(d.round_id, d.flag) if self.flag_answer is not None else None
            if answer is None and self.flag_answer is not None and protocol.is_checkpoint_flag(d.flag):
                log.warning("dispute %d: flag %d's checkpoints not served to me: answering unavailable", d.dispute_id, d.flag)
                return protocol.ANSWER_UNAVAILABLE
        else:
            mine = self.span_hashes(d, d.step)
            answer = mine[d.step] if len(mine) > d.step else None
        if answer is None:
            log.warning("dispute %d: no answer of my own (%s unusable): abstaining", d.dispute_id,
                        f"flag {d.flag}" if d.flag else "the span's start")
            return protocol.ZERO_HASH
        return bytes(answer)

    def _vote(self, d: DisputeView, head: int) -> str | None:
        jury = self.jury(d.dispute_id) if d.phase == protocol.DISPUTE_JURY else []
        if self.me not in jury:
            return None
        return self._play_vote(self.disputes, "dispute", d.dispute_id, d, jury, lambda: self.juror_answer(d), head)

    def _play_vote(self, contract, what: str, vote_id: int, v, jury: list[str], answer: Callable[[], bytes],
                   head: int) -> str | None:
        """A juror's commit, then reveal, in a jury of `contract` (Disputes or Appeals: the same moves) keyed by
        `vote_id`; `v` is its view (phase, deadlines, n_committed, claimed_hash). The answer is decided once and
        written (state `{what}:{vote_id}`) before anything is sent: a restart reuses it."""
        key = f"{what}:{vote_id}"
        state = self.db.get_json(key, {})
        committed = self.chain.call(contract.functions.vote_commitments(vote_id, self.me)) != b"\x00" * 32
        if not committed and head + 1 <= v.deadline:
            if "vote" not in state:
                state = {**state, "vote": answer().hex(), "salt": os.urandom(32).hex()}
                self.db.put_json(key, state)
            commitment = protocol.compute_vote_commitment(vote_id, self.me, bytes.fromhex(state["vote"]),
                                                          bytes.fromhex(state["salt"]))
            self._send(contract.functions.commit_vote(vote_id, commitment), what=f"commit {what} jury vote")
            self.db.record_duty(self.role, v.round_id, f"{what}:commit_vote", "sent", f"{what} {vote_id}")
            return "committed vote"
        revealed = self.chain.call(contract.functions.votes(vote_id, self.me)) != protocol.VOTE_NONE
        if committed and not revealed and "vote" in state and compute_reveal_open(v, len(jury), head):
            answer_ = bytes.fromhex(state["vote"])
            self._send(contract.functions.reveal_vote(vote_id, answer_, bytes.fromhex(state["salt"])),
                       what=f"reveal {what} jury vote")
            self.db.record_duty(self.role, v.round_id, f"{what}:reveal_vote", "sent",
                                f"{what} {vote_id} trainer_right={answer_ == v.claimed_hash}")
            return "revealed vote"
        return None

    def _reveal_answer(self, d: DisputeView, head: int) -> str | None:
        """Challenger: open the answer committed with name_step / open_flag once the jury committed (not before:
        a juror could copy it into its vote)."""
        if d.challenger != self.me or d.challenger_answer != protocol.ZERO_HASH:
            return None
        if not compute_reveal_open(d, len(self.jury(d.dispute_id)), head):
            return None
        state = self._state(d.dispute_id)
        if not state.get("answer"):
            return None  # a dispute opened before answers existed: nothing to reveal
        self._send(self.disputes.functions.reveal_answer(d.dispute_id, bytes.fromhex(state["answer"]),
                                                         bytes.fromhex(state["answer_salt"])), what="reveal challenger answer")
        self.db.record_duty(self.role, d.round_id, "dispute:reveal_answer", "sent", f"dispute {d.dispute_id}")
        return "revealed answer"

    def _resolve(self, d: DisputeView, head: int) -> str | None:
        if self.me not in (d.trainer, d.challenger) or d.phase not in (protocol.DISPUTE_OPENED, protocol.DISPUTE_STEPS_POSTED,
                                                                        protocol.DISPUTE_JURY):
            return None
        if not compute_resolve_due(d, head, self._reveal_window(d.task_id), self.me == d.trainer):
            return None
        receipt = self._send(self.disputes.functions.resolve(d.dispute_id), what="resolve dispute")
        won = self.disputes.events.DisputeResolved().process_receipt(receipt, errors=DISCARD)[0]["args"]["trainer_won"]
        self.db.record_duty(self.role, d.round_id, "dispute:resolve", "sent", f"dispute {d.dispute_id} trainer_won={won}")
        return "resolved"

    def _reveal_window(self, task_id: int) -> int:
        """The task's reveal_verdicts_window (a task's parameters are fixed at creation: read once)."""
        if task_id not in self._reveal_windows:
            self._reveal_windows[task_id] = self.chain.call(self.chain.registry.functions.task_params(task_id))[8]
        return self._reveal_windows[task_id]

    # ------------------------------------------------------------ appeals (contracts/Appeals.vy)
    def appeal_view(self, appeal_id: int) -> AppealView:
        return AppealView.from_abi(appeal_id, self.chain.call(self.appeals.functions.appeals(appeal_id)))

    def appeal_jury(self, appeal_id: int) -> list[str]:
        return list(self.chain.call(self.appeals.functions.jury_of(appeal_id)))

    def discover_appeals(self, head: int) -> list[int]:
        """Appeals this node plays: of a dispute it is a party of, or whose jury seats it; and every appeal whose
        jury it has not seen drawn (any node may draw it, after the appellant)."""
        mine = set(self.db.get_json("appeals:mine", []))
        undrawn = set(self.db.get_json("appeals:undrawn", []))
        cursor = self.db.get_cursor("appeals")
        for ev in self.chain.events("DisputeAppealed", from_block=cursor or None, to_block=head):
            appeal_id = ev["args"]["appeal_id"]
            undrawn.add(appeal_id)
            a = self.appeal_view(appeal_id)
            if self.me in (a.trainer, a.challenger):
                mine.add(appeal_id)
        for ev in self.chain.events("AppealJuryDrawn", from_block=cursor or None, to_block=head):
            undrawn.discard(ev["args"]["appeal_id"])
            if self.me in ev["args"]["jury"]:
                mine.add(ev["args"]["appeal_id"])
        self.db.put_json("appeals:mine", sorted(mine))
        self.db.put_json("appeals:undrawn", sorted(undrawn))
        self.db.set_cursor("appeals", head + 1)
        return sorted(mine | undrawn)

    def tick_appeals(self, head: int) -> list[str]:
        done = []
        for appeal_id in self.discover_appeals(head):
            a = self.appeal_view(appeal_id)
            for move in (self._draw_appeal, self._vote_appeal, self._resolve_appeal):
                if a.phase == protocol.DISPUTE_RESOLVED:
                    break
                what = move(a, self.chain.block_number())
                if what:
                    done.append(f"{what} (appeal {appeal_id})")
                    a = self.appeal_view(appeal_id)
        return done

    def _appeal(self, d: DisputeView, head: int) -> str | None:
        """A party that loses the jury's count appeals it to the whole verifier set, once, as soon as the reveal
        deadline passed (its answer is its own replay: it knows the count wrong). The bond (the formula at this
        block plus a margin) is written before sending."""
        if not self.appeal or self.me not in (d.trainer, d.challenger):
            return None
        if not compute_appeal_open(d, head, self._reveal_window(d.task_id)):
            return None
        answers = [bytes(self.chain.call(self.disputes.functions.answers(d.dispute_id, j))) for j in self.jury(d.dispute_id)]
        if compute_vote_loser(d, answers) != self.me or self.chain.call(self.appeals.functions.appeal_of(d.dispute_id)):
            return None
        bond = compute_bond_with_margin(self.chain.call(self.appeals.functions.bond_for(self._verifier_reward(d.round_id))))
        self._save(d.dispute_id, appeal_bond=bond)
        receipt = self._send(self.appeals.functions.appeal(d.dispute_id), what="appeal jury vote", value=bond)
        appeal_id = self.appeals.events.DisputeAppealed().process_receipt(receipt, errors=DISCARD)[0]["args"]["appeal_id"]
        self.db.record_duty(self.role, d.round_id, "dispute:appeal", "sent",
                            f"dispute {d.dispute_id} appeal {appeal_id} bond {bond}")
        log.info("dispute %d: lost the jury's count; appealed to the whole verifier set (appeal %d, bond %d wei)",
                 d.dispute_id, appeal_id, bond)
        return f"appealed ({appeal_id})"

    def _draw_appeal(self, a: AppealView, head: int) -> str | None:
        """Anyone's move, the appellant's at once (its bond's allowance covers the draw), others' after
        DRAW_GRACE_BLOCKS; losing the race to another node is harmless."""
        if not compute_draw_due(a, head, self.me == a.appellant):
            return None
        receipt = self._send_draw(self.appeals.functions.draw_jury(a.appeal_id), "appeal", a.appeal_id, a, self.appeal_view)
        if receipt is None:
            return None
        drawn = bool(self.appeals.events.AppealJuryDrawn().process_receipt(receipt, errors=DISCARD))
        self.db.record_duty(self.role, a.round_id, "appeal:draw_jury", "sent" if drawn else "retargeted",
                            f"appeal {a.appeal_id} J={a.jury_block}")
        return "drew appeal jury" if drawn else "re-targeted appeal jury block"

    def _vote_appeal(self, a: AppealView, head: int) -> str | None:
        jury = self.appeal_jury(a.appeal_id) if a.phase == protocol.DISPUTE_JURY else []
        if self.me not in jury:
            return None
        # the same answer a juror of the dispute gives: its own replay of the named step (or its flag check)
        return self._play_vote(self.appeals, "appeal", a.appeal_id, a, jury,
                               lambda: self.juror_answer(self.view(a.dispute_id)), head)

    def _resolve_appeal(self, a: AppealView, head: int) -> str | None:
        if self.me not in (a.trainer, a.challenger) or not compute_appeal_resolve_due(a, head, self.me == a.appellant):
            return None
        receipt = self._send(self.appeals.functions.resolve(a.appeal_id), what="resolve appeal")
        ev = self.appeals.events.AppealResolved().process_receipt(receipt, errors=DISCARD)[0]["args"]
        self.db.record_duty(self.role, a.round_id, "appeal:resolve", "sent",
                            f"appeal {a.appeal_id} trainer_won={ev['trainer_won']} appellant_won={ev['appellant_won']}")
        return "resolved appeal"

# ---------------------------------------------------------------- the replay a node plays disputes with
def compute_span_replay(spec, dataset, store, start_cid: str, start_hash: bytes, start_leaf: int, steps: int,
                        workdir, slot=None) -> list[bytes]:
    """[h_start, state after step 1, ..., after `steps`] of the span starting at boundary leaf `start_leaf`:
    fetch its revealed start checkpoint, check it hashes to the start leaf, replay on the round's schedule.
    A start that cannot be fetched or does not hash to its leaf gives [] (that is the start's own case: the
    verdict's starts_ok flag, not a step to name)."""
    from node.engine import replay_segment
    from node.engine.state import StateError

    path = Path(workdir) / f"dispute-start-{start_cid}.safetensors"
    try:
        if not path.exists():
            store.get_file(start_cid, path)
        hashes: list[bytes] = []
        replay_segment(spec, dataset, path, steps, expected_hash=bytes(start_hash), step_hashes=hashes, slot=slot,
                       slot_step=start_leaf * spec.segment_steps)
    except (StateError, OSError, Exception) as exc:  # noqa: BLE001  (store errors, hostile files: the trainer's fault)
        log.warning("dispute start %s unusable: %s", start_cid, exc)
        return []
    return [bytes(h) for h in hashes]


def replay_provider(chain, store, workdir, task_engine: Callable[[int], tuple]) -> Callable[[DisputeView, int], list[bytes]]:
    """The `span_hashes` of a real node (v1 rounds and epoch slots): the span's start CID from the round's StartsRevealed
    event, its start leaf from round_samples_of, `task_engine(task_id) -> (spec, dataset)` the node's own."""
    def span_hashes(d: DisputeView, steps: int) -> list[bytes]:
        from node.roles.epochs import slot_of_round

        spec, dataset = task_engine(d.task_id)
        samples = chain.call(chain.rounds.functions.round_samples_of(d.round_id))
        if d.check_index < len(samples):  # a member's dispute: one of the round's checks
            cid = chain.events("StartsRevealed", round_id=d.round_id)[-1]["args"]["start_cids"][d.check_index]
            start_leaf = samples[d.check_index]
        else:  # a watcher's: segment check_index - checks, its start from the trainer's boundary manifest
            start_leaf = d.check_index - len(samples)
            cid = boundary_cids(chain, store, d.round_id)[start_leaf]
        slot = slot_of_round(chain, d.round_id, chain.get_task(d.task_id))  # an epoch slot replays on its own schedule
        return compute_span_replay(spec, dataset, store, cid, d.start_hash, start_leaf, steps, workdir, slot=slot)
    return span_hashes


def boundary_cids(chain, store, round_id: int) -> list[str]:
    """The CIDs of a round's M + 1 boundary checkpoints: the manifest its trainer posted with its boundaries."""
    manifest = chain.events("BoundariesPosted", round_id=round_id)[-1]["args"]["manifest_cid"]
    cids = json.loads(store.get_bytes(manifest))
    if not isinstance(cids, list) or not all(isinstance(c, str) for c in cids):
        raise ValueError(f"round {round_id}: boundary manifest {manifest} is not a list of CIDs")
    return cids


def segment_end_provider(chain, store, workdir, task_engine: Callable[[int], tuple]) -> Callable[[int, int, bytes], bytes | None]:
    """A watcher's `segment_end`: replay segment `segment` of a round from its boundary checkpoint (the manifest's
    CID, checked against h_segment), on the round's schedule; None if the start is unusable."""
    def segment_end(round_id: int, segment: int, start_hash: bytes) -> bytes | None:
        from node.roles.epochs import slot_of_round

        rnd = chain.get_round(round_id)
        task = chain.get_task(rnd.task_id)
        spec, dataset = task_engine(rnd.task_id)
        try:
            cid = boundary_cids(chain, store, round_id)[segment]
        except Exception as exc:  # noqa: BLE001  (a manifest not served or malformed: the start is unusable)
            log.warning("round %d: no boundary manifest (%s): segment %d not watched", round_id, exc, segment)
            return None
        slot = slot_of_round(chain, round_id, task)
        hashes = compute_span_replay(spec, dataset, store, cid, start_hash, segment, spec.segment_steps, workdir, slot=slot)
        return hashes[-1] if len(hashes) == spec.segment_steps + 1 else None
    return segment_end


# ---------------------------------------------------------------- the duty nodes' hook
class DisputeRole:
    """Mixin for a duty node (TrainerNode, VerifierNode: self.chain, self.store, self.db, self.workdir, self.role,
    and dispute_engine(task_id) -> (spec, dataset)): `tick_disputes(head)` once per block plays every dispute move
    the node owes. Inert on a deployment without Disputes; a failed move is logged and retried next block."""

    _dispute_duties = None
    appeals_lost_votes = True  # a party that loses a jury vote appeals it (DisputeDuties: its answer is its replay)

    def is_held_by_disputes(self, rnd, head: int) -> bool:
        """Whether a round's finalize must wait for disputes (the contract's "rounds: in dispute" / the watch window
        every round with Disputes waits out): a node must not spend its tick retrying a finalize that reverts."""
        if self.chain.disputes is None or rnd.phase != protocol.Phase.ENDS_REVEALED:
            return False
        if self.chain.call(self.chain.rounds.functions.disputes_open(rnd.round_id)) > 0:
            return True
        return head <= rnd.deadline

    # ------------------------------------------------------------ watchers: the trainer's side
    def is_boundaries_due(self, rnd, head: int) -> bool:
        """Trainer: its round's boundaries are to be posted now (Disputes.post_boundaries: after the ends reveal,
        by the final flags' window; not yet posted)."""
        if self.chain.disputes is None or rnd.phase != protocol.Phase.ENDS_REVEALED or head + 1 > rnd.commit_deadline:
            return False
        return self.chain.call(self.chain.disputes.functions.boundaries_hash(rnd.round_id)) == protocol.ZERO_HASH

    def post_boundaries(self, round_id: int, boundary_hashes: list[bytes], cids: list[str]) -> None:
        """Trainer: post h_0 .. h_M and the manifest of their checkpoints (a JSON list of CIDs, in the store; the
        checkpoints are already there): from now to the deadline any verifier may dispute any segment. Not posting
        is convicted (Disputes.convict_unposted)."""
        manifest = self.store.put_bytes(json.dumps(list(cids)).encode())
        self.transact(round_id, self.chain.disputes.functions.post_boundaries(round_id, list(boundary_hashes), manifest),
                      "post_boundaries", done=lambda: not self.is_boundaries_due(self.chain.get_round(round_id),
                                                                                 self.chain.block_number()))
        log.info("round %d: posted its %d boundaries (manifest %s)", round_id, len(boundary_hashes), manifest)

    def make_span_hashes(self) -> Callable[[DisputeView, int], list[bytes]]:
        """The `span_hashes` this node defends, names and votes with: its real replay (replay_provider)."""
        return replay_provider(self.chain, self.store, Path(self.workdir) / "disputes", self.dispute_engine)

    def tick_disputes(self, head: int) -> None:
        if self.chain.disputes is None:
            return
        if self._dispute_duties is None:
            workdir = Path(self.workdir) / "disputes"
            self._dispute_duties = DisputeDuties(
                self.chain, self.db, self.make_span_hashes(), role=self.role,
                flag_answer=getattr(self, "dispute_flag_answer", None),
                segment_end=segment_end_provider(self.chain, self.store, workdir, self.dispute_engine),
                watch_share=getattr(self, "watch_share", 0.0), appeal=self.appeals_lost_votes)
        try:
            for what in self._dispute_duties.tick(head):
                log.info("dispute: %s", what)
        except TrainchainError as e:  # a move that failed now is tried again next block; the node keeps serving
            log.warning("dispute move failed at block %d: %s", head, e)
