"""The attacks of the outside review (issue #13), each tried against the real contracts.

Each case plays the attack with an AdversaryKit (tests/adversarial/advkit.py: real contracts on
anvil, real CIDs, toy replay) and shows from chain reads that it is refused or loses money.
The attacks not closed yet are listed in the report (/work/notes/issue-13.md), not here.
"""
from __future__ import annotations

import os
from dataclasses import replace


from node import protocol
from node.chain.contracts import ContractsError, DeployParams

from advkit import TOY_TASK, ToyCheat, reason_of

P = TOY_TASK
D = DeployParams()
ETH = 10**18


def try_create(kit, params):
    """create_task with `params`; the revert words, or None if the task was created."""
    try:
        kit.create_task(params, rounds_funded=3)
        return None
    except ContractsError as exc:
        return reason_of(exc)


def active(kit) -> list[str]:
    return list(kit.call("StakeManager", "active_verifier_list"))


# ---------------------------------------------------------------- attacks 1 and 2: task parameters
def test_attack1_hostile_task_cannot_wipe_the_verifier_set(kit, case):
    c = case("attack 1: a hostile task wipes the verifier set (100% no-show slash, 1-block windows, zero reward)",
             f"create_task refuses each hostile parameter in words; the worst task the bounds allow (no-show "
             f"{D.max_no_show_slash_bps / 100:g}%, {D.min_window_blocks}-block windows, quorum = committee) costs a "
             f"no-show member at most {D.max_no_show_slash_bps / 100:g}% and nobody leaves the active set; verifiers "
             f"that opt out of the task are never drawn for it")
    hostile = {
        "no_show_slash_bps = 10000": replace(P, no_show_slash_bps=10_000),
        "1-block windows": replace(P, reveal_window=1, commit_verdicts_window=1, reveal_verdicts_window=1),
        "verifier_reward_wei = 0": replace(P, verifier_reward_wei=0),
        "verifier_slash_bps = 10000": replace(P, verifier_slash_bps=10_000),
    }
    refused = {name: try_create(kit, params) for name, params in hostile.items()}
    c.observe("; ".join(f"{name}: {why or 'ACCEPTED'}" for name, why in refused.items()))
    assert all(refused.values()), refused
    assert refused["no_show_slash_bps = 10000"] == "rules: no-show slash above the cap"
    assert refused["1-block windows"] == "rules: window below the deployment minimum"
    assert refused["verifier_reward_wei = 0"] == "rules: zero verifier reward"

    # the worst the bounds allow; every drawn member is a no-show (stands for a spec nobody can replay)
    worst = replace(P, no_show_slash_bps=D.max_no_show_slash_bps, quorum=P.committee_size, reveal_window=D.min_window_blocks,
                    commit_verdicts_window=D.min_window_blocks, reveal_verdicts_window=D.min_window_blocks)
    task = kit.create_task(worst)
    before_active = active(kit)
    out = kit.play_round(task, kit.build_trace(task), verifiers={v: "absent" for v in kit.verifiers})
    lost_bps = {v: -out.stake_delta(v) * protocol.BPS // kit.slash_base(v) for v in out.committee}  # of the seat's reservation
    c.observe(f"worst allowed task: outcome {out.outcome_name}; each no-show member lost {sorted(set(lost_bps.values()))} bps; "
              f"active verifiers {len(before_active)} -> {len(active(kit))}")
    assert out.outcome == protocol.Outcome.VOID
    assert all(bps <= D.max_no_show_slash_bps for bps in lost_bps.values())
    assert sorted(active(kit)) == sorted(before_active)

    # verifiers that cannot replay the task opt out of it: the next round draws none of them
    for v in kit.verifiers:
        kit.tx("StakeManager", "optout", task, sender=v)
    out2 = kit.play_round(task, kit.build_trace(task), verifiers={v: "absent" for v in kit.verifiers})
    c.observe(f"after every verifier opted out of the task: committee {len(out2.committee)} member(s), outcome "
              f"{out2.outcome_name}, verifiers' losses {sorted({-out2.stake_delta(v) for v in kit.verifiers})}")
    assert out2.committee == [] and all(out2.stake_delta(v) == 0 for v in kit.verifiers)


def test_attack2_unbounded_windows_cannot_freeze_stake(kit, case):
    c = case("attack 2: reveal_verdicts_window = 2**200 freezes every drawn member's stake",
             f"refused (window above the deployment maximum, {D.max_window_blocks} blocks); with every window at the "
             f"maximum a round nobody reveals finalizes within compute_max_lock_blocks and the members can unstake")
    why = try_create(kit, replace(P, reveal_verdicts_window=2**200))
    c.observe(f"2**200 window: {why}")
    assert why == "rules: window above the deployment maximum"

    longest = replace(P, reveal_window=D.max_window_blocks, commit_verdicts_window=D.max_window_blocks,
                      reveal_verdicts_window=D.max_window_blocks)
    task = kit.create_task(longest)
    trace = kit.build_trace(task)
    out = kit.play_round(task, trace, verifiers={v: "silent" for v in kit.verifiers})
    r = kit.round(out.round_id)
    finalized_at = kit.head()
    bound = protocol.compute_max_lock_blocks(128, D.max_window_blocks)
    for v in out.committee:  # unlocked: request_unstake goes through
        kit.tx("StakeManager", "request_unstake", 1, sender=v)
    c.observe(f"outcome {out.outcome_name}; stake locked {finalized_at - r['commit_block']} blocks (bound {bound}); "
              f"all {len(out.committee)} members could request_unstake after")
    assert out.outcome == protocol.Outcome.VOID
    assert finalized_at - r["commit_block"] <= bound


# ---------------------------------------------------------------- attack 4: abandon and re-roll
def test_attack4_abandon_and_reroll(kit, case):
    miss_bps = protocol.compute_trainer_miss_bps(P.trainer_slash_bps, P.no_show_slash_bps)
    c = case("attack 4: a forger whose forgery was drawn withholds and commits the same roots again for a fresh draw",
             f"the re-commit is sealed with the first seal's seed (same samples: caught again); withholding cost "
             f"{miss_bps / 100:g}% (the fraud slash; was {P.no_show_slash_bps / 100:g}%)")
    task = kit.create_task()
    forged = kit.build_trace(task, ToyCheat(forge_boundaries=frozenset(range(1, P.n_segments - 1))))  # every draw catches it
    first = kit.play_round(task, forged, withhold="starts")
    second = kit.play_round(task, forged)  # the same (task, base, trace root), played out
    lost_withhold = -first.stake_delta(kit.trainer)
    lost_fraud = -second.stake_delta(kit.trainer)
    c.observe(f"attempt 1 samples {first.samples} -> withheld, {first.outcome_name}, trainer -{lost_withhold / ETH:g} ETH "
              f"({lost_withhold * protocol.BPS // kit.slash_base(kit.trainer)} bps of its reservation); attempt 2 (same roots) samples "
              f"{second.samples} -> {second.outcome_name}, trainer -{lost_fraud / ETH:g} ETH")
    assert first.outcome == protocol.Outcome.ABANDONED
    assert lost_withhold == protocol.compute_slash(kit.slash_base(kit.trainer), miss_bps)
    assert lost_withhold >= protocol.compute_slash(kit.slash_base(kit.trainer), P.trainer_slash_bps)
    assert second.samples == first.samples
    assert kit.round(second.round_id)["seed"] == kit.round(first.round_id)["seed"]
    assert second.outcome == protocol.Outcome.FRAUD


# ---------------------------------------------------------------- extra: task close + pool withdrawal
def test_extra_creator_closes_and_cannot_rug_an_open_round(kit, case):
    c = case("extra: a creator wants its unused pool back / pulls the pool from under an open round",
             "close_task credits the unreserved pool to the creator; the open round's cost stays reserved and the "
             "round is paid in full; no new round commits on the closed task")
    task = kit.create_task(rounds_funded=5)
    cost = P.round_cost
    trace = kit.build_trace(task)
    round_id = kit.commit(trace)
    creator = kit.deployer
    claimable_before = kit.call("StakeManager", "claimable", creator)
    kit.tx("TaskRegistry", "close_task", task, sender=creator)
    got = kit.call("StakeManager", "claimable", creator) - claimable_before
    try:
        kit.tx("TaskRegistry", "withdraw_pool", task, sender=creator)
        rug = "withdrew the reservation"
    except ContractsError as exc:
        rug = reason_of(exc)
    # the open round plays on (advkit's play_round commits itself: finish this one by hand)
    kit.seal(round_id)
    kit.reveal_starts(round_id, trace)
    honest = kit.replay_verdict(round_id)
    salts = {}
    for m in kit.call("TrainingRounds", "committee_of", round_id):
        salts[m] = os.urandom(32)
        kit.tx("TrainingRounds", "commit_verdict", round_id,
               protocol.compute_verdict_commitment(round_id, m, honest["ends"], honest["data_ok"], honest["starts_ok"], salts[m]), sender=m)
    kit.reveal_ends(round_id, trace)
    commit_finals(kit, round_id, salts, True)
    for m, salt in salts.items():
        kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], honest["data_ok"], salt, honest["starts_ok"], True, sender=m)
    before = kit.balances()
    kit.tx("TrainingRounds", "finalize", round_id, sender=creator)
    after = kit.balances()
    paid = sum(after["claimable"][a] - before["claimable"][a] for a in kit.everyone())
    try:
        kit.commit(kit.build_trace(task))
        new_round = "committed"
    except ContractsError as exc:
        new_round = reason_of(exc)
    c.observe(f"close_task credited {got / ETH:g} ETH of {5 * cost / ETH:g} (one round's {cost / ETH:g} reserved); "
              f"withdraw during the round: '{rug}'; the round: {protocol.outcome_name(kit.round(round_id)['outcome'])}, "
              f"paid {paid / ETH:g} ETH; new commit: '{new_round}'")
    assert got == 4 * cost
    assert rug == "registry: the rest is reserved by an open round"
    assert kit.round(round_id)["outcome"] == protocol.Outcome.ACCEPTED and paid == cost
    assert new_round == "registry: task closed"
    assert kit.call("TaskRegistry", "tasks", task)[5] == 0  # the pool: nothing left behind


