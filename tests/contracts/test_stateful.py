"""Hypothesis stateful test over StakeManager + TrainingRounds (+ ModelOracle).

Random sequences of stake / unstake / withdraw / claim / create / commit / seal / reveal /
verdicts / finalize / mine. After every step:
- StakeManager balance == Σ stakes + Σ pending + Σ claimable + treasury;
  TrainingRounds balance == Σ task pools (the "contract balances" invariant, split per contract);
- per address, money is conserved: stake + pending + withdrawn == deposited - slashed, and
  claimable + claimed == rewards + slash proceeds credited; so a slashed party never ends with
  more than it staked;
- reservations (issue #13, attack 7): reserved == the trainer reservations of the open rounds the address
  trains + one seat reservation per open committee it sits on, never above its stake; a sealed
  committee holds no verifier whose free stake was below a seat; a trainer's open rounds never
  reserve more than it staked (one stake cannot back several tasks' minimums); a member short of a
  free seat holds what it had (seat_shortfall), never more than its stake;
- a reveal whose committed flag (starts_ok) differs from the commitment is refused (attack 5), and so is
  one whose final flag differs from its final commitment (the second commit_verdict, after the ends);
  no reveal passes before every member that committed a verdict committed its final flag or that
  window closed, and a round never holds more final commitments than verdict commitments;
- each task's canonical version only increases, by one per accepted round;
- a sealed committee never holds a verifier opted out of the task, nor one that opted in at or
  after the commit block;
- each task's pool reservation is one round's cost while it has an open round, else 0, and never
  more than its pool; a closed task gets no new round (issue #13: reservations, close + withdraw).
"""
import os
from collections import Counter, defaultdict

import pytest

from brownie import accounts, chain
from brownie.exceptions import VirtualMachineError
from hypothesis import HealthCheck, given, settings, strategies as st

from node import protocol as P
from node.chain.records import TaskParams
from conftest import MIN_TRAINER, MIN_VERIFIER, Trace, deploy_all, rand32

PARAMS = TaskParams(steps_per_round=16, segment_steps=1, samples=2, committee_size=3, quorum=2, seal_delay_blocks=1,
                    reveal_window=4, commit_verdicts_window=4, reveal_verdicts_window=4)
ZERO = "0x" + "00" * 20


st_account = st.integers(min_value=1, max_value=9)
st_amount = st.sampled_from([1, 10**17, 10**18, 2 * 10**18]) | st.integers(min_value=1, max_value=3 * 10**18)
st_pick = st.integers(min_value=0, max_value=15)
st_bool = st.booleans()
st_blocks = st.integers(min_value=1, max_value=12)


