"""The whitepaper's analysis and simulation: checked against brute force and the real rules."""
from __future__ import annotations

import itertools
import sys
from math import comb
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "whitepaper"))

import analysis  # noqa: E402
import simulate  # noqa: E402
from node import protocol  # noqa: E402


def brute_nonadjacent(n: int, s: int, forbidden: set[int]) -> int:
    return sum(
        1 for combo in itertools.combinations(range(n), s)
        if not forbidden & set(combo) and all(b - a > 1 for a, b in zip(combo, combo[1:]))
    )


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 12), s=st.integers(0, 5), forbidden=st.sets(st.integers(0, 11), max_size=5))
def test_count_nonadjacent_matches_brute_force(n, s, forbidden):
    assert analysis.count_nonadjacent_subsets(n, s, frozenset(forbidden)) == brute_nonadjacent(n, s, forbidden)


def test_exact_detection_is_the_rule_distribution():
    """compute_samples is uniform over non-adjacent sets: every set appears, none twice as often."""
    M, s = 9, 2
    counts: dict[tuple, int] = {}
    for seed in range(3000):
        drawn = tuple(sorted(simulate.drawn_segments(simulate.draw(seed, M, s), M)))
        assert len(drawn) == s
        counts[drawn] = counts.get(drawn, 0) + 1
    assert len(counts) == analysis.count_nonadjacent_subsets(analysis.candidate_segments(M), s)
    expected = 3000 / len(counts)
    assert all(0.5 * expected < c < 1.6 * expected for c in counts.values()), counts


@pytest.mark.parametrize("M,s,b", [(8, 2, 1), (16, 3, 2), (32, 4, 5)])
def test_monte_carlo_agrees_with_exact(M, s, b):
    bad = analysis.bad_set(M, b, "spread")
    exact = analysis.detection_nonadjacent(M, s, bad)
    measured = simulate.measured_detection(M, s, bad, 2000)
    assert abs(measured - exact) < 4 * (exact * (1 - exact) / 2000) ** 0.5 + 1e-9


def test_last_segment_is_always_caught_and_every_segment_can_be():
    assert analysis.detection_nonadjacent(16, 3, {15}) == 1.0
    assert simulate.sampled_segments_ever(16, 3, trials=500) == set(range(16))
    assert "Every segment can be checked" in simulate.describe_unchecked_segments({"M": 8, "s": 2})


def test_checked_segments_follow_compute_check_ends():
    """A drawn M-2 is checked as the span M-2..M: both M-2 and M-1 are covered."""
    assert simulate.checked_segments([0, 6], 8) == {0, 6, 7}
    assert simulate.checked_segments([0, 3, 7], 8) == {0, 3, 7}


def test_tight_parameters_leave_few_sample_sets():
    text = simulate.describe_tight_parameters({"s": 2, "M": 8})
    assert "only 3 sample sets exist" in text and "from 0.333 to 0.667" in text


def test_closed_forms():
    assert analysis.detection_binomial(0.25, 2) == pytest.approx(1 - 0.75**2)
    assert analysis.detection_hypergeometric(10, 2, 3) == pytest.approx(1 - comb(8, 3) / comb(10, 3))
    assert analysis.min_stake(0.0, reward=1.0, value_if_accepted=1.0) == float("inf")
    assert analysis.min_stake(0.5, reward=0.0, value_if_accepted=3.0) == pytest.approx(3.0)
    assert analysis.cheat_advantage(0.5, slash=3.0, reward=0.0, value_if_accepted=3.0) == pytest.approx(0.0)
    assert analysis.verifier_compute_fraction(64, 8, 2, 3) == pytest.approx(3 * 8 / 64 * 3)
    with pytest.raises(ValueError, match="analysis"):
        analysis.verifier_compute_fraction(64, 7, 2)
    with pytest.raises(ValueError, match="analysis"):
        analysis.bad_set(8, 8, "spread")


def test_colluding_majority_matches_brute_force():
    N, A, c, need = 9, 4, 3, 2
    hits = sum(1 for combo in itertools.combinations(range(N), c) if sum(i < A for i in combo) >= need)
    assert analysis.p_colluding_majority(N, A, c, need) == pytest.approx(hits / comb(N, c))
    assert simulate.colluders_needed_to_capture(3) == 2  # a tie is accepted by compute_tally
    assert simulate.colluders_needed_to_capture(4) == 2


PARAMS = {"S": 64, "k": 8, "M": 8, "s": 2, "c": 3, "q": 2, "trainer_reward_wei": 10**17,
          "verifier_reward_wei": 10**16, "trainer_slash_bps": 5_000, "verifier_slash_bps": 500,
          "fraud_reward_bps": 5_000, "min_trainer_stake_wei": 10**18, "min_verifier_stake_wei": 10**18}


