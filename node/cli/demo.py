"""`trainchain demo` (what `make demo` runs): the whole protocol end to end on this machine.

1. a devnet (anvil, 1 s blocks) with the contracts; eight keystores, eight data dirs, each
   with its own content store (as on eight machines: content moves between them only
   through the nodes' IPFS trustless gateways, advertised in PeerDirectory); three trainers,
   three verifiers and a cheater stake;
2. the demo dataset and an epoch task (verified DiLoCo, issue #14: N = 3 slots per epoch, each
   slot H inner steps, DiLoCo's outer step; spec + genesis in the store, a funded reward pool);
3. the trainers and verifiers as separate processes (`trainchain trainer run`, `trainchain
   verifier run`): in each honest epoch the three trainers claim the three slots, train them in
   parallel, each slot is proven like a v1 round (seal, sampled segments, committee replay), then
   the aggregation committee commits to the outer step it computed before the lowest accepted
   slot's trainer posts it, and the epoch's state becomes the canonical version;
4. in the last epoch the cheater takes the third trainer's slot and skips the steps of its last
   segment (always checked): its slot is caught and slashed, the two honest slots are aggregated
   without it and accepted (the demo recomputes that aggregate from the store);
5. the latest canonical CID read from ModelOracle, the weights fetched from the nodes'
   gateways and checked against the state hash, and a sample generated from them;
6. disputes (issue #15), on a second devnet deployed with Disputes (no majority vote decides fraud):
   a lazy verifier contradicts an honest trainer's round without replaying and disputes it; a jury
   of the two other verifiers replays the step it named and sides with the trainer; the lazy
   verifier loses its bond (paid to the trainer and the jurors) and the round is accepted. This act
   runs beside the epochs (a thread, its own devnet and processes: BackgroundAct), its transcript
   recorded and printed after theirs; the epochs act is the demo's wall time.

Progress goes to stderr; the last line of stdout is one JSON summary (epochs, their slots,
accepted and excluded slots, the canonical CID, the dispute act's disputes and payments, and
`timings`: seconds from the start at which each act reached each phase).
"""
from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
import threading
import time
from pathlib import Path

import click

EVENTS = ("SlotClaimed", "SlotCommitted", "RoundSealed", "StartsRevealed", "VerdictCommitted", "EndsRevealed", "FinalCommitted",
          "VerdictRevealed", "RoundFinalized", "PenaltyApplied", "AggregationOpened", "AggregateCommitted",
          "AggregatePosted", "AggregateRevealed", "EpochClosed", "AggregationPenalty", "CanonicalModelUpdated")
# the dispute act: a v1 round on a deployment with Disputes (issue #15)
DISPUTE_EVENTS = ("RoundCommitted", "RoundSealed", "StartsRevealed", "VerdictCommitted", "EndsRevealed", "FinalCommitted",
                  "VerdictRevealed", "DisputeOpened", "StepsPosted", "StepNamed", "JuryDrawn", "VoteCommitted",
                  "VoteRevealed", "DisputeResolved", "DisputePaid", "RoundFinalized", "PenaltyApplied", "CanonicalModelUpdated")
STAKE = 10 * 10**18
FUND = 5 * 10**18
SLOTS = 3  # trainers per epoch
DEMO_STEPS = 512  # inner steps per slot (H): 8 segments of the demo spec's 64 steps
# the dispute act's devnet: it runs beside the epochs act (BackgroundAct), so its windows get whole seconds per block
# on a machine the epochs keep busy; its wall time is hidden behind theirs
DISPUTE_BLOCK_TIME = 1.0


def demo_epoch_spec(block_time: float = 1.0):
    """The demo preset as an epoch task: three slots of H = 512 steps, DiLoCo's outer step (lr 0.7, Nesterov
    0.9), moments averaged; a claim window long enough for three node processes to start on a loaded machine, train
    and verdict windows long enough for three trainers and three verifiers sharing two cores (a round moves on as
    soon as everyone acted, an epoch aggregates once every claimed slot is finalized: long windows cost an honest
    epoch nothing). The windows are held in seconds: in blocks of `block_time` s (at most the protocol's longest)."""
    from node.engine import TaskSpec
    from node.protocol import MAX_WINDOW_BLOCKS

    def blocks(seconds: float) -> int:
        return min(MAX_WINDOW_BLOCKS, math.ceil(seconds / block_time))

    return TaskSpec.preset("demo").with_(
        steps_per_round=DEMO_STEPS,
        epochs={"slots": SLOTS, "outer_lr": 0.7, "outer_momentum": 0.9, "inner_moments": "corrected",
                "claim_window": blocks(30), "train_window": blocks(600)},
        # every verifier sits on all three slots' committees and replays them one after another, beside the
        # trainers training the next epoch ahead: a verdict window for three replays on a loaded 2-core machine;
        # seal one block after the commit (the seed is that block's hash; the preset waits 2): every slot's seal and
        # every epoch's aggregation committee a block sooner, as in the dispute act
        protocol={"seal_delay_blocks": 1, "commit_verdicts_window": blocks(240), "reveal_verdicts_window": blocks(120),
                  "reveal_window": blocks(120)})


