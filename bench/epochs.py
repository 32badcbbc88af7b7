"""Throughput of verified DiLoCo epochs (issue #14): `python -m bench.epochs` -> bench/epochs.md + bench/epochs.json.

Not in `python -m bench`'s default list (minutes per run on a 2-core machine; BENCH_EPOCHS_MERGE=1 keeps
bench/epochs.json's runs of other (N, H) and adds this run's). For every H in BENCH_EPOCHS_HS
(default "512,2048"; BENCH_EPOCHS_H, one value, still works) and N in BENCH_EPOCHS_NS (default "1,2") trainers:
a LocalNet (anvil, 1 s blocks) with N trainer processes and three verifier processes runs BENCH_EPOCHS
(default 3) epochs of an epoch task of the demo model, H steps per slot. Measured from the chain and the
nodes' databases:

- steady-state throughput (what matters for capacity): trainers *train ahead* (whitepaper §3.6) — a trainer
  trains its slot of epoch e+1 while e is still verified and aggregated, and commits it when e+1 opens — so an
  epoch's latency overlaps the next epoch's training. It starts once it knows every committed slot's final
  state: at its own commit when it is alone in e, else when the co-trainers hand theirs over (the final handoff,
  node/roles/handoff.py: from their commits on; BENCH_EPOCHS_HANDOFF=0 turns it off, "1,0" runs both) or at their ends reveals
  (each trainer's NodeDB keeps the block: `ahead_started`). The network's pace is the **period** between
  consecutive epoch closes: period_e = time(EpochClosed e) - time(EpochClosed e-1) for e >= 1 (block
  timestamps), and the steady overhead is period_e / the slowest slot's pure training of e - 1 (the trainer's
  `train` stage: H steps + boundary states, measured under the run's own load);
- verified training steps per second: Σ_e |A_e|·H over the whole run (the first epoch's opening block to the
  last epoch's closing block, its first training not hidden) and over the steady periods, each against the
  pure-training steps per second of one trainer (H / its mean slot training): the ratio is N with no overhead;
- per-epoch latency (not throughput): the epoch's opening block to its closing block against its slowest
  slot's training, split into blocks (claim, training, the slots' v1 rounds, the aggregation) — with training
  ahead an epoch's slot may have been trained before the epoch opened, so this is mostly protocol;
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
# seconds from a run's start after which it stops waiting and reports the epochs that closed (a run on a lent machine
# must end inside its lease: one cut off by a timeout reports nothing); unset: wait for all EPOCHS
DEADLINE = float(os.environ["BENCH_EPOCHS_DEADLINE"]) if os.environ.get("BENCH_EPOCHS_DEADLINE") else None
HS = [int(h) for h in os.environ.get("BENCH_EPOCHS_HS", os.environ.get("BENCH_EPOCHS_H", "512,2048")).split(",")]
# verifier processes per run: a number, or "n" for max(3, N) (a network with more slots has more verifiers: with 3,
# every verifier sits on every slot's committee and replays all N slots one after another)
VERIFIERS = os.environ.get("BENCH_EPOCHS_VERIFIERS", "3")
# "native": the task pins this machine's own CPU runtime (torch version, ISA) instead of the demo preset's, for a
# machine with another torch (the GPU machine's image); 1 thread per process either way
RUNTIME = os.environ.get("BENCH_EPOCHS_RUNTIME", "preset")
OUT_DIR = Path(os.environ.get("BENCH_EPOCHS_DIR", BENCH_DIR))  # where epochs.json / epochs.md go
# "0": the trainers run --no-final-handoff (a co-trainer's final state only from its ends reveal, as before the
# handoff); "1,0": both, one after the other for every N > 1 (what the handoff, node/roles/handoff.py, saves in
# the same conditions)
HANDOFFS = [v.strip() != "0" for v in os.environ.get("BENCH_EPOCHS_HANDOFF", "1").split(",")]
STAKE = 10 * 10**18
BLOCK_TIME = 1.0


def n_verifiers(n: int) -> int:
    return max(3, n) if VERIFIERS == "n" else int(VERIFIERS)


_NATIVE: dict = {}


def native_runtime() -> dict:
    """This machine's CPU runtime as a spec pins it (1 thread), read in a child process: the bench's own process
    must not load torch before its pin."""
    import subprocess

    if not _NATIVE:
        code = "import json; from node.engine.runtime import describe_runtime; print(json.dumps(describe_runtime('cpu')))"
        env = {**os.environ, "MKL_CBWR": os.environ.get("MKL_CBWR", "AVX2")}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                             cwd=BENCH_DIR.parent).stdout
        _NATIVE.update(json.loads(out.strip().splitlines()[-1]), threads=1)
    return dict(_NATIVE)


def bench_spec(n: int, h: int):
    from node.engine import TaskSpec

    spec = TaskSpec.preset("demo")
    if RUNTIME == "native":
        spec = spec.with_(runtime=native_runtime())
    elif RUNTIME != "preset":
        raise SystemExit(f"BENCH_EPOCHS_RUNTIME: 'preset' or 'native', not {RUNTIME!r}")
    # the train window grows with H (~40 steps/s on this machine, shared): the commit deadline never binds
    return spec.with_(
        steps_per_round=h,
        epochs={"slots": n, "outer_lr": 0.7, "outer_momentum": 0.9, "claim_window": 20,
                "train_window": min(1000, max(240, h // 10 + 120))})


def probe_h(target_s: float, steps: int = 64) -> int:
    """The H (a multiple of the segment length) whose slot trains in about `target_s` seconds on this machine: one
    trainer's demo-model steps timed in this process (pinned like a node: 1 thread). For a run on a machine of
    unknown speed (the GPU machine's CPUs), sized to fit its lease."""
    from node.engine import apply_runtime_pin

    spec = bench_spec(1, 256)  # any H: only the step is timed
    apply_runtime_pin(spec)
    import time as _time

    from node.engine.dataset import Dataset, demo_corpus_paths
    from node.engine.genesis import compute_genesis_state
    from node.engine.step import Trainer

    ds = Dataset(b"\n".join(p.read_bytes() for p in demo_corpus_paths(limit_bytes=1_000_000)))
    trainer = Trainer(spec, compute_genesis_state(spec))
    batches = [ds.batch_for(spec, g) for g in range(steps + 4)]
    for b in batches[:4]:
        trainer.step(b)  # warm-up
    t = _time.perf_counter()
    for b in batches[4:]:
        trainer.step(b)
    step_s = (_time.perf_counter() - t) / steps
    seg = spec.segment_steps
    return max(seg * 8, round(target_s / step_s / seg) * seg)  # >= 5 segments: the task preflight


# ------------------------------------------------------------ the computation (pure: tests/bench/test_epochs.py)
def steady_state(closed_ts: dict[int, float], slowest: dict[int, float], accepted: dict[int, int], h: int) -> dict:
    """The steady state of a run from its epochs' close times (block timestamps), each epoch's slowest slot's
    pure training (s) and its number of accepted slots: one period per epoch e >= 1 whose predecessor closed,
    period_e = closed_ts[e] - closed_ts[e-1], overhead_e = period_e / slowest[e] - 1; over all periods the
    overhead Σ period / Σ slowest - 1 and the verified steps per second Σ |A_e|·h / Σ period."""
    periods = []
    for e in sorted(closed_ts):
        if e - 1 not in closed_ts:
            continue
        period, train = closed_ts[e] - closed_ts[e - 1], slowest.get(e) or 0.0
        periods.append({"epoch": e, "period_s": period, "slowest_train_s": round(train, 2),
                        "overhead": round(period / train - 1, 3) if train else None})
    total = sum(p["period_s"] for p in periods)
    train = sum(p["slowest_train_s"] for p in periods if p["overhead"] is not None)
    steps = sum(accepted.get(p["epoch"], 0) for p in periods) * h
    return {"periods": periods, "period_s": round(total / len(periods), 2) if periods else None,
            "slowest_train_s": round(train / len(periods), 2) if periods else None,
            "overhead": round(total / train - 1, 3) if periods and train and all(p["overhead"] is not None for p in periods)
            else None,
            "steps": steps, "steps_per_s": round(steps / total, 2) if total else None}


# (event, keyed by): a slot's v1 round (TrainingRounds; SlotCommitted/SlotFinalized from Epochs) and an epoch's
# aggregation (Epochs), in protocol order; each phase's block is its last such event
ROUND_PHASES = [("SlotCommitted", "round"), ("RoundSealed", "round"), ("StartsRevealed", "round"),
                ("VerdictCommitted", "round"), ("FinalCommitted", "round"), ("EndsRevealed", "round"),
                ("VerdictRevealed", "round"), ("SlotFinalized", "round")]
AGGREGATION_PHASES = [("AggregationOpened", "epoch"), ("AggregateCommitted", "epoch"), ("AggregatePosted", "epoch"),
                      ("AggregateRevealed", "epoch")]


def round_phases(phase_at: dict, slots: list[int]) -> dict | None:
    """The blocks of the epoch's slowest slot round (the last finalized), phase by phase from its commit:
    {"RoundSealed": blocks since the commit, ...} (each phase's last event, cumulative)."""
    done = [s for s in slots if ("SlotFinalized", s) in phase_at and ("SlotCommitted", s) in phase_at]
    if not done:
        return None
    slot = max(done, key=lambda s: phase_at[("SlotFinalized", s)])
    start = phase_at[("SlotCommitted", slot)]
    return {name: phase_at[(name, slot)] - start for name, _ in ROUND_PHASES[1:] if (name, slot) in phase_at}


def aggregation_phases(phase_at: dict, task_id: int, epoch: int, final: int | None, close_block: int) -> dict | None:
    """The aggregation's blocks from the last slot finalized, phase by phase (cumulative), to the close."""
    if final is None:
        return None
    out = {name: phase_at[(name, (task_id, epoch))] - final for name, _ in AGGREGATION_PHASES
           if (name, (task_id, epoch)) in phase_at}
    return {**out, "EpochClosed": close_block - final}


def pure_steps_per_s(train_s: list[float], h: int) -> float | None:
    """One trainer's pure-training rate: h steps per its mean slot training."""
    return round(h * len(train_s) / sum(train_s), 2) if train_s and sum(train_s) else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


# ------------------------------------------------------------ one run
def run_n(n: int, h: int, root: Path, handoff: bool = True) -> dict:
    import psutil

    from node.engine import build_dataset, demo_corpus_paths
    from node.localnet import LocalNet, wait_until
    from node.roles.db import NodeDB

    t0, v = time.time(), n_verifiers(n)
    net = LocalNet(root, block_time=BLOCK_TIME, n_accounts=max(10, 1 + n + v))
    try:
        net.start()
        trainers = [net.add_staked_node(f"trainer{i}", 1 + i, "trainer", STAKE) for i in range(n)]
        verifiers = [net.add_staked_node(f"verifier{i}", 1 + n + i, "verifier", STAKE) for i in range(v)]
        spec = bench_spec(n, h).with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(), net.store())})
        task_id = net.create_task(spec, 5 * 10**18)["task_id"]
        vprocs = [net.spawn_verifier(v) for v in verifiers]
        tprocs = [net.spawn_trainer(t, task_id, EPOCHS, *([] if handoff else ["--no-final-handoff"])) for t in trainers]
        cpu = {p.pid: 0.0 for p in vprocs}

        def sample_cpu():
            for p in vprocs:
                try:
                    t = psutil.Process(p.pid).cpu_times()
                    cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass

        chain = net.client()
        seen: set[int] = set()

        def poll():  # the verifiers' CPU; each epoch's close on stderr (how far a run got, should it be cut off)
            sample_cpu()
            for ev in chain.events("EpochClosed", task_id=task_id):
                if ev["args"]["epoch"] not in seen:
                    seen.add(ev["args"]["epoch"])
                    print(f"[bench.epochs N = {n}, H = {h}, {time.time() - t0:.0f} s] epoch {ev['args']['epoch']} closed, "
                          f"block {ev['blockNumber']}", file=sys.stderr, flush=True)

        def finished() -> bool:
            return all(p.poll() is not None for p in tprocs) or (DEADLINE is not None and time.time() - t0 > DEADLINE)

        wait_until(finished, 600 * EPOCHS * max(1, h // 512), interval=1.0,
                   what=f"{EPOCHS} epochs of {n} slot(s), H = {h}", on_poll=poll)
        for name in [t.name for t in trainers]:
            if net.procs[name].returncode not in (0, None):  # None: still training when the deadline came
                raise RuntimeError(f"{name} exited {net.procs[name].returncode}:\n{net.log_tail(name)}")
        ts = lambda b: chain.w3.eth.get_block(b)["timestamp"]  # noqa: E731
        opened = {e["args"]["epoch"]: e["blockNumber"] for e in chain.events("EpochOpened", task_id=task_id)}
        closed = {e["args"]["epoch"]: e for e in chain.events("EpochClosed", task_id=task_id)}
        n_epochs = next(e for e in range(EPOCHS + 1) if e not in closed)  # the epochs that closed, 0 .. n_epochs - 1
        if not n_epochs:
            raise RuntimeError(f"N = {n}, H = {h}: no epoch closed before the deadline ({DEADLINE} s)")
        train_s, ahead = {}, {}  # slot id -> the trainer's pure training seconds; -> whether it was trained ahead
        ahead_from: dict[int, int] = {}  # epoch e -> the block the last of its trainers started training e+1 ahead
        for t in trainers:
            with NodeDB(t.datadir / "trainer.sqlite") as db:
                for row in db.timings("trainer"):
                    if row["stage"] == "train":
                        train_s[row["round_id"]] = row["seconds"]
                    elif row["stage"] == "aggregate_ahead":
                        ahead[row["round_id"]] = True
                for e in range(n_epochs):
                    block = (db.get_json(f"slot:{task_id}:{e}") or {}).get("ahead_started")
                    if isinstance(block, int) and not isinstance(block, bool):
                        ahead_from[e] = max(ahead_from.get(e, 0), block)
        last = {}  # (event, epoch) -> the block of the epoch's last such event: where an epoch's blocks go
        for name in ("SlotCommitted", "SlotFinalized"):
            for ev in chain.events(name, task_id=task_id):
                key = (name, ev["args"]["epoch"])
                last[key] = max(last.get(key, 0), ev["blockNumber"])
        ends = {ev["args"]["round_id"]: ev["blockNumber"] for ev in chain.events("EndsRevealed")}
        # the last block of each phase of each slot's v1 round and of each epoch's aggregation: where the blocks go
        phase_at: dict[tuple[str, int], int] = {}
        for name, key in ROUND_PHASES + AGGREGATION_PHASES:
            for ev in chain.events(name):
                k = (name, ev["args"].get("round_id", ev["args"].get("slot_id")) if key == "round"
                     else (ev["args"].get("task_id"), ev["args"].get("epoch")))
                phase_at[k] = max(phase_at.get(k, 0), ev["blockNumber"])
        epochs, slowest, closed_ts, commit_ts, n_accepted = [], {}, {}, {}, {}
        for e in range(n_epochs):
            ep = chain.get_epoch(task_id, e)
            close_block = closed[e]["blockNumber"]
            wall = ts(close_block) - ts(opened[e])
            slots = [chain.slot_id(task_id, e, i) for i in ep.claimed_slots]
            slowest[e] = max((train_s.get(s, 0.0) for s in slots), default=0.0)
            closed_ts[e], n_accepted[e] = ts(close_block), len(ep.accepted_slots)
            committed, final = last.get(("SlotCommitted", e)), last.get(("SlotFinalized", e))
            if committed:
                commit_ts[e] = ts(committed)
            revealed = max((ends[s] for s in slots if s in ends), default=None)
            ahead_start = ahead_from.get(e)  # none in the last epoch (no next slot asked for)
            epochs.append({"epoch": e, "accepted": ep.accepted_slots, "latency_s": wall, "slowest_train_s": round(slowest[e], 2),
                           "latency_overhead": round(wall / slowest[e] - 1, 3) if slowest[e] else None,
                           "trained_ahead": sum(1 for s in slots if ahead.get(s)),
                           "blocks": close_block - opened[e],
                           # previous close -> opening (the first claim), opening -> last commit (training),
                           # -> last final checkpoint revealed (training ahead of e+1 may start), -> last slot
                           # finalized (the slots' rounds), -> closed (the aggregation: seed delay, open, commit,
                           # post, reveal, finalize)
                           "from_prev_close": opened[e] - closed[e - 1]["blockNumber"] if e else None,
                           "to_last_commit": committed - opened[e] if committed else None,
                           "to_ends_revealed": revealed - committed if committed and revealed else None,
                           "slot_rounds": final - committed if committed and final else None,
                           "aggregation": close_block - final if final else None,
                           # -> the last trainer's start of training e+1 ahead (its commit when alone in e, else the
                           # co-trainers' ends reveals)
                           "to_ahead_start": ahead_start - committed if committed and ahead_start else None,
                           # the time e+1's slots train hidden before e+1 may open: that start -> close of e
                           "ahead_window_s": ts(close_block) - ts(ahead_start) if ahead_start else None,
                           "round_phases": round_phases(phase_at, slots),
                           "aggregation_phases": aggregation_phases(phase_at, task_id, e, final, close_block)})
        span = ts(closed[n_epochs - 1]["blockNumber"]) - ts(opened[0])
        steps = sum(len(e["accepted"]) for e in epochs) * h
        pure = pure_steps_per_s(list(train_s.values()), h)
        steady = steady_state(closed_ts, slowest, n_accepted, h)
        # the same pace between consecutive epochs' last commits: a slot trained ahead from the commit before may
        # train through the whole previous epoch's protocol, so over a short run the close-to-close periods borrow
        # from the first epoch's (cold) latency; commit to commit counts each slot's training once:
        # max(its training, the previous epoch's commit -> close) + the claim and the commit
        by_commits = steady_state(commit_ts, slowest, n_accepted, h)
        return {"n": n, "H": h, "epochs": epochs, "span_s": span, "verified_steps": steps,
                "steps_per_s": round(steps / span, 2), "pure_steps_per_s": pure, "ratio": ratio(steps / span, pure),
                "steady": {**steady, "ratio": ratio(steady["steps_per_s"], pure)},
                "steady_commits": {**by_commits, "ratio": ratio(by_commits["steps_per_s"], pure)},
                "epochs_asked": EPOCHS, "verifiers": v, "verifier_cpu_s": round(sum(cpu.values()), 1),
                "handoff": handoff}
    finally:
        net.stop()


def pct(x: float | None) -> str:
    return f"{x * 100:.0f} %" if x is not None else "n/a"


def write_md(results: list[dict]) -> str:
    """bench/epochs.md; each result's `bench`: when its run started, how long it took, the 1-minute load average
    (/proc/loadavg) before and after it."""
    hs = ", ".join(str(h) for h in sorted({r["H"] for r in results}))
    epochs = max(len(r["epochs"]) for r in results)
    cores = " or ".join(str(c) for c in sorted({(r.get("bench") or {}).get("machine", {}).get("cpus") or os.cpu_count()
                                                 for r in results}))
    vs = " or ".join(sorted({"max(3, N)" if r.get("verifiers", 3) == max(3, r["n"]) and r["n"] > 3 else
                             str(r.get("verifiers", 3)) for r in results}))
    lines = ["# Verified DiLoCo epochs: throughput (`python -m bench.epochs`)", "",
             f"Demo model, H = {hs} steps per slot, {epochs} epochs per run; LocalNet (anvil, 1 s blocks, "
             f"{cores} cores shared by the N trainer processes (1 thread each), {vs} verifier processes and anvil); DiLoCo's outer "
             "step (lr 0.7, Nesterov 0.9); trainers train ahead (§3.6): since 232ac36 a trainer alone in its epoch "
             "starts at its own commit, else (and in runs whose line names no commit) at the last ends reveal, or, "
             "with the final handoff (the column 'co-trainers' final states from'), at the last commit. "
             + runs_line(results), "",
             "## Steady state (throughput)", "",
             "Period = the time between consecutive EpochClosed events (block timestamps), the network's pace with "
             "training ahead; overhead = Σ period / Σ the slowest slot's pure training of the same epochs - 1. "
             "Verified steps / s: the accepted slots' steps over the periods (steady) and over the whole run (from "
             "the first opening block: its first training is not hidden); ratio: against one trainer's pure-training "
             "steps / s (H / its mean slot training, under the run's load), N with no overhead. By commits: the same "
             "periods and overhead between consecutive epochs' last slot commits (a slot trained ahead from the commit "
             "before trains through the previous epoch's protocol, so over 3 epochs the close-to-close periods borrow "
             "from the first epoch's cold latency; commit to commit counts each slot's training once; runs before "
             "b76505e did not record it).", "",
             "| N | H | cores | verifiers | periods (s) | mean period (s) | slowest slot's training (s) | steady overhead | steady verified steps / s "
             "| ratio | whole run: steps / span (s) | verified steps / s | ratio | one trainer's pure steps / s | verifier CPU (s) "
             "| by commits: periods (s) | by commits: overhead | co-trainers' final states from |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["steady"]
        cores = ((r.get("bench") or {}).get("machine") or {}).get("cpus") or "2"  # runs before 6844389: this 2-core box
        per = ", ".join(f"{p['period_s']}" for p in s["periods"])
        c = r.get("steady_commits")
        by_commits = (f"{', '.join(str(p['period_s']) for p in c['periods'])} | {pct(c['overhead'])}" if c else "n/a | n/a")
        lines.append(f"| {r['n']} | {r['H']} | {cores} | {r.get('verifiers', 3)} | {per} | {s['period_s']} | {s['slowest_train_s']} | **{pct(s['overhead'])}** | "
                     f"{s['steps_per_s']} | {s['ratio']} | {r['verified_steps']} / {r['span_s']} | {r['steps_per_s']} | "
                     f"{r['ratio']} | {r['pure_steps_per_s']} | {r['verifier_cpu_s']} | {by_commits} | {finals_from(r)} |")
    lines += ["", "Co-trainers' final states from: where a trainer of N > 1 learned the others' final states to train "
              "the next epoch ahead — the final handoff (node/roles/handoff.py: at their commits, verified against their "
              "trace roots) or the ends reveals (`BENCH_EPOCHS_HANDOFF=0` or `1,0`, the trainers' `--no-final-handoff`, and "
              "every run before the handoff).", "",
              "## Per epoch (latency, not throughput)", "",
              "Latency = the epoch's opening block to its closing block; latency overhead = latency / the slowest "
              "slot's pure training - 1 (with training ahead the epoch's slots were mostly trained before it opened, "
              "so this is mostly protocol). Blocks: previous close -> opening (the first claim), -> last slot commit, "
              "-> last final checkpoint revealed (a co-trainer's training ahead waits for it), and from the last commit "
              "-> last slot finalized (the slots' v1 rounds), -> epoch closed (the aggregation). Ahead window = the "
              "last trainer's start of training the next epoch ahead (its NodeDB's `ahead_started` block: the slot's "
              "commit when it is alone in the epoch, since 232ac36; before, and for N > 1, the last final checkpoint "
              "revealed) -> epoch closed, the time the next epoch's slots train hidden; n/a in a run's last epoch.", "",
              "| N | H | finals from | epoch | A | trained ahead | latency (s) | blocks | prev close -> open | to last commit "
              "| commit -> ends revealed | slot rounds | aggregation | ahead window (s) | slowest slot's training (s) "
              "| latency overhead | commit -> ahead start |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for e in r["epochs"]:
            parts = " | ".join(str(e.get(k)) if e.get(k) is not None else "n/a"
                               for k in ("from_prev_close", "to_last_commit", "to_ends_revealed", "slot_rounds",
                                         "aggregation", "ahead_window_s"))
            lines.append(f"| {r['n']} | {r['H']} | {finals_from(r)} | {e['epoch']} | {e['accepted']} | "
                         f"{e.get('trained_ahead', 'n/a')} | {e['latency_s']} | {e['blocks']} | {parts} | "
                         f"{e['slowest_train_s']} | {pct(e['latency_overhead'])} | "
                         f"{e['to_ahead_start'] if e.get('to_ahead_start') is not None else 'n/a'} |")
    phased = [r for r in results if any(e.get("round_phases") for e in r["epochs"])]
    if phased:
        rp, ap = [n for n, _ in ROUND_PHASES[1:]], [n for n, _ in AGGREGATION_PHASES] + ["EpochClosed"]
        lines += ["", "Where the blocks go (epochs >= 1, means, cumulative blocks): the slowest slot's v1 round from its "
                  "commit (the last event of each phase: sealed, starts revealed, verdicts committed, final flags "
                  "committed, ends revealed — the final checkpoint, which a co-trainer's training ahead waits for —, "
                  "verdicts revealed, finalized), then the aggregation from the last slot finalized:", "",
                  "| N | H | finals from | " + " | ".join(rp) + " | " + " | ".join(ap) + " |",
                  "|---|---|---|" + "---|" * (len(rp) + len(ap))]
        for r in phased:
            later = [e for e in r["epochs"] if e["epoch"] >= 1 and e.get("round_phases")] or \
                [e for e in r["epochs"] if e.get("round_phases")]

            def mean(group, name):
                xs = [e[group][name] for e in later if e.get(group) and name in e[group]]
                return f"{sum(xs) / len(xs):.1f}" if xs else "n/a"
            lines.append(f"| {r['n']} | {r['H']} | {finals_from(r)} | " + " | ".join(mean("round_phases", n) for n in rp) + " | "
                         + " | ".join(mean("aggregation_phases", n) for n in ap) + " |")
    return "\n".join(lines) + "\n"


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """BENCH_EPOCHS_MERGE=1: the new runs replace the old ones of the same (N, H), the others are kept (each run
    keeps its own `bench` line: when it ran, how long, the load around it); sorted by H, then N."""
    keys = {run_key(r) for r in new}
    return sorted([r for r in old if run_key(r) not in keys] + new, key=lambda r: (r["H"], r["n"], finals_from(r)))


def run_key(r: dict) -> tuple:
    """What a run measured: (N, H, where co-trainers' final states came from)."""
    return r["n"], r["H"], finals_from(r)


def finals_from(r: dict) -> str:
    """Where a run's trainers learned their co-trainers' final states: "handoff" (node/roles/handoff.py, at the
    commit), "ends reveal" (runs with --no-final-handoff, and every run before the handoff), "alone" (N = 1)."""
    return "alone" if r["n"] == 1 else ("handoff" if r.get("handoff") else "ends reveal")


def runs_line(results: list[dict]) -> str:
    """The load each group of runs saw: one entry per distinct `bench` record."""
    seen, parts = [], []
    for r in results:
        b = r.get("bench")
        if not b or b in seen:
            continue
        seen.append(b)
        hs = sorted({x["H"] for x in results if x.get("bench") == b})
        ns = sorted({x["n"] for x in results if x.get("bench") == b})
        at = f" at {b['commit']}" if b.get("commit") else ""
        m = b.get("machine")
        on = f" on {m['cpus']} cores ({m['cpu']}, runtime {m['runtime']})" if m else ""
        cut = [f"N = {x['n']}: {len(x['epochs'])} of {x['epochs_asked']} epochs closed before its deadline"
               for x in results if x.get("bench") == b and len(x["epochs"]) < x.get("epochs_asked", 0)]
        on += "".join(f" ({c})" for c in cut) + (f" ({b['note']})" if b.get("note") else "")
        parts.append(f"H = {', '.join(map(str, hs))}, N = {', '.join(map(str, ns))}: run {b['started']}{at}{on}, {b['seconds']:.0f} s, "
                     f"load average (1 min) {b['load_before']:.2f} before, {b['load_after']:.2f} after")
    return ("Runs: " + "; ".join(parts) + ".") if parts else ""


def git_commit() -> str | None:
    """The checkout's commit (which training-ahead rule a run measured), None outside git."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> list[dict]:
    from node.engine import apply_runtime_pin

    apply_runtime_pin(bench_spec(1, HS[0]))
    out = []
    for h in HS:
        for n in NS:
            for handoff in HANDOFFS if n > 1 else HANDOFFS[:1]:  # alone in its epoch, nobody to hand anything to
                with tempfile.TemporaryDirectory(prefix=f"bench-epochs-{n}-{h}-") as tmp:
                    out.append(run_n(n, h, Path(tmp), handoff))
                    print(json.dumps(out[-1]), flush=True)
    return out


def machine() -> dict:
    """Where a run ran: its cores and CPU model (a run on the GPU machine is not a run on the 2-core CI box)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None) if Path("/proc/cpuinfo").exists() else None
    return {"cpus": os.cpu_count(), "cpu": model, "runtime": RUNTIME}


def write(res: list[dict], out_dir: Path) -> str:
    md = write_md(res)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "epochs.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "epochs.md").write_text(md)
    return md


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:  # python -m bench.epochs probe SECONDS: the H of a slot trained in ~SECONDS here
        print(probe_h(float(sys.argv[2])))
        sys.exit(0)
    if sys.argv[1:2] == ["md"]:  # python -m bench.epochs md OUT_DIR RUNS.json...: one report of runs made elsewhere
        runs = [r for f in sys.argv[3:] for r in json.loads(Path(f).read_text())]
        print(write(sorted(runs, key=lambda r: (r["H"], r["n"])), Path(sys.argv[2])))
        sys.exit(0)
    started, load0 = time.time(), os.getloadavg()[0]
    commit = os.environ.get("BENCH_COMMIT") or git_commit()  # the code the run starts with (a copy has no .git)
    res = main()
    run = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "seconds": round(time.time() - started),
           "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2), "commit": commit,
           "machine": machine()}
    res = [{**r, "bench": run} for r in res]
    path = OUT_DIR / "epochs.json"
    if os.environ.get("BENCH_EPOCHS_MERGE") == "1" and path.exists():
        res = merge(json.loads(path.read_text()), res)
    print(write(res, OUT_DIR))
    sys.exit(0)