# ---------------------------------------------------------------- attacks 3 and 6: the verifier registry
def throwaways(kit, n: int) -> list[str]:
    """`n` fresh addresses the attacker controls, funded and unlocked on anvil."""
    out = []
    for _ in range(n):
        addr = kit.w3.to_checksum_address("0x" + os.urandom(20).hex())
        kit.w3.provider.make_request("anvil_setBalance", [addr, hex(10 * ETH)])
        kit.w3.provider.make_request("anvil_impersonateAccount", [addr])
        out.append(addr)
    return out


def test_attack3_committee_grinding_after_the_seed_is_public(kit, case):
    c = case("attack 3: after the seed is public the trainer stakes throwaway verifiers until the draw lands on them, "
             "then seals (review: 0 -> 2 of 3 seats with 10 temporary stakes)",
             "the committee is drawn over the entries eligible at the commit block: 10 throwaway stakes after the "
             "commit change nothing (0 seats), the forgery is caught")
    task = kit.create_task()
    forged = kit.build_trace(task, ToyCheat(forge_boundaries=frozenset(range(1, P.n_segments - 1))))
    round_id = kit.commit(forged)
    r = kit.round(round_id)
    kit.mine_past(r["commit_block"] + P.seal_delay_blocks)
    seal_block = r["commit_block"] + P.seal_delay_blocks
    seed = protocol.compute_seed(bytes(kit.w3.eth.get_block(seal_block)["hash"]), round_id)
    sm = kit.contract("StakeManager").functions
    draws = [tuple(sm.draw_committee(seed, r["commit_block"], P.committee_size, task).call())]
    mine = throwaways(kit, 10)
    for a in mine:  # one throwaway stake at a time, reading the draw the seal would make after each
        kit.tx("StakeManager", "stake", protocol.VERIFIER, sender=a, value=ETH)
        draws.append(tuple(sm.draw_committee(seed, r["commit_block"], P.committee_size, task).call()))
    kit.tx("TrainingRounds", "seal", round_id, sender=kit.trainer)
    committee = kit.call("TrainingRounds", "committee_of", round_id)
    seats = len(set(committee) & set(mine))
    # finish the round with the honest committee
    kit.reveal_starts(round_id, forged)
    honest = kit.replay_verdict(round_id)
    salts = {m: os.urandom(32) for m in committee}
    for m, salt in salts.items():
        kit.tx("TrainingRounds", "commit_verdict", round_id,
               protocol.compute_verdict_commitment(round_id, m, honest["ends"], honest["data_ok"], honest["starts_ok"], salt), sender=m)
    kit.reveal_ends(round_id, forged)
    commit_finals(kit, round_id, salts, kit.final_ok(round_id))
    for m, salt in salts.items():
        kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], honest["data_ok"], salt,
               honest["starts_ok"], kit.final_ok(round_id), sender=m)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    outcome = kit.round(round_id)["outcome"]
    c.observe(f"{len(set(draws))} distinct committee(s) over 11 states of the verifier set; attacker seats {seats} "
              f"of {len(committee)}; outcome {protocol.outcome_name(outcome)}")
    assert len(set(draws)) == 1 and tuple(committee) == draws[0]
    assert seats == 0
    assert outcome == protocol.Outcome.FRAUD


