"""An exact-mode task (runtime.mode = exact, issue #17) runs the unchanged protocol end to end.

The real TrainerNode (training ahead) and three real VerifierNodes (tests/adversarial/nodekit.py)
on a real anvil chain, with the harness's tiny task switched to exact mode: the task is created
from the exact spec (its hash on-chain), the trainer commits traces trained by the exact
operators, the committee replays its sampled segments with them, and every round is accepted
with zero penalties, one chain of states, the oracle advanced.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from node.engine.runtime import compute_pin_env, is_torch_loaded
from node.engine.spec import RuntimePin, TaskSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adversarial"))  # nodekit (the node harness)

ROUNDS = 2

if not is_torch_loaded():  # other node tests in this process pin the plain runtime; exact mode does not care
    os.environ.update(compute_pin_env(TaskSpec.default().runtime))


def test_an_exact_mode_task_is_trained_verified_and_accepted(tmp_path, monkeypatch):
    import nodekit

    plain_spec = nodekit.tiny_spec
    monkeypatch.setattr(nodekit, "tiny_spec", lambda cid: plain_spec(cid).with_(runtime=RuntimePin.exact()))
    with nodekit.NodeNet.start(tmp_path / "net") as net:
        assert net.spec.runtime.mode == "exact" and net.spec.runtime.threads is None
        on_chain = net.chain.get_task(net.task_id)["spec_hash"]
        on_chain = bytes.fromhex(on_chain[2:]) if isinstance(on_chain, str) else on_chain
        assert on_chain == net.spec.spec_hash(), "the task on-chain is the exact-mode spec"
        trainer = net.make_trainer(max_rounds=ROUNDS)
        for i in range(3):
            net.make_verifier(i)
        before = net.stakes()
        reports = []
        while len(reports) < ROUNDS:
            reports.append(net.run_round())
            if reports[-1].outcome_name != "accepted":
                break
        assert [r.outcome_name for r in reports] == ["accepted"] * ROUNDS, [(r.outcome_name, r.penalties) for r in reports]
        assert net.chain.events("PenaltyApplied") == [] and net.stakes() == before
        rounds = [net.chain.get_round(r.round_id) for r in reports]
        assert all(b["base_hash"] == a["final_hash"] for a, b in zip(rounds, rounds[1:])), "not one chain of states"
        assert net.chain.call(net.chain.oracle.functions.latest(net.task_id))[2] == ROUNDS
        assert trainer.pipeline
