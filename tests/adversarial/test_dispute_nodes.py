"""Disputes (issue #15) with real nodes: anvil (0.5 s blocks), the contracts deployed WITH Disputes (no majority
vote for fraud), four verifier processes and a cheating trainer process (`python -m node.adversaries`), the tiny
spec on the real engine. Nobody is told about disputes: the verifiers whose verdicts contradict open them from
their own reveals (DisputeRole.tick_disputes), the trainer's node tries to defend with its real replay of the
span — which cannot end at the forged leaf it committed — and loses, and the round ends in fraud."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from node import protocol
sys.path.append(str(Path(__file__).resolve().parents[1] / "nodes"))  # last: shadows nothing
from nodes_helpers import NODE_CONFIG, start_disputes_net, tiny_spec  # noqa: E402  (the node suite's helpers)

STAKE = 4 * 10**18
TIMEOUT = 300


@pytest.fixture(scope="module")
def dnet(tmp_path_factory):
    net = start_disputes_net(tmp_path_factory.mktemp("dispute-nodes"))
    try:
        net.chain = net.client()
        net.verifiers = [net.add_staked_node(f"verifier{i}", 2 + i, "verifier", STAKE, config=NODE_CONFIG) for i in range(4)]
        net.spec = tiny_spec(net.store())
        net.first_task = net.create_task(net.spec, 2 * 10**18)["task_id"]
        for v in net.verifiers:
            net.spawn_verifier(v)
        yield net
    finally:
        net.stop()


def test_a_forgery_is_convicted_by_a_dispute_between_real_nodes(dnet, case):
    c = case("real nodes, Disputes deployed: a trainer skips the last segment",
             expected="contradicting verifiers open disputes by themselves; the trainer cannot post a span ending at "
                      "its forged leaf; fraud")
    net = dnet
    cheater = net.add_staked_node("cheater", 7, "trainer", STAKE, config=NODE_CONFIG)
    before = net.stake_of(cheater.address)
    last = net.spec.segments_per_round - 1  # always checked
    net.spawn_adversary(cheater, net.first_task, "--skip-segment", str(last), "--rounds", "1")
    (rnd,) = net.wait_finalized(net.first_task, 1, watch=net.verifiers, timeout=TIMEOUT)
    opened = net.chain.events("DisputeOpened", round_id=rnd.round_id)
    resolved = [e["args"] for e in net.chain.events("DisputeResolved", round_id=rnd.round_id)]
    c.observe(f"outcome {protocol.Outcome(rnd.outcome).label}; {len(opened)} dispute(s) opened by "
              f"{sorted(e['args']['challenger'][:8] for e in opened)}; resolved {[(r['trainer_won'], r['reason']) for r in resolved]}; "
              f"trainer {net.stake_of(cheater.address) - before:+d} wei")
    assert rnd.outcome == protocol.Outcome.FRAUD
    assert opened and resolved and not any(r["trainer_won"] for r in resolved)
    assert net.stake_of(cheater.address) < before


def test_a_lazy_accuser_loses_its_dispute_against_an_honest_trainer(tmp_path, case):
    """The demo's dispute act (node/cli/demo.py: run_dispute_act), run as a case: its own devnet with Disputes, an
    honest trainer, two honest verifiers and a MisbehavingVerifier("accuse") process, all on one committee."""
    from rich.console import Console

    from node.cli.demo import run_dispute_act
    from node.engine import TaskSpec, apply_runtime_pin
    from node.engine.runtime import is_torch_loaded

    if not is_torch_loaded():  # the genesis is built in this process
        apply_runtime_pin(TaskSpec.preset("tiny"))

    c = case("real nodes, Disputes deployed: a lazy verifier contradicts an honest trainer without replaying and "
             "disputes, naming a step blindly (the demo's dispute act)",
             expected="the jury (the two other verifiers) replays the step and sides with the trainer: the accuser "
                      "loses its bond to the trainer and the jurors, the round is accepted")
    act = run_dispute_act(tmp_path, Console(stderr=True), TIMEOUT)
    c.observe(f"outcome {act['outcome']}; disputes {[(d['trainer_won'], d['reason']) for d in act['disputes']]}; "
              f"bond lost {act['bonds_lost_wei']} wei; paid {[(p['to'], p['amount_wei'], p['reason']) for p in act['paid']]}")
    assert act["checks"] == {k: True for k in act["checks"]}, act["checks"]
    assert act["outcome"] == "accepted" and act["disputes"] and act["bonds_lost_wei"] > 0


def test_a_swapped_final_checkpoint_is_convicted_by_flag_disputes(tmp_path, case):
    """Flag disputes (Disputes.open_flag): every end hash is right, only the final checkpoint is another state's.
    Before them, a deployment with Disputes accepted such a round (no span to narrow, so no dispute). Real
    TrainerNode / VerifierNode code ticked in this process (nodekit), the real engine, Disputes deployed."""
    from node.adversaries.trainers import FinalSwapTrainer

    c = case("real nodes, Disputes deployed: FinalSwapTrainer reveals another checkpoint's CID as the final one "
             "(every end hash right)",
             expected="each member's final flag is false and its node proves it (the CID's bytes do not hash to h_M): "
                      "it opens a flag dispute, the jury fetches the checkpoint, convicts; fraud, trainer slashed")
    run = run_final_flag_round(tmp_path, FinalSwapTrainer)
    c.observe(run["observed"])
    assert_final_flag_conviction(run)


def test_a_final_checkpoint_served_to_nobody_is_convicted_by_an_availability_challenge(tmp_path, case):
    """Availability challenges (protocol.is_availability_challenge): every end hash is right, but the final checkpoint's
    CID is served by nobody. With Disputes such a round used to be accepted (unavailability was not disputable): the
    oracle would have named weights nobody can fetch. Real TrainerNode / VerifierNode code (nodekit), Disputes."""
    from node.adversaries.trainers import FinalWithholdingTrainer

    c = case("real nodes, Disputes deployed: FinalWithholdingTrainer reveals a final CID whose content it serves to nobody "
             "(every end hash right)",
             expected="each member's final flag is false; its node disputes FLAG_FINAL answering ANSWER_UNAVAILABLE; the "
                      "jurors cannot fetch it either and answer the same: convicted, fraud, trainer slashed, oracle unchanged")
    run = run_final_flag_round(tmp_path, FinalWithholdingTrainer)
    c.observe(run["observed"] + f"; challengers' answers unavailable: {run['answers'] == {protocol.ANSWER_UNAVAILABLE}}")
    assert_final_flag_conviction(run)
    assert run["answers"] == {protocol.ANSWER_UNAVAILABLE}
    assert run["model_after"] == run["model_before"]  # the oracle still names the fetchable genesis


def run_final_flag_round(tmp_path, trainer_cls) -> dict:
    """One round of `trainer_cls` (a final-checkpoint adversary) and three verifiers, Disputes deployed (nodekit: real
    TrainerNode / VerifierNode code ticked in this process, the real engine): what the flag disputes did."""
    from nodekit import STAKE, NodeNet

    with NodeNet.start(tmp_path / "net", disputes=True) as net:
        net.make_trainer(trainer_cls, max_rounds=1)
        for i in range(3):
            net.make_verifier(i)
        model_before = net.chain.latest_model(net.task_id)
        r = net.run_round(max_passes=400)
        run = {"outcome": r.outcome, "trainer_delta": r.stake_delta[net.trainer.address], "stake": STAKE,
               "flags": sorted(e["args"]["flag"] for e in net.chain.events("FlagDisputed")),
               "resolved": [e["args"] for e in net.chain.events("DisputeResolved")],
               "answers": {e["args"]["answer"] for e in net.chain.events("ChallengerAnswerRevealed")},
               "model_before": model_before, "model_after": net.chain.latest_model(net.task_id)}
    run["observed"] = (f"outcome {protocol.Outcome(run['outcome']).label}; {len(run['flags'])} flag dispute(s) (flags "
                       f"{run['flags']}); resolved {[(x['trainer_won'], x['reason']) for x in run['resolved']]}; trainer "
                       f"{run['trainer_delta']:+d} wei")
    return run


def assert_final_flag_conviction(run: dict) -> None:
    assert run["outcome"] == protocol.Outcome.FRAUD
    assert run["flags"] and set(run["flags"]) == {protocol.FLAG_FINAL}
    assert run["resolved"] and not any(x["trainer_won"] for x in run["resolved"])
    assert run["trainer_delta"] < 0 and -run["trainer_delta"] <= run["stake"]


def test_the_demo_dispute_act_beside_the_epochs_stops_cleanly_when_cancelled(tmp_path, case):
    """`trainchain demo` runs its dispute act on a thread beside the epochs (node/cli/demo.py: BackgroundAct). When the
    epochs fail or the user presses Ctrl-C, the act is cancelled: every process it started and its anvil must stop."""
    import os
    import time

    from rich.console import Console

    from node.cli.demo import BackgroundAct, DemoFailed, Timings
    from node.engine import TaskSpec, apply_runtime_pin
    from node.engine.runtime import is_torch_loaded
    from node.localnet import wait_until

    if not is_torch_loaded():  # the genesis is built in this process
        apply_runtime_pin(TaskSpec.preset("tiny"))

    def processes_of_the_act() -> list[int]:
        """Processes whose command line names the act's directory (its anvil's state file, its nodes' data dirs)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(tmp_path) in cmdline:
                found.append(int(pid))
        return found

    c = case("the demo's dispute act (beside the epochs) cancelled while its nodes run: the epochs failed, or Ctrl-C",
             expected="the act stops every node process it started and its anvil, and reports that it was cancelled")
    act = BackgroundAct(tmp_path, Console(stderr=True), TIMEOUT, Timings()).start()
    try:  # its four nodes spawned (the trainer last), the round under way
        wait_until(lambda: (tmp_path / "logs" / "trainer.log").exists(), TIMEOUT, what="the act's nodes")
        time.sleep(3)
        running = processes_of_the_act()
    finally:
        act.stop()
    left = processes_of_the_act()
    c.observe(f"{len(running)} process(es) of the act before the cancel, {len(left)} after; "
              f"thread alive {act.thread.is_alive()}; error {act.error!r}")
    assert len(running) >= 5, running  # anvil and the four nodes
    assert not act.thread.is_alive() and not left, left
    assert isinstance(act.error, DemoFailed) and "cancelled" in str(act.error)


