# pragma version 0.4.3
# pragma optimize codesize
"""
@title TrainingRounds
@notice The rounds of the tasks in TaskRegistry: a trainer commits hashes of its data and
        trace, on-chain randomness samples segments and a committee, the trainer reveals
        sampled starts, the committee commits verdicts, the trainer reveals ends, the
        committee reveals verdicts, and finalize accepts, voids or punishes fraud.
@dev Every rule (Merkle proofs, seed, draws, check ends, commitment, tally, slashes, round
     cost) is a function of the shared module lib/rules.vy, the same names as node/protocol.py;
     the phases, deadlines and who acts when are node/rounds.py's state machine. Rounds
     advance as soon as everyone needed has acted; the deadlines are upper bounds. Every
     missed deadline has an outcome, applied by finalize.
"""

from .lib import rules

interface IStakeManager:
    def reserve(who: address, amount: uint256): nonpayable
    def slash_reserved(who: address, amount: uint256, to: address) -> uint256: nonpayable
    def settle_reserved(who: address, reservation: uint256, amount: uint256, to: address) -> uint256: nonpayable
    def free_stake(who: address) -> uint256: view
    def min_stake(role: uint256) -> uint256: view
    def is_eligible(who: address, role: uint256) -> bool: view
    def eligible_entry_count() -> uint256: view
    def draw_committee(seed: bytes32, at_block: uint256, size: uint256, task_id: uint256) -> DynArray[address, MAX_COMMITTEE]: view

interface IEpochs:
    def slot_finalized(slot_id: uint256, accepted: bool): nonpayable

interface ITaskRegistry:
    def commit_inputs(task_id: uint256) -> rules.CommitInputs: view
    def round_windows(task_id: uint256) -> rules.RoundWindows: view
    def settlement(task_id: uint256) -> rules.Settlement: view
    def pay(task_id: uint256, payees: DynArray[address, MAX_PAYEES], amounts: DynArray[uint256, MAX_PAYEES]): nonpayable
    def reserve(task_id: uint256): nonpayable
    def release(task_id: uint256): nonpayable
    def advance(task_id: uint256, round_id: uint256, state_hash: bytes32, cid: String[128]): nonpayable

MAX_CHECKED: constant(uint256) = rules.MAX_CHECKED
MAX_PAYEES: constant(uint256) = rules.MAX_COMMITTEE + 1
MAX_COMMITTEE: constant(uint256) = rules.MAX_COMMITTEE
MAX_DEPTH: constant(uint256) = rules.MAX_DEPTH

struct Round:
    task_id: uint256
    trainer: address
    base_hash: bytes32
    data_root: bytes32
    trace_root: bytes32
    phase: uint256               # rules.COMMITTED .. rules.FINALIZED
    outcome: uint256             # rules.OUTCOME_*
    commit_block: uint256
    seed: bytes32
    deadline: uint256            # last block of the current phase
    commit_deadline: uint256     # last block for commit_verdict; after the ends, for commit_final
    n_committed: uint256
    n_revealed: uint256
    n_contradicting: uint256
    final_hash: bytes32
    final_cid: String[128]

# ---------------------------------------------------------------- events
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

event FinalCommitted:
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

event DisputesSet:
    disputes: indexed(address)

event EpochsSet:
    epochs: indexed(address)

event PenaltyApplied:
    round_id: indexed(uint256)
    who: indexed(address)
    amount: uint256
    reason: String[32]

