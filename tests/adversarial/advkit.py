"""Contract-level adversaries: whole rounds driven step by step with web3, real CIDs, toy replay.

    kit = AdversaryKit.on(local_net, trainer, verifiers, store)          # a tests/roundkit.RoundKit
    kit.stake_all(); task = kit.create_task()
    trace = kit.build_trace(task, ToyCheat(skip_segments={7}))          # what a trainer would train
    out = kit.play_round(task, trace, verifiers={v: "lazy"})             # commit .. finalize
    out.outcome, out.delta[trainer]                                      # chain reads

The "model" is a toy with the protocol's shape: a state is a small blob
(b"TOYSTATE" ‖ step ‖ digest), one training step is digest' = sha256(digest ‖ batch hash),
the batch hash of global step g is a pure function of (task, g), and a state's hash is the
sha256 of its blob. Every boundary state is put in a real content store, so the CIDs on
chain are real and an honest verifier really replays k steps from the revealed start it
fetched, without ever seeing the trainer's trace. The real engine is exercised by
test_node_adversaries.py; this level is fast enough for hundreds of rounds.

Every member that commits a verdict commits its final flag after the ends (the second commit_verdict,
rules.compute_final_commitment with the verdict's salt: issue #13, attack 5), then the reveals come.

Verifier behaviours (`verifiers={address: name}`), everyone else is "honest":
  honest      replay, commit, commit the final flag it checked, reveal with the flags it checked
  lazy        approve without replaying: commits the revealed *start* hashes as ends (the
              only hashes it can see), all flags true
  reject      reject everything: random end hashes, every flag false
  absent      never commits
  silent      commits an honest verdict (and its final flag), never reveals it
  equivocate  commits an honest verdict, then tries to reveal other end hashes (reverts),
              and never reveals what it committed
  copy        copies the first commitment another member put on chain (it cannot see any
              end hash: the trainer reveals them only after the committee committed), and
              its final commitment the same way
  collude     commits the end hashes the trainer hands it off-chain, all flags true
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

from node import protocol
from node.chain.contracts import ContractsError
from node.chain.records import TaskParams

from roundkit import RoundKit

TOY_MAGIC = b"TOYSTATE"
# 16 steps in 8 segments of 2, 2 samples (+ the last), committee of 3 out of 5, quorum 2.
TOY_TASK = TaskParams(steps_per_round=16, segment_steps=2, samples=2, committee_size=3, quorum=2, seal_delay_blocks=1,
                      reveal_window=10, commit_verdicts_window=10, reveal_verdicts_window=10)
BEHAVIOURS = ("honest", "lazy", "reject", "absent", "silent", "equivocate", "copy", "collude")


# ---------------------------------------------------------------- the toy model
def toy_state(step: int, digest: bytes) -> bytes:
    return TOY_MAGIC + step.to_bytes(8, "big") + digest


def toy_step_of(blob: bytes) -> int:
    if len(blob) != 48 or not blob.startswith(TOY_MAGIC):
        raise ValueError("toy: not a toy state")
    return int.from_bytes(blob[8:16], "big")


def toy_train_step(blob: bytes, batch: bytes, hp: bytes = b"") -> bytes:
    """One deterministic step; `hp` != b"" stands for a changed hyper-parameter."""
    return toy_state(toy_step_of(blob) + 1, hashlib.sha256(hp + blob[16:] + batch).digest())


def toy_hash(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()


def scheduled_batch(task_id: int, g: int) -> bytes:
    """The batch hash of global step g of a task (the data schedule)."""
    return hashlib.sha256(f"task {task_id} batch {g}".encode()).digest()


def other_batch(task_id: int, g: int) -> bytes:
    return hashlib.sha256(f"task {task_id} OTHER DATA {g}".encode()).digest()


@dataclass(frozen=True)
class ToyCheat:
    """How a toy trainer deviates; segments are 0-based, boundaries 1..M."""

    skip_segments: frozenset = frozenset()          # steps not run (state stands still)
    other_data_segments: frozenset = frozenset()    # trained on other batches
    report_actual_batches: bool = False             # commit the batches really used
    hp_segments: frozenset = frozenset()            # a changed hyper-parameter
    forge_boundaries: frozenset = frozenset()       # boundary state replaced by a made-up one, training goes on from it
    substitute_final: bool = False                  # h_M replaced by another state (not trained from h_{M-1})


@dataclass
class Trace:
    task_id: int
    blobs: list[bytes]          # boundary states 0..M
    batches: list[bytes]        # the S batch hashes committed
    cids: list[str]             # CID of each boundary blob

    @property
    def hashes(self) -> list[bytes]:
        return [toy_hash(b) for b in self.blobs]

    @property
    def trace_root(self) -> bytes:
        return protocol.compute_merkle_root(self.hashes)

    @property
    def data_root(self) -> bytes:
        return protocol.compute_merkle_root(self.batches)

    def proof(self, leaf: int) -> list[bytes]:
        return protocol.compute_merkle_proof(self.hashes, leaf)


@dataclass
class RoundOutcome:
    round_id: int
    outcome: int
    samples: list[int]
    committee: list[str]
    before: dict
    after: dict
    reverts: dict[str, str] = field(default_factory=dict)  # who/what -> revert reason caught

    @property
    def outcome_name(self) -> str:
        return protocol.outcome_name(self.outcome)

    def delta(self, who: str) -> int:
        """Change of bonded stake + claimable of `who` over the round (wei)."""
        return (self.after["stake"][who] + self.after["claimable"][who]) - (
            self.before["stake"][who] + self.before["claimable"][who])

    def stake_delta(self, who: str) -> int:
        return self.after["stake"][who] - self.before["stake"][who]


def reason_of(exc: BaseException) -> str:
    """The contract's revert words out of a ContractsError / web3 error."""
    import re

    m = re.search(r"execution reverted: ([^'\"\n]*)", str(exc))
    return m.group(1).strip() if m else str(exc)


