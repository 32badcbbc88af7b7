"""Disputes (issue #15): one honest party suffices. Contract-level rounds (RoundKit: stand-in states, real CIDs)
on a LocalNet whose deployment has Disputes (no majority vote for fraud); every dispute move is played by the
node's own duties (node/roles/disputes.py) with stand-in replays — the truth is `honest`, a forger posts `forged`,
a lazy or lying party answers `junk`."""
from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest

from node import protocol
from node.chain.contracts import DeployParams
from node.localnet import LocalNet
from node.roles.db import NodeDB
from node.roles.disputes import DisputeDuties, decode_hashes
from node.rounds import Outcome
from roundkit import SMALL_TASK, RoundKit

# windows: every node's move mines a block on this automining chain, so a window must outlast a pass of 8 nodes
# the trainer's stake is topped up by TOP_UP when its free stake could not hold a round's reservation (the Disputes
# deployment's minimum) after another conviction: earlier cases' fraud slashes eat into it
TOP_UP = 2 * protocol.DISPUTES_MIN_TRAINER_STAKE_WEI
TASK = replace(SMALL_TASK, segment_steps=2, steps_per_round=16, reveal_window=16, commit_verdicts_window=16,
               reveal_verdicts_window=16)
WIDE_TASK = replace(TASK, commit_verdicts_window=40, reveal_verdicts_window=40)


def honest(d, steps):
    inner = [hashlib.sha256(d.start_hash + i.to_bytes(4, "big")).digest() for i in range(1, d.span_steps)]
    return ([d.start_hash] + inner + [d.end_hash])[: steps + 1]


def forged(d, steps):
    """A forger's post: honest for one step, then other states, ending at the end leaf it committed."""
    h = honest(d, d.span_steps)
    return (h[:2] + [hashlib.sha256(b"forged" + x).digest() for x in h[2:-1]] + [d.end_hash])[: steps + 1]


def truth_of_forgery(d, steps):
    """An honest replay of a forged span: equal up to step 1, then different (its end included)."""
    h = honest(d, d.span_steps)
    return (h[:2] + [hashlib.sha256(b"true" + x).digest() for x in h[2:]])[: steps + 1]


def junk(d, steps):
    """A lazy or lying party: the start leaf, then anything."""
    return [d.start_hash] + [os.urandom(32) for _ in range(steps)]


class StallingDuties(DisputeDuties):
    """Never makes its own dispute move (post_steps / name_step), still resolves when that pays."""

    def _defend(self, d, head):
        return None

    def _name(self, d, head):
        return None


class NoDrawDuties(DisputeDuties):
    """Plays its moves but never draws a jury (a party that leaves the draw to others)."""

    def _draw(self, d, head):
        return None


class LyingJuror(DisputeDuties):
    """Votes the challenger's answer whatever its own replay says, told it by the challenger (`accomplice`: the
    challenger's NodeDB, read directly: the off-chain side channel). Without it a lie would count for nobody:
    the challenger's answer is hidden until the jury committed."""

    accomplice = None

    def _vote(self, d, head):
        state = self._state(d.dispute_id)
        if d.phase == protocol.DISPUTE_JURY and "vote" not in state and self.me in self.jury(d.dispute_id):
            told = self.accomplice.get_json(f"dispute:{d.dispute_id}", {})["answer"]
            self._save(d.dispute_id, vote=told, salt=os.urandom(32).hex())
        return super()._vote(d, head)


class BribedJuror(DisputeDuties):
    """Honest unless bribed: the first BRIBED seats of a dispute's jury are bought once it is drawn (the seats are
    public then) and vote the challenger's answer, told it off-chain by the challenger (`accomplice`: its NodeDB) —
    in the dispute's jury and, the same colluders, in its appeal's."""

    accomplice = None
    BRIBED = 8  # of JURY_MAX = 15: a strict majority of the first jury

    def _is_bribed(self, dispute_id: int) -> bool:
        return self.me in self.jury(dispute_id)[: self.BRIBED]

    def _told(self, key: str, dispute_id: int) -> None:
        if "vote" not in self.db.get_json(key, {}):
            told = self.accomplice.get_json(f"dispute:{dispute_id}", {})["answer"]
            self.db.put_json(key, {"vote": told, "salt": os.urandom(32).hex()})

    def _vote(self, d, head):
        if d.phase == protocol.DISPUTE_JURY and self._is_bribed(d.dispute_id):
            self._told(f"dispute:{d.dispute_id}", d.dispute_id)
        return super()._vote(d, head)

    def _vote_appeal(self, a, head):
        if a.phase == protocol.DISPUTE_JURY and self._is_bribed(a.dispute_id):
            self._told(f"appeal:{a.appeal_id}", a.dispute_id)
        return super()._vote_appeal(a, head)