class DemoFailed(Exception):
    pass


def begin_blocks(net, block_time: float) -> None:
    """After the set-up: a block every `block_time` s. A demo devnet starts with no block time (anvil mines each
    set-up transaction at once: deploy, stakes, the task, as `trainchain devnet up` does; ~25 blocks of waiting
    saved, the protocol's part unchanged) and switches here, before any node starts. anvil's interval mining takes
    whole seconds over RPC; any other block time restarts anvil on the same port with `--block-time` and the chain
    it dumped (`--state`)."""
    if net.block_time is not None:
        return
    if float(block_time).is_integer():
        reply = net.web3().provider.make_request("evm_setIntervalMining", [int(block_time)])
        if reply.get("error"):
            raise DemoFailed(f"anvil refused evm_setIntervalMining: {reply['error']}")
    else:
        head = net.client().block_number()
        net.anvil.block_time = block_time
        net.anvil.restart()
        if net.client().block_number() < head:
            raise DemoFailed(f"anvil restarted at block {net.client().block_number()}, not at the set-up's {head}")
    net.block_time = block_time


class Timings:
    """Wall-clock marks (seconds since the demo started), in the order they happened: the summary's `timings`."""

    def __init__(self, started: float | None = None):
        self.started = time.time() if started is None else started
        self.marks: dict[str, float] = {}

    def mark(self, label: str) -> None:
        self.marks.setdefault(label, round(time.time() - self.started, 1))

    def on_event(self, labels: dict):
        """An EventPrinter hook: marks `labels[event](args)` (a label, or None) the first time it is seen."""
        def hook(e: dict) -> None:
            label = labels[e["event"]](e["args"]) if e["event"] in labels else None
            if label:
                self.mark(label)
        return hook