# ---------------------------------------------------------------- storage
stake_manager: public(IStakeManager)
registry: public(ITaskRegistry)
round_count: public(uint256)
rounds: public(HashMap[uint256, Round])
open_round: public(HashMap[uint256, uint256])   # task -> its open round, 0 when free
round_committee: HashMap[uint256, DynArray[address, MAX_COMMITTEE]]
start_hashes: HashMap[uint256, DynArray[bytes32, MAX_CHECKED]]
end_hashes: HashMap[uint256, DynArray[bytes32, MAX_CHECKED]]
commitments: public(HashMap[uint256, HashMap[address, bytes32]])
final_commitments: public(HashMap[uint256, HashMap[address, bytes32]])  # rules.compute_final_commitment
n_final_committed: public(HashMap[uint256, uint256])
revealed: public(HashMap[uint256, HashMap[address, bool]])
contradicted: public(HashMap[uint256, HashMap[address, bool]])
first_seed: public(HashMap[bytes32, bytes32])   # rules.compute_trace_key -> seed of its first seal
# disputes (issue #15): with a Disputes contract set, a contradiction is settled by a dispute, never by a vote
disputes: public(address)                           # empty: v1's majority vote decides fraud
deployer: address                                   # may set `disputes` once, before the first commit
disputes_open: public(HashMap[uint256, uint256])    # round -> disputes not resolved yet (finalize waits)
disputed: public(HashMap[uint256, HashMap[address, bool]])
convicted: public(HashMap[uint256, bool])           # a dispute convicted the round's trainer
# Reservations (issue #13, attack 7): what each open round holds of its parties' stakes in StakeManager;
# every slash of the round is a fraction of these, and finalize gives back what it does not take.
trainer_reservation: public(HashMap[uint256, uint256])  # round -> the task's minimum trainer stake
seat_reservation: public(HashMap[uint256, uint256])     # round -> per committee seat (the verifier minimum)
seat_shortfall: public(HashMap[uint256, HashMap[address, uint256]])  # round -> member -> what its free stake lacked
# epochs (issue #14): Epochs opens and commits the rounds of epoch slots (slot id = round id)
epochs: public(address)                                 # set once by the deployer, as `disputes`
is_slot: public(HashMap[uint256, bool])                 # round -> an epoch slot (finalize tells Epochs, never advances the task)


@deploy
def __init__(stake_manager: address, registry: address):
    """
    @param stake_manager StakeManager (must authorize this contract: locks and slashes).
    @param registry TaskRegistry (must authorize this contract: pays and advances tasks).
    """
    assert stake_manager != empty(address) and registry != empty(address), "rounds: zero address"
    self.stake_manager = IStakeManager(stake_manager)
    self.registry = ITaskRegistry(registry)
    self.deployer = msg.sender


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
    p: rules.CommitInputs = staticcall self.registry.commit_inputs(task_id)
    assert p.canonical_hash != empty(bytes32), "rounds: unknown task"
    assert not p.in_epochs, "rounds: an epoch task: claim a slot in Epochs"
    assert block.number >= p.opens_block, "rounds: task not open yet"
    assert self.open_round[task_id] == 0, "rounds: task has an open round"
    assert staticcall self.stake_manager.is_eligible(msg.sender, rules.TRAINER), "rounds: not a staked trainer"
    assert base_hash == p.canonical_hash, "rounds: base hash is not canonical"
    assert rules.is_valid_merkle_proof(trace_root, p.n_segments + 1, 0, base_hash, proof0), "rounds: bad leaf-0 proof"
    assert data_root != empty(bytes32), "rounds: empty data root"
    assert staticcall self.stake_manager.eligible_entry_count() >= p.quorum, "rounds: too few active verifiers"

    round_id: uint256 = self._open(task_id, msg.sender, p.min_trainer_stake_wei)
    self.open_round[task_id] = round_id
    self._commit(round_id, task_id, msg.sender, base_hash, data_root, trace_root, p.seal_delay_blocks)
    return round_id


@external
def set_epochs(epochs: address):
    """
    @notice Deployer, once, before the first commit: the Epochs contract that opens and commits epoch slots.
    @param epochs Epochs (authorized in StakeManager and TaskRegistry).
    """
    assert msg.sender == self.deployer and self.epochs == empty(address) and self.round_count == 0, "rounds: epochs already set"
    assert epochs != empty(address), "rounds: zero address"
    self.epochs = epochs
    log EpochsSet(epochs=epochs)


@external
def open_slot(task_id: uint256, trainer: address, min_trainer_stake_wei: uint256, commit_deadline: uint256) -> uint256:
    """
    @notice Epochs only (Epochs.claim checked the claim): open the round of an epoch slot, phase CLAIMED;
            it reserves the trainer's stake and the round's cost of the pool as a v1 commit does. A slot
            not committed by `commit_deadline` finalizes as expired (the miss slash).
    @return The slot id (a round id).
    """
    assert msg.sender == self.epochs, "rounds: only the epochs contract"
    slot_id: uint256 = self._open(task_id, trainer, min_trainer_stake_wei)
    self.rounds[slot_id].task_id = task_id
    self.rounds[slot_id].trainer = trainer
    self.rounds[slot_id].phase = rules.CLAIMED
    self.rounds[slot_id].deadline = commit_deadline
    self.is_slot[slot_id] = True
    return slot_id


