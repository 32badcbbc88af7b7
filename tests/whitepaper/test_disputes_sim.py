"""§5.6 with disputes (issue #15): the many-rounds simulation on node/protocol.py's dispute rules, answer votes.

A juror's vote is an answer; it counts for the trainer if it is the trainer's (public) answer, for the challenger if
it is the challenger's (revealed after the jury committed), for nobody otherwise (protocol.compute_vote_side)."""
from __future__ import annotations

import sys
from math import comb
from pathlib import Path

import pytest
from hypothesis import assume, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "whitepaper"))

import simulate  # noqa: E402
from make_figures import default_params, disputes_params  # noqa: E402
from node import protocol  # noqa: E402

P = default_params()
HONEST_ONLY = {"honest": 1}
PAPER_ROUNDS = 2000 * simulate.DISPUTES_ROUNDS_FACTOR  # make_figures' disputes runs
SIDES = (protocol.VOTE_NONE, protocol.VOTE_TRAINER, protocol.VOTE_CHALLENGER, protocol.VOTE_ABSTAIN)
hashes = st.binary(min_size=32, max_size=32)


def tolerance(p: float, n: int) -> float:
    """Four standard deviations of a rate p measured over n rounds."""
    return 4 * (p * (1 - p) / n) ** 0.5 + 1e-9


# ------------------------------------------------------------ the vote rule (node/protocol.py ≡ rules.vy)
@settings(max_examples=200, deadline=None)
@given(trainer=hashes, challenger=hashes, other=hashes, pick=st.sampled_from(("zero", "trainer", "other")))
def test_without_the_challengers_answer_a_juror_cannot_vote_against_the_trainer(trainer, challenger, other, pick):
    """A juror that answers before the challenger's answer is public — zero, the trainer's answer, or any value of its
    own — is never counted for the challenger (unless it happens to equal the challenger's hidden answer: a collusion
    or a replay that gives it)."""
    assume(other != challenger)
    answer = {"zero": protocol.ZERO_HASH, "trainer": trainer, "other": other}[pick]
    assume(answer != challenger or answer == trainer)
    side = protocol.compute_vote_side(answer, trainer, challenger)
    assert side != protocol.VOTE_CHALLENGER
    assert side == (protocol.VOTE_TRAINER if answer == trainer and answer != protocol.ZERO_HASH else protocol.VOTE_ABSTAIN)


@settings(max_examples=100, deadline=None)
@given(trainer=hashes, challenger=hashes, answer=hashes)
def test_the_vote_side_rule(trainer, challenger, answer):
    assume(protocol.ZERO_HASH not in (trainer, challenger, answer))
    side = protocol.compute_vote_side
    assert side(protocol.ZERO_HASH, trainer, challenger) == protocol.VOTE_ABSTAIN  # could not compute
    assert side(trainer, trainer, challenger) == protocol.VOTE_TRAINER
    assert side(challenger, trainer, None) in (protocol.VOTE_TRAINER, protocol.VOTE_ABSTAIN)  # not revealed
    assert side(answer, trainer, trainer) != protocol.VOTE_CHALLENGER  # conceded: equal to the trainer's
    if challenger != trainer:
        assert side(challenger, trainer, challenger) == protocol.VOTE_CHALLENGER
    if answer not in (trainer, challenger):
        assert side(answer, trainer, challenger) == protocol.VOTE_ABSTAIN  # neither party's
    assert side(answer, trainer, challenger) != protocol.VOTE_NONE  # VOTE_NONE is a missing reveal, not an answer


@settings(max_examples=40, deadline=None)
@given(sides=st.lists(st.sampled_from(SIDES), min_size=0, max_size=protocol.JURY_MAX), trainer_won=st.booleans(),
       convicted=st.booleans(), basefee_gwei=st.integers(0, 200))
