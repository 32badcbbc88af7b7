"""Throughput of verified DiLoCo epochs (issue #14): `python -m bench.epochs` -> bench/epochs.md + bench/epochs.json.

Not in `python -m bench`'s default list (minutes per N on a 2-core machine). For N = 1, 2 (BENCH_EPOCHS_NS)
trainers: a LocalNet (anvil, 1 s blocks) with N trainer processes and three verifier processes runs
BENCH_EPOCHS (default 3) epochs of an epoch task of the demo model, H = BENCH_EPOCHS_H (default 512) steps per
slot. Measured from the chain and the nodes' databases:

- verified training steps per second of epoch wall time: Σ_e |A_e|·H over the time from the first epoch's
  opening block to the last epoch's closing block (block timestamps), the steps the network accepted;
- per-epoch protocol overhead: the epoch's wall time (opening to closing block) against its slowest slot's
  pure training (the trainer's `train` stage: H steps + boundary states), minus one. With training ahead an
  epoch's slot may have been trained before the epoch opened: then the epoch's time is all protocol;
- the verifiers' CPU seconds (replays, aggregates, polling), reported separately: on 2 cores they share the
  trainers' cores.

N = 1 uses a one-slot task with DiLoCo's outer step (an epoch task: claim, slot, aggregation), not the v1 path.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
NS = [int(n) for n in os.environ.get("BENCH_EPOCHS_NS", "1,2").split(",")]
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "3"))
H = int(os.environ.get("BENCH_EPOCHS_H", "512"))
STAKE = 10 * 10**18


def bench_spec(n: int):
    from node.engine import TaskSpec

    return TaskSpec.preset("demo").with_(
        steps_per_round=H,
        epochs={"slots": n, "outer_lr": 0.7, "outer_momentum": 0.9, "claim_window": 20, "train_window": 240})


def run_n(n: int, root: Path) -> dict:
    import psutil

    from node.engine import build_dataset, demo_corpus_paths
    from node.localnet import LocalNet, wait_until
    from node.roles.db import NodeDB

    net = LocalNet(root, block_time=1.0)
    try:
        net.start()
        trainers = [net.add_staked_node(f"trainer{i}", 1 + i, "trainer", STAKE) for i in range(n)]
        verifiers = [net.add_staked_node(f"verifier{i}", 1 + n + i, "verifier", STAKE) for i in range(3)]
        spec = bench_spec(n).with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(), net.store())})
        task_id = net.create_task(spec, 5 * 10**18)["task_id"]
        vprocs = [net.spawn_verifier(v) for v in verifiers]
        tprocs = [net.spawn_trainer(t, task_id, EPOCHS) for t in trainers]
        cpu = {p.pid: 0.0 for p in vprocs}

        def sample_cpu():
            for p in vprocs:
                try:
                    t = psutil.Process(p.pid).cpu_times()
                    cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass

        wait_until(lambda: all(p.poll() is not None for p in tprocs), 600 * EPOCHS, interval=1.0,
                   what=f"{EPOCHS} epochs of {n} slot(s)", on_poll=sample_cpu)
        for name in [t.name for t in trainers]:
            if net.procs[name].returncode != 0:
                raise RuntimeError(f"{name} exited {net.procs[name].returncode}:\n{net.log_tail(name)}")
        chain = net.client()
        ts = lambda b: chain.w3.eth.get_block(b)["timestamp"]  # noqa: E731
        opened = {e["args"]["epoch"]: e["blockNumber"] for e in chain.events("EpochOpened", task_id=task_id)}
        closed = {e["args"]["epoch"]: e for e in chain.events("EpochClosed", task_id=task_id)}
        train_s = {}  # slot id -> the trainer's pure training seconds
        for t in trainers:
            with NodeDB(t.datadir / "trainer.sqlite") as db:
                for row in db.timings("trainer"):
                    if row["stage"] == "train":
                        train_s[row["round_id"]] = row["seconds"]
        last = {}  # (event, epoch) -> the block of the epoch's last such event: where an epoch's blocks go
        for name in ("SlotCommitted", "SlotFinalized"):
            for ev in chain.events(name, task_id=task_id):
                key = (name, ev["args"]["epoch"])
                last[key] = max(last.get(key, 0), ev["blockNumber"])
        epochs = []
        for e in range(EPOCHS):
            ep = chain.get_epoch(task_id, e)
            wall = ts(closed[e]["blockNumber"]) - ts(opened[e])
            slots = [chain.slot_id(task_id, e, i) for i in ep.claimed_slots]
            slowest = max((train_s.get(s, 0.0) for s in slots), default=0.0)
            committed, final = last.get(("SlotCommitted", e)), last.get(("SlotFinalized", e))
            epochs.append({"epoch": e, "accepted": ep.accepted_slots, "wall_s": wall, "slowest_train_s": round(slowest, 2),
                           "overhead": round(wall / slowest - 1, 3) if slowest else None,
                           "blocks": closed[e]["blockNumber"] - opened[e],
                           # opening -> last commit (training), -> last slot finalized (the slots' rounds),
                           # -> closed (the aggregation: seed delay, open, commit, post, reveal, finalize)
                           "to_last_commit": committed - opened[e] if committed else None,
                           "slot_rounds": final - committed if committed and final else None,
                           "aggregation": closed[e]["blockNumber"] - final if final else None})
        span = ts(closed[EPOCHS - 1]["blockNumber"]) - ts(opened[0])
        steps = sum(len(e["accepted"]) for e in epochs) * H
        return {"n": n, "H": H, "epochs": epochs, "span_s": span, "verified_steps": steps,
                "steps_per_s": round(steps / span, 2), "verifier_cpu_s": round(sum(cpu.values()), 1)}
    finally:
        net.stop()


def write_md(results: list[dict], seconds: float, load: tuple | None = None) -> str:
    """bench/epochs.md; `load`: the 1-minute load average (/proc/loadavg) before and after the run."""
    loads = f" Load average (1 min) {load[0]:.2f} before the run, {load[1]:.2f} after it." if load else ""
    lines = ["# Verified DiLoCo epochs: throughput (`python -m bench.epochs`)", "",
             f"Demo model, H = {H} steps per slot, {EPOCHS} epochs per run; LocalNet on this machine (anvil, 1 s blocks), "
             "N trainer processes + 3 verifier processes; DiLoCo's outer step (lr 0.7, Nesterov 0.9). Whole bench "
             f"{seconds:.0f} s.{loads}", "",
             "| N | verified steps | span (s) | verified steps / s | verifier CPU (s) |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['n']} | {r['verified_steps']} | {r['span_s']} | {r['steps_per_s']} | {r['verifier_cpu_s']} |")
    lines += ["", "Per epoch (wall = the epoch's opening block to its closing block; overhead = wall / the slowest "
              "slot's pure training - 1; its blocks split into opening -> last slot commit, -> last slot finalized "
              "(the slots' v1 rounds), -> epoch closed (the aggregation)):", "",
              "| N | epoch | A | wall (s) | blocks | to last commit | slot rounds | aggregation | slowest slot's training (s) "
              "| overhead |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for e in r["epochs"]:
            ov = f"{e['overhead'] * 100:.0f} %" if e["overhead"] is not None else "n/a"
            parts = " | ".join(str(e.get(k, "n/a")) for k in ("to_last_commit", "slot_rounds", "aggregation"))
            lines.append(f"| {r['n']} | {e['epoch']} | {e['accepted']} | {e['wall_s']} | {e['blocks']} | {parts} | "
                         f"{e['slowest_train_s']} | {ov} |")
    return "\n".join(lines) + "\n"


def main() -> list[dict]:
    from node.engine import apply_runtime_pin

    apply_runtime_pin(bench_spec(1))
    out = []
    for n in NS:
        with tempfile.TemporaryDirectory(prefix=f"bench-epochs-{n}-") as tmp:
            out.append(run_n(n, Path(tmp)))
            print(json.dumps(out[-1]), flush=True)
    return out


if __name__ == "__main__":
    started, load0 = time.time(), os.getloadavg()[0]
    res = main()
    md = write_md(res, time.time() - started, (load0, os.getloadavg()[0]))
    (BENCH_DIR / "epochs.json").write_text(json.dumps(res, indent=1) + "\n")
    (BENCH_DIR / "epochs.md").write_text(md)
    print(md)
    sys.exit(0)
