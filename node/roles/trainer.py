"""The trainer node: train a round on the canonical state, commit, reveal when asked, collect.

    node = TrainerNode(chain, store, db, task_id=1, workdir=datadir / "trainer")
    node.run(stop_event)            # or node.tick() from a loop of your own

One tick looks at the chain and the local DB and does whatever is due now:
- no open round of ours: take the trace trained ahead on the canonical state if there
  is one (see below); else fetch the canonical checkpoint (verify h), train S steps
  keeping the boundary checkpoints, put them in the store, save the trace in the DB;
  then commit(task, base, dataRoot, traceRoot, proof0);
- COMMITTED: seal once the seal block is mined;
- SEALED: reveal the sampled starts (h_j, proofs, checkpoint CIDs);
- STARTS_REVEALED: once the committee committed (or its window closed) reveal the
  ends, the final leaf h_M and the final checkpoint CID;
- ENDS_REVEALED: finalize when due; FINALIZED: log the outcome, claim rewards.
Everything a later step needs is in sqlite before the transaction that depends on it,
so a node killed at any moment and restarted picks up where the chain is.

Pipelined (the default; `pipeline=False` / `--no-pipeline` turns it off): while its
round r is verified, the node trains round r+1 on its own final state h_M(r) on a
thread (node/roles/pipeline.py) and commits it the moment r is accepted, so the machine
trains while the chain does its ~10 blocks. Work ahead on a state that does not become
canonical (fraud, abandoned, expired) is thrown away; commit rules are unchanged.

Dishonest trainers (demo and tests only, never a CLI flag) are subclasses of this one in
node/adversaries/trainers.py; nothing here knows about them.
"""
from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from pathlib import Path

from node import protocol
from node.roles.db import NodeDB
from node.roles.disputes import DisputeRole
from node.errors import ChainError
from node.roles.metrics import NodeMetrics
from node.chain.records import Task
from node.rounds import Action, Outcome, Phase, can_act, is_finalize_due, is_trainer_penalized
from node.roles.epoch_trainer import EpochTrainerDuties
from node.roles.pipeline import AheadJob
from node.roles.runloop import DutyNode, Fatal, Stopwatch, progress_bar
from node.store import NotFound

log = logging.getLogger("trainchain.trainer")

ROLE = "trainer"


def is_trace_on(trace: dict | None, base_hash: bytes, start: int) -> bool:
    """A stored trace (pending or trained ahead) that starts from this state at this step."""
    return bool(trace) and trace["base_hash"] == base_hash and trace["base_step"] == start


def mean_loss(losses: list[float]) -> float | None:
    vals = [x for x in losses if not math.isnan(x)]
    return sum(vals) / len(vals) if vals else None