class EventPrinter:
    """Prints the protocol's events as they happen, with node names for addresses."""

    def __init__(self, chain, console, names: dict[str, str], from_block: int, n_segments: int,
                 loss_of=lambda round_id: None, events: tuple[str, ...] = EVENTS, on_event=None):
        self.chain, self.console, self.names, self.n_segments, self.events = chain, console, names, n_segments, events
        self.on_event = on_event  # called with each event, after it is printed
        self.next_block = from_block
        self.loss_of = loss_of  # round -> the trainer's mean training loss, if known

    def name(self, address: str) -> str:
        return self.names.get(address, address[:10])

    def poll(self) -> None:
        head = self.chain.block_number()
        if head < self.next_block:
            return
        for e in self.chain.events_of(self.events, self.next_block, head):  # one eth_getLogs, not one per event
            self.console.print(f"[dim]block {e['blockNumber']:>4}[/dim]  {self.describe(e)}")
            if self.on_event is not None:
                self.on_event(e)
        self.next_block = head + 1

    def describe(self, e: dict) -> str:
        a, n = e["args"], e["event"]
        from node.rounds import outcome_name

        if n == "SlotClaimed":
            return (f"[bold]epoch {a['epoch']} slot {a['slot']}[/bold] claimed by {self.name(a['trainer'])} "
                    f"(round {a['slot_id']}, commit by block {a['commit_deadline']})")
        if n == "SlotCommitted":
            return f"epoch {a['epoch']} slot {a['slot']} (round {a['slot_id']}) committed by {self.name(a['trainer'])}"
        if n == "AggregationOpened":
            from node.protocol import compute_accepted_slots

            return (f"[bold]epoch {a['epoch']}[/bold]: aggregation of slots {compute_accepted_slots(a['accepted'])} opened, "
                    "committee " + ", ".join(self.name(x) for x in a["committee"]))
        if n == "AggregateCommitted":
            return f"epoch {a['epoch']}: {self.name(a['member'])} committed to the aggregate it computed"
        if n == "AggregatePosted":
            return (f"epoch {a['epoch']}: {self.name(a['poster'])} posted the aggregate 0x{bytes(a['state_hash']).hex()[:12]}… "
                    f"{a['cid'][:20]}…")
        if n == "AggregateRevealed":
            verdict = "[green]matches[/green]" if a["matches"] else "[red]contradicts[/red]"
            return f"epoch {a['epoch']}: {self.name(a['member'])}'s aggregate {verdict} the posted one"
        if n == "EpochClosed":
            from node.protocol import compute_accepted_slots
            from node.rounds import outcome_name

            outcome = outcome_name(a["outcome"])
            color = "green" if outcome == "accepted" else "red"
            return (f"[bold]epoch {a['epoch']} closed: [{color}]{outcome}[/{color}][/bold], slots "
                    f"{compute_accepted_slots(a['accepted_slots'])} aggregated, version {a['version']}")
        if n == "AggregationPenalty":
            return f"[red]{self.name(a['who'])} slashed {a['amount'] / 1e18:g} ETH ({a['reason']})[/red]"
        if n == "RoundCommitted":
            return f"[bold]round {a['round_id']}[/bold] committed by {self.name(a['trainer'])}"
        if n == "RoundSealed":
            from node.protocol import compute_check_ends

            starts = list(a["samples"])
            checks = ", ".join(f"h{j}→h{e}" for j, e in zip(starts, compute_check_ends(starts, self.n_segments)))
            return (f"round {a['round_id']} sealed: checks {checks} drawn, committee "
                    + ", ".join(self.name(x) for x in a["committee"]))
        if n == "StartsRevealed":
            return f"round {a['round_id']}: trainer revealed {len(a['start_hashes'])} start checkpoint(s)"
        if n == "VerdictCommitted":
            return f"round {a['round_id']}: {self.name(a['verifier'])} committed its verdict"
        if n == "FinalCommitted":
            return f"round {a['round_id']}: {self.name(a['verifier'])} committed its final-checkpoint flag"
        if n == "EndsRevealed":
            return f"round {a['round_id']}: trainer revealed the ends and final checkpoint {a['final_cid'][:20]}…"
        if n == "VerdictRevealed":
            verdict = "[red]contradicts[/red]" if a["contradicts"] else "[green]agrees[/green]"
            return f"round {a['round_id']}: {self.name(a['verifier'])} {verdict}"
        if n == "RoundFinalized":
            outcome = outcome_name(a["outcome"])
            color = "green" if outcome == "accepted" else "red"
            loss = self.loss_of(a["round_id"])
            loss_text = f" (trainer's mean loss {loss:.3f})" if loss is not None else ""
            return f"[bold]round {a['round_id']} finalized: [{color}]{outcome}[/{color}][/bold]{loss_text}"
        if n == "PenaltyApplied":
            return f"[red]{self.name(a['who'])} slashed {a['amount'] / 1e18:g} ETH ({a['reason']})[/red]"
        if n == "DisputeOpened":
            return (f"[bold]dispute {a['dispute_id']}[/bold]: {self.name(a['challenger'])} disputes check {a['check_index']} "
                    f"of round {a['round_id']} against {self.name(a['trainer'])} ({a['span_steps']} steps, bond "
                    f"{a['bond'] / 1e18:.4g} ETH)")
        if n == "StepsPosted":
            return f"dispute {a['dispute_id']}: the trainer posted the span's {len(a['step_hashes'])} step hashes"
        if n == "StepNamed":
            return f"dispute {a['dispute_id']}: the challenger names step {a['step']} (jury block {a['jury_block']})"
        if n == "JuryDrawn":
            return f"dispute {a['dispute_id']}: jury " + ", ".join(self.name(x) for x in a["jury"]) + " (each replays that step)"
        if n == "VoteCommitted":
            return f"dispute {a['dispute_id']}: juror {self.name(a['juror'])} committed its vote"
        if n == "VoteRevealed":
            side = "[green]trainer right[/green]" if a["trainer_right"] else "[red]challenger right[/red]"
            return f"dispute {a['dispute_id']}: juror {self.name(a['juror'])} votes {side}"
        if n == "DisputeResolved":
            winner = "[green]the trainer wins[/green]" if a["trainer_won"] else "[red]the challenger wins[/red]"
            return f"[bold]dispute {a['dispute_id']} resolved: {winner}[/bold] ({a['reason']})"
        if n == "DisputePaid":
            return f"dispute {a['dispute_id']}: {self.name(a['who'])} paid {a['amount'] / 1e18:.4g} ETH ({a['reason']})"
        if n == "CanonicalModelUpdated":
            return f"[cyan]canonical model of task {a['task_id']} is now version {a['version']}: {a['cid']}[/cyan]"
        return n


