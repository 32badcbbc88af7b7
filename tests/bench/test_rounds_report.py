"""bench/rounds.py's bookkeeping and bench/report.py's table, on synthetic results (no chain, no torch).

The devnet measurement itself runs in `make bench`; these check that what it reports
is computed right: timings attributed to the right round, a breakdown that adds up to
the wall time, ratios against the right baseline, targets judged, nothing invented.
"""
from __future__ import annotations

import copy

import pytest

from bench import report, rounds


def timing(i, round_id, stage, seconds, ts):
    return {"id": i, "role": "trainer", "round_id": round_id, "stage": stage, "seconds": seconds, "ts": ts}


def test_trainer_timings_attributes_pre_commit_stages_to_the_next_round():
    rows = [
        timing(1, None, "fetch", 0.1, 10.0), timing(2, None, "train", 5.0, 15.0), timing(3, None, "upload", 0.2, 15.2),
        timing(4, None, "tx:commit", 0.5, 15.7), timing(5, 1, "tx:seal", 0.9, 19.0), timing(6, 1, "round", 12.0, 27.7),
        timing(7, None, "fetch", 0.3, 30.0), timing(8, None, "train", 6.0, 36.0), timing(9, None, "upload", 0.4, 36.4),
        timing(10, None, "tx:commit", 0.6, 37.0), timing(11, 2, "tx:seal", 1.0, 40.0),
    ]
    second = rounds.trainer_timings(rows, 2)
    assert rounds.round_start(second) == pytest.approx(37.0 - 0.6 - 0.3 - 6.0 - 0.4)
    assert second["fetch"]["seconds"] == 0.3 and second["train"]["seconds"] == 6.0
    assert second["tx:commit"]["ts"] == 37.0 and second["tx:seal"]["round_id"] == 2
    first = rounds.trainer_timings(rows, 1)
    assert first["train"]["seconds"] == 5.0 and first["round"]["seconds"] == 12.0
    with pytest.raises(KeyError):
        rounds.trainer_timings(rows, 3)


def test_pre_commit_stages_filed_under_the_round_after_its_commit_are_found_too():
    """node/roles/trainer.py may record fetch/train/upload under the round id once the commit names it."""
    rows = [
        timing(1, None, "tx:commit", 0.5, 15.7), timing(2, 1, "fetch", 0.1, 15.8), timing(3, 1, "train", 5.0, 15.8),
        timing(4, 1, "upload", 0.2, 15.8), timing(5, 1, "tx:seal", 0.9, 19.0),
    ]
    t = rounds.trainer_timings(rows, 1)
    assert {"tx:commit", "fetch", "train", "upload", "tx:seal"} <= set(t)
    assert rounds.round_start(t) == pytest.approx(15.7 - 0.5 - 0.1 - 5.0 - 0.2)


def test_breakdown_adds_up_to_the_wall_time():
    rep = {"wall_s": 20.0, "train_s": 6.0, "fetch_s": 0.2, "upload_s": 0.3, "trainer_tx_s": 4.0,
           "replay_slowest_member_s": 2.5, "fetch_final_s": 0.1}
    parts = rounds.breakdown(rep, {"pure_training_cpu_s": 4.0, "train_round_cpu_s": 5.0})
    assert parts["training_s"] == pytest.approx(4.8)  # 6.0 s in the node x the baseline's 4/5 steps share (CPU)
    assert parts["hashing_and_checkpoints_s"] == pytest.approx(1.2)
    assert sum(parts.values()) == pytest.approx(20.0)
    assert parts["waiting_s"] == pytest.approx(20.0 - 6.0 - 0.5 - 2.6 - 4.0)


