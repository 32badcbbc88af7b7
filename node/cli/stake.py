"""`trainchain stake|unstake|withdraw|status`: the account's stake, its unbonding, rewards and history.

Every command checks first and says why an action cannot happen (another role, below the
minimum, locked by an open round, still unbonding) instead of sending a doomed transaction.
"""
from __future__ import annotations

import click

from node.chain.client import ROLE_NAMES
from node.chain.records import format_ether
from node.cli.options import AMOUNT, NodeContext, node_options
from node.errors import PreflightError
from node.rounds import outcome_name

ROLES = {"trainer": 1, "verifier": 2}


def _staker(chain, who: str) -> dict:
    role, amount, pending, unlock_block, locks = chain.call(chain.stake_manager.functions.stakers(who))
    # open rounds reserve part of the stake (#13, attack 7): only the rest can be unstaked
    reserved = chain.call(chain.stake_manager.functions.reserved(who))
    return {"role": role, "amount": amount, "pending": pending, "unlock_block": unlock_block, "locks": locks,
            "reserved": reserved}


def _tx(receipt) -> dict:
    return {"tx": "0x" + bytes(receipt["transactionHash"]).hex(), "block": receipt["blockNumber"]}


@click.command()
@click.argument("role", type=click.Choice(list(ROLES)))
@click.argument("amount", type=AMOUNT)
@node_options
def stake(node: NodeContext, role: str, amount: int) -> None:
    """Bond AMOUNT (ether, or e.g. 1000000gwei) as a trainer or a verifier. One role per address."""
    chain = node.chain(sign=True)
    who = chain.address
    s = _staker(chain, who)
    role_id = ROLES[role]
    if s["role"] and s["role"] != role_id:
        raise PreflightError(f"{who} is already a {ROLE_NAMES[s['role']]}; an address has one role (use another key)")
    minimum = chain.call(chain.stake_manager.functions.min_stake(role_id))
    if s["amount"] + amount < minimum:
        raise PreflightError(f"{format_ether(s['amount'] + amount)} would be below the {role} minimum of {format_ether(minimum)}")
    balance = chain.balance()
    if balance < amount:
        raise PreflightError(f"{who} holds {format_ether(balance)}, less than the {format_ether(amount)} to stake (plus gas)")
    receipt = chain.transact(chain.stake_manager.functions.stake(role_id), value=amount, what=f"stake {role}")
    total = chain.call(chain.stake_manager.functions.stake_of(who))
    result = {"address": who, "role": role, "staked": amount, "total": total, **_tx(receipt)}
    node.emit(result, f"staked {format_ether(amount)} as {role}: {who} now bonds {format_ether(total)}")


@click.command()
@click.argument("amount", type=AMOUNT, required=False)
@click.option("--all", "everything", is_flag=True, help="Unbond the whole stake.")
@node_options
def unstake(node: NodeContext, amount: int | None, everything: bool) -> None:
    """Start unbonding AMOUNT (or --all); `withdraw` after the unbonding delay."""
    if (amount is None) == (not everything):
        raise click.UsageError("give an AMOUNT or --all (not both)")
    chain = node.chain(sign=True)
    who = chain.address
    s = _staker(chain, who)
    amount = s["amount"] if everything else amount
    if s["amount"] == 0:
        raise PreflightError(f"{who} has no bonded stake")
    if amount > s["amount"]:
        raise PreflightError(f"cannot unstake {format_ether(amount)}: {who} bonds only {format_ether(s['amount'])}")
    if s["locks"]:
        raise PreflightError(f"{who}'s stake is locked by {s['locks']} open round(s); unstake after they finalize")
    if amount > s["amount"] - s["reserved"]:
        raise PreflightError(f"cannot unstake {format_ether(amount)}: {format_ether(s['reserved'])} of {who}'s stake is "
                             f"reserved by open rounds (free {format_ether(s['amount'] - s['reserved'])}); unstake the rest "
                             f"after they finalize")
    receipt = chain.transact(chain.stake_manager.functions.request_unstake(amount), what="unstake")
    after = _staker(chain, who)
    result = {"address": who, "unstaked": amount, "remaining": after["amount"], "pending": after["pending"],
              "unlock_block": after["unlock_block"], **_tx(receipt)}
    node.emit(result, f"unbonding {format_ether(amount)}; withdraw from block {after['unlock_block']} "
                      f"({format_ether(after['amount'])} still bonded)")


@click.command()
@node_options
def withdraw(node: NodeContext) -> None:
    """Withdraw unbonded stake (after the delay) and claim rewards credited to the account."""
    chain = node.chain(sign=True)
    who = chain.address
    s = _staker(chain, who)
    claimable = chain.call(chain.stake_manager.functions.claimable(who))
    now = chain.block_number()
    result = {"address": who, "withdrawn": 0, "claimed": 0, "txs": []}
    unbonding = s["pending"] > 0 and now + 1 < s["unlock_block"]
    if s["pending"] and not unbonding:
        receipt = chain.transact(chain.stake_manager.functions.withdraw(), what="withdraw")
        result["withdrawn"] = s["pending"]
        result["txs"].append(_tx(receipt))
    if claimable:
        receipt = chain.transact(chain.stake_manager.functions.claim(), what="claim")
        result["claimed"] = claimable
        result["txs"].append(_tx(receipt))
    if not result["txs"]:
        if unbonding:
            raise PreflightError(f"{format_ether(s['pending'])} is still unbonding until block {s['unlock_block']} "
                                 f"(now {now}); nothing to claim")
        raise PreflightError(f"nothing to withdraw for {who}: no unbonded stake and no rewards (`trainchain unstake` first)")
    if unbonding:
        result["still_unbonding"] = {"amount": s["pending"], "until_block": s["unlock_block"]}
    node.emit(result, lambda: "\n".join(
        [f"withdrew {format_ether(result['withdrawn'])}, claimed {format_ether(result['claimed'])}"]
        + ([f"  {format_ether(s['pending'])} still unbonding until block {s['unlock_block']}"] if unbonding else [])))


