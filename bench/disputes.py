"""Gas of a dispute (issue #15), move by move, against the span length and the jury size; a flag dispute; an
undisputed round with checks dealt out against v1's, per check:
`python -m bench.disputes` -> bench/disputes.md (not part of `make bench`).

A LocalNet (anvil automining; gas used does not depend on the base fee, only the bond's value does; the contracts deployed with DeployParams(disputes=True)),
rounds driven by tests/roundkit.py with one contradicting member; the dispute's moves sent with web3 from the dev
accounts; every juror commits and reveals (the most expensive juror's gas is reported). Span = (end leaf - start
leaf) · k steps of the disputed check (k = segment_steps). A span of at most MAX_SPAN_STEPS / 2 steps is a
one-segment check (x, x+1) with k = span; a longer one (up to MAX_SPAN_STEPS) is the last check (M-2, M) with
k = span / 2 (segment_steps <= MAX_SPAN_STEPS / 2: protocol.is_every_check_disputable), the round re-run until
its seed draws M-2.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from node import protocol as P

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))  # tests/roundkit.py (last: shadows nothing)
OUT = Path(__file__).resolve().parent / "disputes.md"
SPANS = (4, 64, 512)   # steps of the disputed span (512 = MAX_SPAN_STEPS: the last check (M-2, M) at k = 256)
JURIES = (3, 15)       # jurors (verifiers staked = jury + 1: the challenger is not a juror)
CAPTURE_JURIES = (3, 7, 9, 15, 21, 25)
CAPTURE_FRACTIONS = (0.1, 0.25, 1 / 3)
MOVES = ["open", "post_steps", "name_step", "draw_jury", "commit_vote", "reveal_answer", "reveal_vote", "resolve", "finalize"]


class FirstMemberContradicts(dict):
    def __bool__(self):  # RoundKit reads `verdicts or {}`
        return True

    def get(self, member, default=None):
        self.setdefault("first", member)
        return "contradict" if member == self["first"] else "agree"


@contextmanager
def staked_kit(n_verifiers: int, disputes: bool = True):
    """(net, w3, kit): a LocalNet (automining) deployed with or without Disputes, tests/roundkit.py's RoundKit on it:
    dev 0 deploys, dev 1 trains, dev 2.. verify, everyone staked. Stopped on exit."""
    from roundkit import RoundKit

    from node.chain.contracts import DeployParams
    from node.localnet import LocalNet

    with tempfile.TemporaryDirectory() as tmp:
        net = LocalNet(Path(tmp), block_time=None, deploy_params=DeployParams(disputes=disputes),
                       n_accounts=n_verifiers + 2).start()
        try:
            kit = RoundKit.on(net, net.dev[1], net.dev[2:2 + n_verifiers], net.store())
            kit.stake_all(trainer_stake=2 * P.DISPUTES_MIN_TRAINER_STAKE_WEI)  # above either deployment's minimum
            yield net, net.web3(), kit
        finally:
            net.stop()


def measure(span_steps: int, jury: int) -> dict[str, int]:
    from roundkit import SMALL_TASK

    from node.chain.contracts import contract
    from node.chain.contracts import send as send_tx
    from node.errors import TrainchainError

    with staked_kit(jury + 1) as (net, w3, kit):
        # k = span must keep every check disputable (the last spans 2k); a longer span is the last check (M-2, M)
        last = not P.is_every_check_disputable(span_steps)
        k = span_steps // 2 if last else span_steps
        task = replace(SMALL_TASK, steps_per_round=8 * k, segment_steps=k, reveal_window=50,
                       commit_verdicts_window=50, reveal_verdicts_window=50)
        task_id = kit.create_task(task)
        rounds = contract(w3, "TrainingRounds", net.deployment.addresses["TrainingRounds"]).functions
        disputes = contract(w3, "Disputes", net.deployment.addresses["Disputes"]).functions
        for _attempt in range(32):
            verdicts = FirstMemberContradicts()
            try:
                kit.run_round(task_id, verdicts=verdicts)
            except TrainchainError:
                pass  # finalize waits: the contradiction may be disputed
            round_id = rounds.round_count().call()
            samples = rounds.round_samples_of(round_id).call()
            if not last or samples[-1] == task.n_segments - 2:
                break
            # the seed did not draw M-2: close this round undisputed (past its reveal deadline), run another
            kit.mine(max(0, rounds.rounds(round_id).call()[9] - w3.eth.block_number) + 1)
            send_tx(w3, rounds.finalize(round_id), kit.deployer)
        else:
            raise RuntimeError(f"dispute bench: 32 rounds never drew M-2 (k = {k})")
        challenger = verdicts["first"]
        # a one-segment check (x, x+1): the first (s >= 1 random samples before the last); else the last (M-2, M)
        check = len(samples) - 1 if last else 0
        estimates = {}

        def send(w3, fn, sender, value=0):
            """node.chain.contracts.send with twice the estimate: anvil under-estimates some dispute moves
            (post_steps, reveal_vote, resolve fail at the bare estimate); the gas USED is what is reported."""
            est = fn.estimate_gas({"from": getattr(sender, "address", sender), "value": value})
            receipt = send_tx(w3, fn, sender, value=value, gas=2 * est)
            estimates[fn.fn_name] = (est, receipt["gasUsed"])
            return receipt

        gas = {}
        reward = task.verifier_reward_wei
        r = send(w3, disputes.open(round_id, check), challenger, value=disputes.bond_for(reward).call())
        gas["open"] = r["gasUsed"]
        d_id = disputes.dispute_count().call()
        start, end = rounds.start_hashes_of(round_id).call()[check], rounds.end_hashes_of(round_id).call()[check]
        span = disputes.disputes(d_id).call()[5]
        hashes = [start] + [hashlib.sha256(bytes([i % 256, i // 256])).digest() for i in range(1, span)] + [end]
        gas["post_steps"] = send(w3, disputes.post_steps(d_id, hashes), kit.trainer)["gasUsed"]
        answer, answer_salt = os.urandom(32), os.urandom(32)  # the challenger's own answer (a false challenge: not the jury's)
        commitment = P.compute_vote_commitment(round_id, getattr(challenger, "address", challenger), answer, answer_salt)
        gas["name_step"] = send(w3, disputes.name_step(d_id, span, hashes, commitment), challenger)["gasUsed"]
        # draw_jury needs block.number > the jury block J (the block after name_step); anvil estimates gas in
        # the context of the head block, so the head must be past J too
        kit.mine(2)
        gas["draw_jury"] = send(w3, disputes.draw_jury(d_id), challenger)["gasUsed"]
        jurors = disputes.jury_of(d_id).call()
        salts = {j: os.urandom(32) for j in jurors}
        trainers = bytes(disputes.disputes(d_id).call()[17])  # claimed_hash: every juror's answer is the trainer's
        gas["commit_vote"] = max(send(w3, disputes.commit_vote(d_id, P.compute_vote_commitment(d_id, j, trainers, salts[j])), j)["gasUsed"]
                                 for j in jurors)
        gas["reveal_answer"] = send(w3, disputes.reveal_answer(d_id, answer, answer_salt), challenger)["gasUsed"]
        gas["reveal_vote"] = max(send(w3, disputes.reveal_vote(d_id, trainers, salts[j]), j)["gasUsed"] for j in jurors)
        # a jury vote is final (resolvable) only after its appeal window (Appeals.vy)
        kit.mine(max(0, P.compute_appeal_deadline(disputes.disputes(d_id).call()[11], task.reveal_verdicts_window) - w3.eth.block_number) + 1)
        gas["resolve"] = send(w3, disputes.resolve(d_id), challenger)["gasUsed"]
        # a contradiction keeps the round open to its reveal deadline: ends block + commit_verdicts_window (the
        # final flags' commit window, #13 attack 5) + reveal_verdicts_window; read it rather than re-add the windows
        deadline = rounds.rounds(round_id).call()[9]
        kit.mine(max(0, deadline - w3.eth.block_number) + 1)
        gas["finalize"] = send(w3, rounds.finalize(round_id), kit.deployer)["gasUsed"]
        print("   (estimate, used):", estimates, flush=True)
        gas["jurors"] = len(jurors)
        assert span == span_steps, f"dispute bench: disputed {span} steps, wanted {span_steps}"
        gas["span_steps"] = span
        return gas


def measure_undisputed(disputes: bool, rounds: int = 4) -> dict:
    """An honest round (every member agrees, nobody disputes) of a task with M = 32, s = 2, c = 3, on a deployment
    with or without Disputes: gas of the whole round (commit .. finalize, every member's verdict calls) and its
    checks (v1: s + 1 or s; with Disputes: the c·s dealt out, + 1 or not), the mean of `rounds` rounds."""
    from roundkit import SMALL_TASK

    with staked_kit(3, disputes) as (net, w3, kit):
        task_id = kit.create_task(replace(SMALL_TASK, steps_per_round=32, segment_steps=1), rounds_funded=rounds + 1)
        totals, checks = [], []
        for _ in range(rounds):
            result = kit.run_round(task_id)
            assert result.outcome == P.Outcome.ACCEPTED, result.outcome
            totals.append(sum(r["gasUsed"] for r in result.receipts.values()))
            checks.append(len(result.samples))
        return {"disputes": disputes, "gas": sum(totals) // rounds, "checks": sum(checks) / rounds,
                "gas_per_check": sum(totals) / sum(checks)}


def measure_flag_dispute(jury: int) -> dict[str, int]:
    """A flag dispute (Disputes.open_flag on FLAG_FINAL), lost by the challenger (every juror finds the flag right):
    open_flag, draw_jury, the most expensive juror's commit and reveal, resolve."""
    from roundkit import SMALL_TASK

    from node.chain.contracts import contract
    from node.chain.contracts import send as send_tx
    from node.errors import TrainchainError

    with staked_kit(jury + 1) as (net, w3, kit):
        task_id = kit.create_task(replace(SMALL_TASK, reveal_window=50, commit_verdicts_window=50, reveal_verdicts_window=50))
        disputes = contract(w3, "Disputes", net.deployment.addresses["Disputes"]).functions
        verdicts = FirstMemberContradicts()
        try:
            kit.run_round(task_id, verdicts=verdicts)
        except TrainchainError:
            pass  # finalize waits: the contradiction may be disputed
        round_id = contract(w3, "TrainingRounds", net.deployment.addresses["TrainingRounds"]).functions.round_count().call()
        challenger = verdicts["first"]

        def send(fn, sender, value=0):
            est = fn.estimate_gas({"from": getattr(sender, "address", sender), "value": value})
            return send_tx(w3, fn, sender, value=value, gas=2 * est)["gasUsed"]

        answer, answer_salt = os.urandom(32), os.urandom(32)
        commitment = P.compute_vote_commitment(round_id, getattr(challenger, "address", challenger), answer, answer_salt)
        gas = {"open_flag": send(disputes.open_flag(round_id, P.FLAG_FINAL, commitment), challenger,
                                 value=disputes.bond_for(SMALL_TASK.verifier_reward_wei).call())}
        d_id = disputes.dispute_count().call()
        kit.mine(2)
        gas["draw_jury"] = send(disputes.draw_jury(d_id), challenger)
        jurors = disputes.jury_of(d_id).call()
        salts = {j: os.urandom(32) for j in jurors}
        trainers = bytes(disputes.disputes(d_id).call()[17])  # claimed_hash: h_M, every juror's answer
        gas["commit_vote"] = max(send(disputes.commit_vote(d_id, P.compute_vote_commitment(d_id, j, trainers, salts[j])), j)
                                 for j in jurors)
        gas["reveal_answer"] = send(disputes.reveal_answer(d_id, answer, answer_salt), challenger)
        gas["reveal_vote"] = max(send(disputes.reveal_vote(d_id, trainers, salts[j]), j) for j in jurors)
        kit.mine(max(0, P.compute_appeal_deadline(disputes.disputes(d_id).call()[11], 50) - w3.eth.block_number) + 1)  # the appeal window
        gas["resolve"] = send(disputes.resolve(d_id), challenger)
        gas["jurors"] = len(jurors)
        return gas


def write_markdown(rows: list[dict], undisputed: list[dict] | None = None, flags: list[dict] | None = None) -> str:
    lines = ["# Gas of a dispute (issue #15)", "",
             "`python -m bench.disputes` (bench/disputes.py): LocalNet on anvil 1.7.1, contracts compiled by vyper",
             "0.4.3 deployed with Disputes; a false challenge (every juror answers the trainer's hash; the challenger",
             "reveals its own answer after the jury committed: reveal_answer) over a one-segment",
             f"check (k = span), or at {P.MAX_SPAN_STEPS} steps (MAX_SPAN_STEPS; k <= {P.MAX_SPAN_STEPS // 2}) the last check (M-2, M) at",
             f"k = {P.MAX_SPAN_STEPS // 2}; commit_vote / reveal_vote: the most expensive juror. Refund allowances (node/protocol.py):",
             f"defender {P.DEFENDER_GAS_ALLOWANCE:,} gas, challenger {P.CHALLENGER_GAS_ALLOWANCE:,} gas.", "",
             "| span steps | jurors | " + " | ".join(MOVES) + " | trainer's moves | challenger's moves |",
             "|---|---|" + "---|" * (len(MOVES) + 2)]
    for g in rows:
        defender = g["post_steps"]
        challenger = g["open"] + g["name_step"] + g["draw_jury"] + g["reveal_answer"] + g["resolve"]  # draw_jury: anyone's, at worst its
        lines.append(f"| {g['span_steps']} | {g['jurors']} | " + " | ".join(f"{g[m]:,}" for m in MOVES)
                     + f" | {defender:,} | {challenger:,} |")
    if flags:
        lines += ["", "## A flag dispute (Disputes.open_flag)", "",
                  "A member whose contradiction has no span to narrow (a data root, a start or final checkpoint it proves",
                  "wrong) disputes the flag: no post_steps, no name_step; the jury checks the flag itself. A false one",
                  "(every juror finds the flag right), FLAG_FINAL:", "",
                  "| jurors | open_flag | draw_jury | commit_vote | reveal_answer | reveal_vote | resolve | challenger's moves |",
                  "|---|---|---|---|---|---|---|---|"]
        for g in flags:
            challenger = g["open_flag"] + g["draw_jury"] + g["reveal_answer"] + g["resolve"]
            lines.append(f"| {g['jurors']} | {g['open_flag']:,} | {g['draw_jury']:,} | {g['commit_vote']:,} | "
                         f"{g['reveal_answer']:,} | {g['reveal_vote']:,} | {g['resolve']:,} | {challenger:,} |")
    if undisputed:
        lines += ["", "## An undisputed round: checks dealt out cost no more per check", "",
                  "An honest round (committee 3 agrees, nobody disputes) of a task with M = 32 segments, s = 2, the same",
                  "contracts with and without Disputes, the mean of 4 rounds: with Disputes the seal draws c·s checks",
                  "dealt out over the committee (each member replays its own s and the last), v1 draws s (+ the last).", "",
                  "| deployment | checks per round | gas per round (commit .. finalize, every member) | gas per check |",
                  "|---|---|---|---|"]
        for u in undisputed:
            lines.append(f"| {'with Disputes (dealt out)' if u['disputes'] else 'v1 (no Disputes)'} | {u['checks']:.2f} | "
                         f"{u['gas']:,} | {u['gas_per_check']:,.0f} |")
        v1 = next(u for u in undisputed if not u["disputes"])
        dealt = next(u for u in undisputed if u["disputes"])
        lines += ["", f"Per check, with Disputes / v1: {dealt['gas_per_check'] / v1['gas_per_check']:.2f}× (a round: "
                      f"{dealt['gas'] / v1['gas']:.2f}× for {dealt['checks'] / v1['checks']:.2f}× the checks)."]
    lines += ["", "## The jury is an honest-majority assumption", "",
              "Probability that colluders hold a strict majority of a jury (node/protocol.py",
              "compute_jury_capture_probability: a large registry, binomial; the contract's jury is every opted-in",
              f"verifier but the parties, at most JURY_MAX = {P.JURY_MAX}). A captured jury convicts an honest trainer a",
              "colluding challenger disputes, or acquits a forger; below a majority, the colluders only lose their seats' share.", "",
              "| jurors | " + " | ".join(f"{f:.0%} colluding" for f in CAPTURE_FRACTIONS) + " |",
              "|---|" + "---|" * len(CAPTURE_FRACTIONS)]
    for j in CAPTURE_JURIES:
        lines.append(f"| {j} | " + " | ".join(f"{100 * P.compute_jury_capture_probability(j, f):.1f} %" for f in CAPTURE_FRACTIONS) + " |")
    lines += ["", "A finite registry is drawn without replacement (compute_jury_capture_probability_finite): 100 verifiers,",
              f"33 colluding, 15 jurors: {100 * P.compute_jury_capture_probability_finite(100, 33, 15):.1f} %; when the jury is",
              "every verifier (a registry of at most JURY_MAX + 1), capture needs a majority of the whole registry.",
              "", "A dispute's latency: open, then at most one move window for the trainer (`reveal_window`), one for",
              "the challenger, the jury's commit and reveal windows (`commit_verdicts_window` + `reveal_verdicts_window`),",
              "the appeal window (another `reveal_verdicts_window`: the vote is final only after it, Appeals.vy),",
              "then resolve and finalize: 2·reveal_window + commit_verdicts_window + 2·reveal_verdicts_window blocks at",
              "most, plus the jury draw (2 blocks after name_step when a party draws at once; anyone may), fewer when",
              "every party moves at once. An appeal adds its draw and the appeal jury's commit and reveal windows.", ""]
    return "\n".join(lines)


def run() -> dict:
    rows = []
    for k in SPANS:
        for jury in JURIES:
            rows.append(measure(k, jury))
            print(f"   span {rows[-1]['span_steps']} jury {rows[-1]['jurors']}: {rows[-1]}", flush=True)
    flags = [measure_flag_dispute(jury) for jury in JURIES]
    print(f"   flag disputes: {flags}", flush=True)
    undisputed = [measure_undisputed(False), measure_undisputed(True)]
    print(f"   undisputed rounds: {undisputed}", flush=True)
    OUT.write_text(write_markdown(rows, undisputed, flags))
    out = {f"span{r['span_steps']}_jury{r['jurors']}": r for r in rows}
    out.update({f"flag_jury{g['jurors']}": g for g in flags})
    out.update({f"undisputed_{'dealt' if u['disputes'] else 'v1'}": u for u in undisputed})
    return out


if __name__ == "__main__":
    run()
