"""CI's short form of the adversarial suite's most important case: honest nodes are never convicted.

The real TrainerNode (training ahead on its background thread, as `trainchain trainer run`
does by default) and three real VerifierNodes in this one process (tests/adversarial/nodekit.py),
a tiny GPT through the real engine: every round must be accepted with zero penalties. Before
issue #19's fix this ended ['accepted', 'fraud', ...]: dropout drew from torch's global RNG, and
the training-ahead thread moved it under the verifiers' replays. The full form (4 rounds) is
tests/adversarial/test_honest.py::test_honest_node_rounds.

A neighbour thread keeps doing unrelated torch work that uses the global generator (seeding
it and drawing from it, as any library in the process may) the whole time: with the old
engine that alone convicted the honest trainer in every run; the engine must not care.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from node.engine.runtime import apply_runtime_pin, compute_pin_env, is_torch_loaded
from node.engine.spec import TaskSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adversarial"))  # nodekit (the node harness)

ROUNDS = 3

if not is_torch_loaded():  # the nodes run in this process: pin it before anything loads torch
    os.environ.update(compute_pin_env(TaskSpec.default().runtime))


@contextmanager
def busy_neighbour():
    """Another thread of this process seeding and drawing from torch's global RNG until the block ends."""
    import time

    import torch

    stop, draws = threading.Event(), [0]

    def work():
        while not stop.is_set():
            torch.manual_seed(draws[0])
            torch.nn.functional.dropout(torch.rand(4096), 0.5)
            draws[0] += 1
            time.sleep(0.001)  # leave the nodes most of the cores

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield draws
    finally:
        stop.set()
        thread.join()


def test_honest_trainer_and_verifiers_in_one_process_are_never_convicted(tmp_path):
    from nodekit import NodeNet

    apply_runtime_pin(TaskSpec.default())  # the nodes' tiny spec has the same runtime
    with NodeNet.start(tmp_path / "net") as net:
        trainer = net.make_trainer(max_rounds=ROUNDS)
        assert trainer.pipeline, "nodekit must run the trainer as the CLI does: training ahead"
        for i in range(3):
            net.make_verifier(i)
        before = net.stakes()
        reports = []
        with busy_neighbour() as draws:
            while len(reports) < ROUNDS:
                reports.append(net.run_round())
                if reports[-1].outcome_name != "accepted":
                    break  # a convicted trainer is slashed below the minimum stake: no further round
        assert draws[0] > 100, "the neighbour thread did not run"
        rounds = [net.chain.get_round(r.round_id) for r in reports]

        assert [r.outcome_name for r in reports] == ["accepted"] * ROUNDS, [(r.outcome_name, r.penalties) for r in reports]
        assert net.chain.events("PenaltyApplied") == [] and net.stakes() == before
        assert all(b["base_hash"] == a["final_hash"] for a, b in zip(rounds, rounds[1:])), "not one chain of states"
        assert net.chain.call(net.chain.oracle.functions.latest(net.task_id))[2] == ROUNDS
        # rounds after the first were trained ahead, on the trainer's thread, while the verifiers replayed
        ahead = [r.round_id for r in reports if "ahead_cpu" in trainer.db.timing_totals("trainer", r.round_id)]
        assert ahead == [r.round_id for r in reports[1:]], ahead
