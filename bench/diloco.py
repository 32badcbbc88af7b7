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
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# the knobs that came out best at this scale (the sweep table of bench/diloco.md): H = 16 (32 outer steps in the
# 512 sequential steps) and Nesterov momentum 0.5 — DiLoCo's 0.9 is tuned for hundreds of outer steps and
# overshoots in a few dozen; DiLoCo's outer lr 0.7
H = int(os.environ.get("DILOCO_H", "16"))  # inner steps per slot
EPOCHS = int(os.environ.get("DILOCO_EPOCHS", "32"))
NS = [int(n) for n in os.environ.get("DILOCO_NS", "1,2,4,8").split(",")]
OUTER_LR = float(os.environ.get("DILOCO_OUTER_LR", "0.7"))
OUTER_MOMENTUM = float(os.environ.get("DILOCO_OUTER_MOMENTUM", "0.5"))
TAG = os.environ.get("DILOCO_TAG", "")  # results go to bench/diloco<TAG>.md/.json (variants side by side)
CORPUS_BYTES = 2_000_000
EVAL_FRACTION = 0.1
EVAL_SEED, EVAL_BATCHES, EVAL_ROWS = 999, 8, 16


def _spec():
    from node.engine.spec import TaskSpec

    # the demo model (2 layers, d 64, ctx 64, batch 8, dropout 0.1) with slots of H steps in 2 segments
    return TaskSpec.preset("demo").with_(steps_per_round=H, segment_steps=H // 2, protocol={"samples": 2})


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
    from node.engine.outer import train_epochs
    from node.engine.state import load_state

    curve, base, t0 = [], genesis, time.perf_counter()
    for e in range(EPOCHS):  # one epoch at a time: eval between epochs (outside the timed part)
        started = time.perf_counter()
        rec = train_epochs(spec, train_ds, base, work / f"n{n}-{config.inner_moments}", 1, config, first_epoch=e)[0]
        train_s = time.perf_counter() - started
        base = rec.checkpoint
        curve.append({"epoch": e + 1, "tokens": (e + 1) * n * H * spec.batch_size * spec.model.block_size,
                      "train_s": round(train_s, 2), "eval_loss": _eval_loss(spec, load_state(base), eval_ds)})
    return {"curve": curve, "eval_loss": curve[-1]["eval_loss"], "wall_s": round(time.perf_counter() - t0, 1),
            "final_hash": "0x" + rec.state_hash.hex()}


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
                      "train_s": round(train_s, 2), "eval_loss": _eval_loss(spec, trainer.state(), eval_ds)})
    return {"curve": curve, "eval_loss": curve[-1]["eval_loss"], "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> dict:
    from node.engine.runtime import apply_runtime_pin, compute_pin_env

    spec = _spec()
    os.environ.update(compute_pin_env(spec.runtime))  # before torch loads
    apply_runtime_pin(spec)
    from node.engine.genesis import make_genesis
    from node.engine.spec import EpochConfig

    train_ds, eval_ds, total, cut = _data()
    results = {"H": H, "epochs": EPOCHS, "spec": spec.name, "batch_size": spec.batch_size,
               "block_size": spec.model.block_size, "corpus_bytes": total, "train_bytes": cut,
               "eval_bytes": total - cut, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-diloco-") as tmp:
        work = Path(tmp)
        genesis = work / "genesis.safetensors"
        make_genesis(spec, genesis)
        runs = results["runs"]
        runs["single"] = run_diloco(spec, train_ds, eval_ds, genesis, 1, EpochConfig.identity(), work)
        print(f"single: {runs['single']['eval_loss']:.4f} ({runs['single']['wall_s']} s)", flush=True)
        for n in NS:
            if n == 1:
                continue
            for moments in ("average", "reset") if n == max(NS) else ("average",):
                cfg = EpochConfig(slots=n, outer_lr=OUTER_LR, outer_momentum=OUTER_MOMENTUM, inner_moments=moments)
                key = f"diloco-{n}" + ("" if moments == "average" else "-reset")
                runs[key] = run_diloco(spec, train_ds, eval_ds, genesis, n, cfg, work)
                print(f"{key}: {runs[key]['eval_loss']:.4f} ({runs[key]['wall_s']} s)", flush=True)
            runs[f"dp-{n}"] = run_data_parallel(spec, train_ds, eval_ds, genesis, n)
            print(f"dp-{n}: {runs[f'dp-{n}']['eval_loss']:.4f} ({runs[f'dp-{n}']['wall_s']} s)", flush=True)
    return results


def write_md(results: dict, seconds: float) -> str:
    runs = results["runs"]
    single = runs["single"]["eval_loss"]
    lines = [
        "# Verified DiLoCo epochs: model quality (`python -m bench.diloco`)",
        "",
        f"demo model (2 layers, d 64, ctx {results['block_size']}, batch {results['batch_size']}, dropout 0.1), "
        f"H = {results['H']} inner steps per slot, {results['epochs']} epochs; outer step: lr {OUTER_LR}, Nesterov "
        f"momentum {OUTER_MOMENTUM} (DiLoCo's: 0.7, 0.9), inner AdamW moments averaged unless marked `reset`. Held-out split: the last "
        f"{results['eval_bytes']:,} of {results['corpus_bytes']:,} corpus bytes (10%); eval = mean loss over "
        f"{EVAL_BATCHES}x{EVAL_ROWS} fixed held-out rows. Whole run {seconds:.0f} s on a shared 2-core machine "
        "(other engineers running): wall times are noisy and single-core (slots run one after another here).",
        "",
        "| run | tokens seen | sequential steps | eval loss | vs one trainer | vs data-parallel N× batch | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in runs.items():
        n = 1 if key == "single" else int(key.split("-")[1])
        dp = runs.get(f"dp-{n}")
        vs_dp = "" if not key.startswith("diloco") or dp is None else f"{(r['eval_loss'] / dp['eval_loss'] - 1) * 100:+.1f} %"
        lines.append(f"| {key} | {r['curve'][-1]['tokens']:,} | {results['epochs'] * results['H']} | "
                     f"{r['eval_loss']:.4f} | {(r['eval_loss'] / single - 1) * 100:+.1f} % | {vs_dp} | {r['wall_s']} |")
    lines += ["", "Eval loss after each epoch (against tokens: epoch x N x H x B x T):", "",
              "| run | " + " | ".join(f"e{c['epoch']}" for c in runs["single"]["curve"]) + " |",
              "|---|" + "---|" * len(runs["single"]["curve"])]
    for key, r in runs.items():
        lines.append(f"| {key} | " + " | ".join(f"{c['eval_loss']:.3f}" for c in r["curve"]) + " |")
    return "\n".join(lines + sweep_md(runs)) + "\n"


def sweep_md(runs: dict) -> list[str]:
    """The knobs tried (bench/diloco-sweep.json, `python -m bench.diloco sweep H:LR:MU,...`), best first."""
    path = BENCH_DIR / "diloco-sweep.json"
    if not path.exists():
        return []
    rows = sorted(json.loads(path.read_text()), key=lambda r: r["eval_loss"])
    dp = runs.get(f"dp-{rows[0]['n']}")
    lines = ["", f"## The outer optimizer and H, N = {rows[0]['n']} (moments averaged; 512 sequential "
             "steps for every row: H x epochs)", "",
             "Every row is `run_diloco` (train-local's epochs) on the same data and genesis, measured on the shared 2-core "
             "machine (`python -m bench.diloco sweep H:LR:MU,...` -> bench/diloco-sweep.json)"
             + (f"; vs dp = against this run's dp-{rows[0]['n']} ({dp['eval_loss']:.4f})." if dp else "."), "",
             "| H | outer lr | Nesterov momentum | eval loss" + (" | vs dp" if dp else "") + " |",
             "|---|---|---|---|" + ("---|" if dp else "")]
    for r in rows:
        vs = f" | {(r['eval_loss'] / dp['eval_loss'] - 1) * 100:+.1f} %" if dp else ""
        lines.append(f"| {r['H']} | {r['outer_lr']} | {r['outer_momentum']} | {r['eval_loss']:.4f}{vs} |")
    return lines


def sweep(configs: list[tuple[int, float, float]], n: int) -> list[dict]:
    """`python -m bench.diloco sweep H:LR:MU,...` (DILOCO_NS's largest N, DILOCO_EPOCHS x DILOCO_H sequential steps
    kept: epochs = EPOCHS * H / H'): the outer optimizer and H against each other at one N, moments averaged."""
    from node.engine.runtime import apply_runtime_pin, compute_pin_env

    spec = _spec()
    os.environ.update(compute_pin_env(spec.runtime))
    apply_runtime_pin(spec)
    from node.engine.genesis import make_genesis
    from node.engine.spec import EpochConfig

    global H, EPOCHS
    steps, (train_ds, eval_ds, _, _), rows = H * EPOCHS, _data(), []
    with tempfile.TemporaryDirectory(prefix="bench-diloco-sweep-") as tmp:
        work = Path(tmp)
        genesis = work / "genesis.safetensors"
        make_genesis(spec, genesis)
        for h, lr, mu in configs:
            H, EPOCHS = h, steps // h
            s = spec.with_(steps_per_round=h, segment_steps=h // 2)
            cfg = EpochConfig(slots=n, outer_lr=lr, outer_momentum=mu, inner_moments="average")
            r = run_diloco(s, train_ds, eval_ds, genesis, n, cfg, work / f"h{h}-{lr}-{mu}")
            rows.append({"H": h, "outer_lr": lr, "outer_momentum": mu, "n": n, "eval_loss": r["eval_loss"],
                         "wall_s": r["wall_s"]})
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__" and sys.argv[1:2] == ["sweep"]:
    configs = [(int(h), float(lr), float(mu)) for h, lr, mu in (c.split(":") for c in sys.argv[2].split(","))]
    rows = sweep(configs, max(NS))
    (BENCH_DIR / f"diloco-sweep{TAG}.json").write_text(json.dumps(rows, indent=1) + "\n")
    sys.exit(0)

if __name__ == "__main__":
    started = time.time()
    res = main()
    secs = time.time() - started
    res["outer_lr"], res["outer_momentum"] = OUTER_LR, OUTER_MOMENTUM
    (BENCH_DIR / f"diloco{TAG}.json").write_text(json.dumps(res, indent=1) + "\n")
    (BENCH_DIR / f"diloco{TAG}.md").write_text(write_md(res, secs))
    print(write_md(res, secs))
    sys.exit(0)
