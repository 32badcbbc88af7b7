"""Epochs (#14): the epoch rules of node/protocol.py held against lib/rules.vy (through ProtocolRules) on
random inputs, and node/rounds.py's epoch state machine held against Epochs.vy: at every step of an
epoch each action is accepted by the contract iff why_not_epoch_at says so."""
from dataclasses import replace

import pytest
from brownie import accounts, chain
from brownie.exceptions import VirtualMachineError
from hypothesis import given, settings, strategies as st

from conftest import rand32
from epochkit import EPOCH_PARAMS, EpochDriver, make_trainers
from node import protocol as P
from node.rounds import EpochAction, why_not_epoch_at

u64 = st.integers(min_value=0, max_value=2**64)
small = st.integers(min_value=0, max_value=10_000)
b32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=25, deadline=None)
@given(opened=u64, cw=small, tw=small, sd=st.integers(1, 128), rw=small, cvw=small, rvw=small)
def test_deadlines_match(staked, opened, cw, tw, sd, rw, cvw, rvw):
    span = P.compute_slot_span(sd, rw, cvw, rvw)
    assert staked.rules.compute_slot_span(sd, rw, cvw, rvw) == span
    assert staked.rules.compute_dispute_span(rw, cvw, rvw) == P.compute_dispute_span(rw, cvw, rvw)
    assert tuple(staked.rules.compute_epoch_deadlines(opened, cw, tw, span)) == P.compute_epoch_deadlines(opened, cw, tw, span)


@settings(max_examples=25, deadline=None)
@given(cd=u64, ad=u64, last=u64, done=st.booleans(), full=st.booleans(), rank=st.integers(0, 16), w=small, n=st.integers(0, 16))
def test_ready_and_post_turns_match(staked, cd, ad, last, done, full, rank, w, n):
    r = staked.rules
    assert r.compute_ready_block(cd, ad, last, done, full) == P.compute_ready_block(cd, ad, last, done, full)
    assert r.compute_post_opens(cd, rank, w) == P.compute_post_opens(cd, rank, w)
    assert r.compute_post_deadline(cd, n, w) == P.compute_post_deadline(cd, n, w)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 16), claimed=st.integers(0, 2**16 - 1), block=u64, cd=u64)
def test_claim_phase_matches(staked, n, claimed, block, cd):
    claimed &= (1 << n) - 1
    full = P.is_every_slot_claimed(n, claimed)
    assert staked.rules.is_every_slot_claimed(n, claimed) == full
    assert staked.rules.is_every_slot_claimed(n, (1 << n) - 1) and P.is_every_slot_claimed(n, (1 << n) - 1)
    assert staked.rules.is_claim_phase_over(block, cd, full) == P.is_claim_phase_over(block, cd, full)


@settings(max_examples=25, deadline=None)
@given(accepted=st.integers(0, 2**16 - 1), slot=st.integers(0, 40))
def test_accepted_rank_matches(staked, accepted, slot):
    assert staked.rules.compute_accepted_rank(accepted, slot) == P.compute_accepted_rank(accepted, slot)


@settings(max_examples=20, deadline=None)
@given(bh=b32, task=u64, epoch=u64, h=b32, salt=b32, who=st.integers(0, 9))
def test_seed_and_commitment_match(staked, bh, task, epoch, h, salt, who):
    member = accounts[who].address
    assert bytes(staked.rules.compute_aggregate_seed(bh, task, epoch)) == P.compute_aggregate_seed(bh, task, epoch)
    assert bytes(staked.rules.compute_aggregate_commitment(task, epoch, member, h, salt)) == \
        P.compute_aggregate_commitment(task, epoch, member, h, salt)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 16), lr=st.sampled_from([1, 7_000, 10_000, 20_000]), mom=st.sampled_from([0, 9_000]))
def test_is_epoch_task_matches(staked, n, lr, mom):
    params = replace(EPOCH_PARAMS, slots_per_epoch=n, outer_lr_bps=lr, outer_momentum_bps=mom)
    assert staked.rules.is_epoch_task(params.as_tuple()) == P.is_epoch_task(n, lr, mom) == params.is_epoch_task


