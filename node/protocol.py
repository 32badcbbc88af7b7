"""The protocol's pure rules: the Python reference the contracts are tested against.

One source of truth for each rule. Vyper implements the same names; tests in
tests/contracts check both agree on random inputs. Style: consensus-specs
(`compute_*` pure helpers, `is_*` predicates, constants in one table).
"""
from __future__ import annotations

from sha3 import keccak_256  # safe-pysha3, an eth-brownie dependency

from node.rounds import Outcome, Phase, outcome_name  # noqa: F401  (the one phase/outcome table)


def keccak(data: bytes) -> bytes:
    """keccak256 of bytes (Ethereum's, not NIST SHA3-256). pysha3 directly: eth_utils.keccak's input checks cost ~10x
    the hash, and the whitepaper's simulations hash ~10^5 times per scenario (committee and jury draws)."""
    return keccak_256(data).digest()


# ---------------------------------------------------------------- constants
ZERO_HASH = b"\x00" * 32


# ---------------------------------------------------------------- merkle rule
def compute_leaf(index: int, value: bytes) -> bytes:
    """leaf = keccak256(abi.encode(uint256 index, bytes32 value))."""
    assert 0 <= index < 2**256 and len(value) == 32
    return keccak(index.to_bytes(32, "big") + value)


def compute_parent(left: bytes, right: bytes) -> bytes:
    """parent = keccak256(left ‖ right)."""
    return keccak(left + right)


def compute_tree_depth(n_leaves: int) -> int:
    """Depth of the tree over n leaves padded to a power of two (1 leaf: depth 0)."""
    assert n_leaves >= 1
    return (n_leaves - 1).bit_length()


