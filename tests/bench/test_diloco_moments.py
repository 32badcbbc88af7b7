"""bench.diloco_moments' pure parts: the arguments it accepts, and the report's gaps and verdict."""
from __future__ import annotations

import pytest

from bench import diloco_moments as M


def test_runs_are_checked_before_anything_trains():
    assert M.parse_run("dp:preset") == ("dp", "preset", 4)
    assert M.parse_run("corrected@0.4:7:8") == ("corrected@0.4", "7", 8)
    for bad in ("corrected@0.3:7", "corrected:7", "dp:x", "dp:preset:0", "dp:preset:17", "dp", "dp:1:2:3"):
        with pytest.raises(SystemExit, match="KIND:SEED"):
            M.parse_run(bad)


def _rows(gaps: dict[str, list[float]], dp: float = 2.0) -> list[dict]:
    rows = []
    for seed in M.SEEDS:
        rows.append({"kind": "dp", "seed": seed, "eval_loss": dp})
    for kind, gs in gaps.items():
        rows += [{"kind": kind, "seed": seed, "eval_loss": dp * (1 + g / 100)} for seed, g in zip(M.SEEDS, gs)]
    return rows


def test_report_means_worsts_and_verdict():
    md = M.render(_rows({"average@0.5": [3, 4, 5, 2, 4], "corrected@0.4": [0.5, 1, 2, -3, 1]}))
    assert "| **mean** | | | **+3.6 %** | | **+0.3 %** |" in md
    assert "| worst | | | +5.0 % | | +2.0 % |" in md
    assert "(corrected, outer lr 0.4) is +0.3 % on the mean and +2.0 % at its worst seed: within 3 % at every seed" in md
    md = M.render(_rows({"corrected@0.5": [1, 1, 1, 1, 6]}))  # the mean within, one seed not
    assert "within 3 % on the mean, not at every seed" in md
    md = M.render(_rows({"average@0.4": [4, 4, 4, 4, 4]}))
    assert "not within 3 %" in md


def test_other_n_rows_are_reported_apart():
    rows = _rows({"corrected@0.4": [0, 0, 0, 0, 0]})
    rows += [{"kind": "dp", "seed": "preset", "n": 8, "eval_loss": 2.0},
             {"kind": "corrected@0.4", "seed": "preset", "n": 8, "eval_loss": 2.05}]
    md = M.render(rows)
    assert "| 8 | preset | corrected, outer lr 0.4 | 2.0500 | +2.5 % |" in md
    assert sum(line.startswith("| preset |") for line in md.splitlines()) == 1  # N = 8 stays out of the N = 4 table
    assert "N = 8, corrected, outer lr 0.4: 1 seed, +2.5 % on the mean, +2.5 % at the worst." in md


def test_other_n_seeds_are_summed_up_by_mean_and_worst():
    rows = _rows({"corrected@0.4": [0, 0, 0, 0, 0]})
    for seed, gap in (("preset", 2.0), ("3", 6.0), ("7", -1.0)):
        rows += [{"kind": "dp", "seed": seed, "n": 8, "eval_loss": 2.0},
                 {"kind": "corrected@0.4", "seed": seed, "n": 8, "eval_loss": 2.0 * (1 + gap / 100)}]
    md = M.render(rows)
    assert "N = 8, corrected, outer lr 0.4: 3 seeds, +2.3 % on the mean, +6.0 % at the worst." in md
    seeds = [line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| 8 |")]
    assert seeds == ["preset", "preset", "3", "3", "7", "7"]  # the 5-seed table's order
