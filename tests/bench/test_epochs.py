"""bench/epochs.py's steady-state computation and its report, on synthetic epochs (no chain, no torch)."""
from __future__ import annotations

import pytest

from bench import epochs


def test_periods_are_the_gaps_between_consecutive_closes_against_that_epochs_slowest_training():
    closed = {0: 100, 1: 130, 2: 152}  # block timestamps of EpochClosed 0, 1, 2
    slowest = {0: 10.0, 1: 20.0, 2: 20.0}
    s = epochs.steady_state(closed, slowest, {0: 2, 1: 2, 2: 1}, 512)
    assert [p["epoch"] for p in s["periods"]] == [1, 2]  # epoch 0 has no predecessor: no period
    assert [p["period_s"] for p in s["periods"]] == [30, 22]
    assert [p["overhead"] for p in s["periods"]] == [0.5, 0.1]
    assert s["period_s"] == 26 and s["slowest_train_s"] == 20
    assert s["overhead"] == pytest.approx(52 / 40 - 1)  # Σ period / Σ training - 1, not the mean of the ratios
    assert s["steps"] == (2 + 1) * 512 and s["steps_per_s"] == round(3 * 512 / 52, 2)


def test_a_missing_close_or_training_gives_no_period_or_no_overhead_rather_than_a_made_up_one():
    s = epochs.steady_state({0: 100, 2: 160}, {2: 20.0}, {2: 1}, 512)
    assert s["periods"] == [] and s["overhead"] is None and s["steps_per_s"] is None and s["period_s"] is None
    s = epochs.steady_state({0: 100, 1: 130}, {}, {1: 1}, 512)
    assert s["periods"][0]["overhead"] is None and s["overhead"] is None and s["steps_per_s"] == round(512 / 30, 2)


def test_pure_rate_is_one_trainers_and_the_ratio_is_n_without_overhead():
    pure = epochs.pure_steps_per_s([10.0, 14.0], 512)  # two slots: mean 12 s
    assert pure == round(512 / 12, 2)
    # N = 2 slots per 12 s period with no overhead: twice one trainer's rate
    s = epochs.steady_state({0: 0, 1: 12, 2: 24}, {1: 12.0, 2: 12.0}, {1: 2, 2: 2}, 512)
    assert s["overhead"] == 0 and epochs.ratio(s["steps_per_s"], epochs.pure_steps_per_s([12.0], 512)) == pytest.approx(2, abs=1e-2)
    assert epochs.pure_steps_per_s([], 512) is None and epochs.ratio(None, 3.0) is None


def test_report_states_steady_overhead_and_latency_apart():
    ep = {"epoch": 1, "accepted": [0], "latency_s": 26, "slowest_train_s": 13.0, "latency_overhead": 1.0, "trained_ahead": 1,
          "blocks": 26, "from_prev_close": 2, "to_last_commit": 3, "to_ends_revealed": 9, "slot_rounds": 15,
          "aggregation": 8, "ahead_window_s": 14}
    s = epochs.steady_state({0: 0, 1: 28}, {1: 13.0}, {1: 1}, 512)
    res = [{"n": 1, "H": 512, "epochs": [ep], "span_s": 60, "verified_steps": 1024, "steps_per_s": 17.07,
            "pure_steps_per_s": 39.38, "ratio": 0.433, "steady": {**s, "ratio": epochs.ratio(s["steps_per_s"], 39.38)},
            "verifier_cpu_s": 40.0,
            "bench": {"started": "2026-12-03 10:00 UTC", "seconds": 100, "load_before": 0.1, "load_after": 1.5}}]
    md = epochs.write_md(res)
    assert "## Steady state (throughput)" in md and "## Per epoch (latency, not throughput)" in md
    assert f"**{s['overhead'] * 100:.0f} %**" in md and "| 1 | 512 | alone | 1 | [0] | 1 | 26 | 26 | 2 | 3 | 9 | 15 | 8 | 14 | 13.0 | 100 % | n/a |" in md
    assert "H = 512, N = 1: run 2026-12-03 10:00 UTC, 100 s, load average (1 min) 0.10 before, 1.50 after" in md


def test_merge_replaces_the_same_n_and_h_and_keeps_the_others_each_with_its_own_run():
    old = [{"n": 1, "H": 512, "v": "old", "bench": {"started": "a"}}, {"n": 2, "H": 512, "v": "old", "bench": {"started": "a"}}]
    new = [{"n": 1, "H": 8192, "v": "new", "bench": {"started": "b"}}, {"n": 2, "H": 512, "v": "new", "bench": {"started": "b"}}]
    got = epochs.merge(old, new)
    assert [(r["n"], r["H"], r["v"]) for r in got] == [(1, 512, "old"), (2, 512, "new"), (1, 8192, "new")]
    # a run with the final handoff does not replace one without it (an A/B of the same N, H): both are kept
    handoff = [{"n": 2, "H": 512, "v": "handoff", "handoff": True, "bench": {"started": "c"}}]
    got = epochs.merge(got, handoff)
    assert [(r["n"], r["H"], r["v"], epochs.finals_from(r)) for r in got] == [
        (1, 512, "old", "alone"), (2, 512, "new", "ends reveal"), (2, 512, "handoff", "handoff"), (1, 8192, "new", "alone")]
    assert epochs.merge(got, [{**handoff[0], "v": "again"}])[2]["v"] == "again"


def test_phase_blocks_follow_the_slowest_slot_from_its_commit_and_the_aggregation_from_the_last_finalize():
    at = {("SlotCommitted", 7): 100, ("RoundSealed", 7): 103, ("EndsRevealed", 7): 115, ("SlotFinalized", 7): 120,
          ("SlotCommitted", 8): 101, ("RoundSealed", 8): 104, ("EndsRevealed", 8): 118, ("SlotFinalized", 8): 125,
          ("AggregationOpened", (1, 0)): 128, ("AggregatePosted", (1, 0)): 131}
    assert epochs.round_phases(at, [7, 8]) == {"RoundSealed": 3, "EndsRevealed": 17, "SlotFinalized": 24}
    assert epochs.round_phases(at, [9]) is None
    assert epochs.aggregation_phases(at, 1, 0, 125, 134) == {"AggregationOpened": 3, "AggregatePosted": 6, "EpochClosed": 9}
    assert epochs.aggregation_phases(at, 1, 0, None, 134) is None