@external
def commit_slot(slot_id: uint256, base_hash: bytes32, data_root: bytes32, trace_root: bytes32, seal_delay_blocks: uint256):
    """
    @notice Epochs only (Epochs.commit checked the claimer, the epoch's base, the leaf-0 proof and the
            deadline): the claimed slot's hashes; from here the slot is a v1 round, seal ... finalize.
    """
    assert msg.sender == self.epochs, "rounds: only the epochs contract"
    assert self.rounds[slot_id].phase == rules.CLAIMED, "rounds: slot not awaiting its commit"
    self._commit(slot_id, self.rounds[slot_id].task_id, self.rounds[slot_id].trainer, base_hash, data_root, trace_root, seal_delay_blocks)


@internal
def _open(task_id: uint256, trainer: address, min_trainer_stake_wei: uint256) -> uint256:
    # the round reserves the task's minimum (at least StakeManager's): stake reserved by another open
    # round cannot back this one, and every slash of this round is a fraction of this reservation
    reservation: uint256 = rules.compute_trainer_reservation(min_trainer_stake_wei, staticcall self.stake_manager.min_stake(rules.TRAINER))
    assert staticcall self.stake_manager.free_stake(trainer) >= reservation, "rounds: free stake below the task's minimum"
    round_id: uint256 = self.round_count + 1
    self.round_count = round_id
    self.trainer_reservation[round_id] = reservation
    extcall self.stake_manager.reserve(trainer, reservation)
    # holds the round's cost of the pool until finalize; reverts on a closed task or a pool that
    # does not cover one more round
    extcall self.registry.reserve(task_id)
    return round_id


@internal
def _commit(round_id: uint256, task_id: uint256, trainer: address, base_hash: bytes32, data_root: bytes32, trace_root: bytes32, seal_delay_blocks: uint256):
    self.rounds[round_id] = Round(
        task_id=task_id, trainer=trainer, base_hash=base_hash, data_root=data_root,
        trace_root=trace_root, phase=rules.COMMITTED, outcome=rules.OUTCOME_NONE, commit_block=block.number,
        seed=empty(bytes32), deadline=block.number + seal_delay_blocks + rules.BLOCKHASH_HORIZON,
        commit_deadline=0, n_committed=0, n_revealed=0, n_contradicting=0,
        final_hash=empty(bytes32), final_cid="",
    )
    log RoundCommitted(round_id=round_id, task_id=task_id, trainer=trainer, base_hash=base_hash,
                       data_root=data_root, trace_root=trace_root, seal_after=block.number + seal_delay_blocks + 1)


