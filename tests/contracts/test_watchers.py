"""Watchers (issue #15): after its ends reveal a trainer posts every boundary hash h_0 .. h_M (Disputes.post_boundaries);
until the round's deadline any staked verifier may dispute any segment (open_watch), not only the sampled ones. A
trainer that does not post, or posts boundaries off its trace root, is convicted by anyone (convict_unposted,
convict_off_root). One deployment per module; brownie's fn_isolation reverts each test."""
import brownie
from brownie import accounts, chain
from hypothesis import given, settings, strategies as st

from disputes_kit import PARAMS, DisputeDriver, dc, money, play_round_to_reveals, rand32, rd  # noqa: F401  (fixtures)
from node import protocol as P
from node.rounds import Outcome

MANIFEST = "bafy-manifest"


def mine_past(block: int):
    """Mine until the next transaction lands after `block`."""
    chain.mine(max(0, block - chain.height))


def rnd(dc, rd) -> dict:
    return dc.rounds.rounds(rd.round_id).dict()


def unsampled_segment(rd) -> int:
    """A segment no check replays (the dealt-out checks and their 2-segment last span)."""
    covered = {j for a, b in zip(rd.samples, rd.ends) for j in range(a, b)}
    return next(j for j in range(PARAMS.steps_per_round // PARAMS.segment_steps) if j not in covered)


class WatchDriver(DisputeDriver):
    """A watcher's dispute over one segment: the span (segment, segment + 1) of the posted boundaries."""

    def __init__(self, c, rd, watcher, segment):
        super().__init__(c, rd, watcher, 0)
        self.segment = segment
        self.span_steps = PARAMS.segment_steps
        h = rd.trace.hashes
        self.step_hashes = [h[segment]] + [rand32() for _ in range(self.span_steps - 1)] + [h[segment + 1]]

    def open(self, sender=None, value=None, segment=None, hashes=None):
        tx = self.c.disputes.open_watch(self.rd.round_id, self.segment if segment is None else segment,
                                        self.rd.trace.hashes if hashes is None else hashes,
                                        {"from": sender or self.challenger, "value": self.bond if value is None else value})
        self.dispute_id = tx.events["DisputeOpened"]["dispute_id"]
        self.posted_bond = tx.value
        return tx


def posted_round(dc, rd, hashes=None):
    play_round_to_reveals(rd)
    return dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes if hashes is None else hashes, MANIFEST,
                                       {"from": rd.trainer})


def outside_watcher(rd, verifiers):
    return next(v for v in verifiers if v not in rd.committee)


def test_post_boundaries_checks(dc, rd, outsider):
    rd.commit()
    with brownie.reverts("disputes: only the trainer"):
        dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": outsider})
    with brownie.reverts("disputes: not awaiting boundaries"):  # before the ends reveal: ends still hidden
        dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": rd.trainer})
    rd.seal()
    rd.reveal_starts()
    for v in rd.committee:
        rd.commit_verdict(v)
    rd.reveal_ends()
    with brownie.reverts("disputes: not M + 1 boundaries"):
        dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes[:-1], MANIFEST, {"from": rd.trainer})
    tx = dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": rd.trainer})
    ev = tx.events["BoundariesPosted"]
    assert [bytes(h) for h in ev["boundary_hashes"]] == [bytes(h) for h in rd.trace.hashes]
    assert ev["manifest_cid"] == MANIFEST
    with brownie.reverts("disputes: boundaries already posted"):
        dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": rd.trainer})


def test_boundaries_are_due_by_the_final_flags_window(dc, rd):
    play_round_to_reveals(rd)
    mine_past(rnd(dc, rd)["commit_deadline"])
    with brownie.reverts("disputes: not awaiting boundaries"):
        dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": rd.trainer})


