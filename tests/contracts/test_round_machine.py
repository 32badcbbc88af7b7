"""node/rounds.py (the round's state machine) held against TrainingRounds on random schedules.

Hypothesis draws a sequence of (action, blocks to mine first); each action is sent by the party
entitled to it with honest data, so only phase and timing decide. For every attempt:
- the contract accepts it iff `why_not_at(action, round, block it executes in)` is None;
- after each accepted transition the round's phase and deadlines are the ones node/rounds.py
  computes (compute_seal_deadline, compute_starts_deadline, compute_verdict_commit_deadline,
  compute_ends_deadline, compute_final_commit_deadline, compute_verdict_reveal_deadline);
- commit_final (the second commit_verdict, of the final flag, after the ends) and reveal_verdict
  (which waits for every member's final flag or that window's close) follow the same rules;
- finalize gives the outcome the rules give (compute_tally after the ends, compute_missed_outcome
  before them).
"""
import os

import pytest
from brownie import chain
from brownie.exceptions import VirtualMachineError
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import PARAMS, TRAINER_STAKE, RoundDriver, rand32
from node import protocol as P
from node import rounds as R
from node.chain.records import Round

GAS = {"gas_limit": 3_000_000}  # no estimation: the transaction executes in the next block, whatever it does
ACTIONS = list(R.Action)
# None: the action the round is waiting for (so walks get through whole rounds: the final flags' commits
# made a round 3 steps longer); else any action
st_action = st.sampled_from([None, None, None, None, *ACTIONS])
st_mine = st.sampled_from([0, 0, 0, 0, 1, 2, 3, 9, 11, P.BLOCKHASH_HORIZON + 3])
st_step = st.tuples(st_action, st_mine)


def read(c, round_id) -> Round:
    return Round.from_abi(round_id, tuple(c.rounds.rounds(round_id)), c.rounds.n_final_committed(round_id))


