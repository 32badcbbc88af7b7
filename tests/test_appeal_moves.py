"""When a node appeals a jury vote, and who it thinks lost it (node/roles/disputes.py; Appeals.appeal's own checks are
in tests/contracts/test_appeals.py): the appeal window and the resolve that follows it never overlap, and the loser is
who the jury's count makes it, whatever the abstentions."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import given, strategies as st

from node import protocol
from node.roles.disputes import (DRAW_GRACE_BLOCKS, AppealView, DisputeView, compute_appeal_open,
                                 compute_appeal_resolve_due, compute_resolve_due, compute_vote_loser)

TRAINER_ANSWER, CHALLENGER_ANSWER = b"\x01" * 32, b"\x02" * 32
JURY = DisputeView(
    dispute_id=1, round_id=1, task_id=1, trainer="0xT", challenger="0xC", check_index=0, span_steps=4,
    start_hash=b"\x00" * 32, end_hash=b"\x03" * 32, phase=protocol.DISPUTE_JURY, eligible_block=1, deadline=100,
    reveal_deadline=120, step=2, claimed_hash=TRAINER_ANSWER, jury_block=90, n_committed=5, votes_trainer=0,
    votes_challenger=0, challenger_answer=CHALLENGER_ANSWER, n_revealed=5, trainer_won=False)

answers = st.lists(st.sampled_from([TRAINER_ANSWER, CHALLENGER_ANSWER, protocol.ZERO_HASH, b"\x09" * 32]), max_size=15)


@given(answers, st.integers(0, 5))
def test_the_loser_is_who_the_count_makes_it_and_abstentions_change_nothing(votes, n_abstain):
    n_trainer, n_challenger = votes.count(TRAINER_ANSWER), votes.count(CHALLENGER_ANSWER)
    expected = JURY.challenger if protocol.is_trainer_winner(n_trainer, n_challenger) else JURY.trainer
    assert compute_vote_loser(JURY, votes) == expected
    assert compute_vote_loser(JURY, votes + [protocol.ZERO_HASH] * n_abstain) == expected
    if n_challenger > n_trainer:
        assert expected == JURY.trainer  # a strict majority for the challenger convicts
    if n_challenger <= n_trainer:
        assert expected == JURY.challenger  # no conviction without one


@given(st.integers(0, 400), st.integers(1, 64))
def test_the_appeal_window_comes_after_the_reveals_and_before_the_resolve(head, window):
    appeal_deadline = protocol.compute_appeal_deadline(JURY.reveal_deadline, window)
    appeal_open = compute_appeal_open(JURY, head, window)
    resolve_due = compute_resolve_due(JURY, head, window, is_trainer=True)
    assert not (appeal_open and resolve_due)
    assert appeal_open == (JURY.reveal_deadline < head and head + 1 <= appeal_deadline)
    assert resolve_due == (head > appeal_deadline)
    # the challenger resolves only as a backup, DRAW_GRACE_BLOCKS after the trainer may (one resolve, no revert)
    backup = compute_resolve_due(JURY, head, window, is_trainer=False)
    assert backup == (head > appeal_deadline + DRAW_GRACE_BLOCKS) and (not backup or resolve_due)
    # an appealed dispute is Appeals' to settle; an unrevealed challenger answer has nothing to appeal
    for is_trainer in (True, False):
        assert not compute_resolve_due(replace(JURY, phase=protocol.DISPUTE_APPEALED), head, window, is_trainer)
    assert not compute_appeal_open(replace(JURY, challenger_answer=protocol.ZERO_HASH), head, window)


APPEAL = AppealView(
    appeal_id=1, dispute_id=1, round_id=1, task_id=1, trainer="0xT", challenger="0xC", appellant="0xC",
    claimed_hash=TRAINER_ANSWER, challenger_answer=CHALLENGER_ANSWER, eligible_block=1, jury_block=130,
    phase=protocol.DISPUTE_JURY, deadline=170, reveal_deadline=210, bond=1, n_committed=3, n_revealed=3,
    votes_trainer=3, votes_challenger=0, trainer_won=False)


@given(st.integers(0, 400))
def test_the_appellant_resolves_its_appeal_first_and_the_other_party_only_as_a_backup(head):
    appellant = compute_appeal_resolve_due(APPEAL, head, True)
    other = compute_appeal_resolve_due(APPEAL, head, False)
    assert appellant == (head > APPEAL.reveal_deadline)  # Appeals.resolve: block.number > reveal_deadline
    assert other == (head > APPEAL.reveal_deadline + DRAW_GRACE_BLOCKS)  # a backup, after the appellant's
    assert not other or appellant
    for phase in (protocol.DISPUTE_STEP_NAMED, protocol.DISPUTE_RESOLVED):  # undrawn, or settled already
        assert not compute_appeal_resolve_due(replace(APPEAL, phase=phase), head, True)
