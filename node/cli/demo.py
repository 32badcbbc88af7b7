"""`trainchain demo` (what `make demo` runs): the whole protocol end to end on this machine.

1. a devnet (anvil, 1 s blocks) with the contracts; five keystores, five data dirs, each
   with its own content store (as on five machines: content moves between them only
   through the nodes' IPFS trustless gateways, advertised in PeerDirectory); a trainer,
   three verifiers and a cheater stake;
2. the demo dataset and task (spec + genesis in the store, a funded reward pool);
3. one trainer and three verifiers as separate processes (`trainchain trainer run`,
   `trainchain verifier run`) through three honest rounds: the canonical version
   advances and the loss goes down;
4. a trainer that skips the steps of the last segment (always sampled) is caught by
   the replays and slashed;
5. the latest canonical CID read from ModelOracle, the weights fetched from the nodes'
   gateways and checked against the state hash, and a sample generated from them.

Progress goes to stderr; the last line of stdout is one JSON summary.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import click

EVENTS = ("RoundCommitted", "RoundSealed", "StartsRevealed", "VerdictCommitted", "EndsRevealed",
          "VerdictRevealed", "RoundFinalized", "PenaltyApplied", "CanonicalModelUpdated")
STAKE = 10 * 10**18
FUND = 2 * 10**18


class DemoFailed(Exception):
    pass


class EventPrinter:
    """Prints the protocol's events as they happen, with node names for addresses."""

    def __init__(self, chain, console, names: dict[str, str], from_block: int, n_segments: int,
                 loss_of=lambda round_id: None):
        self.chain, self.console, self.names, self.n_segments = chain, console, names, n_segments
        self.next_block = from_block
        self.loss_of = loss_of  # round -> the trainer's mean training loss, if known

    def name(self, address: str) -> str:
        return self.names.get(address, address[:10])

    def poll(self) -> None:
        head = self.chain.block_number()
        if head < self.next_block:
            return
        found = []
        for event in EVENTS:
            found += self.chain.events(event, self.next_block, head)
        for e in sorted(found, key=lambda e: (e["blockNumber"], e["logIndex"])):
            self.console.print(f"[dim]block {e['blockNumber']:>4}[/dim]  {self.describe(e)}")
        self.next_block = head + 1

    def describe(self, e: dict) -> str:
        a, n = e["args"], e["event"]
        from node.rounds import outcome_name

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
        if n == "CanonicalModelUpdated":
            return f"[cyan]canonical model of task {a['task_id']} is now version {a['version']}: {a['cid']}[/cyan]"
        return n


