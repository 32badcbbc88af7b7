# pragma version 0.4.3
"""
@title rules
@notice The protocol's pure rules, once: the task parameters and their bounds, Merkle
        proofs, the seed, the draws (samples and committee), the check spans, the verdict
        commitment, the tally, slashes, the fraud split and a round's cost. A Vyper 0.4
        module: TaskRegistry, TrainingRounds and ProtocolRules compile it in and call these
        functions; nothing re-derives a rule inline.
@dev Same names and results as node/protocol.py (the Python reference); tests/contracts
     checks both agree on random inputs through ProtocolRules. Internal functions only: a
     module with no state needs no `initializes:`.
"""

# ---------------------------------------------------------------- constants
TRAINER: constant(uint256) = 1
VERIFIER: constant(uint256) = 2
BPS: constant(uint256) = 10_000
MAX_COMMITTEE: constant(uint256) = 16
MAX_SAMPLES: constant(uint256) = 64
MAX_CHECKED: constant(uint256) = 65             # checks: samples + the last span
MAX_SEGMENTS: constant(uint256) = 4096
MAX_DEPTH: constant(uint256) = 16               # Merkle proofs up to 65536 leaves
MAX_DRAW: constant(uint256) = 64                # most indices one draw returns
MAX_COMMITTEE_ATTEMPTS: constant(uint256) = 64  # rejection-sampling tries per committee draw (c <= 16)
MAX_SEAL_DELAY: constant(uint256) = 128
BLOCKHASH_HORIZON: constant(uint256) = 256
DOMAIN_COMMITTEE: constant(uint256) = 1
DOMAIN_SAMPLES: constant(uint256) = 2
DOMAIN_AGGREGATE: constant(uint256) = 3           # the aggregation committee's seed (epochs, #14)
MAX_SLOTS: constant(uint256) = 16                 # slots per epoch (N)
MAX_OUTER_LR_BPS: constant(uint256) = 20_000      # the spec's outer_lr <= 2.0

# round phases (node/rounds.py Phase)
COMMITTED: constant(uint256) = 1       # waiting for seal
SEALED: constant(uint256) = 2          # waiting for reveal_starts
STARTS_REVEALED: constant(uint256) = 3 # committee commits verdicts
ENDS_REVEALED: constant(uint256) = 4   # committee reveals verdicts
FINALIZED: constant(uint256) = 5
CLAIMED: constant(uint256) = 6         # an epoch slot claimed, not committed yet (numbered last: v1's order stays)

# epoch phases (node/rounds.py EpochPhase; contracts/Epochs.vy)
EPOCH_NONE: constant(uint256) = 0         # not opened: the next claim opens it
EPOCH_OPEN: constant(uint256) = 1         # claims, commits, the slots' rounds (until A is final)
EPOCH_AGGREGATING: constant(uint256) = 2  # the aggregation committee commits; then a trainer posts
EPOCH_POSTED: constant(uint256) = 3       # the committee reveals the aggregate hash it computed
EPOCH_CLOSED: constant(uint256) = 4

# round outcomes (node/rounds.py Outcome)
OUTCOME_NONE: constant(uint256) = 0
OUTCOME_ACCEPTED: constant(uint256) = 1
OUTCOME_FRAUD: constant(uint256) = 2
OUTCOME_VOID: constant(uint256) = 3       # fewer than quorum reveals
OUTCOME_EXPIRED: constant(uint256) = 4    # never sealed (trainer penalized: no seed grinding)
OUTCOME_ABANDONED: constant(uint256) = 5  # trainer missed reveal_starts or reveal_ends

# ---------------------------------------------------------------- types
# Field names are the TaskSpec's `protocol` vocabulary (node/engine/spec.py ProtocolParams,
# plus the spec's steps_per_round and segment_steps); node.chain.records.TaskParams mirrors it.
struct TaskParams:
    steps_per_round: uint256         # S
    segment_steps: uint256           # k; M = S / k segments per round
    samples: uint256                 # s random segments (a span ending at leaf M is checked on top)
    committee_size: uint256          # c
    quorum: uint256                  # q reveals needed, else the round is void
    seal_delay_blocks: uint256       # seed = blockhash(commit_block + seal_delay_blocks)
    reveal_window: uint256           # blocks for the trainer's reveal_starts / reveal_ends
    commit_verdicts_window: uint256  # blocks for the committee's commit_verdict
    reveal_verdicts_window: uint256  # blocks for the committee's reveal_verdict
    trainer_reward_wei: uint256      # per accepted round
    verifier_reward_wei: uint256     # per majority verifier per accepted round
    trainer_slash_bps: uint256       # of the trainer's stake, on fraud
    fraud_reward_bps: uint256        # of the fraud slash, split among the majority
    verifier_slash_bps: uint256      # of a minority verifier's stake
    no_show_slash_bps: uint256       # of the stake of whoever misses a duty (trainer or member)
    min_trainer_stake_wei: uint256   # a trainer needs this bonded to commit, on top of StakeManager's
                                     # minimum (0: that minimum only); sized from what a forgery is worth
    # epochs (#14; the spec's `epochs` section; a v1 spec: 1, 10_000, 0 and the windows unused)
    slots_per_epoch: uint256         # N slots (trainers) per epoch, 1..16
    outer_lr_bps: uint256            # DiLoCo's outer learning rate x 10^4 (10_000 = 1.0)
    outer_momentum_bps: uint256      # Nesterov outer momentum x 10^4 (0 = none)
    claim_window: uint256            # blocks after an epoch opens (its first claim) in which its slots can be claimed
    train_window: uint256            # blocks after the claim window by which every claimed slot commits