class Machine:
    """The model beside the chain. Class attributes deployer, c, people, trainers: set by the test.

    brownie's state_machine helper fails under mypyc here, and hypothesis' RuleBasedStateMachine
    under brownie's hypothesis profile ran walks of one or two steps; so hypothesis draws the
    whole list of actions and the test applies them, checking every invariant after each.
    """

    def __init__(self):
        chain.revert()  # back to the fresh deployment
        chain.snapshot()
        self.ledger = defaultdict(Counter)  # address -> deposited/withdrawn/slashed/rewards/claimed
        self.traces = {}                    # round id -> Trace
        self.salts = {}                     # (round id, verifier) -> (ends, data_root_ok, starts_ok, salt)
        self.finals = {}                    # (round id, verifier) -> final_ok of its final commitment
        self.versions = {}                  # task id -> version count seen
        self.open_rounds = set()
        self.closed_open = {}               # closed task id -> its open round when closed (0: none)
        self.progress = Counter()

    def check_invariants(self):
        self.invariant_balances()
        self.invariant_stake_reservations()
        self.invariant_versions_only_increase()
        self.invariant_reservations()
        self.invariant_final_commitments()

    # ------------------------------------------------------------ helpers
    def _tx(self, fn, *args):
        try:
            tx = fn(*args)
        except VirtualMachineError as exc:
            self.progress["revert: " + str(exc.revert_msg)] += 1
            return None
        self.progress[fn._name.split(".")[-1]] += 1
        if "FinalCommitted" in tx.events:
            self.progress["commit_final"] += 1
        for ev in tx.events:
            name, d = ev.name, ev
            if name == "Staked":
                self.ledger[d["who"]]["deposited"] += d["amount"]
            elif name == "Withdrawn":
                self.ledger[d["who"]]["withdrawn"] += d["amount"]
            elif name == "Claimed":
                self.ledger[d["who"]]["claimed"] += d["amount"]
            elif name == "Credited":
                self.ledger[d["who"]]["rewards"] += d["amount"]
            elif name == "Slashed":
                self.ledger[d["who"]]["slashed"] += d["amount"]
                if d["to"] != ZERO:
                    self.ledger[d["to"]]["rewards"] += d["amount"]
        return tx

    def _round(self, pick, phase):
        ids = sorted(r for r in self.open_rounds if self.c.rounds.rounds(r).dict()["phase"] == phase)
        return ids[pick % len(ids)] if ids else None

    def _committee(self, round_id):
        return [accounts.at(a) for a in self.c.rounds.committee_of(round_id)]

    # ------------------------------------------------------------ staking
    def stake_some(self, n_verifiers):
        """Start most runs with a trainer and some verifiers staked, so rounds can happen."""
        self._tx(self.c.sm.stake, P.TRAINER, {"from": accounts[1], "value": 2 * MIN_TRAINER})
        for person in accounts[2:2 + n_verifiers]:
            self._tx(self.c.sm.stake, P.VERIFIER, {"from": person, "value": MIN_VERIFIER + 10**17})
        self.rule_create()

    def rule_stake(self, who, amount):
        person = accounts[who]
        role = P.TRAINER if person.address in self.trainers else P.VERIFIER
        self._tx(self.c.sm.stake, role, {"from": person, "value": amount})

    def rule_unstake(self, who, amount):
        self._tx(self.c.sm.request_unstake, amount, {"from": accounts[who]})

    def rule_withdraw(self, who):
        self._tx(self.c.sm.withdraw, {"from": accounts[who]})

    def rule_claim(self, who):
        self._tx(self.c.sm.claim, {"from": accounts[who]})

    # ------------------------------------------------------------ rounds
    def rule_create(self):
        if self.c.registry.task_count() < 3:
            tx = self._tx(self.c.registry.create_task, "bafy-spec", rand32(), rand32(), "bafy-gen", PARAMS.as_tuple(),
                          {"from": self.deployer, "value": 3 * PARAMS.round_cost})
            if tx:
                self.versions[tx.events["TaskCreated"]["task_id"]] = 1

    def rule_close(self, pick, withdraw_only):
        """The creator closes a task (or withdraws what its open round no longer reserves)."""
        n = self.c.registry.task_count()
        if n == 0:
            return
        task_id = 1 + pick % n
        fn = self.c.registry.withdraw_pool if withdraw_only else self.c.registry.close_task
        if self._tx(fn, task_id, {"from": self.deployer}) and not withdraw_only:
            self.closed_open[task_id] = self.c.rounds.open_round(task_id)  # the only round allowed after close

    def rule_commit(self, pick, second_trainer):
        n = self.c.registry.task_count()
        if n == 0:
            return
        task_id = 1 + pick % n
        base = bytes(self.c.registry.tasks(task_id).dict()["canonical_hash"])
        trace = Trace(base, PARAMS.n_segments, PARAMS.steps_per_round)
        trainer = accounts[9] if second_trainer else accounts[1]
        tx = self._tx(self.c.rounds.commit, task_id, base, trace.data_root, trace.root, trace.proof(0), {"from": trainer})
        if tx:
            round_id = tx.events["RoundCommitted"]["round_id"]
            self.traces[round_id] = trace
            self.open_rounds.add(round_id)

    def rule_seal(self, pick):
        r = self._round(pick, P.Phase.COMMITTED)
        if r:
            chain.mine(PARAMS.seal_delay_blocks)
            if self._tx(self.c.rounds.seal, r, {"from": self.deployer}):
                rd = self.c.rounds.rounds(r).dict()
                seat = self.c.rounds.seat_reservation(r)
                assert seat == MIN_VERIFIER
                for m in self.c.rounds.committee_of(r):
                    assert self.c.sm.reserved(m) <= self.c.sm.stake_of(m), "a seat reserved more than the stake"
                    self.progress["seat short"] += self.c.rounds.seat_shortfall(r, m) > 0  # opt-outs hold (#13): nobody opted out, nobody opted in late
                    assert not self.c.sm.opted_out(rd["task_id"], m), "an opted-out verifier was drawn"
                    assert self.c.sm.opted_in_block(rd["task_id"], m) < rd["commit_block"], "a late opt-in was drawn"

    def rule_optout(self, who, pick, back_in):
        """A verifier opts out of a task, or back in."""
        n = self.c.registry.task_count()
        if n == 0:
            return
        fn = self.c.sm.optin if back_in else self.c.sm.optout
        self._tx(fn, 1 + pick % n, {"from": accounts[who]})

    def rule_reveal_starts(self, pick):
        r = self._round(pick, P.Phase.SEALED)
        if r:
            t, s = self.traces[r], list(self.c.rounds.round_samples_of(r))
            trainer = self.c.rounds.rounds(r).dict()["trainer"]
            self._tx(self.c.rounds.reveal_starts, r, [t.hashes[j] for j in s], ["bafy"] * len(s), [t.proof(j) for j in s],
                     {"from": trainer})

    def rule_commit_verdict(self, pick, member, lie):
        r = self._round(pick, P.Phase.STARTS_REVEALED)
        if r:
            committee = self._committee(r)
            self._commit_verdict(r, committee[member % len(committee)], lie)

    def _commit_verdict(self, r, v, lie):
        e, t = list(self.c.rounds.round_check_ends_of(r)), self.traces[r]
        ends = [rand32() if lie else t.hashes[j] for j in e]
        salt = rand32()
        starts_ok = not (lie and len(salt) and salt[0] & 1)  # some liars contradict by a committed flag instead
        if self._tx(self.c.rounds.commit_verdict, r, P.compute_verdict_commitment(r, v.address, ends, True, starts_ok, salt), {"from": v}):
            self.salts[(r, v.address)] = (ends, True, starts_ok, salt)

    def rule_reveal_ends(self, pick):
        r = self._round(pick, P.Phase.STARTS_REVEALED)
        if r:
            self._reveal_ends(r)

    def _reveal_ends(self, r):
        t, e = self.traces[r], list(self.c.rounds.round_check_ends_of(r))
        trainer = self.c.rounds.rounds(r).dict()["trainer"]
        if True:
            self._tx(self.c.rounds.reveal_ends, r, [t.hashes[j] for j in e], [t.proof(j) for j in e], "bafy-final",
                     {"from": trainer})

    def rule_commit_final(self, pick, member, final_ok):
        """A member's second commitment (its final flag, the verdict's salt), after the ends."""
        r = self._round(pick, P.Phase.ENDS_REVEALED)
        if r:
            committee = self._committee(r)
            self._commit_final(r, committee[member % len(committee)], final_ok)

    def _commit_final(self, r, v, final_ok):
        salt = self.salts[(r, v.address)][3] if (r, v.address) in self.salts else rand32()
        if self._tx(self.c.rounds.commit_verdict, r, P.compute_final_commitment(r, v.address, final_ok, salt), {"from": v}):
            assert (r, v.address) in self.salts, "a final flag committed without a verdict commitment"
            assert (r, v.address) not in self.finals, "a second final commitment"
            self.finals[(r, v.address)] = final_ok

    def _reveal_verdict(self, r, v, starts_ok, final_ok):
        ends, ok, committed, salt = self.salts[(r, v.address)]
        before = self.c.rounds.rounds(r).dict()
        n_final = self.c.rounds.n_final_committed(r)
        block = chain.height + 1  # the block the transaction executes in
        tx = self._tx(self.c.rounds.reveal_verdict, r, ends, ok, salt, starts_ok, final_ok, {"from": v})
        if tx:
            assert starts_ok == committed, "a flag other than the committed one opened the commitment"
            assert self.finals.get((r, v.address)) == final_ok, "a final flag other than the committed one was accepted"
            assert n_final == before["n_committed"] or block > before["commit_deadline"], "a reveal while the committee was still committing"
        return tx

    def rule_reveal_verdict(self, pick, member, starts_ok, final_ok):
        r = self._round(pick, P.Phase.ENDS_REVEALED)
        if r:
            committee = self._committee(r)
            v = committee[member % len(committee)]
            if (r, v.address) in self.salts:
                self._reveal_verdict(r, v, starts_ok, final_ok)

    def rule_finalize(self, pick):
        if self.open_rounds:
            r = sorted(self.open_rounds)[pick % len(self.open_rounds)]
            if self._tx(self.c.rounds.finalize, r, {"from": self.deployer}):
                self.open_rounds.discard(r)

    def rule_play_round(self, pick, liars, absent, trainer_quits):
        """Commit (if needed) and drive one round to its end: bitmasks over the committee say
        who lies and who stays absent; the trainer may walk away at some phase."""
        if not self.open_rounds:
            self.rule_commit(pick, False)
        if not self.open_rounds:
            return
        r = sorted(self.open_rounds)[pick % len(self.open_rounds)]
        for _ in range(8):
            phase = self.c.rounds.rounds(r).dict()["phase"]
            if phase == P.Phase.FINALIZED or phase == trainer_quits:
                break
            if phase == P.Phase.COMMITTED:
                self.rule_seal(0 if len(self.open_rounds) == 1 else pick)
            elif phase == P.Phase.SEALED:
                self.rule_reveal_starts(0 if len(self.open_rounds) == 1 else pick)
            elif phase == P.Phase.STARTS_REVEALED:
                committee = self._committee(r)
                for i, v in enumerate(committee):
                    if not absent >> i & 1 and (r, v.address) not in self.salts:
                        self._commit_verdict(r, v, liars >> i & 1)
                if any(absent >> i & 1 for i in range(len(committee))):
                    chain.mine(PARAMS.commit_verdicts_window + 1)
                self._reveal_ends(r)
            elif phase == P.Phase.ENDS_REVEALED:
                committee = self._committee(r)
                for i, v in enumerate(committee):  # the final flags first: some liars contradict by theirs
                    if (r, v.address) in self.salts and (r, v.address) not in self.finals:
                        self._commit_final(r, v, not (liars >> i & 1 and self.salts[(r, v.address)][3][0] & 2))
                for v in committee:
                    if (r, v.address) in self.salts and not self.c.rounds.revealed(r, v):
                        self._reveal_verdict(r, v, self.salts[(r, v.address)][2], self.finals.get((r, v.address), True))
            if self.c.rounds.rounds(r).dict()["phase"] == phase:  # stuck: let the deadline pass
                chain.mine(PARAMS.reveal_window + PARAMS.commit_verdicts_window + 2)
                if self._tx(self.c.rounds.finalize, r, {"from": self.deployer}):
                    self.open_rounds.discard(r)
        if r in self.open_rounds and self._tx(self.c.rounds.finalize, r, {"from": self.deployer}):
            self.open_rounds.discard(r)

    def rule_mine(self, blocks):
        self.progress["mine"] += 1
        chain.mine(blocks)

    # ------------------------------------------------------------ invariants
    def invariant_balances(self):
        sm, people = self.c.sm, self.people
        stakers = {p.address: sm.stakers(p).dict() for p in people}
        claimable = {p.address: sm.claimable(p) for p in people}
        total = sum(s["amount"] + s["pending"] for s in stakers.values()) + sum(claimable.values())
        total += sm.claimable(self.deployer)  # the creator's withdrawn pools (close_task / withdraw_pool)
        assert sm.balance() == total + sm.treasury(), "stake manager balance != stakes + pending + claimable + treasury"
        pools = sum(self.c.registry.tasks(t).dict()["pool"] for t in range(1, self.c.registry.task_count() + 1))
        assert self.c.registry.balance() == pools, "registry balance != task pools"
        assert self.c.rounds.balance() == 0, "rounds holds no ether (pools are the registry's)"
        for who, s in stakers.items():
            led = self.ledger[who]
            assert s["amount"] + s["pending"] + led["withdrawn"] == led["deposited"] - led["slashed"]
            assert claimable[who] + led["claimed"] == led["rewards"]
            if led["slashed"]:
                assert s["amount"] + s["pending"] + led["withdrawn"] < led["deposited"]

    def invariant_stake_reservations(self):
        expected = Counter()
        for r in self.open_rounds:
            expected[self.c.rounds.rounds(r).dict()["trainer"]] += self.c.rounds.trainer_reservation(r)
            for m in self.c.rounds.committee_of(r):
                expected[m] += self.c.rounds.seat_reservation(r) - self.c.rounds.seat_shortfall(r, m)
        for p in self.people:
            reserved = self.c.sm.reserved(p)
            assert reserved == expected[p.address], "reserved != the open rounds' reservations"
            assert reserved <= self.c.sm.stake_of(p), "reserved above the stake"
            assert self.c.sm.stakers(p).dict()["locks"] == 0, "rounds lock nothing any more: they reserve"

    def invariant_reservations(self):
        for task_id in range(1, self.c.registry.task_count() + 1):
            open_round = self.c.rounds.open_round(task_id)
            reserved = self.c.registry.reserved(task_id)
            assert reserved == (PARAMS.round_cost if open_round else 0), "reservation != one round's cost per open round"
            assert reserved <= self.c.registry.tasks(task_id).dict()["pool"], "reservation above the pool"
            if task_id in self.closed_open:
                assert open_round in (0, self.closed_open[task_id]), "a closed task got a new round"

    def invariant_final_commitments(self):
        for r in self.open_rounds:
            n_final = self.c.rounds.n_final_committed(r)
            assert n_final == sum(1 for (rid, _) in self.finals if rid == r), "final commitments != the accepted ones"
            assert n_final <= self.c.rounds.rounds(r).dict()["n_committed"], "more final commitments than verdicts"

    def invariant_versions_only_increase(self):
        for task_id, seen in self.versions.items():
            now = self.c.oracle.version_count(task_id)
            assert now >= seen
            assert now == 1 + self.c.registry.tasks(task_id).dict()["rounds_accepted"]
            self.versions[task_id] = now