def test_attack6_verifier_cap_without_eviction(kit, case):
    c = case("attack 6: 256 refundable minimum stakes fill the verifier set and lock every newcomer out",
             "no cap: a newcomer's stake is accepted after 256 squatters and its entry can be drawn")
    squatters = throwaways(kit, 256)
    for a in squatters:
        kit.tx("StakeManager", "stake", protocol.VERIFIER, sender=a, value=ETH)
    newcomer = throwaways(kit, 1)[0]
    try:
        kit.tx("StakeManager", "stake", protocol.VERIFIER, sender=newcomer, value=5 * ETH)
        refused = None
    except ContractsError as exc:
        refused = reason_of(exc)
    sm = kit.contract("StakeManager").functions
    index = sm.entry_of(newcomer).call() - 1
    kit.mine(1)
    head = kit.head()
    # its entry is in the index space of every commit from now on: find a seed whose draw (by the
    # reference rule) seats it, and the contract draws the same committee
    entries = [tuple(sm.entries(i).call()) for i in range(sm.entry_count().call())]
    tried, seed = 0, None
    while seed is None and tried < 5_000:
        tried += 1
        s = os.urandom(32)
        if newcomer in protocol.compute_committee_by_rejection(s, entries, head, P.committee_size):
            seed = s
    drawn = list(sm.draw_committee(seed, head, P.committee_size, 1).call()) if seed else []
    c.observe(f"newcomer's stake after 256 squatters: {refused or 'accepted'}; entry #{index} of {len(entries)}; "
              f"a seed that seats it found after {tried} tries; the contract's draw for it: "
              f"{'seats the newcomer' if newcomer in drawn else drawn}")
    assert refused is None and index >= 256
    assert seed is not None and newcomer in drawn


