"""Epoch duties both roles share (issue #14; docs/protocol-v2-interface.md): the outer step of an epoch
computed from the content store, and the chain reads the duties need.

    agg = compute_aggregate(spec, store, base, finals, workdir)     # Aggregate(state_hash, path)

- A trainer of an accepted slot computes it to post (hash + CID) when its turn comes;
- an aggregation committee member computes it to commit its hash before any is public;
- a trainer computes it over *every committed* slot once it knows all their final states (its own
  at its commit, a co-trainer's at its ends reveal), to train the next epoch ahead on it
  (discarded if a slot is left out).

Everything is verified on the way in: the base and every slot's final checkpoint must hash to the
on-chain hashes, else `AggregateInputError` (the duty waits and retries; it never computes over an
unverified state). The state file is written by node.engine.outer.save_epoch_state, the writer
train-local uses, so the network's epoch file is train-local's byte for byte (same CID).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("trainchain.epochs")


class AggregateInputError(Exception):
    """An input of the outer step could not be fetched or does not hash to its on-chain hash."""


@dataclass(frozen=True)
class StateRef:
    """A state on the chain: its CID and its canonical state hash."""

    cid: str
    state_hash: bytes


@dataclass(frozen=True)
class SlotFinal:
    """An epoch slot's final state (h_M and its checkpoint, revealed with the ends)."""

    index: int
    slot_id: int
    final: StateRef


@dataclass(frozen=True)
class Aggregate:
    state_hash: bytes
    path: Path


def fetch_state(store, ref: StateRef, path: Path):
    """Fetch `ref` into `path` (if not there yet) and load it, verified against its hash."""
    from node.engine import StateError, load_state

    path = Path(path)
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(ref.cid, path)
        return load_state(path, ref.state_hash)
    except StateError as e:
        path.unlink(missing_ok=True)
        raise AggregateInputError(f"state {ref.cid}: {e}") from None
    except Exception as e:  # store errors: not fetched (yet)
        raise AggregateInputError(f"state {ref.cid}: not fetched ({type(e).__name__}: {e})") from None


def compute_aggregate(spec, store, base: StateRef, finals: list[SlotFinal], workdir: Path) -> Aggregate:
    """The epoch's state: the outer step (node.engine.outer.compute_outer_step, spec.epochs) over the
    slots `finals` in slot order from `base`. No slot: the base, unchanged."""
    from node.engine.outer import compute_outer_step, save_epoch_state

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base_state = fetch_state(store, base, workdir / f"{base.cid}.safetensors")
    ordered = sorted(finals, key=lambda f: f.index)
    states = [fetch_state(store, f.final, workdir / f"{f.final.cid}.safetensors") for f in ordered]
    state = compute_outer_step(base_state, states, spec.epochs, spec.optimizer)
    key = "-".join(str(f.index) for f in ordered) or "none"
    path = workdir / f"aggregate-{base.state_hash.hex()[:12]}-{key}.safetensors"
    h = save_epoch_state(spec, state, path)
    log.info("aggregate of slots %s on base 0x%s: 0x%s", [f.index for f in ordered], base.state_hash.hex()[:12], h.hex()[:12])
    return Aggregate(h, path)


# ------------------------------------------------------------ chain reads (Epochs.vy)
def slot_of_round(chain, round_id: int, task) -> "Slot | None":
    """The engine Slot(epoch, index, N) of a round that is an epoch slot (its schedule: issue #14), else None (a v1
    round, or a deployment without Epochs). What a replay of any of its spans needs: its committee's checks,
    its disputes' steps and juries."""
    if "Epochs" not in chain.deployment.addresses:
        return None
    s = chain.get_slot(round_id)
    if not s.exists:
        return None
    from node.engine.trace import Slot

    return Slot(s.epoch, s.index, task.params.slots_per_epoch)


def indices_of(mask: int) -> list[int]:
    """The slots of a bit mask (bit i: slot i), ascending: the slot order of the outer step."""
    return [i for i in range(mask.bit_length()) if (mask >> i) & 1]


def slot_finals(chain, task_id: int, epoch: int, mask: int) -> list[SlotFinal]:
    """The final checkpoints of the slots in `mask` (revealed with their ends); a slot that has not
    revealed its final checkpoint yet is left out (the caller compares lengths)."""
    out = []
    for i in indices_of(mask):
        slot_id = chain.slot_id(task_id, epoch, i)
        rnd = chain.get_round(slot_id)
        if rnd.final_cid:
            out.append(SlotFinal(i, slot_id, StateRef(rnd.final_cid, bytes(rnd.final_hash))))
    return out


def epoch_base(chain, task_id: int, epoch) -> StateRef:
    """An epoch's base as a StateRef: while the epoch is open its base is the task's latest canonical
    state (the canonical state changes only when an epoch closes)."""
    latest = chain.latest_model(task_id)
    if bytes(latest.state_hash) != bytes(epoch.base_hash):
        raise AggregateInputError(f"task {task_id}: the canonical state 0x{bytes(latest.state_hash).hex()[:12]} is not "
                                  f"epoch {epoch.epoch}'s base 0x{bytes(epoch.base_hash).hex()[:12]}")
    return StateRef(latest.cid, bytes(latest.state_hash))
