"""Epochs (#14) through the contracts: an epoch task, its trainers and an EpochDriver that claims,
commits and plays each slot as a v1 round (conftest.RoundDriver's steps), then the aggregation.
Small windows so a whole epoch is ~40 mined blocks (CI time)."""
from __future__ import annotations

from brownie import accounts, chain

from conftest import TRAINER_STAKE, Trace, rand32
from node import protocol as P
from node.chain.records import Epoch, TaskParams
from node.rounds import EpochPhase

# N = 3 DiLoCo slots; claim and train windows at the deployment minimum (4 blocks); the round windows are 10
# blocks so that the slots, played one after the other here (one transaction per block), all fit before the
# aggregate deadline (on a real network they run side by side)
EPOCH_PARAMS = TaskParams(steps_per_round=8, segment_steps=1, samples=2, committee_size=3, quorum=2, seal_delay_blocks=1,
                          reveal_window=10, commit_verdicts_window=10, reveal_verdicts_window=10, slots_per_epoch=3,
                          outer_lr_bps=7_000, outer_momentum_bps=9_000, claim_window=4, train_window=4)


def make_trainers(c, deployer, n: int) -> list:
    """n staked trainers: accounts[1] (conftest's trainer, staked), accounts[9], then fresh local keys."""
    out = [accounts[1], accounts[9]] + [accounts.add() for _ in range(max(0, n - 2))]
    for t in out[1:n]:
        if t.balance() < TRAINER_STAKE * 2:
            deployer.transfer(t, TRAINER_STAKE * 2)
        c.sm.stake(P.TRAINER, {"from": t, "value": TRAINER_STAKE})
    return out[:n]


class SlotPlay:
    """One slot's round, played with conftest.RoundDriver's steps on a slot id."""

    def __init__(self, d: "EpochDriver", index: int, trainer):
        self.d, self.index, self.trainer = d, index, trainer
        self.trace = Trace(bytes(d.c.epochs.epoch_of(d.task_id)[1]), d.params.n_segments, d.params.steps_per_round)
        self.salts: dict = {}

    def claim(self):
        tx = self.d.c.epochs.claim(self.d.task_id, self.d.epoch, self.index, {"from": self.trainer})
        self.slot_id = tx.events["SlotClaimed"]["slot_id"]
        return tx

    def commit(self):
        t = self.trace
        return self.d.c.epochs.commit(self.slot_id, t.base, t.data_root, t.root, t.proof(0), {"from": self.trainer})

    def play(self, liars=()):
        """seal ... finalize (commit already done); `liars`: members that contradict (fraud if a majority)."""
        c, rid, t = self.d.c, self.slot_id, self.trace
        chain.mine(self.d.params.seal_delay_blocks + 1)
        c.rounds.seal(rid, {"from": self.trainer})
        samples = list(c.rounds.round_samples_of(rid))
        committee = [accounts.at(a) for a in c.rounds.committee_of(rid)]
        c.rounds.reveal_starts(rid, [t.hashes[j] for j in samples], [f"bafy-start-{j}" for j in samples],
                               [t.proof(j) for j in samples], {"from": self.trainer})
        ends = list(c.rounds.round_check_ends_of(rid))
        true_ends = [t.hashes[e] for e in ends]
        for v in committee:
            mine = [rand32() for _ in ends] if v in liars else true_ends
            salt = rand32()
            self.salts[v.address] = (mine, salt)
            c.rounds.commit_verdict(rid, P.compute_verdict_commitment(rid, v.address, mine, True, True, salt), {"from": v})
        c.rounds.reveal_ends(rid, true_ends, [t.proof(e) for e in ends], f"bafy-final-{self.index}", {"from": self.trainer})
        for v in committee:  # the final flags, committed before any verdict is revealed (issue #13, attack 5)
            c.rounds.commit_verdict(rid, P.compute_final_commitment(rid, v.address, True, self.salts[v.address][1]), {"from": v})
        for v in committee:
            mine, salt = self.salts[v.address]
            c.rounds.reveal_verdict(rid, mine, True, salt, True, True, {"from": v})
        return c.rounds.finalize(rid, {"from": self.trainer})