# ---------------------------------------------------------------- attack 5: flags outside the commitment
def verdict_round(kit, task, trace, start_cids=None):
    """commit, seal, reveal starts (with `start_cids` if given); the round id, its committee, the honest verdict."""
    round_id = kit.commit(trace)
    kit.seal(round_id)
    if start_cids is None:
        kit.reveal_starts(round_id, trace)
    else:
        kit.reveal_starts(round_id, trace, cids=start_cids(kit.call("TrainingRounds", "round_samples_of", round_id)))
    return round_id, list(kit.call("TrainingRounds", "committee_of", round_id)), kit.replay_verdict(round_id)


def commit_verdicts(kit, round_id, verdicts: dict) -> dict:
    """verdicts: member -> (ends, data_ok, starts_ok); commits each with a fresh salt; member -> salt."""
    salts = {m: os.urandom(32) for m in verdicts}
    for m, (ends, data_ok, starts_ok) in verdicts.items():
        kit.tx("TrainingRounds", "commit_verdict", round_id,
               protocol.compute_verdict_commitment(round_id, m, ends, data_ok, starts_ok, salts[m]), sender=m)
    return salts


def commit_finals(kit, round_id, salts: dict, final_ok) -> None:
    """After the ends, each member's final flag (one for all, or member -> flag) under its verdict's salt."""
    for m, salt in salts.items():
        kit.commit_final(round_id, m, final_ok[m] if isinstance(final_ok, dict) else final_ok, salt)


