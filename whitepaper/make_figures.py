"""Regenerate the whitepaper's figures and numbers: `make whitepaper`.

    .venv/bin/python whitepaper/make_figures.py            # full setting
    .venv/bin/python whitepaper/make_figures.py --tiny     # seconds; what the test runs

Reads the default parameters from TaskSpec.preset("demo") (what `trainchain spec init` writes), the measured numbers from
bench/results.json (`make bench`), computes the analysis (analysis.py) and runs the
simulation (simulate.py, on node/protocol.py's rules). Writes figures/*.png and
rewrites the text between `<!-- fill:KEY -->` and `<!-- /fill -->` in the paper's
markdown. A number that has not been measured yet is shown as pending, with the
command that produces it: never a guess.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import analysis  # noqa: E402
import bench_tables  # noqa: E402
import simulate  # noqa: E402

FILL = re.compile(r"(<!-- fill:([\w.-]+) -->\n)(.*?)(<!-- /fill -->)", re.S)


# ------------------------------------------------------------ parameters
def disputes_params(P: dict) -> dict:
    """default_params on a deployment with Disputes: the same task, the deployment's minimum trainer stake for that
    mode (DeployParams(disputes=True): protocol.DISPUTES_MIN_TRAINER_STAKE_WEI)."""
    from node.chain.contracts import DeployParams

    dp = DeployParams(disputes=True)
    return {**P, "min_trainer_stake_wei": max(dp.min_trainer_stake, P["task_min_trainer_stake_wei"]),
            "deployment_min_trainer_stake_wei": dp.min_trainer_stake}


def default_params() -> dict:
    """The defaults a task gets on-chain: `trainchain spec init`'s TaskSpec.preset("demo") mapped by the
    node (node/chain/client.py)."""
    from node.chain.contracts import DeployParams
    from node.chain.records import TaskParams
    from node.engine.spec import TaskSpec

    spec = TaskSpec.preset("demo")
    tp = TaskParams.from_spec(spec)
    dp = DeployParams()
    return {
        "S": tp.steps_per_round, "k": tp.segment_steps, "M": tp.n_segments,
        "s": tp.samples, "c": tp.committee_size, "q": tp.quorum,
        "seal_delay_blocks": tp.seal_delay_blocks,
        "windows": {"reveal (trainer, starts and ends)": tp.reveal_window,
                    "commit verdicts": tp.commit_verdicts_window, "reveal verdicts": tp.reveal_verdicts_window},
        "trainer_reward_wei": tp.trainer_reward_wei, "verifier_reward_wei": tp.verifier_reward_wei,
        "trainer_slash_bps": tp.trainer_slash_bps, "fraud_reward_bps": tp.fraud_reward_bps,
        "verifier_slash_bps": tp.verifier_slash_bps, "no_show_slash_bps": tp.no_show_slash_bps,
        # the least a trainer of this task can have at stake: the deployment's minimum or the task's, if higher
        "min_trainer_stake_wei": max(dp.min_trainer_stake, tp.min_trainer_stake_wei),
        "deployment_min_trainer_stake_wei": dp.min_trainer_stake, "task_min_trainer_stake_wei": tp.min_trainer_stake_wei,
        "min_verifier_stake_wei": dp.min_verifier_stake,
        "unbonding_blocks": dp.unbonding_blocks,
        "threads": spec.runtime.threads, "torch": spec.runtime.torch_version,
        "model": spec.model.model_dump(), "batch_size": spec.batch_size,
    }


def eth(wei: int) -> str:
    return f"{wei / 1e18:g} ETH"


def params_table(P: dict) -> str:
    m = P["model"]
    rows = [
        ("steps per round", "`steps_per_round`", "S", P["S"]), ("steps per segment", "`segment_steps`", "k", P["k"]),
        ("segments per round", "", "M = S/k", P["M"]),
        ("checked segments per round", "`samples`", "s", simulate.describe_sample_count(P)),
        ("committee size", "`committee_size`", "c", P["c"]),
        ("reveals for a valid round", "`quorum`", "q", P["q"]),
        ("seal delay (blocks)", "`seal_delay_blocks`", "", P["seal_delay_blocks"]),
        *[(f"{name} window (blocks)", f"`{key}`", "", v) for (name, v), key in
          zip(P["windows"].items(), ("reveal_window", "commit_verdicts_window", "reveal_verdicts_window"))],
        ("trainer reward per accepted round", "`trainer_reward_wei`", "R", eth(P["trainer_reward_wei"])),
        ("reward per majority verifier", "`verifier_reward_wei`", "", eth(P["verifier_reward_wei"])),
        ("trainer slash on fraud (of its stake)", "`trainer_slash_bps`", "", f"{P['trainer_slash_bps'] / 100:g} %"),
        ("share of that slash to the majority", "`fraud_reward_bps`", "", f"{P['fraud_reward_bps'] / 100:g} %"),
        ("minority verifier slash", "`verifier_slash_bps`", "", f"{P['verifier_slash_bps'] / 100:g} %"),
        ("missed duty slash", "`no_show_slash_bps`", "", f"{P['no_show_slash_bps'] / 100:g} %"),
        ("minimum trainer / verifier stake (deployment)", "StakeManager", "",
         f"{eth(P['deployment_min_trainer_stake_wei'])} / {eth(P['min_verifier_stake_wei'])}"),
        ("minimum trainer stake to commit to this task", "`min_trainer_stake`", "",
         eth(P["task_min_trainer_stake_wei"])),
        ("unbonding delay (blocks)", "StakeManager", "", P["unbonding_blocks"]),
        ("model", "TaskSpec", "", f"GPT, {m['n_layer']} layers, d = {m['n_embd']}, {m['n_head']} heads, "
                                  f"context {m['block_size']}, batch {P['batch_size']}"),
        ("replay runtime", "TaskSpec", "", f"torch {P['torch']}, {P['threads']} thread(s)"),
    ]
    lines = ["| parameter | on-chain name | symbol | default |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


# ------------------------------------------------------------ detection
def detection_rows(P: dict, tiny: bool) -> tuple[list[dict], str]:
    """P(detect) for a few (M, s, b): approximation, hypergeometric, exact rule, Monte Carlo."""
    trials = 300 if tiny else 4000
    settings = [(P["M"], P["s"])] + ([] if tiny else [(32, 4), (64, 8)])
    rows = []
    for M, s in settings:
        random_s = simulate.random_sample_count(M, s)
        for b in sorted({1, 2, max(1, (M - 1) // 4)}):
            if b > analysis.candidate_segments(M) or random_s < 1:
                continue
            bad = analysis.bad_set(M, b, "spread")
            rows.append({
                "M": M, "s": s, "random": random_s, "b": b, "f": b / M,
                "approx": analysis.detection_binomial(b / M, random_s),
                "hyper": analysis.detection_hypergeometric(analysis.candidate_segments(M), b, random_s),
                "exact": analysis.detection_nonadjacent(M, random_s, bad),
                "worst": analysis.detection_nonadjacent(M, random_s, analysis.bad_set(M, b, "worst", random_s)),
                "mc": simulate.measured_detection(M, s, bad, trials),
                "trials": trials,
            })
    lines = ["| M | samples (random + last) | bad b | f = b/M | 1−(1−f)^s | hypergeometric, M−1 candidates | exact, spread | exact, worst layout | rule, Monte Carlo |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['M']} | {r['random']} + 1 | {r['b']} | {r['f']:.3f} | {r['approx']:.3f} | {r['hyper']:.3f} | "
                     f"{r['exact']:.3f} | {r['worst']:.3f} | {r['mc']:.3f} ({r['trials']} seeds) |")
    note = ("\nBad segments sit among the randomly sampled ones (a bad last segment is always "
            "caught). `exact` assumes the random samples are uniform over non-adjacent sets; "
            "`rule, Monte Carlo` draws them with `node/protocol.py` on that many seeds. "
            "Source: `make whitepaper` (`whitepaper/analysis.py`, `whitepaper/simulate.py`).")
    return rows, "\n".join(lines) + "\n" + note


def figure_detection(P: dict, out: Path, tiny: bool) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    M = 64 if not tiny else max(P["M"], 16)
    fs = [i / 100 for i in range(0, 101, 2)]
    for s in (1, 2, 4, 8, 16):
        if M < 2 * s + 1:  # compute_samples needs M >= 2s+1
            continue
        line, = ax.plot(fs, [analysis.detection_binomial(f, s) for f in fs], label=f"s = {s}")
        bs = [b for b in range(1, analysis.candidate_segments(M) + 1, max(1, M // 12))]
        ax.plot([b / M for b in bs],
                [analysis.detection_nonadjacent(M, s, analysis.bad_set(M, b, "spread")) for b in bs],
                "o", ms=3.5, color=line.get_color())
        if s in (2, 8):
            trials = 150 if tiny else 1500
            mc_bs = bs[:: max(1, len(bs) // 5)]
            ax.plot([b / M for b in mc_bs],
                    [simulate.measured_detection_random(M, s, analysis.bad_set(M, b, "spread"), trials) for b in mc_bs],
                    "x", ms=6, color=line.get_color())
    ax.set_xlabel("fraction f of bad segments")
    ax.set_ylabel("P(detect) by the random samples")
    ax.set_title(f"Detection: lines 1−(1−f)^s, dots exact rule, × protocol rule (M = {M})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "detection.png", dpi=120)
    plt.close(fig)


def segment_gap_note(P: dict) -> str:
    return simulate.describe_unchecked_segments(P) + "\n\n" + simulate.describe_tight_parameters(P)


# ------------------------------------------------------------ stake
def stake_rows(P: dict) -> str:
    M = P["M"]
    random_s = simulate.random_sample_count(M, P["s"])
    R = P["trainer_reward_wei"] / 1e18
    stake = P["min_trainer_stake_wei"] / 1e18
    D = stake * P["trainer_slash_bps"] / 10_000
    lines = ["| forged segments b (worst layout) | P(detect), exact rule | minimum slash for a forgery worth V | "
             "largest V deterred at the defaults: p·(R+D)/(1−p) |", "|---|---|---|---|"]
    for b in sorted({1, 2, max(1, analysis.candidate_segments(M) // 2)}):
        if b > analysis.candidate_segments(M):
            continue
        p = analysis.detection_nonadjacent(M, random_s, analysis.bad_set(M, b, "worst", random_s))
        lines.append(f"| {b} of {M} | {p:.3f} | {(1 - p) / p:.2f}·V − R | {p * (R + D) / (1 - p):.3f} ETH |")
    return (f"At the defaults: R = {R:g} ETH, minimum trainer stake {stake:g} ETH (the larger of the deployment's, "
            f"`node/chain/contracts.py: DeployParams`, and the task's `min_trainer_stake`), fraud slash {P['trainer_slash_bps'] / 100:g} %, so D = {D:g} ETH. Skipping work "
            f"is a loss whenever R + D = {R + D:g} ETH exceeds the compute cost of a round.\n\n" + "\n".join(lines) +
            "\n\nSource: `make whitepaper` (`whitepaper/analysis.py: min_stake, detection_nonadjacent`).")


def figure_min_stake(out: Path, tiny: bool) -> str:
    """Draws Figure 2; returns the sentence on where worst-case detection peaks."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    M = 16 if tiny else 64
    one: list[tuple[int, float]] = []
    for b in (1, 2, 4):
        xs, ys = [], []
        for s in range(1, (M - 1) // 2):
            if M < 2 * s + 1:  # compute_samples needs M >= 2s+1
                break
            p = analysis.detection_nonadjacent(M, s, analysis.bad_set(M, b, "worst", s))
            xs.append((s + 1) / M)
            ys.append(analysis.min_stake(p, reward=0.0, value_if_accepted=1.0))
            if b == 1:
                one.append((s, p))
        ax.plot(xs, ys, label=f"{b} forged segment(s) of {M}")
    xs = [i / 100 for i in range(2, 51)]
    ax.plot(xs, [(1 - x) / x for x in xs], "k--", lw=0.8, label="(1−σ)/σ")
    ax.set_yscale("log")
    ax.set_xlabel("sampled fraction σ = (s+1)/M")
    ax.set_ylabel("minimum slash / value of the forgery")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "min_stake.png", dpi=120)
    plt.close(fig)
    s_best, p_best = max(one, key=lambda sp: sp[1])
    s_last, p_last = one[-1]
    return (f"With the forgery placed where the rule looks least (the least-sampled position), detection of "
            f"one forged segment out of M = {M} peaks at s = {s_best} (σ = {(s_best + 1) / M:.2f}, p = {p_best:.3f}) "
            f"and falls again to p = {p_last:.3f} at s = {s_last}, next to the tight limit M = 2s+1: the "
            "non-adjacent draw then concentrates on every other segment. Beyond about a third of the segments, "
            "more samples make the worst case worse; a task should raise M rather than s. Source: `make "
            "whitepaper` (`whitepaper/make_figures.py: figure_min_stake`).")


