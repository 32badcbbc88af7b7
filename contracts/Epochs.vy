# pragma version 0.4.3
"""
@title Epochs
@notice Verified DiLoCo epochs (issue #14; docs/protocol-v2-interface.md): an epoch of an epoch
        task has N slots; a trainer claims a slot before training (its stake and the slot's share of
        the pool are held), commits its hashes by the commit deadline, and from there the slot is a
        v1 round of TrainingRounds (slot id = round id: seal ... finalize, unchanged). Slots accepted
        by the aggregate deadline form A. The aggregate (the outer step over A) is checked, not
        copied: a committee drawn at the aggregate deadline commits to the state hash it computed,
        then the trainer of the lowest accepted slot posts hash and CID (the next takes over after
        W = reveal_window blocks), the committee reveals, and finalize_epoch makes the posted state
        canonical (one ModelOracle version) if a majority of the reveals matches it. A = {} or no
        verified aggregate: the state is unchanged and the epoch still advances.
@dev The rules (deadlines, seed, commitment, posting turns, tally, slashes) are lib/rules.vy's, the
     same names as node/protocol.py; the phases and who acts when are node/rounds.py's epoch state
     machine. A one-slot task with the identity outer step is a v1 task (rules.is_epoch_task): it
     never comes here (TrainingRounds.commit runs it, v1 gas and latency).
"""

from .lib import rules

interface IStakeManager:
    def reserve(who: address, amount: uint256): nonpayable
    def settle_reserved(who: address, reservation: uint256, amount: uint256, to: address) -> uint256: nonpayable
    def free_stake(who: address) -> uint256: view
    def min_stake(role: uint256) -> uint256: view
    def is_eligible(who: address, role: uint256) -> bool: view
    def eligible_entry_count() -> uint256: view
    def draw_committee(seed: bytes32, at_block: uint256, size: uint256, task_id: uint256) -> DynArray[address, MAX_COMMITTEE]: view

interface ITaskRegistry:
    def commit_inputs(task_id: uint256) -> rules.CommitInputs: view
    def task_params(task_id: uint256) -> rules.TaskParams: view
    def oracle() -> address: view
    def pay(task_id: uint256, payees: DynArray[address, MAX_COMMITTEE + 1], amounts: DynArray[uint256, MAX_COMMITTEE + 1]): nonpayable
    def reserve(task_id: uint256): nonpayable
    def release(task_id: uint256): nonpayable
    def advance(task_id: uint256, round_id: uint256, state_hash: bytes32, cid: String[128]): nonpayable

interface ITrainingRounds:
    def open_slot(task_id: uint256, trainer: address, min_trainer_stake_wei: uint256, commit_deadline: uint256) -> uint256: nonpayable
    def commit_slot(slot_id: uint256, base_hash: bytes32, data_root: bytes32, trace_root: bytes32, seal_delay_blocks: uint256): nonpayable
    def disputes() -> address: view

interface IModelOracle:
    def version_count(task_id: uint256) -> uint256: view

MAX_COMMITTEE: constant(uint256) = rules.MAX_COMMITTEE
MAX_DEPTH: constant(uint256) = rules.MAX_DEPTH

struct Epoch:
    base_hash: bytes32           # the canonical state hash when the epoch opened (every slot's h_0)
    opened_block: uint256
    claim_deadline: uint256      # last block to claim
    commit_deadline: uint256     # last block for a claimed slot to commit
    aggregate_deadline: uint256  # last block at which a slot's acceptance counts
    phase: uint256               # rules.EPOCH_*
    outcome: uint256             # rules.OUTCOME_* once closed (accepted: a new canonical state)
    n_slots: uint256             # N (copied at opening, as the other per-epoch inputs)
    n_segments: uint256
    seal_delay_blocks: uint256
    claimed: uint256             # bit i: slot i claimed
    committed: uint256           # bit i: slot i committed
    accepted: uint256            # bit i: slot i accepted by aggregate_deadline (the set A)
    finalized: uint256           # bit i: slot i's round finalized (whatever its outcome)
    last_finalized_block: uint256  # when the last of them was (rules.compute_ready_block)
    deadline: uint256            # aggregation: last block to commit (AGGREGATING) or to reveal (POSTED)
    n_committed: uint256         # aggregation committee commitments
    n_revealed: uint256
    n_matching: uint256          # reveals equal to the posted hash
    poster_slot: uint256         # slot id of the slot whose trainer posted
    seat_reservation: uint256    # what each aggregation seat asks of its member's free stake (the verifier minimum; less if short: seat_shortfall)
    poster_reservation: uint256  # what the post reserves of the poster's free stake (its trainer reservation)
    state_hash: bytes32          # the posted aggregate
    cid: String[128]