def is_friendly(seed: bytes) -> bool:
    """A grinding challenger's wish, on a seed: one seed in four. In this registry (7 verifiers, JURY_MAX 15) every
    draw seats every verifier but the challenger, so the wish stands for 'colluders hold the majority' of a larger
    registry: what matters is whether the challenger can pick the seed, not which jury this one gives."""
    return seed[0] < 64


class GrindingChallenger(DisputeDuties):
    """Waits to name its step until the seed it can compute before sending is friendly (issue #15's grinding:
    the old name_step drew with blockhash(block.number - 1) = the hash of the head it reads), at most until a few
    blocks before its window closes. Keeps every seed it could evaluate (`known`) and the one it picked."""

    known: list[bytes]
    picked: bytes | None = None

    def _name(self, d, head):
        if d.phase != protocol.DISPUTE_STEPS_POSTED or d.challenger != self.me or head + 1 > d.deadline:
            return None
        self.known = getattr(self, "known", [])
        seed = protocol.compute_jury_seed(bytes(self.chain.w3.eth.get_block(head)["hash"]), d.dispute_id)
        self.known.append(seed)
        if not is_friendly(seed) and head + 4 < d.deadline:
            return None  # wait for a friendlier block
        self.picked = seed
        return super()._name(d, head)


class FirstMembers(dict):
    """RoundKit verdicts: the first `n` committee members asked get `behaviour`, the others agree."""

    def __init__(self, n, behaviour="contradict"):
        super().__init__()
        self.n, self.behaviour, self.asked = n, behaviour, []

    def __bool__(self):  # RoundKit reads `verdicts or {}`
        return True

    def get(self, member, default=None):
        if member not in self.asked:
            self.asked.append(member)
        return self.behaviour if self.asked.index(member) < self.n else "agree"


@pytest.fixture(scope="module")
def dnet(tmp_path_factory):
    net = LocalNet(tmp_path_factory.mktemp("disputes"), block_time=None, deploy_params=DeployParams(disputes=True)).start()
    kit = RoundKit.on(net, trainer=net.dev[1], verifiers=net.dev[2:9], store=net.store())
    kit.stake_all(trainer_stake=2 * protocol.DISPUTES_MIN_TRAINER_STAKE_WEI)  # the Disputes default minimum, twice
    yield net, kit
    net.stop()


@pytest.fixture(scope="module")
def wide_dnet(tmp_path_factory):
    """A registry larger than a jury (28 verifiers, JURY_MAX 15): the appeal's jury is the whole set. Its task's
    jury windows (WIDE_TASK) outlast a pass of all its nodes: each move mines a block on this automining chain."""
    net = LocalNet(tmp_path_factory.mktemp("wide-disputes"), block_time=None, n_accounts=30,
                   deploy_params=DeployParams(disputes=True)).start()
    kit = RoundKit.on(net, trainer=net.dev[1], verifiers=net.dev[2:30], store=net.store())
    kit.stake_all(trainer_stake=2 * protocol.DISPUTES_MIN_TRAINER_STAKE_WEI)
    yield net, kit
    net.stop()


