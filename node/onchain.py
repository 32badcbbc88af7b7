"""Small reads and rules over the contracts that both nodes use.

Struct reads go through ChainClient.get_task / get_round (dicts keyed by the ABI's
field names); this module adds what the nodes need on top of them.
"""
from __future__ import annotations

from node import protocol

PHASE_NAMES = {0: "none", 1: "committed", 2: "sealed", 3: "starts_revealed", 4: "ends_revealed", 5: "finalized"}


def n_segments(task: dict) -> int:
    p = task["params"]
    return p["steps_per_round"] // p["segment_steps"]


def base_step(task: dict) -> int:
    """Global step of the task's canonical state: every accepted round trained S steps."""
    return task["rounds_accepted"] * task["params"]["steps_per_round"]


def read_latest_model(chain, task_id: int) -> dict:
    cid, state_hash, version, round_id, block, timestamp = chain.call(chain.oracle.functions.latest(task_id))
    return {"cid": cid, "state_hash": bytes(state_hash), "version": version, "round_id": round_id,
            "block": block, "timestamp": timestamp}


# Timing rule of thumb: gas estimation runs on the latest block (head) and the
# transaction lands in head+1 or later, so "after X" conditions wait for head > X and
# "until X" conditions need head + 1 <= X.

def is_finalize_due(rnd: dict, head: int) -> bool:
    """Whether TrainingRounds.finalize passes now (at head) and in any later block."""
    phase = rnd["phase"]
    if phase in (0, protocol.Phase.FINALIZED):
        return False
    if phase == protocol.Phase.ENDS_REVEALED:
        return rnd["n_revealed"] == rnd["n_committed"] or head > rnd["deadline"]
    return head > rnd["deadline"]


def round_id_from_receipt(chain, receipt) -> int:
    """The round id of a commit, from its RoundCommitted log."""
    from web3.logs import DISCARD

    events = chain.rounds.events.RoundCommitted().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise ValueError("commit receipt holds no RoundCommitted event")
    return int(events[0]["args"]["round_id"])


from node.rounds import outcome_name  # noqa: E402,F401  (the one outcome table)