struct Slot:
    task_id: uint256
    epoch: uint256
    index: uint256               # i, 0 <= i < N
    trainer: address

# ---------------------------------------------------------------- events
event EpochOpened:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    base_hash: bytes32
    opened_block: uint256
    claim_deadline: uint256
    commit_deadline: uint256
    aggregate_deadline: uint256

event SlotClaimed:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    slot: uint256
    slot_id: indexed(uint256)
    trainer: address
    commit_deadline: uint256

event SlotCommitted:
    slot_id: indexed(uint256)
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    slot: uint256
    trainer: address
    base_hash: bytes32
    data_root: bytes32
    trace_root: bytes32
    seal_after: uint256

event SlotFinalized:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    slot_id: indexed(uint256)
    slot: uint256
    accepted: bool
    counted: bool                # accepted and in A (False: accepted after the aggregate deadline: paid, left out)

event AggregationOpened:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    accepted: uint256            # the set A as a bit mask (bit i: slot i)
    seed: bytes32
    committee: DynArray[address, MAX_COMMITTEE]
    commit_deadline: uint256

event AggregationSeatShort:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    member: indexed(address)
    held: uint256                # what the seat reserved: the member's whole free stake
    shortfall: uint256           # seat_reservation - held (every slash of the seat is a fraction of held)

event AggregateCommitted:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    member: indexed(address)
    commitment: bytes32

event AggregatePosted:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    poster: indexed(address)
    slot_id: uint256
    state_hash: bytes32
    cid: String[128]
    reveal_deadline: uint256

event AggregateRevealed:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    member: indexed(address)
    state_hash: bytes32
    matches: bool

event EpochClosed:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    accepted_slots: uint256      # A as a bit mask
    outcome: uint256             # accepted: state_hash/cid are canonical now; else the state is unchanged
    state_hash: bytes32
    cid: String[128]
    version: uint256             # the task's canonical ModelOracle version after the epoch

event AggregationPenalty:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    who: indexed(address)
    amount: uint256
    reason: String[32]

event AggregationReward:
    task_id: indexed(uint256)
    epoch: indexed(uint256)
    who: indexed(address)
    amount: uint256

# ---------------------------------------------------------------- storage
stake_manager: public(IStakeManager)
registry: public(ITaskRegistry)
rounds: public(ITrainingRounds)
oracle: public(IModelOracle)
current_epoch: public(HashMap[uint256, uint256])                         # task -> the epoch claims go to
epochs: public(HashMap[uint256, HashMap[uint256, Epoch]])                # task -> epoch -> record
slot_ids: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])  # task -> epoch -> slot -> slot id
slots: public(HashMap[uint256, Slot])                                    # slot id -> its place
committees: HashMap[uint256, HashMap[uint256, DynArray[address, MAX_COMMITTEE]]]
commitments: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])
revealed: public(HashMap[uint256, HashMap[uint256, HashMap[address, bool]]])
matched: public(HashMap[uint256, HashMap[uint256, HashMap[address, bool]]])
seat_shortfall: public(HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]])  # task -> epoch -> member -> what its free stake lacked


@deploy
def __init__(stake_manager: address, registry: address, rounds: address):
    """
    @param stake_manager StakeManager (must authorize this contract: reserves and settles the aggregation's stakes).
    @param registry TaskRegistry (must authorize this contract: reserves, pays, advances).
    @param rounds TrainingRounds (must authorize this contract: opens and commits slots).
    """
    assert stake_manager != empty(address) and registry != empty(address) and rounds != empty(address), "epochs: zero address"
    self.stake_manager = IStakeManager(stake_manager)
    self.registry = ITaskRegistry(registry)
    self.rounds = ITrainingRounds(rounds)
    self.oracle = IModelOracle(staticcall ITaskRegistry(registry).oracle())