# ------------------------------------------------------------ committee
def collusion_table(P: dict) -> str:
    N = 100
    need = simulate.colluders_needed_to_capture(P["c"])
    lines = [f"Active set N = {N} verifiers, committee c = {P['c']} (fraud is accepted when colluders are "
             f"at least {need} of the {P['c']} reveals):", "",
             "| colluding fraction α | P(colluders capture the committee) |", "|---|---|"]
    for A in (10, 20, 33, 45):
        lines.append(f"| {A / N:.2f} | {analysis.p_colluding_majority(N, A, P['c'], need):.4f} |")
    return "\n".join(lines) + "\n\nSource: `make whitepaper` (`whitepaper/analysis.py: p_colluding_majority`)."


def attacks_table(P: dict) -> str:
    """Issue #13's numbers: committee grinding and abandon-and-re-roll, before and after the fixes."""
    from node import protocol
    from node.chain.contracts import DeployParams

    dp = DeployParams()
    need = simulate.colluders_needed_to_capture(P["c"])
    N, A, T = 5, 0, 10  # the review's measurement: 5 honest verifiers, no seat of its own, 10 throwaway stakes
    lines = [f"Committee grinding (attack 3), c = {P['c']}, capture = at least {need} seats; the trainer starts with "
             f"A of N seats and can stake up to T throwaway verifiers after the seed is public:", "",
             "| N | A | T | v1: draw when `seal` runs | now: draw over entries eligible at the commit block |", "|---|---|---|---|---|"]
    for n, a, t in ((N, A, T), (100, 10, 10), (100, 10, 50)):
        before = analysis.p_grinding_capture(n + a, a, P["c"], need, t, drawn_at_commit=False)
        after = analysis.p_grinding_capture(n + a, a, P["c"], need, t, drawn_at_commit=True)
        lines.append(f"| {n + a} | {a} | {t} | {before:.4f} | {after:.4f} |")
    random_s = simulate.random_sample_count(P["M"], P["s"])
    p = analysis.detection_nonadjacent(P["M"], random_s, analysis.bad_set(P["M"], 1, "worst", random_s))
    stake = P["min_trainer_stake_wei"]
    miss_now = protocol.compute_trainer_miss_bps(P["trainer_slash_bps"], P["no_show_slash_bps"])
    ok_before, lost_before = analysis.reroll_cost(stake, p, P["no_show_slash_bps"], fresh_draw=True)
    ok_after, lost_after = analysis.reroll_cost(stake, p, miss_now, fresh_draw=False)
    lines += ["", f"Abandon and re-roll (attack 4), a one-segment forgery at the worst position (detection p = {p:.3f} "
              f"per draw), stake {eth(stake)}:", "",
              "| rule | withholding costs | P(forgery finally accepted) | expected stake lost |", "|---|---|---|---|",
              f"| v1: fresh draw per re-commit | {P['no_show_slash_bps'] / 100:g}% (no-show) | {ok_before:.3f} | {eth(int(lost_before))} |",
              f"| now: a re-commit reuses the first seed | {miss_now / 100:g}% (fraud slash) | {ok_after:.3f} | {eth(int(lost_after))} |",
              "", f"Deployment bounds (attacks 1-2): windows {dp.min_window_blocks}..{dp.max_window_blocks} blocks, no-show "
              f"slash <= {dp.max_no_show_slash_bps / 100:g}%, minority slash <= {dp.max_verifier_slash_bps / 100:g}%: "
              f"one round locks a drawn stake at most {protocol.compute_max_lock_blocks(128, dp.max_window_blocks)} blocks "
              f"(`compute_max_lock_blocks`)."]
    return "\n".join(lines) + ("\n\nSource: `make whitepaper` (`whitepaper/analysis.py: p_grinding_capture, reroll_cost`; "
                               "`node/protocol.py: compute_trainer_miss_bps, compute_max_lock_blocks`).")


