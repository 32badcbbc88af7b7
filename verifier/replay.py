"""What a committee member checks, as plain functions over the engine and the store.

- `check_segment`: fetch a revealed start checkpoint by CID, check it hashes to the
  revealed h_j, replay the check's span (span·k steps: k, or 2k for the last check
  (M-2, M)) on the scheduled batches, return the end hash.
- `check_data_root`: the trainer's data root against the schedule of the round.
- `check_final`: fetch the final checkpoint and check it hashes to h_M.

Nothing here trusts the trainer: a CID that cannot be fetched or a file that does
not hash to its leaf is a failed check (a flag in the verdict), never a crash.
torch is imported only by the functions that need it.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from node import protocol

log = logging.getLogger("trainchain.verifier")


@dataclass
class SegmentCheck:
    segment: int
    start_ok: bool  # the start checkpoint was fetched and hashes to h_j
    end_hash: bytes  # replayed end state hash (protocol.ZERO_HASH when the start failed: not replayed)
    detail: str = ""


def fetch_checkpoint(store, cid: str, expected_hash: bytes, workdir: Path) -> Path | None:
    """Fetch `cid` into workdir and check its canonical state hash; None if either fails."""
    from node.engine import load_state, state_hash  # torch

    path = Path(workdir) / f"{cid}.safetensors"
    try:
        if not path.exists():
            store.get_file(cid, path)
        actual = state_hash(load_state(path))
    except Exception as exc:  # store errors, corrupt safetensors: the trainer's fault
        log.warning("checkpoint %s: cannot fetch or load (%s)", cid, exc)
        return None
    if actual != bytes(expected_hash):
        log.warning("checkpoint %s hashes to %s, revealed %s", cid, actual.hex(), bytes(expected_hash).hex())
        return None
    return path


def check_segment(spec, dataset, store, segment: int, cid: str, start_hash: bytes, workdir: Path,
                  progress=None, span: int = 1, slot=None) -> SegmentCheck:
    """Replay the check starting at segment j: span segments (span · k steps; a check's span is
    end leaf - start leaf, see node.protocol.compute_check_ends) from its revealed start. `slot`
    (engine Slot): an epoch slot's round, replayed on the epoch schedule from inner step j·k."""
    from node.engine import replay_segment

    assert span >= 1, "check_segment: span must be at least one segment"
    path = fetch_checkpoint(store, cid, start_hash, workdir)
    if path is None:
        return SegmentCheck(segment, False, protocol.ZERO_HASH, "start checkpoint missing or does not hash to h_j")
    end_hash = replay_segment(spec, dataset, path, span * spec.segment_steps, progress=progress, slot=slot,
                              slot_step=segment * spec.segment_steps)
    return SegmentCheck(segment, True, bytes(end_hash))


def compute_schedule_root(spec, dataset, start_step: int, slot=None) -> bytes:
    """The Merkle root of the S batch hashes of the schedule from `start_step` (or of the epoch slot `slot`)."""
    from node.engine import compute_data_root

    if slot is not None:
        return bytes(compute_data_root(spec, dataset, 0, slot=slot))
    return bytes(compute_data_root(spec, dataset, start_step))


def check_data_root(spec, dataset, start_step: int, data_root: bytes, slot=None) -> bool:
    """The trainer's data root must be the schedule's (compute_schedule_root)."""
    return compute_schedule_root(spec, dataset, start_step, slot=slot) == bytes(data_root)


def compute_checkpoint_answer(store, cid: str, expected_hash: bytes, workdir: Path) -> bytes | None:
    """What a flag dispute's juror (and the member deciding to open one) finds at a checkpoint CID, as its answer:
    expected_hash if the bytes served under the CID are a state hashing to it; else keccak256 of those bytes (they
    are immutable under their CID, so every juror finds the same answer); None if not fetched within the store's
    fetch budget (the juror answers protocol.ANSWER_UNAVAILABLE: DisputeDuties.juror_answer)."""
    from eth_utils import keccak

    path = Path(workdir) / f"{cid}.safetensors"
    try:
        if not path.exists():
            Path(workdir).mkdir(parents=True, exist_ok=True)
            store.get_file(cid, path)
    except Exception as exc:  # noqa: BLE001  (store errors: not fetched)
        log.warning("checkpoint %s: not fetched (%s)", cid, exc)
        return None
    if fetch_checkpoint(store, cid, expected_hash, workdir) is not None:
        return bytes(expected_hash)
    return keccak(path.read_bytes())


def check_final(store, cid: str, final_hash: bytes, workdir: Path | None = None) -> bool:
    """The final checkpoint must be fetchable and hash to h_M (it becomes canonical)."""
    if workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return fetch_checkpoint(store, cid, final_hash, Path(tmp)) is not None
    return fetch_checkpoint(store, cid, final_hash, workdir) is not None
