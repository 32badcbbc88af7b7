"""The verifier's aggregation committee duty in epoch tasks (issue #14; contracts/Epochs.vy).

Mixed into VerifierNode. When an epoch's aggregation opens (AggregationOpened names the committee)
a member computes the outer step itself — from the epoch's base and the accepted slots' final
checkpoints, fetched from the store and verified against their on-chain hashes — and commits to its
state hash (node.protocol.compute_aggregate_commitment, salted, with the member's address inside)
*before* any aggregate hash is public: no member can copy the poster's or another member's. Once
a trainer posts the aggregate, the member reveals; finalize_epoch makes the posted state canonical
if a majority of the reveals matches it. The salt and the hash are in sqlite before the commitment
leaves the process (a restart reveals the same). The member keeps the state it computed in its store (the
poster's very file: one writer, one CID), so the canonical state outlives the poster. A member also finalizes an
epoch that is due, one
block per committee position after the trainers could have (so the nodes do not all race it).
"""
from __future__ import annotations

import logging
import os
import shutil

from node import protocol
from node import rounds as R
from node.roles.epochs import AggregateInputError, compute_aggregate, epoch_base, slot_finals
from node.roles.runloop import Stopwatch

log = logging.getLogger("trainchain.verifier")

AGG_CURSOR = "aggregation-events"
OPEN_KEY = "aggregations-open"