def test_simulation_honest_majority_never_slashes_honest_and_cheaters_lose():
    population = {"trainers": {"honest": 2, "skipper f=1/4": 1, "forger (random segment)": 1},
                  "verifiers": {"honest": 10, "colluding": 2}}
    sim = simulate.run(PARAMS, rounds=240, seed=3, population=population)
    assert sim["trainers"]["honest"]["slashed"] == 0
    assert sim["trainers"]["honest"]["profit_per_round_eth"] > 0
    assert sim["trainers"]["skipper f=1/4"]["profit_per_round_eth"] < 0
    assert sim["trainers"]["forger (random segment)"]["slashed"] > 0
    assert sim["verifiers"]["honest"]["profit_per_round_eth"] > 0


def test_simulation_catches_a_forgery_at_segment_m_minus_2():
    population = {"trainers": {"forger (segment M-2)": 1}, "verifiers": {"honest": 6}}
    sim = simulate.run(PARAMS, rounds=60, seed=1, population=population)
    assert 0 < sim["trainers"]["forger (segment M-2)"]["slashed"] < 60


def test_simulation_lazy_majority_slashes_honest_trainers():
    population = {"trainers": {"honest": 1}, "verifiers": {"lazy": 3}}
    sim = simulate.run(PARAMS, rounds=10, seed=1, population=population)
    assert sim["trainers"]["honest"]["slashed"] == 10
    assert sim["honest_trainer_slashes_by_cause"] == {"lazy majority": 10}


