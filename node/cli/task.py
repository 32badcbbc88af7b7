"""`trainchain task create|list|show`: training tasks on-chain, their spec and genesis in the store.

    trainchain task create --spec spec.json --fund 5 --demo-data --account 0x.. --password-file pw

node.tasks.create_task() is the same thing for code (the demo and LocalNet use it).
"""
from __future__ import annotations

from pathlib import Path

import click

from node.chain.records import format_ether
from node.cli.options import AMOUNT, NodeContext, hexstr, node_options, store_option
from node.errors import PreflightError
from node.tasks import create_task


@click.group()
def task() -> None:
    """Create, list and show training tasks."""


@task.command("create")
@click.option("--spec", "spec_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="TaskSpec JSON (`trainchain spec init`).")
@click.option("--fund", required=True, type=AMOUNT, help="Reward pool, in ether (e.g. 5, 5eth, 500000gwei).")
@click.option("--data", "data_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Build the dataset from these files/dirs (sets the spec's dataset).")
@click.option("--demo-data", is_flag=True, help="Build the demo corpus as the dataset.")
@node_options
@store_option
def create(node: NodeContext, spec_path: Path, fund: int, data_paths, demo_data: bool) -> None:
    """Store the spec, the dataset and the genesis checkpoint; create the funded task on-chain."""
    from node.engine import TaskSpec, build_dataset, demo_corpus_paths

    spec = TaskSpec.from_file(spec_path)
    chain = node.chain(sign=True)  # unlock and reach the chain before the slow part
    store = node.store()
    if data_paths or demo_data:
        paths = list(data_paths) + (demo_corpus_paths() if demo_data else [])
        node.note(f"building the dataset from {len(paths)} file(s) ...")
        spec = spec.with_(dataset={"manifest_cid": build_dataset(paths, store)})
    result = create_task(chain, store, spec, fund, log=node.note)
    node.emit(result, lambda: "\n".join([
        f"task {result['task_id']} created (pool {format_ether(fund)})",
        f"  spec     {result['spec_cid']}  (keccak {result['spec_hash']})",
        f"  dataset  {result['dataset_cid']}",
        f"  genesis  {result['genesis_cid']}  (state hash {result['genesis_hash']})",
    ]))


def _task_summary(chain, task_id: int) -> dict:
    task, latest = chain.get_task(task_id), chain.latest_model(task_id)
    return {
        "task_id": task_id,
        "creator": task.creator,
        "spec_cid": task.spec_cid,
        "spec_hash": hexstr(task.spec_hash),
        "pool": task.pool,
        "open_round": task.open_round or None,
        "rounds_accepted": task.rounds_accepted,
        "canonical": {"cid": latest.cid, "state_hash": hexstr(latest.state_hash), "version": latest.version,
                      "round": latest.round_id, "block": latest.block, "timestamp": latest.timestamp},
        "params": task.params.to_json(),
    }


def epochs_summary(chain, task_id: int, last: int = 10) -> list[dict]:
    """An epoch task's last `last` epochs (#14): phase or outcome, each claimed slot (its round, trainer and
    outcome), A (the accepted slots), the slots left out, the epoch's state. [] for a v1 task."""
    if chain.epochs is None or not getattr(chain.get_task(task_id).params, "is_epoch_task", False):
        return []
    from node.rounds import EpochPhase, Phase  # the epoch state machine (#14)

    current = chain.get_epoch(task_id).epoch
    out = []
    for e in range(max(0, current - last + 1), current + 1):
        ep = chain.get_epoch(task_id, e)
        slots = []
        for i in ep.claimed_slots:
            slot_id = chain.slot_id(task_id, e, i)
            rnd = chain.get_round(slot_id)
            slots.append({"slot": i, "round": slot_id, "trainer": rnd.trainer,
                          "outcome": rnd.outcome.label if rnd.phase == Phase.FINALIZED else rnd.phase.label})
        closed = ep.phase == EpochPhase.CLOSED
        out.append({"epoch": e, "phase": ep.phase.label, "outcome": ep.outcome.label if closed else None,
                    "slots": slots, "accepted": ep.accepted_slots,
                    "excluded": [s["slot"] for s in slots if closed and s["slot"] not in ep.accepted_slots],
                    "state_hash": hexstr(ep.state_hash) if closed and ep.cid else None, "cid": ep.cid or None})
    return out


def epochs_text(epochs: list[dict]) -> list[str]:
    lines = []
    for e in epochs:
        head = f"  epoch {e['epoch']}: " + (e["outcome"] if e["outcome"] else e["phase"])
        if e["outcome"]:
            head += f", A = slots {e['accepted']}" + (f", left out {e['excluded']}" if e["excluded"] else "")
            head += f", state {e['cid']}" if e["cid"] else ", state unchanged"
        lines.append(head)
        lines += [f"    slot {s['slot']} (round {s['round']}): {s['outcome']}, trainer {s['trainer']}" for s in e["slots"]]
    return lines


@task.command("list")
@node_options
def list_(node: NodeContext) -> None:
    """Every task: pool, rounds accepted, open round, canonical version."""
    chain = node.chain()
    count = chain.call(chain.registry.functions.task_count())
    tasks = [_task_summary(chain, i) for i in range(1, count + 1)]

    def text() -> str:
        if not tasks:
            return "no tasks yet (`trainchain task create`)"
        rows = [f"{'id':>4}  {'pool':>16}  {'accepted':>8}  {'open':>5}  {'version':>7}  canonical cid"]
        rows += [f"{t['task_id']:>4}  {format_ether(t['pool']):>16}  {t['rounds_accepted']:>8}  "
                 f"{t['open_round'] or '-':>5}  {t['canonical']['version']:>7}  {t['canonical']['cid']}" for t in tasks]
        return "\n".join(rows)

    node.emit(tasks, text)


@task.command("show")
@click.argument("task_id", type=click.IntRange(1))
@node_options
@store_option
def show(node: NodeContext, task_id: int) -> None:
    """One task: parameters, canonical model, its rounds, and the spec (if the store has it)."""
    chain = node.chain()
    info = _task_summary(chain, task_id)
    committed = chain.events("RoundCommitted", task_id=task_id)
    finalized = {e["args"]["round_id"]: e["args"] for e in chain.events("RoundFinalized", task_id=task_id)}
    from node.rounds import outcome_name

    info["rounds"] = [
        {"round": e["args"]["round_id"], "trainer": e["args"]["trainer"], "block": e["blockNumber"],
         "outcome": outcome_name(finalized[e["args"]["round_id"]]["outcome"]) if e["args"]["round_id"] in finalized else "open"}
        for e in committed
    ]
    info["epochs"] = epochs_summary(chain, task_id)
    info["spec"] = None
    try:
        store = node.store()
        if store.has(info["spec_cid"]):
            import json

            info["spec"] = json.loads(store.get_bytes(info["spec_cid"]))
    except Exception as e:  # the spec is a courtesy: the chain data above is what was asked
        node.note(f"(spec not readable from the store: {e})")

    def text() -> str:
        c, p = info["canonical"], info["params"]
        lines = [
            f"task {task_id} by {info['creator']}" + (f" — {info['spec']['name']}" if info["spec"] else ""),
            f"  pool {format_ether(info['pool'])}, {info['rounds_accepted']} round(s) accepted, "
            f"open round: {info['open_round'] or 'none'}",
            f"  canonical v{c['version']} (round {c['round']}): {c['cid']}  {c['state_hash']}",
            f"  S={p['steps_per_round']} k={p['segment_steps']} samples={p['samples']} "
            f"committee={p['committee_size']} quorum={p['quorum']}",
            f"  spec {info['spec_cid']}",
        ]
        if info["epochs"]:
            lines += epochs_text(info["epochs"])
        else:
            lines += [f"  round {r['round']}: {r['outcome']} (trainer {r['trainer']}, block {r['block']})" for r in info["rounds"]]
        return "\n".join(lines)

    node.emit(info, text)