class EpochDriver:
    """One epoch task: claim/commit/play slots, then aggregate."""

    def __init__(self, c, creator, trainers, params: TaskParams = EPOCH_PARAMS, pool: int | None = None):
        self.c, self.trainers, self.params = c, trainers, params
        self.base = rand32()
        tx = c.registry.create_task("bafy-spec", rand32(), self.base, "bafy-genesis", params.as_tuple(),
                                    {"from": creator, "value": pool if pool is not None else 20 * params.round_cost})
        self.task_id = tx.events["TaskCreated"]["task_id"]
        self.salts: dict = {}

    @property
    def epoch(self) -> int:
        return self.c.epochs.current_epoch(self.task_id)

    def epoch_record(self, epoch: int | None = None) -> Epoch:
        e = self.epoch if epoch is None else epoch
        return Epoch.from_abi(self.task_id, e, tuple(self.c.epochs.epochs(self.task_id, e)))

    def slot(self, index: int, trainer=None) -> SlotPlay:
        return SlotPlay(self, index, trainer or self.trainers[index % len(self.trainers)])

    def mine_past(self, block: int):
        if chain.height <= block:
            chain.mine(block - chain.height + 1)

    def run_slots(self, indices=None, liars_of=None) -> list[SlotPlay]:
        """Claim, commit and play each slot (all committed before any is played); returns the plays."""
        indices = range(self.params.slots_per_epoch) if indices is None else indices
        plays = [self.slot(i) for i in indices]
        for s in plays:
            s.claim()
        for s in plays:
            s.commit()
        for s in plays:
            s.play(liars=(liars_of or {}).get(s.index, ()))
        return plays

    def open_aggregation(self, sender=None):
        """As early as Epochs allows: seal_delay_blocks after the ready block (node.protocol.compute_ready_block;
        known once the claim phase is over: the claim window closed or every slot claimed)."""
        e = self.epoch_record()
        if e.ready_block_at(chain.height + 1) is None:
            self.mine_past(e.claim_deadline)
        self.mine_past(e.ready_block_at(chain.height + 1) + e.seal_delay_blocks)
        tx = self.c.epochs.open_aggregation(self.task_id, self.epoch, {"from": sender or self.trainers[0]})
        self.committee = [accounts.at(a) for a in self.c.epochs.committee_of(self.task_id, self.epoch)]
        return tx

    def commit_aggregate(self, member, state_hash: bytes):
        salt = rand32()
        self.salts[member.address] = (state_hash, salt)
        commitment = P.compute_aggregate_commitment(self.task_id, self.epoch, member.address, state_hash, salt)
        return self.c.epochs.commit_aggregate(self.task_id, self.epoch, commitment, {"from": member})

    def reveal_aggregate(self, member):
        state_hash, salt = self.salts[member.address]
        return self.c.epochs.reveal_aggregate(self.task_id, self.epoch, state_hash, salt, {"from": member})

    def aggregate(self, state_hash: bytes, poster, member_hashes=None, cid="bafy-aggregate"):
        """The whole aggregation after the slots: open, every member commits (its hash from member_hashes,
        default the honest `state_hash`), `poster` posts, every member reveals, finalize_epoch."""
        epoch = self.epoch
        self.open_aggregation()
        for m in self.committee:
            self.commit_aggregate(m, (member_hashes or {}).get(m.address, state_hash))
        self.c.epochs.post_aggregate(self.task_id, epoch, state_hash, cid, {"from": poster})
        for m in self.committee:
            self.reveal_aggregate(m)
        return self.c.epochs.finalize_epoch(self.task_id, epoch, {"from": poster})

    def phase(self, epoch: int | None = None) -> EpochPhase:
        return self.epoch_record(epoch).phase
