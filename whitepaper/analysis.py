"""Closed-form security and cost analysis of a trainchain round (whitepaper §5, §6).

Pure functions, no chain, no torch. Notation (as in the paper):
  M  segments per round (M = S / k), s random samples, +1 for the last segment,
  b  bad (forged) segment transitions, f = b / M,
  c  committee size, N verifiers in the active set of which A collude.
"""
from __future__ import annotations

from math import comb


# ------------------------------------------------------------ detection probability
def detection_binomial(f: float, s: int) -> float:
    """1 - (1 - f)^s: s independent uniform samples (with replacement)."""
    return 1.0 - (1.0 - f) ** s


def detection_hypergeometric(M: int, b: int, s: int) -> float:
    """1 - C(M-b, s) / C(M, s): s distinct uniform samples, adjacency allowed."""
    if s > M:
        raise ValueError("analysis: more samples than segments")
    return 1.0 - comb(M - b, s) / comb(M, s)


def count_nonadjacent_subsets(n: int, s: int, forbidden: frozenset[int] = frozenset()) -> int:
    """Number of s-subsets of {0..n-1}, no two adjacent, avoiding `forbidden`.

    DP over positions: free[j] / taken[j] = ways to have chosen j so far with the
    previous position free / taken.
    """
    free = [1] + [0] * s
    taken = [0] * (s + 1)
    for i in range(n):
        new_taken = [0] * (s + 1)
        if i not in forbidden:
            for j in range(1, s + 1):
                new_taken[j] = free[j - 1]
        free = [a + b for a, b in zip(free, taken)]
        taken = new_taken
    return free[s] + taken[s]


def candidate_segments(M: int) -> int:
    """Segments the random draw may pick: 0..M-2 (M-1 is always checked; a drawn M-2 is
    checked together with M-1 as one span, node/protocol.py compute_check_ends)."""
    return M - 1


def detection_nonadjacent(M: int, s: int, bad: set[int]) -> float:
    """Exact P(detect) if the s random samples are uniform over the non-adjacent
    s-subsets of {0..M-2} and segment M-1 is always checked (the v1 sampling rule)."""
    if M - 1 in bad:
        return 1.0
    n = candidate_segments(M)
    total = count_nonadjacent_subsets(n, s)
    if total == 0:
        raise ValueError("analysis: no non-adjacent sample set of that size")
    forbidden = frozenset(j for j in bad if j < n)
    return 1.0 - count_nonadjacent_subsets(n, s, forbidden) / total


def bad_set(M: int, b: int, layout: str, s: int = 1) -> set[int]:
    """Where a cheater puts b forged transitions among the randomly sampled
    segments 0..M-2: 'spread' evenly, one 'block' of neighbours in the middle,
    or 'worst': greedily the positions that keep detection lowest for s samples
    (a sample excludes its neighbours, so marginals are not uniform)."""
    n = candidate_segments(M)
    if not 0 <= b <= n:
        raise ValueError(f"analysis: b={b} must be within 0..{n}")
    if layout == "block":
        first = (n - b) // 2
        return set(range(first, first + b))
    if layout == "spread":
        return {int((i + 0.5) * n / b) for i in range(b)}
    if layout == "worst":
        chosen: set[int] = set()
        for _ in range(b):
            best = min((j for j in range(n) if j not in chosen),
                       key=lambda j: detection_nonadjacent(M, s, chosen | {j}))
            chosen.add(best)
        return chosen
    raise ValueError(f"analysis: unknown layout {layout!r}")


# ------------------------------------------------------------ economics
def cheat_advantage(p_detect: float, slash: float, reward: float,
                    saved_cost: float = 0.0, value_if_accepted: float = 0.0) -> float:
    """Expected payoff of cheating minus that of honest work.

    A cheater keeps `saved_cost` (compute it skipped) whatever happens; it gets
    `value_if_accepted` (e.g. a backdoored model made canonical) and the reward
    only if undetected (1-p); detected (p), it loses the reward and the slash:
        E[cheat] - E[honest] = saved + (1-p)·value - p·(reward + slash).
    """
    return saved_cost + (1.0 - p_detect) * value_if_accepted - p_detect * (reward + slash)