class Play:
    """One contradicted round of a fresh task and the nodes that play its disputes."""

    def __init__(self, dnet, tmp_path, n_contradicting, providers=None, classes=None, post_boundaries=True, task=TASK):
        self.net, self.kit = dnet
        self.task = task
        sm = self.kit.contract("StakeManager").functions
        if sm.free_stake(self.kit.trainer.address).call() < TOP_UP:
            self.kit.tx("StakeManager", "stake", protocol.TRAINER, sender=self.kit.trainer, value=TOP_UP)
        self.task_id = self.kit.create_task(task)
        verdicts = FirstMembers(n_contradicting)
        self.result = self.kit.run_round(self.task_id, verdicts=verdicts, finalize=False,  # open to its disputes
                                         post_boundaries=post_boundaries)
        self.rounds = self.kit.contract("TrainingRounds").functions
        self.sm = self.kit.contract("StakeManager").functions
        self.round_id = self.rounds.round_count().call()
        self.contradicting = verdicts.asked[:n_contradicting]
        self.agreeing = verdicts.asked[n_contradicting:]
        self.trainer = self.kit.trainer
        accounts = {a.address: a for a in self.kit.verifiers} | {self.trainer.address: self.trainer}
        providers, classes = providers or {}, classes or {}
        self.nodes = {addr: classes.get(addr, DisputeDuties)(self.net.client(acct), NodeDB(tmp_path / f"{addr}.sqlite"),
                                                              providers.get(addr, honest))
                      for addr, acct in accounts.items()}
        self.money0 = {a: self.money(a) for a in accounts}
        self.bonds: dict[str, int] = {}  # wei each challenger sent with its open (from its wallet, not its stake)

    def money(self, addr):
        return self.sm.stake_of(addr).call() + self.sm.claimable(addr).call()

    def delta(self, addr):
        """What `addr` gained in the protocol (stake + claimable), minus the bonds it sent."""
        return self.money(addr) - self.money0[addr] - self.bonds.get(addr, 0)

    def watch_node(self, addr, segment_end, share=1.0):
        """The duties of `addr` as a watcher replaying `share` of the segments with `segment_end`."""
        node = self.nodes[addr]
        self.nodes[addr] = DisputeDuties(node.chain, node.db, node.span_hashes, segment_end=segment_end, watch_share=share)

    def open(self, challenger, check_index=0):
        dispute_id = self.nodes[challenger].open(self.round_id, check_index)
        self.bonds[challenger] = self.bonds.get(challenger, 0) + self.nodes[challenger]._state(dispute_id)["bond"]
        return dispute_id

    def play(self, until, max_blocks=200):  # an appealed vote adds its window, a draw and the appeal's two windows
        for _ in range(max_blocks):
            for node in self.nodes.values():
                node.tick()
            if until():
                return
            self.kit.mine(1)
        raise AssertionError("dispute did not settle")

    def settle(self, dispute_ids):
        d = self.nodes[self.trainer.address]
        self.play(lambda: all(d.view(i).phase == protocol.DISPUTE_RESOLVED for i in dispute_ids))
        self.kit.mine(self.task.reveal_verdicts_window + 1)
        self.kit.tx("TrainingRounds", "finalize", self.round_id, sender=self.kit.deployer)
        return self.rounds.rounds(self.round_id).call()[6]

    def trainer_won(self, dispute_id):
        return self.nodes[self.trainer.address].disputes.functions.disputes(dispute_id).call()[22]  # Dispute.trainer_won


def test_lazy_majority_loses_against_an_honest_trainer(dnet, tmp_path, case):
    c = case("lazy majority (2 of 3 contradict without replaying) disputes an honest trainer",
             expected="trainer wins both disputes, round accepted, trainer gains; each lazy member loses its bond")
    p = Play(dnet, tmp_path, 2)
    for lazy in p.contradicting:
        p.nodes[lazy].span_hashes = junk
    ids = [p.open(lazy) for lazy in p.contradicting]
    outcome = p.settle(ids)
    c.observe(f"outcome {Outcome(outcome).label}; trainer_won {[p.trainer_won(i) for i in ids]}; "
              f"trainer {p.delta(p.trainer.address):+d} wei; lazy {[p.delta(a) for a in p.contradicting]} wei")
    assert outcome == Outcome.ACCEPTED and all(p.trainer_won(i) for i in ids)
    assert p.delta(p.trainer.address) > 0 and all(p.delta(a) < 0 for a in p.contradicting)


def test_undisputed_lazy_majority_decides_nothing(dnet, tmp_path, case):
    c = case("lazy majority contradicts and does not dispute", expected="round accepted (no majority vote for fraud)")
    p = Play(dnet, tmp_path, 2)
    p.kit.mine_to(p.rounds.rounds(p.round_id).call()[9] + 1)  # past Round.deadline (ends + final commits + reveals)
    p.kit.tx("TrainingRounds", "finalize", p.round_id, sender=p.kit.deployer)
    outcome = p.rounds.rounds(p.round_id).call()[6]
    c.observe(f"outcome {Outcome(outcome).label}; lazy members {[p.delta(a) for a in p.contradicting]} wei")
    assert outcome == Outcome.ACCEPTED