# ================================================================ slots

@external
def claim(task_id: uint256, epoch: uint256, slot: uint256) -> uint256:
    """
    @notice Reserve slot `slot` of the open epoch before training: holds the caller's stake and the
            slot's share of the pool (one round's cost). The first claim of an epoch opens it (its
            deadlines start there) and holds the aggregation's share of the pool too.
    @param task_id An epoch task.
    @param epoch current_epoch(task_id).
    @param slot 0 <= slot < slots_per_epoch, not claimed yet.
    @return The slot id (a TrainingRounds round id).
    """
    p: rules.CommitInputs = staticcall self.registry.commit_inputs(task_id)
    assert p.canonical_hash != empty(bytes32), "epochs: unknown task"
    assert p.in_epochs, "epochs: a one-slot identity task commits with TrainingRounds.commit"
    assert block.number >= p.opens_block, "epochs: task not open yet"
    assert epoch == self.current_epoch[task_id], "epochs: not the open epoch"
    phase: uint256 = self.epochs[task_id][epoch].phase
    if phase == rules.EPOCH_NONE:
        # the aggregation's cost and this slot's
        assert p.pool >= 2 * p.round_cost, "epochs: pool exhausted"
        self._open_epoch(task_id, epoch, p.canonical_hash)
    else:
        assert phase == rules.EPOCH_OPEN and block.number <= self.epochs[task_id][epoch].claim_deadline, "epochs: claim window closed"
        assert p.pool >= p.round_cost, "epochs: pool exhausted"
    assert slot < self.epochs[task_id][epoch].n_slots, "epochs: no such slot"
    bit: uint256 = 1 << slot
    claimed: uint256 = self.epochs[task_id][epoch].claimed
    assert claimed & bit == 0, "epochs: slot taken"
    assert staticcall self.stake_manager.is_eligible(msg.sender, rules.TRAINER), "epochs: not a staked trainer"
    # the slot reserves what a v1 round does (TrainingRounds.open_slot): stake held by another open slot or round does not count
    reservation: uint256 = rules.compute_trainer_reservation(p.min_trainer_stake_wei, staticcall self.stake_manager.min_stake(rules.TRAINER))
    assert staticcall self.stake_manager.free_stake(msg.sender) >= reservation, "epochs: stake below the task's minimum"
    assert staticcall self.stake_manager.eligible_entry_count() >= p.quorum, "epochs: too few eligible verifiers"
    commit_deadline: uint256 = self.epochs[task_id][epoch].commit_deadline
    slot_id: uint256 = extcall self.rounds.open_slot(task_id, msg.sender, p.min_trainer_stake_wei, commit_deadline)
    self.epochs[task_id][epoch].claimed = claimed | bit
    self.slot_ids[task_id][epoch][slot] = slot_id
    self.slots[slot_id] = Slot(task_id=task_id, epoch=epoch, index=slot, trainer=msg.sender)
    log SlotClaimed(task_id=task_id, epoch=epoch, slot=slot, slot_id=slot_id, trainer=msg.sender, commit_deadline=commit_deadline)
    return slot_id