# Deployment-wide bounds on every task's parameters (set in TaskRegistry's constructor, never changed):
# a task's own parameters must not be able to destroy the stake of verifiers who never chose it
# (issue #13, attacks 1 and 2). node.chain.contracts.DeployParams carries the defaults.
struct TaskBounds:
    min_window_blocks: uint256       # each of the three windows is at least this (honest replays fit)
    max_window_blocks: uint256       # ... and at most this (no stake locked until a block that never comes)
    max_trainer_slash_bps: uint256   # cap on trainer_slash_bps
    max_verifier_slash_bps: uint256  # cap on verifier_slash_bps (minority verdict)
    max_no_show_slash_bps: uint256   # cap on no_show_slash_bps (a missed duty)
    notice_blocks: uint256           # a new task takes no commit or claim for this many blocks: every verifier
                                     # screens its spec and opts out of one it cannot replay before a round can draw it


# What TrainingRounds reads from TaskRegistry, per phase: only the slots each needs (a storage read is 2,100
# gas cold; the whole TaskParams is 16 of them).
struct CommitInputs:
    canonical_hash: bytes32      # empty for an unknown task
    pool: uint256
    round_cost: uint256
    n_segments: uint256
    min_trainer_stake_wei: uint256
    quorum: uint256
    seal_delay_blocks: uint256
    in_epochs: bool              # an epoch task (is_epoch_task): its slots are claimed in Epochs, never committed by v1 commit
    opens_block: uint256         # first block of its first commit or claim (creation + the deployment's notice_blocks)

struct RoundWindows:
    n_segments: uint256
    samples: uint256
    committee_size: uint256
    seal_delay_blocks: uint256
    reveal_window: uint256
    commit_verdicts_window: uint256
    reveal_verdicts_window: uint256

struct Settlement:
    quorum: uint256
    trainer_reward_wei: uint256
    verifier_reward_wei: uint256
    trainer_slash_bps: uint256
    fraud_reward_bps: uint256
    verifier_slash_bps: uint256
    no_show_slash_bps: uint256


# ================================================================ task parameters

@internal
@pure
def compute_n_segments(steps_per_round: uint256, segment_steps: uint256) -> uint256:
    """M = S / k (check_task_params: k divides S); 0 for no task (k = 0)."""
    if segment_steps == 0:
        return 0
    return steps_per_round // segment_steps


@internal
@pure
def compute_round_cost(trainer_reward: uint256, verifier_reward: uint256, committee_size: uint256) -> uint256:
    """Most an accepted round pays from the task pool (a commit needs the pool to cover it)."""
    return trainer_reward + verifier_reward * committee_size


@internal
@pure
def compute_task_round_cost(p: TaskParams) -> uint256:
    return self.compute_round_cost(p.trainer_reward_wei, p.verifier_reward_wei, p.committee_size)


@internal
@pure
def check_task_params(p: TaskParams):
    """Revert, with the bound in words, unless `p` is a task a round can run on."""
    assert p.segment_steps > 0 and p.steps_per_round % p.segment_steps == 0, "rules: steps not a multiple of segment"
    n_segments: uint256 = self.compute_n_segments(p.steps_per_round, p.segment_steps)
    assert n_segments <= MAX_SEGMENTS, "rules: too many segments"
    # every check must be disputable: the last one spans 2k steps, and post_steps carries at most MAX_SPAN_STEPS
    assert 2 * p.segment_steps <= MAX_SPAN_STEPS, "rules: segment too long to dispute"
    assert p.samples >= 1 and p.samples <= MAX_SAMPLES, "rules: samples out of range"
    assert n_segments >= 2 * p.samples + 1, "rules: needs segments >= 2*samples+1"
    assert p.committee_size >= 1 and p.committee_size <= MAX_COMMITTEE, "rules: committee out of range"
    assert p.quorum >= 1 and p.quorum <= p.committee_size, "rules: quorum out of range"
    assert p.seal_delay_blocks >= 1 and p.seal_delay_blocks <= MAX_SEAL_DELAY, "rules: seal delay out of range"
    assert p.reveal_window >= 1 and p.commit_verdicts_window >= 1 and p.reveal_verdicts_window >= 1, "rules: zero window"
    assert p.trainer_slash_bps <= BPS and p.fraud_reward_bps <= BPS and p.no_show_slash_bps <= BPS and p.verifier_slash_bps <= BPS, "rules: bps above 10000"
    # a committee that is paid nothing has no reason to replay, and every seat risks a slash
    assert p.verifier_reward_wei > 0, "rules: zero verifier reward"
    assert p.slots_per_epoch >= 1 and p.slots_per_epoch <= MAX_SLOTS, "rules: slots per epoch out of range"
    assert p.outer_lr_bps >= 1 and p.outer_lr_bps <= MAX_OUTER_LR_BPS, "rules: outer lr out of range"
    assert p.outer_momentum_bps < BPS, "rules: outer momentum out of range"