def attack5_last_revealer(kit, flag: str):
    """c = 3: a colluder contradicts openly, b is honest, the last revealer committed an agreeing verdict and,
    seeing one verdict for and one against, tries `flag`; (what the try got, the round, trainer's loss)."""
    task = kit.create_task()
    trace = kit.build_trace(task)
    round_id, (a, b, last), honest = verdict_round(kit, task, trace)
    verdict = (honest["ends"], honest["data_ok"], honest["starts_ok"])
    lie = [os.urandom(32) for _ in honest["ends"]]
    salts = commit_verdicts(kit, round_id, {a: (lie, True, True), b: verdict, last: verdict})
    kit.reveal_ends(round_id, trace)
    before = kit.balances()
    # the final flags are committed (all true: the final checkpoint hashes to h_M) before any verdict is
    # revealed; the last revealer tries to reveal first, before b committed its final flag
    kit.commit_final(round_id, a, True, salts[a])
    kit.commit_final(round_id, last, True, salts[last])
    try:
        kit.tx("TrainingRounds", "reveal_verdict", round_id, *verdict[:2], salts[last], verdict[2], True, sender=last)
        early = "revealed"
    except ContractsError as exc:
        early = reason_of(exc)
    kit.commit_final(round_id, b, True, salts[b])
    kit.tx("TrainingRounds", "reveal_verdict", round_id, lie, True, salts[a], True, True, sender=a)
    kit.tx("TrainingRounds", "reveal_verdict", round_id, *verdict[:2], salts[b], verdict[2], True, sender=b)
    starts_ok, final_ok = (False, True) if flag == "starts_ok" else (True, False)
    try:
        kit.tx("TrainingRounds", "reveal_verdict", round_id, *verdict[:2], salts[last], starts_ok, final_ok, sender=last)
        got = "counted: contradicts" if kit.call("TrainingRounds", "contradicted", round_id, last) else "counted: agrees"
    except ContractsError as exc:
        got = reason_of(exc)
        kit.tx("TrainingRounds", "reveal_verdict", round_id, *verdict[:2], salts[last], verdict[2], True, sender=last)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    after = kit.balances()
    r = kit.round(round_id)
    return got, early, r, before["stake"][kit.trainer] - after["stake"][kit.trainer]


def test_attack5_last_revealer_cannot_flip_with_a_committed_flag(kit, case):
    c = case("attack 5: the last revealer sees one verdict for and one against the trainer, then flips the round "
             "to fraud with starts_ok = false (outside the commitment in v1)",
             "starts_ok is inside the verdict commitment: the flipped flag does not open it; the round is accepted "
             "and the honest trainer loses nothing")
    got, _, r, lost = attack5_last_revealer(kit, "starts_ok")
    c.observe(f"flip with starts_ok=false: '{got}'; outcome {protocol.outcome_name(r['outcome'])} "
              f"({r['n_contradicting']} of {r['n_revealed']} verdicts contradict); trainer lost {lost / ETH:g} ETH")
    assert got == "rounds: reveal does not match commitment"
    assert r["outcome"] == protocol.Outcome.ACCEPTED and lost == 0