@external
def commit(slot_id: uint256, base_hash: bytes32, data_root: bytes32, trace_root: bytes32, proof0: DynArray[bytes32, MAX_DEPTH]):
    """
    @notice The claimer commits its slot's hashes by the commit deadline; from here the slot is a v1
            round of TrainingRounds (seal ... finalize with slot_id for round_id).
    @param slot_id A slot the caller claimed.
    @param base_hash The epoch's base (leaf 0 of the trace).
    @param data_root Merkle root of the slot's H batch hashes.
    @param trace_root Merkle root of the M+1 boundary state hashes.
    @param proof0 Merkle proof that base_hash is leaf 0 of trace_root.
    """
    s: Slot = self.slots[slot_id]
    assert s.trainer == msg.sender, "epochs: only the slot's claimer"
    assert block.number <= self.epochs[s.task_id][s.epoch].commit_deadline, "epochs: commit window closed"
    bit: uint256 = 1 << s.index
    committed: uint256 = self.epochs[s.task_id][s.epoch].committed
    assert committed & bit == 0, "epochs: slot already committed"
    assert base_hash == self.epochs[s.task_id][s.epoch].base_hash, "epochs: base hash is not the epoch's base"
    assert rules.is_valid_merkle_proof(trace_root, self.epochs[s.task_id][s.epoch].n_segments + 1, 0, base_hash, proof0), "epochs: bad leaf-0 proof"
    assert data_root != empty(bytes32), "epochs: empty data root"
    seal_delay: uint256 = self.epochs[s.task_id][s.epoch].seal_delay_blocks
    self.epochs[s.task_id][s.epoch].committed = committed | bit
    extcall self.rounds.commit_slot(slot_id, base_hash, data_root, trace_root, seal_delay)
    log SlotCommitted(slot_id=slot_id, task_id=s.task_id, epoch=s.epoch, slot=s.index, trainer=msg.sender, base_hash=base_hash,
                      data_root=data_root, trace_root=trace_root, seal_after=block.number + seal_delay + 1)


@external
def slot_finalized(slot_id: uint256, accepted: bool):
    """
    @notice TrainingRounds.finalize closed the slot's round (and paid it if accepted): an accepted slot
            joins A if the epoch is open and the aggregate deadline has not passed; later it is left out
            (never rolled in). Once every claimed slot is finalized the aggregation need not wait for the
            aggregate deadline (rules.compute_ready_block).
    @param slot_id An epoch slot.
    @param accepted Whether its outcome is accepted.
    """
    assert msg.sender == self.rounds.address, "epochs: only TrainingRounds"
    s: Slot = self.slots[slot_id]
    counted: bool = accepted and self.epochs[s.task_id][s.epoch].phase == rules.EPOCH_OPEN and block.number <= self.epochs[s.task_id][s.epoch].aggregate_deadline
    if counted:
        self.epochs[s.task_id][s.epoch].accepted |= 1 << s.index
    self.epochs[s.task_id][s.epoch].finalized |= 1 << s.index
    self.epochs[s.task_id][s.epoch].last_finalized_block = block.number
    log SlotFinalized(task_id=s.task_id, epoch=s.epoch, slot_id=slot_id, slot=s.index, accepted=accepted, counted=counted)


# ================================================================ the aggregate

@external
def open_aggregation(task_id: uint256, epoch: uint256):
    """
    @notice Anyone, once A is final (the ready block: every claimed slot finalized once the claim phase is
            over, i.e. the claim window closed or all N slots claimed; else the aggregate deadline) and
            seal_delay_blocks later, while that block's hash exists: draw the aggregation committee from
            the verifier entries eligible at the ready block (locks their seat: the verifier minimum of
            its free stake, or all of it when less is free) and open its commit window.
    @param task_id Task.
    @param epoch Its open epoch, with at least one accepted slot.
    """
    assert self.epochs[task_id][epoch].phase == rules.EPOCH_OPEN, "epochs: not an open epoch"
    ready: uint256 = self._ready_block(task_id, epoch)
    seed_block: uint256 = ready + self.epochs[task_id][epoch].seal_delay_blocks
    assert block.number > seed_block, "epochs: slots still running"
    accepted: uint256 = self.epochs[task_id][epoch].accepted
    assert accepted != 0, "epochs: no slot accepted (finalize_epoch closes the epoch)"
    assert block.number <= seed_block + rules.BLOCKHASH_HORIZON, "epochs: aggregation seed expired (finalize_epoch closes the epoch)"
    p: rules.TaskParams = staticcall self.registry.task_params(task_id)
    seed: bytes32 = rules.compute_aggregate_seed(blockhash(seed_block), task_id, epoch)
    committee: DynArray[address, MAX_COMMITTEE] = staticcall self.stake_manager.draw_committee(seed, ready, p.committee_size, task_id)
    # each seat reserves the verifier minimum, as a round's seal. The draw does not look at reservations
    # (keeping verifiers busy elsewhere must not steer a committee): a member short of a free seat reserves
    # what it has (TrainingRounds.seat_shortfall's rule), and every slash of its seat is a fraction of that
    seat: uint256 = staticcall self.stake_manager.min_stake(rules.VERIFIER)
    self.epochs[task_id][epoch].seat_reservation = seat
    for member: address in committee:
        self._reserve_seat(task_id, epoch, member, seat)
    self.committees[task_id][epoch] = committee
    commit_deadline: uint256 = block.number + p.commit_verdicts_window
    self.epochs[task_id][epoch].phase = rules.EPOCH_AGGREGATING
    self.epochs[task_id][epoch].deadline = commit_deadline
    log AggregationOpened(task_id=task_id, epoch=epoch, accepted=accepted, seed=seed, committee=committee, commit_deadline=commit_deadline)