@pytest.fixture(scope="module")
def wnet(tmp_path_factory):
    """Disputes deployed; three MisbehavingVerifier('lazy') processes (as members they replay nothing and guess their
    end hashes; their dispute and jury duties are the honest node's) and one honest verifier process watching every
    posted segment (--watch 1.0)."""
    net = start_disputes_net(tmp_path_factory.mktemp("watch-nodes"))
    try:
        net.chain = net.client()
        net.lazy = [net.add_staked_node(f"lazy{i}", 2 + i, "verifier", STAKE, config=NODE_CONFIG) for i in range(3)]
        net.watcher = net.add_staked_node("watcher", 5, "verifier", STAKE, config=NODE_CONFIG)
        net.spec = tiny_spec(net.store())
        net.first_task = net.create_task(net.spec, 2 * 10**18)["task_id"]
        for v in net.lazy:
            net.spawn_adversary(v, net.first_task, "--verifier", "lazy")
        net.spawn_verifier(net.watcher, "--watch", "1.0")
        yield net
    finally:
        net.stop()


def test_a_watcher_process_disputes_a_forged_segment(wnet, case):
    c = case("real nodes, Disputes deployed: a trainer skips segment 0; three lazy verifier processes and one with "
             "--watch 1.0", expected="the watcher replays the posted segments from the trainer's manifest and disputes "
                                     "segment 0 (open_watch) within the round's window and wins; fraud")
    net = wnet
    cheater = net.add_staked_node("cheater", 7, "trainer", STAKE, config=NODE_CONFIG)
    before = net.stake_of(cheater.address)
    net.spawn_adversary(cheater, net.first_task, "--skip-segment", "0", "--rounds", "1")
    (rnd,) = net.wait_finalized(net.first_task, 1, watch=[*net.lazy, net.watcher], timeout=2 * TIMEOUT)
    opened = [e["args"] for e in net.chain.events("DisputeOpened", round_id=rnd.round_id)]
    resolved = [e["args"] for e in net.chain.events("DisputeResolved", round_id=rnd.round_id)]
    n_checks = len(net.chain.call(net.chain.rounds.functions.round_samples_of(rnd.round_id)))
    posted = net.chain.events("BoundariesPosted", round_id=rnd.round_id)
    c.observe(f"outcome {protocol.Outcome(rnd.outcome).label}; boundaries posted {bool(posted)}; disputes "
              f"{[(o['challenger'][:8], 'segment %d' % (o['check_index'] - n_checks) if o['check_index'] >= n_checks else 'check %d' % o['check_index']) for o in opened]}; "
              f"resolved {[(r['trainer_won'], r['reason']) for r in resolved]}; trainer {net.stake_of(cheater.address) - before:+d} wei")
    assert posted and rnd.outcome == protocol.Outcome.FRAUD
    # the watcher's own dispute, over segment 0 of the posted boundaries (whatever the lazy members opened beside it)
    watched = [o for o in opened if o["challenger"] == net.watcher.address and o["check_index"] == n_checks + 0]
    assert len(watched) == 1, opened
    won = [r for r in resolved if r["dispute_id"] == watched[0]["dispute_id"]]
    assert won and won[0]["trainer_won"] is False
    assert net.stake_of(cheater.address) < before
