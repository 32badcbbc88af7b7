"""Many rounds, mixed strategies, the protocol's own rules (whitepaper §5.6).

    .venv/bin/python whitepaper/simulate.py --rounds 2000 --json

Seeds, samples, committees, the tally, slashes and the fraud split come from
node/protocol.py (the reference the contracts are tested against); the chain and the
training are replaced by their outcomes: a replayed segment matches the trainer's end
hash iff the segment is honest, and a verifier that did not replay cannot know the
hash. The costs of compute and the value of a forgery are modelling assumptions,
listed in ASSUMPTIONS and printed with every result.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node import protocol  # noqa: E402

ETH = 10**18

ASSUMPTIONS = {
    # what the protocol does not fix, so the simulation has to assume (in units of the trainer reward R)
    "trainer compute cost per round C": 0.5,        # an honest trainer's margin is R - C
    "value of an accepted forgery V": 1.0,           # what a forged state is worth to its author
}
POPULATION = {  # scenario A: many cheaters, a few lazy and colluding verifiers
    "trainers": {"honest": 2, "skipper f=1/4": 1, "skipper f=1/2": 1, "forger (random segment)": 1,
                 "forger (segment M-2)": 1},
    "verifiers": {"honest": 14, "lazy": 3, "colluding": 3},
}
RARE_CHEATING = {  # scenario B: cheating is rare; is laziness still worth it?
    "trainers": {"honest": 9, "forger (random segment)": 1},
    "verifiers": {"honest": 14, "lazy": 3, "colluding": 3},
}


# ------------------------------------------------------------ the sampling rule, as the analysis needs it
def random_sample_count(M: int, s: int) -> int:
    """How many segments compute_samples draws at random for parameter s (M-1 is checked on top)."""
    seed = b"\x00" * 32
    return len(drawn_segments(protocol.compute_samples(seed, M, s), M))


def drawn_segments(samples: list[int], M: int) -> set[int]:
    """The randomly drawn segments of a sample list: every start except an undrawn M-1."""
    return set(samples) - {M - 1}


def checked_segments(samples: list[int], M: int) -> set[int]:
    """Segments whose transition a check replays: the drawn ones and always M-1 (a start at
    M-2 is the span M-2..M, which covers M-1 too; see compute_check_ends)."""
    ends = protocol.compute_check_ends(samples, M)
    return {j for start, end in zip(samples, ends) for j in range(start, end)}


def describe_sample_count(P: dict) -> str:
    return f"s = {P['s']} random + the last = {random_sample_count(P['M'], P['s']) + 1}"


def draw(seed_int: int, M: int, s: int) -> list[int]:
    """The start leaves compute_samples gives for this seed."""
    seed = protocol.compute_seed(seed_int.to_bytes(32, "big"), 1)
    return protocol.compute_samples(seed, M, s)


def measured_detection(M: int, s: int, bad: set[int], trials: int) -> float:
    """Fraction of seeds whose samples (drawn by the protocol's rule) hit a bad segment."""
    rng = random.Random(f"detect:{M}:{s}:{sorted(bad)}")
    hits = sum(bool(bad & checked_segments(draw(rng.getrandbits(256), M, s), M)) for _ in range(trials))
    return hits / trials


def measured_detection_random(M: int, s_random: int, bad: set[int], trials: int) -> float:
    """As measured_detection, for s_random random samples (the last segment is never bad here)."""
    assert M - 1 not in bad
    return measured_detection(M, s_random, bad, trials)


def sampled_segments_ever(M: int, s: int, trials: int = 2000) -> set[int]:
    rng = random.Random(f"coverage:{M}:{s}")
    seen: set[int] = set()
    for _ in range(trials):
        seen |= checked_segments(draw(rng.getrandbits(256), M, s), M)
    return seen


def describe_unchecked_segments(P: dict) -> str:
    """Which segments the rule can never check, found by drawing, not by reading the rule."""
    from analysis import detection_nonadjacent

    M, s = P["M"], P["s"]
    trials = 2000
    never = sorted(set(range(M)) - sampled_segments_ever(M, s, trials))
    if never:
        return (f"**Segments that are never checked.** Drawing the rule {trials} times at the defaults "
                f"(M = {M}, s = {s}) never checks segment(s) {', '.join(map(str, never))}: a forged state after "
                "them is accepted with certainty. Source: `make whitepaper` (`whitepaper/simulate.py`).")
    p_m2 = detection_nonadjacent(M, s, {M - 2})
    return (
        f"**Every segment can be checked.** Drawing the rule {trials} times at the defaults (M = {M}, s = {s}) "
        f"checks every segment at least once; segment M−2 is checked with probability {p_m2:.3f} (exact). "
        "This was not so in the first version of the rule, which drew from 0..M−3 only: segment M−2 ends at "
        "h_{M−1}, the revealed start of the always-checked last segment, so drawing it as a check of its own "
        "would have let a verifier copy its end, and the transition h_{M−2} → h_{M−1} was never replayed — a "
        "trainer could replace h_{M−1} by any state (a forged model) and train the last segment honestly from "
        "it, accepted with certainty. This analysis and the adversarial suite found it independently; the "
        "contracts now draw from 0..M−2 and check a drawn M−2 together with M−1 as one 2k-step span from "
        "h_{M−2} to h_M, so h_{M−1} is never revealed (`compute_check_ends`, §3.4). Source: `make whitepaper` "
        "(`whitepaper/simulate.py: describe_unchecked_segments`)."
    )


def describe_tight_parameters(P: dict) -> str:
    """The rule at its smallest allowed M = 2s+1: how many sample sets remain, how uneven the checks are."""
    from analysis import candidate_segments, count_nonadjacent_subsets, detection_nonadjacent

    s = P["s"]
    M = 2 * s + 1
    sets = count_nonadjacent_subsets(candidate_segments(M), s)
    per = [detection_nonadjacent(M, s, {j}) for j in range(candidate_segments(M))]
    Md, sd = P["M"], P["s"]
    per_d = [detection_nonadjacent(Md, sd, {j}) for j in range(candidate_segments(Md))]
    return (
        f"**Tight parameters make the draw uneven.** The contracts accept any M ≥ 2s+1. At M = 2s+1 = {M} "
        f"(s = {s}) only {sets} sample sets exist, and the probability that a given segment is checked ranges "
        f"from {min(per):.3f} to {max(per):.3f}; at the defaults (M = {Md}) it ranges from {min(per_d):.3f} to "
        f"{max(per_d):.3f}. The number of sample sets is C(M−s, s); a task should keep M well above 2s+1. "
        "Source: `make whitepaper` (`whitepaper/simulate.py: describe_tight_parameters`, exact counts from "
        "`analysis.py`)."
    )


# ------------------------------------------------------------ committee capture, by the tally rule
def colluders_needed_to_capture(c: int) -> int:
    """Smallest number of colluders among c full reveals for which compute_tally accepts a fraud."""
    for x in range(c + 1):
        if protocol.compute_tally(c, c - x, 1) == protocol.Outcome.ACCEPTED:
            return x
    return c + 1


# ------------------------------------------------------------ agents
@dataclass
class Agent:
    name: str
    strategy: str
    role: str
    profit: float = 0.0          # ETH
    rounds: int = 0              # rounds trained or committee seats held
    slashed: int = 0             # times slashed
    history: list = field(default_factory=list)


def summarize_by_strategy(agents: list[Agent], counts: dict | None = None) -> dict:
    """Per strategy of `agents`: agents, rounds (or seats), slashes, profit and profit per round; plus the
    strategy's counters in `counts` ((role, strategy) -> Counter) when a run keeps some."""
    out = {}
    for st in dict.fromkeys(a.strategy for a in agents):
        group = [a for a in agents if a.strategy == st]
        n_rounds = sum(a.rounds for a in group)
        out[st] = {"agents": len(group), "rounds": n_rounds, "slashed": sum(a.slashed for a in group),
                   "profit_eth": sum(a.profit for a in group),
                   "profit_per_round_eth": sum(a.profit for a in group) / n_rounds if n_rounds else 0.0,
                   **dict((counts or {}).get((group[0].role, st), {}))}
    return out

def bad_segments(strategy: str, M: int, rng: random.Random) -> set[int]:
    """Which transitions a trainer of this strategy forges or skips this round."""
    # among the segments the rule draws from (0..M-2): the last, M-1, is always checked
    candidates = list(range(M - 1))
    if strategy == "honest":
        return set()
    if strategy.startswith("skipper"):
        frac = {"skipper f=1/4": 0.25, "skipper f=1/2": 0.5}[strategy]
        return set(rng.sample(candidates, max(1, round(frac * M))))
    if strategy == "forger (random segment)":
        return {rng.choice(candidates)}
    if strategy == "forger (segment M-2)":
        return {M - 2}
    raise ValueError(f"simulate: unknown strategy {strategy!r}")


def run(P: dict, rounds: int, seed: int = 7, population: dict | None = None) -> dict:
    """Play `rounds` rounds; returns per-strategy outcomes and cumulative profit series."""
    population = population or POPULATION
    rng = random.Random(seed)
    M, s, c, q = P["M"], P["s"], P["c"], P["q"]
    R = P["trainer_reward_wei"]
    Rv = P["verifier_reward_wei"]
    C = ASSUMPTIONS["trainer compute cost per round C"] * R
    V = ASSUMPTIONS["value of an accepted forgery V"] * R
    checked = random_sample_count(M, s) + 1
    replay_cost = C * checked / M
    trainer_stake, verifier_stake = P["min_trainer_stake_wei"], P["min_verifier_stake_wei"]
    fraud_reward_bps = P["fraud_reward_bps"]

    trainers = [Agent(f"{st}#{i}", st, "trainer") for st, n in population["trainers"].items() for i in range(n)]
    verifiers = [Agent(f"{st}#{i}", st, "verifier") for st, n in population["verifiers"].items() for i in range(n)]
    active = list(range(len(verifiers)))
    rng.shuffle(active)  # the contract's order of the active set is arbitrary
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    honest_slash_causes: dict[str, int] = defaultdict(int)

    for round_id in range(1, rounds + 1):
        trainer = trainers[(round_id - 1) % len(trainers)]
        seed_bytes = protocol.compute_seed(rng.getrandbits(256).to_bytes(32, "big"), round_id)
        samples = checked_segments(protocol.compute_samples(seed_bytes, M, s), M)
        committee = [verifiers[active[i]] for i in protocol.compute_committee_indices(seed_bytes, len(active), c)]
        bad = bad_segments(trainer.strategy, M, rng)
        caught = bool(bad & set(samples))
        cheating = bool(bad)

        contradicts = {}
        for v in committee:
            if v.strategy == "lazy":
                contradicts[v.name] = True            # a guessed hash never matches
            elif v.strategy == "colluding" and cheating:
                contradicts[v.name] = False           # told the forged hashes by the trainer
            else:
                contradicts[v.name] = caught          # replayed: differs iff a sample is bad
        n_contra = sum(contradicts.values())
        outcome = protocol.compute_tally(len(committee), n_contra, q)
        outcomes[trainer.strategy][protocol.outcome_name(outcome)] += 1

        # trainer
        trainer.rounds += 1
        trainer.profit -= (C - C * len(bad) / M) / ETH
        t_reward, v_reward = protocol.compute_rewards(outcome, R, Rv, c - n_contra)
        trainer.profit += t_reward / ETH
        if outcome == protocol.Outcome.ACCEPTED and trainer.strategy.startswith("forger"):
            trainer.profit += V / ETH
        per_verifier = 0
        if outcome == protocol.Outcome.FRAUD:
            slashed = protocol.compute_slash(trainer_stake, P["trainer_slash_bps"])
            trainer.profit -= slashed / ETH
            trainer.slashed += 1
            per_verifier, _ = protocol.compute_fraud_split(slashed, fraud_reward_bps, n_contra)
            if trainer.strategy == "honest":
                lazy = sum(v.strategy == "lazy" for v in committee)
                honest_slash_causes["lazy majority" if 2 * lazy > len(committee) else "other"] += 1

        # committee
        for v in committee:
            v.rounds += 1
            if v.strategy != "lazy" and not (v.strategy == "colluding" and cheating):
                v.profit -= replay_cost / ETH
            majority = contradicts[v.name] == (outcome == protocol.Outcome.FRAUD)
            if majority:
                v.profit += (v_reward if outcome == protocol.Outcome.ACCEPTED else per_verifier) / ETH
            else:
                v.profit -= protocol.compute_slash(verifier_stake, P["verifier_slash_bps"]) / ETH
                v.slashed += 1
        for a in trainers + verifiers:
            a.history.append(a.profit)

    series = {}
    for agents in (trainers, verifiers):
        for st in dict.fromkeys(a.strategy for a in agents):
            group = [a for a in agents if a.strategy == st]
            label = f"{group[0].role}: {st}"
            series[label] = [sum(a.history[i] for a in group) / len(group) for i in range(rounds)]
    return {
        "rounds": rounds, "params": {k: P[k] for k in ("S", "k", "M", "s", "c", "q")},
        "assumptions": dict(ASSUMPTIONS), "population": population,
        "trainers": summarize_by_strategy(trainers), "verifiers": summarize_by_strategy(verifiers),
        "trainer_outcomes": {k: dict(v) for k, v in outcomes.items()},
        "honest_trainer_slashes_by_cause": dict(honest_slash_causes),
        "cumulative_profit_eth": series,
    }


def verifier_economics_markdown(P: dict) -> str:
    """Does honest verification pay at these parameters, under ASSUMPTIONS?"""
    R, Rv = P["trainer_reward_wei"], P["verifier_reward_wei"]
    checked = random_sample_count(P["M"], P["s"]) + 1
    replay = ASSUMPTIONS["trainer compute cost per round C"] * R * checked / P["M"]
    pays = Rv >= replay
    verdict = "covers" if pays else "does **not** cover"
    caveat = ("; fewer, longer segments per round (a larger fraction replayed per seat) would need a larger reward"
              if pays else "; the defaults (M small, so each seat replays a large fraction) are not production "
              "parameters")
    return (f"**Does verifying pay?** With the assumed training cost C = "
            f"{ASSUMPTIONS['trainer compute cost per round C']}·R, one seat replays {checked} of {P['M']} "
            f"segments, worth {replay / ETH:.4f} ETH of compute; the verifier reward {Rv / ETH:.4f} ETH "
            f"{verdict} it. A task creator must set verifier_reward ≥ (s+1)·k/S · C (divided by the "
            "probability that a round is accepted) for honest verification to be worth a verifier's "
            f"while{caveat}. Source: `make whitepaper` (`whitepaper/simulate.py`).")


def deterring_stake_wei(P: dict, p: float) -> int:
    """The trainer stake whose fraud slash makes a one-segment forgery worth V a loss in expectation
    when it is detected with probability p (§5.1: D_min = (1−p)/p·V − R), rounded up to a whole ETH."""
    R = P["trainer_reward_wei"]
    V = ASSUMPTIONS["value of an accepted forgery V"] * R
    d_min = max(0.0, (1 - p) / p * V - R)
    return int(-(-(d_min * 10_000 / P["trainer_slash_bps"]) // ETH)) * ETH


def profit(sim: dict, role: str, strategy: str) -> float | None:
    """Profit per round (trainers) or per seat (verifiers) of one strategy in a run's results."""
    return sim[role].get(strategy, {}).get("profit_per_round_eth")


def stake_tradeoff_markdown(P: dict, high: dict, p: float, sim_a: dict, sim_a_high: dict) -> str:
    """What a task minimum stake that deters forgery does to everyone, scenario A at both stakes."""
    convicted = sim_a_high["trainers"]["honest"]["slashed"] / sim_a_high["trainers"]["honest"]["rounds"]
    forgers = [st for st in sim_a["trainers"] if st.startswith("forger")]
    return (f"- **Raising the stake is not free.** With `min_trainer_stake` = {high['min_trainer_stake_wei'] / ETH:g} ETH "
            f"(its slash makes a one-segment forgery worth V a loss even at the least-sampled position, p = {p:.3f}, "
            "§5.1), scenario A's profit per round goes from "
            + ", ".join(f"{profit(sim_a, 'trainers', st):+.4f} to {profit(sim_a_high, 'trainers', st):+.4f} ETH for the {st}" for st in forgers)
            + f", but also from {profit(sim_a, 'trainers', 'honest'):+.4f} to {profit(sim_a_high, 'trainers', 'honest'):+.4f} ETH for honest trainers: "
            f"a lazy committee majority convicts an honest trainer in {convicted:.1%} of its rounds and the slash "
            "grows with the stake. Under v1's honest-majority assumption a task creator trades deterrence of "
            "forgery against exposure to false convictions; the dispute game of §7 removes the second.")


def findings_markdown(sim_a: dict, sim_b: dict, P: dict, tradeoff: str = "") -> str:
    """What scenarios A and B show, worded from their numbers (so the prose cannot go stale);
    `tradeoff`: stake_tradeoff_markdown's bullet, appended."""
    out = []
    honest = [profit(x, "trainers", "honest") for x in (sim_a, sim_b)]
    causes = {k: v for x in (sim_a, sim_b) for k, v in x["honest_trainer_slashes_by_cause"].items()}
    only_lazy = set(causes) <= {"lazy majority"}
    out.append(f"- **Honest trainers {'profit' if min(honest) > 0 else 'do not always profit'}** "
               f"({honest[0]:+.4f} and {honest[1]:+.4f} ETH per round){', and are slashed only by a non-replaying committee majority' if only_lazy else ''}. "
               "Every slash of an honest trainer is counted by cause; without lazy verifiers honest trainers are "
               "never slashed (`tests/whitepaper/test_analysis.py` asserts it).")
    cheats = [st for st in sim_a["trainers"] if st != "honest"]
    losing = [st for st in cheats if profit(sim_a, 'trainers', st) < 0]
    paying = [st for st in cheats if profit(sim_a, 'trainers', st) >= 0]
    line = f"- **Cheating trainers that lose in expectation:** {', '.join(losing) or 'none'}."
    if paying:
        M, s = P["M"], P["s"]
        R, D = P["trainer_reward_wei"] / ETH, P["min_trainer_stake_wei"] * P["trainer_slash_bps"] / 10_000 / ETH
        V = ASSUMPTIONS["value of an accepted forgery V"] * R
        pd = (s + 1) / M
        deterred = pd * (R + D) / (1 - pd)
        line += (f" **Profitable at these parameters:** {', '.join(paying)}. A forgery needs one bad segment, which "
                 f"the draw checks with p ≈ (s+1)/M = {pd:.3f} here; at the minimum stake the slash D = {D:g} ETH "
                 f"deters forgeries worth up to about p·(R+D)/(1−p) = {deterred:.3f} ETH (less for the worst "
                 f"layout, table of §5.1), {'less' if deterred < V else 'not less'} than the assumed V = {V:g} ETH. These defaults buy cheap verification (§6.2) and a short round, not "
                 "deterrence of targeted forgeries: a task whose state is worth V to a forger needs σ = (s+1)/M "
                 "and the trainer stake (`min_trainer_stake`) sized by Figure 2.")
    else:
        R, D = P["trainer_reward_wei"] / ETH, P["min_trainer_stake_wei"] * P["trainer_slash_bps"] / 10_000 / ETH
        line += (f" No cheating strategy paid at these parameters: every trainer has at least "
                 f"{P['min_trainer_stake_wei'] / ETH:g} ETH at stake (the larger of the deployment's and the task's "
                 f"`min_trainer_stake`), so a caught fraud costs D = {D:g} ETH against a round reward of {R:g} ETH.")
    out.append(line)
    lazy = [profit(x, "verifiers", "lazy") for x in (sim_a, sim_b)]
    fair = [profit(x, "verifiers", "honest") for x in (sim_a, sim_b)]
    words = lambda l, h: "more than" if l > h else "less than"  # noqa: E731
    out.append(f"- **Lazy verifiers** earn {words(lazy[0], fair[0])} honest ones where cheating is common "
               f"(scenario A: {lazy[0]:+.4f} vs {fair[0]:+.4f} ETH per seat; they share fraud slashes, some of "
               f"which they caused against honest trainers) and {words(lazy[1], fair[1])} them where it is rare "
               f"(scenario B: {lazy[1]:+.4f} vs {fair[1]:+.4f}; they mostly sit in the minority).")
    coll = [profit(x, "verifiers", "colluding") for x in (sim_a, sim_b)]
    out.append(f"- **Colluders** earn {words(coll[0], fair[0])} honest verifiers in scenario A ({coll[0]:+.4f} ETH "
               f"per seat: as a minority they are slashed, and they gain only where they capture the committee) and "
               f"{words(coll[1], fair[1])} them in scenario B ({coll[1]:+.4f}: they replay honestly for honest trainers).")
    if tradeoff:
        out.append(tradeoff)
    return "\n".join(out) + "\n\nSource: `make whitepaper` (`whitepaper/simulate.py: findings_markdown`)."


def summary_markdown(sim: dict, title: str = "") -> str:
    p = sim["params"]
    lines = [
        (f"**{title}** " if title else "") + f"{sim['rounds']} rounds at the default parameters (M = {p['M']}, s = {p['s']}, c = {p['c']}, "
        f"q = {p['q']}); population: trainers {sim['population']['trainers']}, verifiers "
        f"{sim['population']['verifiers']}; assumed: " +
        ", ".join(f"{k} = {v}·R" for k, v in sim["assumptions"].items()) +
        "; every stake is topped up to the minimum after a slash, so each slash is a fraction of the minimum "
        "stake; everyone reveals in time.", "",
        "| role: strategy | agents | rounds / seats | accepted | fraud | slashed | profit per round (ETH) |",
        "|---|---|---|---|---|---|---|",
    ]
    for st, r in sim["trainers"].items():
        o = sim["trainer_outcomes"].get(st, {})
        lines.append(f"| trainer: {st} | {r['agents']} | {r['rounds']} | {o.get('accepted', 0)} | {o.get('fraud', 0)} | "
                     f"{r['slashed']} | {r['profit_per_round_eth']:+.4f} |")
    for st, r in sim["verifiers"].items():
        lines.append(f"| verifier: {st} | {r['agents']} | {r['rounds']} | | | {r['slashed']} | "
                     f"{r['profit_per_round_eth']:+.4f} |")
    causes = sim["honest_trainer_slashes_by_cause"]
    honest = sim["trainers"].get("honest", {})
    lines += ["", f"Honest trainers were slashed {honest.get('slashed', 0)} times"
              + (f" ({', '.join(f'{n}× {c}' for c, n in causes.items())}: lazy verifiers "
                 "contradict every trainer, so when they hold a majority of a committee an honest "
                 "trainer is declared fraudulent — the honest-majority assumption covers laziness too)"
                 if causes else "") + ".",
              "Source: `make whitepaper` (`whitepaper/simulate.py`, rules from `node/protocol.py`)."]
    return "\n".join(lines)


# ------------------------------------------------------------ disputes mode (§3.7, issue #15)
# With a Disputes contract no majority vote decides fraud (compute_dispute_outcome): every member whose
# revealed verdict contradicts the trainer opens a dispute over one check (bond compute_challenger_bond), the
# trainer posts the span's step hashes, the challenger names a step and commits its own answer (the state hash
# its replay gives after that step), a jury drawn from the whole registry (compute_jury_seed, draw_committee =
# compute_committee_by_rejection, compute_jury) commits, then reveals, answers of its own; the challenger reveals
# its answer once the jury committed. Each answer counts for the trainer, for the challenger or for nobody
# (compute_vote_side), is_trainer_winner decides and the loser pays (compute_dispute_payouts); jurors on the
# losing side lose verifier_slash_bps of their seat, abstentions nothing, and the round settles its seats as
# TrainingRounds.finalize does with disputes. The gas of a dispute's moves is measured, not a rule
# (bench/disputes.md); the basefee is an assumption.
DISPUTE_ASSUMPTIONS = {
    "basefee G (gwei)": 1,  # prices the gas of every dispute move and the bond's / refunds' gas part
}
DISPUTE_GAS = {  # bench/disputes.md: span 64 steps (the demo's k), 14 jurors drawn; name_step + the challenger's draw_jury;
    # reveal_answer (the challenger's answer) is not measured yet: reveal_vote's gas stands in for it
    "open": 497_764, "post_steps": 216_203, "name_step": 196_834 + 1_544_687, "commit_vote": 88_134,
    "reveal_vote": 120_958, "reveal_answer": 120_958, "resolve": 833_125,
}
DISPUTES_A = {  # scenario A with disputes: a third of the verifiers lazy
    "trainers": POPULATION["trainers"], "verifiers": {"honest": 40, "lazy": 20},
}
DISPUTES_B = {  # scenario B with disputes: a third of the verifiers colluding
    "trainers": POPULATION["trainers"], "verifiers": {"honest": 40, "colluding": 20},
}
# The disputes runs play 3x v1's rounds: at a Disputes deployment's stake a one-segment forger's margin (~0.06 ETH per
# round) is of the order of 2000 rounds' standard error (~0.025 ETH, 333 rounds per forger); 6000 rounds halve it.
DISPUTES_ROUNDS_FACTOR = 3
LAZY_JUROR_VOTES = ("copies the trainer", "by a replay")  # what a lazy juror answers; the first is the headline
LAZY_JUROR_WORDS = {"copies the trainer": "lazy jurors copy the trainer's answer (no replay)",
                    "by a replay": "lazy jurors answer by a replay"}

# A dispute's answers, symbolically: the state hash after the named step (any 32 bytes but zero, which abstains).
REPLAYED = b"replayed".rjust(32, b"\x00")            # a replay from the span's start: every replayer's (bit-exact)
POSTED_WRONG = b"posted, not replayed".rjust(32, b"\x00")  # a cheating trainer's post past its departure from the replay
GUESSED = b"guessed".rjust(32, b"\x00")              # a lazy challenger's: no replay gives it
COLLUDED = b"colluded".rjust(32, b"\x00")            # the colluders' against an honest trainer, shared among them


def is_member_contradicting(strategy: str, cheating: bool, caught: bool) -> bool:
    """Whether a member's revealed verdict contradicts the trainer: an honest member iff a check it replayed
    covers a bad segment; a lazy one always (a guessed end hash never matches, §5.2); a colluder stays silent
    on a cheating trainer (it commits the hashes it was handed) and contradicts an honest one on purpose."""
    if strategy == "lazy":
        return True
    if strategy == "colluding":
        return not cheating
    return caught


def check_spans(samples: list[int], M: int) -> list[set[int]]:
    """The segments each check of compute_samples replays (compute_check_ends: the last may span M-2..M)."""
    return [set(range(a, b)) for a, b in zip(samples, protocol.compute_check_ends(samples, M))]


def compute_disputed_span(challenger: str, spans: list[set[int]], bad: set[int]) -> set[int]:
    """The check a contradicting member disputes (one dispute per member and round): an honest member the first of
    its checks whose replay contradicts the trainer; a lazy one or a colluder its first (it contradicts them all)."""
    if challenger == "honest":
        return next(span for span in spans if span & bad)
    return spans[0]


def compute_departure_step(trainer: str, span: set[int], bad: set[int], k: int) -> int | None:
    """The first step of a disputed span (1..len(span)·k, from its start leaf) whose posted hash is not what a replay
    from the span's start gives; None when every posted hash is (no bad segment in the span). A forger trains its
    forged segment honestly and swaps the state at its end (that segment's last step); a skipper never trained its
    skipped segment (its first step). Every posted hash from there on differs from the replay's."""
    hit = sorted(span & bad)
    if not hit:
        return None
    return (hit[0] - min(span)) * k + (k if trainer.startswith("forger") else 1)


def compute_named_step(challenger: str, span_steps: int, departure: int | None, rng: random.Random) -> int:
    """The step a challenger names: an honest one the first at which its replay differs from the post
    (node/roles/disputes.py: compute_first_disputed_step); a lazy one or a colluder, without a replay, any step."""
    if challenger == "honest":
        assert departure is not None, "simulate: an honest member disputes only a span it caught"
        return departure
    return rng.randint(1, span_steps)


def compute_trainer_answer(step: int, departure: int | None) -> bytes:
    """The trainer's answer, public once the step is named: its posted hash after that step, a replay's before
    the post departs from the replay."""
    return REPLAYED if departure is None or step < departure else POSTED_WRONG


def compute_challenger_answer(challenger: str) -> bytes:
    """The answer a challenger commits with name_step and reveals once the jury committed: an honest one its replay
    (bit-exact: the honest jurors' answer too), a lazy one a value no replay gives (it did not replay), a colluder
    the value it shares with the colluding jurors."""
    return {"honest": REPLAYED, "lazy": GUESSED, "colluding": COLLUDED}[challenger]


def compute_juror_answer(juror: str, lazy_juror: str, trainer_answer: bytes, challenger: str,
                         challenger_answer: bytes) -> bytes:
    """The answer a juror commits, before the challenger's is revealed. An honest juror replays the named step. A lazy
    juror 'copies the trainer' (its public answer: the only answer that counts without a replay) or answers 'by a
    replay' (node/adversaries/verifiers.py 'lazy' keeps the honest node's dispute duties). A colluder votes its side:
    the challenger's answer, told to it, when the challenger is a colluder; the trainer's otherwise (a cheating
    trainer it covers, or an honest one disputed by a non-colluder, whose answer it cannot know)."""
    assert lazy_juror in LAZY_JUROR_VOTES, f"simulate: lazy juror {lazy_juror!r}"
    if juror == "colluding":
        return challenger_answer if challenger == "colluding" else trainer_answer
    if juror == "lazy" and lazy_juror == "copies the trainer":
        return trainer_answer
    assert juror in ("honest", "lazy"), f"simulate: juror {juror!r}"
    return REPLAYED


def compute_juror_vote(juror: str, lazy_juror: str, trainer_answer: bytes, challenger: str,
                       challenger_answer: bytes | None) -> int:
    """A juror's side (protocol.VOTE_*): its answer counted by the contract's rule, protocol.compute_vote_side."""
    answer = compute_juror_answer(juror, lazy_juror, trainer_answer, challenger, challenger_answer)
    return protocol.compute_vote_side(answer, trainer_answer, challenger_answer)


def is_replaying_juror(juror: str, lazy_juror: str) -> bool:
    """Whether a juror pays for a replay of the named step: honest jurors, and lazy ones that answer by a replay."""
    return juror == "honest" or (juror == "lazy" and lazy_juror == "by a replay")


def count_votes(votes: dict[str, int]) -> tuple[int, int]:
    """(votes for the trainer, votes for the challenger) among a jury's sides: what is_trainer_winner weighs."""
    sides = list(votes.values())
    return sides.count(protocol.VOTE_TRAINER), sides.count(protocol.VOTE_CHALLENGER)


def settle_dispute(P: dict, bond: int, gas_price: int, votes: dict[str, int], trainer_won: bool,
                   round_convicted: bool, slashes_to_winner: bool = False) -> tuple[dict[str, int], int, int, int]:
    """Disputes.resolve's transfers (wei, gas aside) — and Disputes.settle_appealed's, by the final verdict: (per
    juror, to the challenger, to the trainer, to the treasury); each sums with the others to zero. `votes`: each
    juror's side (protocol.VOTE_*). Jurors' slashes (protocol.compute_juror_slash_bps) go to the treasury, or to the
    winner with `slashes_to_winner` (an appeal it won). The challenger lost: its bond pays the jurors on the trainer's
    side, the rest (gas refund first) goes to the trainer. The trainer lost: the bond comes back and, the round's
    first conviction only, the fraud slash of its reservation pays the jurors on the challenger's side, the
    challenger's gas refund and fraud_reward_bps share."""
    seat = P["min_verifier_stake_wei"]
    winning = protocol.VOTE_TRAINER if trainer_won else protocol.VOTE_CHALLENGER
    winners = [j for j, side in votes.items() if side == winning]
    Rv = P["verifier_reward_wei"]
    if trainer_won:
        pot, challenger, trainer = bond, -bond, 0
        per_juror, to_winner, to_treasury = protocol.compute_dispute_payouts(
            pot, len(winners), Rv, protocol.DEFENDER_GAS_ALLOWANCE * gas_price, protocol.BPS)
        trainer += to_winner
    elif round_convicted:
        pot, challenger, trainer, per_juror, to_treasury = 0, 0, 0, 0, 0
    else:
        pot = protocol.compute_slash(protocol.compute_trainer_reservation(
            P.get("task_min_trainer_stake_wei", 0), P["min_trainer_stake_wei"]), P["trainer_slash_bps"])
        per_juror, to_winner, to_treasury = protocol.compute_dispute_payouts(
            pot, len(winners), Rv, protocol.CHALLENGER_GAS_ALLOWANCE * gas_price, P["fraud_reward_bps"])
        challenger, trainer = to_winner, -pot
    slashes = {j: protocol.compute_slash(seat, protocol.compute_juror_slash_bps(side, winning, P["verifier_slash_bps"],
                                                                                P["no_show_slash_bps"]))
               for j, side in votes.items()}
    jurors = {j: (per_juror if side == winning else -slashes[j]) for j, side in votes.items()}
    if not slashes_to_winner:
        return jurors, challenger, trainer, to_treasury + sum(slashes.values())
    if trainer_won:
        return jurors, challenger, trainer + sum(slashes.values()), to_treasury
    return jurors, challenger + sum(slashes.values()), trainer, to_treasury


def is_appealing(strategy: str) -> bool:
    """Whether a party appeals a jury count that goes against it (Appeals.appeal, bond compute_appeal_bond): an honest
    one (DisputeRole.appeals_lost_votes), whose answer is a replay's. A party without a replay does not: a lazy
    challenger (node/adversaries/verifiers.py 'accuse': no answer of its own to put 65 rewards on), a colluder, a
    cheating trainer — an appeal jury with an honest majority confirms the count against each of them, and appealing
    only adds a bond it loses (the best reply of a cheat against the whole set; not appealing is what it does here)."""
    return strategy == "honest"


def settle_appeal(P: dict, appeal_bond: int, votes: dict[str, int], trainer_won: bool,
                  appellant_won: bool) -> tuple[dict[str, int], int, int, int]:
    """Appeals.resolve's transfers of the appeal itself (wei, gas aside): (per appeal juror, to the appellant, to the
    other party, to the treasury), summing to zero. The bond (posted by the appellant) pays the final majority the
    task's verifier reward each (compute_dispute_payouts with no refund and all the rest to the winner side), the rest
    back to a winning appellant, else to the other party; the appeal jury's slashes go to the treasury."""
    seat = P["min_verifier_stake_wei"]
    winning = protocol.VOTE_TRAINER if trainer_won else protocol.VOTE_CHALLENGER
    n = sum(side == winning for side in votes.values())
    per_juror, rest, to_treasury = protocol.compute_dispute_payouts(appeal_bond, n, P["verifier_reward_wei"], 0,
                                                                     protocol.BPS)
    slashes = {j: protocol.compute_slash(seat, protocol.compute_juror_slash_bps(side, winning, P["verifier_slash_bps"],
                                                                                P["no_show_slash_bps"]))
               for j, side in votes.items()}
    jurors = {j: (per_juror if side == winning else -slashes[j]) for j, side in votes.items()}
    appellant = -appeal_bond + (rest if appellant_won else 0)
    return jurors, appellant, (0 if appellant_won else rest), to_treasury + sum(slashes.values())


def draw_jury(seed_int: int, dispute_id: int, entries: list[tuple[str, int, int]], challenger: str) -> list[str]:
    """The jury Disputes.draw_jury seats: JURY_MAX + 1 drawn from every entry (StakeManager.draw_committee),
    minus the challenger, from compute_jury_seed(blockhash(J), id); `seed_int` stands in for blockhash(J)."""
    seed = protocol.compute_jury_seed(seed_int.to_bytes(32, "big"), dispute_id)
    drawn = protocol.compute_committee_by_rejection(seed, entries, 0, protocol.JURY_MAX + 1)
    return protocol.compute_jury(drawn, challenger)


APPEAL_IDS = 2**96  # the simulation numbers appeals from here: appeal APPEAL_IDS + d is dispute d's


def draw_appeal_jury(seed_int: int, appeal_id: int, entries: list[tuple[str, int, int]], challenger: str) -> list[str]:
    """The jury Appeals.draw_jury seats (protocol.compute_appeal_jury): every verifier but the challenger when at most
    APPEAL_JURY_MAX fit, else a stake-weighted random sample of them, from compute_jury_seed(blockhash(J'), appeal id);
    `seed_int` stands in for blockhash(J'). Every entry is open from block 0 and drawable."""
    seed = protocol.compute_jury_seed(seed_int.to_bytes(32, "big"), appeal_id)
    return protocol.compute_appeal_jury(seed, entries, 0, challenger)


def expected_appeal_capture(n_others: int, n_covering: int) -> float:
    """P(an appeal jury is captured by `n_covering` of the `n_others` verifiers it is drawn from, the challenger
    excluded): a strict majority of min(APPEAL_JURY_MAX, n_others) seats, drawn without replacement (equal stakes:
    the sample's distinct entries are a uniform subset); with no more verifiers than seats, the whole set — 0 or 1."""
    if n_others <= 0:
        return 0.0
    return protocol.compute_jury_capture_probability_finite(n_others, n_covering,
                                                            min(protocol.APPEAL_JURY_MAX, n_others))


def covering_strategies(lazy_juror: str) -> tuple[str, ...]:
    """Verifier strategies whose jurors count for a cheating trainer against an honest challenger (its answer is
    the replay's): colluders, and lazy jurors that copy the trainer's answer."""
    return ("colluding", "lazy") if lazy_juror == "copies the trainer" else ("colluding",)


def expected_false_conviction_rate(verifiers: dict[str, int], c: int, appeals: bool = True) -> float:
    """P(an honest trainer is convicted in a round), exact: the committee is a uniform c-subset of the N verifiers;
    each colluding member disputes with its own jury, a uniform min(JURY_MAX, N-1)-subset of the other N-1
    (draw_jury), and wins its count when the colluders among them hold a strict majority (every other juror's answer,
    a replay or a copy, is the trainer's): compute_jury_capture_probability_finite. The honest trainer appeals that
    count (is_appealing); the appeal jury, drawn independently from the same N-1, is captured with
    expected_appeal_capture, and only then is the trainer convicted. The trainer is convicted if any of the
    colluders' disputes is. `appeals=False`: the first juries alone (the verdict before appeals existed). Lazy
    members' disputes never convict: their answer is no replay's, and a lazy juror without the challenger's answer
    counts only for the trainer (compute_vote_side)."""
    from math import comb

    N, A = sum(verifiers.values()), verifiers.get("colluding", 0)
    J = min(protocol.JURY_MAX, N - 1)
    p_cap = protocol.compute_jury_capture_probability_finite(N - 1, A - 1, J) if A else 0.0
    if appeals and A:
        p_cap *= expected_appeal_capture(N - 1, A - 1)
    c = min(c, N)
    return sum(comb(A, a) * comb(N - A, c - a) / comb(N, c) * (1 - (1 - p_cap) ** a) for a in range(min(A, c) + 1))


def expected_escape_rate(verifiers: dict[str, int], lazy_juror: str, appeals: bool = True) -> float:
    """P(a cheating trainer wins a dispute an honest challenger opened over its departing step): the covering jurors
    (covering_strategies) hold a majority of its jury, a uniform min(JURY_MAX, N-1)-subset of the other N-1 verifiers
    (compute_jury_capture_probability_finite; for an odd jury a tie, which keeps the trainer, cannot happen), and —
    the honest challenger appeals — of its appeal jury, drawn independently from the same N-1
    (expected_appeal_capture). `appeals=False`: the first jury alone."""
    N = sum(verifiers.values())
    cover = sum(n for st, n in verifiers.items() if st in covering_strategies(lazy_juror))
    p = protocol.compute_jury_capture_probability_finite(N - 1, cover, min(protocol.JURY_MAX, N - 1))
    return p * expected_appeal_capture(N - 1, cover) if appeals else p


def expected_watch_campaign(P: dict, verifiers: dict[str, int], attempts: int = 6) -> list[dict]:
    """Colluders' watch attack on an honest trainer (Disputes.open_watch, §3.7), exact rather than played: colluder
    after colluder opens the round's k-th watch (bond compute_watch_bond(bond, k - 1)) on a segment that is right and
    names a step; each watch gets a fresh jury, a uniform min(JURY_MAX, N - 1)-subset of the other N - 1 verifiers,
    holding a colluders out of the other A - 1 (hypergeometric). Every other juror's answer (a replay, or a lazy copy
    of the public one) is the trainer's, so the watch convicts iff a > J - a. The coalition (the watcher and its
    fellow jurors) then gains the watcher's payout from the fraud slash (gas refund, fraud_reward_bps share) and
    per_juror for each of its a jurors; otherwise the bond is lost (it pays the trainer's jurors and gas, the rest is
    burned) and each of its a jurors loses verifier_slash_bps of its seat. A captured watch is appealed by the honest
    trainer: it convicts only if the appeal jury is captured as well (expected_appeal_capture), otherwise it is
    reversed and the coalition loses as if not captured, plus its appeal jurors' seat slashes and votes (their
    expected count: exact when the appeal jury is every other verifier; the appeal bond's flows between the trainer
    and the appeal's honest majority are not the coalition's). Gas at the simulation's basefee: the watcher's moves,
    two votes per colluding juror. The campaign stops at its first conviction. Returns one row per
    attempt k: bond, P(first jury captured), P(appeal jury captured), the coalition's expected profit of attempt k (ETH) and of a campaign of up to k,
    and P(the honest trainer is convicted by watch k): what a spiteful coalition buys with that loss."""
    from math import comb

    N, A = sum(verifiers.values()), verifiers.get("colluding", 0)
    J = min(protocol.JURY_MAX, N - 1)
    Rv, G = P["verifier_reward_wei"], DISPUTE_ASSUMPTIONS["basefee G (gwei)"] * 10**9
    bond = protocol.compute_challenger_bond(Rv, G)
    seat_slash = protocol.compute_slash(P["min_verifier_stake_wei"], P["verifier_slash_bps"])
    pot = protocol.compute_slash(protocol.compute_trainer_reservation(
        P.get("task_min_trainer_stake_wei", 0), P["min_trainer_stake_wei"]), P["trainer_slash_bps"])
    watcher_gas = G * (DISPUTE_GAS["open"] + DISPUTE_GAS["name_step"] + DISPUTE_GAS["reveal_answer"])
    vote_gas = G * (DISPUTE_GAS["commit_vote"] + DISPUTE_GAS["reveal_vote"])
    p_appeal = expected_appeal_capture(N - 1, A - 1)
    J2 = min(protocol.APPEAL_JURY_MAX, N - 1)
    appeal_colluders = J2 * (A - 1) / max(N - 1, 1)  # expected (exact when the appeal jury is every other verifier)
    rows, campaign, still_open = [], 0.0, 1.0
    for k in range(1, attempts + 1):
        bond_k = protocol.compute_watch_bond(bond, k - 1)
        p_capture, ev = 0.0, 0.0
        for a in range(0, min(J, A - 1) + 1):
            pr = comb(A - 1, a) * comb(N - A, J - a) / comb(N - 1, J)
            if pr == 0:
                continue
            if a > J - a:  # captured: the honest trainer appeals; convicted only if the appeal jury is captured too
                per_juror, to_watcher, _ = protocol.compute_dispute_payouts(pot, a, Rv, protocol.CHALLENGER_GAS_ALLOWANCE * G,
                                                                             P["fraud_reward_bps"])
                upheld = to_watcher + a * per_juror - G * DISPUTE_GAS["resolve"]
                reversed_ = -bond_k - (a + appeal_colluders) * seat_slash - appeal_colluders * vote_gas
                gain = p_appeal * upheld + (1 - p_appeal) * reversed_
                p_capture += pr
            else:
                gain = -bond_k - a * seat_slash
            ev += pr * (gain - watcher_gas - a * vote_gas)
        campaign += still_open * ev
        still_open *= 1 - p_capture * p_appeal
        rows.append({"attempt": k, "bond_eth": bond_k / ETH, "p_capture": p_capture, "p_appeal_capture": p_appeal,
                     "ev_eth": ev / ETH,
                     "campaign_ev_eth": campaign / ETH, "p_convicted_by_k": 1 - still_open})
    return rows


def watch_campaign_markdown(rows: list[dict], verifiers: dict[str, int]) -> str:
    """The table of expected_watch_campaign (§3.7's colluders' watch attack)."""
    N, A = sum(verifiers.values()), verifiers.get("colluding", 0)
    lines = [f"Colluders' watch attack on an honest trainer: {A} of {N} verifiers colluding, a jury of "
             f"{min(protocol.JURY_MAX, N - 1)} per watch (`simulate.expected_watch_campaign`, exact).", "",
             "| watch k | bond (ETH) | P(jury captured) | P(appeal jury captured) | coalition's expected profit of watch k (ETH) | of a campaign of up to k watches (ETH) | P(honest trainer convicted by watch k) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['attempt']} | {r['bond_eth']:.3f} | {r['p_capture']:.3f} | {r['p_appeal_capture']:.3f} | {r['ev_eth']:+.3f} | {r['campaign_ev_eth']:+.3f} "
              f"| {r['p_convicted_by_k']:.3f} |" for r in rows]
    return "\n".join(lines)


WATCH_DISPUTE_IDS = 2**64  # the simulation numbers watched disputes from here (any id seeds a jury as well)


def default_watch_share(M: int) -> float:
    """The paper's watch share: 1/M, one segment per watcher per round on average. A watcher then replays k steps a
    round, a third of what a committee seat replays (s + 1 = 3 segments), and the registry's honest verifiers together
    (40 at the defaults) replay more segments per round than a round has (M = 32): an unsampled bad segment is missed
    by all of them with (1 - 1/M)^40 = 28 %."""
    return 1 / M


def is_watcher(strategy: str) -> bool:
    """Which verifier strategies watch (`verifier run --watch`): honest ones. A lazy verifier replays nothing; a colluder
    replays nothing for a cheating trainer it covers, and its false disputes against honest trainers are the
    committee's (is_member_contradicting), not watched ones (a colluder opening open_watch on honest rounds is not
    modelled)."""
    return strategy == "honest"


def watching_verifiers(registry: list[Agent], watchers: int | None) -> list[Agent]:
    """The verifiers that watch: the first `watchers` of the registry's watchers (is_watcher, registry order), all with
    None."""
    eligible = [v for v in registry if is_watcher(v.strategy)]
    return eligible if watchers is None else eligible[:watchers]


def compute_watched_segments(M: int, share: float, rng: random.Random) -> list[int]:
    """The segments one watcher replays this round: each of 0..M-1 with probability `share`, independently, in order
    (DisputeDuties.find_bad_segment)."""
    return [j for j in range(M) if rng.random() < share]


def compute_watch_find(watched: list[int], bad: set[int]) -> int | None:
    """The segment a watcher disputes: the first watched one that does not end at its posted next boundary (a bad
    one); None when every watched segment agrees."""
    return next((j for j in watched if j in bad), None)


def compute_watch_replays(watched: list[int], found: int | None) -> int:
    """How many segments a watcher replays: its watched ones up to the first bad one (find_bad_segment stops there)."""
    return len(watched) if found is None else watched.index(found) + 1


def expected_watch_detection(p_dealt: float, share: float, n_watchers: int) -> float:
    """P(a one-segment cheat is disputed by an honest verifier in a round): its segment is in the dealt checks
    (p_dealt), or one of n_watchers independent watchers replays it (each with probability `share`); the two are
    independent (the draw does not see the watchers' choices): 1 - (1 - p_dealt)(1 - share)^n_watchers."""
    return 1 - (1 - p_dealt) * (1 - share) ** n_watchers


def standard_error(xs: list[float]) -> float:
    """The standard error of the mean of `xs` (a strategy's profit per round): its sample deviation over √n."""
    from statistics import stdev

    return stdev(xs) / len(xs) ** 0.5 if len(xs) > 1 else float("inf")


def detection_per_round(P: dict, strategy: str) -> float:
    """Exact P(the round's checks cover the forged segment) for a one-segment forger (analysis.py), with Disputes'
    checks dealt out: one draw of compute_dealt_count(s, c, M) segments over the committee (c·s at the defaults)."""
    from analysis import candidate_segments, detection_nonadjacent

    M = P["M"]
    s = random_sample_count(M, protocol.compute_dealt_count(P["s"], P["c"], M))
    if strategy == "forger (segment M-2)":
        return detection_nonadjacent(M, s, {M - 2})
    assert strategy == "forger (random segment)", strategy
    n = candidate_segments(M)
    return sum(detection_nonadjacent(M, s, {j}) for j in range(n)) / n


def run_disputes(P: dict, rounds: int, seed: int = 7, population: dict | None = None,
                 lazy_juror: str = "copies the trainer", watch_share: float = 0.0, watchers: int | None = None) -> dict:
    """Play `rounds` rounds of a deployment with Disputes; per-strategy outcomes and profits (as run()).
    `watch_share`: each watcher replays each posted segment with this probability (`verifier run --watch SHARE`; 0: no
    watchers); `watchers`: how many of the honest verifiers watch (None: all, watching_verifiers). Watchers draw from
    their own random stream, so a run with watchers plays the same rounds (seeds, committees, bad segments, member
    disputes' juries) as the run without: the two are paired."""
    population = population or DISPUTES_A
    assert lazy_juror in LAZY_JUROR_VOTES, lazy_juror
    assert 0.0 <= watch_share <= 1.0, watch_share
    rng = random.Random(seed)
    watch_rng = random.Random(f"watch:{seed}")
    M, s, c, q, k = P["M"], P["s"], P["c"], P["q"], P["k"]
    R, Rv = P["trainer_reward_wei"], P["verifier_reward_wei"]
    C = ASSUMPTIONS["trainer compute cost per round C"] * R
    V = ASSUMPTIONS["value of an accepted forgery V"] * R
    G = DISPUTE_ASSUMPTIONS["basefee G (gwei)"] * 10**9
    replay_cost = C * (random_sample_count(M, s) + 1) / M
    seat_slash = protocol.compute_slash(P["min_verifier_stake_wei"], P["verifier_slash_bps"])
    bond = protocol.compute_challenger_bond(Rv, G)
    appeal_bond = protocol.compute_appeal_bond(Rv, G)
    gas = DISPUTE_GAS

    trainers = [Agent(f"{st}#{i}", st, "trainer") for st, n in population["trainers"].items() for i in range(n)]
    verifiers = [Agent(f"{st}#{i}", st, "verifier") for st, n in population["verifiers"].items() for i in range(n)]
    order = list(range(len(verifiers)))
    rng.shuffle(order)  # registry order is arbitrary
    by_name = {v.name: v for v in verifiers}
    entries = [(verifiers[i].name, 0, 0) for i in order]
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    honest_causes: dict[str, int] = defaultdict(int)
    round_profits: dict[str, list[float]] = defaultdict(list)
    treasury = 0
    dispute_id, watch_id = 0, WATCH_DISPUTE_IDS
    watching = watching_verifiers([verifiers[i] for i in order], watchers) if watch_share > 0 else []
    segment_cost = C * k / P["S"]  # one segment's replay (k steps of the S a round trains)

    def seat_jurors(jury: list[Agent], votes: dict[str, int], paid: dict[str, int], step: int, kind: str) -> None:
        """Each juror's seat of one jury (a dispute's, kind 'jury', or an appeal's, kind 'appeal'): what the verdict
        pays or slashes it, its two votes' gas, the replay of `step` steps if it replays."""
        for j in jury:
            seat = paid[j.name] - G * (gas["commit_vote"] + gas["reveal_vote"])
            if is_replaying_juror(j.strategy, lazy_juror):
                seat -= C * step / P["S"]  # replayed `step` steps from the span's start checkpoint
            j.profit += seat / ETH
            jury_counts = counts["verifier", j.strategy]
            jury_counts[f"{kind} seats"] += 1
            jury_counts[f"{kind} profit (ETH)"] += seat / ETH
            jury_counts[f"{kind} abstentions"] += votes[j.name] == protocol.VOTE_ABSTAIN
            if paid[j.name] < 0:
                j.slashed += 1

    def play_dispute(v: Agent, span: set[int], trainer: Agent, bad: set[int], jury_rng: random.Random, tally: dict,
                     convicted: bool, dispute_id: int) -> tuple[bool, str]:
        """One dispute by challenger `v` over `span` (a member's check, or a watched segment), from open to resolve:
        the named step, both answers, the jury's sides and count (is_trainer_winner); the count's loser appeals if
        is_appealing, and the appeal jury's count (the same answers) is then the verdict; settle_dispute (by the
        verdict, the first jury's slashes to a winning appellant), settle_appeal and every party's gas and replay.
        Returns (trainer_won, the cause when it convicts an honest trainer first). `jury_rng` stands in for
        blockhash(J); `dispute_id` seeds the jury with it (compute_jury_seed), APPEAL_IDS + dispute_id the appeal's."""
        nonlocal treasury
        cheating = bool(bad)
        departure = compute_departure_step(trainer.strategy, span, bad, k)
        step = compute_named_step(v.strategy, len(span) * k, departure, rng)
        trainer_answer, challenger_answer = compute_trainer_answer(step, departure), compute_challenger_answer(v.strategy)
        seed_int = jury_rng.getrandbits(256)
        jury = [by_name[n] for n in draw_jury(seed_int, dispute_id, entries, v.name)]
        votes = {j.name: compute_juror_vote(j.strategy, lazy_juror, trainer_answer, v.strategy, challenger_answer)
                 for j in jury}
        first_won = protocol.is_trainer_winner(*count_votes(votes))
        appellant = v if first_won else trainer
        appealed = is_appealing(appellant.strategy)
        trainer_won = first_won
        if appealed:
            # the appeal jury: blockhash(J') stands in as the first jury's seed, so appeals draw nothing from the rngs
            appeal_jury = [by_name[n] for n in draw_appeal_jury(seed_int, APPEAL_IDS + dispute_id, entries, v.name)]
            appeal_votes = {j.name: compute_juror_vote(j.strategy, lazy_juror, trainer_answer, v.strategy,
                                                       challenger_answer) for j in appeal_jury}
            trainer_won = protocol.is_trainer_winner(*count_votes(appeal_votes))
            appellant_won = trainer_won != first_won
            a_jurors, to_appellant, to_other, a_treasury = settle_appeal(P, appeal_bond, appeal_votes, trainer_won,
                                                                         appellant_won)
            treasury += a_treasury
            other = trainer if appellant is v else v
            appellant.profit += (to_appellant - G * protocol.APPEAL_GAS_ALLOWANCE) / ETH
            other.profit += to_other / ETH
            seat_jurors(appeal_jury, appeal_votes, a_jurors, step, "appeal")
            ac = counts[appellant.role, appellant.strategy]
            ac["appeals"] += 1
            ac["appeals won"] += appellant_won
            ac["appellant profit (ETH)"] += (to_appellant - G * protocol.APPEAL_GAS_ALLOWANCE) / ETH
        jurors, to_challenger, to_trainer, to_treasury = settle_dispute(
            P, bond, G, votes, trainer_won, convicted, slashes_to_winner=appealed and trainer_won != first_won)
        treasury += to_treasury
        v.profit += (to_challenger - G * (gas["open"] + gas["name_step"] + gas["reveal_answer"]
                                          + (0 if trainer_won else gas["resolve"]))) / ETH
        trainer.profit += (to_trainer - G * (gas["post_steps"] + (gas["resolve"] if trainer_won else 0))) / ETH
        seat_jurors(jury, votes, jurors, step, "jury")
        cause = ""
        if trainer_won:
            v.slashed += 1  # its bond
        elif not convicted and not cheating:
            against = sorted({j.strategy for j in jury if votes[j.name] == protocol.VOTE_CHALLENGER})
            cause = ("jury and appeal jury" if appealed else "jury") + " captured by " + " and ".join(
                f"{st} jurors" for st in against)
        # a verdict against the replay: the side whose answer a replay gives lost
        if (challenger_answer == REPLAYED and trainer_won) or (trainer_answer == REPLAYED and not trainer_won):
            tally["wrong jury verdicts"] += 1
        if (challenger_answer == REPLAYED and first_won) or (trainer_answer == REPLAYED and not first_won):
            tally["wrong first-jury counts"] += 1
        return trainer_won, cause

    for round_id in range(1, rounds + 1):
        trainer = trainers[(round_id - 1) % len(trainers)]
        seed_bytes = protocol.compute_seed(rng.getrandbits(256).to_bytes(32, "big"), round_id)
        committee = [by_name[n] for n in protocol.compute_committee_by_rejection(seed_bytes, entries, 0, c)]
        # checks dealt out (TrainingRounds with Disputes): one draw of c·s, member m holds m, m + c, ... and the last
        samples = protocol.compute_round_samples(seed_bytes, M, s, len(committee), True)
        all_spans = check_spans(samples, M)
        held = {v.name: [all_spans[i] for i in protocol.compute_member_checks(len(samples), len(committee), m)]
                for m, v in enumerate(committee)}
        bad = bad_segments(trainer.strategy, M, rng)
        cheating = bool(bad)
        caught_by = {v.name: any(span & bad for span in held[v.name]) for v in committee}
        tally = counts["trainer", trainer.strategy]
        tally["caught"] += any(span & bad for span in all_spans)
        tally["caught by honest members"] += any(caught_by[v.name] for v in committee if v.strategy == "honest")
        contradicts = {v.name: is_member_contradicting(v.strategy, cheating, caught_by[v.name]) for v in committee}

        trainer.rounds += 1
        before = trainer.profit
        trainer.profit -= (C - C * len(bad) / M) / ETH
        convicted, cause = False, ""
        for v in committee:
            v.rounds += 1
            if v.strategy == "honest":
                v.profit -= replay_cost / ETH
            if not contradicts[v.name]:
                continue
            # the member's dispute (one per contradicting member, TrainingRounds.open_dispute)
            counts["verifier", v.strategy]["disputes opened"] += 1
            span = compute_disputed_span(v.strategy, held[v.name], bad)
            dispute_id += 1
            trainer_won, cause = play_dispute(v, span, trainer, bad, rng, tally, convicted, dispute_id)
            if trainer_won:
                counts["verifier", v.strategy]["disputes lost"] += 1
            elif not convicted:
                convicted = True
                if cause:
                    honest_causes[cause] += 1

        tally["escaped"] += (not convicted) and any(contradicts[v.name] for v in committee if v.strategy == "honest")
        # watchers (Disputes.open_watch): after the ends reveal the trainer posts h_0..h_M; each watcher replays its
        # random share of the segments and disputes the first that ends elsewhere, once per round (a member that
        # disputed already cannot); their disputes settle after the members', in the order they come
        found: dict[str, int] = {}
        for w in watching:
            if contradicts.get(w.name):
                continue
            watched = compute_watched_segments(M, watch_share, watch_rng)
            segment = compute_watch_find(watched, bad)
            replayed = compute_watch_replays(watched, segment)
            w.profit -= replayed * segment_cost / ETH
            wc = counts["verifier", w.strategy]
            wc["watch rounds"] += 1
            wc["watch segments replayed"] += replayed
            wc["watch profit (ETH)"] -= replayed * segment_cost / ETH
            if segment is not None:
                found[w.name] = segment
        tally["watched"] += bool(found)
        tally["detected"] += bool(found) or any(span & bad for span in all_spans)
        tally["caught by watchers only"] += bool(found) and not any(
            caught_by[v.name] for v in committee if v.strategy == "honest")
        order_found = list(found)
        watch_rng.shuffle(order_found)
        for name in order_found:
            w = by_name[name]
            wc = counts["verifier", w.strategy]
            wc["watch disputes opened"] += 1
            before_w = w.profit
            watch_id += 1  # numbered apart from the members' disputes, so that their juries are the unwatched run's
            trainer_won, _ = play_dispute(w, {found[name]}, trainer, bad, watch_rng, tally, convicted, watch_id)
            wc["watch profit (ETH)"] += w.profit - before_w
            if trainer_won:
                wc["watch disputes lost"] += 1
            elif not convicted:
                convicted = True
                tally["convicted by a watcher"] += 1
        outcome = protocol.compute_dispute_outcome(len(committee), q, convicted)
        outcomes[trainer.strategy][protocol.outcome_name(outcome)] += 1
        t_reward, v_reward = protocol.compute_rewards(outcome, R, Rv, sum(not x for x in contradicts.values()))
        trainer.profit += t_reward / ETH
        if outcome == protocol.Outcome.FRAUD:
            trainer.slashed += 1
        if outcome == protocol.Outcome.ACCEPTED and trainer.strategy.startswith("forger"):
            trainer.profit += V / ETH
        if outcome == protocol.Outcome.ACCEPTED and cheating:
            tally["cheats accepted"] += 1
        # TrainingRounds._settle_seats: the side the outcome proves wrong loses verifier_slash_bps of its seat
        for v in committee:
            if contradicts[v.name] == (outcome == protocol.Outcome.ACCEPTED):
                v.profit -= seat_slash / ETH
                v.slashed += 1
                treasury += seat_slash
            elif outcome == protocol.Outcome.ACCEPTED:
                v.profit += v_reward / ETH
        round_profits[trainer.strategy].append(trainer.profit - before)
        for a in trainers + verifiers:
            a.history.append(a.profit)

    trainer_summary = summarize_by_strategy(trainers, counts)
    for st, xs in round_profits.items():
        trainer_summary[st]["profit_se_eth"] = standard_error(xs)
    return {
        "mode": "disputes", "rounds": rounds, "params": {k_: P[k_] for k_ in ("S", "k", "M", "s", "c", "q")},
        "assumptions": dict(ASSUMPTIONS), "dispute_assumptions": dict(DISPUTE_ASSUMPTIONS), "bond_wei": bond,
        "lazy_juror": lazy_juror, "population": population, "watch_share": watch_share, "watchers": len(watching),
        "segment_replay_cost_eth": segment_cost / ETH,
        "trainers": trainer_summary, "verifiers": summarize_by_strategy(verifiers, counts),
        "trainer_outcomes": {k_: dict(v) for k_, v in outcomes.items()},
        "honest_trainer_slashes_by_cause": dict(honest_causes), "treasury_eth": treasury / ETH,
    }


def disputes_deterring_stake(P: dict, rounds: int, max_eth: int = 6,
                             watch_share: float = 0.0) -> tuple[int, dict, dict] | None:
    """The smallest whole-ETH minimum trainer stake (from the deployment's) at which every cheating trainer strategy
    loses money in both disputes scenarios (A: a third lazy, copying the trainer's answer; B: a third colluding; the
    seeds of the paper's runs): (stake, run A, run B), or None up to max_eth. `watch_share`: with every honest verifier
    watching that share (0: nobody watches, the deployment default's search)."""
    start = -(-P["min_trainer_stake_wei"] // ETH)
    for eth in range(start, max_eth + 1):
        high = {**P, "min_trainer_stake_wei": eth * ETH}
        a = run_disputes(high, rounds, seed=7, population=DISPUTES_A, watch_share=watch_share)
        b = run_disputes(high, rounds, seed=8, population=DISPUTES_B, watch_share=watch_share)
        if all(r["profit_per_round_eth"] < 0 for x in (a, b) for st, r in x["trainers"].items() if st != "honest"):
            return eth * ETH, a, b
    return None


def describe_profit(r: dict) -> str:
    """A trainer strategy's profit per round with its standard error."""
    return f"{r['profit_per_round_eth']:+.4f} ± {r.get('profit_se_eth', float('inf')):.4f}"


def disputes_stake_markdown(P: dict, found: tuple[int, dict, dict] | None, v1_high: dict | None,
                            disputes_default_wei: int | None = None) -> str:
    """The stake bullet of §5.6 with disputes: what raising the minimum from v1's default (P) does under disputes,
    against v1; `disputes_default_wei`: the minimum a deployment with Disputes gets (DeployParams)."""
    if found is None:
        return "- **Raising the stake under disputes** up to 6 ETH does not make every cheating strategy a loss."
    stake, a, b = found
    cheats = [st for st in a["trainers"] if st != "honest"]
    worst = {st: max((x["trainers"][st] for x in (a, b)), key=lambda r: r["profit_per_round_eth"]) for st in cheats}
    text = (f"- **Raising the stake under disputes costs honest trainers little.** From v1's default "
            f"{P['min_trainer_stake_wei'] / ETH:g} ETH, where one-segment forgers still profit under disputes, to "
            f"`min_trainer_stake` = {stake / ETH:g} ETH (the smallest whole ETH that does it on these two runs' seeds, "
            f"{a['rounds']} rounds each), every cheating trainer strategy loses money in both scenarios ("
            + ", ".join(f"{st} {describe_profit(worst[st])}" for st in cheats)
            + " ETH per round at worst, ± one standard error), and honest trainers still profit ("
            f"{describe_profit(a['trainers']['honest'])} in A, {describe_profit(b['trainers']['honest'])} in B): "
            "lazy verifiers never convict them, and colluders only by capturing both a first jury and its appeal "
            "jury.")
    if v1_high is not None:
        text += (f" Under v1's tally the same stake costs honest trainers "
                 f"{v1_high['trainers']['honest']['profit_per_round_eth']:+.4f} ETH per round in scenario A (its lazy "
                 "committee majorities convict them): so a v1 deployment keeps "
                 f"{P['min_trainer_stake_wei'] / ETH:g} ETH")
        if disputes_default_wei is not None:
            text += (f", and a deployment with Disputes defaults to {disputes_default_wei / ETH:g} ETH "
                     "(`DeployParams(disputes=True)`, `protocol.DISPUTES_MIN_TRAINER_STAKE_WEI`; the tables above run at it)")
        text += "."
    return text


def false_conviction(sim: dict) -> tuple[int, int]:
    """(honest trainer rounds convicted, honest trainer rounds) of a disputes run."""
    h = sim["trainers"].get("honest", {})
    return h.get("slashed", 0), h.get("rounds", 0)


def honest_disputes(sim: dict) -> tuple[int, int]:
    """(disputes honest challengers lost, disputes they opened) of a disputes run: an honest member disputes only a
    check its replay contradicts, so each one lost is a caught cheat that escaped its jury."""
    h = sim["verifiers"].get("honest", {})
    return h.get("disputes lost", 0), h.get("disputes opened", 0)


def jury_profit(sim: dict, strategy: str) -> float:
    """A verifier strategy's profit per jury seat (ETH): juror pay and slashes, vote gas, the replay if it replays."""
    r = sim["verifiers"].get(strategy, {})
    return r.get("jury profit (ETH)", 0) / max(r.get("jury seats", 0), 1)


def appeal_profit(sim: dict, strategy: str) -> float:
    """A verifier strategy's profit per appeal jury seat (ETH): juror pay and slashes, vote gas, the replay."""
    r = sim["verifiers"].get(strategy, {})
    return r.get("appeal profit (ETH)", 0) / max(r.get("appeal seats", 0), 1)


def disputes_table_markdown(v1: dict, sim: dict, title: str) -> str:
    """One scenario, v1's tally next to disputes, same population and seed."""
    p = sim["params"]
    watched = sim.get("watch_share", 0) > 0
    lines = [
        f"**{title}** {sim['rounds']} rounds (M = {p['M']}, s = {p['s']}, c = {p['c']}, q = {p['q']}); trainers "
        f"{sim['population']['trainers']}, verifiers {sim['population']['verifiers']}; "
        f"{LAZY_JUROR_WORDS[sim['lazy_juror']]}; "
        + (f"{sim['watchers']} honest verifiers watch, each segment with probability {sim['watch_share']:.4f}; "
           if watched else "")
        + f"bond {sim['bond_wei'] / ETH:.5f} ETH (`compute_challenger_bond` at a "
        f"basefee of {sim['dispute_assumptions']['basefee G (gwei)']} gwei), dispute gas from `bench/disputes.md`.", "",
        "| role: strategy | rounds / seats | v1 tally: slashed | v1: profit per round (ETH) | disputes: convicted / slashed "
        "| caught by an honest member (escaped) | disputes opened (lost) | appeals made (won) | jury seats (abstained) | appeal jury seats | cheats accepted "
        + ("| found by a watcher only (convicted by a watcher) | watch disputes opened (lost) " if watched else "")
        + "| disputes: profit per round (ETH) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if watched else ""),
    ]
    for role in ("trainers", "verifiers"):
        for st, r in sim[role].items():
            old = v1[role].get(st, {})
            cheat = role == "trainers" and st != "honest"
            caught = f"{r.get('caught by honest members', 0)} ({r.get('escaped', 0)})" if cheat else ""
            opened = f"{r.get('disputes opened', 0)} ({r.get('disputes lost', 0)})" if role == "verifiers" else ""
            jury = f"{r.get('jury seats', 0)} ({r.get('jury abstentions', 0)})" if role == "verifiers" else ""
            appeals = f"{r.get('appeals', 0)} ({r.get('appeals won', 0)})"
            appeal_seats = f"{r.get('appeal seats', 0)}" if role == "verifiers" else ""
            cheats = r.get("cheats accepted", 0) if cheat else ""
            profit = describe_profit(r) if role == "trainers" else f"{r['profit_per_round_eth']:+.4f}"
            watch = ""
            if watched:
                found = (f"{r.get('caught by watchers only', 0)} ({r.get('convicted by a watcher', 0)})" if cheat else "")
                opened_w = (f"{r.get('watch disputes opened', 0)} ({r.get('watch disputes lost', 0)})"
                            if role == "verifiers" and r.get("watch rounds") else "")
                watch = f"{found} | {opened_w} | "
            lines.append(f"| {role[:-1]}: {st} | {r['rounds']} | {old.get('slashed', '—')} | "
                         f"{old.get('profit_per_round_eth', float('nan')):+.4f} | {r['slashed']} | {caught} | {opened} | "
                         f"{appeals} | {jury} | {appeal_seats} | {cheats} | {watch}{profit} |")
    return "\n".join(lines)


def disputes_findings_markdown(P: dict, a: dict, b: dict, a_replay: dict) -> str:
    """What the disputes runs show, worded from their numbers, with the analytic expectations."""
    runs = ((a, "A (a third lazy, copying the trainer)"), (b, "B (a third colluding)"),
            (a_replay, "A with lazy jurors replaying"))
    out = []
    for sim, name in runs:
        n, rounds = false_conviction(sim)
        exp = expected_false_conviction_rate(sim["population"]["verifiers"], P["c"])
        causes = ", ".join(f"{m}× {c_}" for c_, m in sim["honest_trainer_slashes_by_cause"].items()) or "none"
        first = expected_false_conviction_rate(sim["population"]["verifiers"], P["c"], appeals=False)
        h = sim["trainers"]["honest"]
        out.append(f"- **Honest trainers, scenario {name}:** convicted in {n} of {rounds} rounds "
                   f"({n / max(rounds, 1):.2%}; causes: {causes}); expected {exp:.2%}. A first jury's count went "
                   f"against them in {h.get('appeals', 0)} rounds ({h.get('appeals', 0) / max(rounds, 1):.2%}; the "
                   f"first juries alone: expected {first:.2%}); they appealed every one and won "
                   f"{h.get('appeals won', 0)}.")
    out.append("  Expected: Σ over committees P(its colluding members) × P(at least one of their disputes is won), a "
               "dispute won only when its first jury (a uniform draw of JURY_MAX of the other verifiers) and its "
               "appeal jury (all the other verifiers up to APPEAL_JURY_MAX, else a uniform sample of that many) are "
               "both captured, `node/protocol.py: compute_jury_capture_probability_finite` (`simulate.py: "
               "expected_false_conviction_rate`, `expected_appeal_capture`). Only a "
               "colluding challenger can win against an honest trainer: its jurors were told its answer. A lazy "
               "challenger's answer is no replay's, so no honest juror's answer matches it, and a lazy juror that "
               "does not know the challenger's answer can only copy the trainer's (`compute_vote_side`).")
    n_a, _ = false_conviction(a)
    n_b, rounds_b = false_conviction(b)
    verifiers_b = b["population"]["verifiers"]
    N, A = sum(verifiers_b.values()), verifiers_b.get("colluding", 0)
    p_first = protocol.compute_jury_capture_probability_finite(N - 1, A - 1, min(protocol.JURY_MAX, N - 1))
    p_appeal = expected_appeal_capture(N - 1, A - 1)
    p_big, p_big_appeal = (protocol.compute_jury_capture_probability(protocol.JURY_MAX, 1 / 3),
                           protocol.compute_jury_capture_probability(protocol.APPEAL_JURY_MAX, 1 / 3))
    appeals_b = b["trainers"]["honest"].get("appeals", 0)
    out.append(f"- **So a third lazy {'never slashes' if n_a == 0 else 'still slashes'} honest trainers, whether lazy "
               f"jurors copy the trainer or replay; against colluders the appeal makes the honest majority of the whole "
               f"set the judge, not that of one jury**: a third colluding convicts an honest trainer in "
               f"{n_b / max(rounds_b, 1):.2%} of its rounds (expected {expected_false_conviction_rate(verifiers_b, P['c']):.2%}). "
               f"Its first juries are still captured — in {appeals_b} of {rounds_b} rounds "
               f"({appeals_b / max(rounds_b, 1):.2%}) a colluding majority of 15 counted against the trainer, "
               f"{p_first:.1%} of the colluders' disputes ({A - 1} colluders among the other {N - 1} verifiers) — but "
               f"the trainer appeals each, and the appeal jury here is every verifier but the challenger "
               f"({min(protocol.APPEAL_JURY_MAX, N - 1)} seats, {A - 1} of them colluders), captured with p = "
               f"{p_appeal:.0%}. An honest trainer is convicted only when both juries are captured: "
               f"P = {p_first:.1%} × {p_appeal:.0%} per colluder's dispute on this registry; on a large one with a "
               f"third colluding (binomial, `compute_jury_capture_probability`) {p_big:.1%} × {p_big_appeal:.2%} = "
               f"{p_big * p_big_appeal:.4%} per dispute. Answer votes take the lazy verifiers out of every majority, "
               "the appeal the colluders out of all but a registry-wide one.")
    esc = []
    for sim, name in ((a, "A"), (b, "B"), (a_replay, "A with lazy jurors replaying")):
        lost, opened = honest_disputes(sim)
        exp = expected_escape_rate(sim["population"]["verifiers"], sim["lazy_juror"])
        esc.append(f"{lost} of {opened} in {name} ({lost / max(opened, 1):.1%}; expected {exp:.1%})")
    app = []
    for sim, name in ((a, "A"), (b, "B")):
        h = sim["verifiers"]["honest"]
        app.append(f"{h.get('appeals', 0)} in {name} (won {h.get('appeals won', 0)}; the first jury alone: "
                   f"{expected_escape_rate(sim['population']['verifiers'], sim['lazy_juror'], appeals=False):.1%} "
                   "of their disputes expected)")
    out.append("- **What lazy copiers cost: first juries that let caught cheats go, and the appeals that undo them.** "
               "A lazy juror that copies the trainer's answer counts for a cheating trainer, as a colluder does, so "
               "an honest challenger's dispute over a departing step is lost at its first jury when copiers and "
               "colluders together hold a majority of it. The challenger appeals; honest challengers' appeals: "
               + "; ".join(app) + ". Disputes that honest challengers lost in the end: " + "; ".join(esc)
               + " (`expected_escape_rate`: the covering jurors' majority of both juries, "
               "`compute_jury_capture_probability_finite`). Lazy jurors that replay cover nobody. Copiers are paid "
               "whenever the trainer wins; they lose `verifier_slash_bps` of their seat whenever an honest "
               "challenger convicts, on the appeal jury too, and their first-jury slashes go to the appellant.")
    pd = {st: detection_per_round(P, st) for st in a["trainers"] if st.startswith("forger")}
    det = []
    for st, p in pd.items():
        rounds = sum(x["trainers"][st]["rounds"] for x in (a, b))
        caught = sum(x["trainers"][st].get("caught", 0) for x in (a, b))
        conv = ", ".join(f"{x['trainers'][st]['slashed'] / x['trainers'][st]['rounds']:.1%} in {n}"
                         for x, n in ((a, "A"), (b, "B"), (a_replay, "A with lazy jurors replaying")))
        det.append(f"{st}: its segment is in the dealt checks with p = {p:.3f} per round (exact), "
                   f"{caught / rounds:.3f} measured (A and B); it is convicted in {conv} of its rounds")
    out.append(f"- **Detection per round at the demo defaults** (the checks dealt out over the committee: "
               f"{protocol.compute_dealt_count(P['s'], P['c'], P['M'])} drawn segments plus the last check): "
               + "; ".join(det) + ". Nobody watches in these three runs: a bad segment outside the dealt checks is "
               "never disputed (the runs with watchers below). Conviction is lower than detection where the check falls to a lazy member (it disputes, "
               "but its answer is no replay's and loses); in B also where a colluding member holds the check (it stays "
               "silent). A covered first jury no longer lets a caught cheat go: the honest challenger's appeal convicts.")
    cheats = [st for st in a["trainers"] if st != "honest"]
    worst = {st: max((x["trainers"][st] for x in (a, b, a_replay)), key=lambda r: r["profit_per_round_eth"])
             for st in cheats}
    losing = [st for st in cheats if worst[st]["profit_per_round_eth"] < 0]
    paying = [st for st in cheats if worst[st]["profit_per_round_eth"] >= 0]
    line = (f"- **Cheating trainers that lose in expectation in every scenario:** {', '.join(losing) or 'none'} "
            "(worst: " + ", ".join(f"{st} {describe_profit(worst[st])}" for st in cheats) + " ETH per round).")
    if paying:
        line += (f" **Not negative:** {', '.join(f'{st} ({describe_profit(worst[st])} ETH per round)' for st in paying)}"
                 " in at least one scenario.")
    out.append(line)
    for st in ("lazy", "colluding"):
        named = [(x, n) for x, n in ((a, "A"), (b, "B"), (a_replay, "A with lazy jurors replaying")) if st in x["verifiers"]]
        vals = [x["verifiers"][st]["profit_per_round_eth"] for x, _ in named]
        sign = "negative" if all(v < 0 for v in vals) else "**not negative**"
        jury = ", ".join(f"{jury_profit(x, st):+.4f} per jury seat in {n} (honest jurors {jury_profit(x, 'honest'):+.4f})"
                         for x, n in named)
        line = f"- **{st.capitalize()} verifiers** ({sign}): " + ", ".join(
            f"{x['verifiers'][st]['profit_per_round_eth']:+.4f} ETH per committee seat in {n} (honest "
            f"{x['verifiers']['honest']['profit_per_round_eth']:+.4f})" for x, n in named)
        if st == "lazy":
            copying_pays = jury_profit(a, "lazy") > jury_profit(a, "honest")
            line += ("; every dispute a lazy member opens costs its bond (it never wins), and its contradicting seat "
                     "is slashed when the round is accepted. As jurors alone: " + jury + ". Copying saves the replay "
                     "and is paid whenever the trainer wins, but is slashed whenever a caught cheat is convicted: "
                     + ("here it pays more than replaying, so a juror has a reason to copy (what scenario A models)"
                        if copying_pays else "with two thirds of the trainers cheating (scenario A) that costs more "
                        "than the replay it saves; the rarer the cheats, the less copying costs") + ".")
        else:
            appeal = ", ".join(f"{appeal_profit(x, st):+.4f} per appeal seat in {n}" for x, n in named)
            line += ("; a colluder's false dispute costs its bond unless both its jury and the appeal jury are "
                     "captured, and a captured first jury now costs its colluding jurors their seat slash (paid to "
                     "the appealing trainer) and the appeal's colluding jurors theirs. As jurors alone: " + jury
                     + "; as appeal jurors: " + appeal)
        out.append(line)
    return "\n".join(out) + "\n\nSource: `make whitepaper` (`whitepaper/simulate.py: run_disputes`, rules from `node/protocol.py`)."


def watch_profit(sim: dict) -> tuple[float, float]:
    """(profit, replay cost) per watcher per round (ETH) of a run with watchers: a watcher's replays, its watch disputes'
    bonds, gas and payouts (jury seats and committee seats aside)."""
    r = sim["verifiers"]["honest"]
    n = max(r.get("watch rounds", 0), 1)
    return r.get("watch profit (ETH)", 0) / n, r.get("watch segments replayed", 0) * sim["segment_replay_cost_eth"] / n


def watchers_findings_markdown(P: dict, a_w: dict, b_w: dict, a: dict, b: dict,
                               found_w: tuple[int, dict, dict] | None, search_from_wei: int) -> str:
    """What the runs with watchers (a_w, b_w: A and B, every honest verifier watching) show next to the same rounds
    unwatched (a, b), with the exact detection; `found_w`: disputes_deterring_stake with watchers, searched from
    `search_from_wei` (v1's default)."""
    share, W = a_w["watch_share"], a_w["watchers"]
    C = ASSUMPTIONS["trainer compute cost per round C"] * P["trainer_reward_wei"] / ETH
    out = []
    det = []
    for st in [x for x in a_w["trainers"] if x.startswith("forger")]:
        p = detection_per_round(P, st)
        pw = expected_watch_detection(p, share, W)
        rounds = sum(x["trainers"][st]["rounds"] for x in (a_w, b_w))
        dealt = sum(x["trainers"][st].get("caught", 0) for x in (a_w, b_w))
        found = sum(x["trainers"][st].get("detected", 0) for x in (a_w, b_w))
        conv = ", ".join(f"{x['trainers'][st]['slashed'] / x['trainers'][st]['rounds']:.1%} in {n} "
                         f"({y['trainers'][st]['slashed'] / y['trainers'][st]['rounds']:.1%} unwatched)"
                         for x, y, n in ((a_w, a, "A"), (b_w, b, "B")))
        det.append(f"{st}: dealt checks alone p = {p:.3f} (exact), {dealt / rounds:.3f} measured; with the watchers "
                   f"1 − (1 − p)(1 − σ)^W = {pw:.3f} (exact), {found / rounds:.3f} measured (A and B); convicted in "
                   f"{conv} of its rounds")
    p_rand = detection_per_round(P, "forger (random segment)")
    fewer = ", ".join(f"W = {w}: {expected_watch_detection(p_rand, share, w):.3f}" for w in (1, 5, 10, 20))
    out.append(f"- **Detection per round with watchers** ({W} honest verifiers watching, each segment with probability "
               f"σ = 1/M = {share:.4f}: one segment per watcher per round on average, k steps, a third of a committee "
               "seat's replay; lazy verifiers and colluders do not watch; a watcher disputes the first watched segment "
               "that ends elsewhere, `open_watch`, and its dispute goes to a jury as an honest member's does): "
               + "; ".join(det) + f". Fewer watchers, random segment: {fewer} (`expected_watch_detection`). A skipper "
               "has so many bad segments that some watcher finds one in every round. Conviction stays below detection "
               "where covering jurors hold the dispute's jury (the escape rate above) and, for a check a lazy or "
               "colluding member holds, unless a watcher also found the segment.")
    cheats = [st for st in a_w["trainers"] if st != "honest"]
    worst = {st: max((x["trainers"][st] for x in (a_w, b_w)), key=lambda r: r["profit_per_round_eth"]) for st in cheats}
    losing = [st for st in cheats if worst[st]["profit_per_round_eth"] < 0]
    paying = [st for st in cheats if worst[st]["profit_per_round_eth"] >= 0]
    line = (f"- **With watchers every cheating trainer loses:** {', '.join(losing) or 'none'} (worst of A and B: "
            + ", ".join(f"{st} {describe_profit(worst[st])}" for st in cheats) + " ETH per round).")
    if paying:
        line = line.replace("every cheating trainer loses", "cheating trainers that lose") + (
            f" **Not negative:** {', '.join(paying)}.")
    out.append(line)
    hon = []
    for x, y, n in ((a_w, a, "A"), (b_w, b, "B")):
        lost, opened = x["verifiers"]["honest"].get("watch disputes lost", 0), x["verifiers"]["honest"].get("watch disputes opened", 0)
        hon.append(f"in {n} convicted in {x['trainers']['honest']['slashed']} of {x['trainers']['honest']['rounds']} "
                   f"rounds ({y['trainers']['honest']['slashed']} unwatched), {lost} of {opened} watch disputes lost "
                   f"({lost / max(opened, 1):.1%}; expected {expected_escape_rate(x['population']['verifiers'], x['lazy_juror']):.1%})")
    out.append("- **Watchers never convict honest trainers:** a watcher disputes only a segment its replay contradicts; "
               "honest trainers " + "; ".join(hon) + ". Every watch dispute lost is a found cheat that escaped a "
               "covered jury, at the escape rate of the members' disputes. Several watchers often find the same cheat "
               "and all dispute (they do not see each other before opening); after the first conviction the others get "
               "their bond back, no share, and pay their gas.")
    pays = []
    for x, n in ((a_w, "A"), (b_w, "B")):
        net, cost = watch_profit(x)
        rounds_cheat = sum(r["rounds"] for st, r in x["trainers"].items() if st != "honest")
        phi = rounds_cheat / x["rounds"]
        breakeven = cost / ((net + cost) / phi) if net + cost > 0 else float("inf")
        y = b if n == "B" else a
        pays.append(f"{net:+.5f} ETH per watcher per round in {n} (its replays {cost:.5f}), so watching pays while at "
                    f"least {breakeven:.0%} of rounds cheat in this mix ({phi:.0%} here); honest jurors "
                    f"{jury_profit(x, 'honest'):+.4f} per jury seat ({jury_profit(y, 'honest'):+.4f} unwatched), honest "
                    f"verifiers in all {x['verifiers']['honest']['profit_per_round_eth']:+.4f} per committee seat "
                    f"({y['verifiers']['honest']['profit_per_round_eth']:+.4f} unwatched)")
    out.append(f"- **Does watching pay?** At σ = 1/M a watcher replays σ·M·k = k steps a round, σ·C = {share * C:.5f} "
               "ETH (less when it stops at a bad segment): " + "; ".join(pays) + ". Its income is the first convicting "
               "watcher's `fraud_reward_bps` share of the fraud slash; its cost comes whether anyone cheats or not, so "
               "where cheating is rare a watcher works at a loss: nothing pays a watched segment, and the deployment "
               "cannot count on watchers. The redundant watch disputes also cost their jurors a replay each, unpaid "
               "once the round is convicted: that is why honest jurors earn less per seat with watchers.")
    out.append("- **Dishonest verifiers with watchers:** lazy "
               f"{a_w['verifiers']['lazy']['profit_per_round_eth']:+.4f} ETH per committee seat in A "
               f"({a['verifiers']['lazy']['profit_per_round_eth']:+.4f} unwatched), colluding "
               f"{b_w['verifiers']['colluding']['profit_per_round_eth']:+.4f} in B "
               f"({b['verifiers']['colluding']['profit_per_round_eth']:+.4f} unwatched): as jurors covering cheats they "
               "are now slashed in many more convictions.")
    if found_w is not None:
        stake_w, sa, sb = found_w
        worst_s = {st: max((x["trainers"][st] for x in (sa, sb)), key=lambda r: r["profit_per_round_eth"]) for st in cheats}
        out.append(f"- **The stake with watchers:** the same search (`disputes_deterring_stake`, whole ETH from v1's "
                   f"{search_from_wei / ETH:g} ETH) with every honest verifier watching at σ = 1/M stops at "
                   f"{stake_w / ETH:g} ETH (worst: " + ", ".join(f"{st} {describe_profit(worst_s[st])}" for st in cheats)
                   + " ETH per round), "
                   + ("below" if stake_w < protocol.DISPUTES_MIN_TRAINER_STAKE_WEI else "not below")
                   + f" the {protocol.DISPUTES_MIN_TRAINER_STAKE_WEI / ETH:g} ETH of a Disputes deployment "
                   "(`protocol.DISPUTES_MIN_TRAINER_STAKE_WEI`, the unwatched search). The default stays where the "
                   "unwatched search puts it: watching is each verifier's choice and pays only while cheats are "
                   "common, so the stake deters without counting on it.")
    A, N = b["population"]["verifiers"].get("colluding", 0), sum(b["population"]["verifiers"].values())
    campaign = expected_watch_campaign(P, b["population"]["verifiers"], attempts=6)
    p_cap, first, last = campaign[0]["p_capture"], campaign[0], campaign[-1]
    out.append(f"- **Colluders watching honest trainers (exact, not played: `expected_watch_campaign`).** `open_watch` "
               "lets any staked verifier dispute any round once, not only from a committee seat. A false watch on an "
               f"honest round wins its first count only if its jury is captured, p = {p_cap:.1%} ({A - 1} other "
               f"colluders of the {N - 1} jurors' pool, `compute_jury_capture_probability_finite`), and then the "
               "trainer appeals: it convicts only if the appeal jury is captured too, p = "
               f"{first['p_appeal_capture']:.0%} here (every other verifier sits on it). Before appeals, {A} colluders "
               f"trying once each would have convicted {1 - (1 - p_cap) ** A:.0%} of honest rounds. For profit the "
               f"attack fails at once: the coalition (the watcher and its jurors) expects {first['ev_eth']:+.3f} ETH "
               f"from the first watch ({first['bond_eth']:.3f} ETH bond, lost unless both juries are captured, plus "
               "its jurors' seat slashes on both juries), and every later watch of the round loses more: each doubles "
               "the bond (`protocol.compute_watch_bond`) and a lost watch's bond is burned. Nor does spite buy "
               f"anything here: {len(campaign)} watches convict an honest trainer with "
               f"{last['p_convicted_by_k']:.2%} and cost the coalition {-last['campaign_ev_eth']:.2f} ETH in "
               "expectation, against the trainer's "
               f"{protocol.compute_slash(protocol.compute_trainer_reservation(P.get('task_min_trainer_stake_wei', 0), P['min_trainer_stake_wei']), P['trainer_slash_bps']) / ETH:g} ETH slash. "
               "The runs above let colluders dispute only from their committee seats.\n\n"
               + watch_campaign_markdown(campaign, b["population"]["verifiers"]))
    return "\n".join(out) + ("\n\nSource: `make whitepaper` (`whitepaper/simulate.py: run_disputes(..., watch_share)`, "
                             "rules from `node/protocol.py`).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Simulate many trainchain rounds with mixed strategies.")
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_figures import default_params

    sim = run(default_params(), args.rounds, args.seed)
    if args.json:
        sim.pop("cumulative_profit_eth")
        print(json.dumps(sim, indent=1))
    else:
        print(summary_markdown(sim))
    return 0


if __name__ == "__main__":
    sys.exit(main())