def test_one_honest_member_convicts_a_forgery_the_majority_accepted(dnet, tmp_path, case):
    c = case("colluding majority (2 of 3) accepts a forgery; one honest member disputes",
             expected="the jury convicts: fraud, trainer slashed, the honest member paid")
    p = Play(dnet, tmp_path, 1, providers={})
    honest_member = p.contradicting[0]
    for addr, node in p.nodes.items():
        node.span_hashes = forged if addr == p.trainer.address else truth_of_forgery
    dispute_id = p.open(honest_member)
    outcome = p.settle([dispute_id])
    c.observe(f"outcome {Outcome(outcome).label}; trainer {p.delta(p.trainer.address):+d} wei; "
              f"honest member {p.delta(honest_member):+d} wei; colluders {[p.delta(a) for a in p.agreeing]} wei")
    assert outcome == Outcome.FRAUD and not p.trainer_won(dispute_id)
    assert p.delta(p.trainer.address) < 0 and p.delta(honest_member) > 0


def test_trainer_stalling_loses(dnet, tmp_path, case):
    c = case("a trainer that never posts its step hashes", expected="it loses the dispute: fraud slash")
    p = Play(dnet, tmp_path, 1, classes={dnet[1].trainer.address: StallingDuties})
    dispute_id = p.open(p.contradicting[0])
    outcome = p.settle([dispute_id])
    c.observe(f"outcome {Outcome(outcome).label}; trainer {p.delta(p.trainer.address):+d} wei")
    assert outcome == Outcome.FRAUD and p.delta(p.trainer.address) < 0


def test_challenger_stalling_loses(dnet, tmp_path, case):
    c = case("a challenger that never names a step", expected="it loses the dispute and its bond; round accepted")
    p = Play(dnet, tmp_path, 1)
    challenger = p.contradicting[0]
    p.nodes[challenger] = StallingDuties(p.nodes[challenger].chain, p.nodes[challenger].db, junk)
    dispute_id = p.open(challenger)
    outcome = p.settle([dispute_id])
    c.observe(f"outcome {Outcome(outcome).label}; challenger {p.delta(challenger):+d} wei; trainer {p.delta(p.trainer.address):+d} wei")
    assert outcome == Outcome.ACCEPTED and p.trainer_won(dispute_id) and p.delta(challenger) < 0


def test_lying_juror_minority_is_slashed(dnet, tmp_path, case):
    c = case("two jurors vote the lazy challenger's answer against their own replay (told it off-chain)",
             expected="the majority decides; each liar loses a share of its seat")
    p = Play(dnet, tmp_path, 1)
    challenger = p.contradicting[0]
    p.nodes[challenger].span_hashes = junk
    dispute_id = p.open(challenger)
    # the two lowest verifiers that are not the challenger lie (the jury is every other verifier: 6 of 7)
    liars = [a.address for a in dnet[1].verifiers if a.address != challenger][:2]
    for addr in liars:
        p.nodes[addr] = LyingJuror(p.nodes[addr].chain, p.nodes[addr].db, honest)
        p.nodes[addr].accomplice = p.nodes[challenger].db
    outcome = p.settle([dispute_id])
    c.observe(f"outcome {Outcome(outcome).label}; trainer_won {p.trainer_won(dispute_id)}; liars {[p.delta(a) for a in liars]} wei")
    assert p.trainer_won(dispute_id) and outcome == Outcome.ACCEPTED
    assert all(p.delta(a) < 0 for a in liars)


