"""Model quality of verified DiLoCo epochs (issue #14): `python -m bench.diloco` -> bench/diloco.md.

Not in `python -m bench`'s default list (it trains ~15 runs; minutes on a shared 2-core box).
Everything trains with the engine's real code: the DiLoCo runs are train-local's epochs
(node/engine/outer.train_epochs: every slot a real trace, then the outer step), the one-trainer
baseline is the same with N = 1 and the identity outer step (= a v1 run), and the synchronous
data-parallel baseline is the engine's Trainer.step on the concatenation of the N slots' batches
of inner step t (the very tokens the N slots see; one sequential step per t, N× batch).

Held-out split: dataset.py has none, so the bench builds the demo corpus stream itself and holds
out its last EVAL_FRACTION of bytes; training batches are drawn from the first part only, eval
batches (fixed, seed EVAL_SEED) from the held-out part. Eval loss: mean cross-entropy over
EVAL_BATCHES x EVAL_ROWS rows, dropout off.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

BENCH_DIR = Path(__file__).resolve().parent
# the knobs of the committed full run (bench/diloco.md/.json) are the ones the quality work kept: H = 4 (128 outer
# steps in the 512 sequential steps), outer lr 0.4, Nesterov momentum 0.5, the corrected inner second moment (the
# spec's default rule). The sweep (moments averaged) chose H and the momentum; bench/diloco_moments.md chose the rule
# and lr 0.4 over 5 seeds (+0.1 % mean, +1.7 % worst vs dp-4). The older run with the sweep's first pick (H = 16,
# 32 outer steps, lr 0.7, averaged) is kept as bench/diloco-H16-m05.md.
H = int(os.environ.get("DILOCO_H", "4"))  # inner steps per slot
EPOCHS = int(os.environ.get("DILOCO_EPOCHS", "128"))
NS = [int(n) for n in os.environ.get("DILOCO_NS", "1,2,4,8").split(",")]
OUTER_LR = float(os.environ.get("DILOCO_OUTER_LR", "0.4"))
OUTER_MOMENTUM = float(os.environ.get("DILOCO_OUTER_MOMENTUM", "0.5"))
SEED = os.environ.get("DILOCO_SEED")  # the spec's seed (genesis, batches, dropout); unset = the demo preset's
# the inner-moment rule of every diloco-N run; at the largest N the other rules of DILOCO_OTHER_RULES run too
# (issue #14: measure them, keep one): diloco-N-average, diloco-N-reset
MOMENTS = os.environ.get("DILOCO_MOMENTS", "corrected")
OTHER_RULES = [r for r in os.environ.get("DILOCO_OTHER_RULES", "corrected,average,reset").split(",") if r]
# DILOCO_DP=0: no data-parallel runs (a variant whose baseline another run at the same H and steps already has)
DATA_PARALLEL = os.environ.get("DILOCO_DP", "1") != "0"
TAG = os.environ.get("DILOCO_TAG", "")  # results go to bench/diloco<TAG>.md/.json (variants side by side)
CORPUS_BYTES = 2_000_000
SWEEP_STEPS = 512  # sequential steps of every row of bench/diloco-sweep.json (H x epochs)
EVAL_FRACTION = 0.1
EVAL_SEED, EVAL_BATCHES, EVAL_ROWS = 999, 8, 16


def _spec():
    from node.engine.spec import TaskSpec

    # the demo model (2 layers, d 64, ctx 64, batch 8, dropout 0.1) with slots of H steps in 2 segments
    spec = TaskSpec.preset("demo").with_(steps_per_round=H, segment_steps=H // 2, protocol={"samples": 2})
    return spec if SEED is None else spec.with_(seed=int(SEED))


def _data():
    from node.engine.dataset import DOC_SEPARATOR, Dataset, demo_corpus_paths

    stream = DOC_SEPARATOR.join(p.read_bytes() for p in demo_corpus_paths(limit_bytes=CORPUS_BYTES))
    cut = int(len(stream) * (1 - EVAL_FRACTION))
    return Dataset(stream[:cut]), Dataset(stream[cut:]), len(stream), cut


def _eval_loss(spec, state, eval_ds) -> float:
    import torch

    from node.engine.model import build_model

    model = build_model(spec.model, torch.device("cpu"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(state.params[n])
        model.eval()
        total = 0.0
        for j in range(EVAL_BATCHES):
            tokens = eval_ds.batch(EVAL_SEED, j, EVAL_ROWS, spec.model.block_size)
            _, loss = model(tokens[:, :-1], tokens[:, 1:])
            total += float(loss)
    return total / EVAL_BATCHES


def run_diloco(spec, train_ds, eval_ds, genesis, n, config, work) -> dict:
    """train-local's epochs, one at a time (eval between epochs, outside the timed part). Each epoch records its
    training seconds (the slots one after another here) and its parallel seconds: the slowest slot plus the outer
    step, the epoch's wall time when every trainer has its own machine (chain time left out: bench.epochs)."""
    from node.engine.outer import train_epochs
    from node.engine.state import load_state

    curve, base, t0 = [], genesis, time.perf_counter()
    for e in range(EPOCHS):
        marks = [time.perf_counter()]  # after each slot (train_epochs' progress callback)
        rec = train_epochs(spec, train_ds, base, work / f"n{n}-{config.inner_moments}", 1, config, first_epoch=e,
                           progress=lambda *_: marks.append(time.perf_counter()))[0]
        ended = time.perf_counter()
        slots = [b - a for a, b in zip(marks, marks[1:])]
        prune_epoch(rec.checkpoint, base)
        base = rec.checkpoint
        curve.append({"epoch": e + 1, "tokens": (e + 1) * n * H * spec.batch_size * spec.model.block_size,
                      "train_s": round(ended - marks[0], 3),
                      "parallel_s": round(compute_parallel_seconds(slots, ended - marks[-1]), 3),
                      "eval_loss": _eval_loss(spec, load_state(base), eval_ds)})
    return {"curve": curve, "eval_loss": curve[-1]["eval_loss"], "wall_s": round(time.perf_counter() - t0, 1),
            "final_hash": "0x" + rec.state_hash.hex()}