def run_demo(workdir: Path, block_time: float, honest_rounds: int, console, timeout: float) -> dict:
    """The epochs act, and the dispute act beside it (a thread, a devnet of its own: BackgroundAct); the summary
    of both, the dispute act's check last."""
    from node.engine import apply_runtime_pin

    started = time.time()
    timings = Timings(started)
    spec = demo_epoch_spec(block_time)
    apply_runtime_pin(spec)  # before torch: genesis, the aggregate check and generation run in this process
    # what both acts import, imported here once: two threads importing the same modules at once can deadlock
    import node.chain.contracts, node.chain.devnet, node.engine.dataset, node.engine.genesis  # noqa: E401, F401
    import node.localnet, node.rounds, node.store.gateway, node.store.peers, node.tasks  # noqa: E401, F401

    console.rule("[bold]trainchain demo: verified DiLoCo epochs")
    console.print("[dim]disputes │[/dim] the dispute act starts beside the epochs, on a devnet of its own (its "
                  "transcript follows the epochs)")
    background = BackgroundAct(workdir / "disputes", console, timeout, timings).start()
    try:
        summary = run_epochs_act(workdir, spec, block_time, honest_rounds, console, timeout, timings)
        if summary["ok"]:  # the epochs passed: the dispute act's result (a deployment WITH Disputes)
            act = background.collect()
            summary["disputes"] = act
            summary["checks"]["lazy_verifier_lost_dispute"] = act["ok"]
            summary["ok"] = act["ok"]
    finally:
        background.stop()  # cancelled if the epochs failed or Ctrl-C: its processes and anvil stopped
    summary["wall_s"] = round(time.time() - started, 1)
    summary["timings"] = timings.marks
    return summary


