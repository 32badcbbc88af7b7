"""Appeals (issue #15) between real node processes: anvil (0.5 s blocks), the contracts deployed WITH Disputes (and so
Appeals), three honest `trainchain verifier run` processes and the party processes (`trainchain trainer run`,
`python -m node.adversaries`), the tiny spec on the real engine. Nobody is told about disputes or appeals: the nodes
open, defend, name, draw, vote and appeal from what they see on chain (DisputeRole.tick_disputes), the jurors answer
with their own replays of the named step, in the dispute's jury and again in the appeal's.

    .venv/bin/python -m pytest -p no:pytest-brownie tests/adversarial/test_appeal_nodes.py

Two cases, one network (two tasks; the accuser serves the first only and opted out of the second):
- a griefing accuser (MisbehavingVerifier "accuse" with --appeal) disputes an honest trainer's round with a made-up
  answer, loses the jury's count and appeals it: the appeal jury (every other verifier) upholds the trainer;
- a cheating trainer (--skip-segment, --defend) defends its forgery through the jury with a span that ends at its
  forged leaf, loses the count and appeals it: the appeal jury upholds the conviction.
Every money path is asserted from the rules (node/protocol.py) against the chain: each party's stake, what was
credited to it (claimable + claimed), its ETH (bonds sent, gas, claims), the treasury and the events' payouts.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from node import protocol
sys.path.append(str(Path(__file__).resolve().parents[1] / "nodes"))  # last: shadows nothing
from nodes_helpers import NODE_CONFIG, start_disputes_net, tiny_spec  # noqa: E402  (the node suite's helpers)

STAKE = 4 * 10**18
TIMEOUT = 420
# a jury's windows in blocks (0.5 s): a juror replays one step of the tiny model, and a jury's commit window closes
# early once every juror committed; the fixed waits are each jury's reveal deadline and nothing else
JURY_WINDOWS = {"reveal_window": 24, "commit_verdicts_window": 40, "reveal_verdicts_window": 40}


@pytest.fixture(scope="module")
def anet(tmp_path_factory):
    """Three honest verifier processes and an accusing one (dev accounts 2-5), two tasks: `accused` (committee of 4:
    every verifier sits on it, the accuser too) and `forged` (committee of 1; the accuser opted out of it, so it
    sits on none of its juries)."""
    net = start_disputes_net(tmp_path_factory.mktemp("appeal-nodes"))
    try:
        net.chain = net.client()
        net.honest = [net.add_staked_node(f"verifier{i}", 2 + i, "verifier", STAKE, config=NODE_CONFIG) for i in range(3)]
        net.accuser = net.add_staked_node("accuser", 5, "verifier", STAKE, config=NODE_CONFIG)
        base = tiny_spec(net.store())
        net.accused_spec = base.with_(protocol={**JURY_WINDOWS, "committee_size": 4, "quorum": 2})
        net.forged_spec = base.with_(protocol={**JURY_WINDOWS, "committee_size": 1, "quorum": 1})
        net.accused = net.create_task(net.accused_spec, 2 * 10**18)["task_id"]
        net.forged = net.create_task(net.forged_spec, 2 * 10**18)["task_id"]
        accuser_chain = net.client(net.accuser.account)
        accuser_chain.transact(accuser_chain.stake_manager.functions.optout(net.forged), what="opt out")
        for v in net.honest:
            net.spawn_verifier(v)
        net.spawn_adversary(net.accuser, net.accused, "--verifier", "accuse", "--appeal")
        yield net
    finally:
        net.stop()


# ---------------------------------------------------------------- the money, read from the chain
class Ledger:
    """Each address's stake, claimable balance and ETH at the start of a case; `delta(who)` after it: what its stake
    moved, what was credited to it (claimable now + claimed since, minus claimable before), its ETH change and the
    value (the non-zero ones: bonds) and fees of every transaction it sent meanwhile (blocks scanned)."""

    def __init__(self, net, addresses: list[str]):
        self.net, self.chain, self.w3 = net, net.chain, net.web3()
        self.addresses = list(addresses)
        self.block = self.chain.block_number()
        self.before = {a: self._read(a, self.block) for a in self.addresses}
        self.treasury = self.chain.call(self.chain.stake_manager.functions.treasury(), self.block)

    def _read(self, who: str, block: int) -> dict:
        """At `block`, not "latest": the events are summed up to it, and the nodes keep sending (claims)."""
        sm = self.chain.stake_manager.functions
        return {"stake": self.chain.call(sm.stake_of(who), block), "claimable": self.chain.call(sm.claimable(who), block),
                "eth": self.w3.eth.get_balance(who, block)}

    def close(self) -> dict:
        """Read every address at the current block; scan the blocks since the start for the transactions each sent."""
        self.end = self.chain.block_number()
        self.after = {a: self._read(a, self.end) for a in self.addresses}
        self.treasury_delta = self.chain.call(self.chain.stake_manager.functions.treasury(), self.end) - self.treasury
        self.sent = {a: [] for a in self.addresses}  # (value, fee) of each transaction
        for n in range(self.block + 1, self.end + 1):
            for tx in self.w3.eth.get_block(n, full_transactions=True)["transactions"]:
                if tx["from"] in self.sent:
                    receipt = self.w3.eth.get_transaction_receipt(tx["hash"])
                    self.sent[tx["from"]].append((tx["value"], receipt["gasUsed"] * receipt["effectiveGasPrice"]))
        return {a: self.delta(a) for a in self.addresses}

    def _sum(self, event: str, **filters) -> int:
        return sum(e["args"]["amount"] for e in self.chain.events(event, from_block=self.block + 1, to_block=self.end, **filters))

    def delta(self, who: str) -> dict:
        b, a = self.before[who], self.after[who]
        claimed = self._sum("Claimed", who=who)
        return {"stake": a["stake"] - b["stake"], "credited": a["claimable"] + claimed - b["claimable"],
                "claimed": claimed, "eth": a["eth"] - b["eth"], "values": sorted(v for v, _ in self.sent[who] if v),
                "fees": sum(f for _, f in self.sent[who])}

    def assert_eth_accounted(self) -> None:
        """Every address's ETH moved by exactly its claims, less what it sent (values and fees): nothing else paid it."""
        for who in self.addresses:
            d = self.delta(who)
            assert d["eth"] == d["claimed"] - sum(d["values"]) - d["fees"], (who, d)