@internal
@pure
def check_task_bounds(p: TaskParams, b: TaskBounds):
    """Revert, with the bound in words, unless `p` is inside the deployment's bounds `b`."""
    w_min: uint256 = min(p.reveal_window, min(p.commit_verdicts_window, p.reveal_verdicts_window))
    w_max: uint256 = max(p.reveal_window, max(p.commit_verdicts_window, p.reveal_verdicts_window))
    assert w_min >= b.min_window_blocks, "rules: window below the deployment minimum"
    assert w_max <= b.max_window_blocks, "rules: window above the deployment maximum"
    assert p.trainer_slash_bps <= b.max_trainer_slash_bps, "rules: trainer slash above the cap"
    assert p.verifier_slash_bps <= b.max_verifier_slash_bps, "rules: verifier slash above the cap"
    assert p.no_show_slash_bps <= b.max_no_show_slash_bps, "rules: no-show slash above the cap"
    if self.is_epoch_task(p):
        # the epoch windows hold stake and pool like the round windows: the same bounds
        assert min(p.claim_window, p.train_window) >= b.min_window_blocks, "rules: window below the deployment minimum"
        assert max(p.claim_window, p.train_window) <= b.max_window_blocks, "rules: window above the deployment maximum"


@internal
@pure
def check_bounds(b: TaskBounds):
    """Revert unless `b` is a usable set of bounds (checked once, at deploy)."""
    assert b.min_window_blocks >= 1 and b.min_window_blocks <= b.max_window_blocks, "rules: bad window bounds"
    assert b.max_trainer_slash_bps <= BPS and b.max_verifier_slash_bps <= BPS and b.max_no_show_slash_bps <= BPS, "rules: cap above 10000"
    assert b.notice_blocks <= b.max_window_blocks, "rules: notice above the window maximum"


# ================================================================ merkle

@internal
@pure
def compute_leaf(index: uint256, leaf_value: bytes32) -> bytes32:
    """Merkle leaf: keccak256(abi.encode(index, value))."""
    return keccak256(abi_encode(index, leaf_value))


@internal
@pure
def compute_tree_depth(n_leaves: uint256) -> uint256:
    """Depth of the tree over n leaves padded to a power of two (1 leaf: depth 0)."""
    depth: uint256 = 0
    for i: uint256 in range(MAX_DEPTH + 1):
        if (1 << depth) >= n_leaves:
            break
        depth += 1
    return depth


@internal
@pure
def is_valid_merkle_proof(root: bytes32, n_leaves: uint256, index: uint256, leaf_value: bytes32, proof: DynArray[bytes32, MAX_DEPTH]) -> bool:
    """Whether `proof` shows `leaf_value` is leaf `index` of a tree of `n_leaves` with `root`;
    a proof is valid only for the tree size it claims (its length must be the depth)."""
    if n_leaves == 0 or index >= n_leaves or n_leaves > (1 << MAX_DEPTH):
        return False
    if len(proof) != self.compute_tree_depth(n_leaves):
        return False
    node: bytes32 = self.compute_leaf(index, leaf_value)
    position: uint256 = index
    for sibling: bytes32 in proof:
        if position & 1 == 0:
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
        position >>= 1
    return node == root


MAX_TREE_LEAVES: constant(uint256) = 2 * MAX_SEGMENTS    # M + 1 boundary leaves padded to a power of two


@internal
@pure
def compute_merkle_root(values: DynArray[bytes32, MAX_SEGMENTS + 1]) -> bytes32:
    """The root over leaves compute_leaf(i, values[i]), padded to a power of two with zero nodes (raw ZERO_HASH,
    not leaves), each parent keccak256(left ‖ right): node/protocol.py compute_merkle_root. Disputes recomputes a
    trace root from posted boundaries with it (only when convicting: it costs the whole tree)."""
    n: uint256 = len(values)
    assert n >= 1, "rules: no leaves"
    width: uint256 = 1 << self.compute_tree_depth(n)
    layer: DynArray[bytes32, MAX_TREE_LEAVES] = []
    for i: uint256 in range(width, bound=MAX_TREE_LEAVES):
        if i < n:
            layer.append(self.compute_leaf(i, values[i]))
        else:
            layer.append(empty(bytes32))
    for level: uint256 in range(MAX_DEPTH):
        if width == 1:
            break
        width >>= 1
        for i: uint256 in range(width, bound=MAX_SEGMENTS):
            layer[i] = keccak256(concat(layer[2 * i], layer[2 * i + 1]))
    return layer[0]


# ================================================================ randomness

@internal
@pure
def compute_seed(block_hash: bytes32, round_id: uint256) -> bytes32:
    """Round seed: keccak256(abi.encode(blockhash(commit_block + seal_delay_blocks), round_id))."""
    return keccak256(abi_encode(block_hash, round_id))


@internal
@pure
def compute_trace_key(task_id: uint256, base_hash: bytes32, trace_root: bytes32) -> bytes32:
    """Key of a committed trace: keccak256(abi.encode(task_id, base_hash, trace_root)). A re-commit of
    the same key is sealed with the seed of its first seal (no re-roll of a drawn forgery)."""
    return keccak256(abi_encode(task_id, base_hash, trace_root))


@internal
@pure
def compute_trainer_miss_bps(trainer_slash_bps: uint256, no_show_slash_bps: uint256) -> uint256:
    """What a trainer that lets its round expire or abandons it pays: at least the fraud slash (the seed
    is public from the seal block on, so a cheaper exit would let a drawn forger walk away)."""
    return max(trainer_slash_bps, no_show_slash_bps)