def min_stake(p_detect: float, reward: float, saved_cost: float = 0.0,
              value_if_accepted: float = 0.0) -> float:
    """Smallest slash that makes cheating a loss in expectation:
    (saved + (1-p)·value) / p - reward (infinite when p = 0)."""
    if p_detect <= 0:
        return float("inf")
    return max(0.0, (saved_cost + (1.0 - p_detect) * value_if_accepted) / p_detect - reward)


# ------------------------------------------------------------ committee
def p_colluding_majority(N: int, A: int, c: int, need: int) -> float:
    """P(at least `need` of a uniform c-committee drawn from N verifiers are among
    the A colluders): the hypergeometric tail."""
    if not 0 <= A <= N or not 1 <= c <= N:
        raise ValueError("analysis: need 0 <= A <= N and 1 <= c <= N")
    return sum(comb(A, x) * comb(N - A, c - x) for x in range(need, min(A, c) + 1)) / comb(N, c)


def sybil_capital(alpha: float, honest_verifiers: int, min_stake_wei: int) -> float:
    """Stake an attacker must lock to be a fraction alpha of a uniform-per-address
    verifier set: alpha/(1-alpha) · honest · minimum stake."""
    if not 0 <= alpha < 1:
        raise ValueError("analysis: alpha must be in [0, 1)")
    return alpha / (1 - alpha) * honest_verifiers * min_stake_wei


# ------------------------------------------------------------ compute
def verifier_compute_fraction(S: int, k: int, s: int, c: int = 1) -> float:
    """Replayed steps over trained steps: (s+1)·k/S per member, times c for the committee."""
    if S % k:
        raise ValueError("analysis: segment_steps must divide steps_per_round")
    return (s + 1) * k / S * c


# ------------------------------------------------------------ the outside review's attacks (issue #13)
def p_grinding_capture(N: int, A: int, c: int, need: int, throwaways: int, drawn_at_commit: bool) -> float:
    """P(a trainer holding A of N verifier seats gets >= `need` of a c-committee).

    v1 (drawn_at_commit=False): `seal` read the active set when it ran, after the seed was public, so each
    of up to `throwaways` extra stakes gave the trainer a fresh draw over a larger set (A+j of N+j) and it
    sealed on the first one that suits it: 1 - prod_j (1 - p_j). Now (drawn_at_commit=True) the draw is over
    the entries eligible at the commit block, so stakes after the commit change nothing: p_0."""
    if drawn_at_commit:
        return p_colluding_majority(N, A, c, need)
    miss = 1.0
    for j in range(throwaways + 1):
        miss *= 1.0 - p_colluding_majority(N + j, A + j, c, need)
    return 1.0 - miss


def reroll_cost(stake_wei: int, p_detect: float, withhold_bps: int, fresh_draw: bool) -> tuple[float, float]:
    """(P(a one-segment forgery is finally accepted), expected stake lost on the way) for a trainer that
    withholds whenever its forgery is drawn and re-commits the same roots.

    v1 (fresh_draw=True): every re-commit drew fresh samples; each withholding cost `withhold_bps` (the
    no-show slash): re-rolling until a miss succeeds with probability 1 at an expected p/(1-p) withholdings.
    Now (fresh_draw=False): a re-commit reuses the first seed, so a drawn forgery stays drawn; withholding
    costs `withhold_bps` = the fraud slash once and gains nothing: success 1 - p, loss p * slash."""
    slash = stake_wei * withhold_bps / 10_000
    if fresh_draw:
        if p_detect >= 1.0:
            return 0.0, float("inf")
        return 1.0, p_detect / (1.0 - p_detect) * slash
    return 1.0 - p_detect, p_detect * slash
