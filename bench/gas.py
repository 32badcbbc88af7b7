"""Gas of every external call of a round, gas per epoch vs its slots (#14), and every contract's
runtime size against the EIP-170 limit: `python -m bench gas` -> bench/gas.md.

For committee 3 and 7, samples 2 and 8, steps per round 32 and 4096 (segment = 1 step),
one honest round on a fresh anvil (node.chain.devnet.Anvil; anvil enforces the code-size limit, so a
contract over it fails to deploy here) through node.chain.contracts (web3, no brownie).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path
from statistics import mean

from node import protocol as P
from node.chain.contracts import (CONTRACT_NAMES, EIP170_LIMIT, OPTIONAL_NAMES, REFERENCE_NAMES, compile_contract, contract, deploy,
                                  send)
from node.chain.records import TaskParams

OUT = Path(__file__).resolve().parent / "gas.md"
COMMITTEES, SAMPLES, STEPS = (3, 7), (2, 8), (32, 4096)
# commit_final: TrainingRounds.commit_verdict's second call, by each member after reveal_ends, with
# rules.compute_final_commitment (the final flag's own commitment, issue #13 attack 5)
CALLS = ["stake", "create_task", "commit", "seal", "reveal_starts", "commit_verdict", "reveal_ends",
         "commit_final", "reveal_verdict", "finalize", "claim"]
VERDICT_CALLS = ("commit_verdict", "commit_final", "reveal_verdict")  # one of each per committee member


def measure_round(w3, committee: int, samples: int, steps: int) -> dict[str, int]:
    """Gas of each call of one honest round (commit_verdict / commit_final / reveal_verdict: the most expensive
    member, and the mean member as <call>_mean)."""
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        acct = w3.eth.accounts
        deployer, trainer, verifiers = acct[0], acct[1], acct[2:9]
        addr = deploy(w3, deployer)
        sm = contract(w3, "StakeManager", addr["StakeManager"]).functions
        tr = contract(w3, "TrainingRounds", addr["TrainingRounds"]).functions
        registry = contract(w3, "TaskRegistry", addr["TaskRegistry"]).functions
        gas: dict[str, list[int]] = {k: [] for k in CALLS}

        def tx(name, fn, sender, value=0):
            gas[name].append(send(w3, fn, sender, value=value)["gasUsed"])

        tx("stake", sm.stake(P.TRAINER), trainer, 10**19)
        for v in verifiers:
            tx("stake", sm.stake(P.VERIFIER), v, 10**19)
        params = TaskParams(steps_per_round=steps, segment_steps=1, samples=samples, committee_size=committee, quorum=committee // 2 + 1,
                            seal_delay_blocks=1, reveal_window=50, commit_verdicts_window=50, reveal_verdicts_window=50)
        trace = [os.urandom(32) for _ in range(steps + 1)]
        layers_root = P.compute_merkle_root(trace)
        tx("create_task", registry.create_task("bafy" + "s" * 55, os.urandom(32), trace[0], "bafy" + "g" * 55, params.as_tuple()),
           deployer, 10 * params.round_cost)
        w3.provider.make_request("anvil_mine", [hex(P.TASK_NOTICE_BLOCKS)])  # the new task's notice (#13 attack 1)
        data_root = os.urandom(32)
        for attempt in range(64):
            # Every configuration is measured at its worst case, s + 1 checks (M-2 not drawn: the
            # last check is (M-1, M) on top of the s samples); otherwise the draw, not the number of
            # steps, decides how many proofs a round carries and "flat in steps" compares unequal work.
            retry = w3.provider.make_request("evm_snapshot", [])["result"]
            tx("commit", tr.commit(1, trace[0], data_root, layers_root, P.compute_merkle_proof(trace, 0)), trainer)
            w3.provider.make_request("anvil_mine", [hex(params.seal_delay_blocks + 1)])
            tx("seal", tr.seal(1), deployer)
            picked = tr.round_samples_of(1).call()
            if len(picked) == samples + 1:
                break
            w3.provider.make_request("evm_revert", [retry])
            gas["commit"].pop(), gas["seal"].pop()
            parent_ts = w3.eth.get_block("latest")["timestamp"]  # another timestamp: another seal block hash
            w3.provider.make_request("evm_setNextBlockTimestamp", [parent_ts + 1 + attempt])
        else:
            raise RuntimeError(f"gas bench: 64 draws all picked segment M-2 (c={committee}, s={samples}, steps={steps})")
        members = tr.committee_of(1).call()
        tx("reveal_starts", tr.reveal_starts(1, [trace[j] for j in picked], ["bafy" + "c" * 55] * len(picked),
                                             [P.compute_merkle_proof(trace, j) for j in picked]), trainer)
        check_ends = tr.round_check_ends_of(1).call()  # j + 1; the last check ends at leaf M
        ends = [trace[e] for e in check_ends]
        salt = os.urandom(32)
        for v in members:
            tx("commit_verdict", tr.commit_verdict(1, P.compute_verdict_commitment(1, v, ends, True, True, salt)), v)
        tx("reveal_ends", tr.reveal_ends(1, ends, [P.compute_merkle_proof(trace, e) for e in check_ends], "bafy" + "f" * 55), trainer)
        for v in members:
            tx("commit_final", tr.commit_verdict(1, P.compute_final_commitment(1, v, True, salt)), v)
        for v in members:
            tx("reveal_verdict", tr.reveal_verdict(1, ends, True, salt, True, True), v)
        tx("finalize", tr.finalize(1), deployer)
        assert tr.rounds(1).call()[6] == P.Outcome.ACCEPTED, "gas bench: round not accepted"
        tx("claim", sm.claim(), trainer)
        return {k: max(v) for k, v in gas.items()} | {k + "_mean": round(mean(gas[k])) for k in VERDICT_CALLS}
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


EPOCH_SLOTS = (1, 2, 4, 8)  # N; N = 1 here is a one-slot epoch task with a DiLoCo outer step (Epochs), not v1
SLOT_CALLS = ["claim", "commit", "seal", "reveal_starts", "commit_verdict", "reveal_ends", "commit_final", "reveal_verdict",
              "finalize"]
AGGREGATION_CALLS = ["open_aggregation", "commit_aggregate", "post_aggregate", "reveal_aggregate", "finalize_epoch"]


def measure_epoch(w3, n_slots: int, committee: int = 3, samples: int = 2, steps: int = 32) -> dict:
    """Gas of one honest epoch of N slots (each slot a round from claim to finalize, one trainer per slot, played
    one after the other) and of its aggregation: {"slot": per-slot totals, "aggregation": per-call totals}."""
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        acct = w3.eth.accounts
        deployer, verifiers, trainers = acct[0], acct[2:9], acct[10:10 + n_slots]
        addr = deploy(w3, deployer)
        sm = contract(w3, "StakeManager", addr["StakeManager"]).functions
        tr = contract(w3, "TrainingRounds", addr["TrainingRounds"]).functions
        ep = contract(w3, "Epochs", addr["Epochs"]).functions
        registry = contract(w3, "TaskRegistry", addr["TaskRegistry"]).functions
        for who, role in [(t, P.TRAINER) for t in trainers] + [(v, P.VERIFIER) for v in verifiers]:
            send(w3, sm.stake(role), who, value=10**19)
        params = TaskParams(steps_per_round=steps, segment_steps=1, samples=samples, committee_size=committee,
                            quorum=committee // 2 + 1, seal_delay_blocks=1, reveal_window=50, commit_verdicts_window=50,
                            reveal_verdicts_window=50, slots_per_epoch=n_slots, outer_lr_bps=7_000, outer_momentum_bps=9_000,
                            claim_window=50, train_window=50)
        base = os.urandom(32)
        send(w3, registry.create_task("bafy" + "s" * 55, os.urandom(32), base, "bafy" + "g" * 55, params.as_tuple()),
             deployer, value=(n_slots + 2) * params.round_cost)
        w3.provider.make_request("anvil_mine", [hex(P.TASK_NOTICE_BLOCKS)])
        slot_gas = [{k: 0 for k in SLOT_CALLS} for _ in range(n_slots)]
        checks = []

        def tx(i, name, fn, sender):
            slot_gas[i][name] += send(w3, fn, sender)["gasUsed"]

        traces, slot_ids = [], []
        for i, t in enumerate(trainers):
            receipt = send(w3, ep.claim(1, 0, i), t)
            slot_gas[i]["claim"] += receipt["gasUsed"]
            slot_ids.append(i + 1)  # the first rounds of a fresh deployment
        for i, t in enumerate(trainers):
            trace = [base] + [os.urandom(32) for _ in range(steps)]
            traces.append(trace)
            tx(i, "commit", ep.commit(slot_ids[i], base, os.urandom(32), P.compute_merkle_root(trace), P.compute_merkle_proof(trace, 0)), t)
        w3.provider.make_request("anvil_mine", [hex(params.seal_delay_blocks + 1)])
        for i, t in enumerate(trainers):
            sid, trace = slot_ids[i], traces[i]
            tx(i, "seal", tr.seal(sid), t)
            picked = tr.round_samples_of(sid).call()
            checks.append(len(picked))
            members = tr.committee_of(sid).call()
            tx(i, "reveal_starts", tr.reveal_starts(sid, [trace[j] for j in picked], ["bafy" + "c" * 55] * len(picked),
                                                    [P.compute_merkle_proof(trace, j) for j in picked]), t)
            check_ends = tr.round_check_ends_of(sid).call()
            ends = [trace[e] for e in check_ends]
            salt = os.urandom(32)
            for v in members:
                tx(i, "commit_verdict", tr.commit_verdict(sid, P.compute_verdict_commitment(sid, v, ends, True, True, salt)), v)
            tx(i, "reveal_ends", tr.reveal_ends(sid, ends, [P.compute_merkle_proof(trace, e) for e in check_ends], "bafy" + "f" * 55), t)
            for v in members:
                tx(i, "commit_final", tr.commit_verdict(sid, P.compute_final_commitment(sid, v, True, salt)), v)
            for v in members:
                tx(i, "reveal_verdict", tr.reveal_verdict(sid, ends, True, salt, True, True), v)
            tx(i, "finalize", tr.finalize(sid), t)
        agg = {k: 0 for k in AGGREGATION_CALLS}

        def atx(name, fn, sender):
            agg[name] += send(w3, fn, sender)["gasUsed"]

        record = ep.epochs(1, 0).call()
        claim_deadline, seal_delay = record[2], record[9]
        head = w3.eth.block_number
        ready = max(claim_deadline, head)  # every claimed slot finalized: A is final (rules.compute_ready_block)
        w3.provider.make_request("anvil_mine", [hex(ready + seal_delay - head + 1)])
        atx("open_aggregation", ep.open_aggregation(1, 0), deployer)
        members = ep.committee_of(1, 0).call()
        state, salt = os.urandom(32), os.urandom(32)
        for v in members:
            atx("commit_aggregate", ep.commit_aggregate(1, 0, P.compute_aggregate_commitment(1, 0, v, state, salt)), v)
        atx("post_aggregate", ep.post_aggregate(1, 0, state, "bafy" + "a" * 55), trainers[0])
        for v in members:
            atx("reveal_aggregate", ep.reveal_aggregate(1, 0, state, salt), v)
        atx("finalize_epoch", ep.finalize_epoch(1, 0), deployer)
        assert ep.epochs(1, 0).call()[6] == P.Outcome.ACCEPTED, "gas bench: epoch not accepted"
        assert bytes(contract(w3, "ModelOracle", addr["ModelOracle"]).functions.latest(1).call()[1]) == state
        return {"slot": [sum(g.values()) for g in slot_gas], "slot_calls": slot_gas, "checks": checks, "aggregation": agg}
    finally:
        w3.provider.make_request("evm_revert", [snapshot])


def write_epochs_markdown(epochs: dict[int, dict], v1_round: int) -> str:
    lines = ["", "# Gas per epoch vs its slots (#14)", "",
             "One honest epoch of an epoch task (committee 3, samples 2, 32 steps per slot, the DiLoCo outer step),",
             "N trainers, every slot a round from `claim` to `finalize` (Epochs.claim + Epochs.commit + TrainingRounds'",
             "per-round calls), then the aggregation (open_aggregation, 3 commit_aggregate, post_aggregate, 3",
             "reveal_aggregate, finalize_epoch: one ModelOracle version). The v1 round is the same configuration in the",
             f"table above (commit ... finalize, every member's verdicts, s + 1 checks): {v1_round:,} gas. A slot's checks",
             "are what its seed drew (column 'checks': s + 1 = 3, or s when M-2 was drawn). Slot 0 opens the epoch (its claim reads the task's parameters,",
             "writes the epoch record and holds the aggregation's pool share; its commit, acceptance and finalize set the",
             "epoch's bit masks from zero): the slot's own cost is the marginal slot (the mean of slots 1..N-1; N = 1",
             "uses N = 2's), and the rest of slot 0 is the epoch's fixed share with the aggregation.", ""]
    marginal = {n: mean(e["slot"][1:]) for n, e in epochs.items() if n > 1}
    lines += ["| N | marginal slot | slot / v1 round | checks per slot | epoch opening (slot 0 - marginal) | "
              "aggregation | outer share (opening + aggregation) | outer share / N | epoch total |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n, e in epochs.items():
        slot = marginal.get(n, marginal.get(2, e["slot"][0]))
        opening = e["slot"][0] - slot
        aggregation = sum(e["aggregation"].values())
        total = sum(e["slot"]) + aggregation
        lines.append(f"| {n} | {round(slot):,} | {slot / v1_round:.3f} | {', '.join(map(str, e['checks']))} | {round(opening):,} | "
                     f"{aggregation:,} | {round(opening + aggregation):,} | {round((opening + aggregation) / n):,} | {total:,} |")
    lines += ["", "Aggregation by call:", "",
              "| call | " + " | ".join(f"N = {n}" for n in epochs) + " |", "|---|" + "---|" * len(epochs)]
    for call in AGGREGATION_CALLS:
        lines.append(f"| {call} | " + " | ".join(f"{e['aggregation'][call]:,}" for e in epochs.values()) + " |")
    last = epochs[max(epochs)]
    lines += ["", f"A marginal slot by call (the mean over slots 1..{max(epochs) - 1} of N = {max(epochs)}; verdict calls: the whole"
              " committee):", "", "| call | gas |", "|---|---|"]
    for call in SLOT_CALLS:
        lines.append(f"| {call} | {round(mean(g[call] for g in last['slot_calls'][1:])):,} |")
    lines += ["", "The outer step's share is one epoch opening, one committee's commit-reveal, one post and one",
              "finalize_epoch (it pays the committee and writes the oracle version) whatever N is. A slot pays its",
              "claim transaction on top of a v1 commit (claim + commit vs commit) but not the task's advance and",
              "oracle write at its finalize, which the epoch pays once.", ""]
    return "\n".join(lines)


def code_sizes() -> dict[str, int]:
    """Runtime bytecode size (bytes) of every contract, as compiled by node.chain.contracts."""
    return {name: compile_contract(name)["runtime_size"] for name in CONTRACT_NAMES + OPTIONAL_NAMES + REFERENCE_NAMES}


def write_markdown(rows: list[dict], sizes: dict[str, int]) -> str:
    lines = [
        "# Contract sizes",
        "",
        f"Runtime bytecode against the EIP-170 limit ({EIP170_LIMIT:,} bytes, enforced by anvil and every",
        "real chain). The rules (contracts/lib/rules.vy) are compiled into each contract that uses them.",
        "ProtocolRules only exposes the rules for tests and tools; it is not part of a deployment.",
        "",
        "| contract | runtime bytes | % of limit | headroom |",
        "|---|---|---|---|",
        *[f"| {name} | {size:,} | {100 * size / EIP170_LIMIT:.1f}% | {EIP170_LIMIT - size:,} |" for name, size in sizes.items()],
        "",
        "# Gas per call of one honest round",
        "",
        "`python -m bench gas` (bench/gas.py): fresh anvil 1.7.1, contracts compiled by vyper 0.4.3,",
        "segment = 1 step (M = steps per round), CIDs of 59 characters. commit_verdict, commit_final and",
        "reveal_verdict: the most expensive committee member (later members pay less: warm slots).",
        "commit_final is TrainingRounds.commit_verdict called a second time, after reveal_ends, with the final",
        "flag's commitment (rules.compute_final_commitment, the verdict's salt; issue #13, attack 5).",
        "",
        "| committee | samples | steps/round | " + " | ".join(CALLS) + " |",
        "|---|---|---|" + "---|" * len(CALLS),
    ]
    for r in rows:
        lines.append(f"| {r['committee']} | {r['samples']} | {r['steps']} | " + " | ".join(f"{r['gas'][k]:,}" for k in CALLS) + " |")
    lines += ["", "## Independence from steps per round", "",
              "Same committee and samples, 32 vs 4096 steps per round (M = 32 vs 4096 segments):", "",
              "| committee | samples | call | 32 steps | 4096 steps | difference |", "|---|---|---|---|---|---|"]
    by_key = {(r["committee"], r["samples"], r["steps"]): r["gas"] for r in rows}
    for c, s in itertools.product(COMMITTEES, SAMPLES):
        for call in ("commit", "seal", "finalize", "reveal_starts", "reveal_ends"):
            a, b = by_key[(c, s, 32)][call], by_key[(c, s, 4096)][call]
            lines.append(f"| {c} | {s} | {call} | {a:,} | {b:,} | {b - a:+,} ({100 * (b - a) / a:+.1f}%) |")
    lines += ["", "finalize does not depend on M at all. seal does no work proportional to M (seed, draws and",
              "stores are O(samples + committee)); it moves by a few thousand gas with the values drawn",
              "(a zero stores cheaper, the insertion sort swaps more or less). commit verifies one Merkle",
              "proof, reveal_starts / reveal_ends one per check (always s + 1 here: the bench re-draws until",
              "M-2 is not drawn, the worst case), each ceil(log2(M + 1)) siblings",
              "(6 at M = 32, 13 at M = 4096): they grow with log M only.", ""]
    return "\n".join(lines)


def run() -> dict:
    from web3 import Web3

    from node.chain.devnet import Anvil

    sizes = code_sizes()
    over = {n: s for n, s in sizes.items() if s > EIP170_LIMIT}
    assert not over, f"gas bench: contracts over the EIP-170 limit: {over}"
    print("   runtime sizes: " + ", ".join(f"{n} {s:,} B" for n, s in sizes.items()), flush=True)
    # automine (no block time), no base fee: the gas used is the same as on any chain
    with Anvil(block_time=None, accounts=10 + max(EPOCH_SLOTS), extra_args=("--block-base-fee-per-gas", "0")) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        rows = []
        for c, s, steps in itertools.product(COMMITTEES, SAMPLES, STEPS):
            rows.append({"committee": c, "samples": s, "steps": steps, "gas": measure_round(w3, c, s, steps)})
            print(f"   committee {c} samples {s} steps {steps}: " + ", ".join(f"{k} {v}" for k, v in rows[-1]["gas"].items()), flush=True)
        epochs = {}
        for n in EPOCH_SLOTS:
            epochs[n] = measure_epoch(w3, n)
            print(f"   epoch N={n}: per slot {epochs[n]['slot']}, aggregation {epochs[n]['aggregation']}", flush=True)
    v1 = next(r["gas"] for r in rows if (r["committee"], r["samples"], r["steps"]) == (3, 2, 32))
    v1_round = sum(v1[k] for k in ("commit", "seal", "reveal_starts", "reveal_ends", "finalize")) + sum(
        # every member's verdict calls: the bench keeps the max and the mean; 3 members at the mean
        3 * v1[k + "_mean"] for k in VERDICT_CALLS)
    OUT.write_text(write_markdown(rows, sizes) + write_epochs_markdown(epochs, v1_round))
    return {f"c{r['committee']}_s{r['samples']}_steps{r['steps']}": r["gas"] for r in rows} | {"runtime_bytes": sizes} | {
        f"epoch_n{n}": {"per_slot": e["slot"], "aggregation": e["aggregation"]} for n, e in epochs.items()} | {"v1_round_c3_s2_32": v1_round}


if __name__ == "__main__":
    run()