@external
def commit_aggregate(task_id: uint256, epoch: uint256, commitment: bytes32):
    """
    @notice An aggregation committee member commits to the state hash it computed (the outer step over
            A from the epoch's base), before any aggregate hash is public.
    @param commitment rules.compute_aggregate_commitment(task_id, epoch, member, state_hash, salt).
    """
    assert self.epochs[task_id][epoch].phase == rules.EPOCH_AGGREGATING, "epochs: not taking aggregate commitments"
    assert block.number <= self.epochs[task_id][epoch].deadline, "epochs: commit window closed"
    assert msg.sender in self.committees[task_id][epoch], "epochs: not in the aggregation committee"
    assert self.commitments[task_id][epoch][msg.sender] == empty(bytes32), "epochs: already committed"
    assert commitment != empty(bytes32), "epochs: empty commitment"
    self.commitments[task_id][epoch][msg.sender] = commitment
    self.epochs[task_id][epoch].n_committed += 1
    log AggregateCommitted(task_id=task_id, epoch=epoch, member=msg.sender, commitment=commitment)


@external
def post_aggregate(task_id: uint256, epoch: uint256, state_hash: bytes32, cid: String[128]):
    """
    @notice The trainer of an accepted slot posts the aggregate's state hash and CID: the lowest
            accepted slot's once the committee has committed (all, or its window closed), the slot of
            rank r in A after r more post windows (W = reveal_window) — a takeover.
    @param state_hash The canonical state hash of the outer step's result.
    @param cid Its safetensors CID.
    """
    assert self.epochs[task_id][epoch].phase == rules.EPOCH_AGGREGATING, "epochs: not awaiting the aggregate"
    accepted: uint256 = self.epochs[task_id][epoch].accepted
    slot: uint256 = rules.MAX_SLOTS
    for i: uint256 in range(rules.MAX_SLOTS):
        if (accepted >> i) & 1 == 1 and self.slots[self.slot_ids[task_id][epoch][i]].trainer == msg.sender:
            slot = i
            break
    assert slot < rules.MAX_SLOTS, "epochs: not the trainer of an accepted slot"
    p: rules.TaskParams = staticcall self.registry.task_params(task_id)
    commit_deadline: uint256 = self.epochs[task_id][epoch].deadline
    rank: uint256 = rules.compute_accepted_rank(accepted, slot)
    all_committed: bool = self.epochs[task_id][epoch].n_committed == len(self.committees[task_id][epoch])
    assert (rank == 0 and all_committed) or block.number >= rules.compute_post_opens(commit_deadline, rank, p.reveal_window), "epochs: not this slot's turn to post"
    assert block.number <= rules.compute_post_deadline(commit_deadline, rules.compute_accepted_rank(accepted, rules.MAX_SLOTS), p.reveal_window), "epochs: post window closed"
    assert state_hash != empty(bytes32), "epochs: empty state hash"
    assert len(cid) > 0, "epochs: empty cid"
    # the post is the poster's claim that its hash is the outer step: it reserves a trainer's reservation,
    # which a majority contradicting it slashes by the fraud fraction (finalize_epoch)
    reservation: uint256 = rules.compute_trainer_reservation(p.min_trainer_stake_wei, staticcall self.stake_manager.min_stake(rules.TRAINER))
    assert staticcall self.stake_manager.free_stake(msg.sender) >= reservation, "epochs: free stake below the task's minimum"
    extcall self.stake_manager.reserve(msg.sender, reservation)
    self.epochs[task_id][epoch].poster_reservation = reservation
    slot_id: uint256 = self.slot_ids[task_id][epoch][slot]
    reveal_deadline: uint256 = block.number + p.reveal_verdicts_window
    self.epochs[task_id][epoch].state_hash = state_hash
    self.epochs[task_id][epoch].cid = cid
    self.epochs[task_id][epoch].poster_slot = slot_id
    self.epochs[task_id][epoch].phase = rules.EPOCH_POSTED
    self.epochs[task_id][epoch].deadline = reveal_deadline
    log AggregatePosted(task_id=task_id, epoch=epoch, poster=msg.sender, slot_id=slot_id, state_hash=state_hash, cid=cid, reveal_deadline=reveal_deadline)