def test_detection_at_least_the_bad_fraction():
    """§5.1 relies on p >= f = b/M for every bad set: checked exhaustively for M <= 12."""
    for M in range(3, 13):
        n = analysis.candidate_segments(M)
        for s in range(1, (M - 1) // 2 + 1):
            for b in range(1, n + 1):
                for bad in itertools.combinations(range(n), b):
                    assert analysis.detection_nonadjacent(M, s, set(bad)) >= b / M, (M, s, bad)


def test_simulation_claims_hold_and_the_findings_say_what_the_tables_show():
    """§5.6's findings are generated from the simulation; the invariants behind them must hold at the
    defaults (the demo preset: M = 32, the deployment's 1 ETH minimum stake), and forgery's profitability
    must follow the analysis of §5.1: it pays where p·(R+D)/(1−p) < V for one segment's detection p."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "whitepaper"))
    from make_figures import default_params

    P = default_params()
    assert (P["M"], P["s"]) == (32, 2) and P["min_trainer_stake_wei"] == 10**18 and P["task_min_trainer_stake_wei"] == 0
    V = simulate.ASSUMPTIONS["value of an accepted forgery V"] * P["trainer_reward_wei"]

    def deterred(P, p):
        D = P["min_trainer_stake_wei"] * P["trainer_slash_bps"] // 10_000
        return p * (P["trainer_reward_wei"] + D) / (1 - p) >= V

    def play(P, rounds=600):
        return (simulate.run(P, rounds=rounds, seed=7),
                simulate.run(P, rounds=rounds, seed=8, population=simulate.RARE_CHEATING))

    forgers = ("forger (random segment)", "forger (segment M-2)")
    a, b = play(P, rounds=2000)
    for sim in (a, b):
        assert sim["trainers"]["honest"]["profit_per_round_eth"] > 0
        assert set(sim["honest_trainer_slashes_by_cause"]) <= {"lazy majority"}
    assert a["verifiers"]["colluding"]["profit_per_round_eth"] < a["verifiers"]["honest"]["profit_per_round_eth"]
    for st in ("skipper f=1/4", "skipper f=1/2"):  # p >= f and R + D >= C: skipping never pays
        assert a["trainers"][st]["profit_per_round_eth"] < 0
    assert b["verifiers"]["lazy"]["profit_per_round_eth"] < b["verifiers"]["honest"]["profit_per_round_eth"]
    # M = 32 against the deployment's minimum: the analysis says a forgery worth R pays, and so does the simulation
    assert not deterred(P, (P["s"] + 1) / P["M"])
    assert all(a["trainers"][f]["profit_per_round_eth"] > 0 for f in forgers)
    assert ("**Profitable at these parameters:** forger (random segment), forger (segment M-2)"
            in simulate.findings_markdown(a, b, P))

    # the task minimum that deters it at the least-sampled position: forgers lose, and so do honest trainers'
    # margins (a lazy majority's false convictions cost more); the paper's trade-off bullet says both
    p_worst = 0.064
    high = {**P, "min_trainer_stake_wei": simulate.deterring_stake_wei(P, p_worst)}
    assert high["min_trainer_stake_wei"] == 3 * 10**18 and deterred(high, p_worst)
    a3 = simulate.run(high, rounds=2000, seed=7)  # the paper's run: few forger rounds make 600 noisy
    assert all(a3["trainers"][f]["profit_per_round_eth"] < a["trainers"][f]["profit_per_round_eth"] for f in forgers)
    assert a3["trainers"]["forger (random segment)"]["profit_per_round_eth"] < 0
    assert a3["trainers"]["honest"]["profit_per_round_eth"] < a["trainers"]["honest"]["profit_per_round_eth"]
    bullet = simulate.stake_tradeoff_markdown(P, high, p_worst, a, a3)
    assert "`min_trainer_stake` = 3 ETH" in bullet and "for honest trainers" in bullet

    m8 = {**P, "S": 64, "k": 8, "M": 8}  # the earlier demo spec: a third of the segments replayed
    assert deterred(m8, 3 / 8)
    a8, _ = play(m8, rounds=400)
    assert all(a8["trainers"][f]["profit_per_round_eth"] < 0 for f in forgers)


def test_bench_tables_render_measured_sections_and_pending_otherwise(tmp_path):
    import bench_tables

    assert "Pending" in bench_tables.all_tables(None)["gas_table"]
    engine = {"sizes": {"demo": {"params": 120576, "threads": 1, "plain_step_s": 0.01, "deterministic_step_s": 0.0105,
                                 "deterministic_over_plain": 1.05, "replay_s": 0.2, "replay_steps": 8,
                                 "state_bytes": 1_450_000, "hash_parallel_gbps": 1.1, "hash_single_gbps": 0.9}}}
    tables = bench_tables.all_tables({"engine": engine, "chain": {"devnet_up_s": 1.5}})
    assert "| demo | 120,576 | 1 | 10.0 ms | 10.5 ms | 1.050 |" in tables["engine_table"]
    assert "| devnet up (s) | 1.5 |" in tables["chain_table"]
    assert [p.name for p in bench_tables.figures({"engine": engine}, tmp_path)] == ["step_time.png"]
    assert bench_tables.figures(None, tmp_path) == []


def test_gas_table_adds_up_one_round():
    import bench_tables

    gas = {"stake": 1, "create_task": 2, "commit": 100, "seal": 10, "reveal_starts": 20, "commit_verdict": 7,
           "commit_verdict_mean": 5, "reveal_ends": 30, "commit_final": 8, "commit_final_mean": 4, "reveal_verdict": 9,
           "reveal_verdict_mean": 6, "finalize": 40, "claim": 1}
    # c·(commit_verdict + commit_final + reveal_verdict) at the mean member
    assert bench_tables.round_gas(3, gas) == 100 + 10 + 20 + 30 + 40 + 3 * (5 + 4 + 6) + 4 * 1
    table = bench_tables.table_for("gas_table", {"gas": {"c3_s2_steps32": gas}})
    assert "| 3 | 2 | 32 | 1 | 2 | 100 | 10 | 20 | 7 | 30 | 8 | 9 | 40 | 1 | **249** | 18% |" in table
    assert "c·(commit_verdict + commit_final + reveal_verdict)" in table


def test_gas_table_renders_results_from_before_commit_final():
    import bench_tables

    old = {"stake": 1, "create_task": 2, "commit": 100, "seal": 10, "reveal_starts": 20, "commit_verdict": 7,
           "commit_verdict_mean": 5, "reveal_ends": 30, "reveal_verdict": 9, "reveal_verdict_mean": 6,
           "finalize": 40, "claim": 1}
    assert bench_tables.round_gas(3, old) == 100 + 10 + 20 + 30 + 40 + 3 * (5 + 6) + 4 * 1
    table = bench_tables.table_for("gas_table", {"gas": {"c3_s2_steps32": old}})
    assert "| 3 | 2 | 32 | 1 | 2 | 100 | 10 | 20 | 7 | 30 | — | 9 | 40 | 1 | **237** | 14% |" in table


def test_rounds_table_renders_time_per_round_and_the_breakdown():
    import bench_tables

    spec = {"params": 10, "steps_per_round": 1024, "segment_steps": 32, "samples": 2, "committee": 3}
    seq_round = {"round_id": 1, "wall_s": 28.0, "blocks": 11, "gas_total": 2_000_000, "outcome": 1,
                 "breakdown": {"training_s": 16.5, "waiting_s": 5.0}}
    rounds = {"block_time_s": 1.0,
              "demo": {"spec": spec, "pipeline": True, "baseline": {"pure_training_s": 16.0}, "period_s": 17.0,
                       "overhead": 0.0625, "verify_latency_s": 11.0, "rounds": [{"round_id": 2}, {"round_id": 3}]},
              "demo_sequential": {"spec": spec, "pipeline": False, "baseline": {"pure_training_s": 16.0},
                                  "period_s": 28.0, "overhead": 0.75, "verify_latency_s": 11.0, "rounds": [seq_round]}}
    table = bench_tables.table_for("rounds_table", {"rounds": rounds})
    assert "| pipelined | 1024 | 16.00 s | 17.00 s | 6.2% | 11.00 s |" in table
    assert "| sequential | 1024 | 16.00 s | 28.00 s | 75.0% | 11.00 s |" in table
    assert "| 1 | 28.00 s | 16.50 s |" in table and "| 11 | 2,000,000 | accepted |" in table