@external
def seal(round_id: uint256):
    """
    @notice Anyone: draw the seed, the samples and the committee once the seal block's hash
            exists (or reuse the seed of the first seal of the same task, base and trace root:
            no re-roll); locks the committee's stake.
    @param round_id Round in phase COMMITTED.
    """
    assert self.rounds[round_id].phase == rules.COMMITTED, "rounds: not awaiting seal"
    p: rules.RoundWindows = staticcall self.registry.round_windows(self.rounds[round_id].task_id)
    seal_block: uint256 = self.rounds[round_id].commit_block + p.seal_delay_blocks
    assert block.number > seal_block, "rounds: seal block not mined yet"
    assert block.number <= self.rounds[round_id].deadline, "rounds: seal window closed"
    # no re-roll: the same (task, base, trace root) keeps the samples and committee draw of its first seal
    key: bytes32 = rules.compute_trace_key(self.rounds[round_id].task_id, self.rounds[round_id].base_hash, self.rounds[round_id].trace_root)
    seed: bytes32 = self.first_seed[key]
    if seed == empty(bytes32):
        seed = rules.compute_seed(blockhash(seal_block), round_id)
        self.first_seed[key] = seed
    # over the verifier entries eligible at the commit block: staking, unstaking or reordering after
    # the commit (when the seed may be known) changes nothing (issue #13, attack 3)
    committee: DynArray[address, MAX_COMMITTEE] = staticcall self.stake_manager.draw_committee(seed, self.rounds[round_id].commit_block, p.committee_size, self.rounds[round_id].task_id)
    # each seat reserves the verifier minimum. The draw does not look at reservations (keeping verifiers
    # busy in other rounds must not steer a committee): a member whose free stake is short reserves what it has
    seat: uint256 = staticcall self.stake_manager.min_stake(rules.VERIFIER)
    self.seat_reservation[round_id] = seat
    for member: address in committee:
        held: uint256 = min(seat, staticcall self.stake_manager.free_stake(member))
        if held < seat:
            self.seat_shortfall[round_id][member] = seat - held
        extcall self.stake_manager.reserve(member, held)
    self.round_committee[round_id] = committee
    samples: DynArray[uint256, MAX_CHECKED] = self._checks(round_id, seed, p)
    self.rounds[round_id].seed = seed
    self.rounds[round_id].phase = rules.SEALED
    self.rounds[round_id].deadline = block.number + p.reveal_window
    log RoundSealed(round_id=round_id, seed=seed, samples=samples, committee=committee, deadline=block.number + p.reveal_window)


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
    assert self.rounds[round_id].phase == rules.SEALED, "rounds: not awaiting starts"
    assert msg.sender == self.rounds[round_id].trainer, "rounds: only the trainer"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    p: rules.RoundWindows = staticcall self.registry.round_windows(self.rounds[round_id].task_id)
    n_segments: uint256 = p.n_segments
    samples: DynArray[uint256, MAX_CHECKED] = self._checks(round_id, self.rounds[round_id].seed, p)
    n: uint256 = len(samples)
    assert len(start_hashes) == n and len(start_cids) == n and len(proofs) == n, "rounds: wrong number of starts"
    trace_root: bytes32 = self.rounds[round_id].trace_root
    for i: uint256 in range(n, bound=MAX_CHECKED):
        assert len(start_cids[i]) > 0, "rounds: empty cid"
        assert rules.is_valid_merkle_proof(trace_root, n_segments + 1, samples[i], start_hashes[i], proofs[i]), "rounds: bad start proof"
    commit_deadline: uint256 = block.number + p.commit_verdicts_window
    self.start_hashes[round_id] = start_hashes
    self.rounds[round_id].phase = rules.STARTS_REVEALED
    self.rounds[round_id].commit_deadline = commit_deadline
    # the trainer's end window runs from the close of the commit window
    self.rounds[round_id].deadline = commit_deadline + p.reveal_window
    log StartsRevealed(round_id=round_id, start_hashes=start_hashes, start_cids=start_cids, commit_deadline=commit_deadline)


@external
def commit_verdict(round_id: uint256, commitment: bytes32):
    """
    @notice Committee member commits its verdict in two parts, each before anything it covers can be
            seen in another member's reveal (issue #13, attack 5). In phase STARTS_REVEALED, before
            any end hash is public: rules.compute_verdict_commitment(round_id, verifier, end_hashes,
            data_root_ok, starts_ok, salt), every flag it can know by now inside. In phase
            ENDS_REVEALED, before any verdict is revealed (reveal_verdict waits for every member's
            or the window's close): rules.compute_final_commitment(round_id, verifier, final_ok, salt),
            the same salt; final_ok (the final checkpoint fetched within the budget hashed to h_M) is
            knowable only once the ends are revealed.
    @param round_id Round in phase STARTS_REVEALED or ENDS_REVEALED.
    @param commitment See rules.compute_verdict_commitment, then rules.compute_final_commitment.
    """
    phase: uint256 = self.rounds[round_id].phase
    assert phase == rules.STARTS_REVEALED or phase == rules.ENDS_REVEALED, "rounds: not accepting verdicts"
    assert block.number <= self.rounds[round_id].commit_deadline, "rounds: commit window closed"
    assert commitment != empty(bytes32), "rounds: empty commitment"
    if phase == rules.STARTS_REVEALED:
        assert msg.sender in self.round_committee[round_id], "rounds: not in committee"
        assert self.commitments[round_id][msg.sender] == empty(bytes32), "rounds: already committed"
        self.commitments[round_id][msg.sender] = commitment
        self.rounds[round_id].n_committed += 1
        log VerdictCommitted(round_id=round_id, verifier=msg.sender, commitment=commitment)
    else:
        assert self.commitments[round_id][msg.sender] != empty(bytes32), "rounds: no commitment"
        assert self.final_commitments[round_id][msg.sender] == empty(bytes32), "rounds: already committed"
        self.final_commitments[round_id][msg.sender] = commitment
        self.n_final_committed[round_id] += 1
        log FinalCommitted(round_id=round_id, verifier=msg.sender, commitment=commitment)