def test_a_watcher_convicts_a_forgery_outside_every_sample(dc, rd, trainer, verifiers):
    """Every member agrees (the forged segment is in nobody's sample); a verifier off the committee replays the
    posted segment, disputes it, and the jury (answering with its replays) convicts: the round ends in fraud."""
    posted_round(dc, rd)
    segment = unsampled_segment(rd)
    watcher = outside_watcher(rd, verifiers)
    wd = WatchDriver(dc, rd, watcher, segment)
    tx = wd.open()
    assert tx.events["DisputeOpened"]["check_index"] == len(rd.samples) + segment
    assert (bytes(wd.state["start_hash"]), bytes(wd.state["end_hash"])) == (bytes(rd.trace.hashes[segment]),
                                                                            bytes(rd.trace.hashes[segment + 1]))
    assert wd.state["span_steps"] == PARAMS.segment_steps
    wd.post_steps()
    wd.name_step(step=1)
    stake0, w0 = dc.sm.stake_of(trainer), money(dc, watcher)
    slash = P.compute_slash(dc.rounds.trainer_reservation(rd.round_id), PARAMS.trainer_slash_bps)
    wd.vote({j: False for j in wd.jury})
    assert wd.resolve().events["DisputeResolved"]["trainer_won"] is False
    assert dc.sm.stake_of(trainer) == stake0 - slash
    assert money(dc, watcher) > w0  # its bond back (claimable) and the fraud reward share
    mine_past(rnd(dc, rd)["deadline"])
    rd.finalize()
    assert rd.outcome == Outcome.FRAUD
    assert dc.disputes.balance() == 0


def test_a_false_watch_loses_its_bond(dc, rd, trainer, verifiers):
    posted_round(dc, rd)
    watcher = outside_watcher(rd, verifiers)
    wd = WatchDriver(dc, rd, watcher, unsampled_segment(rd))
    wd.open()
    wd.post_steps()
    wd.name_step(step=1)
    w0 = money(dc, watcher)
    wd.vote({j: True for j in wd.jury})
    assert wd.resolve().events["DisputeResolved"]["trainer_won"] is True
    assert money(dc, watcher) == w0  # the bond is gone (paid in with the open)
    mine_past(rnd(dc, rd)["deadline"])
    rd.finalize()
    assert rd.outcome == Outcome.ACCEPTED


def test_open_watch_checks(dc, rd, trainer, verifiers, outsider):
    play_round_to_reveals(rd)
    watcher = outside_watcher(rd, verifiers)
    wd = WatchDriver(dc, rd, watcher, 0)
    with brownie.reverts("disputes: not the posted boundaries"):  # nothing posted yet
        wd.open()
    dc.disputes.post_boundaries(rd.round_id, rd.trace.hashes, MANIFEST, {"from": trainer})
    with brownie.reverts("disputes: not the posted boundaries"):
        wd.open(hashes=[rand32() for _ in rd.trace.hashes])
    with brownie.reverts("disputes: no such segment"):
        wd.open(segment=len(rd.trace.hashes) - 1)
    with brownie.reverts("disputes: not a verifier"):
        wd.open(sender=outsider)
    with brownie.reverts("disputes: bond below rules.compute_challenger_bond"):
        wd.open(value=wd.bond - 1)
    wd.open()
    with brownie.reverts("rounds: not a contradicting member"):  # one dispute per verifier and round
        wd.open(segment=1)
    other = WatchDriver(dc, rd, next(v for v in verifiers if v not in rd.committee and v != watcher), 1)
    mine_past(rnd(dc, rd)["deadline"])
    with brownie.reverts("rounds: not open to disputes"):
        other.open()


def test_a_trainer_that_does_not_post_its_boundaries_is_convicted(dc, rd, trainer, outsider):
    play_round_to_reveals(rd)
    with brownie.reverts("disputes: boundaries not due yet"):
        dc.disputes.convict_unposted(rd.round_id, {"from": outsider})
    mine_past(rnd(dc, rd)["commit_deadline"])
    stake0, o0 = dc.sm.stake_of(trainer), money(dc, outsider)
    slash = P.compute_slash(dc.rounds.trainer_reservation(rd.round_id), PARAMS.trainer_slash_bps)
    tx = dc.disputes.convict_unposted(rd.round_id, {"from": outsider})
    assert tx.events["DisputeResolved"]["reason"] == "boundaries not posted"
    assert dc.sm.stake_of(trainer) == stake0 - slash
    _, to_caller, _ = P.compute_dispute_payouts(slash, 0, PARAMS.verifier_reward_wei, 0, PARAMS.fraud_reward_bps)
    assert money(dc, outsider) == o0 + to_caller
    with brownie.reverts("disputes: trainer already convicted"):
        dc.disputes.convict_unposted(rd.round_id, {"from": accounts[9]})  # the slash is taken once per round
    mine_past(rnd(dc, rd)["deadline"])
    rd.finalize()
    assert rd.outcome == Outcome.FRAUD