def task_params(chain, task_id: int):
    """The task's parameters as the chain holds them (records.TaskParams; p["name"] reads a field)."""
    return chain.get_task(task_id).params


def dispute_record(chain, dispute_id: int) -> dict:
    """What the payouts need of Disputes.disputes(id): bond, gas price, claimed hash, challenger's answer."""
    v = chain.call(chain.disputes.functions.disputes(dispute_id))
    return {"gas_price": v[12], "bond": v[13], "claimed_hash": bytes(v[17]), "challenger_answer": bytes(v[24])}


def paid(chain, event: str, block: int, **filters) -> list[tuple[str, int, str]]:
    """(who, amount, reason) of DisputePaid / AppealPaid since `block`."""
    return [(e["args"]["who"], e["args"]["amount"], e["args"]["reason"]) for e in chain.events(event, from_block=block, **filters)]


def replayed_spans(node) -> list[Path]:
    """The start checkpoints a node fetched to replay a disputed span (node/roles/disputes.compute_span_replay)."""
    return sorted(node.datadir.rglob("dispute-start-*.safetensors"))


# ---------------------------------------------------------------- the cases
def test_a_griefing_accuser_appeals_its_lost_dispute_and_loses_both_bonds(anet, case):
    c = case("real nodes, Disputes + Appeals deployed: an accuser (`--verifier accuse --appeal`) disputes an honest "
             "trainer's round with a made-up answer, loses the jury's count (3 honest jurors) and appeals it",
             expected="the honest verifier processes vote in both juries with their own replays; the appeal jury "
                      "(every verifier but the accuser) upholds the trainer: round accepted, the accuser loses its "
                      "dispute bond and its appeal bond (and its minority seat slash), jurors and trainer paid from them")
    net = anet
    chain = net.chain
    trainer = net.add_staked_node("trainer", 1, "trainer", STAKE, config=NODE_CONFIG)
    honest = [v.address for v in net.honest]
    parties = [trainer.address, net.accuser.address, *honest]
    ledger = Ledger(net, parties)
    net.spawn_trainer(trainer, net.accused, 1)
    (rnd,) = net.wait_finalized(net.accused, 1, watch=[*net.honest, net.accuser], timeout=TIMEOUT)
    start = ledger.block + 1
    delta = ledger.close()
    p = task_params(chain, net.accused)

    (opened,) = [e["args"] for e in chain.events("DisputeOpened", round_id=rnd.round_id)]
    dispute_id = opened["dispute_id"]
    d = dispute_record(chain, dispute_id)
    jury = list(chain.call(chain.disputes.functions.jury_of(dispute_id)))
    votes = [e["args"] for e in chain.events("VoteRevealed", dispute_id=dispute_id)]
    (appealed,) = [e["args"] for e in chain.events("DisputeAppealed", dispute_id=dispute_id)]
    appeal_id = appealed["appeal_id"]
    (drawn,) = [e["args"] for e in chain.events("AppealJuryDrawn", appeal_id=appeal_id)]
    committed = [e["args"]["juror"] for e in chain.events("AppealVoteCommitted", appeal_id=appeal_id)]
    revealed = [e["args"] for e in chain.events("AppealVoteRevealed", appeal_id=appeal_id)]
    (appeal_resolved,) = [e["args"] for e in chain.events("AppealResolved", appeal_id=appeal_id)]
    (resolved,) = [e["args"] for e in chain.events("DisputeResolved", dispute_id=dispute_id)]
    dispute_paid = paid(chain, "DisputePaid", start, dispute_id=dispute_id)
    appeal_paid = paid(chain, "AppealPaid", start, appeal_id=appeal_id)
    penalties = {e["who"]: (e["amount"], e["reason"]) for e in net.penalties(rnd.round_id)}
    seat = chain.call(chain.rounds.functions.seat_reservation(rnd.round_id))
    c.observe(f"outcome {protocol.Outcome(rnd.outcome).label}; dispute {dispute_id} by the accuser "
              f"{opened['challenger'] == net.accuser.address}, jury {len(jury)} voted trainer_right "
              f"{[v['trainer_right'] for v in votes]}; appeal {appeal_id} by the accuser "
              f"{appealed['appellant'] == net.accuser.address} (bond {appealed['bond']} wei), jury {len(drawn['jury'])} "
              f"sides {[r['side'] for r in revealed]}; resolved trainer_won {appeal_resolved['trainer_won']} "
              f"appellant_won {appeal_resolved['appellant_won']}, dispute reason {resolved['reason']!r}; accuser stake "
              f"{delta[net.accuser.address]['stake']:+d} wei, bonds sent {delta[net.accuser.address]['values']}; trainer "
              f"credited {delta[trainer.address]['credited']} wei; jurors credited {[delta[h]['credited'] for h in honest]}")

    # the moves: the accuser's dispute, the honest jury for the trainer, the accuser's appeal, every other verifier on it
    assert opened["challenger"] == net.accuser.address and opened["trainer"] == trainer.address
    assert d["challenger_answer"] not in (protocol.ZERO_HASH, d["claimed_hash"])  # a made-up answer, revealed
    assert sorted(jury) == sorted(honest)
    assert sorted(v["juror"] for v in votes) == sorted(honest) and all(v["trainer_right"] for v in votes)
    assert appealed["appellant"] == net.accuser.address
    assert appealed["bond"] >= protocol.compute_appeal_bond(p["verifier_reward_wei"], 0)
    assert sorted(drawn["jury"]) == sorted(honest) and drawn["dispute_id"] == dispute_id
    assert sorted(committed) == sorted(honest)
    assert sorted(r["juror"] for r in revealed) == sorted(honest)
    assert all(r["side"] == protocol.VOTE_TRAINER and bytes(r["answer"]) == d["claimed_hash"] for r in revealed)
    assert appeal_resolved["trainer_won"] and not appeal_resolved["appellant_won"]
    assert resolved["trainer_won"] and resolved["reason"] == "appeal"
    # the honest processes played both juries themselves: their replay's start fetched, their duties recorded
    for v in net.honest:
        db = net.node_db(v, "verifier")
        assert replayed_spans(v), v.name
        assert [x["duty"] for x in db.duties(duty="dispute:reveal_vote")] and db.duties(duty="appeal:reveal_vote"), v.name
    # the round: accepted (not fraud), the oracle moved to the trainer's state
    assert rnd.outcome == protocol.Outcome.ACCEPTED
    assert chain.latest_model(net.accused).state_hash == rnd.final_hash

    # the money. The dispute bond pays the jurors, the trainer's gas and the rest to the trainer (rules: the loser's pot)
    d_juror, d_trainer, d_burned = protocol.compute_dispute_payouts(
        d["bond"], len(honest), p["verifier_reward_wei"], protocol.DEFENDER_GAS_ALLOWANCE * d["gas_price"], protocol.BPS)
    assert d_burned == 0 and d["bond"] == opened["bond"]
    assert Counter(dispute_paid) == Counter([(h, d_juror, "juror reward") for h in honest]
                                            + [(trainer.address, d_trainer, "bond to the trainer")])
    # the appeal bond pays the appeal jurors the task's reward each, all of its rest to the other party: the trainer
    a_juror, a_rest, a_treasury = protocol.compute_dispute_payouts(appealed["bond"], len(honest), p["verifier_reward_wei"], 0, protocol.BPS)
    assert a_juror == p["verifier_reward_wei"] and a_treasury == 0
    assert Counter(appeal_paid) == Counter([(h, a_juror, "juror reward") for h in honest]
                                           + [(trainer.address, a_rest, "appeal bond to the other party")])
    # each party's ledger: stake, credits, ETH
    minority = protocol.compute_slash(seat, p["verifier_slash_bps"])
    assert penalties == {net.accuser.address: (minority, "minority verdict")}
    acc = delta[net.accuser.address]
    assert acc["stake"] == -minority and acc["credited"] == 0
    assert acc["values"] == sorted([d["bond"], appealed["bond"]])  # both bonds sent, nothing came back
    assert acc["eth"] == -(d["bond"] + appealed["bond"]) - acc["fees"]
    assert delta[trainer.address]["stake"] == 0
    assert delta[trainer.address]["credited"] == p["trainer_reward_wei"] + d_trainer + a_rest
    for h in honest:
        assert delta[h]["stake"] == 0, h
        assert delta[h]["credited"] == p["verifier_reward_wei"] + d_juror + a_juror, h
        assert delta[h]["values"] == [], h
    ledger.assert_eth_accounted()
    assert ledger.treasury_delta == minority  # no juror of either jury slashed