@external
def reveal_aggregate(task_id: uint256, epoch: uint256, state_hash: bytes32, salt: bytes32):
    """
    @notice A member opens its commitment once the aggregate is posted; it matches or contradicts the post.
    @param state_hash The hash the member committed to.
    @param salt The commitment's salt.
    """
    assert self.epochs[task_id][epoch].phase == rules.EPOCH_POSTED, "epochs: not taking aggregate reveals"
    assert block.number <= self.epochs[task_id][epoch].deadline, "epochs: reveal window closed"
    commitment: bytes32 = self.commitments[task_id][epoch][msg.sender]
    assert commitment != empty(bytes32), "epochs: no commitment"
    assert not self.revealed[task_id][epoch][msg.sender], "epochs: already revealed"
    assert rules.compute_aggregate_commitment(task_id, epoch, msg.sender, state_hash, salt) == commitment, "epochs: reveal does not match commitment"
    matches: bool = state_hash == self.epochs[task_id][epoch].state_hash
    self.revealed[task_id][epoch][msg.sender] = True
    self.epochs[task_id][epoch].n_revealed += 1
    if matches:
        self.matched[task_id][epoch][msg.sender] = True
        self.epochs[task_id][epoch].n_matching += 1
    log AggregateRevealed(task_id=task_id, epoch=epoch, member=msg.sender, state_hash=state_hash, matches=matches)


@external
def finalize_epoch(task_id: uint256, epoch: uint256):
    """
    @notice Anyone: close the epoch and open the next (at its first claim). The posted aggregate becomes
            canonical (one ModelOracle version) when a majority of at least quorum reveals matches it
            (rules.compute_tally); otherwise the state is unchanged: no slot accepted or no aggregation
            opened in time (expired), nobody posted (abandoned), too few reveals (void), the majority
            contradicts the post (fraud: the poster pays the trainer slash).
    @param task_id Task.
    @param epoch Its current epoch.
    """
    e: Epoch = self.epochs[task_id][epoch]
    p: rules.TaskParams = staticcall self.registry.task_params(task_id)
    outcome: uint256 = rules.OUTCOME_EXPIRED
    if e.phase == rules.EPOCH_OPEN:
        ready: uint256 = self._ready_block(task_id, epoch)
        assert block.number > ready, "epochs: slots still running"
        assert e.accepted == 0 or block.number > ready + e.seal_delay_blocks + rules.BLOCKHASH_HORIZON, "epochs: aggregation not opened yet"
    elif e.phase == rules.EPOCH_AGGREGATING:
        assert block.number > rules.compute_post_deadline(e.deadline, rules.compute_accepted_rank(e.accepted, rules.MAX_SLOTS), p.reveal_window), "epochs: aggregate not posted yet"
        outcome = rules.OUTCOME_ABANDONED
    else:
        assert e.phase == rules.EPOCH_POSTED, "epochs: not an open epoch"
        assert e.n_revealed == e.n_committed or block.number > e.deadline, "epochs: aggregate reveals still open"
        outcome = rules.compute_tally(e.n_revealed, e.n_revealed - e.n_matching, p.quorum)
    self.epochs[task_id][epoch].phase = rules.EPOCH_CLOSED
    self.epochs[task_id][epoch].outcome = outcome
    self.current_epoch[task_id] = epoch + 1
    self._settle(task_id, epoch, e, p, outcome)
    version: uint256 = staticcall self.oracle.version_count(task_id) - 1
    log EpochClosed(task_id=task_id, epoch=epoch, accepted_slots=e.accepted, outcome=outcome,
                    state_hash=e.state_hash if outcome == rules.OUTCOME_ACCEPTED else e.base_hash,
                    cid=e.cid if outcome == rules.OUTCOME_ACCEPTED else "", version=version)