@external
def reveal_ends(round_id: uint256, end_hashes: DynArray[bytes32, MAX_CHECKED], proofs: DynArray[DynArray[bytes32, MAX_DEPTH], MAX_CHECKED], final_cid: String[128]):
    """
    @notice Trainer reveals the end leaf of each check (see round_check_ends_of: j+1 for a
            sampled segment j, leaf M for the last check) with proofs; the last one is h_M, the
            final state, whose checkpoint CID is `final_cid`. Allowed once the whole committee
            committed or the commit window closed. Opens the committee's final-flag commit window
            (commit_verdicts_window blocks), then its reveal window.
    @param round_id Round in phase STARTS_REVEALED.
    @param end_hashes The end leaf's hash for each check, in sample order.
    @param proofs Merkle proof of each against trace_root.
    @param final_cid CID of the final checkpoint (h_M).
    """
    assert self.rounds[round_id].phase == rules.STARTS_REVEALED, "rounds: not awaiting ends"
    assert msg.sender == self.rounds[round_id].trainer, "rounds: only the trainer"
    assert self.rounds[round_id].n_committed == len(self.round_committee[round_id]) or block.number > self.rounds[round_id].commit_deadline, "rounds: committee still committing"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    assert len(final_cid) > 0, "rounds: empty cid"
    p: rules.RoundWindows = staticcall self.registry.round_windows(self.rounds[round_id].task_id)
    n_segments: uint256 = p.n_segments
    ends: DynArray[uint256, MAX_CHECKED] = rules.compute_check_ends(self._checks(round_id, self.rounds[round_id].seed, p), n_segments)
    n: uint256 = len(ends)
    assert len(end_hashes) == n and len(proofs) == n, "rounds: wrong number of ends"
    trace_root: bytes32 = self.rounds[round_id].trace_root
    for i: uint256 in range(n, bound=MAX_CHECKED):
        assert rules.is_valid_merkle_proof(trace_root, n_segments + 1, ends[i], end_hashes[i], proofs[i]), "rounds: bad end proof"
    self.end_hashes[round_id] = end_hashes
    self.rounds[round_id].final_hash = end_hashes[n - 1]
    self.rounds[round_id].final_cid = final_cid
    self.rounds[round_id].phase = rules.ENDS_REVEALED
    final_deadline: uint256 = block.number + p.commit_verdicts_window
    self.rounds[round_id].commit_deadline = final_deadline
    self.rounds[round_id].deadline = final_deadline + p.reveal_verdicts_window
    log EndsRevealed(round_id=round_id, end_hashes=end_hashes, final_cid=final_cid, deadline=final_deadline + p.reveal_verdicts_window)