def test_a_forger_appeals_its_conviction_and_loses_the_appeal_bond_too(anet, case):
    c = case("real nodes, Disputes + Appeals deployed: a trainer skips the last segment and defends its forgery "
             "(`--skip-segment 3 --defend`: a posted span ending at its forged leaf), loses the jury's count, appeals it",
             expected="the challenger names the forged step; both juries (the other honest verifiers) replay it and "
                      "convict; the appeal upholds the conviction: fraud, the trainer loses its fraud slash and its "
                      "appeal bond (to the appeal jurors and the challenger)")
    net = anet
    chain = net.chain
    cheater = net.add_staked_node("forger", 6, "trainer", STAKE, config=NODE_CONFIG)
    honest = [v.address for v in net.honest]
    ledger = Ledger(net, [cheater.address, *honest])
    last = net.forged_spec.segments_per_round - 1  # always checked
    net.spawn_adversary(cheater, net.forged, "--skip-segment", str(last), "--defend", "--rounds", "1")
    (rnd,) = net.wait_finalized(net.forged, 1, watch=net.honest, timeout=TIMEOUT)
    start = ledger.block + 1
    delta = ledger.close()
    p = task_params(chain, net.forged)

    (opened,) = [e["args"] for e in chain.events("DisputeOpened", round_id=rnd.round_id)]
    dispute_id, challenger = opened["dispute_id"], opened["challenger"]
    others = [h for h in honest if h != challenger]
    d = dispute_record(chain, dispute_id)
    posted = chain.events("StepsPosted", dispute_id=dispute_id)
    named = [e["args"] for e in chain.events("StepNamed", dispute_id=dispute_id)]
    votes = [e["args"] for e in chain.events("VoteRevealed", dispute_id=dispute_id)]
    (appealed,) = [e["args"] for e in chain.events("DisputeAppealed", dispute_id=dispute_id)]
    appeal_id = appealed["appeal_id"]
    (drawn,) = [e["args"] for e in chain.events("AppealJuryDrawn", appeal_id=appeal_id)]
    revealed = [e["args"] for e in chain.events("AppealVoteRevealed", appeal_id=appeal_id)]
    (appeal_resolved,) = [e["args"] for e in chain.events("AppealResolved", appeal_id=appeal_id)]
    (resolved,) = [e["args"] for e in chain.events("DisputeResolved", dispute_id=dispute_id)]
    dispute_paid = paid(chain, "DisputePaid", start, dispute_id=dispute_id)
    appeal_paid = paid(chain, "AppealPaid", start, appeal_id=appeal_id)
    c.observe(f"outcome {protocol.Outcome(rnd.outcome).label}; dispute {dispute_id}: steps posted {bool(posted)}, "
              f"named {[n.get('step') for n in named]}, jury {[v['trainer_right'] for v in votes]}; appeal {appeal_id} by "
              f"the trainer {appealed['appellant'] == cheater.address} (bond {appealed['bond']} wei), jury "
              f"{len(drawn['jury'])} sides {[r['side'] for r in revealed]}; resolved trainer_won "
              f"{appeal_resolved['trainer_won']}, dispute reason {resolved['reason']!r}; trainer stake "
              f"{delta[cheater.address]['stake']:+d} wei, sent {delta[cheater.address]['values']}; challenger credited "
              f"{delta[challenger]['credited']} wei")

    # the moves: the trainer posted (a jury, not its miss, decided), the jury convicted, it appealed, the appeal upheld
    assert opened["trainer"] == cheater.address and challenger in honest
    assert posted and named and votes
    assert sorted(v["juror"] for v in votes) == sorted(others) and not any(v["trainer_right"] for v in votes)
    assert appealed["appellant"] == cheater.address
    assert sorted(drawn["jury"]) == sorted(others)
    assert sorted(r["juror"] for r in revealed) == sorted(others)
    assert all(r["side"] == protocol.VOTE_CHALLENGER and bytes(r["answer"]) == d["challenger_answer"] for r in revealed)
    assert not appeal_resolved["trainer_won"] and not appeal_resolved["appellant_won"]
    assert not resolved["trainer_won"] and resolved["reason"] == "appeal"
    for v in net.honest:
        if v.address in others:
            assert replayed_spans(v) and net.node_db(v, "verifier").duties(duty="appeal:reveal_vote"), v.name
    assert rnd.outcome == protocol.Outcome.FRAUD

    # the money. The fraud slash of the trainer's reservation pays the jurors, the challenger's gas and its share
    reservation = chain.call(chain.rounds.functions.trainer_reservation(rnd.round_id))
    pot = protocol.compute_slash(reservation, p["trainer_slash_bps"])
    f_juror, f_challenger, f_treasury = protocol.compute_dispute_payouts(
        pot, len(others), p["verifier_reward_wei"], protocol.CHALLENGER_GAS_ALLOWANCE * d["gas_price"], p["fraud_reward_bps"])
    assert Counter(dispute_paid) == Counter([(challenger, d["bond"], "bond returned")]
                                            + [(h, f_juror, "juror reward") for h in others]
                                            + [(challenger, f_challenger, "fraud reward"), (cheater.address, pot, "fraud slash")])
    # the appeal bond: the appeal jurors the task's reward each, the rest to the other party (the challenger)
    a_juror, a_rest, a_treasury = protocol.compute_dispute_payouts(appealed["bond"], len(others), p["verifier_reward_wei"], 0, protocol.BPS)
    assert a_juror == p["verifier_reward_wei"] and a_treasury == 0
    assert Counter(appeal_paid) == Counter([(h, a_juror, "juror reward") for h in others]
                                           + [(challenger, a_rest, "appeal bond to the other party")])
    t = delta[cheater.address]
    assert t["stake"] == -pot and t["credited"] == 0
    assert t["values"] == [appealed["bond"]]  # its appeal bond, never back
    assert delta[challenger]["values"] == [d["bond"]]
    assert delta[challenger]["credited"] == d["bond"] + f_challenger + a_rest
    for h in honest:
        assert delta[h]["stake"] == 0, h  # the member's contradiction was right; the jurors voted with the verdict
    for h in others:
        assert delta[h]["credited"] == f_juror + a_juror and delta[h]["values"] == [], h
    ledger.assert_eth_accounted()
    assert ledger.treasury_delta == f_treasury