Machine.totals = Counter()

ACTIONS = {
    "rule_stake": {"who": st_account, "amount": st_amount},
    "rule_unstake": {"who": st_account, "amount": st_amount},
    "rule_withdraw": {"who": st_account},
    "rule_claim": {"who": st_account},
    "rule_create": {},
    "rule_close": {"pick": st_pick, "withdraw_only": st_bool},
    "rule_optout": {"who": st_account, "pick": st_pick, "back_in": st_bool},
    "rule_commit": {"pick": st_pick, "second_trainer": st_bool},
    "rule_seal": {"pick": st_pick},
    "rule_reveal_starts": {"pick": st_pick},
    "rule_commit_verdict": {"pick": st_pick, "member": st_pick, "lie": st_bool},
    "rule_reveal_ends": {"pick": st_pick},
    "rule_commit_final": {"pick": st_pick, "member": st_pick, "final_ok": st_bool},
    "rule_reveal_verdict": {"pick": st_pick, "member": st_pick, "starts_ok": st_bool, "final_ok": st_bool},
    "rule_finalize": {"pick": st_pick},
    "rule_play_round": {"pick": st_pick, "liars": st.integers(min_value=0, max_value=7), "absent": st.integers(min_value=0, max_value=7),
                        "trainer_quits": st.sampled_from([None, P.Phase.COMMITTED, P.Phase.SEALED, P.Phase.STARTS_REVEALED])},
    "rule_mine": {"blocks": st_blocks},
}
st_step = st.one_of([st.tuples(st.just(name), st.fixed_dictionaries(kwargs)) for name, kwargs in ACTIONS.items()])