def test_jurors_that_do_not_replay_cannot_convict(dnet, tmp_path, case):
    c = case("a lazy challenger and a lazy jury majority (4 of 6 jurors answer without replaying) against an honest trainer",
             expected="their guesses count for nobody (the challenger's answer is hidden until the jury committed): "
                      "trainer wins; the guessing jurors neither paid nor slashed; the challenger loses its bond")
    p = Play(dnet, tmp_path, 1)
    challenger = p.contradicting[0]
    p.nodes[challenger].span_hashes = junk
    dispute_id = p.open(challenger)
    members = set(p.contradicting) | set(p.agreeing)  # paid by the round itself: not these
    lazy = [a.address for a in dnet[1].verifiers if a.address not in members][:4]
    for addr in lazy:
        p.nodes[addr].span_hashes = junk
    outcome = p.settle([dispute_id])
    d = p.nodes[p.trainer.address]
    votes = {j: d.disputes.functions.votes(dispute_id, j).call() for j in d.jury(dispute_id)}
    c.observe(f"outcome {Outcome(outcome).label}; trainer_won {p.trainer_won(dispute_id)}; jury votes {votes}; "
              f"lazy jurors {[p.delta(a) for a in lazy]} wei; challenger {p.delta(challenger):+d} wei")
    assert p.trainer_won(dispute_id) and outcome == Outcome.ACCEPTED
    seated = [a for a in lazy if a in votes]  # a verifier with no free stake at the draw sits out (jury of the rest)
    assert seated and all(votes[a] == protocol.VOTE_ABSTAIN for a in seated) and all(p.delta(a) == 0 for a in seated)
    assert p.delta(challenger) < 0 and p.delta(p.trainer.address) > 0


def test_a_watcher_convicts_a_forgery_outside_every_sample(dnet, tmp_path, case):
    c = case("every member agrees on a round whose forged segment no check sampled; a verifier off the committee "
             "watches every posted segment", expected="the watcher disputes that segment (open_watch) and the jury "
             "convicts: fraud, trainer slashed, the watcher paid; the members' honest verdicts cost them nothing")
    p = Play(dnet, tmp_path, 0)
    checks = p.rounds.round_samples_of(p.round_id).call()
    ends = p.rounds.round_check_ends_of(p.round_id).call()
    covered = {j for a, b in zip(checks, ends) for j in range(a, b)}
    m = TASK.steps_per_round // TASK.segment_steps
    forged_segment = next(j for j in range(m) if j not in covered)
    members = set(p.agreeing)
    watcher = next(a.address for a in dnet[1].verifiers if a.address not in members)

    def segment_end(round_id, segment, start_hash):  # the watcher's replay: only the forged segment ends elsewhere
        ev = p.nodes[watcher].chain.events("BoundariesPosted", round_id=round_id)[-1]["args"]["boundary_hashes"]
        posted = decode_hashes(ev)
        return hashlib.sha256(b"true" + posted[segment + 1]).digest() if segment == forged_segment else posted[segment + 1]

    def forged_span(d, steps):  # the segment as the forger posts it, and as an honest replay gives it
        h = [d.start_hash] + [hashlib.sha256(d.start_hash + i.to_bytes(4, "big")).digest() for i in range(1, d.span_steps)]
        return (h + [d.end_hash])[: steps + 1]

    def true_span(d, steps):
        return (forged_span(d, d.span_steps)[:-1] + [hashlib.sha256(b"true" + d.end_hash).digest()])[: steps + 1]

    for addr, node in p.nodes.items():
        node.span_hashes = forged_span if addr == p.trainer.address else true_span
    p.watch_node(watcher, segment_end)
    p.play(lambda: bool(p.nodes[p.trainer.address].chain.events("DisputeOpened", round_id=p.round_id)))
    opened = p.nodes[p.trainer.address].chain.events("DisputeOpened", round_id=p.round_id)
    dispute_id = opened[-1]["args"]["dispute_id"]
    outcome = p.settle([dispute_id])
    c.observe(f"forged segment {forged_segment} (checks cover {sorted(covered)}); opened by "
              f"{opened[-1]['args']['challenger'][:8]} over check index {opened[-1]['args']['check_index']}; "
              f"outcome {Outcome(outcome).label}; trainer {p.delta(p.trainer.address):+d} wei; watcher {p.delta(watcher):+d} wei")
    assert opened[-1]["args"]["challenger"] == watcher and opened[-1]["args"]["check_index"] == len(checks) + forged_segment
    assert outcome == Outcome.FRAUD and not p.trainer_won(dispute_id)
    assert p.delta(p.trainer.address) < 0 and p.delta(watcher) > 0


