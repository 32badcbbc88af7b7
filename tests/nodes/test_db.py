"""NodeDB: rounds, salts and duties survive a reopen (a killed node resumes from them)."""
import multiprocessing
import os

from node.roles.db import NodeDB
from node.roles.metrics import NodeMetrics


def test_round_fields_merge_and_survive_reopen(tmp_path):
    path = tmp_path / "node.sqlite"
    with NodeDB(path) as db:
        db.save_round("verifier", 7, task_id=1, phase="replayed", salt=b"\x01" * 32, end_hashes=[b"\xaa" * 32])
        db.set_phase("verifier", 7, "committed", tx_hash="0xabc")
    with NodeDB(path) as db:
        r = db.get_round("verifier", 7)
        assert r.phase == "committed" and r.task_id == 1
        assert r.data["salt"] == b"\x01" * 32  # bytes in, bytes out (0x-hex text on disk)
        assert r.data["end_hashes"] == [b"\xaa" * 32]
        assert r.data["tx_hash"] == "0xabc"
        assert db.get_round("trainer", 7) is None


def test_open_rounds_excludes_done(tmp_path):
    with NodeDB(tmp_path / "db") as db:
        db.save_round("trainer", 1, 1, "done")
        db.save_round("trainer", 2, 1, "committed")
        db.save_round("verifier", 3, 1, "committed")
        assert [r.round_id for r in db.rounds("trainer", open_only=True)] == [2]
        assert [r.round_id for r in db.rounds()] == [1, 2, 3]


def test_set_phase_of_unknown_round_raises(tmp_path):
    with NodeDB(tmp_path / "db") as db:
        try:
            db.set_phase("trainer", 99, "done")
        except KeyError as exc:
            assert "no trainer round 99" in str(exc)
        else:
            raise AssertionError("set_phase on an unknown round must fail")


def test_duties_timings_cursors(tmp_path):
    with NodeDB(tmp_path / "db") as db:
        db.record_duty("trainer", 1, "commit", "ok", tx_hash="0x1")
        db.record_duty("trainer", 1, "reveal_starts", "missed", detail="window closed")
        db.record_timing("trainer", 1, "train", 1.5)
        db.record_timing("trainer", 1, "train", 0.5)
        db.record_timing("trainer", 1, "tx", 0.25)
        assert [d["outcome"] for d in db.duties(round_id=1)] == ["ok", "missed"]
        assert db.timing_totals("trainer", 1) == {"train": 2.0, "tx": 0.25}
        assert db.get_cursor("events", 5) == 5
        db.set_cursor("events", 42)
        assert db.get_cursor("events") == 42


def _write_then_die(path):
    db = NodeDB(path)
    db.save_round("verifier", 5, 1, "committing", salt=b"\x22" * 32)
    os._exit(9)  # no close, no cleanup: as if killed


def test_write_survives_hard_exit(tmp_path):
    path = tmp_path / "db"
    p = multiprocessing.get_context("spawn").Process(target=_write_then_die, args=(path,))
    p.start(); p.join(30)
    assert p.exitcode == 9
    with NodeDB(path) as db:
        assert db.get_round("verifier", 5).data["salt"] == b"\x22" * 32


def test_a_data_dir_written_before_reads_its_hashes_as_bytes(tmp_path):
    """Earlier versions wrote the same 0x-hex text and handed it back as text (callers converted it):
    their sqlite files read as bytes now, unchanged on disk."""
    import json
    import sqlite3

    path = tmp_path / "old.sqlite"
    NodeDB(path).close()  # the schema
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO rounds VALUES ('trainer', 3, 1, 'committed', ?, 0, 0)",
                     (json.dumps({"trace_root": "0x" + "ab" * 32, "cids": ["bafy"], "owner": "0x" + "cd" * 20}),))
        conn.execute("INSERT INTO blobs VALUES ('pending:1', ?)", (json.dumps({"base_hash": "0x" + "01" * 32}),))
    with NodeDB(path) as db:
        assert db.get_round("trainer", 3).data == {"trace_root": b"\xab" * 32, "cids": ["bafy"], "owner": "0x" + "cd" * 20}
        assert db.get_json("pending:1") == {"base_hash": b"\x01" * 32}


def test_bytes_of_another_length_are_refused(tmp_path):
    with NodeDB(tmp_path / "db") as db:
        try:
            db.put_json("x", {"blob": b"\x01" * 31})
        except ValueError as exc:
            assert "only 32-byte values" in str(exc)
        else:
            raise AssertionError("31 bytes must be refused, not stored as text that reads back as text")


def test_metrics_count_duties():
    m = NodeMetrics("verifier")
    m.duty("commit_verdict", "ok"); m.duty("commit_verdict", "ok"); m.stage("replay", 0.3)
    text = m.text()
    assert 'trainchain_duties_total{duty="commit_verdict",outcome="ok",role="verifier"} 2.0' in text
    assert 'trainchain_stage_seconds_count{role="verifier",stage="replay"} 1.0' in text


def test_blobs(tmp_path):
    with NodeDB(tmp_path / "db") as db:
        assert db.get_json("pending:1") is None
        db.put_json("pending:1", {"trace_root": b"\x05" * 32, "cids": ["bafy"]})
        assert db.get_json("pending:1") == {"trace_root": b"\x05" * 32, "cids": ["bafy"]}
        db.delete_json("pending:1")
        assert db.get_json("pending:1", {}) == {}


from hypothesis import given, settings
from hypothesis import strategies as st

from node.roles.db import DONE_PHASES

_values = st.one_of(st.integers(-2**63, 2**63), st.text(max_size=8), st.binary(min_size=32, max_size=32), st.booleans())
_saves = st.lists(
    st.tuples(st.sampled_from(["trainer", "verifier"]), st.integers(1, 4),
              st.sampled_from(["assigned", "committed", "verdict_ready", *sorted(DONE_PHASES)]),
              st.dictionaries(st.sampled_from(["salt", "commitment", "cids", "mean_loss"]), _values, max_size=3)),
    max_size=12)


@settings(max_examples=40, deadline=None)
@given(saves=_saves)
def test_rounds_are_the_merge_of_every_save(tmp_path_factory, saves):
    """Invariant: a round's data is the merge of all fields ever saved for it (later wins),
    its phase the last one saved, and open_only lists exactly the rounds not in DONE_PHASES."""
    model: dict[tuple[str, int], tuple[str, dict]] = {}
    with NodeDB(tmp_path_factory.mktemp("db") / "node.sqlite") as db:
        for role, round_id, phase, fields in saves:
            db.save_round(role, round_id, 7, phase, **fields)
            old = model.get((role, round_id), (None, {}))[1]
            model[(role, round_id)] = (phase, {**old, **fields})  # bytes come back as bytes
        for (role, round_id), (phase, data) in model.items():
            rec = db.get_round(role, round_id)
            assert (rec.phase, rec.data, rec.task_id) == (phase, data, 7)
        for role in ("trainer", "verifier"):
            expected = sorted(r for (ro, r), (ph, _) in model.items() if ro == role and ph not in DONE_PHASES)
            assert [r.round_id for r in db.rounds(role, open_only=True)] == expected