@external
def reveal_verdict(round_id: uint256, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, salt: bytes32, starts_ok: bool, final_ok: bool):
    """
    @notice Committee member opens both its commitments (the verdict's, with every flag knowable
            before the ends, and the final flag's), once every member committed its final flag or
            that window closed: nothing counted in the tally is chosen after a reveal (issue #13,
            attack 5). A member without a final commitment cannot reveal (a no-show).
    @param round_id Round in phase ENDS_REVEALED.
    @param end_hashes The end hashes the verifier computed, in sample order.
    @param data_root_ok Whether the data root matched the batch schedule (committed).
    @param salt The commitment's salt.
    @param starts_ok Whether every start checkpoint was fetched within the budget and hashed to its h_j (committed).
    @param final_ok Whether the final checkpoint was fetched within the budget and hashed to h_M (committed).
    """
    assert self.rounds[round_id].phase == rules.ENDS_REVEALED, "rounds: not accepting reveals"
    assert self.n_final_committed[round_id] == self.rounds[round_id].n_committed or block.number > self.rounds[round_id].commit_deadline, "rounds: committee still committing"
    assert block.number <= self.rounds[round_id].deadline, "rounds: reveal window closed"
    commitment: bytes32 = self.commitments[round_id][msg.sender]
    assert commitment != empty(bytes32), "rounds: no commitment"
    assert not self.revealed[round_id][msg.sender], "rounds: already revealed"
    assert rules.compute_verdict_commitment(round_id, msg.sender, end_hashes, data_root_ok, starts_ok, salt) == commitment, "rounds: reveal does not match commitment"
    assert rules.compute_final_commitment(round_id, msg.sender, final_ok, salt) == self.final_commitments[round_id][msg.sender], "rounds: final flag does not match commitment"
    trainer_ends: DynArray[bytes32, MAX_CHECKED] = self.end_hashes[round_id]
    assert len(end_hashes) == len(trainer_ends), "rounds: wrong number of ends"
    # v1: every check is every member's; with Disputes each answers for the checks dealt to it (issue #15)
    member: uint256 = 0
    holders: uint256 = 1
    if self.disputes != empty(address):
        committee: DynArray[address, MAX_COMMITTEE] = self.round_committee[round_id]  # one storage read of it
        holders = len(committee)
        member = rules.compute_member_index(committee, msg.sender)
    contradicts: bool = rules.is_contradicting(trainer_ends, end_hashes, data_root_ok, starts_ok, final_ok, member, holders)
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
            passed (expired if never sealed; abandoned if the trainer missed a reveal; either
            costs the trainer rules.compute_trainer_miss_bps, at least the fraud slash).
    @param round_id An open round.
    """
    r: Round = self.rounds[round_id]
    assert r.phase >= rules.COMMITTED and r.phase != rules.FINALIZED, "rounds: not open"
    p: rules.Settlement = staticcall self.registry.settlement(r.task_id)
    outcome: uint256 = rules.OUTCOME_NONE
    disputed: bool = self.disputes != empty(address)
    if r.phase == rules.ENDS_REVEALED and disputed:
        # no majority vote: a contradiction keeps the reveal window open for its dispute; an open dispute holds the round
        assert self.disputes_open[round_id] == 0, "rounds: in dispute"
        # every round waits out its window: a watcher may dispute any segment until the deadline (Disputes.open_watch)
        assert block.number > r.deadline, "rounds: verdicts still being revealed"
        outcome = rules.compute_dispute_outcome(r.n_revealed, p.quorum, self.convicted[round_id])
    elif r.phase == rules.ENDS_REVEALED:
        assert r.n_revealed == r.n_committed or block.number > r.deadline, "rounds: verdicts still being revealed"
        outcome = rules.compute_tally(r.n_revealed, r.n_contradicting, p.quorum)
    else:
        assert block.number > r.deadline, "rounds: deadline not passed"
        # never sealed, or a claimed slot never committed: expired (the miss slash)
        outcome = rules.OUTCOME_EXPIRED if r.phase == rules.COMMITTED or r.phase == rules.CLAIMED else rules.OUTCOME_ABANDONED
    self.rounds[round_id].phase = rules.FINALIZED
    self.rounds[round_id].outcome = outcome
    self.open_round[r.task_id] = 0
    # every slash is a fraction of the round's own reservations; what is not taken is released
    reservation: uint256 = self.trainer_reservation[round_id]
    if outcome == rules.OUTCOME_ACCEPTED:
        self._settle_seats(round_id, p.verifier_slash_bps, True, p.no_show_slash_bps)
        self._penalize(round_id, r.trainer, reservation, 0, "")
        self._settle_accepted(round_id, r, p)  # pays, which frees the round's pool reservation
    else:
        extcall self.registry.release(r.task_id)
        if outcome == rules.OUTCOME_FRAUD:
            self._settle_seats(round_id, p.verifier_slash_bps, False, p.no_show_slash_bps)
            if disputed:
                # Disputes took the fraud slash of the reservation (rules.compute_slash) and paid its winners
                self._penalize(round_id, r.trainer, reservation - rules.compute_slash(reservation, p.trainer_slash_bps), 0, "")
            else:
                self._settle_fraud(round_id, r, p, reservation)
        elif outcome == rules.OUTCOME_VOID:
            self._settle_seats(round_id, 0, False, p.no_show_slash_bps)
            self._penalize(round_id, r.trainer, reservation, 0, "")
        else:
            self._settle_seats(round_id, 0, False, 0)
            self._penalize(round_id, r.trainer, reservation, rules.compute_trainer_miss_bps(p.trainer_slash_bps, p.no_show_slash_bps), "missed deadline")
    log RoundFinalized(round_id=round_id, task_id=r.task_id, outcome=outcome, n_revealed=r.n_revealed, n_contradicting=r.n_contradicting)
    if self.is_slot[round_id]:
        extcall IEpochs(self.epochs).slot_finalized(round_id, outcome == rules.OUTCOME_ACCEPTED)


# ---------------------------------------------------------------- disputes (issue #15)

@internal
@view
def _checks(round_id: uint256, seed: bytes32, p: rules.RoundWindows) -> DynArray[uint256, MAX_CHECKED]:
    """The start leaves of a sealed round's checks: v1's s draws, or with Disputes one draw dealt out over the
    round's committee (rules.compute_dealt_samples: c·s checks, M permitting; issue #15)."""
    n: uint256 = p.samples
    if self.disputes != empty(address):
        n = rules.compute_dealt_count(p.samples, len(self.round_committee[round_id]), p.n_segments)
    return rules.compute_samples(seed, p.n_segments, n)