def account_status(chain, who: str) -> dict:
    """Stake, role, locks, unbonding, claimable, and the account's rounds, rewards and slashes (from events)."""
    s = _staker(chain, who)
    rounds: dict[int, dict] = {}

    def entry(round_id: int) -> dict:
        return rounds.setdefault(round_id, {"round": round_id, "task": None, "duty": None, "outcome": "open"})

    for e in chain.events("RoundCommitted", trainer=who):
        r = entry(e["args"]["round_id"])
        r.update(task=e["args"]["task_id"], duty="trainer")
    for e in chain.events("RoundSealed"):
        if who in e["args"]["committee"]:
            entry(e["args"]["round_id"])["duty"] = "verifier"
    for e in chain.events("VerdictCommitted", verifier=who):
        entry(e["args"]["round_id"])["verdict"] = "committed"
    for e in chain.events("VerdictRevealed", verifier=who):
        entry(e["args"]["round_id"])["verdict"] = "contradicts" if e["args"]["contradicts"] else "agrees"
    for e in chain.events("RoundFinalized"):
        if e["args"]["round_id"] in rounds:
            rounds[e["args"]["round_id"]].update(task=e["args"]["task_id"], outcome=outcome_name(e["args"]["outcome"]))
    slashes = [{"amount": e["args"]["amount"], "to": e["args"]["to"], "block": e["blockNumber"], "tx": e["transactionHash"]}
               for e in chain.events("Slashed", who=who)]
    penalties = {e["transactionHash"]: e["args"] for e in chain.events("PenaltyApplied", who=who)}
    for sl in slashes:  # the rounds contract says why
        if sl["tx"] in penalties:
            sl["round"] = penalties[sl["tx"]]["round_id"]
            sl["reason"] = penalties[sl["tx"]]["reason"]
    rewards = [{"round": e["args"]["round_id"], "amount": e["args"]["amount"], "block": e["blockNumber"]}
               for e in chain.events("RewardPaid", who=who)]
    return {
        "address": who,
        "role": ROLE_NAMES.get(s["role"], "none"),
        "stake": s["amount"],
        "eligible": bool(s["role"]) and chain.call(chain.stake_manager.functions.is_eligible(who, s["role"])),
        "locked": s["locks"] > 0 or s["reserved"] > 0,
        "locks": s["locks"],
        "reserved": s["reserved"],
        "pending_withdrawal": {"amount": s["pending"], "unlock_block": s["unlock_block"]},
        "claimable": chain.call(chain.stake_manager.functions.claimable(who)),
        "balance": chain.balance(who),
        "block": chain.block_number(),
        "rounds": sorted(rounds.values(), key=lambda r: r["round"]),
        "rewards": rewards,
        "slashes": slashes,
        "slashed_total": sum(sl["amount"] for sl in slashes),
    }


@click.command()
@click.argument("address", required=False)
@click.option("--task", "task_id", type=click.IntRange(1), default=None,
              help="Also the task's epochs and their slots (an epoch task, #14).")
@node_options
def status(node: NodeContext, address: str | None, task_id: int | None) -> None:
    """Stake, role, locks, unbonding, claimable rewards, rounds and slashes of ADDRESS (default: your account);
    with --task, that task's epochs: each slot's trainer and outcome, the accepted slots, the epoch's state."""
    from node.keys import normalize_address

    who = normalize_address(address) if address else node.account_address()
    info = account_status(node.chain(), who)
    if task_id is not None:
        from node.cli.task import epochs_summary

        info["epochs"] = epochs_summary(node.chain(), task_id)

    def text() -> str:
        p = info["pending_withdrawal"]
        lines = [
            f"{who} ({info['role']}{'' if info['eligible'] or info['role'] == 'none' else ', below minimum'}) at block {info['block']}",
            f"  stake {format_ether(info['stake'])}" + (f", {format_ether(info['reserved'])} reserved by open rounds" if info["reserved"] else ""),
            f"  unbonding {format_ether(p['amount'])}" + (f" (withdrawable from block {p['unlock_block']})" if p["amount"] else ""),
            f"  claimable {format_ether(info['claimable'])}; balance {format_ether(info['balance'])}",
        ]
        lines += [f"  round {r['round']} (task {r['task']}): {r['duty']}, {r['outcome']}"
                  + (f", verdict {r['verdict']}" if r.get("verdict") else "") for r in info["rounds"]]
        lines += [f"  slashed {format_ether(sl['amount'])}" + (f" in round {sl['round']} ({sl['reason']})" if "round" in sl else "")
                  for sl in info["slashes"]]
        if info.get("epochs"):
            from node.cli.task import epochs_text

            lines += [f"task {task_id}, epochs (slots are rounds):", *epochs_text(info["epochs"])]
        return "\n".join(lines)

    node.emit(info, text)