def figure_collusion(out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    N = 200
    for alpha in (0.1, 0.2, 0.33, 0.45):
        A = round(alpha * N)
        cs = list(range(1, 32, 2))
        ax.plot(cs, [analysis.p_colluding_majority(N, A, c, simulate.colluders_needed_to_capture(c)) for c in cs],
                marker="o", ms=3, label=f"α = {alpha}")
    ax.set_yscale("log")
    ax.set_ylim(1e-9, 1)
    ax.set_xlabel("committee size c")
    ax.set_ylabel("P(colluders capture the committee)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "collusion.png", dpi=120)
    plt.close(fig)


# ------------------------------------------------------------ compute
def compute_table(P: dict, bench: dict | None) -> str:
    S, k, c = P["S"], P["k"], P["c"]
    checked = simulate.random_sample_count(P["M"], P["s"]) + 1
    per = checked * k / S
    text = (f"| S | k | checked segments | per member (s+1)·k/S | committee c·(s+1)·k/S |\n|---|---|---|---|---|\n"
            f"| {S} | {k} | {checked} | {per:.3f} | {c * per:.3f} (c = {c}) |\n\n"
            "Plus, per member, the sha256 of the S batches and of the fetched states. Source: `make whitepaper` "
            "(`whitepaper/analysis.py: verifier_compute_fraction`).")
    demo = ((bench or {}).get("engine") or {}).get("sizes", {}).get("demo")
    if demo:
        step = bench_tables.step_times(demo)[1]
        text += (f"\n\nIn seconds, with the measured deterministic step of the default model ({step * 1e3:.1f} ms, "
                 f"{demo['threads']} thread; `make bench` → `bench/engine.md`): training a round takes "
                 f"S × step = {S * step:.2f} s, one seat replays {checked * k} steps = {checked * k * step:.2f} s, "
                 f"the committee {c * checked * k * step:.2f} s.")
    else:
        text += "\n\n*Seconds per round: pending `make bench` → `bench/engine.md` (the deterministic step time).*"
    return text


def figure_compute(P: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    S, k = 1024, 8
    ss = list(range(1, 33))
    per = [analysis.verifier_compute_fraction(S, k, s) for s in ss]
    ax.plot(ss, per, label="per member", color="k")
    for c in (3, 5, 7):
        ax.plot(ss, [analysis.verifier_compute_fraction(S, k, s, c) for s in ss], label=f"committee, c = {c}")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"random samples s (S = {S}, k = {k})")
    ax.set_ylabel("replayed steps / trained steps")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "verifier_compute.png", dpi=120)
    plt.close(fig)


# ------------------------------------------------------------ simulation
def figure_simulation(result: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, role in zip(axes, ("trainer", "verifier")):
        for name, series in sorted(result["cumulative_profit_eth"].items()):
            if name.startswith(role):
                ax.plot(range(1, len(series) + 1), series, label=name.split(": ", 1)[1])
        ax.set_title(f"{role}s (mean per agent)", fontsize=10)
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative profit (ETH)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "simulation.png", dpi=120)
    plt.close(fig)


def disputes_fills(P: dict, rounds: int) -> tuple[str, str]:
    """§5.6 with disputes (§3.7): scenarios A (a third lazy) and B (a third colluding), each next to v1's
    tally on the same population and seed (v1 at its own defaults, disputes at a Disputes deployment's: the minimum
    trainer stake differs); A again with lazy jurors that replay. `rounds`: simulate.DISPUTES_ROUNDS_FACTOR times v1's
    runs (the forgers' margins need it). Lazy jurors copy the trainer's answer in A and B
    (the worst case for catching cheats). A and B again with watchers (every honest verifier watching at
    simulate.default_watch_share), on the same rounds, and the stake search with them."""
    Pd = disputes_params(P)
    runs = {}
    share = simulate.default_watch_share(P["M"])
    for key, pop, seed, lazy, watch in (("a", simulate.DISPUTES_A, 7, "copies the trainer", 0.0),
                                        ("b", simulate.DISPUTES_B, 8, "copies the trainer", 0.0),
                                        ("a_replay", simulate.DISPUTES_A, 7, "by a replay", 0.0),
                                        ("a_watch", simulate.DISPUTES_A, 7, "copies the trainer", share),
                                        ("b_watch", simulate.DISPUTES_B, 8, "copies the trainer", share)):
        v1 = runs[key[0]][0] if key.endswith("_watch") else simulate.run(P, rounds=rounds, seed=seed, population=pop)
        runs[key] = (v1, simulate.run_disputes(Pd, rounds=rounds, seed=seed, population=pop, lazy_juror=lazy,
                                               watch_share=watch))
    table = "\n\n".join(simulate.disputes_table_markdown(v1, d, title) for (v1, d), title in (
        (runs["a"], "Scenario A with disputes, a third of the verifiers lazy (copying the trainer's answer as jurors)."),
        (runs["b"], "Scenario B with disputes, a third of the verifiers colluding."),
        (runs["a_replay"], "Scenario A with disputes, lazy jurors answering by a replay."),
        (runs["a_watch"], "Scenario A with disputes and watchers (the same rounds as the first table)."),
        (runs["b_watch"], "Scenario B with disputes and watchers (the same rounds as the second table).")))
    table += (f"\n\nMinimum trainer stake: {P['min_trainer_stake_wei'] / 1e18:g} ETH in the v1 columns (a v1 deployment's "
              f"default), {Pd['min_trainer_stake_wei'] / 1e18:g} ETH in the disputes columns (a deployment with Disputes: "
              "`DeployParams(disputes=True)`, the stake bullet below says why). "
              "v1 columns: the same population and seed under the majority tally (`simulate.run`). A trainer's "
              "'convicted / slashed' counts rounds ending in fraud; 'caught by an honest member (escaped)' the rounds "
              "in which an honest member held a check covering a bad segment (and, of those, the rounds not convicted); "
              "a verifier's 'slashed' counts every loss: a seat on the side the outcome proves wrong, a juror whose "
              "answer was the losing side's, a dispute it opened and lost (the bond); 'abstained': jury seats whose "
              "answer was neither party's (unpaid, unslashed); 'appeals made (won)': the jury counts a party of that "
              "strategy lost and appealed (honest parties appeal every one, others none: `simulate.is_appealing`), "
              "and of those the ones the appeal jury reversed; 'appeal jury seats': seats on appeal juries (every "
              "verifier but the challenger here: 59 ≤ `APPEAL_JURY_MAX`), whose verdict is final and settles both "
              "juries (appeal bond `compute_appeal_bond`, the appellant's gas taken as `APPEAL_GAS_ALLOWANCE`; the "
              "bond's rest after the appeal jury's pay back to a winning appellant, else to the other party). Profit per round: per round trained (± one standard "
              "error), or per committee seat (jury income and losses included; with watchers, watching too). "
              "With watchers: 'found by a watcher only' counts the rounds in which a watcher found a bad segment and no "
              "honest member's check covered one; 'convicted by a watcher' the rounds whose first conviction was a "
              "watcher's dispute (also rounds in which an honest member's dispute escaped its jury); 'watch disputes "
              "opened (lost)' the honest verifiers' `open_watch` disputes. The runs "
              "with watchers play the same rounds as those without (the watchers draw from their own random stream). "
              "Source: `make whitepaper` (`whitepaper/simulate.py: run_disputes`, rules from `node/protocol.py`).")
    findings = simulate.disputes_findings_markdown(Pd, runs["a"][1], runs["b"][1], runs["a_replay"][1])
    found = simulate.disputes_deterring_stake(P, rounds)
    v1_high = (simulate.run({**P, "min_trainer_stake_wei": found[0]}, rounds=rounds, seed=7, population=simulate.DISPUTES_A)
               if found else None)
    stake = simulate.disputes_stake_markdown(P, found, v1_high, Pd["deployment_min_trainer_stake_wei"])
    found_w = simulate.disputes_deterring_stake(P, rounds, watch_share=share)
    watched = simulate.watchers_findings_markdown(Pd, runs["a_watch"][1], runs["b_watch"][1], runs["a"][1],
                                                  runs["b"][1], found_w, P["min_trainer_stake_wei"])
    head, sep, source = findings.rpartition("\n\nSource: ")
    w_head = watched.rpartition("\n\nSource: ")[0]
    return table, head + "\n" + stake + "\n" + w_head + sep + source


# ------------------------------------------------------------ storage
def measure_checkpoints() -> list[dict]:
    """Checkpoint sizes, measured by the engine in a fresh (runtime-pinned) process."""
    out = subprocess.run([sys.executable, str(HERE / "measure_checkpoint.py")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"make_figures: measure_checkpoint.py failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def storage_table(P: dict, checkpoints: list[dict] | None) -> str:
    M, c = P["M"], P["c"]
    checked = simulate.random_sample_count(M, P["s"]) + 1
    lines = []
    if checkpoints is None:
        lines.append("*Checkpoint sizes are measured only in the full run (`make whitepaper`), not with --tiny.*")
    else:
        lines += ["| model | parameters | one state file | write + hash | trainer keeps per round (M+1 states) | "
                  "published per round (checked starts + final) |", "|---|---|---|---|---|---|"]
        for ck in checkpoints:
            mb = ck["bytes"] / 1e6
            lines.append(f"| {ck['model']} | {ck['params']:,} | {mb:.2f} MB | {ck['write_and_hash_s']:.2f} s | "
                         f"{(M + 1) * mb:.1f} MB | {(checked + 1) * mb:.1f} MB |")
        lines.append("")
        lines.append("A state file holds the weights and both Adam moments in fp32 plus an int64 step per "
                     "tensor: about 12 bytes per parameter. Source: `make whitepaper` "
                     "(`whitepaper/measure_checkpoint.py`, the engine's `make_genesis`/`save_state`).")
    lines.append("")
    lines.append(f"On-chain, a round stores two roots, {checked} sample indices, {c} committee addresses, "
                 f"{checked} start and {checked} end hashes, the final CID, {c} verdict commitments and "
                 f"{c} pairs of verdict flags (TrainingRounds storage); the gas table above prices it.")
    return "\n".join(lines)


# ------------------------------------------------------------ determinism
def determinism_table(tiny: bool) -> str:
    if tiny:
        return "*Measured only in the full run (`make whitepaper`), not with --tiny.*"
    preset, steps = "demo", 6
    out = subprocess.run([sys.executable, str(HERE / "measure_determinism.py"), "--preset", preset, "--steps", str(steps)],
                         capture_output=True, text=True, cwd=ROOT, timeout=1200)
    if out.returncode != 0:
        raise RuntimeError(f"make_figures: measure_determinism.py failed: {out.stderr.strip()[-800:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    lines = ["| verifier process | what changes | bit-identical states |", "|---|---|---|"]
    for v in data["variants"]:
        if v["variant"] == "reference":
            continue
        span = f"steps {v['first_step']}–{v['first_step'] + v['steps'] - 1}"
        lines.append(f"| {v['variant']} | {v['changes']} | {v['identical_steps']}/{v['steps']} ({span}) |")
    return ("\n".join(lines) + f"\n\nModel: the `{preset}` TaskSpec preset; reference: the trainer's process in "
            f"the pinned runtime, {steps} steps from one genesis file; each row is a fresh process replaying "
            "the same steps from the same file. Source: `make whitepaper` "
            "(`whitepaper/measure_determinism.py`, the engine's `Trainer.step` and `state_hash`).")


# ------------------------------------------------------------ provenance
def provenance(bench: dict | None) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    machine = (bench or {}).get("machine")
    m = f"{machine.get('cpu')}, {machine.get('cores')} cores, Python {machine.get('python')}" if machine else \
        "no bench/results.json yet (run `make bench`)"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"*Numbers generated {now} at commit `{commit}`; benchmark machine: {m}.*"


# ------------------------------------------------------------ fill
def diloco_table(path: Path, figures: Path) -> str:
    """§3.6: model quality of verified DiLoCo epochs at tiny scale (bench/diloco.json, `python -m bench.diloco`),
    and figures/diloco.png: eval loss against tokens and against training wall time."""
    if not path.exists():
        return bench_tables.pending("`python -m bench.diloco` → `bench/diloco.md`")
    res = json.loads(path.read_text())
    runs = res["runs"]
    single = runs["single"]["eval_loss"]
    from bench.diloco import rule_of

    # runs since the parallel wall time was recorded plot it (one machine per trainer); older ones the sequential sum
    parallel = all("parallel_s" in c for r in runs.values() for c in r["curve"])
    seconds = "parallel_s" if parallel else "train_s"
    lines = ["| run | trainers | inner moments | tokens | eval loss | vs one trainer | vs data-parallel N× batch |",
             "|---|---|---|---|---|---|---|"]
    for key, r in runs.items():
        n = 1 if key == "single" else int(key.split("-")[1])
        dp = runs.get(f"dp-{n}")
        vs_dp = f"{(r['eval_loss'] / dp['eval_loss'] - 1) * 100:+.1f} %" if key.startswith("diloco") and dp else ""
        lines.append(f"| {key} | {n} | {rule_of(key, res)} | {r['curve'][-1]['tokens']:,} | {r['eval_loss']:.3f} | "
                     f"{(r['eval_loss'] / single - 1) * 100:+.1f} % | {vs_dp} |")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, r in runs.items():
        style = "--" if key.startswith("dp") else "-"
        toks = [c["tokens"] for c in r["curve"]]
        wall, t = [], 0.0
        for c in r["curve"]:
            t += c[seconds]
            wall.append(t)
        ax1.plot(toks, [c["eval_loss"] for c in r["curve"]], style, label=key)
        ax2.plot(wall, [c["eval_loss"] for c in r["curve"]], style, label=key)
    ax1.set_xlabel("tokens trained (all trainers)")
    ax2.set_xlabel("training s, a machine per trainer (dp-N: ideal)" if parallel
                   else "training seconds (slots one after another on one core)")
    # the first epochs' losses (5 and more) would flatten the differences that matter: start from 1/16 of the run
    top = max(r["curve"][len(r["curve"]) // 16]["eval_loss"] for r in runs.values()) + 0.1
    bottom = min(r["eval_loss"] for r in runs.values()) - 0.05
    for ax in (ax1, ax2):
        ax.set_ylabel("held-out eval loss")
        ax.set_ylim(bottom, top)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures / "diloco.png", dpi=120)
    plt.close(fig)
    sweep_path = path.with_name("diloco-sweep.json")
    if sweep_path.exists():
        rows = sorted(json.loads(sweep_path.read_text()), key=lambda r: r["eval_loss"])
        n = rows[0]["n"]
        # H decides which batches share a sequential step, so each row is compared with data-parallel at its own H
        # (bench/diloco-checks.json, the preset seed); a row without that run says so
        checks_path = path.with_name("diloco-checks.json")
        checks = json.loads(checks_path.read_text()) if checks_path.exists() else []
        from bench.diloco import compute_dp_at

        dp_at = compute_dp_at(checks, n)
        lines += ["", f"*The knobs tried, N = {n}, 512 sequential steps each (H x epochs), moments averaged, the preset's "
                  "seed (`python -m bench.diloco sweep` → `bench/diloco-sweep.json`; other seeds in bench/diloco.md):*", "",
                  f"| H | outer lr | Nesterov μ | eval loss | vs dp-{n} at the same H |", "|---|---|---|---|---|"]
        for r in rows:
            vs = f"{(r['eval_loss'] / dp_at[r['H']] - 1) * 100:+.1f} %" if r["H"] in dp_at else "not measured"
            lines.append(f"| {r['H']} | {r['outer_lr']} | {r['outer_momentum']} | {r['eval_loss']:.3f} | {vs} |")
    return ("\n".join(lines) + f"\n\nH = {res['H']} inner steps per slot, {res['epochs']} epochs "
            f"({res['H'] * res['epochs']} sequential steps for every run), outer lr {res.get('outer_lr')}, Nesterov momentum "
            f"{res.get('outer_momentum')}; demo model (2 layers, d = 64), batch {res['batch_size']} x {res['block_size']} tokens. "
            "`dp-N`: synchronous data-parallel training on the same tokens (N× batch, the same number of sequential steps), "
            "DiLoCo's own comparison; a run named `-average` or `-reset` combines the inner moments by that rule "
            f"instead of `{res.get('inner_moments', 'average')}`"
            + ("; wall time: each epoch's slowest slot plus its outer step (one machine per trainer, chain time left "
               "out), and for dp-N its compute split N ways with a free per-step all-reduce (a lower bound)"
               if parallel else "") + ". Source: `python -m bench.diloco` → "
            "`bench/diloco.md`, `bench/diloco.json`.\n\n![DiLoCo quality](figures/diloco.png)\n\n*Figure 7 — Held-out "
            "eval loss of verified DiLoCo epochs against tokens and against training wall time (`bench/diloco.json`, drawn by "
            "`make whitepaper`).*")


def diloco_h_table(bench_dir: Path) -> str:
    """§3.6: H against quality at 4× the headline's sequential steps (bench/diloco-H<H>-2048*.json: `DILOCO_TAG=-H<H>-2048
    DILOCO_H=<H> DILOCO_EPOCHS=<2048/H> DILOCO_NS=...`), each DiLoCo run against the data-parallel run of its own file
    (or, for a file with none, of the file with the same H and no suffix)."""
    files = sorted(bench_dir.glob("diloco-H*-2048*.json"))
    if not files:
        return bench_tables.pending("`DILOCO_TAG=-H16-2048 DILOCO_H=16 DILOCO_EPOCHS=128 python -m bench.diloco`")
    results = {f.stem: json.loads(f.read_text()) for f in files}
    from bench.diloco import rule_of

    rows = []
    for stem, res in results.items():
        runs = res["runs"]
        for key, r in runs.items():
            if not key.startswith("diloco"):
                continue
            n = int(key.split("-")[1])
            dp = runs.get(f"dp-{n}") or next((o["runs"][f"dp-{n}"] for o in results.values()
                                               if o["H"] == res["H"] and f"dp-{n}" in o["runs"]), None)
            single = runs.get("single") or next((o["runs"]["single"] for o in results.values()
                                                 if "single" in o["runs"]), None)
            rows.append((res["H"], n, res["epochs"], res.get("outer_lr"), res.get("outer_momentum"), rule_of(key, res),
                         r["eval_loss"], dp["eval_loss"] if dp else None, single["eval_loss"] if single else None))
    rows.sort(key=lambda r: (r[1], r[0], r[3], r[5] != "corrected", r[6]))
    pct = lambda a, b: f"{(a / b - 1) * 100:+.1f} %" if b else ""  # noqa: E731
    lines = ["| H | N | outer steps | outer lr | Nesterov μ | inner moments | eval loss | vs data-parallel N× batch | "
             "vs one trainer |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {h} | {n} | {e} | {lr} | {mu} | {rule} | {loss:.3f} | {pct(loss, dp)} | {pct(loss, one)} |"
              for h, n, e, lr, mu, rule, loss, dp, one in rows]
    steps = {res["H"] * res["epochs"] for res in results.values()}
    return ("\n".join(lines) + f"\n\n{'/'.join(f'{s:,}' for s in sorted(steps))} sequential steps for every row (4× the "
            "table above), the preset's seed, demo model; data-parallel N× batch over the same tokens at the same H "
            "(its batches grouped as the row's). Source: `DILOCO_TAG=-H<H>-2048 ... python -m bench.diloco` → "
            "`bench/diloco-H<H>-2048*.md`.")


def epochs_table(path: Path) -> str:
    """§3.6: throughput of verified DiLoCo epochs (bench/epochs.json, `python -m bench.epochs`): the steady-state
    period between epoch closes against the slowest slot's pure training, and where an epoch's blocks go."""
    from bench.epochs import finals_from

    if not path.exists():
        return bench_tables.pending("`python -m bench.epochs` → `bench/epochs.md`")
    res = json.loads(path.read_text())
    if not res or "steady" not in res[0]:
        return bench_tables.pending("`python -m bench.epochs` (the steady-state measure) → `bench/epochs.md`")
    pct = lambda x: f"{x * 100:.0f} %" if x is not None else "n/a"  # noqa: E731
    lines = ["| N | H | cores | period (s) | slowest slot's training (s) | steady overhead | overhead, commit to commit | "
             "verified steps / s | vs one trainer's pure rate | not hidden: commit → training ahead starts (blocks) | "
             "hidden: → finalized + aggregation + next claim (blocks) | verifier CPU (s) | co-trainers' final states from |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res:
        cores = ((r.get("bench") or {}).get("machine") or {}).get("cpus") or 2  # runs before the record: the 2-core box
        s, later = r["steady"], [e for e in r["epochs"] if e["epoch"] >= 1] or r["epochs"]

        def blocks(keys, eps=later):
            xs = [sum(e[k] for k in keys) for e in eps if all(e.get(k) is not None for k in keys)]
            return f"{min(xs)}–{max(xs)}" if xs and min(xs) != max(xs) else (f"{xs[0]}" if xs else "n/a")
        # after the start of training ahead, over the epochs that recorded it (not a run's last: nothing is trained
        # ahead of it); older runs recorded none and started at the reveal
        recorded = [e for e in later if e.get("to_ahead_start") is not None]
        start = (lambda e: e["to_ahead_start"]) if recorded else (lambda e: e.get("to_ends_revealed"))  # noqa: E731
        hidden = [e["slot_rounds"] - start(e) + e["aggregation"] + (e.get("from_prev_close") or 0)
                  for e in (recorded or later) if None not in (e.get("slot_rounds"), start(e), e.get("aggregation"))]
        hid = (f"{min(hidden)}–{max(hidden)}" if min(hidden) != max(hidden) else f"{hidden[0]}") if hidden else "n/a"
        # runs since training ahead may start at the commit record where it started (every epoch but the last, which
        # trains nothing ahead); older runs started it at the ends reveal
        started = [e for e in r["epochs"] if e.get("to_ahead_start") is not None]
        not_hidden = blocks(["to_ahead_start"], started) if started else blocks(["to_ends_revealed"])
        by_commits = f"**{pct(r['steady_commits']['overhead'])}**" if r.get("steady_commits") else "n/a (older run)"
        lines.append(f"| {r['n']} | {r['H']:,} | {cores} | {s['period_s']} | {s['slowest_train_s']} | **{pct(s['overhead'])}** | "
                     f"{by_commits} | {s['steps_per_s']} | {s['ratio']}× | {not_hidden} | {hid} | {r['verifier_cpu_s']} | "
                     f"{finals_from(r)} |")
    epochs = max(len(r["epochs"]) for r in res)
    return ("\n".join(lines) + f"\n\n{epochs} epochs per run; LocalNet (anvil, 1 s blocks) on the 2-core machine "
            "(the N trainers, 3 verifiers and anvil sharing its cores) or, where cores says 16, on the GPU machine's 16 "
            "CPU cores (Intel Xeon; max(3, N) verifiers; the task pinned to that machine's own CPU runtime; each "
            "trainer a process of 1 thread); demo model. Period: the mean time "
            "between consecutive EpochClosed events (the pace with training ahead); overhead: Σ period / Σ the slowest "
            "slot's pure training of the same epochs − 1 (training measured under the run's load); verified steps / s "
            "over the periods, against one trainer's pure-training rate (N with no overhead). Blocks (epochs ≥ 1, "
            "range): the last slot commit → the block the next epoch's training ahead started (a trainer alone in its "
            "epoch starts at its own commit, 0; with co-trainers, at the last commit once they handed over their "
            "final states (the final handoff; co-trainers' final states from: handoff), else, or in runs before those "
            "rules, at the last final checkpoint revealed (ends reveal): those blocks add to the period), and the "
            "blocks after that start that the next slots' training covers (→ the last slot finalized, the "
            "aggregation, the close → the next epoch's first claim). Overhead, commit to commit: the same ratio over the periods between consecutive epochs' last "
            "slot commits (close-to-close periods of a 3-epoch run borrow from epoch 0's cold start). Source: "
            "`python -m bench.epochs` → `bench/epochs.md`, `bench/epochs.json`.")


def fill_paper(paper_dir: Path, fills: dict[str, str]) -> list[str]:
    """Rewrite every fill marker; returns the keys that had no value (left pending)."""
    unknown = []
    for md in sorted(paper_dir.glob("*.md")):
        text = md.read_text()

        def replace(m: re.Match) -> str:
            key = m.group(2)
            if key not in fills:
                unknown.append(key)
                body = f"*No generator for `{key}` in whitepaper/make_figures.py.*"
            else:
                body = fills[key]
            return m.group(1) + body.rstrip() + "\n" + m.group(4)

        new = FILL.sub(replace, text)
        if new != text:
            md.write_text(new)
    return unknown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="small settings (seconds): for tests")
    ap.add_argument("--figures", type=Path, default=HERE / "figures")
    ap.add_argument("--paper-dir", type=Path, default=HERE)
    ap.add_argument("--bench", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--rounds", type=int, default=None, help="simulated rounds (default 2000, tiny 60)")
    args = ap.parse_args(argv)

    args.figures.mkdir(parents=True, exist_ok=True)
    P = default_params()
    bench = json.loads(args.bench.read_text()) if args.bench.exists() else None

    fills = {"params_table": params_table(P) + "\n\nSource: `make whitepaper` (`TaskSpec.preset('demo')`, what `trainchain spec init` writes, mapped by "
                                               "`node/chain/contracts.py: TaskParams.from_spec`; stakes from "
                                               "`node/chain/contracts.py: DeployParams`)."}
    _, fills["detection_table"] = detection_rows(P, args.tiny)
    fills["segment_gap"] = segment_gap_note(P)
    fills["stake_table"] = stake_rows(P)
    fills["collusion_table"] = collusion_table(P)
    fills["attacks_table"] = attacks_table(P)
    fills["compute_table"] = compute_table(P, bench)
    fills["verifier_economics"] = simulate.verifier_economics_markdown(P)
    rounds = args.rounds or (60 if args.tiny else 2000)
    sim = simulate.run(P, rounds=rounds, seed=7)
    sim_rare = simulate.run(P, rounds=rounds, seed=8, population=simulate.RARE_CHEATING)
    fills["sim_table"] = (simulate.summary_markdown(sim, "Scenario A, many cheaters.") + "\n\n" +
                          simulate.summary_markdown(sim_rare, "Scenario B, rare cheating."))
    random_s = simulate.random_sample_count(P["M"], P["s"])
    p_worst = analysis.detection_nonadjacent(P["M"], random_s, analysis.bad_set(P["M"], 1, "worst", random_s))
    high = {**P, "min_trainer_stake_wei": max(P["min_trainer_stake_wei"], simulate.deterring_stake_wei(P, p_worst))}
    tradeoff = (simulate.stake_tradeoff_markdown(P, high, p_worst, sim, simulate.run(high, rounds=rounds, seed=7))
                if high["min_trainer_stake_wei"] > P["min_trainer_stake_wei"] else "")
    fills["sim_findings"] = simulate.findings_markdown(sim, sim_rare, P, tradeoff)
    fills["sim_disputes_table"], fills["sim_disputes_findings"] = disputes_fills(P, rounds * simulate.DISPUTES_ROUNDS_FACTOR)
    fills.update(bench_tables.all_tables(bench))
    fills["adversarial_table"] = bench_tables.adversarial_table(ROOT / "bench" / "adversarial.md")
    fills["determinism_table"] = determinism_table(args.tiny)
    fills["storage_table"] = storage_table(P, None if args.tiny else measure_checkpoints())
    fills["provenance"] = provenance(bench)
    fills["diloco_table"] = diloco_table(ROOT / "bench" / "diloco.json", args.figures)
    fills["epochs_table"] = epochs_table(ROOT / "bench" / "epochs.json")
    fills["diloco_h_table"] = diloco_h_table(ROOT / "bench")

    figure_detection(P, args.figures, args.tiny)
    fills["stake_peak"] = figure_min_stake(args.figures, args.tiny)
    figure_collusion(args.figures)
    figure_compute(P, args.figures)
    figure_simulation(sim, args.figures)
    made = {p.name for p in bench_tables.figures(bench, args.figures)}
    fills["step_time_figure"] = (
        "![Step time](figures/step_time.png)\n\n*Figure 6 — Seconds per training step, plain PyTorch vs the "
        "engine's deterministic step, by model size (`make bench` → `bench/results.json` → `engine`; drawn by "
        "`make whitepaper` → `whitepaper/figures/step_time.png`).*" if "step_time.png" in made else
        bench_tables.pending("`make bench` → `bench/engine.md`").replace("table", "figure"))

    unknown = fill_paper(args.paper_dir, fills)
    if unknown:
        print(f"make_figures: no generator for fill marker(s) {sorted(set(unknown))}", file=sys.stderr)
        return 1
    print(f"make_figures: wrote {len(list(args.figures.glob('*.png')))} figures to {args.figures} "
          f"and {len(fills)} fills in {args.paper_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