@external
def set_disputes(disputes: address):
    """
    @notice Deployer, once, before the first commit: the Disputes contract that settles contradictions.
    @param disputes Disputes (authorized in StakeManager).
    """
    assert msg.sender == self.deployer and self.disputes == empty(address) and self.round_count == 0, "rounds: disputes already set"
    assert disputes != empty(address), "rounds: zero address"
    self.disputes = disputes
    log DisputesSet(disputes=disputes)


@external
def open_dispute(round_id: uint256, challenger: address, check_index: uint256) -> (address, uint256, uint256):
    """
    @notice Disputes only: `challenger`, a member whose revealed verdict contradicts the trainer, disputes
            check `check_index` before the reveal window closes; the round waits for it.
    @return The round's trainer, task and commit block (its jury is drawn over the entries eligible then).
    """
    assert msg.sender == self.disputes, "rounds: only the disputes contract"
    assert self.rounds[round_id].phase == rules.ENDS_REVEALED and block.number <= self.rounds[round_id].deadline, "rounds: not open to disputes"
    # a member disputes one of its checks; a watcher (Disputes checked its stake and the posted boundaries) a segment,
    # passed as check_index = the number of checks + the segment
    watched: bool = check_index >= len(self.end_hashes[round_id])
    assert (watched or self.contradicted[round_id][challenger]) and not self.disputed[round_id][challenger], "rounds: not a contradicting member"
    self.disputed[round_id][challenger] = True
    self.disputes_open[round_id] += 1
    return self.rounds[round_id].trainer, self.rounds[round_id].task_id, self.rounds[round_id].commit_block


@external
def resolve(round_id: uint256, trainer_won: bool):
    """
    @notice Disputes only: one dispute of the round is settled (trainer lost: the round ends in fraud).
    """
    assert msg.sender == self.disputes, "rounds: only the disputes contract"
    self.disputes_open[round_id] -= 1
    if not trainer_won:
        self.convicted[round_id] = True


# ---------------------------------------------------------------- views