def test_attack5_last_revealer_cannot_flip_with_the_final_flag(kit, case):
    c = case("attack 5, the final flag: the same last revealer flips with final_ok = false (revealed, not committed, "
             "in v1 before 465cfd2: counted, fraud, the honest trainer lost 0.5 ETH)",
             "final_ok has its own commitment after the ends (the second commit_verdict) and no verdict is revealed "
             "before every member committed its final flag: a reveal before that is refused, the flipped flag does "
             "not open the commitment; the round is accepted and the honest trainer loses nothing")
    got, early, r, lost = attack5_last_revealer(kit, "final_ok")
    c.observe(f"reveal before every final flag is committed: '{early}'; flip with final_ok=false: '{got}'; outcome "
              f"{protocol.outcome_name(r['outcome'])} ({r['n_contradicting']} of {r['n_revealed']} verdicts contradict); "
              f"trainer lost {lost / ETH:g} ETH")
    assert early == "rounds: committee still committing"
    assert got == "rounds: final flag does not match commitment"
    assert r["outcome"] == protocol.Outcome.ACCEPTED and r["n_contradicting"] == 1 and lost == 0


# ---------------------------------------------------------------- attack 7: one stake backs many rounds
def test_attack7_one_stake_cannot_back_three_tasks(kit, case):
    c = case("attack 7: one 4 ETH trainer stake passes the 4 ETH minimum of three tasks at once; three caught "
             "forgeries then cost 2 + 1 + 0.5 ETH instead of the 3 x 2 ETH the creators priced in",
             "each open round reserves the task's minimum: the second and third commits are refused while the first "
             "is open, the caught forgery costs the full 50% of its 4 ETH reservation, and the 2 ETH left back no "
             "further 4 ETH task")
    tasks = [kit.create_task(replace(P, min_trainer_stake_wei=4 * ETH)) for _ in range(3)]
    (forger,) = throwaways(kit, 1)
    kit.tx("StakeManager", "stake", protocol.TRAINER, sender=forger, value=4 * ETH)
    cheat = ToyCheat(forge_boundaries=frozenset(range(1, P.n_segments - 1)))  # every draw catches it
    first = kit.build_trace(tasks[0], cheat)
    round_id = kit.commit(first, trainer=forger)
    reserved = kit.call("StakeManager", "reserved", forger)
    refused = []
    for t in tasks[1:]:
        try:
            kit.commit(kit.build_trace(t, cheat), trainer=forger)
            refused.append("COMMITTED")
        except ContractsError as exc:
            refused.append(reason_of(exc))
    try:
        kit.tx("StakeManager", "request_unstake", ETH, sender=forger)
        unstake = "unstaked"
    except ContractsError as exc:
        unstake = reason_of(exc)
    # the first round plays out: the forgery is caught
    kit.seal(round_id)
    kit.reveal_starts(round_id, first, trainer=forger)
    honest = kit.replay_verdict(round_id)
    committee = kit.call("TrainingRounds", "committee_of", round_id)
    salts = commit_verdicts(kit, round_id, {m: (honest["ends"], honest["data_ok"], honest["starts_ok"]) for m in committee})
    kit.reveal_ends(round_id, first, trainer=forger)
    commit_finals(kit, round_id, salts, kit.final_ok(round_id))
    for m in committee:
        kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], honest["data_ok"], salts[m], honest["starts_ok"],
               kit.final_ok(round_id), sender=m)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    left = kit.call("StakeManager", "stake_of", forger)
    try:
        kit.commit(kit.build_trace(tasks[1], cheat), trainer=forger)
        after = "COMMITTED"
    except ContractsError as exc:
        after = reason_of(exc)
    c.observe(f"commit on task 1 reserved {reserved / ETH:g} ETH; tasks 2 and 3: {refused}; unstake 1 ETH meanwhile: "
              f"'{unstake}'; round 1 {protocol.outcome_name(kit.round(round_id)['outcome'])}, forger lost "
              f"{(4 * ETH - left) / ETH:g} ETH (50% of its reservation); task 2 commit with {left / ETH:g} ETH left: '{after}'")
    assert reserved == 4 * ETH
    # (reason_of reads the revert words up to the apostrophe of "task's minimum")
    assert refused == ["rounds: free stake below the task"] * 2
    assert unstake == "stake: amount exceeds the free stake (reserved by open rounds)"
    assert kit.round(round_id)["outcome"] == protocol.Outcome.FRAUD
    assert 4 * ETH - left == protocol.compute_slash(4 * ETH, P.trainer_slash_bps)
    assert after == "rounds: free stake below the task"