def run_epochs_act(workdir: Path, spec, block_time: float, honest_rounds: int, console, timeout: float,
                   timings: Timings) -> dict:
    """Steps 1-5 of the module's docstring: the epochs, the cheating slot, the canonical model and a sample."""
    from node.engine import build_dataset, demo_corpus_paths, generate, load_state
    from node.localnet import LocalNet, wait_until

    epochs = honest_rounds + 1  # honest epochs, then the one with the cheating slot
    net = LocalNet(workdir, block_time=None)  # the set-up mined at once: begin_blocks
    summary: dict = {"workdir": str(workdir)}
    try:
        net.start()
        timings.mark("epochs: devnet deployed")
        console.print(f"devnet {net.url} (anvil, {block_time:g} s blocks"
                      + ("; the set-up's transactions mined at once" if net.block_time is None else "") + "); contracts "
                      + ", ".join(f"{k} {v}" for k, v in net.deployment.addresses.items()))
        trainers = [net.add_node(f"trainer{i + 1}", net.dev[1 + i]) for i in range(SLOTS)]
        verifiers = [net.add_node(f"verifier{i + 1}", net.dev[1 + SLOTS + i]) for i in range(3)]
        cheater = net.add_node("cheater", net.dev[1 + SLOTS + 3])
        names = {n.address: n.name for n in [*trainers, cheater, *verifiers]}
        for node in [*trainers, cheater]:
            net.stake(node, "trainer", STAKE)
        for node in verifiers:
            net.stake(node, "verifier", STAKE)
        console.print(f"staked {STAKE / 1e18:g} ETH each: trainer1-{SLOTS}, cheater, verifier1-3 "
                      f"(keystores in {workdir / 'nodes'})")

        store = net.store()
        spec = spec.with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(), store)})
        task = net.create_task(spec, FUND)
        task_id = task["task_id"]
        begin_blocks(net, block_time)
        timings.mark("epochs: nodes staked, task created")
        console.print(f"task {task_id}: {spec.name} GPT ({spec.model.n_layer} layers, d={spec.model.n_embd}) in epochs of "
                      f"{SLOTS} slots x H={spec.steps_per_round} steps ({spec.segments_per_round} segments), outer step lr "
                      f"{spec.epochs.outer_lr} Nesterov {spec.epochs.outer_momentum}; pool {FUND / 1e18:g} ETH; "
                      f"genesis {task['genesis_cid']}")

        chain = net.client()
        printer = EventPrinter(chain, console, names, net.deployment.deploy_block, spec.segments_per_round,
                               on_event=timings.on_event({
                                   "SlotClaimed": lambda a: "epochs: first slot claimed",
                                   "RoundFinalized": lambda a: "epochs: first slot finalized",
                                   "EpochClosed": lambda a: f"epochs: epoch {a['epoch']} closed"}))
        for v in verifiers:
            net.spawn_verifier(v)
        procs = {t.name: net.spawn_trainer(t, task_id, epochs if i < SLOTS - 1 else honest_rounds)
                 for i, t in enumerate(trainers)}
        last_segment = spec.segments_per_round - 1
        procs["cheater"] = net.spawn_adversary(cheater, task_id, "--skip-segment", str(last_segment), "--rounds", "1",
                                               "--from-epoch", str(honest_rounds))
        console.print(f"started verifier1-3, trainer1-{SLOTS} and the cheater as separate processes (logs in "
                      f"{workdir / 'logs'}); trainer{SLOTS} trains {honest_rounds} epoch(s), then the cheater takes a "
                      f"slot of epoch {honest_rounds} and skips the steps of its segment {last_segment} (the last: "
                      "always checked)")

        def poll():
            printer.poll()
            net.check_alive(*(v.name for v in verifiers))

        wait_until(lambda: all(p.poll() is not None for p in procs.values()), timeout * epochs,
                   what=f"{epochs} epochs", on_poll=poll)
        printer.poll()
        timings.mark("epochs: node processes exited")
        for name, proc in procs.items():
            if proc.returncode != 0:
                raise DemoFailed(f"{name} exited with code {proc.returncode}:\n{net.log_tail(name)}")

        console.rule("the canonical model")
        from node.cli.model import pull_model

        latest = chain.latest_model(task_id)
        pulled = pull_model(chain, store, task_id, workdir / "model")  # StateError unless it hashes to the oracle's
        console.print(f"ModelOracle.latest({task_id}) = version {latest.version}, {latest.cid}; "
                      f"pulled to {pulled['path']} and verified (state hash 0x{latest.state_hash.hex()})")
        prompt = "def "
        sample = generate(load_state(pulled["path"], latest.state_hash), spec, prompt, max_new_tokens=160,
                          temperature=0.8)
        console.print(f"[bold]sample[/bold] (prompt {prompt!r}):\n{sample}")
        timings.mark("epochs: model pulled, sample generated")

        report = epoch_report(chain, task_id, epochs, names, workdir)
        cheat_epoch = report[-1]
        recomputed = recompute_aggregate(chain, store, spec, task_id, honest_rounds, latest, workdir / "check")
        slashed = [{"address": e["args"]["who"], "name": names.get(e["args"]["who"]), "amount_wei": e["args"]["amount"],
                    "reason": e["args"]["reason"], "round": e["args"]["round_id"]}
                   for e in chain.events("PenaltyApplied")]
        cheater_slots = [s for s in cheat_epoch["slots"] if s["trainer"] == "cheater"]
        checks = {
            "honest_epochs_accepted": all(e["outcome"] == "accepted" and e["accepted"] == list(range(SLOTS))
                                          for e in report[:honest_rounds]),
            "three_trainers_per_honest_epoch": all(len({s["trainer"] for s in e["slots"]}) == SLOTS
                                                   for e in report[:honest_rounds]),
            "cheater_slashed": len(cheater_slots) == 1 and cheater_slots[0]["outcome"] == "fraud"
            and any(s["address"] == cheater.address and s["reason"] == "fraud" for s in slashed),
            "cheating_slot_excluded": len(cheater_slots) == 1 and cheater_slots[0]["slot"] in cheat_epoch["excluded"],
            "other_slots_accepted": cheat_epoch["outcome"] == "accepted" and len(cheat_epoch["accepted"]) == SLOTS - 1,
            "aggregate_recomputed": recomputed,
            "versions_advanced": latest.version == epochs,
        }
        summary.update({
            "ok": all(checks.values()),
            "checks": checks,
            "task_id": task_id,
            "slots_per_epoch": SLOTS,
            "epochs": report,
            "versions": latest.version,
            "canonical": {"version": latest.version, "cid": latest.cid, "state_hash": "0x" + latest.state_hash.hex()},
            "slashed": slashed,
            "sample": sample,
        })
        timings.mark("epochs: report, aggregate recomputed")
    finally:
        net.stop()
        timings.mark("epochs: stopped")
    return summary