@internal
@pure
def compute_draw(seed: bytes32, domain: uint256, pool_size: uint256, n: uint256) -> DynArray[uint256, MAX_DRAW]:
    """`n` distinct indices of 0..pool_size-1 by a partial Fisher-Yates shuffle, in draw order,
    with a sparse swap table (only touched slots)."""
    assert n <= pool_size, "rules: draw larger than pool"
    assert n <= MAX_DRAW, "rules: draw too large"
    keys: DynArray[uint256, MAX_DRAW] = []
    vals: DynArray[uint256, MAX_DRAW] = []
    out: DynArray[uint256, MAX_DRAW] = []
    for i: uint256 in range(n, bound=MAX_DRAW):
        r: uint256 = convert(keccak256(abi_encode(seed, domain, i)), uint256)
        j: uint256 = i + r % (pool_size - i)
        # value at j and at i in the virtual shuffled array (unset slot k holds k)
        val_j: uint256 = j
        val_i: uint256 = i
        pos_j: uint256 = max_value(uint256)
        for t: uint256 in range(len(keys), bound=MAX_DRAW):
            if keys[t] == j:
                val_j = vals[t]
                pos_j = t
            if keys[t] == i:
                val_i = vals[t]
        out.append(val_j)
        # slot j now holds what slot i held (slot i is never read again)
        if pos_j == max_value(uint256):
            keys.append(j)
            vals.append(val_i)
        else:
            vals[pos_j] = val_i
    return out


@internal
@pure
def compute_committee_indices(seed: bytes32, n_active: uint256, committee_size: uint256) -> DynArray[uint256, MAX_DRAW]:
    """Positions in the active verifier set of the committee (min(c, n_active) members)."""
    return self.compute_draw(seed, DOMAIN_COMMITTEE, n_active, min(committee_size, n_active))


@internal
@pure
def compute_committee_candidate(seed: bytes32, attempt: uint256, n_entries: uint256) -> uint256:
    """Entry index tried by attempt `attempt` of a committee draw by rejection sampling over the
    `n_entries` verifier entries that existed at the commit block (issue #13, attack 3)."""
    return convert(keccak256(abi_encode(seed, DOMAIN_COMMITTEE, attempt)), uint256) % n_entries


