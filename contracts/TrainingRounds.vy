# pragma version 0.4.3
"""
@title TrainingRounds
@notice Tasks (with a funded reward pool) and their rounds: a trainer commits hashes of its
        data and trace, on-chain randomness samples segments and a committee, the trainer
        reveals sampled starts, the committee commits verdicts, the trainer reveals ends,
        the committee reveals verdicts, and finalize accepts, voids or punishes fraud.
@dev The pure rules (compute_*, is_valid_merkle_proof) are exposed as external pure
     functions with the names of the Python reference in node/protocol.py; tests check both
     agree on random inputs. Rounds advance as soon as everyone needed has acted; the
     deadlines are upper bounds. Every missed deadline has an outcome, applied by finalize.
"""

interface IStakeManager:
    def lock(who: address): nonpayable
    def unlock(who: address): nonpayable
    def slash(who: address, amount: uint256, to: address) -> uint256: nonpayable
    def credit(who: address): payable
    def stake_of(who: address) -> uint256: view
    def is_eligible(who: address, role: uint256) -> bool: view
    def active_verifier_count() -> uint256: view
    def active_verifiers(i: uint256) -> address: view

interface IModelOracle:
    def record(task_id: uint256, cid: String[128], state_hash: bytes32, round_id: uint256) -> uint256: nonpayable

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
BLOCKHASH_HORIZON: constant(uint256) = 256
DOMAIN_COMMITTEE: constant(uint256) = 1
DOMAIN_SAMPLES: constant(uint256) = 2

# round phases
COMMITTED: constant(uint256) = 1       # waiting for seal
SEALED: constant(uint256) = 2          # waiting for reveal_starts
STARTS_REVEALED: constant(uint256) = 3 # committee commits verdicts
ENDS_REVEALED: constant(uint256) = 4   # committee reveals verdicts
FINALIZED: constant(uint256) = 5

# round outcomes
OUTCOME_NONE: constant(uint256) = 0
OUTCOME_ACCEPTED: constant(uint256) = 1
OUTCOME_FRAUD: constant(uint256) = 2
OUTCOME_VOID: constant(uint256) = 3       # fewer than quorum reveals
OUTCOME_EXPIRED: constant(uint256) = 4    # never sealed (trainer penalized: no seed grinding)
OUTCOME_ABANDONED: constant(uint256) = 5  # trainer missed reveal_starts or reveal_ends

# ---------------------------------------------------------------- types
struct TaskParams:
    steps_per_round: uint256     # S
    segment_steps: uint256       # k; M = S / k segments per round
    samples: uint256             # s random segments (a span ending at leaf M is checked on top)
    committee_size: uint256      # c
    quorum: uint256              # q reveals needed, else the round is void
    seal_delay: uint256          # seed = blockhash(commit_block + seal_delay)
    reveal_window: uint256       # blocks for the trainer's reveal_starts / reveal_ends
    commit_window: uint256       # blocks for the committee's commit_verdict
    verdict_window: uint256      # blocks for the committee's reveal_verdict
    trainer_reward: uint256      # wei per accepted round
    verifier_reward: uint256     # wei per majority verifier per accepted round
    fraud_slash_bps: uint256     # of the trainer's stake, on fraud
    fraud_reward_bps: uint256    # of the fraud slash, split among the majority
    miss_slash_bps: uint256      # of the stake of whoever misses a duty
    minority_slash_bps: uint256  # of a minority verifier's stake
    min_trainer_stake: uint256   # wei a trainer needs staked to commit, on top of StakeManager's minimum
                                 # (0: that minimum only); the task creator sizes it from what a forgery is worth

struct Task:
    creator: address
    spec_cid: String[128]
    spec_hash: bytes32
    canonical_hash: bytes32      # h_0 of the next round
    canonical_cid: String[128]
    pool: uint256                # wei left for rewards
    open_round: uint256          # 0 when free
    rounds_accepted: uint256
    params: TaskParams

struct Round:
    task_id: uint256
    trainer: address
    base_hash: bytes32
    data_root: bytes32
    trace_root: bytes32
    phase: uint256
    outcome: uint256
    commit_block: uint256
    seed: bytes32
    deadline: uint256            # last block of the current phase
    commit_deadline: uint256     # last block for commit_verdict
    n_committed: uint256
    n_revealed: uint256
    n_contradicting: uint256
    final_hash: bytes32
    final_cid: String[128]

# ---------------------------------------------------------------- events
event TaskCreated:
    task_id: indexed(uint256)
    creator: indexed(address)
    spec_cid: String[128]
    spec_hash: bytes32
    genesis_hash: bytes32
    genesis_cid: String[128]
    pool: uint256
    params: TaskParams

event TaskFunded:
    task_id: indexed(uint256)
    funder: indexed(address)
    amount: uint256
    pool: uint256