def dispute_act_spec(store):
    """The dispute act's task: the tiny preset (a v1 round of 16 steps in 4 segments, one sample), windows of 24
    blocks: at the act's 1 s blocks the contradicted round (held to its verdict deadline, no majority vote) ends in
    about a minute and a half, while the epochs act runs beside it on the same two cores (each window 24 s)."""
    from node.engine import TaskSpec, build_dataset, demo_corpus_paths

    spec = TaskSpec.preset("tiny").with_(protocol={"samples": 1, "seal_delay_blocks": 1, "reveal_window": 24,
                                                   "commit_verdicts_window": 24, "reveal_verdicts_window": 24})
    return spec.with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(200_000), store)})


class BackgroundAct:
    """The dispute act on a thread of its own while the epochs act runs: its own devnet and processes, so the two
    acts share nothing but the CPU (the act's round mostly waits for blocks and deadlines: beside the epochs it costs
    them little). Its transcript is recorded, not printed, and shown whole after the epochs (two chains' block lines
    interleaved would read as nonsense); one line prefixed `disputes │` says when it finished. `stop()` cancels it
    (the epochs failed, Ctrl-C) and waits for its clean-up: its processes and anvil are stopped in its `finally`."""

    def __init__(self, workdir: Path, console, timeout: float, timings: Timings):
        from rich.console import Console

        self.console, self.buffer, self.cancel = console, io.StringIO(), threading.Event()
        self.recorder = Console(file=self.buffer, width=console.width, force_terminal=console.is_terminal,
                                color_system=console.color_system, no_color=console.no_color)
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.shown = False
        # not a daemon: the interpreter waits for its clean-up even after a second Ctrl-C
        self.thread = threading.Thread(target=self._run, args=(workdir, timeout, timings), name="dispute-act")

    def _run(self, workdir: Path, timeout: float, timings: Timings) -> None:
        started = time.time()
        try:
            self.result = run_dispute_act(workdir, self.recorder, timeout, timings, cancel=self.cancel)
        except BaseException as e:  # noqa: BLE001 (re-raised on the main thread by collect())
            self.error = e
        if not self.cancel.is_set():
            passed = self.result is not None and self.result["ok"]
            how = "[green]passed[/green]" if passed else "[red]did not pass[/red]"
            self.console.print(f"[dim]disputes │[/dim] the dispute act (beside the epochs) {how} in "
                               f"{time.time() - started:.0f} s; its transcript follows the epochs")

    def start(self) -> "BackgroundAct":
        self.thread.start()
        return self

    def _join(self) -> None:
        while self.thread.is_alive():  # in steps: Ctrl-C still reaches the main thread
            self.thread.join(0.5)

    def show(self) -> None:
        """Print the act's transcript (once)."""
        if not self.shown:
            self.shown = True
            self.console.file.write(self.buffer.getvalue())
            self.console.file.flush()

    def collect(self) -> dict:
        """Wait for the act, print its transcript, return its summary (or raise its error)."""
        self._join()
        self.show()
        if self.error is not None:
            raise self.error
        return self.result

    def stop(self) -> None:
        """Cancel the act if it still runs and wait until its processes and devnet are stopped."""
        if self.thread.is_alive():
            self.cancel.set()
            self._join()