def test_posted_boundaries_cannot_be_convicted_as_unposted(dc, rd, outsider):
    posted_round(dc, rd)
    mine_past(rnd(dc, rd)["commit_deadline"])
    with brownie.reverts("disputes: boundaries posted"):
        dc.disputes.convict_unposted(rd.round_id, {"from": outsider})


def test_boundaries_off_the_trace_root_are_convicted(dc, rd, trainer, outsider):
    """A trainer could post other boundaries than its trace's (around a forged segment, to steer watchers): the list
    is checked against the trace root only when someone shows it is off (the whole tree, paid by the convicting call)."""
    play_round_to_reveals(rd)
    fake = list(rd.trace.hashes)
    fake[1] = rand32()
    dc.disputes.post_boundaries(rd.round_id, fake, MANIFEST, {"from": trainer})
    with brownie.reverts("disputes: not the posted boundaries"):
        dc.disputes.convict_off_root(rd.round_id, rd.trace.hashes, {"from": outsider})
    tx = dc.disputes.convict_off_root(rd.round_id, fake, {"from": outsider})
    assert tx.events["DisputeResolved"]["reason"] == "boundaries off the trace root"
    mine_past(rnd(dc, rd)["deadline"])
    rd.finalize()
    assert rd.outcome == Outcome.FRAUD


def test_boundaries_on_the_trace_root_are_not_convicted(dc, rd, outsider):
    posted_round(dc, rd)
    with brownie.reverts("disputes: boundaries match the trace root"):
        dc.disputes.convict_off_root(rd.round_id, rd.trace.hashes, {"from": outsider})


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_merkle_root_matches_the_reference(dc, values):
    assert bytes(dc.rules.compute_merkle_root(values)) == P.compute_merkle_root(values)


def test_each_watch_doubles_the_next_bond_and_a_lost_watch_is_burned(dc, rd, trainer, verifiers):
    """Any verifier may watch any round, so colluders could force jury after jury on an honest trainer until one is
    captured: the k-th watch of a round posts 2^(k-1) bonds (rules.compute_watch_bond), and a lost watch pays the
    jurors and the trainer's gas and burns the rest (to the trainer, a cartel's bogus watches would come back to it)."""
    posted_round(dc, rd)
    first, second = [v for v in verifiers if v not in rd.committee][:2]
    w1, w2 = WatchDriver(dc, rd, first, 0), WatchDriver(dc, rd, second, 1)
    base = w1.bond
    assert dc.disputes.watch_bond_for(rd.round_id, PARAMS.verifier_reward_wei) == base
    w1.open()
    assert dc.disputes.watch_count(rd.round_id) == 1
    assert dc.disputes.watch_bond_for(rd.round_id, PARAMS.verifier_reward_wei) == P.compute_watch_bond(base, 1) == 2 * base
    with brownie.reverts("disputes: bond below rules.compute_challenger_bond"):
        w2.open(value=2 * base - 1)
    w2.open(value=2 * base)
    w1.post_steps()
    w1.name_step(step=1)
    trainer0, burned0 = money(dc, trainer), dc.sm.claimable(ZERO)
    w1.vote({j: True for j in w1.jury})
    tx = w1.resolve()
    assert tx.events["DisputeResolved"]["trainer_won"] is True
    per_juror, to_trainer, burned = P.compute_dispute_payouts(w1.posted_bond, len(w1.jury), PARAMS.verifier_reward_wei,
                                                              P.DEFENDER_GAS_ALLOWANCE * w1.state["gas_price"], 0)
    assert burned > 0 and money(dc, trainer) == trainer0 + to_trainer
    assert dc.sm.claimable(ZERO) == burned0 + burned
    assert per_juror * len(w1.jury) + to_trainer + burned == w1.posted_bond


ZERO = "0x" + "00" * 20


@settings(max_examples=20, deadline=None)
@given(bond=st.integers(0, 10**21), n=st.integers(0, 300))
def test_watch_bond_matches_the_reference(dc, bond, n):
    assert dc.rules.compute_watch_bond(bond, n) == P.compute_watch_bond(bond, n)