event RoundCommitted:
    round_id: indexed(uint256)
    task_id: indexed(uint256)
    trainer: indexed(address)
    base_hash: bytes32
    data_root: bytes32
    trace_root: bytes32
    seal_after: uint256          # first block at which seal is allowed

event RoundSealed:
    round_id: indexed(uint256)
    seed: bytes32
    samples: DynArray[uint256, MAX_CHECKED]
    committee: DynArray[address, MAX_COMMITTEE]
    deadline: uint256

event StartsRevealed:
    round_id: indexed(uint256)
    start_hashes: DynArray[bytes32, MAX_CHECKED]
    start_cids: DynArray[String[128], MAX_CHECKED]
    commit_deadline: uint256

event VerdictCommitted:
    round_id: indexed(uint256)
    verifier: indexed(address)
    commitment: bytes32

event EndsRevealed:
    round_id: indexed(uint256)
    end_hashes: DynArray[bytes32, MAX_CHECKED]
    final_cid: String[128]
    deadline: uint256

event VerdictRevealed:
    round_id: indexed(uint256)
    verifier: indexed(address)
    contradicts: bool
    end_hashes: DynArray[bytes32, MAX_CHECKED]
    data_root_ok: bool
    starts_ok: bool
    final_ok: bool

event RoundFinalized:
    round_id: indexed(uint256)
    task_id: indexed(uint256)
    outcome: uint256
    n_revealed: uint256
    n_contradicting: uint256

event RewardPaid:
    round_id: indexed(uint256)
    who: indexed(address)
    amount: uint256

event PenaltyApplied:
    round_id: indexed(uint256)
    who: indexed(address)
    amount: uint256
    reason: String[32]

# ---------------------------------------------------------------- storage
stake_manager: public(IStakeManager)
oracle: public(IModelOracle)
task_count: public(uint256)
round_count: public(uint256)
tasks: public(HashMap[uint256, Task])
rounds: public(HashMap[uint256, Round])
round_committee: HashMap[uint256, DynArray[address, MAX_COMMITTEE]]
start_hashes: HashMap[uint256, DynArray[bytes32, MAX_CHECKED]]
end_hashes: HashMap[uint256, DynArray[bytes32, MAX_CHECKED]]
commitments: public(HashMap[uint256, HashMap[address, bytes32]])
revealed: public(HashMap[uint256, HashMap[address, bool]])
contradicted: public(HashMap[uint256, HashMap[address, bool]])


@deploy
def __init__(stake_manager: address, oracle: address):
    """
    @param stake_manager StakeManager (must then call set_rounds(this)).
    @param oracle ModelOracle (must then call set_writer(this)).
    """
    assert stake_manager != empty(address) and oracle != empty(address), "rounds: zero address"
    self.stake_manager = IStakeManager(stake_manager)
    self.oracle = IModelOracle(oracle)


# ================================================================ pure rules
# Same names and semantics as node/protocol.py.

@external
@pure
def compute_leaf(index: uint256, leaf_value: bytes32) -> bytes32:
    """
    @notice Merkle leaf: keccak256(abi.encode(index, value)).
    """
    return self._compute_leaf(index, leaf_value)


@external
@pure
def is_valid_merkle_proof(root: bytes32, n_leaves: uint256, index: uint256, leaf_value: bytes32, proof: DynArray[bytes32, MAX_DEPTH]) -> bool:
    """
    @notice Whether `proof` shows `value` is leaf `index` of a tree of `n_leaves` with `root`.
    """
    return self._is_valid_merkle_proof(root, n_leaves, index, leaf_value, proof)


@external
@pure
def compute_seed(block_hash: bytes32, round_id: uint256) -> bytes32:
    """
    @notice Round seed: keccak256(abi.encode(block_hash, round_id)).
    """
    return self._compute_seed(block_hash, round_id)