def test_settle_dispute_moves_money_and_creates_none(sides, trainer_won, convicted, basefee_gwei):
    """Disputes.resolve's transfers sum to zero (the bond or the fraud slash, jurors' slashes to the treasury);
    abstentions are neither paid nor slashed, no-shows lose no_show_slash_bps, the losing side verifier_slash_bps."""
    G = basefee_gwei * 10**9
    bond = protocol.compute_challenger_bond(P["verifier_reward_wei"], G)
    votes = {f"j{i}": v for i, v in enumerate(sides)}
    jurors, challenger, trainer, treasury = simulate.settle_dispute(P, bond, G, votes, trainer_won, convicted)
    assert sum(jurors.values()) + challenger + trainer + treasury == 0
    assert (challenger == -bond) == trainer_won  # a losing challenger loses all of its bond, a winner none
    if not trainer_won and not convicted:
        assert trainer == -protocol.compute_slash(P["min_trainer_stake_wei"], P["trainer_slash_bps"])
    seat = P["min_verifier_stake_wei"]
    losing = protocol.VOTE_CHALLENGER if trainer_won else protocol.VOTE_TRAINER
    for j, side in votes.items():
        if side == protocol.VOTE_ABSTAIN:
            assert jurors[j] == 0
        elif side == protocol.VOTE_NONE:
            assert jurors[j] == -protocol.compute_slash(seat, P["no_show_slash_bps"])
        elif side == losing:
            assert jurors[j] == -protocol.compute_slash(seat, P["verifier_slash_bps"])
        else:
            assert jurors[j] >= 0


# ------------------------------------------------------------ honest trainers and lazy verifiers
@pytest.mark.parametrize("lazy_juror", simulate.LAZY_JUROR_VOTES)
def test_a_third_lazy_never_slashes_honest_trainers(lazy_juror):
    """Issue #15's target: with a third of the verifiers lazy, honest trainers are never slashed — whether lazy jurors
    copy the trainer's answer or replay. Lazy members dispute every round and lose every dispute (a lazy challenger
    never wins: its answer is no replay's)."""
    pop = {"trainers": HONEST_ONLY, "verifiers": {"honest": 40, "lazy": 20}}
    sim = simulate.run_disputes(P, 1500, seed=3, population=pop, lazy_juror=lazy_juror)
    assert sim["trainers"]["honest"]["rounds"] == 1500 and sim["trainers"]["honest"]["slashed"] == 0
    lazy = sim["verifiers"]["lazy"]
    assert lazy["disputes opened"] > 300 and lazy["disputes lost"] == lazy["disputes opened"]
    assert simulate.expected_false_conviction_rate(pop["verifiers"], P["c"]) == 0.0