# ---------------------------------------------------------------- views

@external
@view
def epoch_of(task_id: uint256) -> (uint256, bytes32, uint256, uint256, uint256, uint256):
    """
    @notice The task's current epoch: (epoch, base_hash, opened_block, claim_deadline, commit_deadline,
            aggregate_deadline); block numbers 0 while it is not opened (its first claim opens it, on
            the canonical state).
    """
    epoch: uint256 = self.current_epoch[task_id]
    e: Epoch = self.epochs[task_id][epoch]
    if e.phase == rules.EPOCH_NONE:
        return epoch, (staticcall self.registry.commit_inputs(task_id)).canonical_hash, 0, 0, 0, 0
    return epoch, e.base_hash, e.opened_block, e.claim_deadline, e.commit_deadline, e.aggregate_deadline


@external
@view
def committee_of(task_id: uint256, epoch: uint256) -> DynArray[address, MAX_COMMITTEE]:
    """
    @notice The aggregation committee of an epoch (empty before open_aggregation).
    """
    return self.committees[task_id][epoch]


# ---------------------------------------------------------------- internal

@internal
@view
def _ready_block(task_id: uint256, epoch: uint256) -> uint256:
    """rules.compute_ready_block of an open epoch; max_value while its claim phase is not over (nothing is
    final: the claim window is open and a slot is still free)."""
    claimed: uint256 = self.epochs[task_id][epoch].claimed
    every_slot_claimed: bool = rules.is_every_slot_claimed(self.epochs[task_id][epoch].n_slots, claimed)
    if not rules.is_claim_phase_over(block.number, self.epochs[task_id][epoch].claim_deadline, every_slot_claimed):
        return max_value(uint256) - rules.BLOCKHASH_HORIZON - rules.MAX_SEAL_DELAY
    return rules.compute_ready_block(self.epochs[task_id][epoch].claim_deadline, self.epochs[task_id][epoch].aggregate_deadline,
                                     self.epochs[task_id][epoch].last_finalized_block, self.epochs[task_id][epoch].finalized == claimed,
                                     every_slot_claimed)


@internal
def _open_epoch(task_id: uint256, epoch: uint256, base_hash: bytes32):
    p: rules.TaskParams = staticcall self.registry.task_params(task_id)
    claim_deadline: uint256 = 0
    commit_deadline: uint256 = 0
    aggregate_deadline: uint256 = 0
    span: uint256 = rules.compute_slot_span(p.seal_delay_blocks, p.reveal_window, p.commit_verdicts_window, p.reveal_verdicts_window)
    if staticcall self.rounds.disputes() != empty(address):
        # a slot's round may be disputed until its deadline: a dispute its challenger loses must resolve (appeal
        # included) before the aggregate deadline, or a false accusation would leave an honest slot out of A
        span += rules.compute_dispute_span(p.reveal_window, p.commit_verdicts_window, p.reveal_verdicts_window)
    claim_deadline, commit_deadline, aggregate_deadline = rules.compute_epoch_deadlines(block.number, p.claim_window, p.train_window, span)
    self.epochs[task_id][epoch] = Epoch(
        base_hash=base_hash, opened_block=block.number, claim_deadline=claim_deadline, commit_deadline=commit_deadline,
        aggregate_deadline=aggregate_deadline, phase=rules.EPOCH_OPEN, outcome=rules.OUTCOME_NONE, n_slots=p.slots_per_epoch,
        n_segments=rules.compute_n_segments(p.steps_per_round, p.segment_steps), seal_delay_blocks=p.seal_delay_blocks,
        claimed=0, committed=0, accepted=0, finalized=0, last_finalized_block=0, deadline=0, n_committed=0, n_revealed=0, n_matching=0, poster_slot=0,
        seat_reservation=0, poster_reservation=0,
        state_hash=empty(bytes32), cid="",
    )
    # the aggregation committee's pay, held until finalize_epoch (pay or release)
    extcall self.registry.reserve(task_id)
    log EpochOpened(task_id=task_id, epoch=epoch, base_hash=base_hash, opened_block=block.number, claim_deadline=claim_deadline,
                    commit_deadline=commit_deadline, aggregate_deadline=aggregate_deadline)


