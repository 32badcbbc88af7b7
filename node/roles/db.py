"""The node's local database (sqlite): every round it is in, salts, duties, timings.

Why: a node can be killed at any moment. Everything a later duty depends on (the
trace of a round, a verdict's salt and end hashes) is written here BEFORE the
transaction that commits to it is sent, so a restarted node re-sends or reveals
and still meets its deadlines.

Tables
- rounds:  one row per (role, round): task, phase, and a JSON dict of fields.
- duties:  the outcome of every duty (committed, revealed, missed, ...), append-only.
- timings: seconds per stage of a round (train, hash, upload, tx, wait, replay)
           for the benchmarks (bench/rounds.py reads them).
- cursors: named block cursors (e.g. the last block whose events were processed).
- blobs:   named JSON values (e.g. a trained round not yet committed: its round id
           is only known from the commit's receipt).

Bytes stay bytes in the node: the JSON columns hold 32-byte values (hashes, salts,
commitments: all the node stores) as 0x-hex text, and every read turns such text back into
bytes (`_decode`), here at the boundary and nowhere else. Data dirs written before read the
same way (they hold the same text). Any other length of bytes is refused on write.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    role     TEXT    NOT NULL,
    round_id INTEGER NOT NULL,
    task_id  INTEGER NOT NULL,
    phase    TEXT    NOT NULL,
    data     TEXT    NOT NULL DEFAULT '{}',
    created  REAL    NOT NULL,
    updated  REAL    NOT NULL,
    PRIMARY KEY (role, round_id)
);
CREATE TABLE IF NOT EXISTS duties (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    role     TEXT    NOT NULL,
    round_id INTEGER,
    duty     TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    detail   TEXT    NOT NULL DEFAULT '',
    tx_hash  TEXT,
    ts       REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS timings (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    role     TEXT    NOT NULL,
    round_id INTEGER,
    stage    TEXT    NOT NULL,
    seconds  REAL    NOT NULL,
    ts       REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name  TEXT PRIMARY KEY,
    block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Phases after which a round needs nothing more from this node.
DONE_PHASES = frozenset({"done", "failed", "void", "slashed", "expired", "refused"})


@dataclass
class RoundRecord:
    role: str
    round_id: int
    task_id: int
    phase: str
    data: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0

    @property
    def is_done(self) -> bool:
        return self.phase in DONE_PHASES


_BYTES32 = re.compile(r"0x[0-9a-f]{64}")


def _encode(value: Any) -> Any:
    """JSON-safe: 32-byte values become 0x-hex text (read back as bytes by _decode)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 32:
            raise ValueError(f"db: only 32-byte values are stored as bytes, not {len(value)} bytes")
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _decode(value: Any) -> Any:
    """What _encode wrote, with 32-byte values as bytes again."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:]) if _BYTES32.fullmatch(value) else value
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class NodeDB:
    """sqlite at `path`; safe to use from the node thread and the metrics thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        # WAL + synchronous=FULL: a write that returned survives a kill -9 of the node.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "NodeDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, sql: str, params: tuple) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return cur.lastrowid

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------ rounds
    def save_round(self, role: str, round_id: int, task_id: int, phase: str, **fields: Any) -> RoundRecord:
        """Create or update a round: set its phase and merge `fields` into its data."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT data, created FROM rounds WHERE role=? AND round_id=?", (role, round_id)
                ).fetchone()
                data = json.loads(row["data"]) if row else {}  # as stored: merged, then decoded once below
                data.update(_encode(fields))
                created = row["created"] if row else now
                self._conn.execute(
                    "INSERT OR REPLACE INTO rounds (role, round_id, task_id, phase, data, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (role, round_id, task_id, phase, json.dumps(data, sort_keys=True), created, now),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return RoundRecord(role, round_id, task_id, phase, _decode(data), created, now)

    def set_phase(self, role: str, round_id: int, phase: str, **fields: Any) -> RoundRecord:
        current = self.get_round(role, round_id)
        if current is None:
            raise KeyError(f"db: no {role} round {round_id}")
        return self.save_round(role, round_id, current.task_id, phase, **fields)

    def get_round(self, role: str, round_id: int) -> RoundRecord | None:
        rows = self._read("SELECT * FROM rounds WHERE role=? AND round_id=?", (role, round_id))
        return self._record(rows[0]) if rows else None

    def rounds(self, role: str | None = None, open_only: bool = False) -> list[RoundRecord]:
        sql, params = "SELECT * FROM rounds", ()
        if role is not None:
            sql, params = sql + " WHERE role=?", (role,)
        records = [self._record(r) for r in self._read(sql + " ORDER BY round_id", params)]
        return [r for r in records if not (open_only and r.is_done)]

    @staticmethod
    def _record(row: sqlite3.Row) -> RoundRecord:
        return RoundRecord(
            row["role"], row["round_id"], row["task_id"], row["phase"],
            _decode(json.loads(row["data"])), row["created"], row["updated"],
        )

    # ------------------------------------------------------------ duties
    def record_duty(
        self, role: str, round_id: int | None, duty: str, outcome: str,
        detail: str = "", tx_hash: str | None = None,
    ) -> None:
        self._write(
            "INSERT INTO duties (role, round_id, duty, outcome, detail, tx_hash, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (role, round_id, duty, outcome, detail, tx_hash, time.time()),
        )

    def duties(self, role: str | None = None, round_id: int | None = None, duty: str | None = None) -> list[dict]:
        return self._select("duties", role=role, round_id=round_id, duty=duty)

    def _select(self, table: str, **columns: Any) -> list[dict]:
        """The rows of an append-only table (duties, timings) whose columns equal every value given
        (None: any), oldest first."""
        given = {k: v for k, v in columns.items() if v is not None}
        where = " WHERE " + " AND ".join(f"{k}=?" for k in given) if given else ""
        return [dict(r) for r in self._read(f"SELECT * FROM {table}{where} ORDER BY id", tuple(given.values()))]

    # ------------------------------------------------------------ timings
    def record_timing(self, role: str, round_id: int | None, stage: str, seconds: float) -> None:
        self._write(
            "INSERT INTO timings (role, round_id, stage, seconds, ts) VALUES (?, ?, ?, ?, ?)",
            (role, round_id, stage, float(seconds), time.time()),
        )

    def timings(self, role: str | None = None, round_id: int | None = None) -> list[dict]:
        return self._select("timings", role=role, round_id=round_id)

    def timing_totals(self, role: str | None = None, round_id: int | None = None) -> dict[str, float]:
        """Seconds per stage summed over the selection (what bench/rounds.py reports)."""
        totals: dict[str, float] = {}
        for t in self.timings(role, round_id):
            totals[t["stage"]] = totals.get(t["stage"], 0.0) + t["seconds"]
        return totals

    # ------------------------------------------------------------ cursors
    def get_cursor(self, name: str, default: int = 0) -> int:
        rows = self._read("SELECT block FROM cursors WHERE name=?", (name,))
        return rows[0]["block"] if rows else default

    def set_cursor(self, name: str, block: int) -> None:
        self._write("INSERT OR REPLACE INTO cursors (name, block) VALUES (?, ?)", (name, block))

    # ------------------------------------------------------------ blobs
    def put_json(self, name: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO blobs (name, value) VALUES (?, ?)", (name, json.dumps(_encode(value))))

    def get_json(self, name: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM blobs WHERE name=?", (name,))
        return _decode(json.loads(rows[0]["value"])) if rows else default

    def delete_json(self, name: str) -> None:
        self._write("DELETE FROM blobs WHERE name=?", (name,))
