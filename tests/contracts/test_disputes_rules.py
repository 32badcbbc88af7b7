"""The disputes rules (issue #15): node/protocol.py and contracts/lib/rules.vy (through ProtocolRules) agree on
random inputs, and the rules have the properties the design needs (dealt-out checks never hand one member's
hidden end to another as a revealed start; payouts sum to the pot; the jury's capture probability)."""
import os

import brownie
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from node import protocol as P

FAST = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))  # CI time: 10 random inputs per rule
bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@pytest.fixture(scope="module")
def rules(deployer):
    from brownie import ProtocolRules

    return ProtocolRules.deploy({"from": deployer})


@FAST
@given(seed=bytes32, s=st.integers(1, 4), c=st.integers(1, 16), extra=st.integers(0, 200))
def test_dealt_checks(rules, seed, s, c, extra):
    c = min(c, P.MAX_SAMPLES // s)
    n_segments = min(2 * c * s + 1 + extra, P.MAX_SEGMENTS)
    starts = P.compute_dealt_samples(bytes(seed), n_segments, s, c)
    assert list(rules.compute_dealt_samples(seed, n_segments, s, c)) == starts
    ends = P.compute_check_ends(starts, n_segments)
    # no check's hidden end is any check's revealed start, whoever holds them
    assert not set(ends[:-1]) & set(starts)
    held = []
    for m in range(c):
        mine = P.compute_member_checks(len(starts), c, m)
        assert list(rules.compute_member_checks(len(starts), c, m)) == mine
        assert mine[-1] == len(starts) - 1  # every member vouches for the final state
        held += mine[:-1]
    # the drawn checks are dealt out, each to exactly one member
    assert sorted(held) == list(range(len(starts) - 1))


@FAST
@given(s=st.integers(1, 8), c=st.integers(0, 16), n_segments=st.integers(3, P.MAX_SEGMENTS))
def test_dealt_count(rules, s, c, n_segments):
    """c·s checks when M allows (M >= 2cs + 1), else as many as fit; never fewer than s (the task's own bound)."""
    if n_segments < 2 * s + 1:
        return  # no such task (rules: check_task_params)
    n = P.compute_dealt_count(s, c, n_segments)
    assert rules.compute_dealt_count(s, c, n_segments) == n
    assert s <= n <= max(c, 1) * s and n_segments >= 2 * n + 1
    assert n == max(c, 1) * s or n == min((n_segments - 1) // 2, P.MAX_SAMPLES)


def test_dealt_checks_fit_small_rounds(rules):
    seed = os.urandom(32)
    # M = 12 < 2·3·2 + 1: 5 checks drawn (the most non-adjacent ones that fit), not a revert
    assert list(rules.compute_dealt_samples(seed, 2 * 3 * 2, 2, 3)) == P.compute_dealt_samples(seed, 2 * 3 * 2, 2, 3)
    assert P.compute_dealt_count(2, 3, 12) == 5
    assert len(P.compute_dealt_samples(os.urandom(32), 2 * 3 * 2 + 1, 2, 3)) in (6, 7)


@FAST
@given(n=st.integers(1, 12), c=st.integers(1, 5), m=st.integers(0, 4), flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       wrong=st.integers(0, 11))
def test_contradiction_reads_the_members_own_checks(rules, n, c, m, flags, wrong):
    """is_contradicting(member m of c): a flag, or an end hash of a check dealt to m (compute_member_checks);
    (0, 1) is v1: every check."""
    m = m % c
    trainer = [bytes([i + 1]) * 32 for i in range(n)]
    mine = list(trainer)
    mine[wrong % n] = b"\xee" * 32
    expected = not all(flags) or (wrong % n) in P.compute_member_checks(n, c, m)
    assert P.is_contradicting(trainer, mine, *flags, m, c) == expected
    assert rules.is_contradicting(trainer, mine, *flags, m, c) == expected
    assert P.is_contradicting(trainer, mine, *flags) == (not all(flags) or True)  # v1: any end differs
    assert P.is_contradicting(trainer, trainer, True, True, True, m, c) is False


@FAST
@given(reward=st.integers(0, 10**20), gas_price=st.integers(0, 10**12), block_hash=bytes32, dispute_id=st.integers(0, 2**64),
       juror=address, answer=bytes32, salt=bytes32)
def test_bond_seed_commitment(rules, reward, gas_price, block_hash, dispute_id, juror, answer, salt):
    assert rules.compute_challenger_bond(reward, gas_price) == P.compute_challenger_bond(reward, gas_price)
    assert P.compute_challenger_bond(reward, gas_price) >= reward * (P.JURY_MAX + 1)  # a whole jury is always paid
    assert bytes(rules.compute_jury_seed(block_hash, dispute_id)) == P.compute_jury_seed(bytes(block_hash), dispute_id)
    assert bytes(rules.compute_vote_commitment(dispute_id, juror, answer, salt)) == \
        P.compute_vote_commitment(dispute_id, brownie.convert.to_address(juror), bytes(answer), bytes(salt))


ZERO32 = b"\x00" * 32
answers = st.sampled_from([ZERO32, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32])  # few values: collisions happen


@FAST
@given(answer=answers, trainer_answer=answers, challenger_answer=answers)
def test_vote_side(rules, answer, trainer_answer, challenger_answer):
    """rules.compute_vote_side == protocol.compute_vote_side (an unrevealed challenger answer: empty on chain, None
    in Python), and the property answer votes exist for: only the challenger's own answer counts against the trainer."""
    side = rules.compute_vote_side(answer, trainer_answer, challenger_answer)
    assert side == P.compute_vote_side(answer, trainer_answer, None if challenger_answer == ZERO32 else challenger_answer)
    if side == P.VOTE_CHALLENGER:
        assert answer == challenger_answer != trainer_answer and answer != ZERO32
    if answer == ZERO32:
        assert side == P.VOTE_ABSTAIN


@FAST
@given(block=st.integers(0, 2**64), ahead=st.integers(0, 2 * P.BLOCKHASH_HORIZON))
def test_jury_block(rules, block, ahead):
    """The jury's seed block is the one after the naming (or the re-target), and a draw re-targets once its hash
    is past the blockhash horizon: rules.vy == protocol.py."""
    assert rules.compute_jury_block(block) == P.compute_jury_block(block) == block + 1
    now = block + ahead
    assert rules.is_jury_block_expired(block, now) == P.is_jury_block_expired(block, now) == (ahead > P.BLOCKHASH_HORIZON)


@FAST
@given(span=st.integers(0, 20), cut=st.integers(0, 3))
def test_span_hashes(rules, span, cut):
    start, end = os.urandom(32), os.urandom(32)
    good = [start] + [os.urandom(32) for _ in range(max(span - 1, 0))] + [end]
    cases = [good, good[:-1], [os.urandom(32)] + good[1:], good[:-1] + [os.urandom(32)], good + [end]]
    for hashes in cases:
        if len(hashes) > P.MAX_SPAN_STEPS + 1:
            continue
        assert rules.is_valid_span_hashes(hashes, span, start, end) == P.is_valid_span_hashes(hashes, span, start, end)
    assert P.is_valid_span_hashes(good, span, start, end) == (span >= 1)


@FAST
@given(t=st.integers(0, 20), c=st.integers(0, 20), n_revealed=st.integers(0, 16), quorum=st.integers(1, 16), convicted=st.booleans())
def test_verdict_and_outcome(rules, t, c, n_revealed, quorum, convicted):
    assert rules.is_trainer_winner(t, c) == P.is_trainer_winner(t, c) == (c <= t)
    assert rules.compute_dispute_outcome(n_revealed, quorum, convicted) == P.compute_dispute_outcome(n_revealed, quorum, convicted)


@FAST
@given(pot=st.integers(0, 10**21), n=st.integers(0, 15), reward=st.integers(0, 10**19), refund=st.integers(0, 10**18),
       share=st.integers(0, P.BPS))
def test_payouts_sum_to_the_pot(rules, pot, n, reward, refund, share):
    got = P.compute_dispute_payouts(pot, n, reward, refund, share)
    assert tuple(rules.compute_dispute_payouts(pot, n, reward, refund, share)) == got
    per_juror, to_winner, to_treasury = got
    assert per_juror * n + to_winner + to_treasury == pot and min(got) >= 0
    assert per_juror <= reward


def test_jury_capture_probability():
    """The brief's numbers: a third colluding captures a 7-juror jury ~17 %; 21 jurors: 5.6 % (the brief said ~4 %,
    which is 25 jurors); JURY_MAX (15): 8.8 %. A small registry drawn without replacement is lower still."""
    assert P.compute_jury_capture_probability(7, 1 / 3) == pytest.approx(379 / 2187)
    assert P.compute_jury_capture_probability(21, 1 / 3) == pytest.approx(0.0557, abs=5e-4)
    assert P.compute_jury_capture_probability(25, 1 / 3) == pytest.approx(0.0415, abs=5e-4)
    assert P.compute_jury_capture_probability(P.JURY_MAX, 1 / 3) == pytest.approx(0.0882, abs=5e-4)
    assert P.compute_jury_capture_probability_finite(30, 10, 15) < P.compute_jury_capture_probability(15, 1 / 3)
    assert P.compute_jury_capture_probability_finite(7, 2, 7) == 0.0  # 2 colluders can never hold 4 of 7 seats


@FAST
@given(flag=st.integers(0, 4), answer=st.one_of(st.just(P.ANSWER_UNAVAILABLE), bytes32))
@example(flag=4, answer=P.ANSWER_UNAVAILABLE)  # past FLAG_FINAL: no flag, so no availability challenge (CI found it)
def test_availability_challenge_rule(rules, flag, answer):
    """Which flag disputes are availability challenges (a refund of the bond's rest when the trainer serves the jury)."""
    assert bytes(rules.answer_unavailable()) == P.ANSWER_UNAVAILABLE == P.keccak(b"trainchain.answer.unavailable")
    assert rules.is_availability_challenge(flag, answer) == P.is_availability_challenge(flag, answer)


# ---------------------------------------------------------------- the appeal to the whole verifier set

@FAST
@given(reveal_deadline=st.integers(0, 2**64), window=st.integers(0, 10_000), reward=st.integers(0, 10**20),
       gas_price=st.integers(0, 10**12))
def test_appeal_deadline_and_bond(rules, reveal_deadline, window, reward, gas_price):
    """rules.vy == protocol.py: the appeal window is one more reveal_verdicts_window after the jury's reveal
    deadline; the bond pays a full appeal jury and one more reward, and the appeal's gas."""
    deadline = P.compute_appeal_deadline(reveal_deadline, window)
    assert rules.compute_appeal_deadline(reveal_deadline, window) == deadline == reveal_deadline + window
    bond = P.compute_appeal_bond(reward, gas_price)
    assert rules.compute_appeal_bond(reward, gas_price) == bond
    assert bond == reward * (P.APPEAL_JURY_MAX + 1) + P.APPEAL_GAS_ALLOWANCE * gas_price
    assert bond >= P.compute_challenger_bond(reward, gas_price)  # an appeal costs at least what a dispute did


@FAST
@given(vote=st.sampled_from([P.VOTE_NONE, P.VOTE_TRAINER, P.VOTE_CHALLENGER, P.VOTE_ABSTAIN]),
       winning=st.sampled_from([P.VOTE_TRAINER, P.VOTE_CHALLENGER]), verifier_bps=st.integers(0, P.BPS),
       no_show_bps=st.integers(0, P.BPS))
def test_juror_slash_bps(rules, vote, winning, verifier_bps, no_show_bps):
    """The one rule both juries of an appeal are settled by: nothing for the winning side or an abstention, the
    no-show share without an answer, the verifier slash on the losing side."""
    bps = P.compute_juror_slash_bps(vote, winning, verifier_bps, no_show_bps)
    assert rules.compute_juror_slash_bps(vote, winning, verifier_bps, no_show_bps) == bps
    expected = {P.VOTE_NONE: no_show_bps, P.VOTE_ABSTAIN: 0}.get(vote, 0 if vote == winning else verifier_bps)
    assert bps == expected


@FAST
@given(seed=bytes32, step=st.integers(0, P.APPEAL_DRAW_ATTEMPTS + P.APPEAL_WALK_MAX - 1), n=st.integers(1, 2_000),
       wanted=st.integers(0, P.APPEAL_JURY_MAX + 1))
def test_appeal_candidate(rules, seed, step, n, wanted):
    """rules.compute_appeal_candidate / compute_appeal_draw_attempts == protocol's: the first APPEAL_DRAW_ATTEMPTS
    steps sample as a committee draw (only when the entries could hold more verifiers than wanted), the rest walk
    from seed mod n."""
    attempts = P.compute_appeal_draw_attempts(n, wanted)
    assert rules.compute_appeal_draw_attempts(n, wanted) == attempts == (P.APPEAL_DRAW_ATTEMPTS if n > wanted else 0)
    index = P.compute_appeal_candidate(bytes(seed), step, n, attempts)
    assert rules.compute_appeal_candidate(seed, step, n, attempts) == index and 0 <= index < n
    if step < attempts:
        assert index == P.compute_committee_candidate(bytes(seed), step, n)
    else:
        assert index == (int.from_bytes(seed, "big") + step - attempts) % n


@FAST
@given(n=st.integers(0, 150), n_names=st.integers(1, 90), seed=bytes32, limit=st.integers(0, 80),
       at_block=st.integers(0, 30), data=st.data())
def test_eligible_verifiers_reference(n, n_names, seed, limit, at_block, data):
    """protocol.compute_eligible_verifiers (StakeManager.eligible_verifiers; the contract is held against it in
    test_appeals.py): distinct, drawable, entries opened and open at the block only, at most the limit and
    APPEAL_JURY_MAX + 1, all of the eligible ones when fewer (the walk fills what the sample left, with more entries
    than wanted too); compute_appeal_jury drops the challenger and seats all others when they fit."""
    names = [f"0x{i:040x}" for i in range(n_names)]
    entries, opened = [], 0
    for _ in range(n):
        opened += data.draw(st.integers(0, 2))
        entries.append((data.draw(st.sampled_from(names)), opened, data.draw(st.sampled_from([0, opened + 1, opened + 5]))))
    drawable = set(data.draw(st.lists(st.sampled_from(names), unique=True)))
    got = P.compute_eligible_verifiers(entries, at_block, bytes(seed), limit, lambda v: v in drawable)
    eligible = {v for v, frm, until in entries if frm <= at_block and (until == 0 or until > at_block) and v in drawable}
    assert len(got) == len(set(got)) == min(limit, P.APPEAL_JURY_MAX + 1, len(eligible)) and set(got) <= eligible
    jury = P.compute_appeal_jury(bytes(seed), entries, at_block, names[0], lambda v: v in drawable)
    assert names[0] not in jury and len(jury) == min(P.APPEAL_JURY_MAX, len(eligible - {names[0]}))
    if len(eligible) <= P.APPEAL_JURY_MAX + 1:
        assert set(jury) == eligible - {names[0]}


def coalition_registry(before: int, coalition: int, after: int) -> list:
    """One-entry verifiers: `before` honest ones, a coalition of `coalition` registered in one run, `after` honest."""
    honest = [(f"honest{i}", 1, 0) for i in range(before + after)]
    return honest[:before] + [(f"colluder{i}", 1, 0) for i in range(coalition)] + honest[before:]


@pytest.mark.parametrize("before, coalition, after", [(0, 60, 120), (60, 60, 60), (100, 50, 50)])
def test_a_contiguous_coalition_does_not_capture_the_appeal_jury(monkeypatch, before, coalition, after):
    """A coalition whose entries form one run of the registry (registered together): a third of 180 one-entry
    verifiers (or a quarter of 200) holds a majority of the 64-seat appeal jury in at most a few of 2,000 seeds, as
    independent draws would (hypergeometric 0.013 % for 60 of 180; binomial of a third 0.2 %), and its mean seat
    count is its share. The walk alone (APPEAL_DRAW_ATTEMPTS = 0: the rule before the sample) gave it the majority
    whenever the walk started near its run: ~31 % (24 % for a quarter) of the draws."""
    entries = coalition_registry(before, coalition, after)
    challenger = "honest0"

    def colluders_seated(n_seeds: int) -> list[int]:
        seated = []
        for i in range(n_seeds):
            jury = P.compute_appeal_jury(P.keccak(i.to_bytes(32, "big")), entries, 1, challenger)
            assert len(jury) == P.APPEAL_JURY_MAX
            seated.append(sum(1 for v in jury if v.startswith("colluder")))
        return seated

    need = P.APPEAL_JURY_MAX // 2 + 1
    seated = colluders_seated(2_000)
    capture = sum(1 for k in seated if k >= need) / len(seated)
    share = coalition / (len(entries) - 1)  # of the verifiers other than the challenger
    assert P.compute_jury_capture_probability_finite(len(entries) - 1, coalition, P.APPEAL_JURY_MAX) < 0.001
    assert capture < 0.02, f"a contiguous coalition of {coalition}/{len(entries)} captured {capture:.1%} of appeal juries"
    assert abs(sum(seated) / len(seated) - share * P.APPEAL_JURY_MAX) < 1.0
    monkeypatch.setattr(P, "APPEAL_DRAW_ATTEMPTS", 0)  # the contiguous walk alone
    walk_seated = colluders_seated(400)
    assert sum(1 for k in walk_seated if k >= need) / len(walk_seated) > 0.15