def run_demo(workdir: Path, block_time: float, honest_rounds: int, console, timeout: float) -> dict:
    from node.engine import TaskSpec, apply_runtime_pin
    from node.localnet import LocalNet, wait_until

    started = time.time()
    spec = TaskSpec.preset("demo")
    apply_runtime_pin(spec)  # before torch: genesis and generation run in this process
    from node.engine import build_dataset, demo_corpus_paths, load_state
    from node.engine import generate

    net = LocalNet(workdir, block_time=block_time)
    summary: dict = {"workdir": str(workdir)}
    try:
        console.rule("[bold]trainchain demo")
        net.start()
        console.print(f"devnet {net.url} (anvil, {block_time:g} s blocks); contracts "
                      + ", ".join(f"{k} {v}" for k, v in net.deployment.addresses.items()))
        trainer = net.add_node("trainer", net.dev[1])
        verifiers = [net.add_node(f"verifier{i + 1}", net.dev[2 + i]) for i in range(3)]
        cheater = net.add_node("cheater", net.dev[5])
        names = {n.address: n.name for n in [trainer, cheater, *verifiers]}
        for node in [trainer, cheater]:
            net.stake(node, "trainer", STAKE)
        for node in verifiers:
            net.stake(node, "verifier", STAKE)
        console.print(f"staked {STAKE / 1e18:g} ETH each: trainer, cheater, verifier1-3 (keystores in {workdir / 'nodes'})")

        store = net.store()
        spec = spec.with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(), store)})
        task = net.create_task(spec, FUND)
        task_id = task["task_id"]
        console.print(f"task {task_id}: {spec.name} GPT ({spec.model.n_layer} layers, d={spec.model.n_embd}), "
                      f"S={spec.steps_per_round} steps/round in {spec.segments_per_round} segments, "
                      f"pool {FUND / 1e18:g} ETH; genesis {task['genesis_cid']}")

        chain = net.client()
        def loss_of(round_id: int):
            for name in ("trainer", "cheater"):
                loss = node_losses(workdir / "nodes" / name / "trainer.sqlite").get(round_id)
                if loss is not None:
                    return loss
            return None

        printer = EventPrinter(chain, console, names, net.deployment.deploy_block, spec.segments_per_round, loss_of)
        for v in verifiers:
            net.spawn_verifier(v)
        proc = net.spawn_trainer(trainer, task_id, rounds=honest_rounds)
        console.print(f"started verifier1-3 and the trainer as separate processes (logs in {workdir / 'logs'})")

        def poll():
            printer.poll()
            net.check_alive(*(v.name for v in verifiers))

        def accepted() -> int:
            return chain.get_task(task_id).rounds_accepted

        wait_until(lambda: proc.poll() is not None, timeout, what=f"{honest_rounds} honest rounds", on_poll=poll)
        if proc.returncode != 0:
            raise DemoFailed(f"the trainer exited with code {proc.returncode}:\n{net.log_tail('trainer')}")
        if accepted() < honest_rounds:
            raise DemoFailed(f"only {accepted()} of {honest_rounds} rounds were accepted:\n{net.log_tail('trainer')}")

        last_segment = spec.segments_per_round - 1
        console.rule(f"[red]a cheating trainer skips the steps of segment {last_segment} (the last: always checked)")
        proc = net.spawn_adversary(cheater, task_id, "--skip-segment", str(last_segment), "--rounds", "1")
        wait_until(lambda: proc.poll() is not None, timeout, what="the cheating round", on_poll=poll)
        printer.poll()
        if proc.returncode != 0:
            raise DemoFailed(f"the cheater exited with code {proc.returncode}:\n{net.log_tail('cheater')}")

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

        rounds = []
        for e in chain.events("RoundCommitted", task_id=task_id):
            r = chain.get_round(e["args"]["round_id"])
            rounds.append({"round": e["args"]["round_id"], "trainer": names.get(r.trainer, r.trainer),
                           "outcome": r.outcome.label, "final_cid": r.final_cid or None})
        losses = node_losses(workdir / "nodes" / "trainer" / "trainer.sqlite")
        cheat_losses = node_losses(workdir / "nodes" / "cheater" / "trainer.sqlite")
        for r in rounds:
            r["mean_loss"] = {**losses, **cheat_losses}.get(r["round"])
        slashed = [{"address": e["args"]["who"], "name": names.get(e["args"]["who"]), "amount_wei": e["args"]["amount"],
                    "reason": e["args"]["reason"], "round": e["args"]["round_id"]}
                   for e in chain.events("PenaltyApplied")]
        honest = [losses[r["round"]] for r in rounds if r["outcome"] == "accepted" and r["round"] in losses]
        cheat_round = rounds[-1]
        checks = {
            "honest_rounds_accepted": sum(r["outcome"] == "accepted" for r in rounds) >= honest_rounds,
            "versions_advanced": latest.version >= honest_rounds,
            "loss_decreased": len(honest) >= 2 and all(b < a for a, b in zip(honest, honest[1:])),
            "cheater_slashed": cheat_round["outcome"] == "fraud"
            and any(s["address"] == cheater.address and s["reason"] == "fraud" for s in slashed),
        }
        summary.update({
            "ok": all(checks.values()),
            "checks": checks,
            "task_id": task_id,
            "rounds": rounds,
            "versions": latest.version,
            "canonical": {"version": latest.version, "cid": latest.cid,
                          "state_hash": "0x" + latest.state_hash.hex(), "round": latest.round_id},
            "slashed": slashed,
            "losses": honest,
            "sample": sample,
        })
        return summary
    finally:
        net.stop()
        summary["wall_s"] = round(time.time() - started, 1)


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
@click.option("--rounds", "honest_rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Honest rounds before the cheater.")
@click.option("--keep", is_flag=True, help="Keep the temp dir (logs, store, databases) after a successful run.")
@click.option("--timeout", type=click.FloatRange(10), default=600, show_default=True,
              help="Give up on a phase after this many seconds.")
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