# ---------------------------------------------------------------- extra: a fetch that outlasts the window
def test_extra_unavailable_starts_are_a_committed_flag_not_a_no_show(kit, case, tmp_path):
    import socket
    import time
    from types import SimpleNamespace

    from node.store import open_store
    from node.store.fetch import Fetcher, FetchingStore, GatewaySource
    from verifier.node import VerifierNode

    c = case("extra: the trainer reveals start checkpoints it never serves (a fetch that outlasts the window made "
             "every honest member a no-show: the round went void and the cheater paid nothing)",
             "the verifier's fetch is budgeted against the commit window and gives up in time; the members commit "
             "starts_ok=false: fraud, trainer -50% of its reservation, no member loses stake")
    # (1) a node fetch against two sources that accept and never answer stops within the window's budget
    silent = [socket.socket() for _ in range(2)]
    for s in silent:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
    local = open_store(datadir=tmp_path / "verifier")
    fetcher = Fetcher(local, sources=lambda: [GatewaySource(f"http://127.0.0.1:{s.getsockname()[1]}") for s in silent],
                      timeout=10.0)
    store = FetchingStore(local, fetcher, budget_s=120.0)
    unserved = open_store(datadir=tmp_path / "trainer-only").put_bytes(os.urandom(4096))  # never advertised
    window_blocks = 6
    node = SimpleNamespace(store=store, chain=SimpleNamespace(block_number=kit.head, w3=kit.w3), block_seconds=lambda head: 1.0)
    t0 = time.monotonic()
    missing = VerifierNode.fetch_within(node, [unserved], kit.head() + window_blocks)
    took = time.monotonic() - t0
    fetcher.close()
    for s in silent:
        s.close()
    budget = protocol.compute_fetch_budget_s(window_blocks, 1.0)

    # (2) on chain: the committee commits the unavailability; the round is fraud, not void
    task = kit.create_task()
    trace = kit.build_trace(task)
    round_id, committee, honest = verdict_round(kit, task, trace, start_cids=lambda samples: [unserved] * len(samples))
    salts = commit_verdicts(kit, round_id, {m: (honest["ends"], honest["data_ok"], honest["starts_ok"]) for m in committee})
    kit.reveal_ends(round_id, trace)
    commit_finals(kit, round_id, salts, kit.final_ok(round_id))
    before = kit.balances()
    for m in committee:
        kit.tx("TrainingRounds", "reveal_verdict", round_id, honest["ends"], honest["data_ok"], salts[m], honest["starts_ok"],
               kit.final_ok(round_id), sender=m)
    kit.tx("TrainingRounds", "finalize", round_id, sender=kit.deployer)
    after = kit.balances()
    r = kit.round(round_id)
    lost = before["stake"][kit.trainer] - after["stake"][kit.trainer]
    members_lost = sorted({before["stake"][m] - after["stake"][m] for m in committee})
    c.observe(f"fetch from 2 silent sources gave up after {took:.1f} s (budget {budget:g} s of a {window_blocks}-block "
              f"window; the store's default is 120 s); committed starts_ok {honest['starts_ok']}; outcome "
              f"{protocol.outcome_name(r['outcome'])}; trainer -{lost / ETH:g} ETH; members' stake changes {members_lost}")
    assert missing == {unserved} and took <= budget + 2.0
    assert honest["starts_ok"] is False
    assert r["outcome"] == protocol.Outcome.FRAUD
    assert lost == protocol.compute_slash(kit.slash_base(kit.trainer), P.trainer_slash_bps)
    assert members_lost == [0]