@internal
@pure
def compute_samples(seed: bytes32, n_segments: uint256, n_samples: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """Start leaves of the checks, ascending: `n_samples` pairwise non-adjacent segments x are
    drawn from 0..M-2; each x < M-2 is the check (x, x+1); the last check ends at leaf M and
    starts at M-2 if M-2 was drawn (h_{M-1} stays hidden), else at M-1 (s or s+1 checks)."""
    # s non-adjacent values x of 0..M-2 <-> s distinct values y of 0..M-s-1, sorted, mapped
    # to y_i + i. Needs M >= 2s + 1 (check_task_params).
    assert n_samples <= MAX_SAMPLES, "rules: too many samples"
    assert n_segments >= 2 * n_samples + 1, "rules: too few segments"
    drawn: DynArray[uint256, MAX_DRAW] = self.compute_draw(seed, DOMAIN_SAMPLES, n_segments - n_samples, n_samples)
    # insertion sort, s <= 64
    ys: DynArray[uint256, MAX_CHECKED] = []
    for y: uint256 in drawn:
        ys.append(y)
        k: uint256 = len(ys) - 1
        for t: uint256 in range(MAX_SAMPLES):
            if k == 0 or ys[k - 1] <= ys[k]:
                break
            tmp: uint256 = ys[k - 1]
            ys[k - 1] = ys[k]
            ys[k] = tmp
            k -= 1
    out: DynArray[uint256, MAX_CHECKED] = []
    last: uint256 = n_segments - 1
    for i: uint256 in range(len(ys), bound=MAX_CHECKED):
        x: uint256 = ys[i] + i
        if x == n_segments - 2:
            last = x  # only the largest draw can be M-2
        else:
            out.append(x)
    out.append(last)
    return out


@internal
@pure
def compute_check_ends(samples: DynArray[uint256, MAX_CHECKED], n_segments: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """End leaf of each check of compute_samples: start + 1, except the last, which is leaf M."""
    assert len(samples) > 0, "rules: no samples"
    last: uint256 = samples[len(samples) - 1]
    assert last < n_segments and last + 2 >= n_segments, "rules: not a sample list"
    ends: DynArray[uint256, MAX_CHECKED] = []
    for i: uint256 in range(len(samples) - 1, bound=MAX_CHECKED):
        ends.append(samples[i] + 1)
    ends.append(n_segments)
    return ends


# ================================================================ epochs (#14)

@internal
@pure
def is_epoch_task(p: TaskParams) -> bool:
    """Whether a task runs in epochs (contracts/Epochs.vy: claims, slots, an aggregation phase): more than
    one slot, or an outer step other than the identity (lr 1, no momentum). A one-slot identity task is a
    v1 task: its slot's final state is the epoch's state bit for bit, so TrainingRounds alone runs it
    (v1 gas and latency; a failed round is retried in the same epoch, as v1 does)."""
    return p.slots_per_epoch > 1 or p.outer_lr_bps != BPS or p.outer_momentum_bps != 0


@internal
@pure
def compute_trainer_reservation(min_trainer_stake_wei: uint256, min_trainer_stake: uint256) -> uint256:
    """What a round or an epoch slot reserves of its trainer's free stake: the task's minimum, at least the
    deployment's (StakeManager.min_stake(TRAINER)); every slash of the round is a fraction of it."""
    return max(min_trainer_stake_wei, min_trainer_stake)


@internal
@pure
def compute_slot_span(seal_delay_blocks: uint256, reveal_window: uint256, commit_verdicts_window: uint256, reveal_verdicts_window: uint256) -> uint256:
    """Most blocks an honest slot takes from its commit to its finalize: the seal block and the seal, the
    trainer's two reveals, the committee's three windows (verdicts, final flags: commit_verdicts_window
    each; reveals), and the finalize block."""
    return seal_delay_blocks + 1 + 2 * reveal_window + 2 * commit_verdicts_window + reveal_verdicts_window + 1


@internal
@pure
def compute_dispute_span(reveal_window: uint256, commit_verdicts_window: uint256, reveal_verdicts_window: uint256) -> uint256:
    """Most blocks a dispute opened at its round's deadline (the last block open to one) takes until the round
    can finalize, both parties acting in time and appealing once: a move each (the trainer's span, the
    challenger's naming), the jury's draw, its two windows, the appeal window, the appeal jury's draw and two
    windows, then the resolve, and the finalize block; every move that anyone may make gets a reveal_window,
    as a party's move does, after the block it waits for (the two jury blocks). Epochs adds it to an epoch's
    slot span when Disputes is set, so a dispute lost by its challenger, appeal included, never leaves the
    honest slot out of A."""
    return 5 * reveal_window + 2 * commit_verdicts_window + 3 * reveal_verdicts_window + 3


@internal
@pure
def compute_epoch_deadlines(opened_block: uint256, claim_window: uint256, train_window: uint256, slot_span: uint256) -> (uint256, uint256, uint256):
    """(claim_deadline, commit_deadline, aggregate_deadline) of an epoch opened at `opened_block`: the
    last block to claim, the last to commit (every claimer gets train_window blocks), and the last block
    at which a slot's acceptance counts (a slot committed at the commit deadline still fits)."""
    claim_deadline: uint256 = opened_block + claim_window
    commit_deadline: uint256 = claim_deadline + train_window
    return claim_deadline, commit_deadline, commit_deadline + slot_span


@internal
@pure
def is_every_slot_claimed(n_slots: uint256, claimed: uint256) -> bool:
    """Whether all N slots of an epoch are claimed (bit i of `claimed`: slot i): nothing is left to claim."""
    return claimed == (1 << n_slots) - 1


@internal
@pure
def is_claim_phase_over(block_number: uint256, claim_deadline: uint256, every_slot_claimed: bool) -> bool:
    """Whether an epoch's claim phase is over in `block_number`: its claim window closed, or every slot is
    claimed (the N-th claim ends it: nobody can join A any more, the aggregation need not wait)."""
    return every_slot_claimed or block_number > claim_deadline


@internal
@pure
def compute_ready_block(claim_deadline: uint256, aggregate_deadline: uint256, last_finalized_block: uint256, all_finalized: bool,
                        every_slot_claimed: bool) -> uint256:
    """The block from which an epoch's set A is final, asked once the claim phase is over
    (is_claim_phase_over): with every claimed slot finalized, the last finalize (not before the claim
    deadline unless every slot is claimed: then every finalize follows every claim), never after the
    aggregate deadline; else the aggregate deadline. The same whenever it is asked from then on (a slot
    finalized after the aggregate deadline changes nothing)."""
    if not all_finalized:
        return aggregate_deadline
    if every_slot_claimed:
        return min(aggregate_deadline, last_finalized_block)
    return min(aggregate_deadline, max(claim_deadline, last_finalized_block))


@internal
@pure
def compute_aggregate_seed(block_hash: bytes32, task_id: uint256, epoch: uint256) -> bytes32:
    """Seed of an epoch's aggregation committee: keccak256(abi.encode(blockhash(ready_block + seal_delay_blocks),
    task_id, epoch)) (a block after the set A was final: nobody knows the seed when the last slot finalizes)."""
    return keccak256(abi_encode(block_hash, task_id, epoch))


@internal
@pure
def compute_aggregate_commitment(task_id: uint256, epoch: uint256, member: address, state_hash: bytes32, salt: bytes32) -> bytes32:
    """A member's commitment to the aggregate state hash it computed:
    keccak256(abi.encode(task_id, epoch, member, state_hash, salt)) (the member's address inside: nobody
    can copy another's commitment)."""
    return keccak256(abi_encode(task_id, epoch, member, state_hash, salt))


@internal
@pure
def compute_accepted_rank(accepted: uint256, slot: uint256) -> uint256:
    """How many accepted slots (bits of `accepted`) come before `slot`: the slot trainer's turn to post
    the aggregate (0: the lowest accepted slot posts first)."""
    rank: uint256 = 0
    for i: uint256 in range(MAX_SLOTS):
        if i >= slot:
            break
        if (accepted >> i) & 1 == 1:
            rank += 1
    return rank


@internal
@pure
def compute_post_opens(commit_deadline: uint256, rank: uint256, post_window: uint256) -> uint256:
    """First block at which the trainer of the accepted slot of rank `rank` may post the aggregate when the
    committee has not all committed: after the commit window, rank r after r more post windows (W)
    (rank 0 also as soon as every member committed)."""
    return commit_deadline + rank * post_window + 1


@internal
@pure
def compute_post_deadline(commit_deadline: uint256, n_accepted: uint256, post_window: uint256) -> uint256:
    """Last block at which any accepted slot's trainer may post: one post window per accepted slot."""
    return commit_deadline + n_accepted * post_window


# ================================================================ verdicts and money

@internal
@pure
def compute_verdict_commitment(round_id: uint256, verifier: address, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, starts_ok: bool, salt: bytes32) -> bytes32:
    """keccak256(abi.encode(round_id, verifier, end_hashes, data_root_ok, starts_ok, salt)): every flag
    a verifier can know before the ends are revealed is committed (issue #13, attack 5)."""
    return keccak256(abi_encode(round_id, verifier, end_hashes, data_root_ok, starts_ok, salt))


@internal
@pure
def compute_final_commitment(round_id: uint256, verifier: address, final_ok: bool, salt: bytes32) -> bytes32:
    """keccak256(abi.encode(round_id, verifier, final_ok, salt)), committed after the ends (final_ok is
    knowable only once the final CID is revealed) and before any verdict is revealed (issue #13, attack 5).
    The salt is the verdict commitment's: no reveal can start before every final flag is committed."""
    return keccak256(abi_encode(round_id, verifier, final_ok, salt))


@internal
@pure
def is_contradicting(trainer_ends: DynArray[bytes32, MAX_CHECKED], end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, starts_ok: bool, final_ok: bool, member_index: uint256, committee_size: uint256) -> bool:
    """A verdict contradicts the trainer if any flag is false or an end hash of a check the member holds
    differs (same length: checked by the caller): every check in v1 (member 0 of 1), with Disputes the checks
    dealt to it (compute_member_checks: i = m mod c, and the last). Every input is committed before any verdict
    is revealed: the end hashes, data_root_ok and starts_ok before the ends, final_ok after them (its own
    commitment), so no member can flip the tally after seeing the others (issue #13, attack 5)."""
    if not (data_root_ok and starts_ok and final_ok):
        return True
    n: uint256 = len(trainer_ends)
    for i: uint256 in range(n, bound=MAX_CHECKED):
        if (i + 1 == n or i % committee_size == member_index) and end_hashes[i] != trainer_ends[i]:
            return True
    return False


@internal
@pure
def compute_tally(n_revealed: uint256, n_contradicting: uint256, quorum: uint256) -> uint256:
    """Outcome of the votes: void (< quorum reveals), fraud (strict majority contradicts), else accepted."""
    if n_revealed < quorum:
        return OUTCOME_VOID
    if 2 * n_contradicting > n_revealed:
        return OUTCOME_FRAUD
    return OUTCOME_ACCEPTED


@internal
@pure
def compute_slash(stake: uint256, bps: uint256) -> uint256:
    """stake * bps // 10000 (rounded down)."""
    return stake * bps // BPS


@internal
@pure
def compute_fraud_split(slashed: uint256, reward_bps: uint256, n_majority: uint256) -> (uint256, uint256):
    """(paid to each majority verifier, to the treasury) out of a fraud slash; dust to the treasury."""
    if n_majority == 0:
        return 0, slashed
    per_verifier: uint256 = slashed * reward_bps // BPS // n_majority
    return per_verifier, slashed - per_verifier * n_majority


# ================================================================ disputes (issue #15, protocol-v2 part C)
# One honest challenger suffices: a member whose verdict contradicts the trainer opens a dispute (Disputes.vy)
# over one check's span; the trainer posts the span's per-step hashes; the challenger names a step; a jury,
# drawn from the hash of the block after the naming (nobody knows it when the step is named), votes on it
# commit-reveal; the loser pays. Same names and results as node/protocol.py.
JURY_MAX: constant(uint256) = 15                      # draw_committee returns <= 16; the challenger is dropped
MAX_SPAN_STEPS: constant(uint256) = 512               # most steps of a disputed span (k or 2k)
DEFENDER_GAS_ALLOWANCE: constant(uint256) = 1_750_000   # gas refunded to a winning trainer (node/protocol.py: measured)
CHALLENGER_GAS_ALLOWANCE: constant(uint256) = 4_000_000 # gas refunded to a winning challenger, its draw_jury included (node/protocol.py: measured)
DOMAIN_JURY: constant(uint256) = 4              # distinct from DOMAIN_AGGREGATE (3)
FLAG_DATA_ROOT: constant(uint256) = 1   # a flag dispute's subject (Disputes.open_flag); 0 is a span dispute
FLAG_STARTS: constant(uint256) = 2
FLAG_FINAL: constant(uint256) = 3
# A flag dispute's answer "not served to me" (keccak256("trainchain.answer.unavailable")): a juror that cannot fetch
# the checkpoints of a FLAG_STARTS / FLAG_FINAL dispute answers it, so a trainer withholding them from everyone loses.
ANSWER_UNAVAILABLE: constant(bytes32) = 0x9d96cb5b2014b3c80ea43a425a6a132a4db4ee0f1bf67bb155c440555d892c1e
MAX_DEALT: constant(uint256) = MAX_CHECKED            # a dealt draw still fits one check list (c·s <= 64)

DISPUTE_OPENED: constant(uint256) = 1        # waiting for the trainer's step hashes
DISPUTE_STEPS_POSTED: constant(uint256) = 2  # waiting for the challenger to name a step
DISPUTE_STEP_NAMED: constant(uint256) = 3    # waiting for draw_jury (anyone, once the jury block is mined)
DISPUTE_JURY: constant(uint256) = 4          # jurors commit, then reveal
DISPUTE_RESOLVED: constant(uint256) = 5
DISPUTE_APPEALED: constant(uint256) = 6      # its jury vote appealed to the whole verifier set (Appeals.vy settles it)

VOTE_NONE: constant(uint256) = 0        # no answer revealed (a no-show)
VOTE_TRAINER: constant(uint256) = 1     # the answer is the trainer's: replaying the named step gives its hash
VOTE_CHALLENGER: constant(uint256) = 2  # the answer is the challenger's revealed one
VOTE_ABSTAIN: constant(uint256) = 3     # zero, or neither party's: counts for nobody, neither paid nor slashed

# The appeal to the whole verifier set (Appeals.vy): the loser of a jury vote may appeal it within the appeal window
# (compute_appeal_deadline); every eligible verifier but the parties votes again, or a stake-weighted random sample of
# APPEAL_JURY_MAX of them when there are more (compute_appeal_candidate); the final verdict settles both juries.
APPEAL_JURY_MAX: constant(uint256) = 64                # the whole set, up to this many jurors
APPEAL_DRAW_ATTEMPTS: constant(uint256) = 256         # entries an appeal jury draw samples at random before it walks (compute_appeal_candidate)
APPEAL_WALK_MAX: constant(uint256) = 1_024             # most registry entries an appeal jury draw walks after sampling (StakeManager.eligible_verifiers)
APPEAL_GAS_ALLOWANCE: constant(uint256) = 11_000_000   # an appeal's draw_jury + resolve with APPEAL_JURY_MAX jurors (node/protocol.py: measured)


@internal
@pure
def compute_appeal_draw_attempts(n_entries: uint256, n_wanted: uint256) -> uint256:
    """How many steps of an appeal jury draw over `n_entries` entries, wanting `n_wanted` verifiers, sample at random:
    APPEAL_DRAW_ATTEMPTS when the entries could hold more verifiers than wanted, else none (the walk alone then seats
    every eligible verifier, and a sample would only read entries twice)."""
    if n_entries > n_wanted:
        return APPEAL_DRAW_ATTEMPTS
    return 0


@internal
@pure
def compute_appeal_candidate(seed: bytes32, step: uint256, n_entries: uint256, attempts: uint256) -> uint256:
    """Entry index read by step `step` of an appeal jury draw (StakeManager.eligible_verifiers) over `n_entries` > 0
    entries: the first `attempts` steps (compute_appeal_draw_attempts) sample as a committee draw does
    (compute_committee_candidate(seed, step, n): stake-weighted, a contiguous run of entries no likelier than any
    other as many); the later ones walk the entries in registry order from seed mod n, wrapping (so that a set the
    sample left short, a small one above all, is still seated whole)."""
    if step < attempts:
        return self.compute_committee_candidate(seed, step, n_entries)
    # seed mod n + step - attempts < n + APPEAL_WALK_MAX (the callers' bound on step - attempts): no overflow
    return (convert(seed, uint256) % n_entries + step - attempts) % n_entries


@internal
@pure
def compute_dealt_count(n_samples: uint256, committee_size: uint256, n_segments: uint256) -> uint256:
    """How many checks a round with Disputes draws to deal out: c·s, or as many pairwise non-adjacent segments
    as M allows ((M - 1) // 2, never fewer than s: the task's own bound M >= 2s + 1); an empty committee counts as one."""
    return min(max(committee_size, 1) * n_samples, min((n_segments - 1) // 2, MAX_SAMPLES))


@internal
@pure
def compute_dealt_samples(seed: bytes32, n_segments: uint256, n_samples: uint256, committee_size: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """One draw of compute_dealt_count pairwise non-adjacent segments (compute_samples): no check's hidden end
    is another's revealed start, whoever holds them."""
    return self.compute_samples(seed, n_segments, self.compute_dealt_count(n_samples, committee_size, n_segments))


@internal
@pure
def compute_member_index(committee: DynArray[address, MAX_COMMITTEE], who: address) -> uint256:
    """`who`'s position in the committee (the dealt checks it holds follow from it); len(committee) if it is none
    (callers have checked membership: TrainingRounds.reveal_verdict by the member's commitment)."""
    for i: uint256 in range(len(committee), bound=MAX_COMMITTEE):
        if committee[i] == who:
            return i
    return len(committee)


@internal
@pure
def compute_member_checks(n_checks: uint256, committee_size: uint256, member_index: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """Positions in a dealt check list held by member `member_index`: m, m + c, ... below the last check, plus
    the last check (it ends at leaf M, the final state every member vouches for)."""
    assert n_checks >= 1 and member_index < committee_size, "rules: not a committee position"
    out: DynArray[uint256, MAX_CHECKED] = []
    i: uint256 = member_index
    for t: uint256 in range(MAX_CHECKED):
        if i + 1 >= n_checks:
            break
        out.append(i)
        i += committee_size
    out.append(n_checks - 1)
    return out


@internal
@pure
def compute_challenger_bond(juror_reward: uint256, gas_price: uint256) -> uint256:
    """A full jury's pay plus one reward, and the trainer's dispute gas at `gas_price` (the opening block's basefee)."""
    return juror_reward * (JURY_MAX + 1) + DEFENDER_GAS_ALLOWANCE * gas_price


@internal
@pure
def compute_watch_bond(challenger_bond: uint256, n_watches: uint256) -> uint256:
    """A watcher's bond: the challenger's, doubled for every watch dispute already opened on the round. Any verifier
    may watch any round, so without it colluders could force one jury draw after another on an honest trainer until
    one is captured; doubling (and a lost watch's bond burned, not paid to the trainer) makes the k-th attempt cost
    2^(k-1) bonds, and the same for a cartel flooding a round to price honest watchers out."""
    return challenger_bond << min(n_watches, 128)


@internal
@pure
def compute_jury_seed(block_hash: bytes32, dispute_id: uint256) -> bytes32:
    """keccak256(abi.encode(block_hash, dispute_id, DOMAIN_JURY))."""
    return keccak256(abi_encode(block_hash, dispute_id, DOMAIN_JURY))


@internal
@pure
def compute_jury_block(block_number: uint256) -> uint256:
    """The block J whose hash seeds the jury of a step named (or a draw re-targeted) in `block_number`: the
    next one, which nobody knows when the move is sent (only J's proposer can bias it)."""
    return block_number + 1


@internal
@pure
def is_jury_block_expired(jury_block: uint256, block_number: uint256) -> bool:
    """blockhash(jury_block) is no longer readable in `block_number` (BLOCKHASH_HORIZON blocks back): nobody
    drew the jury in time, so a draw re-targets J (compute_jury_block) instead."""
    return block_number > jury_block + BLOCKHASH_HORIZON


@internal
@pure
def compute_vote_commitment(dispute_id: uint256, voter: address, answer: bytes32, salt: bytes32) -> bytes32:
    """keccak256(abi.encode(dispute_id, voter, answer, salt)): a juror's answer, or the challenger's own (the
    value its replay gives), committed before either is public."""
    return keccak256(abi_encode(dispute_id, voter, answer, salt))


@internal
@pure
def compute_vote_side(answer: bytes32, trainer_answer: bytes32, challenger_answer: bytes32) -> uint256:
    """Whose side a revealed answer is on: VOTE_TRAINER if it is the trainer's (public) answer, VOTE_CHALLENGER if
    it is the challenger's (hidden until the jury committed; empty when not revealed, or conceded: equal to the
    trainer's), else VOTE_ABSTAIN (zero: could not compute; any other value: neither party's, so a juror that did
    not replay cannot vote against the trainer without the challenger's answer)."""
    if answer == empty(bytes32):
        return VOTE_ABSTAIN
    if answer == trainer_answer:
        return VOTE_TRAINER
    if answer == challenger_answer:
        return VOTE_CHALLENGER
    return VOTE_ABSTAIN


@internal
@pure
def is_availability_challenge(flag: uint256, challenger_answer: bytes32) -> bool:
    """A flag dispute over checkpoints (FLAG_STARTS, FLAG_FINAL; not the data root, which anyone recomputes) whose
    challenger revealed ANSWER_UNAVAILABLE. Who withheld is not attributable: a trainer that serves the jury wins it
    but earns nothing from the bond, whose rest (after the jurors' pay) goes back to the challenger; a trainer that
    serves nobody loses it like any fraud."""
    return (flag == FLAG_STARTS or flag == FLAG_FINAL) and challenger_answer == ANSWER_UNAVAILABLE


@internal
@pure
def is_valid_span_hashes(step_hashes: DynArray[bytes32, MAX_SPAN_STEPS + 1], span_steps: uint256, start_hash: bytes32, end_hash: bytes32) -> bool:
    """span_steps + 1 hashes, the first the span's revealed start leaf, the last its end leaf."""
    if span_steps == 0 or span_steps > MAX_SPAN_STEPS or len(step_hashes) != span_steps + 1:
        return False
    return step_hashes[0] == start_hash and step_hashes[span_steps] == end_hash


@internal
@pure
def is_trainer_winner(votes_trainer: uint256, votes_challenger: uint256) -> bool:
    """No conviction without a strict majority of the revealed votes (a tie, or none, keeps the trainer)."""
    return votes_challenger <= votes_trainer


@internal
@pure
def compute_dispute_outcome(n_revealed: uint256, quorum: uint256, convicted: bool) -> uint256:
    """With a disputes contract: fraud only if a dispute convicted; else void below quorum, else accepted."""
    if convicted:
        return OUTCOME_FRAUD
    if n_revealed < quorum:
        return OUTCOME_VOID
    return OUTCOME_ACCEPTED


@internal
@pure
def compute_dispute_payouts(pot: uint256, n_majority: uint256, juror_reward: uint256, gas_refund: uint256, winner_share_bps: uint256) -> (uint256, uint256, uint256):
    """(each majority juror, the winner, the treasury) out of the loser's pot: jurors first (capped by the pot),
    then the winner's gas refund, then winner_share_bps of the rest; the remainder to the treasury."""
    per_juror: uint256 = 0
    if n_majority > 0:
        per_juror = min(juror_reward, pot // n_majority)
    left: uint256 = pot - per_juror * n_majority
    refund: uint256 = min(gas_refund, left)
    to_winner: uint256 = refund + (left - refund) * winner_share_bps // BPS
    return per_juror, to_winner, left - to_winner


@internal
@pure
def compute_appeal_deadline(reveal_deadline: uint256, reveal_verdicts_window: uint256) -> uint256:
    """Last block at which a jury vote whose reveal window closed at `reveal_deadline` may be appealed: one more
    reveal_verdicts_window of its task (the reaction time the task already gives a node for a reveal). A vote that
    is not appealed is final, and resolvable, after it."""
    return reveal_deadline + reveal_verdicts_window


@internal
@pure
def compute_appeal_bond(juror_reward: uint256, gas_price: uint256) -> uint256:
    """An appellant's bond: a full appeal jury's pay plus one reward, and an appeal's gas at `gas_price`."""
    return juror_reward * (APPEAL_JURY_MAX + 1) + APPEAL_GAS_ALLOWANCE * gas_price


@internal
@pure
def compute_juror_slash_bps(vote: uint256, winning: uint256, verifier_slash_bps: uint256, no_show_slash_bps: uint256) -> uint256:
    """The share of a juror's seat reservation it loses once the verdict is `winning` (VOTE_TRAINER or
    VOTE_CHALLENGER): none on the winning side or abstaining, no_show_slash_bps without a revealed answer,
    verifier_slash_bps on the losing side."""
    if vote == winning or vote == VOTE_ABSTAIN:
        return 0
    if vote == VOTE_NONE:
        return no_show_slash_bps
    return verifier_slash_bps
