"""compute_dispute_span against a dispute played move by move (issue #15 with epochs, #14): a dispute opened on the
last block its round allows, each party moving on any block of its window, each move anyone may make (the jury
draws, the resolve) within a reveal_window of the block it waits for, and the loser appealing on any block of the
appeal window, lets its round finalize by the round's deadline + compute_dispute_span. Epochs adds that span to an
epoch's aggregate deadline when Disputes is set, so a challenger that loses cannot push an honest slot out of A.
The windows and blocks are Disputes'/Appeals' (Disputes.open/post_steps/name_step/draw_jury/resolve: a move's
deadline is its previous move's block + reveal_window; a jury draws after its jury block, then commits within
commit_verdicts_window and reveals within reveal_verdicts_window)."""
from __future__ import annotations

from hypothesis import example, given, strategies as st

from node import protocol
from node.chain.records import TaskParams

windows = st.integers(1, 64)
lateness = st.floats(0, 1)  # where in its window a move lands: 0 the first block, 1 the last


def play_dispute(round_deadline: int, rw: int, cvw: int, rvw: int, late: list[float], appealed: bool) -> int:
    """The block the disputed round finalizes in; `late[i]`: where in its window move i lands."""
    moves = iter(late)

    def within(first: int, last: int) -> int:
        return first + round(next(moves) * (last - first))

    def jury(named: int) -> int:
        """A jury drawn after its jury block (by anyone, within a reveal_window): its reveal deadline."""
        jury_block = protocol.compute_jury_block(named)
        drawn = within(jury_block + 1, jury_block + rw)
        return drawn + cvw + rvw

    opened = round_deadline  # Disputes.open / open_watch: by the round's deadline
    posted = within(opened + 1, opened + rw)  # the trainer's span
    named = within(posted + 1, posted + rw)  # the challenger's step and answer commitment
    appeal_deadline = protocol.compute_appeal_deadline(jury(named), rvw)
    if appealed:
        appeal = within(appeal_deadline - rvw + 1, appeal_deadline)  # Appeals.appeal: after the reveals, by the deadline
        final_after = jury(appeal)  # Appeals.resolve after the appeal jury's reveal deadline settles the dispute
    else:
        final_after = appeal_deadline  # Disputes.resolve after the appeal window
    resolved = within(final_after + 1, final_after + rw)
    return resolved + 1  # TrainingRounds.finalize, the next block


@given(st.integers(0, 10**6), windows, windows, windows, st.lists(lateness, min_size=6, max_size=6), st.booleans())
@example(1000, 10, 10, 10, [1.0] * 6, True)
def test_a_dispute_lost_with_an_appeal_finalizes_within_the_dispute_span(deadline, rw, cvw, rvw, late, appealed):
    span = protocol.compute_dispute_span(rw, cvw, rvw)
    finalized = play_dispute(deadline, rw, cvw, rvw, late, appealed)
    assert deadline < finalized <= deadline + span


@given(st.integers(0, 10**6), windows, windows, windows)
def test_the_dispute_span_is_tight(deadline, rw, cvw, rvw):
    """Every move on the last block it may take uses the whole span: none of it is slack an epoch waits for nothing."""
    assert play_dispute(deadline, rw, cvw, rvw, [1.0] * 6, appealed=True) == deadline + protocol.compute_dispute_span(rw, cvw, rvw)


@given(st.integers(0, 10**6), windows, windows, windows, windows, windows, windows)
def test_with_disputes_an_epoch_waits_exactly_one_dispute_span_more(opened, cw, tw, sd, rw, cvw, rvw):
    """What Epochs computes at the first claim (compute_task_epoch_deadlines): the same claim and commit deadlines,
    the aggregate deadline one dispute span later when Disputes is set."""
    params = TaskParams(steps_per_round=64, segment_steps=4, seal_delay_blocks=sd, reveal_window=rw, commit_verdicts_window=cvw,
                                 reveal_verdicts_window=rvw, claim_window=cw, train_window=tw)
    plain = protocol.compute_task_epoch_deadlines(params, opened, disputes=False)
    disputed = protocol.compute_task_epoch_deadlines(params, opened, disputes=True)
    assert disputed[:2] == plain[:2]
    assert disputed[2] - plain[2] == protocol.compute_dispute_span(rw, cvw, rvw)
