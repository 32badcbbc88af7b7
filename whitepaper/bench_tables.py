"""Turn bench/results.json (`make bench`) into the whitepaper's tables and figures.

Each benchmark module writes its own section of results.json; a section that is
missing renders as *pending* with the command that produces it, never as a number.
"""
from __future__ import annotations

from pathlib import Path

SOURCES = {  # fill key -> (results.json section, what produces it)
    "gas_table": ("gas", "`make bench` → `bench/gas.md`"),
    "engine_table": ("engine", "`make bench` → `bench/engine.md`"),
    "store_table": ("store", "`make bench` → `bench/store.md`"),
    "rounds_table": ("rounds", "`make bench` → `bench/rounds.md`"),
    "chain_table": ("chain", "`make bench` (`bench/chain.py`)"),
    "dapp_table": ("dapp", "`make bench` (`bench/dapp.py`)"),
}


def pending(source: str) -> str:
    return f"*Pending: not measured yet. Run {source}; `make whitepaper` then fills this table.*"


def fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += flatten(value, name + " / ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out += flatten(item, f"{name}[{i}] / ")
        else:
            out.append((name, value))
    return out


def label(key: str) -> str:
    """'stake_tx_automine_s' -> 'stake tx automine (s)'."""
    for suffix, unit in (("_s", " (s)"), ("_ms", " (ms)"), ("_mb", " (MB)"), ("_gbps", " (GB/s)")):
        if key.endswith(suffix):
            return key[: -len(suffix)].replace("_", " ") + unit
    return key.replace("_", " ")


def generic_table(section: dict) -> str:
    rows = flatten(section)
    lines = ["| measurement | value |", "|---|---|"]
    lines += [f"| {label(k)} | {fmt(v)} |" for k, v in rows]
    return "\n".join(lines)


def table_for(key: str, bench: dict | None) -> str:
    section_name, source = SOURCES[key]
    section = (bench or {}).get(section_name)
    if not section:
        return pending(source)
    render = RENDERERS.get(section_name, generic_table)
    return render(section) + f"\n\nSource: {source} (`bench/results.json` → `{section_name}`)."


RENDERERS: dict = {}


def all_tables(bench: dict | None) -> dict[str, str]:
    out = {key: table_for(key, bench) for key in SOURCES}
    bench_dir = Path(__file__).resolve().parent.parent / "bench"
    reports = [p for p in (bench_dir / "gpu" / "gpu_check.md", bench_dir / "gpu_check.md") if p.exists()]
    out["gpu_table"] = gpu_check(reports[0] if reports else bench_dir / "gpu" / "gpu_check.md")
    return out


def figures(bench: dict | None, out: Path) -> list[Path]:
    """Figures drawn from measured data; none until the data exists."""
    made = []
    sizes = ((bench or {}).get("engine") or {}).get("sizes")
    if sizes:
        import matplotlib.pyplot as plt

        rows = sorted(sizes.values(), key=lambda r: r["params"])
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        xs = [r["params"] for r in rows]
        ax.plot(xs, [step_times(r)[0] for r in rows], "o-", label="plain PyTorch step")
        ax.plot(xs, [step_times(r)[1] for r in rows], "s-", label="deterministic step (engine, pinned)")
        for r in rows:
            ax.annotate(f"{r['threads']} thr", (r["params"], step_times(r)[1]), fontsize=7,
                        textcoords="offset points", xytext=(4, -10))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("seconds per training step")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        path = out / "step_time.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        made.append(path)
    return made


# ------------------------------------------------------------ renderers of known sections
def render_store(section: dict) -> str:
    """Throughput of the content store per size and operation."""
    ops = [("cid", "compute CID only"), ("embedded_put", "embedded put (verified)"),
           ("embedded_get", "embedded get (verified)"), ("kubo_put_verified", "Kubo RPC API put, js-ipfs daemon (CID checked)"),
           ("kubo_get", "Kubo RPC API get, js-ipfs daemon (verified)")]
    sizes = section.get("sizes", {})
    names = sorted(sizes, key=lambda n: sizes[n].get("bytes", 0))
    lines = ["| operation | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label in ops:
        cells = [f"{sizes[n][key]['MBps']:.1f} MB/s" if key in sizes[n] else "—" for n in names]
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


RENDERERS["store"] = render_store


# ------------------------------------------------------------ the adversarial suite's report
def adversarial_table(report: Path) -> str:
    """The attack rows of bench/adversarial.md (`make adversarial`), and a count of the rest."""
    if not report.exists():
        return pending("`make adversarial` → `bench/adversarial.md`")
    lines = report.read_text().splitlines()
    run = next((l.lstrip("- ") for l in lines if l.startswith("- run:")), "")
    out = ["| suite | attack | outcome | result |", "|---|---|---|---|"]
    section, others = "", {}
    for line in lines:
        if line.startswith("## "):
            section = line[3:].strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) != 4 or cells[0] == "case" or set(cells[0]) <= set("-: "):
            continue
        if not section.startswith(("Trainers", "Verifiers", "Node adversaries", "Honest")):
            others.setdefault(section, []).append(cells[3])  # faults, bad inputs: counted below
            continue
        observed = cells[2].split(";")[0]
        observed = observed if len(observed) <= 100 else observed[:97] + "..."
        out.append(f"| {section} | {cells[0]} | {observed} | {cells[3]} |")
    if len(out) == 2:  # header only
        return pending("`make adversarial` → `bench/adversarial.md` (no cases in the report)")
    for name, results in others.items():
        counts = {r: results.count(r) for r in dict.fromkeys(results)}
        out.append(f"| {name} | {len(results)} cases | | " + ", ".join(f"{n} {r}" for r, n in counts.items()) + " |")
    return "\n".join(out) + f"\n\nSource: `make adversarial` → `bench/adversarial.md` ({run})."



def step_times(r: dict) -> tuple[float, float]:
    """(plain, deterministic) seconds per step: the engine bench's interleaved A/B pair when it has one."""
    if "ab_plain_step_s" in r and "ab_deterministic_step_s" in r:
        return r["ab_plain_step_s"], r["ab_deterministic_step_s"]
    return r["plain_step_s"], r["deterministic_step_s"]


def render_engine(section: dict) -> str:
    lines = ["| model | parameters | threads | plain step | deterministic step | det / plain | replay (steps) | "
             "state | hash, parallel | hash, 1 thread |", "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, r in sorted(section.get("sizes", {}).items(), key=lambda kv: kv[1]["params"]):
        plain, det = step_times(r)
        lines.append(
            f"| {name} | {r['params']:,} | {r['threads']} | {plain * 1e3:.1f} ms | "
            f"{det * 1e3:.1f} ms | {det / plain:.3f} | "
            f"{r['replay_s']:.2f} s ({r['replay_steps']}) | {r['state_bytes'] / 1e6:.1f} MB | "
            f"{r['hash_parallel_gbps']:.2f} GB/s | {r['hash_single_gbps']:.2f} GB/s |")
    return "\n".join(lines) + ("\n\nStep times: the bench's interleaved A/B runs of the two steps in one process "
                               "(`bench/engine.py`), the fairest comparison on a shared machine.")


RENDERERS["engine"] = render_engine

GAS_CALLS = ("stake", "create_task", "commit", "seal", "reveal_starts", "commit_verdict", "reveal_ends",
             "commit_final", "reveal_verdict", "finalize", "claim")
# one of each per committee member; commit_final is commit_verdict's second call (the final flag's commitment)
VERDICT_CALLS = ("commit_verdict", "commit_final", "reveal_verdict")


def per_member_gas(gas: dict) -> int:
    """A committee member's verdict calls at the mean member (0 for a call missing from older results)."""
    return sum(gas.get(k + "_mean", gas.get(k, 0)) for k in VERDICT_CALLS)


def round_gas(c: int, gas: dict) -> int:
    """Gas of one honest round: the trainer's 3 calls, seal, c verdict commits, final-flag commits and
    reveals (mean member), finalize, and c + 1 claims. Staking and task creation are one-off."""
    per_member = per_member_gas(gas)
    return (gas["commit"] + gas["seal"] + gas["reveal_starts"] + gas["reveal_ends"] + gas["finalize"]
            + c * per_member + (c + 1) * gas["claim"])


def render_gas(section: dict) -> str:
    import re

    rows = []
    for key, gas in section.items():
        m = re.fullmatch(r"c(\d+)_s(\d+)_steps(\d+)", key)
        if m and isinstance(gas, dict):
            rows.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), gas))
    if not rows:
        return generic_table(section)
    rows.sort()
    head = "| committee c | samples s | steps/round | " + " | ".join(GAS_CALLS) + " | **one round** | verdict txs' share |"
    lines = [head, "|" + "---|" * (len(GAS_CALLS) + 5)]
    for c, s, steps, gas in rows:
        cells = " | ".join(f"{gas[k]:,}" if k in gas else "—" for k in GAS_CALLS)
        verdicts = c * per_member_gas(gas)
        total = round_gas(c, gas)
        lines.append(f"| {c} | {s} | {steps} | {cells} | **{total:,}** | {verdicts / total:.0%} |")
    return ("\n".join(lines) + "\n\nGas per call (commit_verdict, commit_final and reveal_verdict: the most "
            "expensive member; the round total uses the mean member; commit_final is commit_verdict's second call, "
            "the final flag's commitment after reveal_ends). One round = commit + seal + reveal_starts + reveal_ends + "
            "finalize + c·(commit_verdict + commit_final + reveal_verdict) + (c+1)·claim; at a gas price of g gwei it costs "
            "round × g × 10⁻⁹ ETH. seal and finalize are O(s + c); the proofs in commit and the reveals grow "
            "with log₂ M only (`bench/gas.md`).")