@internal
def _settle(task_id: uint256, epoch: uint256, e: Epoch, p: rules.TaskParams, outcome: uint256):
    """Pay or release the aggregation's pool reservation, advance the task on an accepted aggregate, and
    settle every stake reservation once (a seat: what it held, the verifier minimum less its shortfall):
    a seat on the minority of a decided aggregate loses verifier_slash_bps of it, a silent seat
    no_show_slash_bps, the poster of a rejected hash trainer_slash_bps of its post reservation; the
    rest is released."""
    payees: DynArray[address, MAX_COMMITTEE + 1] = []
    amounts: DynArray[uint256, MAX_COMMITTEE + 1] = []
    decided: bool = outcome == rules.OUTCOME_FRAUD or outcome == rules.OUTCOME_ACCEPTED
    for member: address in self.committees[task_id][epoch]:
        held: uint256 = e.seat_reservation - self.seat_shortfall[task_id][epoch][member]
        if self.revealed[task_id][epoch][member]:
            if decided and self.matched[task_id][epoch][member] != (outcome == rules.OUTCOME_ACCEPTED):
                self._penalize(task_id, epoch, member, held, p.verifier_slash_bps, "minority aggregate")
            else:
                if outcome == rules.OUTCOME_ACCEPTED:
                    payees.append(member)
                    amounts.append(p.verifier_reward_wei)
                self._penalize(task_id, epoch, member, held, 0, "")
        elif e.phase == rules.EPOCH_POSTED or self.commitments[task_id][epoch][member] == empty(bytes32):
            # drawn and silent: never committed, or committed and never revealed a posted aggregate
            self._penalize(task_id, epoch, member, held, p.no_show_slash_bps, "aggregation no-show")
        else:
            # committed, and nobody posted: nothing to reveal
            self._penalize(task_id, epoch, member, held, 0, "")
    if e.poster_reservation > 0:
        self._penalize(task_id, epoch, self.slots[e.poster_slot].trainer, e.poster_reservation,
                       p.trainer_slash_bps if outcome == rules.OUTCOME_FRAUD else 0, "aggregate fraud")
    if outcome == rules.OUTCOME_ACCEPTED:
        extcall self.registry.pay(task_id, payees, amounts)
        for i: uint256 in range(len(payees), bound=MAX_COMMITTEE + 1):
            log AggregationReward(task_id=task_id, epoch=epoch, who=payees[i], amount=amounts[i])
        extcall self.registry.advance(task_id, e.poster_slot, e.state_hash, e.cid)
    else:
        extcall self.registry.release(task_id)


@internal
def _reserve_seat(task_id: uint256, epoch: uint256, member: address, seat: uint256):
    """Reserve `member`'s aggregation seat: `seat`, or its whole free stake when that is less (the
    shortfall is remembered: _settle releases or slashes exactly what was reserved)."""
    held: uint256 = min(seat, staticcall self.stake_manager.free_stake(member))
    if held < seat:
        self.seat_shortfall[task_id][epoch][member] = seat - held
        log AggregationSeatShort(task_id=task_id, epoch=epoch, member=member, held=held, shortfall=seat - held)
    extcall self.stake_manager.reserve(member, held)


@internal
def _penalize(task_id: uint256, epoch: uint256, who: address, reservation: uint256, bps: uint256, reason: String[32]):
    """Slash `bps` of `who`'s reservation in this epoch's aggregation to the treasury and release the rest."""
    amount: uint256 = rules.compute_slash(reservation, bps)
    extcall self.stake_manager.settle_reserved(who, reservation, amount, empty(address))
    if amount > 0:
        log AggregationPenalty(task_id=task_id, epoch=epoch, who=who, amount=amount, reason=reason)