def test_detection_counted_with_the_contract_rule_matches_the_exact_analysis():
    M, s, b = 16, 3, 2
    exact = rounds.detection_exact(M, s, b)["spread"]
    counted = rounds.detection_counted(M, s, b, trials=3000, seed=1)
    assert abs(counted - exact) < 0.04, (counted, exact)
    assert rounds.min_samples_for(16, 1, 0.99) is None  # one faked segment of 16 cannot be caught at 99%
    s99 = rounds.min_samples_for(1024, 103, 0.99)
    assert min(rounds.detection_exact(1024, s99, 103).values()) >= 0.99
    assert min(rounds.detection_exact(1024, s99 - 1, 103).values()) < 0.99


def scaling_row(v, c, steps, gas, wall, checks=3):
    return {"verifiers": v, "committee": c, "steps": steps, "segments": steps // 4, "gas_total": gas, "wall_s": wall,
            "blocks": 9, "train_s": 1.0, "replay_slowest_member_s": 0.5, "checks": checks}


BASELINE_1024 = {"pure_training_s": 16.0, "pure_training_cpu_s": 16.0, "train_round_s": 16.8, "train_round_cpu_s": 16.8,
                 "hashing_and_checkpoints_share": 0.8 / 16.8}
SPEC_1024 = {"params": 100_000, "steps_per_round": 1024, "segment_steps": 32, "samples": 2, "committee": 3,
             "seal_delay_blocks": 2}


def measured_round(round_id, committed_at, train_s=16.8, wall_s=30.0, wait_ahead=None):
    """A round as Devnet.round_report gives it."""
    return {"round_id": round_id, "outcome": 1, "committee": 3, "checks": 3, "gas_total": 2_500_000, "blocks": 10,
            "wall_s": wall_s, "fetch_s": 0.1, "train_s": train_s, "upload_s": 0.4, "trainer_tx_s": 4.0, "commit_tx_s": 1.0,
            "committed_at": committed_at, "finalized_at": committed_at + 11.0, "wait_ahead_s": wait_ahead,
            "verify_latency_s": 11.0, "replay_slowest_member_s": 2.0, "fetch_final_s": 0.1, "replay_members_s": [2.0]}


def overhead_run(rounds_, pipeline, baseline=BASELINE_1024, spec=SPEC_1024):
    return rounds.derive_overhead({"spec": dict(spec), "baseline": dict(baseline), "pipeline": pipeline, "rounds": rounds_})


def synthetic_results() -> dict:
    scaling = rounds.scaling_with_ratios([
        scaling_row(3, 3, 32, 2_000_000, 10.0), scaling_row(3, 3, 64, 2_010_000, 12.0),
        scaling_row(3, 3, 4096, 2_060_000, 60.0), scaling_row(7, 7, 64, 3_000_000, 18.0)])
    short_base = {"pure_training_s": 1.0, "pure_training_cpu_s": 1.0, "train_round_s": 1.1, "train_round_cpu_s": 1.1,
                  "hashing_and_checkpoints_share": 0.09}
    short_spec = {**SPEC_1024, "steps_per_round": 64, "segment_steps": 8}
    res = {
        "block_time_s": 1.0, "quick": False, "targets": rounds.TARGETS,
        # commits 17.2 s apart: (17.2 - 16) / 16 = 7.5% overhead
        "demo": overhead_run([measured_round(i, 100.0 + 17.2 * i, wait_ahead=2.0) for i in range(1, 5)], True),
        "demo_sequential": overhead_run([measured_round(5, 300.0), measured_round(6, 330.0, wall_s=32.0)], False),
        "short": overhead_run([measured_round(i, 500.0 + 12.0 * i, train_s=1.1) for i in (7, 8, 9)], True,
                              short_base, short_spec),
        "compute": [
            {"design": "demo spec", "steps_per_round": 64, "segment_steps": 8, "samples": 2, "segments": 8,
             "replayed_steps_per_member": 24, "replay_fraction": 0.375, "fake_segments": 1, "detection_spread": 0.3,
             "detection_block": 0.3, "detection_counted": 0.3, "min_samples_for_99": None,
             "trainer_cpu_s": 4.0, "verifier_cpu_s": 1.8, "measured_fraction_cpu": 0.45, "measured_fraction_wall": 0.5},
            {"design": "S=1024, k=1, s=44", "steps_per_round": 1024, "segment_steps": 1, "samples": 44, "segments": 1024,
             "replayed_steps_per_member": 45, "replay_fraction": 0.0439, "fake_segments": 103, "detection_spread": 0.9914,
             "detection_block": 0.9933, "detection_counted": 0.99, "min_samples_for_99": 43}],
        "scaling": scaling,
    }
    res["summary"] = rounds.summarize(res)
    return res