def run_dispute_act(workdir: Path, console, timeout: float, timings: Timings | None = None,
                    cancel: threading.Event | None = None) -> dict:
    """Disputes (issue #15) with real processes on a second devnet, deployed WITH Disputes (no majority vote for
    fraud): an honest trainer, two honest verifiers and a lazy one (`--verifier accuse`: contradicts without
    replaying, disputes, names a step blindly). The committee is all three, so the lazy verifier sits on it; its
    dispute goes to a jury of the two others, who replay the named step from the span's start checkpoint and side
    with the trainer: the lazy verifier loses its bond, the trainer and the jurors are paid from it, the round is
    accepted. Returns the act's summary and checks."""
    from node import protocol
    from node.chain.contracts import DeployParams
    from node.localnet import LocalNet, wait_until
    from node.rounds import Phase

    timings = timings or Timings()
    timings.mark("disputes: started")
    net = LocalNet(workdir, block_time=None, deploy_params=DeployParams(disputes=True))
    try:
        console.rule("[bold]disputes: a lazy verifier accuses an honest trainer")
        net.start()
        timings.mark("disputes: devnet deployed")
        trainer = net.add_staked_node("trainer", 1, "trainer", STAKE)
        verifiers = [net.add_staked_node(f"verifier{i + 1}", 2 + i, "verifier", STAKE) for i in range(2)]
        lazy = net.add_staked_node("lazy", 4, "verifier", STAKE)
        names = {n.address: n.name for n in [trainer, *verifiers, lazy]}
        spec = dispute_act_spec(net.store())
        task_id = net.create_task(spec, FUND)["task_id"]
        begin_blocks(net, DISPUTE_BLOCK_TIME)
        timings.mark("disputes: nodes staked, task created")
        console.print(f"devnet {net.url} ({DISPUTE_BLOCK_TIME:g} s blocks) with Disputes: a contradiction opens a "
                      f"dispute, no vote decides fraud; task {task_id}: tiny GPT, {spec.steps_per_round} steps in {spec.segments_per_round} "
                      "segments; trainer, verifier1-2 and lazy (contradicts without replaying, then disputes) staked "
                      f"{STAKE / 1e18:g} ETH each; the committee is all three verifiers")
        chain = net.client()
        printer = EventPrinter(chain, console, names, net.deployment.deploy_block, spec.segments_per_round,
                               events=DISPUTE_EVENTS, on_event=timings.on_event({
                                   "RoundCommitted": lambda a: "disputes: round committed",
                                   "DisputeOpened": lambda a: "disputes: dispute opened",
                                   "DisputeResolved": lambda a: "disputes: dispute resolved",
                                   "RoundFinalized": lambda a: "disputes: round finalized"}))
        before = {n.name: net.stake_of(n.address) for n in [trainer, lazy]}
        for v in verifiers:
            net.spawn_verifier(v, "--task", str(task_id))
        net.spawn_adversary(lazy, task_id, "--verifier", "accuse")
        proc = net.spawn_trainer(trainer, task_id, 1)

        def poll():
            if cancel is not None and cancel.is_set():
                raise DemoFailed("the dispute act was cancelled")
            printer.poll()
            net.check_alive(*(v.name for v in verifiers), lazy.name)

        wait_until(lambda: proc.poll() is not None, timeout, what="the dispute act's round", on_poll=poll)
        if proc.returncode != 0:
            raise DemoFailed(f"trainer exited with code {proc.returncode}:\n{net.log_tail(trainer.name)}")
        (rnd,) = wait_until(lambda: [r for r in net.rounds_of(task_id) if r.phase == Phase.FINALIZED], timeout,
                            what="the dispute act's round to finalize", on_poll=poll)
        printer.poll()
        timings.mark("disputes: round finalized")
        opened = [e["args"] for e in chain.events("DisputeOpened")]
        resolved = [e["args"] for e in chain.events("DisputeResolved")]
        votes = [e["args"] for e in chain.events("VoteRevealed")]
        paid = [{"dispute": e["args"]["dispute_id"], "to": names.get(e["args"]["who"], e["args"]["who"]),
                 "amount_wei": e["args"]["amount"], "reason": e["args"]["reason"]} for e in chain.events("DisputePaid")]
        after = {n.name: net.stake_of(n.address) for n in [trainer, lazy]}
        outcome = protocol.Outcome(rnd.outcome).label
        checks = {
            "lazy_disputed": bool(opened) and all(o["challenger"] == lazy.address for o in opened),
            "jury_sided_with_trainer": bool(votes) and all(v["trainer_right"] for v in votes),
            "lazy_lost_every_dispute": len(resolved) == len(opened) and all(r["trainer_won"] for r in resolved),
            "trainer_paid_from_bond": any(p["to"] == trainer.name and p["amount_wei"] > 0 for p in paid),
            "honest_round_accepted": outcome == "accepted",
        }
        lost = sum(o["bond"] for o in opened)
        console.print(f"round {rnd.round_id} {outcome}; lazy lost {len(opened)} dispute(s) and its bond(s) "
                      f"({lost / 1e18:.4g} ETH), its stake moved {(after['lazy'] - before['lazy']) / 1e18:+.4g} ETH; "
                      f"the trainer's stake {(after['trainer'] - before['trainer']) / 1e18:+.4g} ETH")
        return {"ok": all(checks.values()), "checks": checks, "task_id": task_id, "round": rnd.round_id,
                "outcome": outcome, "disputes": [{"dispute": r["dispute_id"], "trainer_won": r["trainer_won"],
                                                  "reason": r["reason"]} for r in resolved],
                "bonds_lost_wei": lost, "paid": paid,
                "stake_change_wei": {k: after[k] - before[k] for k in after}}
    finally:
        net.stop()
        timings.mark("disputes: stopped")


