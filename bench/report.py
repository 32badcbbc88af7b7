"""bench/README.md: every benchmark figure as a ratio to its baseline of the same run.

`python -m bench` calls `write_readme(results)` after the modules ran. The machines these
run on are shared and noisy, so each figure is set against a baseline measured in the
same run (same process kind, same minutes); absolute numbers are context only. A
section that did not run in this results.json is listed as missing, never invented.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR / "README.md"

# section -> its per-module report (written by the module itself)
REPORTS = {"gas": "gas.md", "engine": "engine.md", "store": "store.md", "rounds": "rounds.md",
           "chain": None, "dapp": None}


class Row:
    """One line of the table: figure = value / baseline (ratio), with the target it is held to."""

    def __init__(self, bench: str, figure: str, value: str, baseline: str = "—", ratio: float | None = None,
                 target: str = "—", met: bool | None = None):
        self.cells = [bench, figure, value, baseline, fmt_ratio(ratio), target,
                      "—" if met is None else ("yes" if met else "**no**")]


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"**{x:.3g}×**"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def secs(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def div(a, b) -> float | None:
    return a / b if a is not None and b else None


# ------------------------------------------------------------ one function per section
def gas_rows(g: dict) -> list[Row]:
    """Gas of one honest round per configuration, vs committee 3 / samples 2 / 32 steps."""
    def round_gas(c: int, x: dict) -> int:
        # each member's commit_verdict, commit_final (the final flag's commitment; 0 in results from before it) and
        # reveal_verdict, at the mean member
        member = sum(x.get(k + "_mean", x.get(k, 0)) for k in ("commit_verdict", "commit_final", "reveal_verdict"))
        return x["commit"] + x["seal"] + x["reveal_starts"] + x["reveal_ends"] + x["finalize"] + c * member + (c + 1) * x["claim"]

    configs = {}
    for key, x in g.items():
        m = re.fullmatch(r"c(\d+)_s(\d+)_steps(\d+)", key)
        if m and isinstance(x, dict):
            configs[tuple(map(int, m.groups()))] = round_gas(int(m.group(1)), x)
    if not configs:
        return []
    base_key = min(configs)
    base = configs[base_key]
    rows = []
    for (c, s, steps), total in sorted(configs.items()):
        flat_pair = configs.get((c, s, min(k[2] for k in configs if k[:2] == (c, s))))
        rows.append(Row("gas", f"one round, committee {c}, samples {s}, {steps} steps (contract level)", f"{total:,} gas",
                        f"c{base_key[0]} s{base_key[1]} {base_key[2]} steps: {base:,}", div(total, base),
                        "flat in steps (≤ 1.05× the same c, s at the fewest steps)" if flat_pair != total else "—",
                        (total / flat_pair <= 1.05) if flat_pair and flat_pair != total else None))
    from node.chain.contracts import EIP170_LIMIT

    for name, size in g.get("runtime_bytes", {}).items():
        rows.append(Row("gas", f"{name} runtime bytecode", f"{size:,} B", f"EIP-170 limit: {EIP170_LIMIT:,} B",
                        div(size, EIP170_LIMIT), "under the limit", size <= EIP170_LIMIT))
    return rows


def engine_rows(e: dict) -> list[Row]:
    rows = []
    for name, r in (e.get("sizes") or {}).items():
        det, plain = r.get("ab_deterministic_step_s", r.get("deterministic_step_s")), r.get("ab_plain_step_s", r.get("plain_step_s"))
        rows.append(Row("engine", f"{name} ({r.get('params', 0):,} params): deterministic step", secs(det),
                        f"plain PyTorch step {secs(plain)}", div(det, plain), "≤ 1.05×", div(det, plain) is not None and det / plain <= 1.05))
        if r.get("replay_s") and r.get("replay_steps") and det:
            rows.append(Row("engine", f"{name}: replay of {r['replay_steps']} steps from a checkpoint (load, verify, hash)",
                            secs(r["replay_s"]), f"{r['replay_steps']} deterministic steps {secs(det * r['replay_steps'])}",
                            div(r["replay_s"], det * r["replay_steps"])))
        if r.get("hash_parallel_gbps"):
            big = r.get("state_bytes", 0) >= 100e6
            rows.append(Row("engine", f"{name}: state hash, {r.get('state_bytes', 0) / 1e6:.1f} MB on all cores",
                            f"{r['hash_parallel_gbps']:.2f} GB/s", f"1 thread {r.get('hash_single_gbps', 0):.2f} GB/s",
                            div(r["hash_parallel_gbps"], r.get("hash_single_gbps")), "≥ 2 GB/s at ≥ 100 MB" if big else "—",
                            r["hash_parallel_gbps"] >= 2.0 if big else None))
    exact = e.get("exact") or {}
    for name, r in (exact.get("sizes") or {}).items():  # issue #17: exact mode vs the plain step, same process
        target = exact.get("target_cpu", 3.0)
        rows.append(Row("engine", f"{name} ({r.get('params', 0):,} params): exact-mode step (CPU time)",
                        secs(r["exact_cpu_s"]), f"plain-mode step {secs(r['plain_cpu_s'])}",
                        div(r["exact_cpu_s"], r["plain_cpu_s"]), f"≤ {target:g}× (CPU)",
                        r["exact_cpu_s"] / r["plain_cpu_s"] <= target))
    return rows


def store_rows(s: dict) -> list[Row]:
    rows = []
    sizes = s.get("sizes") or {}
    for name in sorted(sizes, key=lambda n: sizes[n].get("bytes", 0)):
        r = sizes[name]
        cid = (r.get("cid") or {}).get("MBps")
        for op, label in (("embedded_put", "embedded put (verified)"), ("embedded_get", "embedded get (verified)")):
            if op in r:
                rows.append(Row("store", f"{name}: {label}", f"{r[op]['MBps']:.1f} MB/s", f"CID only {cid} MB/s",
                                div(r[op]["MBps"], cid)))
        if "daemon_add" in r and "embedded_put" in r:
            ok = r["embedded_put"]["MBps"] >= r["daemon_add"]["MBps"]
            rows.append(Row("store", f"{name}: js-ipfs daemon add (Kubo RPC API)", f"{r['daemon_add']['MBps']:.1f} MB/s",
                            f"embedded put {r['embedded_put']['MBps']:.1f} MB/s", div(r["daemon_add"]["MBps"], r["embedded_put"]["MBps"]),
                            "embedded put ≥ daemon add", ok))
        if "peer_fetch" in r and "embedded_get" in r:  # #16: a peer's gateway vs the local store, same run
            rows.append(Row("store", f"{name}: fetch from a peer's trustless gateway (verified, stored)",
                            f"{r['peer_fetch']['MBps']:.1f} MB/s", f"embedded get {r['embedded_get']['MBps']:.1f} MB/s",
                            div(r["peer_fetch"]["MBps"], r["embedded_get"]["MBps"])))
        if "kubo_get" in r and "embedded_get" in r:
            rows.append(Row("store", f"{name}: verified get through the daemon", f"{r['kubo_get']['MBps']:.1f} MB/s",
                            f"embedded get {r['embedded_get']['MBps']:.1f} MB/s", div(r["kubo_get"]["MBps"], r["embedded_get"]["MBps"])))
    t = s.get("targets") or {}
    if "memory_flat" in t:
        growth = t.get("client_peak_rss_growth_mb", {})
        rows.append(Row("store", "client peak RSS growth, smallest → largest size", f"max {max(growth.values(), default=0):.1f} MB",
                        "smallest size", None, "< 32 MB (streaming)", t["memory_flat"]))
    return rows


def rounds_rows(r: dict) -> list[Row]:
    rows = []
    demo, comp, scal, summ = r.get("demo"), r.get("compute") or [], r.get("scaling") or {}, r.get("summary") or {}
    tg = r.get("targets") or {}
    if demo:
        b = demo["baseline"]
        blocks = f"devnet, {r.get('block_time_s', 1):g} s blocks, 1 trainer + 3 verifiers"
        for key, what in (("demo", f"demo spec: time per round, pipelined trainer (the default; {blocks})"),
                          ("demo_sequential", "demo spec: time per round, sequential trainer (--no-pipeline)"),
                          ("short", "short rounds: time per round, pipelined (latency-bound)"),
                          ("short_sequential", "short rounds: time per round, sequential")):
            d = r.get(key)
            if not d:
                continue
            S, base = d["spec"]["steps_per_round"], d["baseline"]["pure_training_s"]
            judged = key == "demo"
            rows.append(Row("rounds", f"{what}, S={S}", secs(d["period_s"]), f"pure training {secs(base)}",
                            div(d["period_s"], base),
                            f"overhead ≤ {pct(tg.get('overhead'))} (ratio ≤ {1 + tg.get('overhead', 0):.2f}×)" if judged else "—",
                            d["met_overhead_target"] if judged else None))
        rows.append(Row("rounds", "demo spec: the trainer's train_round (steps + boundary hashes + checkpoint writes)",
                        secs(b["train_round_s"]), f"pure training {secs(b['pure_training_s'])}", div(b["train_round_s"], b["pure_training_s"])))
        rows.append(Row("rounds", "demo spec: commit → final latency (hidden when pipelined)", secs(demo["verify_latency_s"]),
                        f"pure training {secs(b['pure_training_s'])}", div(demo["verify_latency_s"], b["pure_training_s"])))
        seq = r.get("demo_sequential")
        if seq:
            r0 = seq["rounds"][-1]
            parts = r0["breakdown"]
            for key, label in (("hashing_and_checkpoints_s", "hashing + checkpoints"), ("store_fetch_and_upload_s", "store fetch + upload"),
                               ("trainer_transactions_s", "trainer's transactions (send → receipt)"),
                               ("verifier_replay_s", "verifier replay + checks (slowest member)"),
                               ("waiting_s", "waiting (blocks, phase windows, others' transactions)")):
                rows.append(Row("rounds", f"sequential demo round {r0['round_id']}: {label}", secs(parts[key]),
                                f"training in the round {secs(parts['training_s'])}", div(parts[key], parts["training_s"])))
    for c in comp:
        if "measured_fraction_cpu" in c:
            rows.append(Row("rounds", f"verifier compute, one member, {c['design']} (S={c['steps_per_round']})",
                            f"{c['verifier_cpu_s']:.2f} CPU s", f"trainer {c['trainer_cpu_s']:.2f} CPU s", c["measured_fraction_cpu"]))
        det = min(c["detection_spread"], c["detection_block"])
        rows.append(Row("rounds", f"replayed steps per member, {c['design']} — P(catch 10% faked) {pct(det)}",
                        f"{c['replayed_steps_per_member']:,} steps", f"trained {c['steps_per_round']:,} steps", c["replay_fraction"]))
    if summ.get("target_design"):
        rows.append(Row("rounds", f"S ≥ {tg.get('target_min_steps')}: fewest replayed steps per member with P(catch 10% faked) "
                        f"≥ {pct(tg.get('detection'))} — {summ['target_design']}, P = {pct(summ['target_detection'])}",
                        pct(summ["target_replay_fraction"]), "the trainer's steps", summ["target_replay_fraction"],
                        f"≤ {pct(tg.get('replay_fraction'))}", summ["replay_and_detection_met"]))
    rows_s = scal.get("rows") or []
    base = scal.get("baseline") or {}
    bref = next((x for x in rows_s if (x["verifiers"], x["committee"], x["steps"]) == (base.get("verifiers"), base.get("committee"), base.get("steps"))), None)
    for x in rows_s:
        if x is bref or bref is None:
            continue
        label = f"{x['verifiers']} verifiers, committee {x['committee']}, {x['steps']} steps"
        steps_only = ((x["verifiers"], x["committee"]) == (base["verifiers"], base["committee"])
                      and x.get("checks") == bref.get("checks"))  # the draw sets the checks; same work compared
        if x.get("checks") is not None and x.get("checks") != bref.get("checks"):
            label += f" ({x['checks']} checks, baseline {bref.get('checks')})"
        rows.append(Row("rounds", f"devnet gas per round, {label}", f"{x['gas_total']:,} gas",
                        f"{base['verifiers']}/{base['committee']}/{base['steps']}: {bref['gas_total']:,}", x["gas_ratio"],
                        f"flat in steps (≤ {tg.get('gas_flat')}×)" if steps_only else "—",
                        x["gas_ratio"] <= tg.get("gas_flat", 0) and 1 / x["gas_ratio"] <= tg.get("gas_flat", 0) if steps_only else None))
        rows.append(Row("rounds", f"devnet wall time per round, {label}", secs(x["wall_s"]),
                        f"{base['verifiers']}/{base['committee']}/{base['steps']}: {secs(bref['wall_s'])}", x["wall_ratio"]))
    if summ and "gas_spread_over_steps" in summ:
        rows.append(Row("rounds", "devnet gas per round over steps per round (3 verifiers, committee 3)", f"max/min {summ['gas_spread_over_steps']:.3f}",
                        "fewest-gas S", summ["gas_spread_over_steps"], f"≤ {tg.get('gas_flat')}×", summ["gas_flat_met"]))
    return rows


def chain_rows(c: dict) -> list[Row]:
    rows = []
    for what in ("stake_tx", "view_call", "failover_first_call"):
        a, m = c.get(f"{what}_block_time_1s_s"), c.get(f"{what}_automine_s")
        if a is not None and m is not None:
            rows.append(Row("chain", f"{what.replace('_', ' ')} on a 1 s-block devnet", secs(a), f"automine {secs(m)}", div(a, m)))
    for key in ("cli_keys_list_s", "cli_status_s", "devnet_up_s"):
        if key in c:
            rows.append(Row("chain", key[:-2].replace("_", " "), secs(c[key])))
    return rows


def dapp_rows(d: dict) -> list[Row]:
    rows = []
    if "page_load_cold_s" in d:
        rows.append(Row("dapp", "page load, cold (chromium)", secs(d["page_load_cold_s"]),
                        f"warm {secs(d.get('page_load_warm_s'))}", div(d["page_load_cold_s"], d.get("page_load_warm_s"))))
    u = d.get("update_latency_s") or {}
    if "median" in u:
        rows.append(Row("dapp", "live update latency after a finalize (median)", secs(u["median"]),
                        f"page poll interval {secs(u.get('poll_s'))}", div(u["median"], u.get("poll_s"))))
    return rows


SECTIONS = {"gas": gas_rows, "engine": engine_rows, "store": store_rows, "rounds": rounds_rows,
            "chain": chain_rows, "dapp": dapp_rows}


def generic_rows(name: str, section: dict) -> list[Row]:
    """A section without its own renderer: its numbers, as context only."""
    rows = []

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k} / ")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append(Row(name, f"{prefix}{k}", f"{v:,.4g}" if isinstance(v, float) else f"{v:,}"))

    walk(section)
    return rows


def render(results: dict) -> str:
    m = results.get("machine") or {}
    lines = ["# trainchain benchmarks", "",
             "`make bench` (= `.venv/bin/python -m bench`; one module: `python -m bench rounds`; `BENCH_QUICK=1` for a "
             "smaller plan) writes `bench/results.json`, this page and one report per module. Every figure is set "
             "against a baseline measured **in the same run** (ratio = figure / baseline): the machines are shared and "
             "noisy, so the ratios are the result and the absolute numbers are context.", "",
             f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python {m.get('python', '?')}, "
             f"{m.get('platform', '?')}." + loadavg_note(results) + commit_note(), ""]
    walls = {k[:-7]: v for k, v in results.items() if k.endswith("_wall_s")}
    if walls:
        lines += ["Wall time per module: " + ", ".join(f"{k} {v:g} s" for k, v in walls.items())
                  + f" (total {sum(walls.values()):.0f} s).", ""]
    lines += ["| bench | figure | value | same-run baseline | ratio | target | met |", "|---|---|---|---|---:|---|---|"]
    missing = []
    for name, fn in SECTIONS.items():
        section = results.get(name)
        if not section:
            missing.append(name)
            continue
        for row in fn(section):
            lines.append("| " + " | ".join(row.cells) + " |")
    for name, section in results.items():
        if name not in SECTIONS and isinstance(section, dict) and name != "machine":
            for row in generic_rows(name, section):
                lines.append("| " + " | ".join(row.cells) + " |")
    lines.append("")
    if missing:
        lines += [f"Not in this results.json (did not run or failed): {', '.join(missing)}.", ""]
    reports = [f"[{f}]({f})" for n, f in REPORTS.items() if f and (BENCH_DIR / f).exists()]
    if reports:
        lines += ["Per-module reports: " + ", ".join(reports) + ".", ""]
    return "\n".join(lines)


def commit_note() -> str:
    """The code measured: BENCH_COMMIT (a bench run from an exported tree), else git's HEAD."""
    commit = os.environ.get("BENCH_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(["git", "-C", str(BENCH_DIR), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return f" Code: commit `{commit[:12]}`." if commit else ""


def loadavg_note(results: dict) -> str:
    r = results.get("rounds") or {}
    if r.get("loadavg_start") and r.get("loadavg_end"):
        return (f" Load average (1/5/15 min) around the rounds bench: {r['loadavg_start']} → {r['loadavg_end']} "
                "(the machine is shared).")
    return ""


def write_readme(results: dict) -> Path:
    README.write_text(render(results))
    return README