def test_a_trainer_that_hides_its_boundaries_is_convicted(dnet, tmp_path, case):
    c = case("a trainer does not post its boundaries (keeping its unsampled segments from the watchers)",
             expected="the verifier nodes convict it once the final flags' window closed (convict_unposted): fraud")
    p = Play(dnet, tmp_path, 0, post_boundaries=False)
    p.play(lambda: bool(p.nodes[p.trainer.address].chain.events("DisputeResolved", round_id=p.round_id)))
    resolved = p.nodes[p.trainer.address].chain.events("DisputeResolved", round_id=p.round_id)
    outcome = p.settle([resolved[0]["args"]["dispute_id"]])
    c.observe(f"resolved {[(r['args']['trainer_won'], r['args']['reason']) for r in resolved]}; outcome "
              f"{Outcome(outcome).label}; trainer {p.delta(p.trainer.address):+d} wei")
    assert [(r["args"]["trainer_won"], r["args"]["reason"]) for r in resolved] == [(False, "boundaries not posted")]
    assert outcome == Outcome.FRAUD and p.delta(p.trainer.address) < 0


def test_dispute_across_a_restart(dnet, tmp_path, case):
    c = case("every node restarted mid-dispute (after the jury's first commits)",
             expected="no move missed, no juror votes twice; the forgery is convicted")
    p = Play(dnet, tmp_path, 1)
    for addr, node in p.nodes.items():
        node.span_hashes = forged if addr == p.trainer.address else truth_of_forgery
    dispute_id = p.open(p.contradicting[0])
    d = p.nodes[p.trainer.address]
    p.play(lambda: d.view(dispute_id).phase == protocol.DISPUTE_JURY and d.view(dispute_id).n_committed > 0)
    p.nodes = {a: type(n)(p.net.client(n.chain.account), NodeDB(n.db.path), n.span_hashes) for a, n in p.nodes.items()}
    outcome = p.settle([dispute_id])
    votes = [d.disputes.functions.votes(dispute_id, j).call() for j in d.jury(dispute_id)]
    c.observe(f"outcome {Outcome(outcome).label}; jury votes {votes}")
    assert outcome == Outcome.FRAUD and set(votes) == {2}


def test_challenger_cannot_grind_the_jury_seed(dnet, tmp_path, case):
    c = case("a challenger grinds the jury seed: it names its step only in a block whose known parent hash gives a "
             "friendly seed (the pre-fix rule: seed = blockhash(name block - 1))",
             expected="the jury is drawn from blockhash(J), J = name block + 1, unknown when it named: the seed it "
                      "picked is never used; the dispute runs on as usual")
    p = Play(dnet, tmp_path, 1)
    challenger = p.contradicting[0]
    p.nodes[challenger] = GrindingChallenger(p.nodes[challenger].chain, p.nodes[challenger].db, junk)
    dispute_id = p.open(challenger)
    outcome = p.settle([dispute_id])
    grinder = p.nodes[challenger]
    w3 = grinder.chain.w3
    named = grinder.chain.events("StepNamed", dispute_id=dispute_id)[-1]
    (drawn,) = grinder.chain.events("JuryDrawn", dispute_id=dispute_id)
    j_block, seed = drawn["args"]["jury_block"], bytes(drawn["args"]["seed"])
    c.observe(f"grinder evaluated {len(grinder.known)} known seeds, named in block {named['blockNumber']} "
              f"(picked seed friendly: {grinder.picked is not None and is_friendly(grinder.picked)}); jury block "
              f"{j_block}, drawn seed friendly: {is_friendly(seed)}, among the known: {seed in grinder.known}; "
              f"outcome {Outcome(outcome).label}")
    assert grinder.picked is not None and grinder.picked in grinder.known
    # the old rule would have drawn with the seed it picked; the new one draws from the block after its move
    assert grinder.picked == protocol.compute_jury_seed(bytes(w3.eth.get_block(named["blockNumber"] - 1)["hash"]), dispute_id)
    assert j_block == protocol.compute_jury_block(named["blockNumber"]) == named["blockNumber"] + 1
    assert seed == protocol.compute_jury_seed(bytes(w3.eth.get_block(j_block)["hash"]), dispute_id)
    assert seed not in grinder.known and seed != grinder.picked
    assert drawn["blockNumber"] > j_block
    assert p.trainer_won(dispute_id) and outcome == Outcome.ACCEPTED  # the junk challenge still loses to the jury


