"""bench.diloco's pure parts: the parallel wall time the quality figure plots, the rule each run names, and the
per-epoch table's columns."""
from __future__ import annotations

from hypothesis import given, strategies as st

from bench import diloco as D


def test_an_epoch_on_n_machines_waits_for_its_slowest_slot():
    assert D.compute_parallel_seconds([1.0, 3.0, 2.0], 0.5) == 3.5
    assert D.compute_parallel_seconds([], 0.25) == 0.25  # no slot timed: only the outer step


@given(st.lists(st.floats(0.0, 1e3), min_size=1, max_size=16), st.floats(0.0, 10.0))
def test_parallel_time_is_between_the_slowest_slot_and_the_sequential_sum(slots, outer):
    par = D.compute_parallel_seconds(slots, outer)
    assert max(slots) + outer <= par + 1e-9
    assert par <= sum(slots) + outer + 1e-9


def test_data_parallel_is_credited_its_ideal_split():
    assert D.compute_dp_parallel_seconds(8.0, 4) == 2.0
    assert D.compute_dp_parallel_seconds(8.0, 1) == 8.0


def test_each_run_names_its_moment_rule():
    res = {"inner_moments": "corrected"}
    assert D.rule_of("diloco-4", res) == "corrected"
    assert D.rule_of("diloco-8-average", res) == "average"
    assert D.rule_of("diloco-8-reset", res) == "reset"
    assert D.rule_of("dp-4", res) == "" and D.rule_of("single", res) == ""
    assert D.rule_of("diloco-4", {}) == "average"  # runs before the rule was recorded averaged


@given(st.integers(1, 300), st.integers(1, 32))
def test_the_curve_table_keeps_at_most_its_columns_and_the_last_epoch(epochs, columns):
    curve = [{"epoch": e + 1} for e in range(epochs)]
    shown = D.every_kth(curve, columns)
    assert len(shown) <= columns + 1 and shown[-1] is curve[-1]
    assert [c["epoch"] for c in shown] == sorted({c["epoch"] for c in shown})
    if epochs <= columns:
        assert shown == curve


def test_an_epoch_keeps_only_its_state_and_the_genesis_stays(tmp_path):
    genesis = tmp_path / "genesis.safetensors"
    genesis.write_bytes(b"g")
    for e in (0, 1):
        for i in (0, 1):
            (tmp_path / f"epoch-{e:05d}" / f"slot-{i:02d}").mkdir(parents=True)
            (tmp_path / f"epoch-{e:05d}" / f"slot-{i:02d}" / "seg.safetensors").write_bytes(b"s")
        (tmp_path / f"epoch-{e:05d}" / "state.safetensors").write_bytes(b"x")
    D.prune_epoch(tmp_path / "epoch-00000" / "state.safetensors", genesis)
    assert genesis.exists() and (tmp_path / "epoch-00000" / "state.safetensors").exists()
    assert not list((tmp_path / "epoch-00000").glob("slot-*"))
    D.prune_epoch(tmp_path / "epoch-00001" / "state.safetensors", tmp_path / "epoch-00000" / "state.safetensors")
    assert not (tmp_path / "epoch-00000").exists()
    assert sorted(p.name for p in (tmp_path / "epoch-00001").iterdir()) == ["state.safetensors"]
