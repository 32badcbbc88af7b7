"""Honest nodes only, many rounds: nobody honest is ever slashed.

At the contract level (toy replay, real CIDs, anvil automine): 2 trainers on 2 tasks, 5
verifiers, committees of 3 drawn by the contract. Checks, from the chain: every round
accepted and built on the previous canonical state, no PenaltyApplied / Slashed event in the
whole run, every bonded stake unchanged, every claimable balance exactly the rewards the
rules pay, and the StakeManager's ether equals stakes + claimable + treasury.

TRAINCHAIN_ADVERSARIAL_HONEST_ROUNDS overrides the number of rounds (default 200).
"""
from __future__ import annotations

import os
from collections import Counter

from node import protocol

from advkit import TOY_TASK

ROUNDS = int(os.environ.get("TRAINCHAIN_ADVERSARIAL_HONEST_ROUNDS", "200"))


def test_honest_rounds_never_slash(kit, case):
    c = case(f"{ROUNDS} rounds with honest trainers and verifiers only",
             "every round accepted on the previous canonical state; zero slashes (no PenaltyApplied/Slashed event); "
             "stakes unchanged; claimable = exactly the rewards earned")
    tasks = [kit.create_task(), kit.create_task()]
    kit.fast = True  # no gas estimation: every receipt status is still checked
    trainer_of = {tasks[0]: kit.trainers[0], tasks[1]: kit.trainers[1]}
    start_block = kit.head()
    before = kit.balances()
    outcomes, earned, seats = Counter(), Counter(), Counter()
    chain_ok = True
    for i in range(ROUNDS):
        task = tasks[i % 2]
        canonical = bytes(kit.task(task)["canonical_hash"])
        trace = kit.build_trace(task)
        out = kit.play_round(task, trace, trainer=trainer_of[task], track=False)
        outcomes[out.outcome_name] += 1
        chain_ok &= trace.hashes[0] == canonical and bytes(kit.task(task)["canonical_hash"]) == trace.hashes[-1]
        earned[trainer_of[task]] += TOY_TASK.trainer_reward_wei
        for v in out.committee:
            earned[v] += TOY_TASK.verifier_reward_wei
            seats[v] += 1
    after = kit.balances()
    rounds = kit.contract("TrainingRounds").events
    stake = kit.contract("StakeManager").events
    penalties = rounds.PenaltyApplied().get_logs(from_block=start_block)
    slashes = stake.Slashed().get_logs(from_block=start_block)
    sm = kit.contract("StakeManager").functions
    held = kit.w3.eth.get_balance(kit.addresses["StakeManager"])
    accounted = sum(after["stake"].values()) + sum(after["claimable"].values()) + after["treasury"]
    stakes_changed = [a for a in kit.everyone() if after["stake"][a] != before["stake"][a]]
    claim_wrong = [a for a in kit.everyone() if after["claimable"][a] - before["claimable"][a] != earned[a]]

    c.observe(f"outcomes {dict(outcomes)}; PenaltyApplied events {len(penalties)}, Slashed events {len(slashes)}; "
              f"stakes changed {len(stakes_changed)}; claimable off by any wei: {len(claim_wrong)}; "
              f"committee seats per verifier {sorted(seats.values())}; each round on the previous canonical state: "
              f"{chain_ok}; StakeManager ether == stakes + claimable + treasury: {held == accounted}")
    assert outcomes == Counter({"accepted": ROUNDS})
    assert penalties == [] and slashes == []
    assert stakes_changed == [] and claim_wrong == []
    assert chain_ok
    assert held == accounted
    assert all(sm.is_eligible(v, protocol.VERIFIER).call() for v in kit.verifiers)


NODE_ROUNDS = int(os.environ.get("TRAINCHAIN_ADVERSARIAL_NODE_ROUNDS", "4"))


def test_honest_node_rounds(tmp_path, case):
    c = case(f"{NODE_ROUNDS} rounds of the real TrainerNode + 3 VerifierNodes (tiny GPT, real engine and replay)",
             "every round accepted, each on the previous canonical state; zero penalties; stakes unchanged; "
             "ModelOracle's latest version = rounds accepted")
    from nodekit import NodeNet

    with NodeNet.start(tmp_path / "net") as net:
        net.make_trainer(max_rounds=NODE_ROUNDS)
        for i in range(3):
            net.make_verifier(i)
        before = net.stakes()
        reports = [net.run_round() for _ in range(NODE_ROUNDS)]
        after = net.stakes()
        latest = net.chain.call(net.chain.oracle.functions.latest(net.task_id))
        penalties = net.chain.events("PenaltyApplied")
        bases = [net.chain.get_round(r.round_id)["base_hash"] for r in reports]
        finals = [net.chain.get_round(r.round_id)["final_hash"] for r in reports]
        chained = all(b == f for b, f in zip(bases[1:], finals[:-1]))
        outcomes = [r.outcome_name for r in reports]
        c.observe(f"outcomes {outcomes}; penalties {len(penalties)}; stakes unchanged {before == after}; each round on the "
                  f"previous final state {chained}; oracle latest version {latest[2]}")
        assert outcomes == ["accepted"] * NODE_ROUNDS
        assert penalties == [] and before == after and chained
        assert latest[2] == NODE_ROUNDS
