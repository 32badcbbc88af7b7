"""The inner AdamW moments after the outer step vs issue #14's quality gap (N = 4):
`python -m bench.diloco_moments [KIND:SEED[:N] ...]` -> bench/diloco-moments.md (rows accumulate in bench/diloco-moments.json).

KIND is `dp` (synchronous data-parallel, 4x batch), `average@LR` (DiLoCo-4, inner moments averaged over the slots,
outer lr LR) or `corrected@LR` (DiLoCo-4, m averaged and v the second moment data-parallel would have:
node/engine/outer.py); SEED is bench.diloco's DILOCO_SEED (`preset` for the demo preset's). DiLoCo: H = 4, Nesterov
0.5, outer lr 0.5 (the best mean config of bench/diloco.md's 5-seed table) or 0.4 (its runner-up), 512 sequential
steps, bench.diloco's held-out split and eval. No arguments: the 5 seeds of that table, every kind at both outer
lrs; BENCH_JOBS (default 2) rows at a time, each its own process (the losses are deterministic; only the
seconds depend on the sharing). The question: an averaged v carries every slot's own gradient
noise (one batch's), data-parallel's only a quarter of it, so DiLoCo's inner steps are smaller where noise
dominates; does giving the canonical state data-parallel's v close the gap?
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT_JSON = BENCH_DIR / "diloco-moments.json"
OUT_MD = BENCH_DIR / "diloco-moments.md"
N, H, EPOCHS, OUTER_MOMENTUM = 4, 4, 128, 0.5
OUTER_LRS = (0.5, 0.4)
SEEDS = ["preset", "3", "5", "7", "42"]
MOMENTS = ("average", "corrected")
KINDS = ("dp",) + tuple(f"{m}@{lr}" for lr in OUTER_LRS for m in MOMENTS)


def run_one(kind: str, seed: str, n: int = N) -> dict:
    """One row, in this process (bench.diloco reads DILOCO_SEED / DILOCO_H / DILOCO_EPOCHS at import)."""
    from bench import diloco as D

    with D.prepared("bench-diloco-moments-") as p:
        from node.engine.spec import EpochConfig

        spec, train_ds, eval_ds, genesis, work = p.spec, p.train_ds, p.eval_ds, p.genesis, p.work
        t0 = time.perf_counter()
        if kind == "dp":
            r = D.run_data_parallel(spec, train_ds, eval_ds, genesis, n)
        else:
            moments, _, lr = kind.partition("@")
            cfg = EpochConfig(slots=n, outer_lr=float(lr), outer_momentum=OUTER_MOMENTUM, inner_moments=moments)
            r = D.run_diloco(spec, train_ds, eval_ds, genesis, n, cfg, work / kind)
    return {"kind": kind, "seed": seed, "n": n, "H": H, "epochs": EPOCHS, "eval_loss": r["eval_loss"],
            "curve": [c["eval_loss"] for c in r["curve"]], "seconds": round(time.perf_counter() - t0)}


def render(all_rows: list[dict]) -> str:
    rows = [r for r in all_rows if r.get("n", N) == N]
    others = [r for r in all_rows if r.get("n", N) != N]
    by = {(r["seed"], r["kind"]): r for r in rows}
    seeds = [x for x in SEEDS if any(r["seed"] == x for r in rows)] + sorted({r["seed"] for r in rows} - set(SEEDS))
    cols = [k for k in KINDS[1:] if any(r["kind"] == k for r in rows)]
    name = {k: f"{k.partition('@')[0]}, outer lr {k.partition('@')[2]}" for k in cols}
    lines = ["# Inner AdamW moments vs the N = 4 quality gap (`python -m bench.diloco_moments`)", "",
             "An averaged inner second moment v carries every slot's own gradient noise (one batch's), data-parallel's "
             "with a 4x batch only a quarter of it, so DiLoCo's inner steps are smaller where noise dominates. "
             "`corrected` gives the canonical state the v data-parallel would have accumulated (this epoch's part of "
             "the slots' v divided by N, plus (1 - 1/N) of the squared mean gradient estimated from the cross-slot "
             "products of their first moments; node/engine/outer.py); m is averaged in both (m is linear in the "
             "gradients: the average is data-parallel's m).", "",
             f"N = {N}, H = {H}, {EPOCHS} epochs (512 sequential steps), DiLoCo Nesterov momentum {OUTER_MOMENTUM}, "
             f"outer lr as named; dp = data-parallel with a {N}x batch over the same tokens and sequential steps; "
             "held-out eval of bench/diloco.md; seeds as its 5-seed table (`DILOCO_SEED`; preset = 1337). Each row is "
             "deterministic (a re-run gives the same loss to the last digit); the average and dp rows agree with "
             "bench/diloco.md's runs of the same configurations, made at older commits, to within "
             f"{agreement(rows)}. Outer lr 0.5 "
             "was chosen on the preset seed for averaged moments (bench/diloco.md's sweep); 0.4 is that sweep's "
             "runner-up, added here after the corrected rule at 0.5 lost ground on seeds 7 and 42: both are shown "
             "at every seed.", "",
             "| seed | dp-4 | " + " | ".join(f"{name[k]} | vs dp" for k in cols) + " |",
             "|---|---|" + "---|---|" * len(cols)]
    gaps: dict[str, list[float]] = {k: [] for k in cols}
    for seed in seeds:
        dp = by.get((seed, "dp"))
        cells = [f"{dp['eval_loss']:.4f}" if dp else ""]
        for k in cols:
            r = by.get((seed, k))
            gap = (r["eval_loss"] / dp["eval_loss"] - 1) * 100 if r and dp else None
            if gap is not None:
                gaps[k].append(gap)
            cells += [f"{r['eval_loss']:.4f}" if r else "", f"{gap:+.1f} %" if gap is not None else ""]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    full = [k for k in cols if len(gaps[k]) == len(seeds)]
    if full:
        lines.append("| **mean** | | " + " | ".join(f"| **{sum(gaps[k]) / len(gaps[k]):+.1f} %**" if k in full else "| "
                                                  for k in cols) + " |")
        lines.append("| worst | | " + " | ".join(f"| {max(gaps[k]):+.1f} %" if k in full else "| " for k in cols) + " |")
        best = min(full, key=lambda k: sum(gaps[k]) / len(gaps[k]))
        mean, worst = sum(gaps[best]) / len(gaps[best]), max(gaps[best])
        lines += ["", f"Issue #14's target, N = 4 within 3 % of data-parallel, over {len(seeds)} seeds: the best column "
                      f"({name[best]}) is {mean:+.1f} % on the mean and {worst:+.1f} % at its worst seed: "
                      + ("within 3 % at every seed." if worst <= 3 else
                         ("within 3 % on the mean, not at every seed." if mean <= 3 else "not within 3 %."))]
    if others:
        lines += ["", "Other N (the same H, epochs and outer momentum; each against dp-N of its own seed):", "",
                  "| N | seed | run | eval loss | vs dp-N |", "|---|---|---|---|---|"]
        dps = {(r["n"], r["seed"]): r["eval_loss"] for r in others if r["kind"] == "dp"}
        gaps: dict[tuple, list[float]] = {}  # (N, kind) -> its gaps, one per seed
        order = {x: i for i, x in enumerate(SEEDS)}
        for r in sorted(others, key=lambda r: (r["n"], order.get(r["seed"], len(SEEDS)), KINDS.index(r["kind"]))):
            dp = dps.get((r["n"], r["seed"]))
            gap = (r["eval_loss"] / dp - 1) * 100 if dp and r["kind"] != "dp" else None
            if gap is not None:
                gaps.setdefault((r["n"], r["kind"]), []).append(gap)
            lines.append(f"| {r['n']} | {r['seed']} | {r['kind'] if r['kind'] == 'dp' else name_of(r['kind'])} | "
                         f"{r['eval_loss']:.4f} | {'' if gap is None else f'{gap:+.1f} %'} |")
        lines += [""] + [f"N = {n}, {name_of(kind)}: {len(g)} seed{'s' if len(g) > 1 else ''}, "
                         f"{sum(g) / len(g):+.1f} % on the mean, {max(g):+.1f} % at the worst."
                         for (n, kind), g in sorted(gaps.items())]
    return "\n".join(lines) + "\n"


def name_of(kind: str) -> str:
    return f"{kind.partition('@')[0]}, outer lr {kind.partition('@')[2]}"


def agreement(rows: list[dict]) -> str:
    """The largest relative difference between this run's average@0.5 / dp rows and bench/diloco-checks.json's
    rows of the same seed (H = 4, outer lr 0.5, momentum 0.5; dp)."""
    path = BENCH_DIR / "diloco-checks.json"
    if not path.exists():
        return "n/a"
    old = {}
    for r in json.loads(path.read_text()):
        if r.get("H") != H:
            continue
        seed = str(r["seed"]) if r.get("seed") is not None else "preset"
        if r.get("kind") == "dp":
            old[(seed, "dp")] = r["eval_loss"]
        elif (r.get("outer_lr"), r.get("outer_momentum")) == (0.5, 0.5):
            old[(seed, "average@0.5")] = r["eval_loss"]
    diffs = [abs(r["eval_loss"] / old[(r["seed"], r["kind"])] - 1) for r in rows if (r["seed"], r["kind"]) in old]
    return f"{max(diffs) * 100:.2f} % ({len(diffs)} rows)" if diffs else "n/a"


def parse_run(arg: str) -> tuple[str, str, int]:
    """KIND:SEED[:N] (N default 4), checked before anything trains."""
    parts = arg.split(":")
    kind, seed, n = (parts + [str(N)])[:3] if len(parts) in (2, 3) else ("", "", "")
    if kind not in KINDS or not (seed == "preset" or seed.isdigit()) or not n.isdigit() or not 1 <= int(n) <= 16:
        raise SystemExit(f"bench.diloco_moments: expected KIND:SEED[:N] with KIND in {KINDS}, SEED 'preset' or a "
                         f"number and N in 1..16, not {arg!r}")
    return kind, seed, int(n)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:  # a child: one row on stdout
        print(json.dumps(run_one(*parse_run(argv[1]))))
        return
    if argv[:1] == ["--render"]:  # the md again from the json (no run)
        OUT_MD.write_text(render(json.loads(OUT_JSON.read_text())))
        print(OUT_MD.read_text())
        return
    runs = [parse_run(a) for a in argv] or [(k, s, N) for s in SEEDS for k in KINDS]
    rows = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else []

    def one(run: tuple[str, str, int]) -> dict:  # a process per row: the seed and the pin are read at import
        kind, seed, n = run
        env = {**os.environ, "DILOCO_H": str(H), "DILOCO_EPOCHS": str(EPOCHS)}
        env.pop("DILOCO_SEED", None)
        if seed != "preset":
            env["DILOCO_SEED"] = seed
        from bench.diloco import run_child

        return run_child(["bench.diloco_moments", "--one", f"{kind}:{seed}:{n}"], env)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(int(os.environ.get("BENCH_JOBS", "2"))) as pool:
        for row in pool.map(one, runs):
            key = (row["kind"], row["seed"], row["n"])
            rows = [r for r in rows if (r["kind"], r["seed"], r.get("n", N)) != key] + [row]
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            OUT_JSON.write_text(json.dumps(rows, indent=1) + "\n")
    if rows:
        OUT_MD.write_text(render(rows))
        print(OUT_MD.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