def test_pipelined_time_per_round_is_commit_to_commit_and_sequential_is_the_round_wall():
    res = synthetic_results()
    demo, seq, short = res["demo"], res["demo_sequential"], res["short"]
    assert demo["period_s"] == pytest.approx(17.2) and demo["overhead"] == pytest.approx(0.075)
    assert demo["met_overhead_target"] is True and demo["wait_ahead_s"] == 2.0
    assert demo["training_in_round_s"] == pytest.approx(16.8 * 16.0 / 16.8)
    assert seq["period_s"] == pytest.approx(31.0) and seq["overhead"] == pytest.approx(15.0 / 16.0)
    assert seq["met_overhead_target"] is False and "breakdown" in seq["rounds"][0] and "breakdown" not in demo["rounds"][0]
    assert short["overhead"] == pytest.approx(11.0)  # latency-bound: 12 s a round for 1 s of training
    with pytest.raises(RuntimeError, match="commit to commit"):
        overhead_run([measured_round(1, 0.0)], True)


def test_scaling_ratios_are_to_the_same_run_baseline_and_gas_flatness_is_judged():
    scal = synthetic_results()["scaling"]
    by = {(r["verifiers"], r["committee"], r["steps"]): r for r in scal["rows"]}
    assert by[(3, 3, 64)]["gas_ratio"] == 1.0 and by[(3, 3, 64)]["wall_ratio"] == 1.0
    assert by[(7, 7, 64)]["gas_ratio"] == pytest.approx(3_000_000 / 2_010_000, rel=1e-3)
    assert scal["gas_spread_over_steps"] == pytest.approx(1.03) and scal["met_gas_flat_target"] is True
    steep = rounds.scaling_with_ratios([scaling_row(3, 3, 32, 2_000_000, 1), scaling_row(3, 3, 64, 2_400_000, 1)])
    assert steep["met_gas_flat_target"] is False  # the committee-7 row is not a steps point
    # a round with one check fewer (the draw, not S) is shown but not judged for flatness
    drawn = rounds.scaling_with_ratios([scaling_row(3, 3, 32, 1_900_000, 1, checks=2), scaling_row(3, 3, 64, 2_000_000, 1),
                                        scaling_row(3, 3, 4096, 2_040_000, 1)])
    assert drawn["gas_flat_steps_compared"] == [64, 4096] and drawn["met_gas_flat_target"] is True
    assert drawn["gas_spread_every_round"] == pytest.approx(2_040_000 / 1_900_000, rel=1e-3)
    with pytest.raises(RuntimeError, match="baseline"):
        rounds.scaling_with_ratios([scaling_row(7, 3, 64, 1, 1)])