def prune_epoch(state: Path, previous: Path) -> None:
    """Keep only what the next epoch starts from: this epoch's slot traces (a checkpoint per segment end, per slot)
    and the previous epoch's folder go. A kept trace costs ~1 MB a segment: 128 epochs of 8 slots filled gigabytes of
    a shared disk (a 2,048-step run failed on it)."""
    import shutil

    for slot in Path(state).parent.glob("slot-*"):
        shutil.rmtree(slot)
    if Path(previous).name == "state.safetensors":  # not the genesis
        shutil.rmtree(Path(previous).parent)


def compute_parallel_seconds(slot_seconds: list[float], outer_seconds: float) -> float:
    """An epoch's training wall time with one machine per slot: the slots train side by side, the outer step waits
    for the slowest of them."""
    return max(slot_seconds, default=0.0) + outer_seconds


def compute_dp_parallel_seconds(train_seconds: float, n: int) -> float:
    """Data-parallel N× batch with one machine per share, at its ideal: each step's compute split N ways and the
    per-step gradient all-reduce free (it is not: DiLoCo exists to avoid it). A lower bound on its wall time."""
    return train_seconds / n


def run_data_parallel(spec, train_ds, eval_ds, genesis, n) -> dict:
    import torch

    from node.engine.state import load_state
    from node.protocol import compute_batch_index
    from node.engine.step import Trainer

    trainer, curve, t0 = Trainer(spec, load_state(genesis)), [], time.perf_counter()
    for e in range(EPOCHS):
        started = time.perf_counter()
        for t in range(H):
            tokens = torch.cat([train_ds.batch_for(spec, compute_batch_index(e, i, t, n, H)) for i in range(n)])
            trainer.step(tokens)  # lr and key of sequential step e·H + t, batch N·B
        train_s = time.perf_counter() - started
        curve.append({"epoch": e + 1, "tokens": (e + 1) * n * H * spec.batch_size * spec.model.block_size,
                      "train_s": round(train_s, 3), "parallel_s": round(compute_dp_parallel_seconds(train_s, n), 3),
                      "eval_loss": _eval_loss(spec, trainer.state(), eval_ds)})
    return {"curve": curve, "eval_loss": curve[-1]["eval_loss"], "wall_s": round(time.perf_counter() - t0, 1)}


class Prepared(NamedTuple):
    spec: object
    train_ds: object
    eval_ds: object
    genesis: Path
    work: Path
    total: int  # corpus bytes
    cut: int  # where the held-out split starts