def test_jury_is_drawn_by_a_bystander_when_the_parties_do_not(dnet, tmp_path, case):
    c = case("after name_step neither party draws the jury", expected="another verifier node draws it "
             "(DRAW_GRACE_BLOCKS after the jury block); the dispute settles")
    p = Play(dnet, tmp_path, 1)
    challenger = p.contradicting[0]
    for addr in (challenger, p.trainer.address):
        p.nodes[addr] = NoDrawDuties(p.nodes[addr].chain, p.nodes[addr].db, p.nodes[addr].span_hashes)
    p.nodes[challenger].span_hashes = junk
    dispute_id = p.open(challenger)
    outcome = p.settle([dispute_id])
    (drawn,) = p.nodes[challenger].chain.events("JuryDrawn", dispute_id=dispute_id)
    tx = p.nodes[challenger].chain.w3.eth.get_transaction(drawn["transactionHash"])
    c.observe(f"jury drawn in block {drawn['blockNumber']} (jury block {drawn['args']['jury_block']}) by "
              f"{tx['from'][:8]} (a party: {tx['from'] in (challenger, p.trainer.address)}); outcome {Outcome(outcome).label}")
    assert tx["from"] not in (challenger, p.trainer.address)
    assert drawn["blockNumber"] > drawn["args"]["jury_block"] + 1
    assert p.trainer_won(dispute_id) and outcome == Outcome.ACCEPTED


def test_a_captured_jury_is_reversed_by_the_whole_verifier_set(wide_dnet, tmp_path, case):
    c = case("a lazy challenger buys 8 of the 15 seats of the jury drawn on its dispute against an honest trainer "
             "(28 verifiers); the bribed jurors vote its answer, in the appeal too",
             expected="the bought jury's count convicts the trainer; the trainer appeals to the whole set (27 jurors), "
                      "whose honest majority reverses it: trainer wins, round accepted; every bribed juror slashed; "
                      "the challenger loses its bond")
    p = Play(wide_dnet, tmp_path, 1, task=WIDE_TASK)
    challenger = p.contradicting[0]
    p.nodes[challenger].span_hashes = junk
    for addr, node in list(p.nodes.items()):
        if addr not in (challenger, p.trainer.address):
            p.nodes[addr] = BribedJuror(node.chain, node.db, node.span_hashes)
            p.nodes[addr].accomplice = p.nodes[challenger].db
    dispute_id = p.open(challenger)
    outcome = p.settle([dispute_id])
    t = p.nodes[p.trainer.address]
    jury = t.jury(dispute_id)
    bribed = jury[: BribedJuror.BRIBED]
    first = [t.disputes.functions.votes(dispute_id, j).call() for j in jury]
    (appealed,) = t.chain.events("DisputeAppealed", dispute_id=dispute_id)
    appeal_id = appealed["args"]["appeal_id"]
    a = t.appeal_view(appeal_id)
    appeal_jury = t.appeal_jury(appeal_id)
    c.observe(f"first jury {len(jury)}: votes {first}; appeal {appeal_id} by {appealed['args']['appellant'][:8]} "
              f"(the trainer: {appealed['args']['appellant'] == p.trainer.address}); appeal jury {len(appeal_jury)}: "
              f"trainer {a.votes_trainer} / challenger {a.votes_challenger}; outcome {Outcome(outcome).label}; "
              f"bribed {[p.delta(b) for b in bribed]} wei; challenger {p.delta(challenger):+d} wei; "
              f"trainer {p.delta(p.trainer.address):+d} wei")
    assert len(jury) == protocol.JURY_MAX and first.count(protocol.VOTE_CHALLENGER) == BribedJuror.BRIBED
    assert appealed["args"]["appellant"] == p.trainer.address
    assert len(appeal_jury) == len(p.kit.verifiers) - 1 and a.votes_trainer > a.votes_challenger == BribedJuror.BRIBED
    assert p.trainer_won(dispute_id) and outcome == Outcome.ACCEPTED
    assert all(p.delta(b) < 0 for b in bribed) and p.delta(challenger) < 0
