"""The trainer's duties in an epoch task (issue #14; contracts/Epochs.vy; docs/protocol-v2-interface.md).

TrainerNode runs these instead of the v1 start/commit when the task's parameters say it is an epoch
task (more than one slot, or an outer step other than the identity). One tick:

1. every open slot round of ours gets v1's duty (seal, reveal starts, reveal ends, finalize: a slot
   is a TrainingRounds round, slot id = round id);
2. every epoch we hold a slot in gets the aggregator duty: after the aggregate deadline open the
   aggregation; while the committee commits, compute the outer step over the accepted slots'
   final checkpoints (fetched from the store, verified), put the state in the store, and post its
   hash and CID when this slot's turn comes (the lowest accepted slot at once, the next after W);
   finalize the epoch once due (an empty A, nobody posted, the reveals are in);
3. if the task's current epoch takes claims: claim a free slot (the one trained ahead, if it is
   free), train its H steps on the epoch's schedule (node.engine: Slot(e, i, N)), commit.

Training ahead (the choice of #14, whitepaper §3.6): once the committed set of our epoch e is final
and the node knows the final state of every committed slot, it computes the outer step over *all
committed* slots — what the aggregate will be when every one is accepted — and trains its slot of
epoch e+1 on it, on the pipeline thread. It knows its own final state from its commit on (its own
trace); a co-trainer's from the final handoff (node/roles/handoff.py: the co-trainer hands over its
h_M, proven against its committed trace root, and the checkpoint's CID, to the epoch's committed
trainers only) or, if that fails, from that slot's ends reveal, which the protocol holds back on
purpose until the committee has committed its verdicts (so no verifier can copy an h_M). So an
honest epoch's trainers start at the last commit, not at the last ends reveal. When e+1 opens on
that very base (every committed slot was accepted), the claim and the commit go out in the same tick; otherwise (a slot
was left out: the base differs) the work is thrown away and the slot is trained on the real base.
train-local's epochs are the honest case.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from node import protocol
from node.errors import ChainError
from node.roles.epochs import (AggregateInputError, SlotFinal, StateRef, compute_aggregate, epoch_base, indices_of,
                               slot_finals)
from node.roles.pipeline import AheadJob
from node.roles.runloop import Stopwatch
from node import rounds as R  # R.EpochPhase, R.EpochAction, R.why_not_epoch: the epoch state machine

log = logging.getLogger("trainchain.trainer")

# a co-trainer that could not be reached is asked again after this many seconds, not every block: each ask is on the
# node's main thread, up to request_final's 3 s timeout (one that answers, even "not yet", is asked next block)
HANDOFF_PAUSE_S = 15.0


class EpochTrainerDuties:
    """Mixed into TrainerNode (node/roles/trainer.py): the epoch task's tick."""

    # claim only from this epoch on; a node that sets it joins late (the demo's cheater): it never opens an epoch
    # and takes the highest free slot, leaving the others' slots (trained ahead) to them
    first_epoch = 0

    # ------------------------------------------------------------ DB keys
    def slot_key(self, epoch: int) -> str:
        return f"slot:{self.task_id}:{epoch}"

    def held_key(self) -> str:
        return f"epochs-held:{self.task_id}"  # epochs we hold a slot in that are not closed yet

    def held_epochs(self) -> list[int]:
        return list(self.db.get_json(self.held_key(), []))

    def slots_claimed(self) -> int:
        return int(self.db.get_json(f"slots-claimed:{self.task_id}", 0))

    # ------------------------------------------------------------ the tick
    def tick_epochs(self, head: int) -> bool:
        for rec in [r for r in self.db.rounds("trainer", open_only=True) if r.task_id == self.task_id]:
            self.advance(rec.round_id, head)
        for epoch in self.held_epochs():
            self.epoch_duty(epoch, head)
        if self.max_rounds is not None and self.slots_claimed() >= self.max_rounds:
            if not self.held_epochs():
                log.info("finished %d slot(s); stopping", self.slots_claimed())
                return True
            return False
        self.claim_duty(head)
        self.train_next_epoch_ahead()  # after the claim duty: the commit it just made may be all it waits for
        return False

    # ------------------------------------------------------------ claim, train, commit
    def claim_duty(self, head: int) -> None:
        ep = self.chain.get_epoch(self.task_id)
        if ep.epoch < self.first_epoch or (self.first_epoch and ep.phase == R.EpochPhase.NONE):
            return
        mine = self.db.get_json(self.slot_key(ep.epoch))
        if mine is not None:
            if mine["phase"] == "claimed":
                self.train_and_commit_slot(ep, mine, head)
            return
        params = self.chain.get_task(self.task_id).params
        n = params.slots_per_epoch
        free = ep.free_slots(n)
        if not free or R.why_not_epoch(R.EpochAction.CLAIM, ep, head, slot=free[0], n_slots=n):
            return
        if not self.can_commit(self.chain.get_task(self.task_id)):
            return
        ahead = self.db.get_json(self.ahead_key())
        # the base the epoch opens on: its record's once opened, the canonical state before (the claim opens it)
        base_hash = ep.base_hash if ep.phase != R.EpochPhase.NONE else self.chain.latest_model(self.task_id).state_hash
        index = free[-1] if self.first_epoch else free[0]
        job = self.ahead
        if ahead and ahead.get("epoch") == ep.epoch and ahead["index"] in free and bytes(ahead["base_hash"]) == base_hash:
            index = ahead["index"]  # the slot trained ahead, if it is free
        elif job is not None and job.start_step == ep.epoch and getattr(job, "slot_index", None) in free:
            index = job.slot_index  # the slot still training ahead (its base is checked when it is done)
        fn = self.chain.epochs.functions.claim(self.task_id, ep.epoch, index)
        try:
            receipt = self.transact(None, fn, "claim")
        except ChainError as e:
            log.info("claim of slot %d of epoch %d: %s; trying again", index, ep.epoch, e.reason or e)
            return
        slot_id = self.chain.claimed_slot_id(receipt)
        ep = self.chain.get_epoch(self.task_id, ep.epoch)  # opened by our claim, perhaps: its deadlines
        mine = {"epoch": ep.epoch, "index": index, "slot_id": slot_id, "base_hash": ep.base_hash, "phase": "claimed",
                "n_slots": n}
        self.db.put_json(self.slot_key(ep.epoch), mine)
        self.db.put_json(f"slots-claimed:{self.task_id}", self.slots_claimed() + 1)
        self.db.put_json(self.held_key(), sorted(set(self.held_epochs()) | {ep.epoch}))
        log.info("claimed slot %d of epoch %d (slot id %d, commit by block %d)", index, ep.epoch, slot_id, ep.commit_deadline)
        self.train_and_commit_slot(ep, mine, self.chain.block_number())

    def train_and_commit_slot(self, ep, mine: dict, head: int) -> None:
        from node.engine.trace import Slot

        epoch, index = mine["epoch"], mine["index"]
        if R.why_not_epoch(R.EpochAction.COMMIT, ep, head, slot=index):
            log.warning("slot %d of epoch %d: %s", index, epoch, R.why_not_epoch(R.EpochAction.COMMIT, ep, head, slot=index))
            mine["phase"] = "missed"
            self.db.put_json(self.slot_key(epoch), mine)
            return
        pending = self.slot_trace_ahead(ep, index)
        if pending is None:
            out_dir = self.workdir / f"epoch-{epoch}-slot-{index}"
            base_path, fetched = self.fetch_base(self.chain.latest_model(self.task_id).cid, out_dir)
            log.info("training slot %d of epoch %d: %d steps (base 0x%s)", index, epoch, self.spec.steps_per_round,
                     ep.base_hash.hex()[:12])
            # no start step to check against the base's: the slot's schedule (batches, keys, lr) is the epoch's
            # whatever step the base recorded, and after an epoch that closed with no slot accepted the base is
            # still at the step of the epoch before it
            with self.progress_bar(f"train e{epoch} s{index}", self.spec.steps_per_round) as advance:
                pending = self.train_trace(base_path, ep.base_hash, None, out_dir, advance,
                                           slot=Slot(epoch, index, mine["n_slots"]))
            pending["stage_seconds"]["fetch"] = fetched
        self.save_trained(self.pending_key(), pending)
        self.commit_slot(mine, self.db.get_json(self.pending_key()))

    def slot_trace_ahead(self, ep, index: int) -> dict | None:
        """The slot trained ahead, if it is this epoch's slot `index` on this base (waiting for it if still training)."""
        job = self.ahead
        if job is not None and job.start_step == ep.epoch:  # an epoch's ahead job is keyed by the epoch
            before = self.chain.get_epoch(self.task_id, ep.epoch - 1)
            if before.outcome == R.Outcome.ACCEPTED and before.accepted == job.slots_mask:
                log.info("epoch %d opened before the slot trained ahead was done: waiting for it", ep.epoch)
                job.wait()
                self.collect_ahead()
            else:  # not every slot it aggregated was accepted: its base is not this one, and waiting costs the window
                self.discard_ahead(f"epoch {ep.epoch - 1} accepted slots {before.accepted_slots}, not all it aggregated")
        ahead = self.db.get_json(self.ahead_key())
        if ahead and ahead.get("epoch") == ep.epoch and ahead["index"] == index and bytes(ahead["base_hash"]) == ep.base_hash \
                and Path(ahead["out_dir"]).exists():
            self.db.delete_json(self.ahead_key())
            log.info("committing slot %d of epoch %d trained ahead on 0x%s", index, ep.epoch, ep.base_hash.hex()[:12])
            return ahead
        if ahead:
            self.discard_ahead(f"epoch {ep.epoch} opened on 0x{ep.base_hash.hex()[:12]} (a committed slot was left out), "
                               f"or slot {ahead['index']} was taken")
        return None

    def commit_slot(self, mine: dict, pending: dict) -> None:
        hashes = [bytes(h) for h in pending["boundary_hashes"]]
        fn = self.chain.epochs.functions.commit(mine["slot_id"], hashes[0], bytes(pending["data_root"]),
                                                bytes(pending["trace_root"]), protocol.compute_merkle_proof(hashes, 0))
        with Stopwatch() as sw:
            receipt = self.transact(mine["slot_id"], fn, "commit",
                                    done=lambda: (self.chain.get_epoch(self.task_id, mine["epoch"]).committed >> mine["index"]) & 1)
        slot_id = mine["slot_id"]
        trace = {k: v for k, v in pending.items() if k not in ("epoch", "index")}  # an ahead trace names its slot
        self.db.save_round("trainer", slot_id, self.task_id, "committed",
                           commit_block=receipt["blockNumber"] if receipt else self.chain.block_number(),
                           started=time.time(), epoch=mine["epoch"], slot=mine["index"], **trace)
        self.db.delete_json(self.pending_key())
        mine["phase"] = "committed"
        self.db.put_json(self.slot_key(mine["epoch"]), mine)
        for stage, seconds in {**(pending.get("stage_seconds") or {}), "tx:commit": sw.seconds}.items():
            self.timing(slot_id, stage, seconds)
        self.metrics.round(slot_id)
        log.info("committed slot %d of epoch %d (slot id %d)", mine["index"], mine["epoch"], slot_id)

    # ------------------------------------------------------------ the aggregator duty
    def epoch_duty(self, epoch: int, head: int) -> None:
        ep = self.chain.get_epoch(self.task_id, epoch)
        mine = self.db.get_json(self.slot_key(epoch)) or {}
        params = self.chain.get_task(self.task_id).params
        W = params.reveal_window
        if ep.phase == R.EpochPhase.CLOSED:
            self.withdraw_finals(epoch)
            self.conclude_epoch(ep, mine)
            return
        if ep.phase == R.EpochPhase.OPEN:
            self.offer_final(ep, mine)
            if not R.why_not_epoch(R.EpochAction.OPEN_AGGREGATION, ep, head):
                self.epoch_transact(ep, "open_aggregation", lambda e: e.phase != R.EpochPhase.OPEN)
            elif not R.why_not_epoch(R.EpochAction.FINALIZE_EPOCH, ep, head, post_window=W):
                self.epoch_transact(ep, "finalize_epoch", lambda e: e.phase == R.EpochPhase.CLOSED)
            return
        self.withdraw_finals(epoch)  # aggregating: every accepted slot's final state is public
        index = mine.get("index")
        if ep.phase == R.EpochPhase.AGGREGATING and index is not None and (ep.accepted >> index) & 1:
            committee = self.chain.epoch_committee(self.task_id, epoch)
            if not R.why_not_epoch(R.EpochAction.POST_AGGREGATE, ep, head, slot=index, committee_size=len(committee),
                                 post_window=W):
                agg = self.posted_aggregate(ep, mine)
                if agg is not None:
                    fn = self.chain.epochs.functions.post_aggregate(self.task_id, epoch, bytes(agg["state_hash"]), agg["cid"])
                    self.transact(mine.get("slot_id"), fn, "post_aggregate",
                                  done=lambda: self.chain.get_epoch(self.task_id, epoch).phase != R.EpochPhase.AGGREGATING)
                    log.info("epoch %d: posted the aggregate 0x%s (%s)", epoch, bytes(agg["state_hash"]).hex()[:12], agg["cid"])
                return
        if not R.why_not_epoch(R.EpochAction.FINALIZE_EPOCH, ep, head, post_window=W):
            self.epoch_transact(ep, "finalize_epoch", lambda e: e.phase == R.EpochPhase.CLOSED)

    def epoch_transact(self, ep, what: str, is_done) -> None:
        fn = getattr(self.chain.epochs.functions, what)(self.task_id, ep.epoch)
        self.transact(None, fn, what, done=lambda: is_done(self.chain.get_epoch(self.task_id, ep.epoch)))

    def posted_aggregate(self, ep, mine: dict) -> dict | None:
        """The outer step over A, computed once (kept in the DB), its file in the store; None while an input
        cannot be fetched yet (the duty retries next block)."""
        key = f"aggregate:{self.task_id}:{ep.epoch}"
        done = self.db.get_json(key)
        if done and done.get("accepted") == ep.accepted:
            return done
        finals = slot_finals(self.chain, self.task_id, ep.epoch, ep.accepted)
        try:
            with Stopwatch() as sw:
                agg = compute_aggregate(self.spec, self.store, epoch_base(self.chain, self.task_id, ep), finals,
                                        self.workdir / f"aggregate-{ep.epoch}")
                cid = self.store.put_file(agg.path)
                self.store.pin(cid)
        except AggregateInputError as e:
            log.warning("epoch %d: cannot compute the aggregate yet: %s", ep.epoch, e)
            return None
        self.timing(mine.get("slot_id"), "aggregate", sw.seconds)
        done = {"accepted": ep.accepted, "state_hash": agg.state_hash, "cid": cid, "path": str(agg.path)}
        self.db.put_json(key, done)
        return self.db.get_json(key)

    def conclude_epoch(self, ep, mine: dict) -> None:
        accepted = ep.accepted_slots
        log.info("epoch %d closed: %s, A = slots %s, state 0x%s", ep.epoch, ep.outcome.label, accepted,
                 (ep.state_hash if ep.outcome == R.Outcome.ACCEPTED else ep.base_hash).hex()[:12])
        self.duty(mine.get("slot_id"), "epoch", ep.outcome.label, detail=f"epoch {ep.epoch}, A = {accepted}")
        self.db.put_json(self.held_key(), [e for e in self.held_epochs() if e != ep.epoch])
        self.claim_rewards(mine.get("slot_id"))
        shutil.rmtree(self.workdir / f"aggregate-{ep.epoch}", ignore_errors=True)

    # ------------------------------------------------------------ training ahead
    def train_next_epoch_ahead(self) -> None:
        """Train our slot of epoch e+1 on the outer step over every committed slot of e, as soon as the committed
        set is final and we know every one's final state (see the module's docstring)."""
        if not self.pipeline or self.ahead is not None:
            return
        if self.max_rounds is not None and self.slots_claimed() >= self.max_rounds:
            return
        held = self.held_epochs()
        if not held:
            return
        epoch = max(held)
        mine = self.db.get_json(self.slot_key(epoch)) or {}
        ep, head = self.chain.get_epoch(self.task_id, epoch), self.chain.block_number()
        if mine.get("ahead_handed") and self.ahead_failed == ep.base_hash and not mine.get("handoff_failed"):
            # the job over handed-off final states failed (a checkpoint its trainer would not serve): once more,
            # with the final states the ends reveals publish
            log.info("epoch %d: training ahead on handed-off final states failed; waiting for the ends reveals", epoch)
            mine.update(handoff_failed=True, ahead_started=None)
            self.db.put_json(self.slot_key(epoch), mine)
        if mine.get("phase") != "committed" or self.db.get_json(self.ahead_key()) or mine.get("ahead_started"):
            return
        # the committed set is final after the commit deadline, or once the claim phase is over (the claim
        # window closed or every slot claimed) and every claimed slot committed (the honest case: long before
        # the deadline)
        if ep.phase != R.EpochPhase.OPEN or not (head > ep.commit_deadline
                                                 or (ep.is_claim_phase_over_at(head) and ep.committed == ep.claimed)):
            return
        finals = self.committed_finals(ep, mine)
        if finals is None:
            return  # a co-trainer's final state is not known yet (not handed off, not revealed)
        base = StateRef(self.chain.latest_model(self.task_id).cid, ep.base_hash)
        nxt, index, n = epoch + 1, mine["index"], mine["n_slots"]
        out_dir = self.workdir / f"ahead-epoch-{nxt}-slot-{index}"
        spec, store, steps = self.spec, self.store, self.spec.steps_per_round

        def work(check) -> dict:
            from node.engine.trace import Slot

            with Stopwatch() as sw:
                agg = compute_aggregate(spec, store, base, finals, out_dir / "aggregate")
            pending = self.train_trace(agg.path, agg.state_hash, nxt * steps, out_dir, lambda step, loss: check(),
                                       slot=Slot(nxt, index, n))
            pending["stage_seconds"]["aggregate_ahead"] = sw.seconds
            pending.update(epoch=nxt, index=index)
            return pending

        log.info("epoch %d: the final state of every committed slot %s is known: training slot %d of epoch %d ahead "
                 "on their aggregate", epoch, [f.index for f in finals], index, nxt)
        # keyed by the epoch (its base is what the job computes): slot_trace_ahead matches epoch, then base
        self.ahead = AheadJob(ep.base_hash, nxt, work).start()
        self.ahead.slot_index, self.ahead.slots_mask = index, ep.committed  # the slots its base aggregates
        mine["ahead_started"] = head  # the block (bench/epochs.py: how long the next slot trains hidden)
        mine["ahead_handed"] = [f.index for f in finals if self.finals_handed.get((epoch, f.index)) == f]
        self.db.put_json(self.slot_key(epoch), mine)

    def committed_finals(self, ep, mine: dict) -> list[SlotFinal] | None:
        """The final state of every committed slot of `ep`, or None while one is unknown to us: ours from our own
        committed trace (we know it from our commit on), the others' from their ends reveals or, before those, from
        their trainers' final handoff (verified against their committed trace roots)."""
        trace = self.db.get_round("trainer", mine["slot_id"]).data
        ours = SlotFinal(mine["index"], mine["slot_id"], StateRef(trace["cids"][-1], bytes(trace["boundary_hashes"][-1])))
        others = slot_finals(self.chain, self.task_id, ep.epoch, ep.committed & ~(1 << mine["index"]))
        unknown = [i for i in indices_of(ep.committed & ~(1 << mine["index"])) if i not in {f.index for f in others}]
        if unknown and self.final_handoff and not mine.get("handoff_failed"):
            others += self.handed_finals(ep, unknown)
        if len(others) + 1 != bin(ep.committed).count("1"):
            return None
        return sorted([*others, ours], key=lambda f: f.index)

    # ------------------------------------------------------------ the final handoff (node/roles/handoff.py)
    def serve_finals(self, gateway) -> None:
        """Hand our slots' final states to co-trainers through `gateway` (the node's; None: nothing to serve on)."""
        from node.roles.handoff import FINAL_ROUTE, HandoffBoard

        if gateway is not None and self.final_handoff:
            self.handoff_board = HandoffBoard(self.chain.chain_id)
            gateway.routes[FINAL_ROUTE] = self.handoff_board.answer

    def offer_final(self, ep, mine: dict) -> None:
        """Offer our committed slot's final state to the epoch's other committed trainers (again whenever one more
        slot commits: the allowed set is read from the chain here, never by the gateway's threads)."""
        from node.roles.handoff import FinalOffer

        if self.handoff_board is None or mine.get("phase") != "committed" or self.finals_offered.get(ep.epoch) == ep.committed:
            return
        index = mine["index"]
        allowed = {self.chain.get_round(self.chain.slot_id(self.task_id, ep.epoch, j)).trainer
                   for j in indices_of(ep.committed & ~(1 << index))}
        trace = self.db.get_round("trainer", mine["slot_id"]).data
        hashes = [bytes(h) for h in trace["boundary_hashes"]]
        proof = tuple(protocol.compute_merkle_proof(hashes, len(hashes) - 1))
        self.handoff_board.offer(FinalOffer(self.task_id, ep.epoch, index, mine["slot_id"], hashes[-1], trace["cids"][-1],
                                            proof), allowed - {self.address})
        self.finals_offered[ep.epoch] = ep.committed

    def withdraw_finals(self, epoch: int) -> None:
        """Epoch `epoch` left its open phase: its accepted slots' final states are public, the rest are moot."""
        if self.handoff_board is not None and self.finals_offered.pop(epoch, None) is not None:
            self.handoff_board.withdraw(self.task_id, epoch)
        for known in (self.finals_handed, self.finals_paused, self.finals_rounds):
            for key in [k for k in known if k[0] == epoch]:
                del known[key]
        self.finals_refused -= {k for k in self.finals_refused if k[0] == epoch}

    def handed_finals(self, ep, indices: list[int]) -> list[SlotFinal]:
        """The final states of the committed slots `indices` (ends not revealed yet) that their trainers hand us now,
        each checked against its committed trace root; a slot whose trainer does not answer (yet: it offers from the
        block after its commit) is left out, and one that handed a bad final state is never asked again."""
        from node.roles.handoff import HandoffError, request_final, why_not_valid
        from node.store.peers import peer_directory

        directory = peer_directory(self.chain)
        if directory is None or self.chain.account is None:
            return []
        n_leaves = ep.n_segments + 1  # the tree size the epoch fixed at its opening (Epochs.commit checks leaf 0 by it)
        out = []
        for i in indices:
            key = (ep.epoch, i)
            if key in self.finals_handed:
                out.append(self.finals_handed[key])
                continue
            if key in self.finals_refused or time.monotonic() < self.finals_paused.get(key, 0.0):
                continue
            if key not in self.finals_rounds:
                slot_id = self.chain.slot_id(self.task_id, ep.epoch, i)
                self.finals_rounds[key] = (slot_id, self.chain.get_round(slot_id))
            slot_id, rnd = self.finals_rounds[key]
            url = self.chain.call(directory.functions.endpoint_of(rnd.trainer))
            if not url:
                continue
            try:
                offer = request_final(url, self.chain.account, self.chain.chain_id, self.task_id, ep.epoch, i)
            except HandoffError as e:
                if not e.answered:  # unreachable (up to request_final's timeout): a tick must not wait on it every block
                    self.finals_paused[key] = time.monotonic() + HANDOFF_PAUSE_S
                log.debug("epoch %d: slot %d's final state not handed off (yet): %s", ep.epoch, i, e)
                continue
            why = why_not_valid(offer, self.task_id, ep.epoch, i, slot_id, rnd, n_leaves)
            if why is not None:  # recorded (the node's duty log): which co-trainer handed what
                self.duty(slot_id, "final_handoff", "refused", detail=f"epoch {ep.epoch} slot {i} from {rnd.trainer}: "
                          f"{why}; waiting for its ends reveal")
                self.finals_refused.add(key)
                continue
            log.info("epoch %d: slot %d's final state 0x%s handed off by its trainer (%s)", ep.epoch, i,
                     offer.final_hash.hex()[:12], offer.final_cid)
            self.finals_handed[key] = SlotFinal(i, slot_id, StateRef(offer.final_cid, offer.final_hash))
            out.append(self.finals_handed[key])
        return out