@contextmanager
def prepared(prefix: str) -> Iterator[Prepared]:
    """What every quality run starts from (this module's and bench.diloco_lr's / bench.diloco_moments'): the spec
    (DILOCO_SEED) pinned in this process, the train / held-out split, and the spec's genesis in a temporary folder."""
    from node.engine.runtime import apply_runtime_pin, compute_pin_env

    spec = _spec()
    os.environ.update(compute_pin_env(spec.runtime))  # before torch loads
    apply_runtime_pin(spec)
    from node.engine.genesis import make_genesis

    train_ds, eval_ds, total, cut = _data()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        genesis = work / "genesis.safetensors"
        make_genesis(spec, genesis)
        yield Prepared(spec, train_ds, eval_ds, genesis, work, total, cut)


def run_child(module_args: list[str], env: dict | None = None) -> dict:
    """`python -m <module_args>` in a process of its own (a run pins torch's threads before torch loads), and the
    JSON it prints last; a failed child raises with its own error, not only its exit status."""
    done = subprocess.run([sys.executable, "-m", *module_args], env=env, cwd=BENCH_DIR.parent, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(module_args)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def planned_runs() -> list[tuple[str, int, str]]:
    """(key, N, rule) of every run, in the report's order: one trainer, then per N the DiLoCo run with MOMENTS, at the
    largest N also with OTHER_RULES, and data-parallel N× batch (rule "dp")."""
    runs = [("single", 1, "identity")] if 1 in NS else []
    for n in (n for n in NS if n > 1):
        runs.append((f"diloco-{n}", n, MOMENTS))
        if n == max(NS):
            runs += [(f"diloco-{n}-{r}", n, r) for r in OTHER_RULES if r != MOMENTS]
        if DATA_PARALLEL:
            runs.append((f"dp-{n}", n, "dp"))
    return runs


def run_one(key: str) -> dict:
    """One planned run, in this process (the runtime pin is set before torch loads)."""
    n, rule = {k: (n, r) for k, n, r in planned_runs()}[key]
    with prepared("bench-diloco-") as p:
        from node.engine.spec import EpochConfig

        if rule == "dp":
            return run_data_parallel(p.spec, p.train_ds, p.eval_ds, p.genesis, n)
        cfg = EpochConfig.identity() if rule == "identity" else EpochConfig(
            slots=n, outer_lr=OUTER_LR, outer_momentum=OUTER_MOMENTUM, inner_moments=rule)
        return run_diloco(p.spec, p.train_ds, p.eval_ds, p.genesis, n, cfg, p.work)


def main() -> dict:
    """Every planned run, each its own process, BENCH_JOBS at a time (default 2: the losses are deterministic, only
    the seconds depend on the sharing; each process trains on the spec's pinned threads)."""
    from concurrent.futures import ThreadPoolExecutor

    with prepared("bench-diloco-") as p:
        results = {"H": H, "epochs": EPOCHS, "spec": p.spec.name, "batch_size": p.spec.batch_size,
                   "block_size": p.spec.model.block_size, "corpus_bytes": p.total, "train_bytes": p.cut,
                   "eval_bytes": p.total - p.cut, "jobs": int(os.environ.get("BENCH_JOBS", "2")), "runs": {}}

    def one(key: str) -> dict:
        run = run_child(["bench.diloco", "one", key])
        print(f"{key}: {run['eval_loss']:.4f} ({run['wall_s']} s)", file=sys.stderr, flush=True)
        return run

    keys = [k for k, _, _ in planned_runs()]
    with ThreadPoolExecutor(results["jobs"]) as pool:
        results["runs"] = dict(zip(keys, pool.map(one, keys)))
    return results


def rule_of(key: str, results: dict) -> str:
    """The inner-moment rule of a run: diloco-N uses the run's rule, diloco-N-<rule> names its own; runs before the
    rule was recorded averaged unless marked reset."""
    if not key.startswith("diloco"):
        return ""
    parts = key.split("-")
    return parts[2] if len(parts) > 2 else results.get("inner_moments", "average")


def every_kth(curve: list[dict], columns: int = 16) -> list[dict]:
    """At most `columns` points of a curve, evenly spaced, the last one kept (a 128-epoch curve in a table)."""
    k = max(1, -(-len(curve) // columns))
    return [c for c in curve if c["epoch"] % k == 0 or c is curve[-1]]


def write_md(results: dict, seconds: float) -> str:
    runs = results["runs"]
    single = runs["single"]["eval_loss"] if "single" in runs else None  # DILOCO_NS without 1: no one-trainer run
    rule = results.get("inner_moments", "average")
    lines = [
        "# Verified DiLoCo epochs: model quality (`python -m bench.diloco`)",
        "",
        f"demo model (2 layers, d 64, ctx {results['block_size']}, batch {results['batch_size']}, dropout 0.1), "
        f"H = {results['H']} inner steps per slot, {results['epochs']} epochs; outer step: lr "
        f"{results.get('outer_lr', OUTER_LR)}, Nesterov momentum {results.get('outer_momentum', OUTER_MOMENTUM)} "
        f"(DiLoCo's: 0.7, 0.9), inner AdamW moments `{rule}` unless the run names another rule. Held-out split: the last "
        f"{results['eval_bytes']:,} of {results['corpus_bytes']:,} corpus bytes (10%); eval = mean loss over "
        f"{EVAL_BATCHES}x{EVAL_ROWS} fixed held-out rows. Whole run {seconds:.0f} s on a shared 2-core machine "
        "(other engineers running): wall times are noisy. Training s: every slot one after another on one core; "
        "parallel s: each epoch's slowest slot plus its outer step (one machine per trainer, chain time left out: "
        "bench/epochs.md measures that); for dp-N, its training s / N (one machine per batch share with a free "
        "per-step all-reduce: a lower bound). "
        "H, the outer lr and the momentum were chosen by the sweep below on this same held-out split with one seed "
        "(the preset's): these numbers are tuned on what they report; the other seeds there, and "
        "bench/diloco-moments.md (the moment rules and lr 0.4 over 5 seeds), say how far they carry.",
        "",
        "| run | moments | tokens seen | sequential steps | eval loss | vs one trainer | vs data-parallel N× batch | "
        "training s | parallel s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in runs.items():
        n = 1 if key == "single" else int(key.split("-")[1])
        dp = runs.get(f"dp-{n}")
        vs_dp = "" if not key.startswith("diloco") or dp is None else f"{(r['eval_loss'] / dp['eval_loss'] - 1) * 100:+.1f} %"
        par = f"{sum(c['parallel_s'] for c in r['curve']):.1f}" if "parallel_s" in r["curve"][0] else ""
        vs_one = f"{(r['eval_loss'] / single - 1) * 100:+.1f} %" if single else ""
        lines.append(f"| {key} | {rule_of(key, results)} | {r['curve'][-1]['tokens']:,} | "
                     f"{results['epochs'] * results['H']} | {r['eval_loss']:.4f} | {vs_one} | "
                     f"{vs_dp} | {sum(c['train_s'] for c in r['curve']):.1f} | {par} |")
    shown = every_kth(next(iter(runs.values()))["curve"])
    epochs = {c["epoch"] for c in shown}
    lines += ["", "Eval loss after epochs (against tokens: epoch x N x H x B x T):", "",
              "| run | " + " | ".join(f"e{c['epoch']}" for c in shown) + " |",
              "|---|" + "---|" * len(shown)]
    for key, r in runs.items():
        lines.append(f"| {key} | " + " | ".join(f"{c['eval_loss']:.3f}" for c in r["curve"] if c["epoch"] in epochs) + " |")
    # the sweep's rows are 512 sequential steps: only a run of that length is their baseline
    sweep = sweep_md(runs, results["H"]) if results["H"] * results["epochs"] == SWEEP_STEPS else []
    return "\n".join(lines + sweep) + "\n"


def compute_dp_at(rows: list[dict], n: int) -> dict[int, float]:
    """dp-N's eval loss at each H (rows of diloco-sweep/-checks.json; the preset's seed, re-runs left out): the
    baseline a sweep row is compared with (H decides which batches share a sequential step)."""
    return {r["H"]: r["eval_loss"] for r in rows
            if r.get("kind") == "dp" and r["n"] == n and "seed" not in r and not r.get("repeat")}


def sweep_md(runs: dict, h_main: int | None = None) -> list[str]:
    """The knobs tried (bench/diloco-sweep.json, `python -m bench.diloco sweep H:LR:MU,...,dp:H`), best first; each
    DiLoCo row is compared with this run's dp-N and, where the sweep measured one, with dp-N at the row's own H (the
    data-parallel baseline groups batch (e·N + i)·H + t into sequential step e·H + t, so its tokens per step, and
    hence its loss, move a little with H although the lr schedule and the token set do not)."""
    path, checks = BENCH_DIR / "diloco-sweep.json", BENCH_DIR / "diloco-checks.json"
    if not path.exists():
        return []
    every_row = json.loads(path.read_text()) + (json.loads(checks.read_text()) if checks.exists() else [])
    repeats = [r for r in every_row if r.get("repeat")]  # re-runs of an earlier row: reproduced, not listed twice
    every_row = [r for r in every_row if not r.get("repeat")]
    every = [r for r in every_row if "seed" not in r]  # the demo preset's seed (this run's)
    others = [r for r in every_row if "seed" in r]
    rows = sorted((r for r in every if r.get("kind", "diloco") == "diloco"), key=lambda r: r["eval_loss"])
    n = rows[0]["n"]
    dp_at = compute_dp_at(every, n)
    dp = runs.get(f"dp-{n}")
    if dp and h_main is not None:
        dp_at.setdefault(h_main, dp["eval_loss"])
    lines = ["", f"## The outer optimizer and H, N = {n} (moments averaged; 512 sequential "
             "steps for every row: H x epochs)", "",
             "Every row is `run_diloco` (train-local's epochs) on the same data and genesis, measured on the shared 2-core "
             "machine (`python -m bench.diloco sweep H:LR:MU,...,dp:H` -> bench/diloco-sweep.json; dp rows, other "
             "seeds and re-runs -> bench/diloco-checks.json)"
             + (f"; vs dp = against this run's dp-{n} ({dp['eval_loss']:.4f}, H = {h_main})" if dp else "")
             + (f"; vs dp at same H = against dp-{n} run by the sweep with the row's H ("
                + ", ".join(f"H = {h}: {v:.4f}" for h, v in sorted(dp_at.items())) + ")" if dp_at else "") + ". "
             "The knobs (this run's H and momentum included; its outer lr 0.4 came from bench/diloco-moments.md) were "
             "chosen by this sweep, on the same held-out split the table reports, with one seed (the demo preset's): "
             "the best row is an optimistic estimate."
             + (f" dp-{n} alone moves {(max(dp_at.values()) / min(dp_at.values()) - 1) * 100:.1f} % across H (same "
                "tokens, same lr schedule; only which batches share a step differs), so gaps that differ by about that "
                "much are not told apart by this measurement (one seed, 8x16 eval rows)." if len(dp_at) > 1 else "")
             + (" Re-run rows (" + ", ".join(f"H = {r['H']} lr {r['outer_lr']} momentum {r['outer_momentum']}: "
                                              f"{r['eval_loss']:.4f}" for r in repeats)
                + ") reproduced the listed value: the runs are deterministic." if repeats else ""),
             "",
             "| H | outer lr | Nesterov momentum | eval loss" + (" | vs dp" if dp else "")
             + (" | vs dp at same H" if dp_at else "") + " |",
             "|---|---|---|---|" + ("---|" if dp else "") + ("---|" if dp_at else "")]
    for r in rows:
        vs = f" | {(r['eval_loss'] / dp['eval_loss'] - 1) * 100:+.1f} %" if dp else ""
        if dp_at:
            vs += f" | {(r['eval_loss'] / dp_at[r['H']] - 1) * 100:+.1f} %" if r["H"] in dp_at else " | "
        lines.append(f"| {r['H']} | {r['outer_lr']} | {r['outer_momentum']} | {r['eval_loss']:.4f}{vs} |")
    if others:
        lines += ["", "Other seeds (`DILOCO_SEED`: another genesis, another batch draw, other dropout masks; same "
                  "held-out rows), to see how far one seed's ranking carries:", "",
                  "| seed | H | outer lr | Nesterov momentum | eval loss | dp-N at same H | vs dp at same H |",
                  "|---|---|---|---|---|---|---|"]
        dps = {(r["seed"], r["H"], r["n"]): r["eval_loss"] for r in others if r.get("kind") == "dp"}
        for r in sorted(others, key=lambda r: (r["seed"], r.get("kind", "diloco") == "dp", r["eval_loss"])):
            if r.get("kind") == "dp":
                one = " (one trainer)" if r["n"] == 1 else ""
                lines.append(f"| {r['seed']} | {r['H']} | dp-{r['n']}{one} | | {r['eval_loss']:.4f} | | |")
                continue
            d = dps.get((r["seed"], r["H"], r["n"]))
            lines.append(f"| {r['seed']} | {r['H']} | {r['outer_lr']} | {r['outer_momentum']} | {r['eval_loss']:.4f} | "
                         + (f"{d:.4f} | {(r['eval_loss'] / d - 1) * 100:+.1f} % |" if d else " | |"))
        lines += target_md(every, others, n)
    return lines


def target_md(every: list[dict], others: list[dict], n: int) -> list[str]:
    """Issue #14's target (N = 4 within 3 % of data-parallel) for every config measured at more than one seed: the
    gap against dp-N with the same H and seed (the very tokens of the very sequential steps)."""
    def seed_of(r: dict):
        return r.get("seed", "preset")  # `every`: the preset's seed; `others`: their own

    measured = every + others
    dps = {(seed_of(r), r["H"]): r["eval_loss"] for r in measured if r.get("kind") == "dp" and r["n"] == n}
    gaps: dict[tuple, dict] = {}
    for r in measured:
        if r.get("kind", "diloco") != "diloco" or r["n"] != n or (seed_of(r), r["H"]) not in dps:
            continue
        gaps.setdefault((r["H"], r["outer_lr"], r["outer_momentum"]), {})[seed_of(r)] = (
            r["eval_loss"] / dps[(seed_of(r), r["H"])] - 1) * 100
    seeds = ["preset"] + sorted({r["seed"] for r in others})
    multi = {k: v for k, v in gaps.items() if len(v) > 1}
    if not multi:
        return []
    lines = ["", f"## Issue #14's target with averaged moments: N = {n} within 3 % of data-parallel (vs dp-{n} at the "
             "same H and seed)", "",
             "Every row here averages the inner moments (the sweep's rule). The rule kept, the corrected second "
             "moment, is measured at the same 5 seeds in bench/diloco-moments.md.", "",
             "| H | outer lr | Nesterov momentum | " + " | ".join(
                 "seed 1337 (preset)" if s == "preset" else f"seed {s}" for s in seeds) + " | mean | worst |",
             "|---|---|---|" + "---|" * (len(seeds) + 2)]
    for (h, lr, mu), v in sorted(multi.items(), key=lambda kv: max(kv[1].values())):
        lines.append(f"| {h} | {lr} | {mu} | " + " | ".join(
            f"{v[s]:+.1f} %" if s in v else "" for s in seeds)
                     + f" | {sum(v.values()) / len(v):+.1f} % | {max(v.values()):+.1f} % |")
    spread: dict = {}  # how far dp-N alone moves across H at one seed: the noise floor of a gap
    for (seed, _h), loss in dps.items():
        spread.setdefault(seed, []).append(loss)
    floor = max((max(v) / min(v) - 1) * 100 for v in spread.values() if len(v) > 1) if spread else 0.0
    met = [k for k, v in multi.items() if max(v.values()) <= 3.0]
    mean = {k: sum(v.values()) / len(v) for k, v in multi.items()}
    most = max(len(v) for v in multi.values())  # best mean among the configs measured at the most seeds (same seeds)
    bk, best = min(((k, m) for k, m in mean.items() if len(multi[k]) == most), key=lambda kv: kv[1])
    default = (H, OUTER_LR, OUTER_MOMENTUM)
    text = ("Met at every seed measured by: " + ", ".join(f"H = {h}, lr {lr}, momentum {mu}" for h, lr, mu in met) + "."
            if met else "With averaged moments, no config measured at more than one seed is within 3 % at every seed: "
            "the target is not met at this scale (demo model, 512 sequential steps) by this measurement.")
    text += (f" Best mean gap over the {most} seeds: H = {bk[0]}, outer lr {bk[1]}, momentum {bk[2]}, {best:+.1f} % "
             f"(from {min(multi[bk].values()):+.1f} % to {max(multi[bk].values()):+.1f} %)")
    if default in multi:
        text += (f"; this run's knobs (H = {H}, {OUTER_LR}, {OUTER_MOMENTUM}) with averaged moments: "
                 f"{mean[default]:+.1f} % mean, {max(multi[default].values()):+.1f} % worst")
    text += f". dp-{n} alone moves up to {floor:.1f} % across H at one seed (its spread is the noise of every gap above)"
    text += (f": the best mean is {best - 3:.1f} points above 3 %, less than that noise, so the target is neither "
             "shown met nor ruled out at this scale." if 3 < best < 3 + floor else ".")
    lines += ["", text]
    return lines


def sweep(configs: list[tuple], n: int) -> list[dict]:
    """`python -m bench.diloco sweep H:LR:MU,...,dp:H` (DILOCO_NS's largest N, DILOCO_EPOCHS x DILOCO_H sequential
    steps kept: epochs = EPOCHS * H / H'): the outer optimizer and H against each other at one N, moments averaged;
    `dp:H` runs the data-parallel N× batch baseline with H's batch grouping."""
    global H, EPOCHS
    steps, rows = H * EPOCHS, []
    with prepared("bench-diloco-sweep-") as p:
        from node.engine.spec import EpochConfig

        spec, train_ds, eval_ds, genesis, work = p.spec, p.train_ds, p.eval_ds, p.genesis, p.work
        for c in configs:
            h = c[1] if c[0] == "dp" else c[0]
            H, EPOCHS = h, steps // h
            s = spec.with_(steps_per_round=h, segment_steps=h // 2)
            if c[0] == "dp":
                r = run_data_parallel(s, train_ds, eval_ds, genesis, n)
                row = {"kind": "dp", "H": h, "n": n, "eval_loss": r["eval_loss"], "wall_s": r["wall_s"]}
            else:
                _, lr, mu = c
                cfg = EpochConfig(slots=n, outer_lr=lr, outer_momentum=mu, inner_moments="average")
                r = run_diloco(s, train_ds, eval_ds, genesis, n, cfg, work / f"h{h}-{lr}-{mu}")
                row = {"H": h, "outer_lr": lr, "outer_momentum": mu, "n": n, "eval_loss": r["eval_loss"],
                       "wall_s": r["wall_s"]}
            if SEED is not None:
                row["seed"] = int(SEED)
            rows.append(row)
            print(row, flush=True)
    return rows


def _parse_config(c: str) -> tuple:
    parts = c.split(":")
    if parts[0] == "dp":
        return ("dp", int(parts[1]))
    return (int(parts[0]), float(parts[1]), float(parts[2]))


def regenerate_md() -> str:
    """`python -m bench.diloco md`: bench/diloco<TAG>.md again from bench/diloco<TAG>.json and the sweep file,
    without training (the whole run's seconds are the json's, or the old md's when the json predates them)."""
    import re

    res = json.loads((BENCH_DIR / f"diloco{TAG}.json").read_text())
    secs = res.get("seconds")
    if secs is None:
        m = re.search(r"Whole run (\d+) s", (BENCH_DIR / f"diloco{TAG}.md").read_text())
        secs = float(m.group(1)) if m else 0.0
    return write_md(res, secs)


if __name__ == "__main__" and sys.argv[1:2] == ["one"]:  # a child of main(): one run's JSON on stdout
    print(json.dumps(run_one(sys.argv[2])))
    sys.exit(0)

if __name__ == "__main__" and sys.argv[1:2] == ["md"]:
    (BENCH_DIR / f"diloco{TAG}.md").write_text(regenerate_md())
    sys.exit(0)

if __name__ == "__main__" and sys.argv[1:2] == ["sweep"]:
    configs = [_parse_config(c) for c in sys.argv[2].split(",")]
    rows = sweep(configs, max(NS))
    # appended to, earlier rows stay (read again, not at start); diloco-sweep.json keeps its row format (the preset's
    # seed, DiLoCo rows only: whitepaper/make_figures.py reads it), dp-N and other seeds go to diloco-checks.json
    for name, part in ((f"diloco-sweep{TAG}.json", [r for r in rows if "kind" not in r and "seed" not in r]),
                       (f"diloco-checks{TAG}.json", [r for r in rows if "kind" in r or "seed" in r])):
        out = BENCH_DIR / name
        if part:
            out.write_text(json.dumps((json.loads(out.read_text()) if out.exists() else []) + part, indent=1) + "\n")
    sys.exit(0)

if __name__ == "__main__":
    started = time.time()
    res = main()
    secs = time.time() - started
    res["outer_lr"], res["outer_momentum"], res["seconds"] = OUTER_LR, OUTER_MOMENTUM, round(secs)
    res["inner_moments"] = MOMENTS
    (BENCH_DIR / f"diloco{TAG}.json").write_text(json.dumps(res, indent=1) + "\n")
    (BENCH_DIR / f"diloco{TAG}.md").write_text(write_md(res, secs))
    print(write_md(res, secs))
    sys.exit(0)