def compute_merkle_layers(values: list[bytes]) -> list[list[bytes]]:
    """All layers, leaves first; padded to a power of two with zero leaves (raw ZERO_HASH)."""
    assert len(values) >= 1
    layer = [compute_leaf(i, v) for i, v in enumerate(values)]
    layer += [ZERO_HASH] * ((1 << compute_tree_depth(len(values))) - len(values))
    layers = [layer]
    while len(layer) > 1:
        layer = [compute_parent(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        layers.append(layer)
    return layers


def compute_merkle_root(values: list[bytes]) -> bytes:
    return compute_merkle_layers(values)[-1][0]


def compute_merkle_proof(values: list[bytes], index: int) -> list[bytes]:
    """Siblings from the leaf up to (not including) the root."""
    assert 0 <= index < len(values)
    layers = compute_merkle_layers(values)
    proof = []
    for layer in layers[:-1]:
        proof.append(layer[index ^ 1])
        index >>= 1
    return proof


def compute_root_from_proof(index: int, value: bytes, proof: list[bytes]) -> bytes:
    node = compute_leaf(index, value)
    for sibling in proof:
        node = compute_parent(node, sibling) if index & 1 == 0 else compute_parent(sibling, node)
        index >>= 1
    return node


def is_valid_merkle_proof(root: bytes, n_leaves: int, index: int, value: bytes, proof: list[bytes]) -> bool:
    """A proof is valid only for the tree size it claims: its length must be the depth."""
    return (
        0 <= index < n_leaves
        and len(proof) == compute_tree_depth(n_leaves)
        and compute_root_from_proof(index, value, proof) == root
    )


# ---------------------------------------------------------------- round rules
# Mirrors of the pure functions of contracts/lib/rules.vy (same names, same results).
TRAINER = 1
VERIFIER = 2
BPS = 10_000
MAX_COMMITTEE = 16
MAX_SAMPLES = 64
MAX_SEGMENTS = 4096
MAX_DEPTH = 16
MAX_DRAW = 64
MAX_ACTIVE_VERIFIERS = 256
BLOCKHASH_HORIZON = 256
DOMAIN_COMMITTEE = 1
DOMAIN_SAMPLES = 2

# Round phases and outcomes: node.rounds.Phase / Outcome (re-exported here, with outcome_name).


def compute_seed(block_hash: bytes, round_id: int) -> bytes:
    """seed = keccak256(abi.encode(bytes32 blockhash(commit_block + seal_delay_blocks), uint256 round_id))."""
    assert len(block_hash) == 32
    return keccak(block_hash + round_id.to_bytes(32, "big"))


def compute_draw(seed: bytes, domain: int, pool_size: int, n: int) -> list[int]:
    """n distinct indices of 0..pool_size-1, by a partial Fisher-Yates shuffle, in draw order.

    Step i swaps slot i with slot j = i + r_i mod (pool_size - i), r_i = keccak256(abi.encode(seed, domain, i)).
    """
    assert 0 <= n <= pool_size and n <= MAX_DRAW, "rules: draw larger than pool"
    slots: dict[int, int] = {}  # the virtual shuffled array; an unset slot k holds k
    out = []
    for i in range(n):
        r = int.from_bytes(keccak(seed + domain.to_bytes(32, "big") + i.to_bytes(32, "big")), "big")
        j = i + r % (pool_size - i)
        out.append(slots.get(j, j))
        slots[j] = slots.get(i, i)
    return out


def compute_samples(seed: bytes, n_segments: int, n_samples: int) -> list[int]:
    """Start leaves of the round's checks, ascending: s or s+1 of them, the last check always ends at leaf M.

    s pairwise non-adjacent segments x are drawn from 0..M-2: s distinct y in 0..M-s-1,
    sorted, map to x_i = y_i + i (a bijection onto the non-adjacent sets). Each x < M-2 is
    the check (x, x+1). The last check is (M-2, M) if M-2 was drawn (two segments replayed
    as one, h_{M-1} never revealed), else (M-1, M). So every segment can be checked, and no
    revealed start is ever the hidden end of another check.
    """
    assert n_samples <= MAX_SAMPLES and n_segments >= 2 * n_samples + 1, "rules: too few segments"
    ys = sorted(compute_draw(seed, DOMAIN_SAMPLES, n_segments - n_samples, n_samples))
    xs = [y + i for i, y in enumerate(ys)]
    last = n_segments - 2 if xs and xs[-1] == n_segments - 2 else n_segments - 1
    return [x for x in xs if x < n_segments - 2] + [last]


def compute_check_ends(samples: list[int], n_segments: int) -> list[int]:
    """End leaf of each check of compute_samples: start + 1, except the last, which ends at leaf M."""
    assert len(samples) >= 1 and samples[-1] in (n_segments - 2, n_segments - 1), "rules: not a sample list"
    return [j + 1 for j in samples[:-1]] + [n_segments]


def compute_committee_indices(seed: bytes, n_active: int, committee_size: int) -> list[int]:
    """Positions in StakeManager.active_verifiers of the committee (min(c, n_active) members)."""
    return compute_draw(seed, DOMAIN_COMMITTEE, n_active, min(committee_size, n_active))


def compute_verdict_commitment(round_id: int, verifier: str, end_hashes: list[bytes], data_root_ok: bool, starts_ok: bool, salt: bytes) -> bytes:
    """keccak256(abi.encode(uint256 round_id, address verifier, bytes32[] end_hashes, bool data_root_ok,
    bool starts_ok, bytes32 salt)): every flag a verifier can know before the ends are revealed is
    committed, so no flag can be flipped after seeing the others' reveals (issue #13, attack 5)."""
    from eth_abi import encode

    return keccak(encode(["uint256", "address", "bytes32[]", "bool", "bool", "bytes32"],
                         [round_id, verifier, list(end_hashes), data_root_ok, starts_ok, salt]))


def compute_final_commitment(round_id: int, verifier: str, final_ok: bool, salt: bytes) -> bytes:
    """keccak256(abi.encode(uint256 round_id, address verifier, bool final_ok, bytes32 salt)), the
    verdict's salt: final_ok is knowable only once the ends (and the final CID) are revealed, so it
    gets its own commitment, due before any verdict is revealed (issue #13, attack 5)."""
    from eth_abi import encode

    return keccak(encode(["uint256", "address", "bool", "bytes32"], [round_id, verifier, final_ok, salt]))


def compute_fetch_budget_s(blocks_left: int, block_seconds: float, share: float = 0.5) -> float:
    """Seconds a verifier may spend fetching a window's content: `share` of the time left before the
    window's last block (the replay and the transaction need the rest). Issue #13: fetches are budgeted
    against the window, so unavailable content becomes a committed flag, never an honest no-show."""
    return max(0.0, blocks_left * block_seconds * share)


def is_contradicting(trainer_end_hashes: list[bytes], end_hashes: list[bytes], data_root_ok: bool, starts_ok: bool,
                     final_ok: bool, member_index: int = 0, committee_size: int = 1) -> bool:
    """A verdict contradicts the trainer if any flag is false or an end hash of a check the member holds differs:
    every check in v1 (member 0 of 1), with Disputes only the checks dealt to it (compute_member_checks: i = m mod
    c, and the last); the end hashes it reveals for the others are not read. data_root_ok and starts_ok are
    committed with the end hashes before the ends (compute_verdict_commitment), final_ok after them
    (compute_final_commitment); no verdict is revealed before every input is committed, so nobody can flip the
    tally after seeing the others (issue #13, attack 5)."""
    if not (data_root_ok and starts_ok and final_ok):
        return True
    n = len(trainer_end_hashes)
    return any(bytes(end_hashes[i]) != bytes(trainer_end_hashes[i]) for i in range(n)
               if i == n - 1 or i % committee_size == member_index)


def compute_tally(n_revealed: int, n_contradicting: int, quorum: int) -> Outcome:
    """VOID if fewer than quorum reveals; FRAUD if a strict majority contradicts; else ACCEPTED."""
    if n_revealed < quorum:
        return Outcome.VOID
    if 2 * n_contradicting > n_revealed:
        return Outcome.FRAUD
    return Outcome.ACCEPTED


def compute_slash(stake: int, bps: int) -> int:
    """stake * bps // 10000 (rounded down)."""
    return stake * bps // BPS


def compute_fraud_split(slashed: int, reward_bps: int, n_majority: int) -> tuple[int, int]:
    """(paid to each majority verifier, to the treasury) out of a fraud slash; dust goes to the treasury."""
    if n_majority == 0:
        return 0, slashed
    per_verifier = slashed * reward_bps // BPS // n_majority
    return per_verifier, slashed - per_verifier * n_majority


def compute_round_cost(trainer_reward: int, verifier_reward: int, committee_size: int) -> int:
    """Most an accepted round pays from the task pool (commit needs the pool to cover it)."""
    return trainer_reward + verifier_reward * committee_size


def compute_rewards(outcome: int, trainer_reward: int, verifier_reward: int, n_majority_paid: int) -> tuple[int, int]:
    """(trainer reward, per-verifier reward) paid from the pool for a round with `outcome`."""
    if outcome != Outcome.ACCEPTED:
        return 0, 0
    return trainer_reward, verifier_reward


# ---------------------------------------------------------------- task bounds (issue #13, attacks 1 and 2)
# A task's parameters lie inside deployment-wide bounds (rules.TaskBounds, fixed in TaskRegistry's
# constructor): no task can set windows nobody honest can meet, windows that lock stake forever,
# or slashes that take a drawn verifier's whole stake.
MIN_WINDOW_BLOCKS = 4          # an honest replay + two transactions fit (the demo spec's windows are 40-60)
MAX_WINDOW_BLOCKS = 1_000      # ~3.3 h at 12 s blocks: the longest any drawn stake is locked per phase
MAX_TRAINER_SLASH_BPS = 10_000
MAX_VERIFIER_SLASH_BPS = 1_000
MAX_NO_SHOW_SLASH_BPS = 1_000
# A new task takes no commit or claim for this many blocks (TaskRegistry.opens_block): verifiers are drawn
# for every task they have not opted out of, and a running verifier node screens each new task's spec and
# opts out of one it cannot replay (#13, attack 1) — this is its time to do so. Deployments on a real chain
# set minutes of blocks; the devnet default covers a node's poll at 1 s blocks.
TASK_NOTICE_BLOCKS = 4


def compute_task_opens_block(created_block: int, notice_blocks: int) -> int:
    """TaskRegistry.opens_block: the first block in which a new task's first commit or claim is mined."""
    return created_block + notice_blocks


def is_every_check_disputable(segment_steps: int) -> bool:
    """rules.check_task_params' span bound: the last check spans 2k steps and a dispute posts at most
    MAX_SPAN_STEPS step hashes, so k <= MAX_SPAN_STEPS / 2 keeps every check disputable."""
    return 2 * segment_steps <= MAX_SPAN_STEPS


def check_task_params(params) -> None:
    """The deployment-independent bounds create_task checks that matter to #13 (the rest are in
    rules.check_task_params): raise ValueError with the contract's words."""
    if params.verifier_reward_wei <= 0:
        raise ValueError("rules: zero verifier reward")
    if not is_every_check_disputable(params.segment_steps):
        raise ValueError("rules: segment too long to dispute")
    if not 1 <= params.slots_per_epoch <= MAX_SLOTS:
        raise ValueError("rules: slots per epoch out of range")
    if not 1 <= params.outer_lr_bps <= MAX_OUTER_LR_BPS:
        raise ValueError("rules: outer lr out of range")
    if not params.outer_momentum_bps < BPS:
        raise ValueError("rules: outer momentum out of range")


def check_task_bounds(params, bounds) -> None:
    """rules.check_task_bounds: raise ValueError with the contract's revert words unless `params`
    (a TaskParams) lies inside `bounds` (anything with TaskBounds' field names, e.g. DeployParams)."""
    windows = (params.reveal_window, params.commit_verdicts_window, params.reveal_verdicts_window)
    if min(windows) < bounds.min_window_blocks:
        raise ValueError("rules: window below the deployment minimum")
    if max(windows) > bounds.max_window_blocks:
        raise ValueError("rules: window above the deployment maximum")
    if params.trainer_slash_bps > bounds.max_trainer_slash_bps:
        raise ValueError("rules: trainer slash above the cap")
    if params.verifier_slash_bps > bounds.max_verifier_slash_bps:
        raise ValueError("rules: verifier slash above the cap")
    if params.no_show_slash_bps > bounds.max_no_show_slash_bps:
        raise ValueError("rules: no-show slash above the cap")
    if is_epoch_task(params.slots_per_epoch, params.outer_lr_bps, params.outer_momentum_bps):
        if min(params.claim_window, params.train_window) < bounds.min_window_blocks:
            raise ValueError("rules: window below the deployment minimum")
        if max(params.claim_window, params.train_window) > bounds.max_window_blocks:
            raise ValueError("rules: window above the deployment maximum")


def compute_max_lock_blocks(max_seal_delay: int, max_window_blocks: int) -> int:
    """Most blocks one round can keep a stake locked: seal delay + blockhash horizon (seal), then the
    trainer's starts window, the committee's commit window, the trainer's ends window, the final flags'
    commit window, the reveal window."""
    return max_seal_delay + BLOCKHASH_HORIZON + 5 * max_window_blocks


# ---------------------------------------------------------------- no re-roll (issue #13, attack 4)
def compute_trace_key(task_id: int, base_hash: bytes, trace_root: bytes) -> bytes:
    """keccak256(abi.encode(task_id, base_hash, trace_root)): a re-commit of the same key is sealed
    with the seed of its first seal (the honest trace is unique, so it must stay committable)."""
    return keccak(task_id.to_bytes(32, "big") + base_hash + trace_root)


def compute_trainer_miss_bps(trainer_slash_bps: int, no_show_slash_bps: int) -> int:
    """A trainer's expired/abandoned round costs at least the fraud slash: the seed is public from
    the seal block on, so withholding must not be a cheaper exit than being caught."""
    return max(trainer_slash_bps, no_show_slash_bps)


# ---------------------------------------------------------------- verifier entries (issue #13, attacks 3 and 6)
MAX_COMMITTEE_ATTEMPTS = 64


def compute_committee_candidate(seed: bytes, attempt: int, n_entries: int) -> int:
    """Entry index tried by attempt `attempt`: keccak256(abi.encode(seed, DOMAIN_COMMITTEE, attempt)) mod n."""
    return int.from_bytes(keccak(seed + DOMAIN_COMMITTEE.to_bytes(32, "big") + attempt.to_bytes(32, "big")), "big") % n_entries


def compute_committee_by_rejection(seed: bytes, entries: list[tuple[str, int, int]], at_block: int, committee_size: int,
                                   is_staked=lambda verifier: True) -> list[str]:
    """StakeManager.draw_committee: `entries` = [(verifier, active_from, active_until or 0)] in registry
    order; only those opened by `at_block` (the commit block) are in the index space; an attempt keeps its
    entry if it was open at `at_block`, its verifier is still staked and not drawn yet."""
    n = sum(1 for _, active_from, _ in entries if active_from <= at_block)  # a prefix: active_from grows
    out: list[str] = []
    if n == 0:
        return out
    for k in range(MAX_COMMITTEE_ATTEMPTS):
        if len(out) >= committee_size:
            break
        verifier, _, active_until = entries[compute_committee_candidate(seed, k, n)]
        if (active_until != 0 and active_until <= at_block) or not is_staked(verifier) or verifier in out:
            continue
        out.append(verifier)
    return out


# ---------------------------------------------------------------- epoch schedule (issue #14, docs/protocol-v2-interface.md)
def compute_batch_index(epoch: int, slot: int, step: int, n_slots: int, steps_per_slot: int) -> int:
    """Global batch g of inner step t of slot i in epoch e: (e·N + i)·H + t (distinct across slots)."""
    return (epoch * n_slots + slot) * steps_per_slot + step


def compute_lr_step(epoch: int, step: int, steps_per_slot: int) -> int:
    """The learning-rate schedule's position: e·H + t (every slot of an epoch shares it)."""
    return epoch * steps_per_slot + step


def compute_random_key(seed: int, epoch: int, slot: int, step: int) -> tuple:
    """Key of every random draw of a step (dropout, ...): (seed, e, i, t); the purpose and the
    element index are added by node/engine/rng.py (counter-based, #19)."""
    return (seed, epoch, slot, step)


def compute_step_key(seed: int, epoch: int, slot: int, step: int, n_slots: int, steps_per_slot: int) -> tuple:
    """The key the engine uses: with N = 1 it is v1's (seed, g), g = e·H + t, so a one-slot task trains
    the very bits of a v1 task (same traces, same checkpoints); with N > 1 it is compute_random_key."""
    if n_slots == 1:
        return (seed, compute_batch_index(epoch, slot, step, n_slots, steps_per_slot))
    return compute_random_key(seed, epoch, slot, step)


# ---------------------------------------------------------------- epochs on chain (issue #14, contracts/Epochs.vy)
# Same names and results as contracts/lib/rules.vy (tests/contracts/test_epochs_rules.py holds them
# against each other); the phases and who acts when are node.rounds' epoch state machine.
MAX_SLOTS = 16
MAX_OUTER_LR_BPS = 20_000
DOMAIN_AGGREGATE = 3


def compute_bps(fraction: float) -> int:
    """A spec's fraction (outer_lr, outer_momentum) in basis points, as TaskParams carries it."""
    return round(fraction * BPS)


def is_epoch_task(slots_per_epoch: int, outer_lr_bps: int, outer_momentum_bps: int) -> bool:
    """rules.is_epoch_task: more than one slot or a non-identity outer step runs in Epochs; a one-slot
    identity task is a v1 task (TrainingRounds.commit; a failed round is retried in the same epoch)."""
    return slots_per_epoch > 1 or outer_lr_bps != BPS or outer_momentum_bps != 0


def compute_trainer_reservation(min_trainer_stake_wei: int, min_trainer_stake: int) -> int:
    """rules.compute_trainer_reservation: what a round, an epoch slot or an aggregate post reserves of its
    trainer's free stake (the task's minimum, at least the deployment's); its slashes are fractions of it."""
    return max(min_trainer_stake_wei, min_trainer_stake)


def compute_slot_span(seal_delay_blocks: int, reveal_window: int, commit_verdicts_window: int,
                      reveal_verdicts_window: int) -> int:
    """Most blocks an honest slot takes from its commit to its finalize: seal block + seal, the trainer's
    two reveals, the committee's three windows (verdicts, final flags, reveals), the finalize block."""
    return seal_delay_blocks + 1 + 2 * reveal_window + 2 * commit_verdicts_window + reveal_verdicts_window + 1


def compute_dispute_span(reveal_window: int, commit_verdicts_window: int, reveal_verdicts_window: int) -> int:
    """Most blocks a dispute opened at its round's deadline takes until the round can finalize, one appeal
    included: a reveal_window for every move (the trainer's span, the challenger's naming, the two jury
    draws after their jury blocks, the resolve), the two juries' windows, the appeal window, the two jury
    blocks and the finalize block. Epochs adds it to the slot span when Disputes is set: a dispute its
    challenger loses never leaves the honest slot out of A (tests/test_dispute_span.py plays its worst case)."""
    return 5 * reveal_window + 2 * commit_verdicts_window + 3 * reveal_verdicts_window + 3


def compute_epoch_deadlines(opened_block: int, claim_window: int, train_window: int, slot_span: int) -> tuple[int, int, int]:
    """(claim_deadline, commit_deadline, aggregate_deadline) of an epoch opened at `opened_block` (its first claim)."""
    claim_deadline = opened_block + claim_window
    commit_deadline = claim_deadline + train_window
    return claim_deadline, commit_deadline, commit_deadline + slot_span


def compute_task_epoch_deadlines(params, opened_block: int, disputes: bool) -> tuple[int, int, int]:
    """compute_epoch_deadlines from a TaskParams (what Epochs computes at the first claim); `disputes`: the
    deployment settles contradictions by Disputes (TrainingRounds.disputes set), so a slot's span includes a
    dispute's (compute_dispute_span)."""
    span = compute_slot_span(params.seal_delay_blocks, params.reveal_window, params.commit_verdicts_window,
                             params.reveal_verdicts_window)
    if disputes:
        span += compute_dispute_span(params.reveal_window, params.commit_verdicts_window, params.reveal_verdicts_window)
    return compute_epoch_deadlines(opened_block, params.claim_window, params.train_window, span)


def is_every_slot_claimed(n_slots: int, claimed: int) -> bool:
    """Whether all N slots of an epoch are claimed (bit i of `claimed`: slot i): nothing is left to claim."""
    return claimed == (1 << n_slots) - 1


def is_claim_phase_over(block: int, claim_deadline: int, every_slot_claimed: bool) -> bool:
    """Whether an epoch's claim phase is over in `block`: its claim window closed, or every slot is claimed
    (the N-th claim ends it: nobody can join A any more, the aggregation need not wait)."""
    return every_slot_claimed or block > claim_deadline


def compute_ready_block(claim_deadline: int, aggregate_deadline: int, last_finalized_block: int, all_finalized: bool,
                        every_slot_claimed: bool) -> int:
    """The block from which an epoch's A is final, asked once the claim phase is over (is_claim_phase_over):
    with every claimed slot finalized, the last finalize (not before claim_deadline unless every slot is
    claimed), never after aggregate_deadline; else aggregate_deadline."""
    if not all_finalized:
        return aggregate_deadline
    if every_slot_claimed:
        return min(aggregate_deadline, last_finalized_block)
    return min(aggregate_deadline, max(claim_deadline, last_finalized_block))


def compute_aggregate_seed(block_hash: bytes, task_id: int, epoch: int) -> bytes:
    """keccak256(abi.encode(blockhash(ready_block + seal_delay_blocks), task_id, epoch)): the aggregation committee's seed."""
    return keccak(block_hash + task_id.to_bytes(32, "big") + epoch.to_bytes(32, "big"))


def compute_aggregate_commitment(task_id: int, epoch: int, member: str, state_hash: bytes, salt: bytes) -> bytes:
    """keccak256(abi.encode(task_id, epoch, member, state_hash, salt)): a member's commitment to the
    aggregate state hash it computed (its address inside: nobody can copy another's)."""
    return keccak(task_id.to_bytes(32, "big") + epoch.to_bytes(32, "big") + bytes(12) + bytes.fromhex(member[2:])
                  + state_hash + salt)


def compute_accepted_rank(accepted: int, slot: int) -> int:
    """How many accepted slots (bits of `accepted`) come before `slot`: its trainer's turn to post (0 first)."""
    return bin(accepted & ((1 << min(slot, MAX_SLOTS)) - 1)).count("1")


def compute_accepted_slots(accepted: int) -> list[int]:
    """The set A (a bit mask on chain) as slot indices, in slot order."""
    return [i for i in range(MAX_SLOTS) if (accepted >> i) & 1]


def compute_post_opens(commit_deadline: int, rank: int, post_window: int) -> int:
    """First block at which the accepted slot of rank `rank` may post when the committee has not all
    committed (rank 0 may also post as soon as every member committed)."""
    return commit_deadline + rank * post_window + 1


def compute_post_deadline(commit_deadline: int, n_accepted: int, post_window: int) -> int:
    """Last block at which any accepted slot's trainer may post: one post window (reveal_window) per accepted slot."""
    return commit_deadline + n_accepted * post_window


# ---------------------------------------------------------------- disputes (issue #15, protocol-v2 part C)
# One honest challenger suffices: a committee member whose verdict contradicts the trainer opens a dispute
# (contracts/Disputes.vy) over one check's span; the trainer posts every per-step state hash of the span in one
# transaction; the challenger names the first step it disputes; a jury, drawn from the hash of the block after
# the naming (compute_jury_block: nobody knows it when the step is named), replays that step from the span's
# revealed start checkpoint and votes commit-reveal; the loser pays. Same names in contracts/lib/rules.vy.
JURY_MAX = 15                       # jurors per dispute: StakeManager.draw_committee returns <= 16, the challenger is dropped
MAX_SPAN_STEPS = 512                # most steps of a disputed span (a check spans k or 2k steps): bounds post_steps' calldata
DEFENDER_GAS_ALLOWANCE = 1_750_000  # gas refunded to a winning trainer: post_steps (677k at 512 steps) + resolve (901k with 15 jurors) = 1.58M: bench/disputes.md
CHALLENGER_GAS_ALLOWANCE = 4_000_000  # gas refunded to a winning challenger: open (535k) + name_step (679k at 512 steps) + draw_jury (1.58M with 15 jurors) + reveal_answer (103k) + resolve (901k) = 3.80M: bench/disputes.md
DOMAIN_JURY = 4                    # distinct from DOMAIN_AGGREGATE (3): no seed of one kind equals one of another

# dispute phases (contracts/Disputes.vy)
DISPUTE_OPENED = 1        # waiting for the trainer's step hashes
DISPUTE_STEPS_POSTED = 2  # waiting for the challenger to name a step
DISPUTE_STEP_NAMED = 3    # waiting for draw_jury (anyone, once the jury block is mined)
DISPUTE_JURY = 4          # jurors commit, then reveal, their vote on the named step
DISPUTE_RESOLVED = 5
DISPUTE_APPEALED = 6      # its jury vote appealed to the whole verifier set (contracts/Appeals.vy settles it)

# a juror's vote is an answer (the state hash its own replay gives after the named step; a flag dispute's value), its
# side found by compute_vote_side. Same values as rules.vy's VOTE_*.
VOTE_NONE = 0        # no answer revealed (a no-show): no_show_slash_bps
VOTE_TRAINER = 1     # the answer is the trainer's (public) answer
VOTE_CHALLENGER = 2  # the answer is the challenger's revealed one (which differs from the trainer's)
VOTE_ABSTAIN = 3     # zero (could not compute), or neither party's: counts for nobody, neither paid nor slashed

# The deployment's minimum trainer stake (DeployParams): 1 ETH with v1's tally; 3 ETH with Disputes — the smallest whole
# ETH at which every cheating strategy of §5.6 loses while honest trainers still profit (simulate.disputes_deterring_stake;
# under v1 the same stake makes lazy majorities' false convictions cost honest trainers more than they earn).
MIN_TRAINER_STAKE_WEI = 10**18
DISPUTES_MIN_TRAINER_STAKE_WEI = 3 * 10**18

# flag disputes (Disputes.open_flag): a contradiction with no span to narrow; the jury checks the flag itself.
# Same values as Disputes.FLAG_*; 0 (Disputes.flag_of) is a span dispute.
FLAG_DATA_ROOT = 1  # the data root is the Merkle root of the round's batch schedule
FLAG_STARTS = 2     # every revealed start checkpoint is served and hashes to its leaf
FLAG_FINAL = 3      # the final checkpoint is served and hashes to h_M
# A flag dispute's answer "not served to me", keccak256("trainchain.answer.unavailable"): what a challenger whose
# check could not fetch the checkpoints commits, and what a juror that cannot fetch them answers (never zero, which
# abstains). The trainer, who must serve them, loses unless a majority of the jury fetched and hashed them.
ANSWER_UNAVAILABLE = keccak(b"trainchain.answer.unavailable")


def compute_false_flags(data_root_ok: bool, starts_ok: bool, final_ok: bool) -> list[int]:
    """The flags a contradicting member may dispute when no end hash of its own replay differs: its revealed
    flags that are false, in the verdict's order. Its node disputes the first one it can prove wrong (a checkpoint
    served under its CID that does not hash to its leaf, or a data root that is not the schedule's), else the first
    whose checkpoints it could not fetch, answering ANSWER_UNAVAILABLE (is_availability_challenge)."""
    return [flag for flag, ok in ((FLAG_DATA_ROOT, data_root_ok), (FLAG_STARTS, starts_ok), (FLAG_FINAL, final_ok))
            if not ok]


def is_checkpoint_flag(flag: int) -> bool:
    """FLAG_STARTS and FLAG_FINAL are about content the trainer must serve (fetched, so possibly unavailable); the data
    root is recomputed by whoever checks it, never fetched."""
    return flag in (FLAG_STARTS, FLAG_FINAL)


def is_availability_challenge(flag: int, challenger_answer: bytes) -> bool:
    """A FLAG_STARTS / FLAG_FINAL dispute whose challenger revealed ANSWER_UNAVAILABLE. Who withheld is not
    attributable (a trainer could withhold from the committee and serve only the jury), so such a challenge is priced
    as a request to publish, not as an accusation: lost (the jury fetched the checkpoints, and now re-serves them), the
    challenger pays only the majority jurors and gets the rest of its bond back, the trainer earns nothing; won (the
    jury could not fetch them either), the trainer is convicted like any fraud. The data root is never unavailable."""
    return is_checkpoint_flag(flag) and bytes(challenger_answer) == ANSWER_UNAVAILABLE


def compute_dealt_count(n_samples: int, committee_size: int, n_segments: int) -> int:
    """How many checks a round with Disputes draws to deal out over its committee: c·s, or as many pairwise
    non-adjacent segments as M allows ((M - 1) // 2; never fewer than s, the task's own bound M >= 2s + 1). An
    empty committee counts as one."""
    return min(max(committee_size, 1) * n_samples, min((n_segments - 1) // 2, MAX_SAMPLES))


def compute_dealt_samples(seed: bytes, n_segments: int, n_samples: int, committee_size: int) -> list[int]:
    """Checks dealt out, not repeated: ONE draw of compute_dealt_count pairwise non-adjacent segments
    (compute_samples), so no check's hidden end is another check's revealed start, whoever holds them
    (independent draws per member would bring copying back). TrainingRounds draws this with Disputes set, c =
    the round's committee as drawn."""
    return compute_samples(seed, n_segments, compute_dealt_count(n_samples, committee_size, n_segments))


def compute_round_samples(seed: bytes, n_segments: int, n_samples: int, committee_size: int, disputes: bool) -> list[int]:
    """The start leaves of a sealed round's checks as TrainingRounds draws them (_checks): v1's s draws, or with
    Disputes one draw dealt out over the round's committee as drawn (compute_dealt_samples)."""
    if disputes:
        return compute_dealt_samples(seed, n_segments, n_samples, committee_size)
    return compute_samples(seed, n_segments, n_samples)


def compute_member_index(committee: list[str], who: str) -> int:
    """`who`'s position in the round's committee (the dealt checks it holds follow from it); len(committee) if
    it is none (as rules.vy: its callers have checked membership)."""
    lowered = [a.lower() for a in committee]
    return lowered.index(who.lower()) if who.lower() in lowered else len(committee)


def compute_member_checks(n_checks: int, committee_size: int, member_index: int) -> list[int]:
    """Positions in a dealt check list held by committee member `member_index` (its index in the committee):
    the drawn checks round robin (m, m + c, m + 2c, ...), plus the last check (it ends at leaf M, the final
    state every member vouches for). Coverage grows with the committee: c members check ~c·s segments."""
    assert n_checks >= 1 and 0 <= member_index < committee_size, "rules: not a committee position"
    return [i for i in range(member_index, n_checks - 1, committee_size)] + [n_checks - 1]


def compute_challenger_bond(juror_reward: int, gas_price: int) -> int:
    """What a challenger posts: pays a full jury (JURY_MAX jurors) plus one more reward, and the trainer's
    dispute gas at `gas_price` (the basefee of the opening block) — a false challenge always costs it this."""
    return juror_reward * (JURY_MAX + 1) + DEFENDER_GAS_ALLOWANCE * gas_price


def compute_watch_bond(challenger_bond: int, n_watches: int) -> int:
    """A watcher's bond: the challenger's, doubled for every watch dispute already opened on the round. Any verifier
    may watch any round, so without it colluders could force one jury draw after another on an honest trainer until
    one is captured; doubling (and a lost watch's bond burned, not paid to the trainer) makes the k-th attempt cost
    2^(k-1) bonds, and the same for a cartel flooding a round to price honest watchers out."""
    return challenger_bond << min(n_watches, 128)


def compute_jury_seed(block_hash: bytes, dispute_id: int) -> bytes:
    """keccak256(abi.encode(block_hash, dispute_id, DOMAIN_JURY)): the jury's draw (StakeManager.draw_committee)."""
    return keccak(block_hash + dispute_id.to_bytes(32, "big") + DOMAIN_JURY.to_bytes(32, "big"))


def compute_jury_block(block_number: int) -> int:
    """The block J whose hash seeds the jury of a step named (or a draw re-targeted) in `block_number`: the next
    one. The challenger cannot know blockhash(J) when it names its step, so waiting blocks before naming does not
    let it choose among known seeds; only J's proposer can bias it (at the price of a block, §5.3)."""
    return block_number + 1


def is_jury_block_expired(jury_block: int, block_number: int) -> bool:
    """blockhash(jury_block) is no longer readable in `block_number` (BLOCKHASH_HORIZON blocks back): nobody drew
    the jury in time, so a draw_jury re-targets J to compute_jury_block(block_number) and draws later."""
    return block_number > jury_block + BLOCKHASH_HORIZON


def compute_jury(drawn: list[str], challenger: str) -> list[str]:
    """The jury from a draw of JURY_MAX + 1 verifiers (entries eligible at the round's commit block, opted in):
    every drawn verifier except the parties (the trainer is never a verifier), at most JURY_MAX."""
    return [v for v in drawn if v.lower() != challenger.lower()][:JURY_MAX]


def compute_vote_commitment(dispute_id: int, voter: str, answer: bytes, salt: bytes) -> bytes:
    """keccak256(abi.encode(uint256 dispute_id, address voter, bytes32 answer, bytes32 salt)): a juror's answer, or
    the challenger's own, committed before either is public."""
    from eth_abi import encode

    return keccak(encode(["uint256", "address", "bytes32", "bytes32"], [dispute_id, voter, answer, salt]))


def compute_starts_answer(start_hashes: list[bytes]) -> bytes:
    """A FLAG_STARTS dispute's answer: keccak256(abi.encode(bytes32[])) of one hash per revealed start checkpoint —
    the trainer's answer over its start leaves, a juror's over what it found served under each start CID."""
    from eth_abi import encode

    return keccak(encode(["bytes32[]"], [[bytes(h) for h in start_hashes]]))


def is_valid_span_hashes(step_hashes: list[bytes], span_steps: int, start_hash: bytes, end_hash: bytes) -> bool:
    """The trainer's post: one hash per state of the span, h_start .. h_end (span_steps + 1 of them), whose
    first and last are the span's revealed start and end leaves (already proven against the trace root)."""
    return (1 <= span_steps <= MAX_SPAN_STEPS and len(step_hashes) == span_steps + 1
            and step_hashes[0] == start_hash and step_hashes[-1] == end_hash)


def compute_vote_side(answer: bytes, trainer_answer: bytes, challenger_answer: bytes | None) -> int:
    """Whose side a juror's revealed answer is on: VOTE_TRAINER if it is the trainer's (public) answer,
    VOTE_CHALLENGER if it is the challenger's (hidden until the jury committed; None when not revealed, and never
    the challenger's when equal to the trainer's: conceded), else VOTE_ABSTAIN (zero: could not compute; any other
    value: neither party's). So a juror that did not replay cannot vote against the trainer unless the challenger
    told it its answer; its only counted vote without a replay is a copy of the trainer's."""
    if answer == ZERO_HASH:
        return VOTE_ABSTAIN
    if answer == trainer_answer:
        return VOTE_TRAINER
    if challenger_answer is not None and answer == challenger_answer:
        return VOTE_CHALLENGER
    return VOTE_ABSTAIN


def is_trainer_winner(votes_trainer: int, votes_challenger: int) -> bool:
    """No conviction without a strict majority of the revealed jury votes (a tie, or no vote, keeps the trainer)."""
    return votes_challenger <= votes_trainer


def compute_dispute_outcome(n_revealed: int, quorum: int, convicted: bool) -> Outcome:
    """A round with a disputes contract: FRAUD only if a dispute convicted the trainer; otherwise VOID below
    quorum, else ACCEPTED — no majority vote for fraud (a contradiction that nobody disputes decides nothing)."""
    if convicted:
        return Outcome.FRAUD
    if n_revealed < quorum:
        return Outcome.VOID
    return Outcome.ACCEPTED


def compute_dispute_payouts(pot: int, n_majority: int, juror_reward: int, gas_refund: int, winner_share_bps: int) -> tuple[int, int, int]:
    """(to each majority juror, to the winner, to the treasury) out of the loser's pot (the trainer's fraud
    slash, or the challenger's bond): jurors first (juror_reward each, capped by the pot), then the winner's
    gas refund, then winner_share_bps of what is left; the rest to the treasury. Sums to the pot exactly."""
    per_juror = min(juror_reward, pot // n_majority) if n_majority else 0
    left = pot - per_juror * n_majority
    refund = min(gas_refund, left)
    share = (left - refund) * winner_share_bps // BPS
    to_winner = refund + share
    return per_juror, to_winner, left - to_winner


def compute_jury_capture_probability(jury_size: int, colluding_fraction: float) -> float:
    """Probability that colluders hold a strict majority of a jury of `jury_size` drawn from a large registry of
    which `colluding_fraction` collude (binomial). The jury is an honest-majority assumption: this is its price
    (a third colluding: 7 jurors 17.3 %, 15 = JURY_MAX 8.8 %, 21 5.6 %, 25 4.2 %)."""
    from math import comb

    need = jury_size // 2 + 1
    p = colluding_fraction
    return sum(comb(jury_size, k) * p**k * (1 - p) ** (jury_size - k) for k in range(need, jury_size + 1))


def compute_jury_capture_probability_finite(n_verifiers: int, n_colluding: int, jury_size: int) -> float:
    """The same for a registry of `n_verifiers` of which `n_colluding` collude, the jury drawn without
    replacement (hypergeometric): exact for a small network (jury_size = min(JURY_MAX, n_verifiers))."""
    from math import comb

    need = jury_size // 2 + 1
    total = comb(n_verifiers, jury_size)
    return sum(comb(n_colluding, k) * comb(n_verifiers - n_colluding, jury_size - k)
               for k in range(need, min(jury_size, n_colluding) + 1)) / total


# ---------------------------------------------------------------- the appeal to the whole verifier set (#15)
# The loser of a jury vote may appeal it within the appeal window (compute_appeal_deadline), posting
# compute_appeal_bond; every eligible verifier but the parties votes again on the same answers, or a stake-weighted
# random sample of APPEAL_JURY_MAX of them when there are more (contracts/Appeals.vy); its verdict is final and settles
# both juries. Same names in contracts/lib/rules.vy.
APPEAL_JURY_MAX = 64                 # the whole set, up to this many jurors
APPEAL_DRAW_ATTEMPTS = 256           # entries an appeal jury draw samples at random before it walks (compute_appeal_candidate)
APPEAL_WALK_MAX = 1_024              # most registry entries an appeal jury draw walks after sampling (StakeManager.eligible_verifiers)
APPEAL_GAS_ALLOWANCE = 11_000_000    # an appeal's draw_jury (5.72M) + resolve (3.73M) with APPEAL_JURY_MAX jurors = 9.45M: tests/contracts/test_appeals.py;
#                                      the sample's duplicates add at most ~0.3M (a registry just above 65 entries)


def compute_appeal_deadline(reveal_deadline: int, reveal_verdicts_window: int) -> int:
    """Last block at which a jury vote whose reveal window closed at `reveal_deadline` may be appealed: one more
    reveal_verdicts_window of its task. The task's window, not a constant: it is the reaction time the task already
    gives a node to reveal (within the deployment's window bounds), and a round is held no longer than its own pace
    needs. A vote that is not appealed is final, and Disputes.resolve settles it, only after this block."""
    return reveal_deadline + reveal_verdicts_window


def compute_appeal_bond(juror_reward: int, gas_price: int) -> int:
    """What an appellant posts: pays a full appeal jury (APPEAL_JURY_MAX jurors) plus one more reward, and an
    appeal's gas (draw_jury and resolve with a full jury) at `gas_price` (the appeal block's basefee). The majority
    jurors are paid from it; its rest goes back to an appellant that wins, else to the other party."""
    return juror_reward * (APPEAL_JURY_MAX + 1) + APPEAL_GAS_ALLOWANCE * gas_price


def compute_juror_slash_bps(vote: int, winning: int, verifier_slash_bps: int, no_show_slash_bps: int) -> int:
    """The share of a juror's seat reservation it loses once the verdict is `winning` (VOTE_TRAINER or
    VOTE_CHALLENGER): none on the winning side or abstaining, no_show_slash_bps without a revealed answer,
    verifier_slash_bps on the losing side. Both juries of an appeal are settled by it, with the final verdict."""
    if vote in (winning, VOTE_ABSTAIN):
        return 0
    if vote == VOTE_NONE:
        return no_show_slash_bps
    return verifier_slash_bps


def compute_appeal_draw_attempts(n_entries: int, n_wanted: int) -> int:
    """How many steps of an appeal jury draw over `n_entries` entries, wanting `n_wanted` verifiers, sample at random:
    APPEAL_DRAW_ATTEMPTS when the entries could hold more verifiers than wanted, else none (the walk alone then seats
    every eligible verifier, and a sample would only read entries twice)."""
    return APPEAL_DRAW_ATTEMPTS if n_entries > n_wanted else 0


def compute_appeal_candidate(seed: bytes, step: int, n_entries: int, attempts: int) -> int:
    """Entry index read by step `step` of an appeal jury draw over `n_entries` > 0 entries: the first `attempts` steps
    sample as a committee draw does (compute_committee_candidate: stake-weighted, so a coalition whose entries form
    one contiguous run is seated by its share, not whenever a walk starts near its run); the later ones walk the
    entries in registry order from seed mod n, wrapping (a set the sample left short, a small one above all, is
    still seated whole)."""
    if step < attempts:
        return compute_committee_candidate(seed, step, n_entries)
    return (int.from_bytes(seed, "big") % n_entries + step - attempts) % n_entries


def compute_eligible_verifiers(entries: list[tuple[str, int, int]], at_block: int, seed: bytes, limit: int,
                               is_drawable=lambda verifier: True) -> list[str]:
    """StakeManager.eligible_verifiers: `entries` = [(verifier, active_from, active_until or 0)] in registry order;
    over the n opened by `at_block`, step k reads entry compute_appeal_candidate(seed, k, n, attempts) — with n above
    the verifiers wanted, APPEAL_DRAW_ATTEMPTS random samples first, then a walk of at most APPEAL_WALK_MAX entries
    from seed mod n — keeping each entry open at `at_block` whose verifier `is_drawable` (still staked, not opted
    out) and is not kept yet, until min(`limit`, APPEAL_JURY_MAX + 1) are kept. All eligible verifiers when they are
    no more than that, else a stake-weighted random sample of them."""
    n = sum(1 for _, active_from, _ in entries if active_from <= at_block)  # a prefix: active_from grows
    out: list[str] = []
    if n == 0:
        return out
    wanted = min(limit, APPEAL_JURY_MAX + 1)
    attempts = compute_appeal_draw_attempts(n, wanted)
    for k in range(attempts + min(n, APPEAL_WALK_MAX)):
        if len(out) >= wanted:
            break
        verifier, _, active_until = entries[compute_appeal_candidate(seed, k, n, attempts)]
        if (active_until != 0 and active_until <= at_block) or not is_drawable(verifier) or verifier in out:
            continue
        out.append(verifier)
    return out


def compute_appeal_jury(seed: bytes, entries: list[tuple[str, int, int]], at_block: int, challenger: str,
                        is_drawable=lambda verifier: True) -> list[str]:
    """An appeal's jury (Appeals.draw_jury): compute_eligible_verifiers of APPEAL_JURY_MAX + 1 from the appeal's seed
    (compute_jury_seed of its jury block and id), the challenger dropped (the trainer is no verifier), at most
    APPEAL_JURY_MAX. With no more eligible verifiers than seats it is all of them, whatever the seed; with more, a
    stake-weighted random sample (a third of the stake in one run of the registry captures a 64-seat jury about as
    rarely as independent draws would: tests/contracts/test_disputes_rules.py)."""
    drawn = compute_eligible_verifiers(entries, at_block, seed, APPEAL_JURY_MAX + 1, is_drawable)
    return [v for v in drawn if v.lower() != challenger.lower()][:APPEAL_JURY_MAX]