@external
@pure
def compute_samples(seed: bytes32, n_segments: uint256, n_samples: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice Start leaves of the checks, ascending: `n_samples` pairwise non-adjacent segments x
            are drawn from 0..M-2; each x < M-2 is the check (x, x+1); the last check ends at
            leaf M and starts at M-2 if M-2 was drawn, else at M-1 (s or s+1 checks).
    """
    return self._compute_samples(seed, n_segments, n_samples)


@external
@pure
def compute_check_ends(samples: DynArray[uint256, MAX_CHECKED], n_segments: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice End leaf of each check of compute_samples: start + 1, except the last: M.
    """
    return self._compute_check_ends(samples, n_segments)


@external
@pure
def compute_draw(seed: bytes32, domain: uint256, pool_size: uint256, n: uint256) -> DynArray[uint256, MAX_DRAW]:
    """
    @notice `n` distinct indices of 0..pool_size-1 by a partial Fisher-Yates shuffle, in draw order.
    """
    return self._compute_draw(seed, domain, pool_size, n)


@external
@pure
def compute_committee_indices(seed: bytes32, n_active: uint256, committee_size: uint256) -> DynArray[uint256, MAX_DRAW]:
    """
    @notice Positions in the active verifier set of the committee (min(c, n_active) members).
    """
    return self._compute_draw(seed, DOMAIN_COMMITTEE, n_active, min(committee_size, n_active))


@external
@pure
def compute_verdict_commitment(round_id: uint256, verifier: address, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, salt: bytes32) -> bytes32:
    """
    @notice keccak256(abi.encode(round_id, verifier, end_hashes, data_root_ok, salt)).
    """
    return self._compute_verdict_commitment(round_id, verifier, end_hashes, data_root_ok, salt)


@external
@pure
def compute_tally(n_revealed: uint256, n_contradicting: uint256, quorum: uint256) -> uint256:
    """
    @notice Outcome of the votes: 3 void (< quorum reveals), 2 fraud (strict majority
            contradicts), else 1 accepted.
    """
    return self._compute_tally(n_revealed, n_contradicting, quorum)


@external
@pure
def compute_slash(stake: uint256, bps: uint256) -> uint256:
    """
    @notice stake * bps // 10000.
    """
    return self._compute_slash(stake, bps)


@external
@pure
def compute_fraud_split(slashed: uint256, reward_bps: uint256, n_majority: uint256) -> (uint256, uint256):
    """
    @notice Split of a fraud slash: (per majority verifier, to treasury); dust to treasury.
    """
    return self._compute_fraud_split(slashed, reward_bps, n_majority)


@external
@pure
def compute_round_cost(trainer_reward: uint256, verifier_reward: uint256, committee_size: uint256) -> uint256:
    """
    @notice Most an accepted round can pay from the pool.
    """
    return trainer_reward + verifier_reward * committee_size


@internal
@pure
def _compute_leaf(index: uint256, leaf_value: bytes32) -> bytes32:
    return keccak256(abi_encode(index, leaf_value))


@internal
@pure
def _compute_tree_depth(n_leaves: uint256) -> uint256:
    depth: uint256 = 0
    for i: uint256 in range(MAX_DEPTH + 1):
        if (1 << depth) >= n_leaves:
            break
        depth += 1
    return depth


@internal
@pure
def _is_valid_merkle_proof(root: bytes32, n_leaves: uint256, index: uint256, leaf_value: bytes32, proof: DynArray[bytes32, MAX_DEPTH]) -> bool:
    if n_leaves == 0 or index >= n_leaves or n_leaves > (1 << MAX_DEPTH):
        return False
    if len(proof) != self._compute_tree_depth(n_leaves):
        return False
    node: bytes32 = self._compute_leaf(index, leaf_value)
    position: uint256 = index
    for sibling: bytes32 in proof:
        if position & 1 == 0:
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
        position >>= 1
    return node == root


@internal
@pure
def _compute_seed(block_hash: bytes32, round_id: uint256) -> bytes32:
    return keccak256(abi_encode(block_hash, round_id))


@internal
@pure
def _compute_draw(seed: bytes32, domain: uint256, pool_size: uint256, n: uint256) -> DynArray[uint256, MAX_DRAW]:
    """Partial Fisher-Yates over 0..pool_size-1 with a sparse swap table (only touched slots)."""
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
def _compute_samples(seed: bytes32, n_segments: uint256, n_samples: uint256) -> DynArray[uint256, MAX_CHECKED]:
    # s non-adjacent values x of 0..M-2 <-> s distinct values y of 0..M-s-1, sorted, mapped
    # to y_i + i. Needs M >= 2s + 1 (checked at create_task). x < M-2 is the check (x, x+1);
    # the last check ends at M: (M-2, M) if M-2 was drawn (h_{M-1} stays hidden), else (M-1, M).
    assert n_samples <= MAX_SAMPLES, "rules: too many samples"
    assert n_segments >= 2 * n_samples + 1, "rules: too few segments"
    drawn: DynArray[uint256, MAX_DRAW] = self._compute_draw(seed, DOMAIN_SAMPLES, n_segments - n_samples, n_samples)
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
def _compute_check_ends(samples: DynArray[uint256, MAX_CHECKED], n_segments: uint256) -> DynArray[uint256, MAX_CHECKED]:
    assert len(samples) > 0, "rules: no samples"
    last: uint256 = samples[len(samples) - 1]
    assert last < n_segments and last + 2 >= n_segments, "rules: not a sample list"
    ends: DynArray[uint256, MAX_CHECKED] = []
    for i: uint256 in range(len(samples) - 1, bound=MAX_CHECKED):
        ends.append(samples[i] + 1)
    ends.append(n_segments)
    return ends


@internal
@pure
def _compute_verdict_commitment(round_id: uint256, verifier: address, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(round_id, verifier, end_hashes, data_root_ok, salt))


@internal
@pure
def _compute_tally(n_revealed: uint256, n_contradicting: uint256, quorum: uint256) -> uint256:
    if n_revealed < quorum:
        return OUTCOME_VOID
    if 2 * n_contradicting > n_revealed:
        return OUTCOME_FRAUD
    return OUTCOME_ACCEPTED


@internal
@pure
def _compute_slash(stake: uint256, bps: uint256) -> uint256:
    return stake * bps // BPS


@internal
@pure
def _compute_fraud_split(slashed: uint256, reward_bps: uint256, n_majority: uint256) -> (uint256, uint256):
    if n_majority == 0:
        return 0, slashed
    per_verifier: uint256 = slashed * reward_bps // BPS // n_majority
    return per_verifier, slashed - per_verifier * n_majority


# ================================================================ tasks

@external
@payable
def create_task(spec_cid: String[128], spec_hash: bytes32, genesis_hash: bytes32, genesis_cid: String[128], params: TaskParams) -> uint256:
    """
    @notice Create a task funded with msg.value; records the genesis state as version 0.
    @param spec_cid CID of the TaskSpec JSON.
    @param spec_hash keccak256 of the TaskSpec canonical JSON.
    @param genesis_hash State hash h_0 of the genesis state.
    @param genesis_cid CID of the genesis safetensors state.
    @param params Round parameters (see TaskParams).
    @return The task id.
    """
    assert len(spec_cid) > 0 and len(genesis_cid) > 0, "rounds: empty cid"
    assert spec_hash != empty(bytes32) and genesis_hash != empty(bytes32), "rounds: empty hash"
    p: TaskParams = params
    assert p.segment_steps > 0 and p.steps_per_round % p.segment_steps == 0, "rounds: steps not a multiple of segment"
    n_segments: uint256 = p.steps_per_round // p.segment_steps
    assert n_segments <= MAX_SEGMENTS, "rounds: too many segments"
    assert p.samples >= 1 and p.samples <= MAX_SAMPLES, "rounds: samples out of range"
    assert n_segments >= 2 * p.samples + 1, "rounds: needs segments >= 2*samples+1"
    assert p.committee_size >= 1 and p.committee_size <= MAX_COMMITTEE, "rounds: committee out of range"
    assert p.quorum >= 1 and p.quorum <= p.committee_size, "rounds: quorum out of range"
    assert p.seal_delay >= 1 and p.seal_delay <= 128, "rounds: seal delay out of range"
    assert p.reveal_window >= 1 and p.commit_window >= 1 and p.verdict_window >= 1, "rounds: zero window"
    assert p.fraud_slash_bps <= BPS and p.fraud_reward_bps <= BPS and p.miss_slash_bps <= BPS and p.minority_slash_bps <= BPS, "rounds: bps above 10000"
    cost: uint256 = p.trainer_reward + p.verifier_reward * p.committee_size
    assert msg.value >= cost, "rounds: pool below one round"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self.tasks[task_id] = Task(
        creator=msg.sender, spec_cid=spec_cid, spec_hash=spec_hash,
        canonical_hash=genesis_hash, canonical_cid=genesis_cid, pool=msg.value,
        open_round=0, rounds_accepted=0, params=p,
    )
    log TaskCreated(task_id=task_id, creator=msg.sender, spec_cid=spec_cid, spec_hash=spec_hash,
                    genesis_hash=genesis_hash, genesis_cid=genesis_cid, pool=msg.value, params=p)
    extcall self.oracle.record(task_id, genesis_cid, genesis_hash, 0)
    return task_id


@external
@payable
def fund_task(task_id: uint256):
    """
    @notice Add msg.value to a task's reward pool.
    @param task_id Task.
    """
    assert self.tasks[task_id].creator != empty(address), "rounds: unknown task"
    assert msg.value > 0, "rounds: zero value"
    self.tasks[task_id].pool += msg.value
    log TaskFunded(task_id=task_id, funder=msg.sender, amount=msg.value, pool=self.tasks[task_id].pool)


# ================================================================ a round

@external
def commit(task_id: uint256, base_hash: bytes32, data_root: bytes32, trace_root: bytes32, proof0: DynArray[bytes32, MAX_DEPTH]) -> uint256:
    """
    @notice Trainer commits a round on the task's canonical state; locks the trainer's stake.
    @param task_id Task (must have no open round).
    @param base_hash Must equal the task's canonical state hash (leaf 0 of the trace).
    @param data_root Merkle root of the S batch hashes.
    @param trace_root Merkle root of the M+1 boundary state hashes.
    @param proof0 Merkle proof that base_hash is leaf 0 of trace_root.
    @return The round id.
    """
    # field by field: copying the whole Task (strings, 15 params) would cost ~30 cold reads
    assert self.tasks[task_id].creator != empty(address), "rounds: unknown task"
    assert self.tasks[task_id].open_round == 0, "rounds: task has an open round"
    assert staticcall self.stake_manager.is_eligible(msg.sender, TRAINER), "rounds: not a staked trainer"
    assert staticcall self.stake_manager.stake_of(msg.sender) >= self.tasks[task_id].params.min_trainer_stake, "rounds: stake below the task's minimum"
    assert base_hash == self.tasks[task_id].canonical_hash, "rounds: base hash is not canonical"
    assert self._is_valid_merkle_proof(trace_root, self._n_segments(task_id) + 1, 0, base_hash, proof0), "rounds: bad leaf-0 proof"
    assert data_root != empty(bytes32), "rounds: empty data root"
    cost: uint256 = self.tasks[task_id].params.trainer_reward + self.tasks[task_id].params.verifier_reward * self.tasks[task_id].params.committee_size
    assert self.tasks[task_id].pool >= cost, "rounds: task pool exhausted"
    assert staticcall self.stake_manager.active_verifier_count() >= self.tasks[task_id].params.quorum, "rounds: too few active verifiers"
    seal_delay: uint256 = self.tasks[task_id].params.seal_delay

    round_id: uint256 = self.round_count + 1
    self.round_count = round_id
    self.tasks[task_id].open_round = round_id
    seal_after: uint256 = block.number + seal_delay + 1
    self.rounds[round_id] = Round(
        task_id=task_id, trainer=msg.sender, base_hash=base_hash, data_root=data_root,
        trace_root=trace_root, phase=COMMITTED, outcome=OUTCOME_NONE, commit_block=block.number,
        seed=empty(bytes32), deadline=block.number + seal_delay + BLOCKHASH_HORIZON,
        commit_deadline=0, n_committed=0, n_revealed=0, n_contradicting=0,
        final_hash=empty(bytes32), final_cid="",
    )
    extcall self.stake_manager.lock(msg.sender)
    log RoundCommitted(round_id=round_id, task_id=task_id, trainer=msg.sender, base_hash=base_hash,
                       data_root=data_root, trace_root=trace_root, seal_after=seal_after)
    return round_id


@external
def seal(round_id: uint256):
    """
    @notice Anyone: draw the seed, the samples and the committee once the seal block's hash
            exists; locks the committee's stake.
    @param round_id Round in phase COMMITTED.
    """
    assert self.rounds[round_id].phase == COMMITTED, "rounds: not awaiting seal"
    task_id: uint256 = self.rounds[round_id].task_id
    seal_block: uint256 = self.rounds[round_id].commit_block + self.tasks[task_id].params.seal_delay
    assert block.number > seal_block, "rounds: seal block not mined yet"
    assert block.number <= self.rounds[round_id].deadline, "rounds: seal window closed"
    seed: bytes32 = self._compute_seed(blockhash(seal_block), round_id)
    samples: DynArray[uint256, MAX_CHECKED] = self._round_samples(task_id, seed)
    n_active: uint256 = staticcall self.stake_manager.active_verifier_count()
    picks: DynArray[uint256, MAX_DRAW] = self._compute_draw(seed, DOMAIN_COMMITTEE, n_active, min(self.tasks[task_id].params.committee_size, n_active))
    reveal_window: uint256 = self.tasks[task_id].params.reveal_window
    committee: DynArray[address, MAX_COMMITTEE] = []
    for i: uint256 in picks:
        member: address = staticcall self.stake_manager.active_verifiers(i)
        committee.append(member)
        extcall self.stake_manager.lock(member)
    self.round_committee[round_id] = committee
    self.rounds[round_id].seed = seed
    self.rounds[round_id].phase = SEALED
    self.rounds[round_id].deadline = block.number + reveal_window
    log RoundSealed(round_id=round_id, seed=seed, samples=samples, committee=committee, deadline=block.number + reveal_window)


@external
def reveal_starts(round_id: uint256, start_hashes: DynArray[bytes32, MAX_CHECKED], start_cids: DynArray[String[128], MAX_CHECKED], proofs: DynArray[DynArray[bytes32, MAX_DEPTH], MAX_CHECKED]):
    """
    @notice Trainer reveals, for each check starting at leaf j, h_j with its proof and the
            CID of its checkpoint. Opens the committee's commit window.
    @param round_id Round in phase SEALED.
    @param start_hashes h_j for each sample, in sample order.
    @param start_cids Checkpoint CID of each h_j.
    @param proofs Merkle proof of each h_j against trace_root.
    """
    assert self.rounds[round_id].phase == SEALED, "rounds: not awaiting starts"
    assert msg.sender == self.rounds[round_id].trainer, "rounds: only the trainer"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    task_id: uint256 = self.rounds[round_id].task_id
    samples: DynArray[uint256, MAX_CHECKED] = self._round_samples(task_id, self.rounds[round_id].seed)
    n: uint256 = len(samples)
    assert len(start_hashes) == n and len(start_cids) == n and len(proofs) == n, "rounds: wrong number of starts"
    n_leaves: uint256 = self._n_segments(task_id) + 1
    trace_root: bytes32 = self.rounds[round_id].trace_root
    for i: uint256 in range(n, bound=MAX_CHECKED):
        assert len(start_cids[i]) > 0, "rounds: empty cid"
        assert self._is_valid_merkle_proof(trace_root, n_leaves, samples[i], start_hashes[i], proofs[i]), "rounds: bad start proof"
    commit_deadline: uint256 = block.number + self.tasks[task_id].params.commit_window
    self.start_hashes[round_id] = start_hashes
    self.rounds[round_id].phase = STARTS_REVEALED
    self.rounds[round_id].commit_deadline = commit_deadline
    # the trainer's end window runs from the close of the commit window
    self.rounds[round_id].deadline = commit_deadline + self.tasks[task_id].params.reveal_window
    log StartsRevealed(round_id=round_id, start_hashes=start_hashes, start_cids=start_cids, commit_deadline=commit_deadline)


@external
def commit_verdict(round_id: uint256, commitment: bytes32):
    """
    @notice Committee member commits keccak256(abi.encode(round_id, verifier, end_hashes,
            data_root_ok, salt)) before any end hash is public.
    @param round_id Round in phase STARTS_REVEALED.
    @param commitment See compute_verdict_commitment.
    """
    assert self.rounds[round_id].phase == STARTS_REVEALED, "rounds: not accepting verdicts"
    assert block.number <= self.rounds[round_id].commit_deadline, "rounds: commit window closed"
    assert msg.sender in self.round_committee[round_id], "rounds: not in committee"
    assert self.commitments[round_id][msg.sender] == empty(bytes32), "rounds: already committed"
    assert commitment != empty(bytes32), "rounds: empty commitment"
    self.commitments[round_id][msg.sender] = commitment
    self.rounds[round_id].n_committed += 1
    log VerdictCommitted(round_id=round_id, verifier=msg.sender, commitment=commitment)


@external
def reveal_ends(round_id: uint256, end_hashes: DynArray[bytes32, MAX_CHECKED], proofs: DynArray[DynArray[bytes32, MAX_DEPTH], MAX_CHECKED], final_cid: String[128]):
    """
    @notice Trainer reveals the end leaf of each check (see round_check_ends_of: j+1 for a
            sampled segment j, leaf M for the last check) with proofs; the last one is h_M, the
            final state, whose checkpoint CID is `final_cid`. Allowed once the whole committee
            committed or the commit window closed.
    @param round_id Round in phase STARTS_REVEALED.
    @param end_hashes The end leaf's hash for each check, in sample order.
    @param proofs Merkle proof of each against trace_root.
    @param final_cid CID of the final checkpoint (h_M).
    """
    assert self.rounds[round_id].phase == STARTS_REVEALED, "rounds: not awaiting ends"
    assert msg.sender == self.rounds[round_id].trainer, "rounds: only the trainer"
    assert self.rounds[round_id].n_committed == len(self.round_committee[round_id]) or block.number > self.rounds[round_id].commit_deadline, "rounds: committee still committing"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    assert len(final_cid) > 0, "rounds: empty cid"
    task_id: uint256 = self.rounds[round_id].task_id
    samples: DynArray[uint256, MAX_CHECKED] = self._round_samples(task_id, self.rounds[round_id].seed)
    n: uint256 = len(samples)
    assert len(end_hashes) == n and len(proofs) == n, "rounds: wrong number of ends"
    n_segments: uint256 = self._n_segments(task_id)
    trace_root: bytes32 = self.rounds[round_id].trace_root
    for i: uint256 in range(n, bound=MAX_CHECKED):
        # end leaf: j + 1, except the last check's, which is always leaf M
        end_leaf: uint256 = n_segments if i == n - 1 else samples[i] + 1
        assert self._is_valid_merkle_proof(trace_root, n_segments + 1, end_leaf, end_hashes[i], proofs[i]), "rounds: bad end proof"
    verdict_window: uint256 = self.tasks[task_id].params.verdict_window
    self.end_hashes[round_id] = end_hashes
    self.rounds[round_id].final_hash = end_hashes[n - 1]
    self.rounds[round_id].final_cid = final_cid
    self.rounds[round_id].phase = ENDS_REVEALED
    self.rounds[round_id].deadline = block.number + verdict_window
    log EndsRevealed(round_id=round_id, end_hashes=end_hashes, final_cid=final_cid, deadline=block.number + verdict_window)


@external
def reveal_verdict(round_id: uint256, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, salt: bytes32, starts_ok: bool, final_ok: bool):
    """
    @notice Committee member opens its commitment and adds the flags only knowable now:
            every start checkpoint hashed to its h_j (starts_ok), the final one to h_M (final_ok).
    @param round_id Round in phase ENDS_REVEALED.
    @param end_hashes The end hashes the verifier computed, in sample order.
    @param data_root_ok Whether the data root matched the batch schedule (committed).
    @param salt The commitment's salt.
    @param starts_ok Whether every start checkpoint fetched hashed to its revealed h_j.
    @param final_ok Whether the final checkpoint fetched hashed to h_M.
    """
    assert self.rounds[round_id].phase == ENDS_REVEALED, "rounds: not accepting reveals"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    commitment: bytes32 = self.commitments[round_id][msg.sender]
    assert commitment != empty(bytes32), "rounds: no commitment"
    assert not self.revealed[round_id][msg.sender], "rounds: already revealed"
    assert self._compute_verdict_commitment(round_id, msg.sender, end_hashes, data_root_ok, salt) == commitment, "rounds: reveal does not match commitment"
    trainer_ends: DynArray[bytes32, MAX_CHECKED] = self.end_hashes[round_id]
    assert len(end_hashes) == len(trainer_ends), "rounds: wrong number of ends"
    contradicts: bool = not (data_root_ok and starts_ok and final_ok)
    for i: uint256 in range(len(trainer_ends), bound=MAX_CHECKED):
        if end_hashes[i] != trainer_ends[i]:
            contradicts = True
    self.revealed[round_id][msg.sender] = True
    self.contradicted[round_id][msg.sender] = contradicts
    self.rounds[round_id].n_revealed += 1
    if contradicts:
        self.rounds[round_id].n_contradicting += 1
    log VerdictRevealed(round_id=round_id, verifier=msg.sender, contradicts=contradicts, end_hashes=end_hashes,
                        data_root_ok=data_root_ok, starts_ok=starts_ok, final_ok=final_ok)


@external
def finalize(round_id: uint256):
    """
    @notice Anyone: close the round. After ends: void, fraud or accept (once every committed
            member revealed or the window closed). Before: only once the pending deadline
            passed (expired if never sealed; abandoned if the trainer missed a reveal).
    @param round_id An open round.
    """
    r: Round = self.rounds[round_id]
    assert r.phase >= COMMITTED and r.phase < FINALIZED, "rounds: not open"
    outcome: uint256 = OUTCOME_NONE
    if r.phase == ENDS_REVEALED:
        assert r.n_revealed == r.n_committed or block.number > r.deadline, "rounds: verdicts still being revealed"
        outcome = self._compute_tally(r.n_revealed, r.n_contradicting, self.tasks[r.task_id].params.quorum)
    else:
        assert block.number > r.deadline, "rounds: deadline not passed"
        outcome = OUTCOME_EXPIRED if r.phase == COMMITTED else OUTCOME_ABANDONED
    self.rounds[round_id].phase = FINALIZED
    self.rounds[round_id].outcome = outcome
    self.tasks[r.task_id].open_round = 0
    if outcome == OUTCOME_ACCEPTED:
        self._settle_accepted(round_id, r)
    elif outcome == OUTCOME_FRAUD:
        self._settle_fraud(round_id, r)
    elif outcome == OUTCOME_VOID:
        self._settle_void(round_id, r)
    else:
        self._penalize(round_id, r.trainer, self.tasks[r.task_id].params.miss_slash_bps, "missed deadline")
    # release every lock this round took
    extcall self.stake_manager.unlock(r.trainer)
    for member: address in self.round_committee[round_id]:
        extcall self.stake_manager.unlock(member)
    log RoundFinalized(round_id=round_id, task_id=r.task_id, outcome=outcome, n_revealed=r.n_revealed, n_contradicting=r.n_contradicting)


# ---------------------------------------------------------------- views

@external
@view
def round_samples_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice Start leaves of a sealed round's checks (the last is M-2 or M-1); empty before seal.
    """
    return self._round_samples(self.rounds[round_id].task_id, self.rounds[round_id].seed)


@external
@view
def round_check_ends_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice End leaves of a sealed round's checks (start + 1; the last is M); empty before seal.
    """
    task_id: uint256 = self.rounds[round_id].task_id
    samples: DynArray[uint256, MAX_CHECKED] = self._round_samples(task_id, self.rounds[round_id].seed)
    if len(samples) == 0:
        return []
    return self._compute_check_ends(samples, self._n_segments(task_id))


@external
@view
def committee_of(round_id: uint256) -> DynArray[address, MAX_COMMITTEE]:
    """
    @notice Committee of a sealed round.
    """
    return self.round_committee[round_id]


@external
@view
def start_hashes_of(round_id: uint256) -> DynArray[bytes32, MAX_CHECKED]:
    """
    @notice Revealed start hashes h_j of a round, in sample order.
    """
    return self.start_hashes[round_id]


@external
@view
def end_hashes_of(round_id: uint256) -> DynArray[bytes32, MAX_CHECKED]:
    """
    @notice Revealed end hashes of a round (leaves round_check_ends_of), in sample order.
    """
    return self.end_hashes[round_id]


@external
@view
def task_params(task_id: uint256) -> TaskParams:
    """
    @notice Round parameters of a task.
    """
    return self.tasks[task_id].params


@external
@view
def n_segments(task_id: uint256) -> uint256:
    """
    @notice M = steps_per_round / segment_steps.
    """
    return self._n_segments(task_id)


# ---------------------------------------------------------------- settlement

@internal
@view
def _n_segments(task_id: uint256) -> uint256:
    return self.tasks[task_id].params.steps_per_round // self.tasks[task_id].params.segment_steps


@internal
@view
def _round_samples(task_id: uint256, seed: bytes32) -> DynArray[uint256, MAX_CHECKED]:
    """Samples are a pure function of the seed and the task's (fixed) parameters: recomputed
    rather than stored, which costs less than storing one slot per sample at seal."""
    if seed == empty(bytes32):
        return []
    return self._compute_samples(seed, self._n_segments(task_id), self.tasks[task_id].params.samples)


@internal
def _penalize(round_id: uint256, who: address, bps: uint256, reason: String[32]):
    amount: uint256 = self._compute_slash(staticcall self.stake_manager.stake_of(who), bps)
    if amount == 0:
        return
    taken: uint256 = extcall self.stake_manager.slash(who, amount, empty(address))
    log PenaltyApplied(round_id=round_id, who=who, amount=taken, reason=reason)


@internal
def _pay(round_id: uint256, task_id: uint256, who: address, amount: uint256):
    if amount == 0:
        return
    self.tasks[task_id].pool -= amount
    extcall self.stake_manager.credit(who, value=amount)
    log RewardPaid(round_id=round_id, who=who, amount=amount)


@internal
def _penalize_no_shows(round_id: uint256, bps: uint256):
    """Committee members that did not reveal (or never committed) lose `bps` of their stake."""
    for member: address in self.round_committee[round_id]:
        if not self.revealed[round_id][member]:
            self._penalize(round_id, member, bps, "verifier no-show")


@internal
def _settle_accepted(round_id: uint256, r: Round):
    self._pay(round_id, r.task_id, r.trainer, self.tasks[r.task_id].params.trainer_reward)
    verifier_reward: uint256 = self.tasks[r.task_id].params.verifier_reward
    minority_bps: uint256 = self.tasks[r.task_id].params.minority_slash_bps
    for member: address in self.round_committee[round_id]:
        if self.revealed[round_id][member]:
            if self.contradicted[round_id][member]:
                self._penalize(round_id, member, minority_bps, "minority verdict")
            else:
                self._pay(round_id, r.task_id, member, verifier_reward)
    self._penalize_no_shows(round_id, self.tasks[r.task_id].params.miss_slash_bps)
    self.tasks[r.task_id].canonical_hash = r.final_hash
    self.tasks[r.task_id].canonical_cid = r.final_cid
    self.tasks[r.task_id].rounds_accepted += 1
    extcall self.oracle.record(r.task_id, r.final_cid, r.final_hash, round_id)


@internal
def _settle_fraud(round_id: uint256, r: Round):
    slashed: uint256 = self._compute_slash(staticcall self.stake_manager.stake_of(r.trainer), self.tasks[r.task_id].params.fraud_slash_bps)
    per_verifier: uint256 = 0
    to_treasury: uint256 = 0
    per_verifier, to_treasury = self._compute_fraud_split(slashed, self.tasks[r.task_id].params.fraud_reward_bps, r.n_contradicting)
    minority_bps: uint256 = self.tasks[r.task_id].params.minority_slash_bps
    for member: address in self.round_committee[round_id]:
        if self.revealed[round_id][member]:
            if self.contradicted[round_id][member]:
                if per_verifier > 0:
                    extcall self.stake_manager.slash(r.trainer, per_verifier, member)
                    log RewardPaid(round_id=round_id, who=member, amount=per_verifier)
            else:
                self._penalize(round_id, member, minority_bps, "minority verdict")
    if to_treasury > 0:
        extcall self.stake_manager.slash(r.trainer, to_treasury, empty(address))
    log PenaltyApplied(round_id=round_id, who=r.trainer, amount=slashed, reason="fraud")
    self._penalize_no_shows(round_id, self.tasks[r.task_id].params.miss_slash_bps)


@internal
def _settle_void(round_id: uint256, r: Round):
    self._penalize_no_shows(round_id, self.tasks[r.task_id].params.miss_slash_bps)