# ---------------------------------------------------------------- the kit
@dataclass
class AdversaryKit(RoundKit):
    trainers: list = field(default_factory=list)

    fast: bool = False  # send without gas estimation (long honest runs): 2 RPCs per transaction

    def tx(self, name: str, fn: str, *args, sender, value: int = 0):
        """Send; with `fast`, skip estimation and fee look-ups (anvil fills the nonce, automine
        mines it before answering) and check the receipt's status instead."""
        if not self.fast:
            return RoundKit.tx(self, name, fn, *args, sender=sender, value=value)
        call = getattr(self.contract(name).functions, fn)(*args)
        tx_hash = self.w3.provider.make_request("eth_sendTransaction", [{
            "from": sender, "to": self.addresses[name], "data": call._encode_transaction_data(), "value": hex(value),
            "gas": hex(3_000_000), "maxFeePerGas": hex(10**10), "maxPriorityFeePerGas": hex(0)}])
        if "error" in tx_hash:
            raise ContractsError(f"reverted: {tx_hash['error'].get('message')}")
        for _ in range(500):  # automine: mined at once, but the receipt may lag the answer a little
            receipt = self.w3.provider.make_request("eth_getTransactionReceipt", [tx_hash["result"]])["result"]
            if receipt is not None:
                break
            time.sleep(0.01)
        if receipt is None or int(receipt["status"], 16) != 1:
            raise ContractsError(f"advkit: {fn} failed (receipt {receipt and receipt['status']})")
        return {"blockNumber": int(receipt["blockNumber"], 16), "status": 1}

    # ------------------------------------------------------------ reads
    def contract(self, name: str):
        cache = self.__dict__.setdefault("_contracts", {})
        if name not in cache:
            cache[name] = RoundKit.contract(self, name)
        return cache[name]

    def call(self, name: str, fn: str, *args):
        return getattr(self.contract(name).functions, fn)(*args).call()

    def params(self, task_id: int) -> TaskParams:
        return TaskParams(*self.call("TaskRegistry", "task_params", task_id))

    def task(self, task_id: int) -> dict:
        t = self.call("TaskRegistry", "tasks", task_id)
        return {"canonical_hash": t[3], "canonical_cid": t[4], "pool": t[5], "rounds_accepted": t[6],
                "open_round": self.call("TrainingRounds", "open_round", task_id)}

    def round(self, round_id: int) -> dict:
        r = self.call("TrainingRounds", "rounds", round_id)
        keys = ("task_id", "trainer", "base_hash", "data_root", "trace_root", "phase", "outcome", "commit_block", "seed",
                "deadline", "commit_deadline", "n_committed", "n_revealed", "n_contradicting", "final_hash", "final_cid")
        return dict(zip(keys, r))

    def everyone(self) -> list[str]:
        return list(dict.fromkeys([self.trainer, *self.trainers, *self.verifiers]))

    def balances(self) -> dict:
        sm = self.contract("StakeManager").functions
        return {
            "stake": {a: sm.stake_of(a).call() for a in self.everyone()},
            "claimable": {a: sm.claimable(a).call() for a in self.everyone()},
            "treasury": sm.treasury().call(),
        }

    def head(self) -> int:
        return self.w3.eth.block_number

    def mine_past(self, block: int) -> None:
        if self.head() <= block:
            self.mine(block - self.head() + 1)

    # ------------------------------------------------------------ set-up
    def create_task(self, params: TaskParams = TOY_TASK, rounds_funded: int = 300) -> int:
        """A task whose genesis is a toy state in the store."""
        spec_cid, spec_hash = self.put_state("spec")
        genesis = toy_state(0, hashlib.sha256(os.urandom(16)).digest())
        genesis_cid = self.store.put_bytes(genesis)
        self.tx("TaskRegistry", "create_task", spec_cid, spec_hash, toy_hash(genesis), genesis_cid, params.as_tuple(),
                sender=self.deployer, value=params.round_cost * rounds_funded)
        task_id = self.call("TaskRegistry", "task_count")
        self.mine_to(self.call("TaskRegistry", "opens_block", task_id))  # the deployment's notice for new tasks
        return task_id

    # ------------------------------------------------------------ the trainer's side
    def canonical_blob(self, task_id: int) -> bytes:
        t = self.task(task_id)
        blob = self.store.get_bytes(t["canonical_cid"])
        assert toy_hash(blob) == bytes(t["canonical_hash"]), "advkit: canonical blob does not hash to canonical"
        return blob

    def build_trace(self, task_id: int, cheat: ToyCheat = ToyCheat(), base: bytes | None = None) -> Trace:
        """Train one toy round from the canonical state (or `base`), deviating as `cheat` says."""
        p = self.params(task_id)
        blob = base if base is not None else self.canonical_blob(task_id)
        g0 = toy_step_of(blob)
        blobs, batches = [blob], []
        for j in range(p.n_segments):
            for i in range(p.segment_steps):
                g = g0 + j * p.segment_steps + i
                used = other_batch(task_id, g) if j in cheat.other_data_segments else scheduled_batch(task_id, g)
                batches.append(used if cheat.report_actual_batches else scheduled_batch(task_id, g))
                if j in cheat.skip_segments:
                    blob = toy_state(toy_step_of(blob) + 1, blob[16:])  # the counter moves, the weights do not
                else:
                    blob = toy_train_step(blob, used, b"lr*2" if j in cheat.hp_segments else b"")
            if j + 1 in cheat.forge_boundaries:
                blob = toy_state(toy_step_of(blob), hashlib.sha256(b"forged" + os.urandom(8)).digest())
            if j + 1 == p.n_segments and cheat.substitute_final:
                blob = toy_state(toy_step_of(blob), hashlib.sha256(b"substituted" + os.urandom(8)).digest())
            blobs.append(blob)
        return Trace(task_id, blobs, batches, [self.store.put_bytes(b) for b in blobs])

    def commit(self, trace: Trace, trainer: str | None = None, base_hash: bytes | None = None,
               proof0: list[bytes] | None = None) -> int:
        trainer = trainer or self.trainer
        hashes = trace.hashes
        self.tx("TrainingRounds", "commit", trace.task_id, base_hash or hashes[0], trace.data_root, trace.trace_root,
                proof0 if proof0 is not None else trace.proof(0), sender=trainer)
        return self.call("TrainingRounds", "round_count")

    def seal(self, round_id: int) -> None:
        r = self.round(round_id)
        self.mine_past(r["commit_block"] + self.params(r["task_id"]).seal_delay_blocks)
        self.tx("TrainingRounds", "seal", round_id, sender=self.deployer)

    def reveal_starts(self, round_id: int, trace: Trace, trainer: str | None = None, **override) -> None:
        samples = self.call("TrainingRounds", "round_samples_of", round_id)
        hashes = override.get("hashes") or [trace.hashes[j] for j in samples]
        cids = override.get("cids") or [trace.cids[j] for j in samples]
        proofs = override.get("proofs") or [trace.proof(j) for j in samples]
        self.tx("TrainingRounds", "reveal_starts", round_id, hashes, cids, proofs, sender=trainer or self.trainer)

    def reveal_ends(self, round_id: int, trace: Trace, trainer: str | None = None, final_cid: str | None = None,
                    **override) -> None:
        check_ends = self.call("TrainingRounds", "round_check_ends_of", round_id)
        hashes = override.get("hashes") or [trace.hashes[e] for e in check_ends]
        proofs = override.get("proofs") or [trace.proof(e) for e in check_ends]
        self.tx("TrainingRounds", "reveal_ends", round_id, hashes, proofs, final_cid or trace.cids[-1],
                sender=trainer or self.trainer)

    # ------------------------------------------------------------ an honest verifier's checks
    def replay_verdict(self, round_id: int) -> dict:
        """What an honest verifier computes before committing: fetch, check, replay, data root."""
        r = self.round(round_id)
        task_id = r["task_id"]
        p = self.params(task_id)
        g0 = toy_step_of(self.canonical_blob(task_id))
        samples = self.call("TrainingRounds", "round_samples_of", round_id)
        check_ends = self.call("TrainingRounds", "round_check_ends_of", round_id)
        start_hashes = self.call("TrainingRounds", "start_hashes_of", round_id)
        ev = self.contract("TrainingRounds").events.StartsRevealed().get_logs(
            from_block=r["commit_block"], argument_filters={"round_id": round_id})
        start_cids = list(ev[-1]["args"]["start_cids"])
        ends, starts_ok = [], True
        for j, end, h, cid in zip(samples, check_ends, start_hashes, start_cids):
            try:
                blob = self.store.get_bytes(cid)
                ok = toy_hash(blob) == bytes(h)
            except Exception:  # a CID that cannot be fetched is the trainer's fault
                ok = False
            if not ok:
                starts_ok = False
                ends.append(protocol.ZERO_HASH)
                continue
            for i in range((end - j) * p.segment_steps):  # the check's span: k steps, 2k for (M-2, M)
                blob = toy_train_step(blob, scheduled_batch(task_id, g0 + j * p.segment_steps + i))
            ends.append(toy_hash(blob))
        schedule = [scheduled_batch(task_id, g0 + g) for g in range(p.steps_per_round)]
        data_ok = protocol.compute_merkle_root(schedule) == bytes(r["data_root"])
        return {"ends": ends, "data_ok": data_ok, "starts_ok": starts_ok}

    def slash_base(self, who: str, task_id: int | None = None) -> int:
        """What a round reserves of `who`'s stake, the base of every slash of it (issue #13, attack 7):
        StakeManager's minimum for its role, or the task's trainer minimum if higher."""
        role = self.call("StakeManager", "role_of", who)
        base = self.call("StakeManager", "min_stake", role)
        if task_id is not None and role == protocol.TRAINER:
            base = max(base, self.params(task_id).min_trainer_stake_wei)
        return base

    def commit_final(self, round_id: int, member: str, final_ok: bool, salt: bytes) -> bytes:
        """The member's second commit_verdict, after the ends: its final flag under its verdict's salt."""
        commitment = protocol.compute_final_commitment(round_id, member, final_ok, salt)
        self.tx("TrainingRounds", "commit_verdict", round_id, commitment, sender=member)
        return commitment

    def final_ok(self, round_id: int) -> bool:
        r = self.round(round_id)
        try:
            return toy_hash(self.store.get_bytes(r["final_cid"])) == bytes(r["final_hash"])
        except Exception:
            return False

    # ------------------------------------------------------------ a whole round
    def play_round(self, task_id: int, trace: Trace, trainer: str | None = None, verifiers: dict | None = None,
                   withhold: str | None = None, final_cid: str | None = None, track: bool = True) -> RoundOutcome:
        """commit .. finalize with the given behaviours; `withhold`: None | "starts" | "ends".
        track=False skips the balance reads before and after (long runs check totals instead)."""
        trainer = trainer or self.trainer
        verifiers = verifiers or {}
        for name in verifiers.values():
            assert name in BEHAVIOURS, f"advkit: unknown behaviour {name}"
        before = self.balances() if track else {}
        reverts: dict[str, str] = {}
        round_id = self.commit(trace, trainer)
        self.seal(round_id)
        p = self.params(task_id)
        samples = self.call("TrainingRounds", "round_samples_of", round_id)
        committee = self.call("TrainingRounds", "committee_of", round_id)
        if withhold == "starts":
            return self._close(round_id, samples, committee, before, reverts)
        self.reveal_starts(round_id, trace, trainer)

        honest = self.replay_verdict(round_id)
        plans: dict[str, tuple] = {}
        # the copier acts last, after the others' commitments are on chain
        for member in sorted(committee, key=lambda m: verifiers.get(m) == "copy"):
            behaviour = verifiers.get(member, "honest")
            if behaviour == "absent":
                continue
            salt = os.urandom(32)
            starts_ok = honest["starts_ok"]  # committed with the verdict (#13, attack 5)
            if behaviour == "lazy":
                ends, data_ok, starts_ok = list(self.call("TrainingRounds", "start_hashes_of", round_id)), True, True
            elif behaviour == "reject":
                ends, data_ok, starts_ok = [os.urandom(32) for _ in samples], False, False
            elif behaviour == "collude":
                ends, data_ok, starts_ok = [trace.hashes[e] for e in self.call("TrainingRounds", "round_check_ends_of", round_id)], True, True
            else:
                ends, data_ok = honest["ends"], honest["data_ok"]
            if behaviour == "copy":
                others = [m for m in committee if m != member and m in plans]
                commitment = self.call("TrainingRounds", "commitments", round_id, others[0]) if others else os.urandom(32)
                plans[member] = (plans[others[0]][0] if others else ends, data_ok, starts_ok, salt, behaviour)
            else:
                commitment = protocol.compute_verdict_commitment(round_id, member, ends, data_ok, starts_ok, salt)
                plans[member] = (ends, data_ok, starts_ok, salt, behaviour)
            self.tx("TrainingRounds", "commit_verdict", round_id, commitment, sender=member)
        if withhold == "ends":
            return self._close(round_id, samples, committee, before, reverts)
        if len(plans) < len(committee):
            self.mine_past(self.round(round_id)["commit_deadline"])
        self.reveal_ends(round_id, trace, trainer, final_cid=final_cid)

        final_ok = self.final_ok(round_id)
        finals: dict[str, tuple] = {}  # member -> (final_ok, final commitment)
        for member, (ends, data_ok, starts_ok, salt, behaviour) in sorted(plans.items(), key=lambda kv: kv[1][4] == "copy"):
            fin_ok = final_ok  # committed before any verdict is revealed (#13, attack 5)
            if behaviour in ("lazy", "collude"):
                fin_ok = True
            elif behaviour == "reject":
                fin_ok = False
            if behaviour == "copy":
                others = [m for m in finals if m != member]
                commitment = finals[others[0]][1] if others else os.urandom(32)
                self.tx("TrainingRounds", "commit_verdict", round_id, commitment, sender=member)
                finals[member] = (finals[others[0]][0] if others else fin_ok, commitment)
            else:
                finals[member] = (fin_ok, self.commit_final(round_id, member, fin_ok, salt))
        for member, (ends, data_ok, starts_ok, salt, behaviour) in plans.items():
            if behaviour == "silent":
                continue
            fin_ok = finals[member][0]
            if behaviour == "equivocate":
                ends = [os.urandom(32) for _ in ends]
            try:
                self.tx("TrainingRounds", "reveal_verdict", round_id, ends, data_ok, salt, starts_ok, fin_ok, sender=member)
            except ContractsError as e:
                reverts[member] = reason_of(e)
        return self._close(round_id, samples, committee, before, reverts)

    def _close(self, round_id, samples, committee, before, reverts) -> RoundOutcome:
        r = self.round(round_id)
        if r["phase"] != protocol.Phase.ENDS_REVEALED or r["n_revealed"] < r["n_committed"]:
            self.mine_past(r["deadline"])
        self.tx("TrainingRounds", "finalize", round_id, sender=self.deployer)
        r = self.round(round_id)
        after = self.balances() if before else {}
        return RoundOutcome(round_id, r["outcome"], list(samples), list(committee), before, after, reverts)