@settings(max_examples=15, deadline=None)
@given(honest=st.integers(3, 30), lazy=st.integers(0, 30), colluding=st.integers(0, protocol.JURY_MAX // 2),
       lazy_juror=st.sampled_from(simulate.LAZY_JUROR_VOTES), seed=st.integers(0, 10**6))
def test_honest_trainers_are_slashed_only_by_a_captured_jury(honest, lazy, colluding, lazy_juror, seed):
    """Lazy verifiers never convict an honest trainer, however many; colluders do only with a strict majority of a
    jury (min(JURY_MAX, N - 1) of the other verifiers), so never when they are too few to hold one."""
    assume(colluding <= min(protocol.JURY_MAX, honest + lazy + colluding - 1) // 2)
    pop = {"trainers": HONEST_ONLY, "verifiers": {"honest": honest, "lazy": lazy, "colluding": colluding}}
    sim = simulate.run_disputes(P, 40, seed=seed, population=pop, lazy_juror=lazy_juror)
    assert sim["trainers"]["honest"]["slashed"] == 0
    assert simulate.expected_false_conviction_rate(pop["verifiers"], P["c"]) == 0.0
    if lazy:
        assert sim["verifiers"]["lazy"].get("disputes lost", 0) == sim["verifiers"]["lazy"].get("disputes opened", 0)


@pytest.mark.parametrize("verifiers", [{"honest": 40, "colluding": 20}, {"honest": 20, "lazy": 20, "colluding": 20}])
def test_a_third_colluding_captures_first_juries_and_the_appeal_reverses_every_one(verifiers):
    """A third colluding still captures first juries at the analytic rate (compute_jury_capture_probability_finite),
    within 4 sigma, whatever lazy jurors there are (copying, they count for the trainer); the large-registry binomial
    is outside it (the test can tell the two apart). The honest trainer appeals each such count, and the appeal jury —
    every other verifier but the challenger (59 <= APPEAL_JURY_MAX), 19 of them colluders — reverses every one: an
    honest trainer is never convicted, as expected_false_conviction_rate says (P(first) x P(appeal) = P(first) x 0)."""
    rounds = 3000
    sim = simulate.run_disputes(P, rounds, seed=11, population={"trainers": HONEST_ONLY, "verifiers": verifiers})
    convicted, n = simulate.false_conviction(sim)
    assert simulate.expected_false_conviction_rate(verifiers, P["c"]) == 0.0 and convicted == 0
    assert sim["honest_trainer_slashes_by_cause"] == {}
    honest = sim["trainers"]["honest"]
    appealed = honest.get("appeals", 0)
    assert honest.get("appeals won", 0) == appealed  # every captured first jury reversed
    first = simulate.expected_false_conviction_rate(verifiers, P["c"], appeals=False)
    assert 0.03 < first < 0.06
    assert abs(appealed / n - first) < tolerance(first, n), (appealed, n, first)
    # one dispute per colluder on the committee: with the binomial capture probability instead, the rate is far off
    p_bin = protocol.compute_jury_capture_probability(protocol.JURY_MAX, 1 / 3)
    N, A, c = 60, 20, P["c"]
    naive = 1 - sum(comb(A, a) * comb(N - A, c - a) / comb(N, c) * (1 - p_bin) ** a for a in range(c + 1))
    assert abs(appealed / n - naive) > tolerance(first, n), (appealed, n, naive)
    # the colluders pay for it: every juror of theirs on a reversed first jury and on the appeal jury is slashed
    assert sim["verifiers"]["colluding"]["profit_per_round_eth"] < 0
    assert simulate.appeal_profit(sim, "colluding") < 0 < simulate.appeal_profit(sim, "honest")


def test_an_honest_trainer_is_convicted_only_when_both_juries_are_captured():
    """A registry larger than the appeal jury (99 others > APPEAL_JURY_MAX: a stake-weighted sample of 64, equal stakes
    here, so a uniform subset) with nearly half colluding, so that both captures happen: the measured conviction
    rate of honest trainers is the exact one, P(first jury captured) x P(appeal jury captured) per colluder's
    dispute (expected_false_conviction_rate), within 4 sigma, and far from the first juries' alone."""
    verifiers = {"honest": 52, "colluding": 48}
    rounds = 1500
    sim = simulate.run_disputes(P, rounds, seed=17, population={"trainers": HONEST_ONLY, "verifiers": verifiers})
    convicted, n = simulate.false_conviction(sim)
    expected = simulate.expected_false_conviction_rate(verifiers, P["c"])
    first = simulate.expected_false_conviction_rate(verifiers, P["c"], appeals=False)
    p_appeal = simulate.expected_appeal_capture(99, 47)
    assert 0.05 < p_appeal < 0.5 and 0.05 < expected < first
    assert abs(convicted / n - expected) < tolerance(expected, n), (convicted, n, expected)
    assert abs(convicted / n - first) > tolerance(expected, n), (convicted, n, first)
    assert set(sim["honest_trainer_slashes_by_cause"]) == {"jury and appeal jury captured by colluding jurors"}
    honest = sim["trainers"]["honest"]
    assert honest["appeals"] - honest["appeals won"] >= convicted  # every conviction is an appeal lost


def test_the_appeal_jury_is_every_other_verifier_when_it_fits():
    """simulate.draw_appeal_jury is protocol.compute_appeal_jury: with at most APPEAL_JURY_MAX others, all of them."""
    names = [f"v{i}" for i in range(60)]
    jury = simulate.draw_appeal_jury(12345, simulate.APPEAL_IDS + 1, [(n, 0, 0) for n in names], "v7")
    assert sorted(jury) == sorted(n for n in names if n != "v7")
    assert simulate.expected_appeal_capture(59, 19) == 0.0 and simulate.expected_appeal_capture(59, 30) == 1.0


@settings(max_examples=40, deadline=None)
@given(sides=st.lists(st.sampled_from(SIDES), min_size=0, max_size=protocol.APPEAL_JURY_MAX), trainer_won=st.booleans(),
       appellant_won=st.booleans(), basefee_gwei=st.integers(0, 200))
def test_settle_appeal_moves_money_and_creates_none(sides, trainer_won, appellant_won, basefee_gwei):
    """Appeals.resolve's transfers sum to zero: the bond pays the majority a reward each, the rest to a winning
    appellant or else to the other party; the appeal jury's slashes to the treasury."""
    bond = protocol.compute_appeal_bond(P["verifier_reward_wei"], basefee_gwei * 10**9)
    votes = {f"j{i}": v for i, v in enumerate(sides)}
    jurors, appellant, other, treasury = simulate.settle_appeal(P, bond, votes, trainer_won, appellant_won)
    assert sum(jurors.values()) + appellant + other + treasury == 0
    assert other == 0 if appellant_won else appellant == -bond
    winning = protocol.VOTE_TRAINER if trainer_won else protocol.VOTE_CHALLENGER
    assert all(jurors[j] == P["verifier_reward_wei"] for j, s in votes.items() if s == winning)


# ------------------------------------------------------------ cheating trainers
def test_a_caught_forgery_is_convicted_by_one_honest_member():
    """Honest verifiers only: every round whose dealt checks cover the forged segment ends in fraud, no other does;
    the measured detection is the exact one (analysis.py)."""
    pop = {"trainers": {"forger (segment M-2)": 1}, "verifiers": {"honest": 30}}
    sim = simulate.run_disputes(P, 3000, seed=5, population=pop)
    r = sim["trainers"]["forger (segment M-2)"]
    assert r["slashed"] == r["caught"] == r["caught by honest members"] and r.get("escaped", 0) == 0
    p = simulate.detection_per_round(P, "forger (segment M-2)")
    assert abs(r["caught"] / r["rounds"] - p) < tolerance(p, r["rounds"])
    assert r["cheats accepted"] == r["rounds"] - r["caught"]


@pytest.mark.parametrize("verifiers,lazy_juror", [({"honest": 40, "lazy": 20}, "copies the trainer"),
                                                  ({"honest": 40, "colluding": 20}, "copies the trainer"),
                                                  ({"honest": 40, "lazy": 20}, "by a replay")])
def test_caught_cheats_escape_a_covered_first_jury_but_not_the_appeal(verifiers, lazy_juror):
    """What lazy copiers cost: an honest challenger's first jury over a forged step counts against it when copiers and
    colluders hold a majority of it, at the analytic rate within 4 sigma (a third covering: ~6.5 %); the challenger
    appeals, and the appeal jury (every other verifier, a third covering) convicts: no dispute is lost in the end.
    Lazy jurors that replay cover nobody, so with no colluders no first jury is lost either."""
    pop = {"trainers": {"forger (segment M-2)": 1}, "verifiers": verifiers}
    sim = simulate.run_disputes(P, 3000, seed=13, population=pop, lazy_juror=lazy_juror)
    lost, opened = simulate.honest_disputes(sim)
    appealed = sim["verifiers"]["honest"].get("appeals", 0)
    first = simulate.expected_escape_rate(verifiers, lazy_juror, appeals=False)
    assert opened > 300 and lost == 0 and simulate.expected_escape_rate(verifiers, lazy_juror) == 0.0
    assert sim["verifiers"]["honest"].get("appeals won", 0) == appealed
    if lazy_juror == "by a replay":
        assert first == 0.0 and appealed == 0
    else:
        assert 0.04 < first < 0.09
        assert abs(appealed / opened - first) < tolerance(first, opened), (appealed, opened, first)
    r = sim["trainers"]["forger (segment M-2)"]
    assert r["slashed"] == r["caught by honest members"] - r.get("escaped", 0)


@pytest.fixture(scope="module")
def defaults():
    """The paper's runs (make_figures.disputes_fills): scenarios A (lazy jurors copying the trainer, and replaying)
    and B at the demo defaults on a deployment with Disputes (its minimum trainer stake: DeployParams(disputes=True))."""
    Pd = disputes_params(P)
    share = simulate.default_watch_share(P["M"])
    return {key: simulate.run_disputes(Pd, PAPER_ROUNDS, seed=seed, population=pop, lazy_juror=lazy, watch_share=watch)
            for key, pop, seed, lazy, watch in (("a", simulate.DISPUTES_A, 7, "copies the trainer", 0.0),
                                                ("b", simulate.DISPUTES_B, 8, "copies the trainer", 0.0),
                                                ("a_replay", simulate.DISPUTES_A, 7, "by a replay", 0.0),
                                                ("a_watch", simulate.DISPUTES_A, 7, "copies the trainer", share),
                                                ("b_watch", simulate.DISPUTES_B, 8, "copies the trainer", share))}


def test_honest_trainers_and_verifiers_profit_and_are_never_slashed_by_lazy_ones(defaults):
    for key, sim in defaults.items():  # with and without watchers
        honest = sim["trainers"]["honest"]
        assert honest["profit_per_round_eth"] - 3 * honest["profit_se_eth"] > 0, key
        assert sim["verifiers"]["honest"]["profit_per_round_eth"] > 0, key
    assert defaults["a"]["trainers"]["honest"]["slashed"] == defaults["a_replay"]["trainers"]["honest"]["slashed"] == 0


def test_every_cheating_trainer_loses_at_the_defaults(defaults):
    """Issue #15's target, at a Disputes deployment's defaults (dealt-out checks, its minimum stake): every cheating
    strategy's profit per round is negative in every scenario (the run's mean; the paper states its standard error)."""
    for key, sim in defaults.items():
        for st_, r in sim["trainers"].items():
            if st_ != "honest":
                assert r["profit_per_round_eth"] < 0, (key, st_, r["profit_per_round_eth"], r["profit_se_eth"])
                if st_.startswith("skipper") or st_ == "forger (segment M-2)":  # far from zero: 3 sigma
                    assert r["profit_per_round_eth"] + 3 * r["profit_se_eth"] < 0, (key, st_)


def test_every_dishonest_verifier_loses_at_the_defaults(defaults):
    assert defaults["a"]["verifiers"]["lazy"]["profit_per_round_eth"] < 0
    assert defaults["a_replay"]["verifiers"]["lazy"]["profit_per_round_eth"] < 0
    assert defaults["b"]["verifiers"]["colluding"]["profit_per_round_eth"] < 0
    for sim in (defaults["a"], defaults["a_replay"]):  # a lazy challenger never wins
        assert sim["verifiers"]["lazy"]["disputes lost"] == sim["verifiers"]["lazy"]["disputes opened"] > 0


def test_detection_per_round_at_the_defaults(defaults):
    """The dealt checks (c·s = 6 drawn segments + the last) cover a one-segment forgery with the exact probability of
    analysis.py: ~0.19 (random segment) and ~0.23 (segment M-2) per round, measured over A and B within 4 sigma."""
    for st_, (lo, hi) in (("forger (random segment)", (0.17, 0.21)), ("forger (segment M-2)", (0.21, 0.25))):
        p = simulate.detection_per_round(P, st_)
        assert lo < p < hi, (st_, p)
        rounds = sum(defaults[k]["trainers"][st_]["rounds"] for k in ("a", "b"))
        caught = sum(defaults[k]["trainers"][st_]["caught"] for k in ("a", "b"))
        assert abs(caught / rounds - p) < tolerance(p, rounds), (st_, caught, rounds, p)


def test_the_findings_say_what_the_runs_show(defaults):
    Pd = disputes_params(P)
    text = simulate.disputes_findings_markdown(Pd, defaults["a"], defaults["b"], defaults["a_replay"])
    assert "**Not negative:**" not in text
    assert ("in every scenario:** skipper f=1/4, skipper f=1/2, forger (random segment), forger (segment M-2) "
            in text)
    assert "**Lazy verifiers** (negative)" in text and "**Colluding verifiers** (negative)" in text
    assert "scenario A (a third lazy, copying the trainer):** convicted in 0 of" in text
    assert "scenario A with lazy jurors replaying:** convicted in 0 of" in text
    assert "So a third lazy never slashes honest trainers" in text
    assert "Nobody watches in these three runs" in text


def test_at_the_defaults_the_closest_forger_loses_in_expectation_not_only_on_the_papers_seeds():
    """The random-segment forger, the cheat closest to zero, alone against each scenario's verifiers for 4000 rounds
    (other seeds than the paper's): it loses by more than 3 standard errors at a Disputes deployment's stake."""
    Pd = disputes_params(P)
    for pop, seed in ((simulate.DISPUTES_A, 101), (simulate.DISPUTES_B, 102)):
        alone = {"trainers": {"forger (random segment)": 1}, "verifiers": pop["verifiers"]}
        r = simulate.run_disputes(Pd, 4000, seed=seed, population=alone)["trainers"]["forger (random segment)"]
        assert r["profit_per_round_eth"] + 3 * r["profit_se_eth"] < 0, r


def test_under_disputes_a_higher_stake_deters_forgers_and_spares_honest_trainers():
    """The §5.6 stake bullet: the smallest whole-ETH minimum stake that makes every cheating strategy a loss in
    both disputes scenarios (the paper's runs) leaves honest trainers profiting there, while v1's tally at that stake
    makes them lose; a Disputes deployment's default minimum follows it."""
    found = simulate.disputes_deterring_stake(P, PAPER_ROUNDS)
    assert found is not None
    stake, a, b = found
    assert stake > P["min_trainer_stake_wei"]  # at v1's default forgers profit under disputes
    assert stake == disputes_params(P)["min_trainer_stake_wei"]  # a Disputes deployment's default follows it
    for sim in (a, b):
        assert sim["trainers"]["honest"]["profit_per_round_eth"] > 0
        assert all(r["profit_per_round_eth"] < 0 for st_, r in sim["trainers"].items() if st_ != "honest")
    v1 = simulate.run({**P, "min_trainer_stake_wei": stake}, rounds=2000, seed=7, population=simulate.DISPUTES_A)
    assert v1["trainers"]["honest"]["profit_per_round_eth"] < 0
    text = simulate.disputes_stake_markdown(P, found, v1, disputes_params(P)["deployment_min_trainer_stake_wei"])
    assert f"= {stake // 10**18} ETH" in text and "honest trainers still profit" in text


# ------------------------------------------------------------ watchers (open_watch, `verifier run --watch SHARE`)
def test_the_watch_rules():
    """A watcher replays each segment with probability SHARE (all M of them, in order), disputes the first that ends
    elsewhere and stops replaying there (DisputeDuties.find_bad_segment)."""
    import random

    rng = random.Random(1)
    M, share, n = 32, 0.25, 4000
    picks = [simulate.compute_watched_segments(M, share, rng) for _ in range(n)]
    assert all(x == sorted(set(x)) and set(x) <= set(range(M)) for x in picks)
    mean = sum(map(len, picks)) / n
    assert abs(mean - share * M) < 4 * (M * share * (1 - share) / n) ** 0.5
    assert simulate.compute_watched_segments(M, 0.0, rng) == [] and simulate.compute_watched_segments(M, 1.0, rng) == list(range(M))
    assert simulate.compute_watch_find([1, 4, 9, 12], {9, 12, 30}) == 9
    assert simulate.compute_watch_find([1, 4], {9}) is None and simulate.compute_watch_find([], {9}) is None
    assert simulate.compute_watch_replays([1, 4, 9, 12], 9) == 3 and simulate.compute_watch_replays([1, 4, 9, 12], None) == 4
    assert simulate.expected_watch_detection(0.2, 0.0, 40) == pytest.approx(0.2)
    assert simulate.expected_watch_detection(0.0, 0.5, 2) == pytest.approx(0.75)
    assert simulate.default_watch_share(32) == 1 / 32
    v = [simulate.Agent(f"{st}#{i}", st, "verifier") for i, st in enumerate(("lazy", "honest", "colluding", "honest"))]
    assert [a.name for a in simulate.watching_verifiers(v, None)] == ["honest#1", "honest#3"]
    assert [a.name for a in simulate.watching_verifiers(v, 1)] == ["honest#1"]


def test_a_run_without_watchers_is_the_watched_runs_unwatched_twin():
    """watch_share = 0 plays exactly the unwatched run; a watched run plays the same rounds (seeds, committees, bad
    segments, members' juries): what the members catch does not change, only what watchers add."""
    pop = {"trainers": {"forger (random segment)": 1, "honest": 1}, "verifiers": {"honest": 20, "lazy": 10}}
    plain = simulate.run_disputes(P, 300, seed=21, population=pop)
    zero = simulate.run_disputes(P, 300, seed=21, population=pop, watch_share=0.0, watchers=5)
    watched = simulate.run_disputes(P, 300, seed=21, population=pop, watch_share=0.2)
    assert plain["trainers"] == zero["trainers"] and plain["verifiers"] == zero["verifiers"]
    r, w = plain["trainers"]["forger (random segment)"], watched["trainers"]["forger (random segment)"]
    for key in ("caught", "caught by honest members"):
        assert r.get(key, 0) == w.get(key, 0), key
    assert w["slashed"] >= r["slashed"] and w["detected"] > r["caught"]
    assert "watch rounds" not in plain["verifiers"]["honest"] and 19 * 300 < watched["verifiers"]["honest"]["watch rounds"] <= 20 * 300


@pytest.mark.parametrize("strategy,watchers", [("forger (random segment)", None), ("forger (segment M-2)", None),
                                               ("forger (random segment)", 5)])
def test_detection_with_watchers_is_the_exact_one(strategy, watchers):
    """Honest verifiers only (30 of them; `watchers` of them watch, all with None): a one-segment forgery is disputed
    when the dealt checks cover it or a watcher replays it, with 1 - (1 - p)(1 - SHARE)^W (within 4 sigma, 3000
    rounds), and with no covering juror every such round is convicted. The dealt checks alone are far outside."""
    share = simulate.default_watch_share(P["M"])
    pop = {"trainers": {strategy: 1}, "verifiers": {"honest": 30}}
    sim = simulate.run_disputes(P, 3000, seed=17, population=pop, watch_share=share, watchers=watchers)
    r = sim["trainers"][strategy]
    W = 30 if watchers is None else watchers
    assert sim["watchers"] == W
    p = simulate.detection_per_round(P, strategy)
    expected = simulate.expected_watch_detection(p, share, W)
    assert abs(r["detected"] / r["rounds"] - expected) < tolerance(expected, r["rounds"]), (r["detected"], expected)
    assert abs(r["detected"] / r["rounds"] - p) > tolerance(expected, r["rounds"])  # watchers measurably add
    assert abs(r["caught"] / r["rounds"] - p) < tolerance(p, r["rounds"])  # the dealt checks are unchanged
    assert r["slashed"] == r["detected"] and r["cheats accepted"] == r["rounds"] - r["detected"]
    assert sim["verifiers"]["honest"].get("watch disputes lost", 0) == 0


@pytest.mark.parametrize("lazy_juror", simulate.LAZY_JUROR_VOTES)
def test_watchers_never_convict_honest_trainers_with_a_third_lazy(lazy_juror):
    """Watchers (here each replaying a fifth of every round) dispute only a segment their replay contradicts: an
    honest trainer is never disputed by one, never convicted, with a third of the verifiers lazy."""
    pop = {"trainers": HONEST_ONLY, "verifiers": {"honest": 40, "lazy": 20}}
    sim = simulate.run_disputes(P, 600, seed=23, population=pop, lazy_juror=lazy_juror, watch_share=0.2)
    h = sim["verifiers"]["honest"]
    assert sim["trainers"]["honest"]["slashed"] == 0 and h.get("watch disputes opened", 0) == 0
    assert h["watch rounds"] >= 40 * 600 - 3 * 600 and h["watch segments replayed"] > 0.15 * 32 * h["watch rounds"]
    assert h["watch profit (ETH)"] < 0  # replays that nobody pays: watching an honest network is a loss


def test_with_watchers_every_cheat_loses_and_watching_pays_at_the_defaults(defaults):
    """The paper's runs with watchers (every honest verifier at SHARE = 1/M): every cheating strategy loses by more than
    3 standard errors in A and B; detection of a one-segment forgery is the exact formula over A and B within 4 sigma;
    watchers never convict honest trainers (the same convictions as the unwatched twin: the colluders' captured juries);
    a watcher profits per round in these cheater-heavy populations; dishonest verifiers still lose."""
    for key in ("a_watch", "b_watch"):
        sim = defaults[key]
        for st_, r in sim["trainers"].items():
            if st_ != "honest":
                assert r["profit_per_round_eth"] + 3 * r["profit_se_eth"] < 0, (key, st_)
        net, cost = simulate.watch_profit(sim)
        assert net > 0 and 0 < cost < 1.02 * simulate.default_watch_share(P["M"]) * 0.5 * P["trainer_reward_wei"] / 10**18
        twin = defaults[key[0]]
        assert sim["trainers"]["honest"]["slashed"] == twin["trainers"]["honest"]["slashed"]
        assert sim["trainers"]["honest"]["profit_per_round_eth"] > 0
    assert defaults["a_watch"]["verifiers"]["lazy"]["profit_per_round_eth"] < 0
    assert defaults["b_watch"]["verifiers"]["colluding"]["profit_per_round_eth"] < 0
    share, W = defaults["a_watch"]["watch_share"], defaults["a_watch"]["watchers"]
    assert W == 40
    for st_ in ("forger (random segment)", "forger (segment M-2)"):
        expected = simulate.expected_watch_detection(simulate.detection_per_round(P, st_), share, W)
        assert 0.75 < expected < 0.80, (st_, expected)
        rounds = sum(defaults[k]["trainers"][st_]["rounds"] for k in ("a_watch", "b_watch"))
        found = sum(defaults[k]["trainers"][st_]["detected"] for k in ("a_watch", "b_watch"))
        assert abs(found / rounds - expected) < tolerance(expected, rounds), (st_, found, rounds, expected)
    Pd = disputes_params(P)
    text = simulate.watchers_findings_markdown(Pd, defaults["a_watch"], defaults["b_watch"], defaults["a"],
                                               defaults["b"], None, P["min_trainer_stake_wei"])
    assert "**With watchers every cheating trainer loses:** skipper f=1/4, skipper f=1/2, forger (random segment), " \
           "forger (segment M-2) (" in text and "**Not negative:**" not in text


def test_with_watchers_the_stake_search_stops_lower_and_the_default_stays():
    """With every honest verifier watching at SHARE = 1/M the stake search (the paper's seeds and rounds) stops below a
    Disputes deployment's 3 ETH: reported, not adopted (the constant stays: watching is voluntary)."""
    # a third of the paper's rounds: with watchers every cheat loses by ~1 ETH per round, far beyond the noise
    found = simulate.disputes_deterring_stake(P, PAPER_ROUNDS // 3, watch_share=simulate.default_watch_share(P["M"]))
    assert found is not None
    stake, a, b = found
    assert stake == P["min_trainer_stake_wei"] < protocol.DISPUTES_MIN_TRAINER_STAKE_WEI
    assert stake < disputes_params(P)["min_trainer_stake_wei"] == protocol.DISPUTES_MIN_TRAINER_STAKE_WEI
    for sim in (a, b):
        assert all(r["profit_per_round_eth"] < 0 for st_, r in sim["trainers"].items() if st_ != "honest")


# ------------------------------------------------------------ colluders' watch attack (exact: expected_watch_campaign)
def test_a_colluders_watch_campaign_loses_from_the_first_watch_and_prices_spite():
    """§3.7: at a Disputes deployment's defaults every false watch a colluding coalition (a third) opens on an honest
    round has negative expected profit for it, each later one more so (the bond doubles), and a campaign's chance of
    convicting the honest trainer grows as 1 - (1 - p·p')^k, p the exact first-jury capture probability and p' the
    appeal jury's (the honest trainer appeals a captured count): 0 at the defaults, the appeal jury being every
    other verifier."""
    Pd = disputes_params(P)
    verifiers = simulate.DISPUTES_B["verifiers"]
    rows = simulate.expected_watch_campaign(Pd, verifiers, attempts=6)
    N, A = sum(verifiers.values()), verifiers["colluding"]
    p = protocol.compute_jury_capture_probability_finite(N - 1, A - 1, protocol.JURY_MAX)
    assert all(abs(r["p_capture"] - p) < 1e-12 for r in rows)
    assert all(r["ev_eth"] < 0 for r in rows)
    assert all(b["ev_eth"] < a["ev_eth"] and b["campaign_ev_eth"] < a["campaign_ev_eth"] for a, b in zip(rows, rows[1:]))
    p_appeal = simulate.expected_appeal_capture(N - 1, A - 1)  # every other verifier sits on the appeal: 19 of 59
    assert p_appeal == 0.0 and all(r["p_appeal_capture"] == p_appeal for r in rows)
    assert all(abs(r["p_convicted_by_k"] - (1 - (1 - p * p_appeal) ** r["attempt"])) < 1e-12 for r in rows)
    # before appeals, what a campaign convicted: with a capturable appeal jury the rows follow the product
    big = simulate.expected_watch_campaign(Pd, {"honest": 52, "colluding": 48}, attempts=3)
    pb, pa = big[0]["p_capture"], big[0]["p_appeal_capture"]
    assert 0 < pa < 1 and all(abs(r["p_convicted_by_k"] - (1 - (1 - pb * pa) ** r["attempt"])) < 1e-12 for r in big)
    assert [round(r["bond_eth"] / rows[0]["bond_eth"]) for r in rows] == [1, 2, 4, 8, 16, 32]
    # no colluders: nothing is ever captured, every watch only loses its bond
    honest_only = simulate.expected_watch_campaign(Pd, {"honest": 60, "colluding": 1}, attempts=2)
    assert honest_only[0]["p_capture"] == 0 and honest_only[0]["ev_eth"] < -honest_only[0]["bond_eth"]


def test_the_real_jury_draw_is_captured_at_the_exact_probability():
    """expected_watch_campaign takes a watch's jury as a uniform JURY_MAX-subset of the other verifiers; the jury
    Disputes.draw_jury seats (simulate.draw_jury: StakeManager's rejection sampling, the challenger dropped) is
    captured by a third colluding at that probability."""
    import random

    verifiers = simulate.DISPUTES_B["verifiers"]
    names = [f"{st}#{i}" for st, n in verifiers.items() for i in range(n)]
    entries = [(n, 0, 0) for n in names]
    rng = random.Random(5)
    captured, trials = 0, 3000
    for d in range(trials):
        jury = simulate.draw_jury(rng.getrandbits(256), simulate.WATCH_DISPUTE_IDS + d, entries, "colluding#0")
        assert len(jury) == protocol.JURY_MAX and "colluding#0" not in jury
        a = sum(j.startswith("colluding") for j in jury)
        captured += a > len(jury) - a
    N, A = len(names), verifiers["colluding"]
    p = protocol.compute_jury_capture_probability_finite(N - 1, A - 1, protocol.JURY_MAX)
    assert abs(captured / trials - p) < tolerance(p, trials), (captured, trials, p)