def test_summary_judges_the_targets_and_the_markdown_says_missed():
    res = synthetic_results()
    s = res["summary"]
    assert s["protocol_overhead_met"] is True and s["sequential_overhead"] == pytest.approx(15.0 / 16.0)
    assert s["target_design"] == "S=1024, k=1, s=44" and s["replay_and_detection_met"] is True
    assert s["short_steps"] == 64 and s["short_overhead"] == pytest.approx(11.0)
    md = rounds.render_markdown(res)
    assert "S=1024, k=1, s=44" in md and "**missed**" not in md
    assert "| demo | pipelined | 1024 | 4 | 16.00 s | 17.20 s | **7.5%** |" in md
    assert "| short | pipelined | 64 | 3 | 1.00 s | 12.00 s | **1100.0%** |" in md
    slow = copy.deepcopy(res)
    slow["demo"] = overhead_run([measured_round(i, 100.0 + 18.0 * i) for i in range(1, 4)], True)
    slow["summary"] = rounds.summarize(slow)
    assert slow["summary"]["protocol_overhead_met"] is False and "**missed**" in rounds.render_markdown(slow)
    res2 = copy.deepcopy(res)
    res2["compute"][1]["detection_block"] = 0.95  # no design at S >= 1024 reaches 99%: the target fails
    assert rounds.summarize(res2)["replay_and_detection_met"] is False


def test_readme_table_has_ratios_to_baselines_and_lists_missing_sections():
    res = {"machine": {"cpu": "Test CPU", "cores": 2, "python": "3.11", "platform": "linux"},
           "rounds": synthetic_results(), "rounds_wall_s": 300.0,
           "gas": {"c3_s2_steps32": {"commit": 100, "seal": 100, "reveal_starts": 100, "reveal_ends": 100, "finalize": 100,
                                     "commit_verdict": 10, "reveal_verdict": 10, "claim": 1},
                   "c3_s2_steps4096": {"commit": 110, "seal": 100, "reveal_starts": 110, "reveal_ends": 110, "finalize": 100,
                                       "commit_verdict": 10, "reveal_verdict": 10, "claim": 1}},
           "chain": {"stake_tx_automine_s": 0.05, "stake_tx_block_time_1s_s": 1.0}}
    md = report.render(res)
    assert "Test CPU, 2 cores" in md
    # gas: 5*100 + 3*20 + 4 = 564 at 32 steps, 594 at 4096 -> 1.05x, flat target met (594/564 = 1.053 > 1.05: not met)
    gas_line = next(l for l in md.splitlines() if "4096 steps (contract level)" in l)
    assert "594 gas" in gas_line and "**1.05×**" in gas_line and gas_line.rstrip().endswith("**no** |")
    assert any("stake tx" in l and "**20×**" in l for l in md.splitlines())
    overhead = next(l for l in md.splitlines() if "time per round, pipelined trainer (the default" in l)
    assert "**1.07×**" in overhead and overhead.rstrip().endswith("yes |")  # 17.2 / 16 = 1.075
    sequential = next(l for l in md.splitlines() if "time per round, sequential trainer" in l)
    assert "**1.94×**" in sequential and sequential.rstrip().endswith("— | — |")
    assert "Not in this results.json (did not run or failed): engine, store, dapp." in md


def test_gas_rows_count_each_members_final_flag_commit():
    x = {"commit": 100, "seal": 100, "reveal_starts": 100, "reveal_ends": 100, "finalize": 100, "commit_verdict": 12,
         "commit_verdict_mean": 10, "commit_final": 9, "commit_final_mean": 7, "reveal_verdict": 11,
         "reveal_verdict_mean": 10, "claim": 1}
    # 5*100 + 3*(10 + 7 + 10) + 4*1 = 585: c·(commit_verdict + commit_final + reveal_verdict) at the mean member
    row = report.gas_rows({"c3_s2_steps32": x})[0]
    assert row.cells[2] == "585 gas"
    # results from before commit_final (no key): the member's two other calls only, as before
    old = {k: v for k, v in x.items() if not k.startswith("commit_final")}
    assert report.gas_rows({"c3_s2_steps32": old})[0].cells[2] == "564 gas"


def test_the_first_compute_design_is_the_demo_preset():
    from node.engine.spec import TaskSpec

    demo = TaskSpec.preset("demo")
    name, S, k, s, measured = rounds.DESIGNS[0]
    assert (name, S, k, s, measured) == ("demo spec", demo.steps_per_round, demo.segment_steps, demo.protocol.samples, True)