@pytest.fixture(scope="module")
def fresh(deployer):
    Machine.deployer = deployer
    Machine.c = deploy_all(deployer)
    Machine.people = list(accounts[1:10])
    Machine.trainers = {accounts[1].address, accounts[9].address}
    Machine.totals.clear()
    chain.snapshot()
    yield


@settings(max_examples=int(os.environ.get("TRAINCHAIN_STATEFUL_EXAMPLES", 6)), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(n_verifiers=st.integers(min_value=2, max_value=6), first_round=st.fixed_dictionaries(ACTIONS["rule_play_round"]),
       steps=st.lists(st_step, min_size=5, max_size=20))
def test_random_action_sequences_keep_invariants(fresh, n_verifiers, first_round, steps):
    m = Machine()
    m.stake_some(n_verifiers)
    m.check_invariants()
    m.rule_play_round(**first_round)  # every walk starts with one round driven to its end
    m.check_invariants()
    for name, kwargs in steps:
        getattr(m, name)(**kwargs)
        m.check_invariants()
    Machine.totals.update(m.progress)


def test_random_walks_exercised_every_step(fresh):
    """Runs after the walks (file order): they must have done real rounds, not just reverts."""
    for step in ("stake", "create_task", "commit", "seal", "reveal_starts", "commit_verdict", "reveal_ends", "commit_final",
                 "reveal_verdict", "finalize"):
        assert Machine.totals[step] > 0, f"no successful {step} in any walk: {dict(Machine.totals)}"