def epoch_report(chain, task_id: int, epochs: int, names: dict, workdir: Path) -> list[dict]:
    """Per epoch: its slots (who, round, outcome, mean training loss), A, the excluded slots, its outcome and state."""
    losses = {}
    for db_path in (workdir / "nodes").glob("*/trainer.sqlite"):
        losses.update(node_losses(db_path))
    out = []
    for e in range(epochs):
        ep = chain.get_epoch(task_id, e)
        slots = []
        for i in ep.claimed_slots:
            slot_id = chain.slot_id(task_id, e, i)
            rnd = chain.get_round(slot_id)
            slots.append({"slot": i, "round": slot_id, "trainer": names.get(rnd.trainer, rnd.trainer),
                          "outcome": rnd.outcome.label, "mean_loss": losses.get(slot_id)})
        accepted = ep.accepted_slots
        out.append({"epoch": e, "slots": slots, "accepted": accepted,
                    "excluded": [s["slot"] for s in slots if s["slot"] not in accepted],
                    "outcome": ep.outcome.label,
                    "state_hash": "0x" + (ep.state_hash if ep.outcome.label == "accepted" else ep.base_hash).hex(),
                    "cid": ep.cid or None})
    return out


def recompute_aggregate(chain, store, spec, task_id: int, epoch: int, latest, workdir: Path) -> bool:
    """The cheating epoch's canonical state is the outer step over its honest slots alone, recomputed here from
    the store: its base (the version before) and the accepted slots' final checkpoints."""
    from node.roles.epochs import StateRef, compute_aggregate, slot_finals

    ep = chain.get_epoch(task_id, epoch)
    before = chain.call(chain.oracle.functions.at(task_id, latest.version - 1))
    base = StateRef(before[0], bytes(before[1]))
    if base.state_hash != ep.base_hash:
        return False
    agg = compute_aggregate(spec, store, base, slot_finals(chain, task_id, epoch, ep.accepted), workdir)
    return agg.state_hash == latest.state_hash


def node_losses(db_path: Path) -> dict[int, float]:
    """Mean training loss per round from a trainer's sqlite DB (rounds it committed)."""
    from node.roles.db import NodeDB

    if not db_path.exists():
        return {}
    with NodeDB(db_path) as db:
        return {r.round_id: r.data["mean_loss"] for r in db.rounds("trainer")
                if isinstance(r.data.get("mean_loss"), float) and not math.isnan(r.data["mean_loss"])}


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the devnet, data dirs, store and logs go (default: a temp dir, removed on success).")
@click.option("--block-time", type=click.FloatRange(0.2, 15), default=1.0, show_default=True, help="anvil block time (s).")
@click.option("--epochs", "honest_rounds", type=click.IntRange(1, 20), default=2, show_default=True,
              help="Honest epochs (three trainers each) before the epoch with the cheating slot.")
@click.option("--keep", is_flag=True, help="Keep the temp dir (logs, store, databases) after a successful run.")
@click.option("--timeout", type=click.FloatRange(10), default=600, show_default=True,
              help="Give up after this many seconds per epoch.")
def demo(workdir: Path | None, block_time: float, honest_rounds: int, keep: bool, timeout: float) -> None:
    """The whole protocol end to end on a local devnet; the last stdout line is a JSON summary."""
    from rich.console import Console

    console = Console(stderr=True)
    temp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="trainchain-demo-")) if temp else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"ok": False, "workdir": str(workdir)}
    try:
        summary = run_demo(workdir, block_time, honest_rounds, console, timeout)
    except (DemoFailed, TimeoutError, RuntimeError) as e:
        console.print(f"[bold red]demo failed:[/bold red] {e}")
        summary["error"] = str(e)
    except KeyboardInterrupt:
        summary["error"] = "interrupted"
    if summary.get("ok"):
        console.rule(f"[bold green]demo passed in {summary['wall_s']:.0f} s")
        if temp and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
            summary["workdir"] = None
    else:
        console.print(f"[bold red]demo did not pass[/bold red]; logs kept in {workdir / 'logs'}")
    click.echo(json.dumps(summary, default=str))
    if not summary.get("ok"):
        raise SystemExit(1)