RENDERERS["gas"] = render_gas


def render_rounds(section: dict) -> str:
    """Whole devnet rounds (bench/rounds.py): where a round's time goes, and verifier compute measured."""
    out = []
    demo = section.get("demo") or {}
    runs = [(k, section[k]) for k in ("demo", "demo_sequential", "short", "short_sequential")
            if (section.get(k) or {}).get("period_s") is not None]
    if runs:
        spec = demo.get("spec", {})
        out += [f"Demo spec ({spec.get('params', 0):,} parameters, S = {spec.get('steps_per_round')}, "
                f"k = {spec.get('segment_steps')}, s = {spec.get('samples')}, committee {spec.get('committee')}), "
                f"real trainer and verifier processes on one machine, anvil with {section.get('block_time_s', '?')} s "
                "blocks. Time per round: pipelined (the trainer's default), the interval between consecutive commits; "
                "sequential (`--no-pipeline`), fetch of the canonical state to the finalize receipt. Overhead = "
                "(time per round − pure training of the same S steps, same run) / pure training:", "",
                "| trainer | S | pure training | time per round | overhead | commit→final latency |",
                "|---|---:|---:|---:|---:|---:|"]
        for key, d in runs:
            out.append(f"| {'pipelined' if d.get('pipeline') else 'sequential'} | {d['spec']['steps_per_round']} | "
                       f"{d['baseline']['pure_training_s']:.2f} s | {d['period_s']:.2f} s | {d['overhead']:.1%} | "
                       f"{d.get('verify_latency_s', 0):.2f} s |")
    seq = section.get("demo_sequential") or {}
    rows = seq.get("rounds") or []
    if rows:
        out += ["", "Where a sequential demo-spec round's time goes:", "",
                "| round | wall | training | hashing + checkpoints | store | trainer txs | slowest replay | "
                "waiting | blocks | gas | outcome |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            b = r.get("breakdown", {})
            out.append(
                f"| {r.get('round_id')} | {r['wall_s']:.2f} s | {b.get('training_s', 0):.2f} s | "
                f"{b.get('hashing_and_checkpoints_s', 0):.2f} s | {b.get('store_fetch_and_upload_s', 0):.2f} s | "
                f"{b.get('trainer_transactions_s', 0):.2f} s | {b.get('verifier_replay_s', 0):.2f} s | "
                f"{b.get('waiting_s', 0):.2f} s | {r.get('blocks')} | {r.get('gas_total', 0):,} | "
                f"{OUTCOMES.get(r.get('outcome'), r.get('outcome'))} |")
    compute = [c for c in section.get("compute", []) if "measured_fraction_cpu" in c]
    if compute:
        out += ["", "Verifier compute measured against the trainer's (one member doing everything a verifier "
                "does: fetch and hash the starts, replay, data root, final checkpoint):", "",
                "| design | S | k | s | M | replay fraction (s+1)/M | measured, CPU | detection of 10% faked |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in compute:
            out.append(f"| {c['design']} | {c['steps_per_round']} | {c['segment_steps']} | {c['samples']} | "
                       f"{c['segments']} | {c['replay_fraction']:.1%} | {c['measured_fraction_cpu']:.1%} | "
                       f"{c.get('detection_counted', float('nan')):.1%} |")
    return "\n".join(out) if out else generic_table(section)


OUTCOMES = {1: "accepted", 2: "fraud", 3: "void", 4: "expired", 5: "abandoned"}
RENDERERS["rounds"] = render_rounds
RENDERERS["dapp"] = lambda section: generic_table(section)


def gpu_check(report: Path) -> str:
    """The engine's GPU determinism check (bench/gpu_check.md), quoted without its title."""
    if not report.exists():
        return pending("the engine's GPU determinism check (`scripts/gpu_check.sh`) → `bench/gpu/gpu_check.md` "
                       "(needs a machine with a GPU)")
    body = [l for l in report.read_text().splitlines() if not l.startswith("# ")]
    rel = report.relative_to(report.parents[1]) if len(report.parents) > 1 else report
    return "\n".join(body).strip() + f"\n\nSource: `bench/{rel.as_posix().split('bench/')[-1]}` (the engine's GPU determinism check)."