class AggregationDuties:
    def has_epochs(self) -> bool:
        return "Epochs" in self.chain.deployment.addresses

    def agg_key(self, task_id: int, epoch: int) -> str:
        return f"aggregation:{task_id}:{epoch}"

    def discover_aggregations(self, head: int) -> None:
        if not self.has_epochs():
            return
        start = self.db.get_cursor(AGG_CURSOR, self.chain.deployment.deploy_block)
        if start > head:
            return
        open_ = self.db.get_json(OPEN_KEY, [])
        for ev in self.chain.events("AggregationOpened", start, head):
            a = ev["args"]
            task_id, epoch = a["task_id"], a["epoch"]
            if self.address not in a["committee"] or self.db.get_json(self.agg_key(task_id, epoch)):
                continue
            if self.tasks is not None and task_id not in self.tasks:
                continue
            committee = list(a["committee"])
            self.db.put_json(self.agg_key(task_id, epoch), {"task_id": task_id, "epoch": epoch, "phase": "assigned",
                                                            "accepted": a["accepted"], "committee": committee})
            open_.append([task_id, epoch])
            self.duty(None, "aggregation_assigned", "ok", detail=f"task {task_id} epoch {epoch}, A = "
                      f"{protocol.compute_accepted_slots(a['accepted'])}")
        self.db.put_json(OPEN_KEY, open_)
        self.db.set_cursor(AGG_CURSOR, head + 1)

    def advance_aggregations(self, head: int) -> None:
        for task_id, epoch in list(self.db.get_json(OPEN_KEY, [])):
            try:
                self.advance_aggregation(task_id, epoch, head)
            except AggregateInputError as e:
                log.warning("task %d epoch %d: cannot compute the aggregate yet: %s", task_id, epoch, e)

    def advance_aggregation(self, task_id: int, epoch: int, head: int) -> None:
        key = self.agg_key(task_id, epoch)
        rec = self.db.get_json(key)
        ep = self.chain.get_epoch(task_id, epoch)
        if ep.phase == R.EpochPhase.CLOSED:
            self.conclude_aggregation(rec, ep)
            return
        if ep.phase == R.EpochPhase.AGGREGATING and rec["phase"] == "assigned":
            if R.why_not_epoch(R.EpochAction.COMMIT_AGGREGATE, ep, head) is None:
                self.commit_aggregate(rec, ep)
            return
        if ep.phase == R.EpochPhase.POSTED and rec["phase"] == "committed":
            if R.why_not_epoch(R.EpochAction.REVEAL_AGGREGATE, ep, head) is None:
                self.reveal_aggregate(rec, ep)
            return
        params = self.chain.get_task(task_id).params
        if not R.why_not_epoch(R.EpochAction.FINALIZE_EPOCH, ep, head, post_window=params.reveal_window):
            seen = rec.setdefault("finalize_due_seen", head)
            self.db.put_json(key, rec)
            if head >= seen + 2 + rec["committee"].index(self.address):
                self.transact(None, self.chain.epochs.functions.finalize_epoch(task_id, epoch), "finalize_epoch",
                              done=lambda: self.chain.get_epoch(task_id, epoch).phase == R.EpochPhase.CLOSED)

    def commit_aggregate(self, rec: dict, ep) -> None:
        task_id, epoch = rec["task_id"], rec["epoch"]
        spec, _ = self.task_engine(task_id, self.chain.get_task(task_id))
        finals = slot_finals(self.chain, task_id, epoch, ep.accepted)
        if len(finals) != bin(ep.accepted).count("1"):
            raise AggregateInputError(f"an accepted slot of epoch {epoch} has no final checkpoint on-chain")
        with Stopwatch() as sw:
            agg = compute_aggregate(spec, self.store, epoch_base(self.chain, task_id, ep), finals,
                                    self.workdir / f"aggregate-{task_id}-{epoch}")
            # re-serve what we computed: the same writer gives the poster's very file (the same CID), so the
            # canonical state stays available when the poster goes offline
            self.store.pin(self.store.put_file(agg.path))
        self.timing(None, "aggregate", sw.seconds)
        salt = os.urandom(32)
        commitment = protocol.compute_aggregate_commitment(task_id, epoch, self.address, agg.state_hash, salt)
        rec.update(phase="ready", state_hash=agg.state_hash, salt=salt, commitment=commitment)
        self.db.put_json(self.agg_key(task_id, epoch), rec)  # before the commitment leaves this process
        self.transact(None, self.chain.epochs.functions.commit_aggregate(task_id, epoch, commitment), "commit_aggregate",
                      done=lambda: bytes(self.chain.call(self.chain.epochs.functions.commitments(task_id, epoch, self.address)))
                      == commitment)
        rec["phase"] = "committed"
        self.db.put_json(self.agg_key(task_id, epoch), rec)
        log.info("task %d epoch %d: committed to the aggregate 0x%s", task_id, epoch, agg.state_hash.hex()[:12])

    def reveal_aggregate(self, rec: dict, ep) -> None:
        task_id, epoch = rec["task_id"], rec["epoch"]
        mine = bytes(rec["state_hash"])
        fn = self.chain.epochs.functions.reveal_aggregate(task_id, epoch, mine, bytes(rec["salt"]))
        self.transact(None, fn, "reveal_aggregate",
                      done=lambda: self.chain.call(self.chain.epochs.functions.revealed(task_id, epoch, self.address)))
        rec["phase"] = "revealed"
        self.db.put_json(self.agg_key(task_id, epoch), rec)
        matches = mine == ep.state_hash
        log.info("task %d epoch %d: revealed the aggregate: %s the posted 0x%s", task_id, epoch,
                 "matches" if matches else "CONTRADICTS", ep.state_hash.hex()[:12])

    def conclude_aggregation(self, rec: dict, ep) -> None:
        task_id, epoch = rec["task_id"], rec["epoch"]
        rec["phase"] = "done"
        self.db.put_json(self.agg_key(task_id, epoch), rec)
        self.db.put_json(OPEN_KEY, [x for x in self.db.get_json(OPEN_KEY, []) if x != [task_id, epoch]])
        self.duty(None, "aggregation", ep.outcome.label, detail=f"task {task_id} epoch {epoch}")
        self.claim_rewards(None)
        shutil.rmtree(self.workdir / f"aggregate-{task_id}-{epoch}", ignore_errors=True)