@external
@view
def round_samples_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice Start leaves of a sealed round's checks (the last is M-2 or M-1); empty before seal.
    """
    seed: bytes32 = self.rounds[round_id].seed
    if seed == empty(bytes32):
        return []
    p: rules.RoundWindows = staticcall self.registry.round_windows(self.rounds[round_id].task_id)
    return self._checks(round_id, seed, p)


@external
@view
def round_check_ends_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice End leaves of a sealed round's checks (start + 1; the last is M); empty before seal.
    """
    seed: bytes32 = self.rounds[round_id].seed
    if seed == empty(bytes32):
        return []
    p: rules.RoundWindows = staticcall self.registry.round_windows(self.rounds[round_id].task_id)
    n_segments: uint256 = p.n_segments
    return rules.compute_check_ends(self._checks(round_id, seed, p), n_segments)


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


# ---------------------------------------------------------------- settlement

@internal
def _penalize(round_id: uint256, who: address, reservation: uint256, bps: uint256, reason: String[32]):
    """Slash `bps` of `who`'s reservation in this round to the treasury and release the rest."""
    amount: uint256 = rules.compute_slash(reservation, bps)
    extcall self.stake_manager.settle_reserved(who, reservation, amount, empty(address))
    if amount > 0:
        log PenaltyApplied(round_id=round_id, who=who, amount=amount, reason=reason)


@internal
def _settle_seats(round_id: uint256, minority_bps: uint256, minority_contradicts: bool, no_show_bps: uint256):
    """Settle every seat's reservation once: a no-show loses no_show_bps of it, a revealed verdict
    on the minority side (contradicting == minority_contradicts) minority_bps, the others nothing."""
    seat: uint256 = self.seat_reservation[round_id]
    for member: address in self.round_committee[round_id]:
        held: uint256 = seat - self.seat_shortfall[round_id][member]
        if not self.revealed[round_id][member]:
            self._penalize(round_id, member, held, no_show_bps, "verifier no-show")
        elif self.contradicted[round_id][member] == minority_contradicts:
            self._penalize(round_id, member, held, minority_bps, "minority verdict")
        else:
            self._penalize(round_id, member, held, 0, "")


@internal
def _settle_accepted(round_id: uint256, r: Round, p: rules.Settlement):
    payees: DynArray[address, MAX_PAYEES] = []
    amounts: DynArray[uint256, MAX_PAYEES] = []
    if p.trainer_reward_wei > 0:
        payees.append(r.trainer)
        amounts.append(p.trainer_reward_wei)
    for member: address in self.round_committee[round_id]:
        if self.revealed[round_id][member] and not self.contradicted[round_id][member] and p.verifier_reward_wei > 0:
            payees.append(member)
            amounts.append(p.verifier_reward_wei)
    # one call frees the round's reservation and pays everyone from the pool (TaskRegistry credits
    # each in StakeManager); never empty: verifier_reward_wei > 0 and an accepted round has a majority
    extcall self.registry.pay(r.task_id, payees, amounts)
    for i: uint256 in range(len(payees), bound=MAX_PAYEES):
        log RewardPaid(round_id=round_id, who=payees[i], amount=amounts[i])
    # an epoch slot: the epoch's aggregate, not the slot's state, becomes canonical (Epochs.finalize_epoch)
    if not self.is_slot[round_id]:
        extcall self.registry.advance(r.task_id, round_id, r.final_hash, r.final_cid)


@internal
def _settle_fraud(round_id: uint256, r: Round, p: rules.Settlement, reservation: uint256):
    """The fraud slash is trainer_slash_bps of the trainer's reservation: a share to each
    contradicting member, the rest to the treasury; the unslashed part is released."""
    slashed: uint256 = rules.compute_slash(reservation, p.trainer_slash_bps)
    per_verifier: uint256 = 0
    to_treasury: uint256 = 0
    per_verifier, to_treasury = rules.compute_fraud_split(slashed, p.fraud_reward_bps, r.n_contradicting)
    if per_verifier > 0:
        for member: address in self.round_committee[round_id]:
            if self.revealed[round_id][member] and self.contradicted[round_id][member]:
                extcall self.stake_manager.slash_reserved(r.trainer, per_verifier, member)
                log RewardPaid(round_id=round_id, who=member, amount=per_verifier)
    extcall self.stake_manager.settle_reserved(r.trainer, reservation - (slashed - to_treasury), to_treasury, empty(address))
    log PenaltyApplied(round_id=round_id, who=r.trainer, amount=slashed, reason="fraud")
