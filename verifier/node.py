"""The verifier node: on seal, if in the committee, replay the sampled segments and vote.

    node = VerifierNode(chain, store, db, workdir=datadir / "verifier")
    node.run(stop_event)

One tick:
- new TaskCreated events: each task's spec is screened as a replay would load it; a task this
  process refuses (its runtime pin, its spec) is opted out of on chain at once (StakeManager.optout:
  never drawn for it), so a hostile or foreign task cannot make this verifier a no-show (#13, attack 1);
- new RoundSealed events (from a block cursor kept in the DB): rounds whose committee
  holds this address are saved in the DB;
- for each open round in the DB, by its on-chain phase:
  STARTS_REVEALED  fetch the spec (refuse, in words, a runtime this process cannot
                   reproduce), fetch each revealed start checkpoint and check it hashes
                   to h_j, replay k steps, check the data root against the schedule,
                   draw a salt and save everything in sqlite BEFORE commit_verdict;
  ENDS_REVEALED    fetch the final checkpoint, check it hashes to h_M, save final_ok and
                   commit it (commit_verdict's second part, the verdict's salt); once every
                   member committed its final flag (or that window closed), reveal_verdict;
  any phase        finalize once due (this is how a trainer that never reveals is
                   slashed: its round is finalized as abandoned);
  FINALIZED        log the outcome, claim rewards.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from node import protocol
from node.roles.db import NodeDB
from node.errors import ChainError
from node.roles.metrics import NodeMetrics
from node.chain.records import Round, Task
from node.rounds import Action, Phase, can_act, is_finalize_due
from node.roles.runloop import DutyNode, Stopwatch, progress_bar
from node.roles.disputes import DisputeRole
from verifier.aggregation import AggregationDuties

log = logging.getLogger("trainchain.verifier")

ROLE = "verifier"
CURSOR = "sealed-events"
TASKS_CURSOR = "task-events"
SCREEN_RETRY_BLOCKS = 10  # a task whose spec could not be fetched is screened again this many blocks later
# a member's record phases between its verdict commitment and its reveal
VERDICT_OPEN = ("verdict_ready", "committed", "final_ready", "final_committed")


class RefusedTask(Exception):
    """This verifier cannot replay a task (its runtime pin, its spec); the message says why."""


class VerifierNode(AggregationDuties, DisputeRole, DutyNode):
    role = ROLE

    def __init__(self, chain, store, db: NodeDB, workdir: str | Path, metrics: NodeMetrics | None = None,
                 tasks: set[int] | None = None, show_progress: bool = True, watch_share: float = 0.0):
        self.chain = chain
        self.watch_share = watch_share  # with Disputes: the share of every round's posted segments it replays (--watch)
        self.store = store
        self.db = db
        self.workdir = Path(workdir)
        self.metrics = metrics or NodeMetrics(ROLE)
        self.tasks = tasks  # None: every task
        self.show_progress = show_progress
        self._specs: dict[int, object] = {}  # task -> TaskSpec
        self._datasets: dict[int, object] = {}
        self._pinned = None  # the RuntimePin this process applied (one per process)
        self._screen_retry: dict[int, int] = {}  # task -> block to screen it again (spec not fetchable yet)

    @property
    def address(self) -> str:
        return self.chain.address

    def prepare(self) -> None:
        self.chain.require_staked(protocol.VERIFIER)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log.info("verifier %s watching %s", self.address, "every task" if self.tasks is None else sorted(self.tasks))
        self.warm_up()

    def warm_up(self) -> None:
        """Load the newest watched task's spec, runtime and dataset now, not inside a
        commit window: importing torch and fetching a dataset take seconds."""
        count = self.chain.call(self.chain.registry.functions.task_count())
        watched = [t for t in range(count, 0, -1) if self.tasks is None or t in self.tasks]
        if not watched:
            return
        try:
            self.task_engine(watched[0], self.chain.get_task(watched[0]))
        except Exception as e:  # a task we cannot replay is refused when its round comes, in words
            log.warning("warm-up on task %d failed: %s", watched[0], e)

    def run(self, stop: threading.Event) -> None:
        self.prepare()
        self.run_ticks(stop)

    # ------------------------------------------------------------ the tick
    def tick(self) -> bool:
        head = self.chain.block_number()
        self.metrics.head(head)
        if not self.is_new_head(head):
            return False
        self.tick_disputes(head)  # disputes (#15): node/roles/disputes.py; inert without a Disputes deployment
        self.discover(head)
        # the cheap duties first (reveals, finalize: short windows), then at most one replay per tick: with
        # several rounds sealed at once (an epoch's slots) one replay must not hold up another round's reveal
        replayed = False
        for rec in sorted(self.db.rounds(ROLE, open_only=True), key=lambda r: r.phase == "assigned"):
            if replayed and rec.phase == "assigned":
                break
            self.advance(rec, head)
            replayed = rec.phase == "assigned" and self.db.get_round(ROLE, rec.round_id).phase != "assigned"
        self.discover_aggregations(head)  # epoch tasks (#14): verifier/aggregation.py
        self.advance_aggregations(head)
        self.ticked(head)
        return False

    def discover(self, head: int) -> None:
        self.screen_new_tasks(head)
        start = self.db.get_cursor(CURSOR, self.chain.deployment.deploy_block)
        if start > head:
            return
        for ev in self.chain.events("RoundSealed", start, head):
            args = ev["args"]
            round_id = args["round_id"]
            if self.address not in args["committee"] or self.db.get_round(ROLE, round_id):
                continue
            rnd = self.chain.get_round(round_id)
            if self.tasks is not None and rnd.task_id not in self.tasks:
                continue
            self.db.save_round(ROLE, round_id, rnd.task_id, "assigned", samples=list(args["samples"]),
                               committee=list(args["committee"]), sealed_block=ev["blockNumber"], started=time.time())
            self.duty(round_id, "assigned", "ok", detail=f"samples {list(args['samples'])}")
            self.metrics.round(round_id)
        self.db.set_cursor(CURSOR, head + 1)

    def advance(self, rec, head: int) -> None:
        """The member's duty at head (node.rounds decides what is allowed): commit a verdict
        while the commit window is open, reveal it while the reveal window is open, finalize
        once due and nothing of ours is left, conclude once finalized."""
        round_id = rec.round_id
        rnd = self.chain.get_round(round_id)
        if rnd.phase == Phase.STARTS_REVEALED and rec.phase in ("assigned", "verdict_ready"):
            if can_act(Action.COMMIT_VERDICT, rnd, head):
                try:
                    self.commit_verdict(rec, rnd)
                except RefusedTask as e:  # cannot reproduce this task: say so, keep serving the others
                    self.db.set_phase(ROLE, round_id, "refused", refused=str(e))
                    self.duty(round_id, "commit_verdict", "refused", detail=str(e))
                    self.opt_out(rnd.task_id, str(e))  # and never be drawn for it again
                    return
            elif rec.phase == "assigned":
                self.db.set_phase(ROLE, round_id, "missed_commit")
                self.duty(round_id, "commit_verdict", "missed", detail=f"window closed at block {rnd.commit_deadline}")
        elif rnd.phase == Phase.ENDS_REVEALED and rec.phase in VERDICT_OPEN:
            if rec.phase == "verdict_ready":  # crashed after sending the commitment: did it land?
                if self.onchain_commitment(round_id) == rec.data.get("commitment"):
                    rec = self.db.set_phase(ROLE, round_id, "committed")
            if rec.phase in ("committed", "final_ready"):
                if can_act(Action.COMMIT_FINAL, rnd, head):
                    rec = self.commit_final(rec, rnd)
                elif rec.phase == "committed" or self.onchain_final_commitment(round_id) != rec.data["final_commitment"]:
                    self.db.set_phase(ROLE, round_id, "missed_final")
                    self.duty(round_id, "commit_final", "missed", detail=f"window closed at block {rnd.commit_deadline}")
                    return
                else:  # crashed after the final commitment landed
                    rec = self.db.set_phase(ROLE, round_id, "final_committed")
            if rec.phase == "final_committed" and can_act(Action.REVEAL_VERDICT, self.chain.get_round(round_id), head):
                self.reveal_verdict(rec, rnd)
        if rnd.phase == Phase.FINALIZED:
            self.conclude(rec, rnd)
        elif is_finalize_due(rnd, head) and not self.has_duty_left(rec, rnd, head) and not self.is_held_by_disputes(rnd, head):
            self.finalize_when_our_turn(rec, head)

    def screen_new_tasks(self, head: int) -> None:
        """Opt out of every new task this process refuses to replay, before its first round can draw
        us (issue #13, attack 1: verifiers are drawn for every task they have not opted out of). Only a
        definite refusal opts out; a spec not fetchable yet is screened again every SCREEN_RETRY_BLOCKS
        (in this process: after a restart a refusal at replay still opts out)."""
        start = self.db.get_cursor(TASKS_CURSOR, self.chain.deployment.deploy_block)
        new = [ev["args"]["task_id"] for ev in self.chain.events("TaskCreated", start, head)] if start <= head else []
        self.db.set_cursor(TASKS_CURSOR, max(start, head + 1))
        due = [t for t, at in self._screen_retry.items() if head >= at]
        for task_id in dict.fromkeys(due + new):
            self._screen_retry.pop(task_id, None)
            if self.tasks is not None and task_id not in self.tasks:
                continue
            try:
                self.task_engine(task_id, self.chain.get_task(task_id))
            except RefusedTask as e:
                self.opt_out(task_id, str(e))
            except Exception as exc:  # the spec or its dataset not fetchable yet
                log.warning("task %d: cannot screen its spec yet (%s)", task_id, exc)
                self._screen_retry[task_id] = head + SCREEN_RETRY_BLOCKS

    def opt_out(self, task_id: int, why: str) -> None:
        """StakeManager.optout(task): never drawn for its rounds again (`trainchain verifier optin` undoes it
        on a machine that can replay the task)."""
        sm = self.chain.stake_manager.functions
        if self.chain.call(sm.opted_out(task_id, self.address)):
            return
        log.warning("opting out of task %d: %s", task_id, why)
        try:
            receipt = self.chain.transact(sm.optout(task_id), what=f"opt out of task {task_id}")
        except ChainError as e:  # e.g. not staked as a verifier (yet): the refusal at replay still stands
            self.duty(0, "optout", "failed", detail=f"task {task_id}: {e}")
            return
        self.duty(0, "optout", "ok", detail=f"task {task_id}: {why}", tx=receipt)

    def finalize_when_our_turn(self, rec, head: int) -> None:
        """Anyone may finalize; the trainer does it at once, committee member i waits i+1
        blocks more, so the nodes do not all race (and pay for) the same transaction."""
        round_id = rec.round_id
        due_seen = rec.data.get("finalize_due_seen")
        if due_seen is None:
            rec = self.db.set_phase(ROLE, round_id, rec.phase, finalize_due_seen=head)
            due_seen = head
        committee = rec.data.get("committee") or []
        position = committee.index(self.address) if self.address in committee else len(committee)
        if head >= due_seen + 1 + position:
            self.transact(round_id, self.chain.rounds.functions.finalize(round_id), "finalize",
                          done=self.phase_past(round_id, Phase.ENDS_REVEALED))

    def has_duty_left(self, rec, rnd: Round, head: int) -> bool:
        """Our own final commitment and reveal come before finalizing, while their windows are open."""
        return rec.phase in VERDICT_OPEN and (can_act(Action.COMMIT_FINAL, rnd, head) or can_act(Action.REVEAL_VERDICT, rnd, head))

    # ------------------------------------------------------------ verdicts
    def commit_verdict(self, rec, rnd: Round) -> None:
        round_id = rec.round_id
        if rec.phase == "verdict_ready":  # computed before a restart: same salt, same commitment
            if self.onchain_commitment(round_id) == rec.data["commitment"]:
                self.db.set_phase(ROLE, round_id, "committed")
                return
            self.send_commitment(round_id, rec.data["commitment"])
            return
        verdict = self.compute_verdict(rec, rnd)
        salt = os.urandom(32)
        commitment = protocol.compute_verdict_commitment(
            round_id, self.address, verdict["end_hashes"], verdict["data_root_ok"], verdict["starts_ok"], salt)
        # the salt and the verdict are on disk before the commitment leaves this process
        self.db.set_phase(ROLE, round_id, "verdict_ready", salt=salt, commitment=commitment, **verdict)
        self.send_commitment(round_id, commitment)

    def send_commitment(self, round_id: int, commitment: bytes) -> None:
        try:
            receipt = self.transact(round_id, self.chain.rounds.functions.commit_verdict(round_id, commitment),
                                    "commit_verdict", done=lambda: self.onchain_commitment(round_id) == commitment)
        except ChainError:
            rnd = self.chain.get_round(round_id)
            if not can_act(Action.COMMIT_VERDICT, rnd, self.chain.block_number()):
                self.db.set_phase(ROLE, round_id, "missed_commit")
                self.duty(round_id, "commit_verdict", "missed", detail=f"window closed at block {rnd.commit_deadline}")
                return
            raise
        self.db.set_phase(ROLE, round_id, "committed")
        if receipt is not None:
            log.info("round %d: verdict committed", round_id)

    def onchain_commitment(self, round_id: int) -> bytes:
        """This member's commitment on-chain (32 zero bytes: none), as bytes: the DB reads it back as bytes."""
        return bytes(self.chain.call(self.chain.rounds.functions.commitments(round_id, self.address)))

    def onchain_final_commitment(self, round_id: int) -> bytes:
        """This member's final-flag commitment on-chain (32 zero bytes: none)."""
        return bytes(self.chain.call(self.chain.rounds.functions.final_commitments(round_id, self.address)))

    def commit_final(self, rec, rnd: Round):
        """The verdict's second part (issue #13, attack 5): final_ok, knowable only now that the final CID
        is revealed, committed with the verdict's salt before any member reveals; on disk first."""
        round_id = rec.round_id
        if rec.phase == "committed":
            with Stopwatch() as sw:
                final_ok = self.compute_final_ok(rec, rnd)
            self.timing(round_id, "fetch_final", sw.seconds)
            commitment = protocol.compute_final_commitment(round_id, self.address, final_ok, rec.data["salt"])
            rec = self.db.set_phase(ROLE, round_id, "final_ready", final_ok=final_ok, final_commitment=commitment)
        commitment = rec.data["final_commitment"]
        if self.onchain_final_commitment(round_id) != commitment:
            try:
                self.transact(round_id, self.chain.rounds.functions.commit_verdict(round_id, commitment), "commit_final",
                              done=lambda: self.onchain_final_commitment(round_id) == commitment)
            except ChainError:
                if can_act(Action.COMMIT_FINAL, self.chain.get_round(round_id), self.chain.block_number()):
                    raise
                self.duty(round_id, "commit_final", "missed", detail=f"window closed at block {rnd.commit_deadline}")
                return self.db.set_phase(ROLE, round_id, "missed_final")
            log.info("round %d: final flag committed", round_id)
        return self.db.set_phase(ROLE, round_id, "final_committed")

    def compute_final_ok(self, rec, rnd: Round) -> bool:
        """The final checkpoint fetched within the final commit window's budget hashes to h_M."""
        from verifier.replay import check_final

        return not self.fetch_within([rnd.final_cid], rnd.commit_deadline) and check_final(
            self.store, rnd.final_cid, rnd.final_hash, self.workdir / f"round-{rec.round_id}")

    def compute_verdict(self, rec, rnd: Round) -> dict:
        """Fetch starts, check h_j, replay each check's span (k steps, 2k for (M-2, M)), check the data root."""
        from verifier.replay import check_data_root, check_segment

        round_id = rec.round_id
        task = self.chain.get_task(rnd.task_id)
        spec, dataset = self.task_engine(rnd.task_id, task)
        revealed = self.chain.events("StartsRevealed", rec.data.get("sealed_block"), "latest", round_id=round_id)
        if not revealed:
            raise ChainError(f"round {round_id}: StartsRevealed event not found yet")
        start_hashes = list(revealed[-1]["args"]["start_hashes"])
        start_cids = list(revealed[-1]["args"]["start_cids"])
        samples = list(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id)))
        ends = protocol.compute_check_ends(samples, spec.segments_per_round)
        workdir = self.workdir / f"round-{round_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        slot = self.epoch_slot_of(round_id, task)  # an epoch slot replays on the epoch schedule
        member, holders = self.dealt_position(round_id)
        held = set(protocol.compute_member_checks(len(samples), holders, member))  # every check in v1
        unavailable = self.fetch_within([c for i, c in enumerate(start_cids) if i in held], rnd.commit_deadline)
        end_hashes, starts_ok, details = [], True, []
        with Stopwatch() as sw:
            for i, (j, end, cid, h) in enumerate(zip(samples, ends, start_cids, start_hashes)):
                if i not in held:  # dealt to another member (Disputes): not read in this verdict
                    end_hashes.append(protocol.ZERO_HASH)
                    continue
                if cid in unavailable:  # not fetched within the window's budget: a failed check, never a no-show
                    end_hashes.append(protocol.ZERO_HASH)  # no replay: disputes skip this check (the flag says it)
                    starts_ok = False
                    details.append(f"segment {j}: start checkpoint {cid} unavailable within the fetch budget")
                    continue
                span = end - j  # segments to replay: 1, or 2 for the last check (M-2, M)
                with progress_bar(f"replay r{round_id} s{j}", span * spec.segment_steps, self.show_progress) as advance:
                    check = check_segment(spec, dataset, self.store, j, cid, bytes(h), workdir, progress=advance, span=span,
                                          slot=slot)
                end_hashes.append(check.end_hash)
                starts_ok &= check.start_ok
                if not check.start_ok:
                    details.append(f"segment {j}: {check.detail}")
        self.timing(round_id, "replay", sw.seconds)
        with Stopwatch() as sw:
            data_root_ok = check_data_root(spec, dataset, task.base_step, rnd.data_root, slot=slot)
        self.timing(round_id, "data_root", sw.seconds)
        if not data_root_ok:
            details.append("data root does not match the batch schedule")
        log.info("round %d: replayed segments %s; starts %s, data root %s%s", round_id, [samples[i] for i in sorted(held)],
                 "ok" if starts_ok else "BAD", "ok" if data_root_ok else "BAD",
                 f" ({'; '.join(details)})" if details else "")
        return {"end_hashes": end_hashes, "data_root_ok": data_root_ok, "starts_ok": starts_ok,
                "verdict_samples": samples}

    def dealt_position(self, round_id: int) -> tuple[int, int]:
        """(member index, committee size) this node answers for: (0, 1), every check, in v1; with Disputes the
        checks dealt to its seat (protocol.compute_member_checks over the round's committee, issue #15)."""
        if self.chain.disputes is None:
            return 0, 1
        committee = self.chain.committee_of(round_id)
        return protocol.compute_member_index(committee, self.address), len(committee)

    def epoch_slot_of(self, round_id: int, task: Task):
        """The engine Slot(epoch, index, N) of a round that is an epoch slot, else None (a v1 round)."""
        from node.roles.epochs import slot_of_round

        return slot_of_round(self.chain, round_id, task)

    def fetch_within(self, cids: list[str], deadline_block: int) -> set[str]:
        """Fetch `cids` into the local store within the time the window left before `deadline_block`
        allows (protocol.compute_fetch_budget_s: the replay and the transaction need the rest); returns
        the CIDs not fetched in time. Issue #13: a fetch that outlasts the window must not make an honest
        verifier a no-show; content the trainer does not serve in time is a failed check, committed."""
        fetch = getattr(self.store, "fetch", None)
        if fetch is None:  # a store without peers: everything is local or missing, get_file says which
            return set()
        head = self.chain.block_number()
        budget = protocol.compute_fetch_budget_s(deadline_block - head, self.block_seconds(head))
        until = time.monotonic() + budget
        missing = set()
        for cid in dict.fromkeys(cids):
            left = until - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError(f"fetch budget of {budget:.1f} s spent")
                fetch(cid, budget_s=left)
            except Exception as exc:  # ContentUnavailable, a source error, the budget: the trainer's data is not there
                log.warning("%s: unavailable within the fetch budget (%.1f s before block %d): %s", cid, budget, deadline_block, exc)
                missing.add(cid)
        return missing

    def block_seconds(self, head: int, span: int = 16) -> float:
        """Seconds per block over the last `span` blocks (at least 1 s: an automining devnet reads ~0)."""
        if head <= span:
            return 1.0
        w3 = self.chain.w3
        dt = w3.eth.get_block(head)["timestamp"] - w3.eth.get_block(head - span)["timestamp"]
        return max(1.0, dt / span)

    def reveal_verdict(self, rec, rnd: Round) -> None:
        round_id = rec.round_id
        if self.chain.call(self.chain.rounds.functions.revealed(round_id, self.address)):
            self.db.set_phase(ROLE, round_id, "revealed")
            return
        final_ok = rec.data["final_ok"]
        trainer_ends = [bytes(h) for h in self.chain.call(self.chain.rounds.functions.end_hashes_of(round_id))]
        mine = list(rec.data["end_hashes"])
        agrees = protocol.is_contradicting(trainer_ends, mine, rec.data["data_root_ok"], rec.data["starts_ok"], final_ok,
                                           *self.dealt_position(round_id)) is False
        fn = self.chain.rounds.functions.reveal_verdict(
            round_id, mine, rec.data["data_root_ok"], rec.data["salt"], rec.data["starts_ok"], final_ok)
        self.transact(round_id, fn, "reveal_verdict",
                      done=lambda: self.chain.call(self.chain.rounds.functions.revealed(round_id, self.address)))
        self.db.set_phase(ROLE, round_id, "revealed", final_ok=final_ok, agrees=agrees)
        log.info("round %d: verdict revealed: %s", round_id, "agrees with the trainer" if agrees else "CONTRADICTS the trainer")

    def conclude(self, rec, rnd: Round) -> None:
        round_id = rec.round_id
        outcome = rnd.outcome.label
        if rec.data.get("started"):
            self.timing(round_id, "round", time.time() - rec.data["started"])
        self.duty(round_id, "round", outcome)
        self.db.set_phase(ROLE, round_id, "done", outcome=outcome)
        log.info("round %d finalized: %s", round_id, outcome)
        self.claim_rewards(round_id)
        shutil.rmtree(self.workdir / f"round-{round_id}", ignore_errors=True)

    def dispute_flag_answer(self, round_id: int, flag: int) -> bytes | None:
        """A flag dispute's answer (node/roles/disputes.py; Disputes.open_flag): the data root of the round's schedule,
        or what this node finds served under the checkpoint CIDs (verifier.replay.compute_checkpoint_answer: the same
        bytes, so the same answer, for every juror); None if a checkpoint could not be fetched. The member deciding
        to open one and every juror run it."""
        from verifier.replay import compute_checkpoint_answer, compute_schedule_root

        rnd = self.chain.get_round(round_id)
        task = self.chain.get_task(rnd.task_id)
        workdir = self.workdir / "disputes" / f"round-{round_id}"
        if flag == protocol.FLAG_DATA_ROOT:
            spec, dataset = self.task_engine(rnd.task_id, task)
            return compute_schedule_root(spec, dataset, task.base_step, slot=self.epoch_slot_of(round_id, task))
        if flag == protocol.FLAG_STARTS:
            revealed = self.chain.events("StartsRevealed", round_id=round_id)[-1]["args"]
            found = [compute_checkpoint_answer(self.store, cid, bytes(h), workdir)
                     for cid, h in zip(revealed["start_cids"], revealed["start_hashes"])]
            return None if None in found else protocol.compute_starts_answer(found)
        if flag == protocol.FLAG_FINAL:
            return compute_checkpoint_answer(self.store, rnd.final_cid, rnd.final_hash, workdir)
        raise ValueError(f"no such flag {flag}")

    # ------------------------------------------------------------ the engine, per task
    def dispute_engine(self, task_id: int):
        return self.task_engine(task_id, self.chain.get_task(task_id))

    def task_engine(self, task_id: int, task: Task):
        """(spec, dataset) of a task; the runtime pin is applied once per process.

        RefusedTask (in words) for a spec this process cannot replay bit-exactly."""
        if task_id in self._specs:
            return self._specs[task_id], self._datasets[task_id]
        from node.engine import Dataset, RuntimeMismatch, SpecError, TaskSpec, apply_runtime_pin, check_runtime

        try:
            spec = TaskSpec.from_json(self.store.get_bytes(task.spec_cid))
        except SpecError as e:
            raise RefusedTask(f"task {task_id}: {e}") from None
        if spec.spec_hash() != task.spec_hash:
            raise RefusedTask(f"task {task_id}: the spec at {task.spec_cid} does not hash to the on-chain spec hash")
        try:
            if self._pinned is None:
                apply_runtime_pin(spec)
                self._pinned = spec.runtime
            else:
                check_runtime(spec)  # this process already runs the pin of another task
        except RuntimeMismatch as e:
            raise RefusedTask(f"refusing task {task_id}: {e}") from None
        self._specs[task_id] = spec
        self._datasets[task_id] = Dataset.for_spec(spec, self.store)
        return self._specs[task_id], self._datasets[task_id]