def test_state_machine_matches_the_contract(staked, deployer):
    """Every EpochAction tried at each stage of an epoch (one slot accepted, one never committed): the
    contract takes it iff node.rounds.why_not_epoch_at(action, epoch, block it runs in) is None."""
    trainers = make_trainers(staked, deployer, 2)
    ep = EpochDriver(staked, deployer, trainers)
    c, task = staked, ep.task_id
    tried = {a: [0, 0] for a in EpochAction}

    def probe(state_hash=b"\x05" * 32):
        """Try each action as its rightful sender (state unchanged afterwards: reverted or snapshot-undone)."""
        e = ep.epoch_record()
        committee = [accounts.at(a) for a in c.epochs.committee_of(task, e.epoch)]
        fresh = [m for m in committee if m.address not in ep.salts] or [None]  # a member still to commit
        shown = [m for m in committee if m.address in ep.salts] or [None]  # one that can reveal
        t = first.trace
        calls = {
            EpochAction.CLAIM: (lambda: c.epochs.claim.call(task, e.epoch, 2, {"from": trainers[1]}), 2),
            EpochAction.COMMIT: (lambda: c.epochs.commit.call(getattr(first, "slot_id", 0), t.base, t.data_root, t.root,
                                                              t.proof(0), {"from": trainers[0]}), 0),
            EpochAction.OPEN_AGGREGATION: (lambda: c.epochs.open_aggregation.call(task, e.epoch, {"from": deployer}), None),
            EpochAction.COMMIT_AGGREGATE: (lambda: c.epochs.commit_aggregate.call(task, e.epoch, rand32(), {"from": fresh[0]}), None),
            EpochAction.POST_AGGREGATE: (lambda: c.epochs.post_aggregate.call(task, e.epoch, state_hash, "bafy", {"from": trainers[0]}), 0),
            EpochAction.REVEAL_AGGREGATE: (lambda: c.epochs.reveal_aggregate.call(task, e.epoch, *ep.salts[shown[0].address],
                                                                                  {"from": shown[0]}), None),
            EpochAction.FINALIZE_EPOCH: (lambda: c.epochs.finalize_epoch.call(task, e.epoch, {"from": deployer}), None),
        }
        for action, (send, slot) in calls.items():
            if (action == EpochAction.COMMIT_AGGREGATE and fresh[0] is None) or (action == EpochAction.REVEAL_AGGREGATE and shown[0] is None):
                continue  # who would send it is checked elsewhere (membership, one commitment each)
            # anvil runs a call in the context of the latest block (block.number = chain.height)
            expected = why_not_epoch_at(action, e, chain.height, slot=slot, committee_size=len(committee),
                                        post_window=ep.params.reveal_window, n_slots=ep.params.slots_per_epoch)
            try:
                send()
                ok = True
            except VirtualMachineError:
                ok = False
            assert ok == (expected is None), (action, expected, chain.height, e)
            tried[action][0 if ok else 1] += 1

    first = ep.slot(0)
    probe()                      # not opened: claim ok
    first.claim()
    probe()                      # open: claim and commit ok, no aggregation
    ep.slot(1).claim()           # slot 1 claimed, never committed
    first.commit()
    probe()
    first.play()
    chain.mine(ep.epoch_record().commit_deadline - chain.height)
    probe()                      # slot 1 not finalized: A not final
    c.rounds.finalize(c.epochs.slot_ids(task, 0, 1), {"from": deployer})
    probe()                      # all finalized: ready; the seed block is seal_delay_blocks later
    chain.mine(ep.params.seal_delay_blocks)
    probe()                      # at the seed block: not yet
    chain.mine(1)
    probe()                      # after it: open_aggregation ok
    ep.open_aggregation()
    probe()
    for m in ep.committee:
        ep.commit_aggregate(m, b"\x05" * 32)
    probe()                      # all committed: rank 0 may post
    c.epochs.post_aggregate(task, 0, b"\x05" * 32, "bafy", {"from": trainers[0]})
    probe()
    ep.reveal_aggregate(ep.committee[0])
    del ep.salts[ep.committee[0].address]  # revealed: probe the others
    probe()
    chain.mine(ep.params.reveal_verdicts_window)
    probe()                      # reveal window closed: finalize
    c.epochs.finalize_epoch(task, 0, {"from": deployer})
    probe()                      # closed; epoch 1 not opened
    # every action was both accepted and refused somewhere along the way
    assert all(ok and refused for ok, refused in tried.values()), tried
