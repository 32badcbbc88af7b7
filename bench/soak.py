"""Soak: many honest rounds of real trainer and verifier processes on the devnet; zero penalties.

    .venv/bin/python -m bench.soak                     # 200 rounds -> bench/soak.md (~30-60 min)
    .venv/bin/python -m bench.soak --rounds 20 --out /tmp/soak.md

Not in CI and not in `make bench`: it is the long check behind issue #19 (an honest trainer
convicted because dropout drew from torch's global RNG). One anvil (LocalNet, --block-time),
the contracts, three `trainchain verifier run` processes and one `trainchain trainer run
--rounds N` (training ahead, the CLI's default), each with its own data dir, key and content
store, on a tiny spec with dropout on. The report is read from the chain (outcomes,
PenaltyApplied and Slashed events, stakes before and after) and from every node's sqlite
(duties, verdicts that contradicted the trainer, timings), with the wall time and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from node import protocol
from node.chain.records import TaskParams
from node.rounds import outcome_name

REPO = Path(__file__).resolve().parents[1]
STAKE = 4 * 10**18
NODE_CONFIG = "tx_replace_after = 5.0\ntx_timeout = 60.0\npoll_interval = 0.25\nrpc_backoff = 0.3\n"


def soak_spec(store):
    """Tiny GPT (1 layer, d=32, dropout 0.1), 32 steps in 8 segments of 4, 2 samples, committee of 3.

    Windows are wide (a loaded machine must never turn load into a no-show penalty); a round
    ends as soon as everyone has acted, so they cost nothing when the nodes keep up."""
    from node.engine import TaskSpec, build_dataset, demo_corpus_paths

    spec = TaskSpec.preset("tiny").with_(
        name="soak", steps_per_round=32, segment_steps=4,
        protocol={"samples": 2, "committee_size": 3, "quorum": 2, "seal_delay_blocks": 1, "reveal_window": 60,
                  "commit_verdicts_window": 90, "reveal_verdicts_window": 90})
    return spec.with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(200_000), store)})


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, load average at the end {load}; Python {platform.python_version()}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def run(rounds: int, root: Path, block_time: float, timeout: float, out: Path) -> dict:
    from node.engine import TaskSpec, apply_runtime_pin

    apply_runtime_pin(TaskSpec.preset("tiny"))  # genesis is drawn here: pin before torch loads
    from node.localnet import LocalNet
    from node.roles.db import NodeDB

    t0 = time.time()
    local = LocalNet(root, block_time=block_time).start()
    try:
        chain = local.client()
        nodes = {}
        for name, dev_index, role in [("trainer", 1, "trainer"), *[(f"verifier{i}", 2 + i, "verifier") for i in range(3)]]:
            nodes[name] = (local.add_staked_node(name, dev_index, role, STAKE, config=NODE_CONFIG), role)
        spec = soak_spec(local.store())
        task_id = local.create_task(spec, TaskParams.from_spec(spec).round_cost * (rounds + 10))["task_id"]
        start_block = chain.block_number()
        stake_of = lambda n: chain.call(chain.stake_manager.functions.stake_of(n.address))  # noqa: E731
        before = {name: stake_of(n) for name, (n, _) in nodes.items()}
        for name, (node, role) in nodes.items():
            if role == "verifier":
                local.spawn_verifier(node)
        local.spawn_trainer(nodes["trainer"][0], task_id, rounds)
        t_start = time.time()
        finished: dict[int, int] = {}
        last_print = 0.0
        while True:
            local.check_alive()
            ids = [e["args"]["round_id"] for e in chain.events("RoundCommitted", start_block, task_id=task_id)]
            for rid in ids:
                if rid not in finished:
                    rnd = chain.get_round(rid)
                    if rnd.phase == protocol.Phase.FINALIZED:
                        finished[rid] = rnd["outcome"]
            decided = sum(1 for o in finished.values() if o in (protocol.Outcome.ACCEPTED, protocol.Outcome.FRAUD))
            if time.time() - last_print > 30:
                print(f"soak: {len(finished)} rounds finalized ({decided} decided) after {time.time() - t_start:.0f} s; "
                      f"outcomes {dict(Counter(outcome_name(o) for o in finished.values()))}", flush=True)
                last_print = time.time()
            if decided >= rounds or local.procs["trainer"].poll() is not None:
                break
            if time.time() - t_start > timeout:
                print(f"soak: timed out after {timeout:.0f} s", flush=True)
                break
            time.sleep(2.0)
        wall = time.time() - t_start
        time.sleep(3 * block_time)  # the last round's claims and clean-up
        after = {name: stake_of(n) for name, (n, _) in nodes.items()}
        penalties = chain.events("PenaltyApplied", start_block)
        slashes = chain.events("Slashed", start_block)
        address_name = {n.address.lower(): name for name, (n, _) in nodes.items()}
        per_node = {}
        for name, (node, role) in nodes.items():
            db = NodeDB(node.datadir / f"{role}.sqlite")
            duties = Counter(f"{d['duty']}:{d['outcome']}" for d in db.duties(role))
            recs = db.rounds(role)
            verdicts = Counter("agrees" if r.data.get("agrees") else "contradicts" for r in recs
                               if "agrees" in r.data) if role == "verifier" else Counter()
            round_s = [t["seconds"] for t in db.timings(role) if t["stage"] == "round"]
            per_node[name] = {
                "role": role, "address": node.address,
                "penalties": sum(1 for p in penalties if p["args"]["who"].lower() == node.address.lower()),
                "stake_delta_wei": after[name] - before[name], "duties": dict(sorted(duties.items())),
                "verdicts": dict(verdicts), "mean_round_s": sum(round_s) / len(round_s) if round_s else None,
            }
        result = {
            "rounds_wanted": rounds, "rounds_finalized": len(finished),
            "outcomes": dict(Counter(outcome_name(o) for o in finished.values())),
            "penalties": len(penalties), "slashes": len(slashes),
            "penalty_events": [{**p["args"], "who": address_name.get(p["args"]["who"].lower(), p["args"]["who"])}
                               for p in penalties],
            "nodes": per_node, "wall_s": wall, "setup_s": t_start - t0, "block_time": block_time,
            "spec": {"name": spec.name, "steps_per_round": spec.steps_per_round, "segment_steps": spec.segment_steps,
                     "samples": spec.protocol.samples, "committee": spec.protocol.committee_size,
                     "dropout": spec.model.dropout, "engine": spec.runtime.engine, "n_layer": spec.model.n_layer,
                     "n_embd": spec.model.n_embd},
            "commit": git_commit(), "machine": machine(),
            "ok": (len(penalties) == 0 and len(slashes) == 0 and set(finished.values()) == {protocol.Outcome.ACCEPTED}
                   and len(finished) >= rounds),
        }
    finally:
        local.stop()
    out.write_text(render(result))
    return result


def render(r: dict) -> str:
    s = r["spec"]
    lines = [
        "# Soak: honest rounds of real node processes (issue #19)",
        "",
        "`python -m bench.soak` (not in CI, not in `make bench`). One anvil "
        f"(block time {r['block_time']} s), three `trainchain verifier run` processes and one `trainchain trainer "
        "run` (training ahead), each its own data dir, key and store; the report is read from the chain and "
        "from every node's sqlite.",
        "",
        f"- Result: **{'PASS' if r['ok'] else 'FAIL'}** — {r['rounds_finalized']} rounds finalized of "
        f"{r['rounds_wanted']} wanted; outcomes {r['outcomes']}; PenaltyApplied events **{r['penalties']}**, "
        f"Slashed events **{r['slashes']}**",
        f"- Spec: {s['name']}, GPT {s['n_layer']} layer d={s['n_embd']}, dropout {s['dropout']}, engine "
        f"{s['engine']}; {s['steps_per_round']} steps a round in segments of {s['segment_steps']}, "
        f"{s['samples']} samples (+ the last), committee {s['committee']}",
        f"- Wall time: {r['wall_s'] / 60:.1f} min for the rounds ({r['wall_s'] / max(1, r['rounds_finalized']):.1f} s "
        f"a round) + {r['setup_s']:.0f} s set-up",
        f"- Code: commit {r['commit']}",
        f"- Machine: {r['machine']} (shared with the other engineers' builds and tests while it ran)",
        "",
        "| node | role | penalties | stake change (wei) | verdicts | mean round (s) | duties (duty:outcome count) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, n in r["nodes"].items():
        duties = ", ".join(f"{k} {v}" for k, v in n["duties"].items())
        mean = f"{n['mean_round_s']:.1f}" if n["mean_round_s"] is not None else "-"
        verdicts = ", ".join(f"{k} {v}" for k, v in n["verdicts"].items()) or "-"
        lines.append(f"| {name} | {n['role']} | {n['penalties']} | {n['stake_delta_wei']} | {verdicts} | {mean} | "
                     f"{duties} |")
    if r["penalty_events"]:
        lines += ["", "Penalties:", ""] + [f"- {p}" for p in r["penalty_events"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--block-time", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds for the rounds")
    ap.add_argument("--root", type=Path, default=None, help="work dir (default: a new temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "soak.md")
    args = ap.parse_args(argv)
    import tempfile

    root = args.root or Path(tempfile.mkdtemp(prefix="trainchain-soak-"))
    print(f"soak: {args.rounds} rounds in {root} -> {args.out}", flush=True)
    result = run(args.rounds, root, args.block_time, args.timeout, args.out)
    print(render(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