class TrainerNode(EpochTrainerDuties, DisputeRole, DutyNode):
    role = ROLE

    def __init__(
        self,
        chain,
        store,
        db: NodeDB,
        task_id: int,
        workdir: str | Path,
        metrics: NodeMetrics | None = None,
        max_rounds: int | None = None,
        show_progress: bool = True,
        pipeline: bool = True,
        final_handoff: bool = True,
    ):
        self.chain = chain
        self.store = store
        self.db = db
        self.task_id = task_id
        self.workdir = Path(workdir) / f"task-{task_id}"
        self.metrics = metrics or NodeMetrics(ROLE)
        self.max_rounds = max_rounds
        self.show_progress = show_progress
        self.pipeline = pipeline
        self.ahead: AheadJob | None = None  # the round being trained ahead, if any
        self.ahead_failed: bytes | None = None  # a base whose training ahead failed: trained when due instead
        # epochs: hand our final state to co-trainers at the commit and ask for theirs (node/roles/handoff.py);
        # the board exists once serve_finals() gave it a gateway
        self.final_handoff = final_handoff
        self.handoff_board = None
        self.finals_offered: dict[int, int] = {}  # epoch -> the committed mask our offer's allowed set was read at
        self.finals_handed: dict[tuple[int, int], object] = {}  # (epoch, slot) -> a co-trainer's verified SlotFinal
        self.finals_refused: set[tuple[int, int]] = set()  # (epoch, slot) whose trainer handed a bad final state
        self.finals_paused: dict[tuple[int, int], float] = {}  # (epoch, slot) -> monotonic time to ask again after
        # (epoch, slot) -> its slot id and round, read once: a committed slot's trainer and trace root never change
        self.finals_rounds: dict[tuple[int, int], tuple] = {}
        self.spec = None
        self.epoch_task = False  # set by prepare() from the task's parameters
        self.dataset = None

    @property
    def address(self) -> str:
        return self.chain.address

    # ------------------------------------------------------------ set-up
    def prepare(self) -> None:
        """Pre-flight (staked, task exists), then the spec, its runtime pin and the dataset."""
        from node.engine import Dataset, TaskSpec, apply_runtime_pin

        self.chain.require_staked(protocol.TRAINER)
        task = self.chain.get_task(self.task_id)
        spec_bytes = self.store.get_bytes(task.spec_cid)
        spec = TaskSpec.from_json(spec_bytes)
        if spec.spec_hash() != task.spec_hash:
            raise Fatal(f"task {self.task_id}: the spec at {task.spec_cid} does not hash to the on-chain spec hash")
        apply_runtime_pin(spec)  # before torch loads; RuntimeMismatch says why not
        self.spec = spec
        self.dataset = Dataset.for_spec(spec, self.store)
        # epochs (#14): claim slots in Epochs, aggregate (node/roles/epoch_trainer.py); else v1 rounds
        self.epoch_task = bool(getattr(task.params, "is_epoch_task", False))
        self.workdir.mkdir(parents=True, exist_ok=True)
        log.info("trainer %s on task %d: %s, S=%d k=%d%s", self.address, self.task_id, spec.name,
                 spec.steps_per_round, spec.segment_steps, ", training ahead" if self.pipeline else "")

    def run(self, stop: threading.Event) -> None:
        if self.spec is None:
            self.prepare()
        try:
            self.run_ticks(stop)
        finally:
            if self.ahead is not None and not self.ahead.done:
                self.ahead.cancel()  # a restart trains it again (or finds it in the DB, if it finished)

    # ------------------------------------------------------------ the tick
    def tick(self) -> bool:
        """Do what is due now; True once max_rounds rounds are finished."""
        head = self.chain.block_number()
        self.metrics.head(head)
        self.collect_ahead()
        if not self.is_new_head(head):
            return False
        self.tick_disputes(head)  # disputes (#15): defends its rounds; inert without a Disputes deployment
        done = self.tick_at(head)
        self.ticked(head)
        return done

    def tick_at(self, head: int) -> bool:
        if self.epoch_task:
            return self.tick_epochs(head)
        mine = [r for r in self.db.rounds(ROLE, open_only=True) if r.task_id == self.task_id]
        if mine:
            self.advance(mine[0].round_id, head)
            rec = self.db.get_round(ROLE, mine[0].round_id)
            if not rec.is_done:
                self.train_ahead(rec.data, f"round {rec.round_id} is being verified")
            return False
        if self.max_rounds is not None and self.rounds_finished() >= self.max_rounds:
            log.info("finished %d round(s); stopping", self.rounds_finished())
            return True
        task = self.chain.get_task(self.task_id)
        if task.open_round:
            self.adopt_or_wait(task)
            return False
        self.start_round(task)
        return False

    def dispute_engine(self, task_id: int):
        """(spec, dataset) of the task whose rounds this trainer defends (DisputeRole)."""
        return self.spec, self.dataset

    def rounds_finished(self) -> int:
        """Rounds of this task decided for or against us (a void round is retried, not counted)."""
        return sum(1 for r in self.db.rounds(ROLE) if r.task_id == self.task_id and r.is_done and r.phase != "void")

    # ------------------------------------------------------------ a new round
    def pending_key(self) -> str:
        return f"pending:{self.task_id}"

    def ahead_key(self) -> str:
        return f"ahead:{self.task_id}"

    def ahead_dir(self, base_hash: bytes) -> Path:
        return self.workdir / f"ahead-{base_hash.hex()[:12]}"  # never shared with a synchronous training

    def start_round(self, task: Task) -> None:
        if not self.can_commit(task):
            return
        base_hash, start = task.canonical_hash, task.base_step
        pending = self.trace_for(base_hash, start)
        if pending is None:
            pending = self.train(task, base_hash)
        self.train_ahead(pending, "committing the round before it")  # the machine trains while the commit is mined
        self.commit(task, pending)

    def trace_for(self, base_hash: bytes, start: int) -> dict | None:
        """A trace on this canonical state that needs no training now: a void round's
        (re-committed as it is) or one trained ahead (waiting for it if still training)."""
        def fits(p):
            return is_trace_on(p, base_hash, start) and Path(p["out_dir"]).exists()

        pending = self.db.get_json(self.pending_key())
        if fits(pending):
            return pending
        if self.ahead is not None and self.ahead.is_for(base_hash, start):
            with Stopwatch() as sw:
                log.info("the chain is ready before the round trained ahead: waiting for it")
                self.ahead.wait()
            self.collect_ahead()
            waited = sw.seconds
        else:
            waited = 0.0
        ahead = self.db.get_json(self.ahead_key())
        if fits(ahead):
            ahead["stage_seconds"] = {**ahead.get("stage_seconds", {}), "wait_ahead": waited}
            self.db.put_json(self.pending_key(), ahead)
            self.db.delete_json(self.ahead_key())
            log.info("committing the round trained ahead on 0x%s", base_hash.hex()[:12])
            return self.db.get_json(self.pending_key())
        self.discard_ahead("its base is not the canonical state")
        return None

    def train(self, task: dict, base_hash: bytes) -> dict:
        out_dir = self.workdir / f"base-{base_hash.hex()[:12]}"
        base_path, fetched = self.fetch_base(task.canonical_cid, out_dir)
        start = task.base_step
        log.info("training %d steps from step %d (base 0x%s)", self.spec.steps_per_round, start, base_hash.hex()[:12])
        with self.progress_bar("train", self.spec.steps_per_round) as advance:
            pending = self.train_trace(base_path, base_hash, start, out_dir, advance)
        pending["stage_seconds"]["fetch"] = fetched
        self.save_trained(self.pending_key(), pending)  # before commit: a restart re-commits, not re-trains
        return self.db.get_json(self.pending_key())

    def fetch_base(self, cid: str, out_dir: Path) -> tuple[Path, float]:
        """The base state `cid` as out_dir/base.safetensors, fetched once (a restart finds it there);
        returns the path and the seconds the fetch took."""
        out_dir.mkdir(parents=True, exist_ok=True)
        base_path = out_dir / "base.safetensors"
        with Stopwatch() as sw:
            if not base_path.exists():
                self.store.get_file(cid, base_path)
        return base_path, sw.seconds

    def round_trainer(self):
        """The engine's round loop (imports torch: only after the runtime pin)."""
        from node.engine import RoundTrainer

        return RoundTrainer()

    def train_trace(self, base_path: Path, base_hash: bytes, start: int, out_dir: Path, progress, slot=None) -> dict:
        """Train S steps from `base_path` (it must hash to `base_hash`: StateError if not), keep the
        boundary checkpoints and put them in the store. No sqlite, no chain: runs on a thread too."""
        stages = {}  # recorded under the round id once the commit names it
        with Stopwatch() as sw:
            trace = self.round_trainer().train_round(self.spec, self.dataset, base_path, out_dir / "trace",
                                                     start_step=start, progress=progress, expected_base_hash=base_hash,
                                                     slot=slot)
        stages["train"] = sw.seconds  # S steps + saving and hashing the M boundary states
        with Stopwatch() as sw:
            cids = [self.store.put_file(p) for p in trace.checkpoints]
            for cid in cids:
                self.store.pin(cid)
        stages["upload"] = sw.seconds
        return {
            "base_hash": base_hash, "base_step": start, "out_dir": str(out_dir),
            "data_root": trace.data_root, "trace_root": trace.trace_root,
            "boundary_hashes": trace.boundary_hashes, "cids": cids, "final_path": str(trace.checkpoints[-1]),
            "losses": [x if not math.isnan(x) else None for x in trace.losses], "mean_loss": mean_loss(trace.losses),
            "stage_seconds": stages,
        }

    def save_trained(self, key: str, pending: dict) -> None:
        loss = pending["mean_loss"]
        if loss is not None:
            self.metrics.loss(loss)
        self.db.put_json(key, pending)
        log.info("trained%s: mean loss %s, trace root 0x%s", " ahead" if key == self.ahead_key() else "",
                 f"{loss:.4f}" if loss is not None else "n/a", pending["trace_root"].hex()[:12])

    # ------------------------------------------------------------ training ahead (node/roles/pipeline.py)
    def train_ahead(self, trace: dict, why: str) -> None:
        """Train the round after `trace` (ours: being committed or verified) on its final state."""
        if not self.pipeline or self.ahead is not None or "final_path" not in trace:
            return
        if self.max_rounds is not None and self.rounds_finished() + 1 >= self.max_rounds:
            return  # `trace` is the last round asked for
        base_hash, start = trace["boundary_hashes"][-1], trace["base_step"] + self.spec.steps_per_round
        if base_hash == self.ahead_failed:
            return  # not again every block (a full disk, say): start_round trains it, and says why if it fails
        stored = self.db.get_json(self.ahead_key())
        if is_trace_on(stored, base_hash, start):
            return  # trained already (e.g. before a void round's re-commit)
        out_dir = self.ahead_dir(base_hash)
        final_path, final_cid = Path(trace["final_path"]), trace["cids"][-1]

        def work(check) -> dict:
            out_dir.mkdir(parents=True, exist_ok=True)
            base_path = out_dir / "base.safetensors"
            with Stopwatch() as sw:
                if final_path.exists():
                    shutil.copyfile(final_path, base_path)
                else:
                    self.store.get_file(final_cid, base_path)
            pending = self.train_trace(base_path, base_hash, start, out_dir, lambda step, loss: check())
            pending["stage_seconds"]["fetch"] = sw.seconds
            return pending

        log.info("%s: training the next %d steps ahead, from step %d (base 0x%s)",
                 why, self.spec.steps_per_round, start, base_hash.hex()[:12])
        self.ahead = AheadJob(base_hash, start, work).start()

    def collect_ahead(self) -> None:
        """A finished job: its trace into the DB (it survives a restart), or its error into the log."""
        job = self.ahead
        if job is None or not job.done:
            return
        self.ahead = None
        if job.result is not None:
            job.result["ahead_done_at"] = job.finished  # bench/rounds.py: how long it waited for the chain
            job.result["stage_seconds"]["ahead_cpu"] = job.cpu_s  # of fetch + train + upload: the core it got
            self.save_trained(self.ahead_key(), job.result)
        elif job.error is not None:
            self.ahead_failed = job.base_hash
            self.duty(None, "train_ahead", "failed", detail=f"{type(job.error).__name__}: {job.error} "
                      "(the round is trained when it is due)")

    def discard_ahead(self, why: str) -> None:
        """Work ahead on a state that will not be canonical: stop it, drop its files and pins."""
        job = self.ahead
        if job is not None:
            log.info("cancelling the training ahead on 0x%s: %s", job.base_hash.hex()[:12], why)
            job.cancel()
            self.collect_ahead()
            if job.cancelled:
                shutil.rmtree(self.ahead_dir(job.base_hash), ignore_errors=True)
        stale = self.db.get_json(self.ahead_key())
        if not stale:
            return
        log.info("dropping the round trained ahead on 0x%s: %s", stale["base_hash"].hex()[:12], why)
        self.db.delete_json(self.ahead_key())
        unpin = getattr(self.store, "unpin", None)
        for cid in set(stale["cids"][1:]) if unpin else ():  # [0] is its base: the round before's final state
            try:
                unpin(cid)
            except NotFound:  # pinned once, listed twice (a state that did not change), or unpinned by hand
                pass
        shutil.rmtree(stale["out_dir"], ignore_errors=True)

    def commit(self, task: dict, pending: dict) -> None:
        hashes = list(pending["boundary_hashes"])
        proof0 = protocol.compute_merkle_proof(hashes, 0)
        fn = self.chain.rounds.functions.commit(
            self.task_id, hashes[0], pending["data_root"], pending["trace_root"], proof0)
        try:
            with Stopwatch() as sw:
                receipt = self.transact(None, fn, "commit", record=False)
        except ChainError as e:
            if "open round" in str(e):  # another trainer got there first: keep the trace, wait
                log.info("commit: %s; waiting for the task to be free", e.reason or e)
                return
            raise
        round_id = self.chain.committed_round_id(receipt)
        self.db.save_round(ROLE, round_id, self.task_id, "committed", commit_block=receipt["blockNumber"],
                           started=time.time(), **pending)
        self.db.delete_json(self.pending_key())
        for stage, seconds in {**(pending.get("stage_seconds") or {}), "tx:commit": sw.seconds}.items():
            self.timing(round_id, stage, seconds)
        self.duty(round_id, "commit", "ok", tx=receipt)
        self.metrics.round(round_id)

    def can_commit(self, task: Task) -> bool:
        """Pre-flight of commit, in words: a pool that pays a round, enough verifiers, enough stake."""
        p, cost = task.params, task.params.round_cost
        sm = self.chain.stake_manager.functions
        # the verifier entries a committee for a commit now can be drawn from (#13: not the capped view list)
        active = self.chain.call(sm.eligible_entry_count())
        stake = self.chain.call(sm.free_stake(self.address))  # open rounds reserve their part (#13, attack 7)
        # a round reserves the task's minimum, at least the deployment's (is_eligible: bonded >= the latter):
        # after a slash below the deployment's minimum every commit reverts 'rounds: not a staked trainer'
        need = protocol.compute_trainer_reservation(p.min_trainer_stake_wei,
                                                    self.chain.call(sm.min_stake(protocol.TRAINER)))
        opens = self.chain.call(self.chain.registry.functions.opens_block(self.task_id))
        head = self.chain.block_number()
        reason = None
        if self.chain.call(self.chain.registry.functions.closed(self.task_id)):
            reason = f"task {self.task_id} was closed by its creator: no new rounds"
        elif head < opens:  # a commit is estimated at the head: it must pass there (and in every later block)
            reason = (f"task {self.task_id} is new: its first round can be committed from block {opens} (now {head}), "
                      "once verifiers have screened it")
        elif task.pool < cost:
            reason = f"task {self.task_id}'s pool ({task.pool} wei) no longer pays a round ({cost} wei)"
        elif active < p.quorum:
            reason = f"only {active} active verifier(s), the task needs a quorum of {p.quorum}"
        elif stake < need:
            reason = (f"task {self.task_id} needs a trainer stake of {need / 1e18:g} ETH, this key "
                      f"has {stake / 1e18:g} ETH free (staked, less what open rounds reserve; `trainchain stake trainer "
                      f"AMOUNT` adds to it)")
        if reason and reason != getattr(self, "_waiting", None):
            log.warning("waiting: %s", reason)
        self._waiting = reason
        return reason is None

    def adopt_or_wait(self, task: Task) -> None:
        """The task has an open round: ours if we crashed between commit and saving it."""
        rnd = self.chain.get_round(task.open_round)
        pending = self.db.get_json(self.pending_key())
        if rnd.trainer == self.address and pending and rnd.trace_root == pending["trace_root"]:
            log.info("round %d is ours (committed before a restart): resuming", task.open_round)
            self.db.save_round(ROLE, task.open_round, self.task_id, "committed",
                               commit_block=rnd.commit_block, started=time.time(), **pending)
            self.db.delete_json(self.pending_key())

    # ------------------------------------------------------------ an open round
    def advance(self, round_id: int, head: int) -> None:
        """The trainer's duty at head (node.rounds decides what is allowed): seal once the seal
        block is mined, reveal the starts, reveal the ends once the committee committed,
        finalize once due, conclude once finalized."""
        rec = self.db.get_round(ROLE, round_id)
        rnd = self.chain.get_round(round_id)
        if rnd.phase == Phase.FINALIZED:
            self.conclude(round_id, rnd, rec)
        elif rnd.phase == Phase.COMMITTED and can_act(
                Action.SEAL, rnd, head, seal_delay_blocks=self.chain.get_task(self.task_id).params.seal_delay_blocks):
            self.transact(round_id, self.chain.rounds.functions.seal(round_id), "seal",
                          done=self.phase_past(round_id, Phase.COMMITTED))
        elif rnd.phase == Phase.SEALED and can_act(Action.REVEAL_STARTS, rnd, head):
            self.reveal_starts(round_id, rec.data)
        elif (rnd.phase == Phase.STARTS_REVEALED
              and can_act(Action.REVEAL_ENDS, rnd, head, committee_size=len(self.chain.committee_of(round_id)))):
            self.reveal_ends(round_id, rec.data)
        elif self.is_boundaries_due(rnd, head):
            self.post_boundaries(round_id, rec.data["boundary_hashes"], rec.data["cids"])
        elif is_finalize_due(rnd, head) and not self.is_held_by_disputes(rnd, head):
            self.finalize(round_id)

    def reveal_starts(self, round_id: int, data: dict) -> None:
        samples = list(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id)))
        rnd = self.chain.get_round(round_id)
        # the contract drew them; recompute with the reference rule as a check on both
        expected = protocol.compute_round_samples(rnd.seed, len(data["boundary_hashes"]) - 1, self.spec.protocol.samples,
                                                  len(self.chain.committee_of(round_id)), self.chain.disputes is not None)
        if expected != samples:
            log.warning("round %d: contract samples %s differ from node.protocol's %s", round_id, samples, expected)
        hashes = list(data["boundary_hashes"])
        fn = self.chain.rounds.functions.reveal_starts(
            round_id, [hashes[j] for j in samples], [data["cids"][j] for j in samples],
            [protocol.compute_merkle_proof(hashes, j) for j in samples])
        self.db.set_phase(ROLE, round_id, "revealing_starts", samples=samples)
        self.transact(round_id, fn, "reveal_starts", done=self.phase_past(round_id, Phase.SEALED))
        log.info("round %d: revealed the starts of the checks at leaves %s", round_id, samples)

    def reveal_ends(self, round_id: int, data: dict) -> None:
        samples = list(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id)))
        hashes = list(data["boundary_hashes"])
        ends = protocol.compute_check_ends(samples, len(hashes) - 1)  # j + 1; the last check ends at leaf M
        fn = self.chain.rounds.functions.reveal_ends(
            round_id, [hashes[e] for e in ends],
            [protocol.compute_merkle_proof(hashes, e) for e in ends], data["cids"][-1])
        self.db.set_phase(ROLE, round_id, "revealing_ends")
        self.transact(round_id, fn, "reveal_ends", done=self.phase_past(round_id, Phase.STARTS_REVEALED))
        log.info("round %d: revealed ends and the final checkpoint %s", round_id, data["cids"][-1])

    def finalize(self, round_id: int) -> None:
        self.transact(round_id, self.chain.rounds.functions.finalize(round_id), "finalize",
                      done=self.phase_past(round_id, Phase.ENDS_REVEALED))

    def conclude(self, round_id: int, rnd, rec) -> None:
        outcome = rnd.outcome.label
        started = rec.data.get("started")
        if started:
            total = time.time() - started
            sent = sum(t["seconds"] for t in self.db.timings(ROLE, round_id) if t["stage"].startswith("tx:"))
            self.timing(round_id, "round", total)  # commit to finalized
            self.timing(round_id, "wait", max(0.0, total - sent))  # of which: waiting for blocks and others
        self.duty(round_id, "round", outcome)
        phase = "done" if rnd.outcome == Outcome.ACCEPTED else "slashed" if is_trainer_penalized(rnd.outcome) else "void"
        self.db.set_phase(ROLE, round_id, phase, outcome=outcome, final_cid=rnd.final_cid)
        log.info("round %d finalized: %s", round_id, outcome)
        self.claim_rewards(round_id)
        out_dir = rec.data.get("out_dir")
        if rnd.outcome == Outcome.VOID and out_dir and Path(out_dir).exists():
            # canonical unchanged: the same trace is the next round's commit, no need to retrain
            keep = ("base_hash", "base_step", "out_dir", "data_root", "trace_root", "boundary_hashes", "cids",
                    "final_path", "losses", "mean_loss")
            self.db.put_json(self.pending_key(), {k: rec.data[k] for k in keep if k in rec.data})
        elif out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)  # canonical now (or fraud): the store keeps what matters
        if rnd.outcome not in (Outcome.ACCEPTED, Outcome.VOID):
            self.discard_ahead(f"round {round_id} ended {outcome}: its final state will not be canonical")

    def progress_bar(self, what: str, total: int):
        return progress_bar(what, total, enabled=self.show_progress)