class Walk:
    """One task, rounds one after the other; sends each action as its rightful sender."""

    def __init__(self, c, deployer, trainer):
        self.c, self.deployer = c, deployer
        self.driver = RoundDriver(c, deployer, trainer, PARAMS)
        self.driver.commit()
        self.committed, self.finals, self.revealed, self.liars = set(), set(), set(), set()
        self.tried = {a: [0, 0] for a in ACTIONS}  # action -> [accepted, refused]

    @property
    def round_id(self):
        return self.driver.round_id

    def committee(self):
        return [m for m in self.driver.c.rounds.committee_of(self.round_id)]

    def send(self, action):
        """The transaction for `action`, or None when nobody is left to send it (e.g. every member committed)."""
        d, rid, c = self.driver, self.round_id, self.c
        if action == R.Action.SEAL:
            return lambda: c.rounds.seal(rid, {"from": self.deployer, **GAS})
        if action == R.Action.FINALIZE:
            return lambda: c.rounds.finalize(rid, {"from": self.deployer, **GAS})
        if action == R.Action.REVEAL_STARTS:
            samples = list(c.rounds.round_samples_of(rid)) or [0]
            return lambda: c.rounds.reveal_starts(rid, [d.trace.hashes[j] for j in samples], [f"bafy-{j}" for j in samples],
                                                  [d.trace.proof(j) for j in samples], {"from": d.trainer, **GAS})
        if action == R.Action.REVEAL_ENDS:
            ends = list(c.rounds.round_check_ends_of(rid)) or [1]
            return lambda: c.rounds.reveal_ends(rid, [d.trace.hashes[e] for e in ends], [d.trace.proof(e) for e in ends],
                                                "bafy-final", {"from": d.trainer, **GAS})
        members = [m for m in self.committee()]
        if action == R.Action.COMMIT_VERDICT:
            todo = [m for m in members if m not in self.committed]
            if not todo:
                return None
            m = todo[0]
            lie = len(self.committed) % 3 == 2  # some members contradict: every outcome of the tally shows up
            ends = [rand32() for _ in c.rounds.round_check_ends_of(rid)] if lie else d.true_ends()
            salt = rand32()
            d.salts[m] = (ends, True, True, salt)

            def tx():
                out = c.rounds.commit_verdict(rid, P.compute_verdict_commitment(rid, m, ends, True, True, salt), {"from": m, **GAS})
                self.committed.add(m)
                return out
            return tx
        if action == R.Action.COMMIT_FINAL:
            todo = [m for m in members if m in self.committed and m not in self.finals]
            if not todo:
                return None
            m = todo[0]
            final_ok = len(self.finals) % 4 != 3  # some final flags contradict too
            d.finals[m] = final_ok

            def tx():
                out = c.rounds.commit_verdict(rid, P.compute_final_commitment(rid, m, final_ok, d.salts[m][3]), {"from": m, **GAS})
                self.finals.add(m)
                return out
            return tx
        # a member can open its verdict once its final flag is committed (a member without one cannot
        # reveal at all, which the rules leave to the sender's checks); before the ends any committed member
        ready = self.finals if read(c, rid).phase == R.Phase.ENDS_REVEALED else self.committed
        todo = [m for m in members if m in ready and m not in self.revealed]
        if not todo:
            return None
        m = todo[0]
        ends, ok, _, salt = d.salts[m]
        final_ok = d.finals.get(m, True)

        def tx():
            out = c.rounds.reveal_verdict(rid, ends, ok, salt, True, final_ok, {"from": m, **GAS})
            self.revealed.add(m)
            return out
        return tx

    def due(self) -> R.Action:
        phase = read(self.c, self.round_id).phase
        members = self.committee()
        if phase == R.Phase.COMMITTED:
            return R.Action.SEAL
        if phase == R.Phase.SEALED:
            return R.Action.REVEAL_STARTS
        if phase == R.Phase.STARTS_REVEALED:
            return R.Action.COMMIT_VERDICT if len(self.committed) < len(members) else R.Action.REVEAL_ENDS
        if len(self.finals) < len(self.committed) and chain.height + 1 <= read(self.c, self.round_id).commit_deadline:
            return R.Action.COMMIT_FINAL
        return R.Action.REVEAL_VERDICT if len(self.revealed) < len(self.finals) else R.Action.FINALIZE

    def step(self, action, mine):
        if mine:
            chain.mine(mine)
        action = action or self.due()
        tx = self.send(action)
        if tx is None:
            return
        before = read(self.c, self.round_id)
        block = chain.height + 1  # the block the transaction executes in
        kw = {"seal_delay_blocks": PARAMS.seal_delay_blocks, "committee_size": len(self.committee())}
        expected = R.why_not_at(action, before, block, **kw)
        try:
            receipt = tx()
            accepted = True
        except VirtualMachineError as exc:
            accepted, reason = False, exc.revert_msg
        self.tried[action][0 if accepted else 1] += 1
        assert accepted == (expected is None), (
            f"{action.value} at block {block} on {before}: rules say {expected or 'allowed'}, "
            f"contract {'accepted' if accepted else 'refused: ' + str(reason)}")
        if accepted:
            self.check_transition(action, before, read(self.c, self.round_id), receipt.block_number)

    def check_transition(self, action, before, after, block):
        p = PARAMS
        if action == R.Action.SEAL:
            assert (after.phase, after.deadline) == (R.Phase.SEALED, R.compute_starts_deadline(block, p.reveal_window))
        elif action == R.Action.REVEAL_STARTS:
            cd = R.compute_verdict_commit_deadline(block, p.commit_verdicts_window)
            assert (after.phase, after.commit_deadline, after.deadline) == (
                R.Phase.STARTS_REVEALED, cd, R.compute_ends_deadline(cd, p.reveal_window))
        elif action == R.Action.REVEAL_ENDS:
            assert (after.phase, after.commit_deadline, after.deadline) == (
                R.Phase.ENDS_REVEALED, R.compute_final_commit_deadline(block, p.commit_verdicts_window),
                R.compute_verdict_reveal_deadline(block, p.commit_verdicts_window, p.reveal_verdicts_window))
        elif action == R.Action.COMMIT_FINAL:
            assert (after.phase, after.n_final_committed) == (R.Phase.ENDS_REVEALED, before.n_final_committed + 1)
        elif action == R.Action.FINALIZE:
            want = (P.compute_tally(before.n_revealed, before.n_contradicting, p.quorum)
                    if before.phase == R.Phase.ENDS_REVEALED else R.compute_missed_outcome(before.phase))
            assert (after.phase, after.outcome) == (R.Phase.FINALIZED, want)
            self.next_round()

    def next_round(self):
        # a missed deadline costs the trainer stake: top it up so the walk goes on with rounds
        trainer = self.driver.trainer
        if self.c.sm.stake_of(trainer) < TRAINER_STAKE:
            self.c.sm.stake(P.TRAINER, {"from": trainer, "value": TRAINER_STAKE})
        self.driver.canonical = bytes(self.c.registry.tasks(self.driver.task_id).dict()["canonical_hash"])
        self.driver.commit()
        self.committed, self.finals, self.revealed = set(), set(), set()
        new = read(self.c, self.round_id)
        assert new.phase == R.Phase.COMMITTED
        assert new.deadline == R.compute_seal_deadline(new.commit_block, PARAMS.seal_delay_blocks)


TOTALS = {a: [0, 0] for a in ACTIONS}


@settings(max_examples=int(os.environ.get("TRAINCHAIN_MACHINE_EXAMPLES", 12)), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st_step, min_size=10, max_size=48))
def test_rules_match_the_contract_on_random_schedules(staked, deployer, trainer, steps):
    chain.snapshot()
    try:
        walk = Walk(staked, deployer, trainer)
        for action, mine in steps:
            walk.step(action, mine)
        for a, (ok, no) in walk.tried.items():
            TOTALS[a][0] += ok
            TOTALS[a][1] += no
    finally:
        chain.revert()


def test_walks_saw_every_action_accepted_and_refused(staked):
    """Runs after the walks (file order): each action must have been both allowed and refused."""
    for action, (ok, no) in TOTALS.items():
        assert ok > 0 and no > 0, f"{action.value}: accepted {ok}, refused {no} over the walks: {TOTALS}"


@pytest.mark.parametrize("action", ACTIONS)
def test_safe_to_send_means_allowed_in_the_next_block_too(task, action):
    """why_not (what nodes consult at head h) allows an action only if the contract allows it in h and h+1."""
    task.commit()
    rnd = read(task.c, task.round_id)
    head = chain.height
    for h in range(head, head + 300, 7):
        if R.why_not(action, rnd, h, seal_delay_blocks=PARAMS.seal_delay_blocks, committee_size=3) is None:
            for b in (h, h + 1):
                assert R.why_not_at(action, rnd, b, seal_delay_blocks=PARAMS.seal_delay_blocks, committee_size=3) is None
