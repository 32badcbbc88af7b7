# pragma version 0.4.3
"""
@title Disputes
@notice One honest challenger suffices against a trainer (issue #15, protocol-v2 part C). A committee
        member whose revealed verdict contradicts the trainer opens a dispute over one check's span,
        posting a bond; the trainer (defender) posts every per-step state hash of the span in one
        transaction (its first and last are the span's revealed start and end leaves); the challenger
        names the first step it disputes; once the next block is mined anyone draws the jury from its hash
        (draw_jury: every opted-in verifier except the parties, up to rules.JURY_MAX, drawn from the
        entries eligible at the round's commit block), which replays that step from the span's revealed
        start checkpoint and answers commit-reveal: the state hash its own replay gives. A vote counts for
        the trainer if it is the trainer's (public) hash, for the challenger if it is the challenger's own
        answer, committed with its naming move and revealed only after the jury committed, so a juror
        that did not replay can vote against the trainer only by colluding with the challenger; any
        other answer counts for nobody (rules.compute_vote_side). resolve settles: the loser
        pays (the trainer the fraud slash of its round reservation, the challenger its bond), refunds the
        winner's dispute gas (a fixed allowance at the opening block's basefee), pays the majority
        jurors; minority and absent jurors lose a share of their seat's reservation. A missed move
        within its window loses the dispute. A member whose contradiction is a flag (the data root, the
        start checkpoints, the final checkpoint: nothing to narrow) disputes that flag instead (open_flag):
        the jury is drawn at once and each juror checks the flag itself (its answer: the data root it
        recomputes, or what it finds served under the checkpoint CIDs).
        A jury vote is final only once the appeal window after its reveal deadline passed
        (rules.compute_appeal_deadline): until then its loser may appeal it to the whole verifier set (Appeals.vy,
        which marks it appealed here and settles it here by the final verdict: mark_appealed, settle_appealed).
@dev The jury is an honest-majority assumption (node/protocol.py compute_jury_capture_probability gives
     its price). An authorized caller of TrainingRounds (open_dispute / resolve: the round cannot
     finalize while a dispute is open) and of StakeManager (reservations, slashes, credits). Every rule
     is a function of lib/rules.vy, the same names as node/protocol.py.
"""

from .lib import rules

interface IStakeManager:
    def reserve(who: address, amount: uint256): nonpayable
    def settle_reserved(who: address, reservation: uint256, amount: uint256, to: address) -> uint256: nonpayable
    def slash_reserved(who: address, amount: uint256, to: address) -> uint256: nonpayable
    def credit(who: address): payable
    def min_stake(role: uint256) -> uint256: view
    def free_stake(who: address) -> uint256: view
    def role_of(who: address) -> uint256: view
    def draw_committee(seed: bytes32, at_block: uint256, size: uint256, task_id: uint256) -> DynArray[address, MAX_COMMITTEE]: view

struct RoundView:
    task_id: uint256
    trainer: address
    base_hash: bytes32
    data_root: bytes32
    trace_root: bytes32
    phase: uint256
    outcome: uint256
    commit_block: uint256
    seed: bytes32
    deadline: uint256
    commit_deadline: uint256
    n_committed: uint256
    n_revealed: uint256
    n_contradicting: uint256
    final_hash: bytes32
    final_cid: String[128]

interface IRounds:
    def rounds(round_id: uint256) -> RoundView: view
    def open_dispute(round_id: uint256, challenger: address, check_index: uint256) -> (address, uint256, uint256): nonpayable
    def resolve(round_id: uint256, trainer_won: bool): nonpayable
    def round_samples_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]: view
    def round_check_ends_of(round_id: uint256) -> DynArray[uint256, MAX_CHECKED]: view
    def start_hashes_of(round_id: uint256) -> DynArray[bytes32, MAX_CHECKED]: view
    def end_hashes_of(round_id: uint256) -> DynArray[bytes32, MAX_CHECKED]: view
    def trainer_reservation(round_id: uint256) -> uint256: view

interface ITaskRegistry:
    def task_params(task_id: uint256) -> rules.TaskParams: view

MAX_CHECKED: constant(uint256) = rules.MAX_CHECKED
MAX_COMMITTEE: constant(uint256) = rules.MAX_COMMITTEE
MAX_STEP_HASHES: constant(uint256) = rules.MAX_SPAN_STEPS + 1
MAX_BOUNDARIES: constant(uint256) = rules.MAX_SEGMENTS + 1
NO_CHECK: constant(uint256) = max_value(uint256)  # a conviction without a span (boundaries not posted or off the trace root)

# what a flag dispute is about (open_flag): the trainer's commitment that a juror checks off-chain
FLAG_DATA_ROOT: public(constant(uint256)) = rules.FLAG_DATA_ROOT   # the data root is the Merkle root of the round's batch schedule
FLAG_STARTS: public(constant(uint256)) = rules.FLAG_STARTS      # every revealed start checkpoint is served and hashes to its leaf
FLAG_FINAL: public(constant(uint256)) = rules.FLAG_FINAL       # the final checkpoint is served and hashes to h_M

struct Dispute:
    round_id: uint256
    task_id: uint256
    trainer: address
    challenger: address
    check_index: uint256      # position in the round's check list (round_samples_of)
    span_steps: uint256       # steps of the disputed span: (end leaf - start leaf) * k
    start_hash: bytes32       # the span's revealed start leaf (its checkpoint is the jurors' input)
    end_hash: bytes32         # the span's revealed end leaf
    phase: uint256            # rules.DISPUTE_*
    eligible_block: uint256   # jurors are drawn from the verifier entries eligible at this block: the round's commit block
    deadline: uint256         # last block of the current move (jury: of the commit window; 0 while the jury is undrawn)
    reveal_deadline: uint256  # last block of the jury's reveal window
    gas_price: uint256        # basefee of the opening block: prices both gas refunds
    bond: uint256             # wei the challenger posted (held here until resolve)
    steps_hash: bytes32       # keccak256(abi.encode(step_hashes)) of the trainer's post
    step: uint256             # the step the challenger disputes, 1..span_steps
    agreed_hash: bytes32      # state before it (step_hashes[step - 1])
    claimed_hash: bytes32     # the trainer's answer: its state after the named step (a flag: rules of open_flag)
    jury_block: uint256       # J: blockhash(J) seeds the jury (rules.compute_jury_block of the naming or of a re-target)
    n_committed: uint256
    votes_trainer: uint256    # jurors whose answer is the trainer's (counted as they reveal)
    votes_challenger: uint256 # jurors whose answer is the challenger's (counted by resolve: it is hidden until then)
    trainer_won: bool
    challenger_commitment: bytes32  # rules.compute_vote_commitment(round_id, challenger, its answer, salt)
    challenger_answer: bytes32      # revealed after the jury committed (empty: not revealed)
    n_revealed: uint256             # jurors that revealed an answer

event DisputeOpened:
    dispute_id: indexed(uint256)
    round_id: indexed(uint256)
    challenger: indexed(address)
    trainer: address
    check_index: uint256
    span_steps: uint256
    bond: uint256
    deadline: uint256

event FlagDisputed:
    dispute_id: indexed(uint256)
    flag: uint256
    jury_block: uint256       # draw_jury is open from jury_block + 1

event StepsPosted:
    dispute_id: indexed(uint256)
    step_hashes: DynArray[bytes32, MAX_STEP_HASHES]
    deadline: uint256

event StepNamed:
    dispute_id: indexed(uint256)
    step: uint256
    agreed_hash: bytes32
    claimed_hash: bytes32
    jury_block: uint256       # draw_jury is open from jury_block + 1

event JuryDrawn:
    dispute_id: indexed(uint256)
    jury_block: uint256
    seed: bytes32
    jury: DynArray[address, MAX_COMMITTEE]
    commit_deadline: uint256
    reveal_deadline: uint256

event JuryBlockRetargeted:
    dispute_id: indexed(uint256)
    expired_block: uint256    # the jury block whose hash nobody read in time
    jury_block: uint256       # the new one: draw_jury is open from jury_block + 1

event VoteCommitted:
    dispute_id: indexed(uint256)
    juror: indexed(address)
    commitment: bytes32

event VoteRevealed:
    dispute_id: indexed(uint256)
    juror: indexed(address)
    answer: bytes32
    trainer_right: bool       # the answer is the trainer's

event ChallengerAnswerRevealed:
    dispute_id: indexed(uint256)
    answer: bytes32

event BoundariesPosted:
    round_id: indexed(uint256)
    boundary_hashes: DynArray[bytes32, MAX_BOUNDARIES]  # h_0 .. h_M
    manifest_cid: String[128]   # a JSON list of the M + 1 boundary checkpoints' CIDs, in the store

event DisputeResolved:
    dispute_id: indexed(uint256)
    round_id: indexed(uint256)
    trainer_won: bool
    reason: String[32]

event DisputePaid:
    dispute_id: indexed(uint256)
    who: indexed(address)
    amount: uint256
    reason: String[32]

stake_manager: public(IStakeManager)
appeals: public(immutable(address))                            # Appeals: the only caller of mark_appealed / settle_appealed
rounds: public(IRounds)
registry: public(ITaskRegistry)
dispute_count: public(uint256)
disputes: public(HashMap[uint256, Dispute])
jury: HashMap[uint256, DynArray[address, MAX_COMMITTEE]]
juror_seat: public(HashMap[uint256, uint256])                  # dispute -> a juror's seat (the verifier minimum)
juror_reservation: public(HashMap[uint256, HashMap[address, uint256]])  # what each juror could reserve of its seat
vote_commitments: public(HashMap[uint256, HashMap[address, bytes32]])
answers: public(HashMap[uint256, HashMap[address, bytes32]])   # each juror's revealed answer
votes: public(HashMap[uint256, HashMap[address, uint256]])     # rules.VOTE_* of each juror (final once resolved)
flag_of: public(HashMap[uint256, uint256])                     # dispute -> FLAG_* (0: a span dispute)
round_convicted: public(HashMap[uint256, bool])                # the trainer's fraud slash is taken once per round
boundaries_hash: public(HashMap[uint256, bytes32])             # round -> keccak256(abi.encode(h_0 .. h_M)) posted; empty: not yet
watch_count: public(HashMap[uint256, uint256])                 # round -> watch disputes opened on it (each doubles the next bond)


@deploy
def __init__(stake_manager: address, rounds: address, registry: address, appeals_: address):
    """
    @param stake_manager StakeManager (must authorize this contract).
    @param rounds TrainingRounds (must name this contract with set_disputes).
    @param registry TaskRegistry (the task parameters).
    @param appeals_ Appeals (deployed first; its set_disputes names this contract), fixed for good.
    """
    assert stake_manager != empty(address) and rounds != empty(address) and registry != empty(address) and appeals_ != empty(address), "disputes: zero address"
    appeals = appeals_
    self.stake_manager = IStakeManager(stake_manager)
    self.rounds = IRounds(rounds)
    self.registry = ITaskRegistry(registry)


# ================================================================ moves

@external
@payable
def open(round_id: uint256, check_index: uint256) -> uint256:
    """
    @notice A committee member whose revealed verdict contradicts the trainer disputes one check's span
            (before the round's reveal window closes), posting at least rules.compute_challenger_bond. The trainer
            must post the span's step hashes within the task's reveal_window.
    @param round_id A round in phase ENDS_REVEALED.
    @param check_index Position of the disputed check in round_samples_of(round_id).
    @return The dispute id.
    """
    starts: DynArray[uint256, MAX_CHECKED] = staticcall self.rounds.round_samples_of(round_id)
    assert check_index < len(starts), "disputes: no such check"
    start_leaf: uint256 = starts[check_index]
    end_leaf: uint256 = (staticcall self.rounds.round_check_ends_of(round_id))[check_index]
    return self._open(round_id, check_index, msg.value, (staticcall self.rounds.start_hashes_of(round_id))[check_index],
                      (staticcall self.rounds.end_hashes_of(round_id))[check_index], end_leaf - start_leaf, 0)


@external
def post_boundaries(round_id: uint256, boundary_hashes: DynArray[bytes32, MAX_BOUNDARIES], manifest_cid: String[128]):
    """
    @notice The trainer posts every boundary hash of its round, h_0 .. h_M (M + 1 hashes, the leaves of its trace
            root), and the CID of a manifest listing their checkpoints, after its ends reveal and by the round's
            commit_deadline (the final flags' window): from then until the round's deadline any verifier may
            dispute any segment (open_watch), not only the sampled ones. Not posted by then, or off the trace root:
            anyone convicts the trainer (convict_unposted, convict_off_root). Only the hash of the list is stored.
    @param round_id A round in phase ENDS_REVEALED.
    @param boundary_hashes h_0 .. h_M.
    @param manifest_cid The boundary checkpoints' CIDs, as a JSON list in the store (the trainer serves them).
    """
    r: RoundView = staticcall self.rounds.rounds(round_id)
    assert msg.sender == r.trainer, "disputes: only the trainer"
    assert r.phase == rules.ENDS_REVEALED and block.number <= r.commit_deadline, "disputes: not awaiting boundaries"
    assert self.boundaries_hash[round_id] == empty(bytes32), "disputes: boundaries already posted"
    p: rules.TaskParams = self._params(r.task_id)
    assert len(boundary_hashes) == p.steps_per_round // p.segment_steps + 1, "disputes: not M + 1 boundaries"
    self.boundaries_hash[round_id] = keccak256(abi_encode(boundary_hashes))
    log BoundariesPosted(round_id=round_id, boundary_hashes=boundary_hashes, manifest_cid=manifest_cid)


@external
@payable
def open_watch(round_id: uint256, segment: uint256, boundary_hashes: DynArray[bytes32, MAX_BOUNDARIES]) -> uint256:
    """
    @notice A watcher (any staked verifier, on the committee or not) disputes segment `segment` of a round whose
            boundaries were posted, before the round's deadline: the span (segment, segment + 1) from the posted
            h_segment to h_segment+1, then the same moves as a member's dispute. Its bond is open's doubled for every
            watch dispute already opened on the round (rules.compute_watch_bond; view watch_bond_for), and lost, it
            pays the jurors and the trainer's gas and the rest is burned (not the trainer's: a cartel's bogus watches
            would flow back to its trainer).
    @param round_id A round in phase ENDS_REVEALED with its boundaries posted.
    @param segment 0 .. M - 1.
    @param boundary_hashes The trainer's post, as in its BoundariesPosted event (checked against its hash).
    @return The dispute id.
    """
    posted: bytes32 = self.boundaries_hash[round_id]
    assert posted != empty(bytes32) and keccak256(abi_encode(boundary_hashes)) == posted, "disputes: not the posted boundaries"
    assert segment + 1 < len(boundary_hashes), "disputes: no such segment"
    assert staticcall self.stake_manager.role_of(msg.sender) == rules.VERIFIER, "disputes: not a verifier"
    # TrainingRounds takes a check index past the round's checks as a watched segment
    n_checks: uint256 = len(staticcall self.rounds.end_hashes_of(round_id))
    n_watches: uint256 = self.watch_count[round_id]
    self.watch_count[round_id] = n_watches + 1
    return self._open(round_id, n_checks + segment, msg.value, boundary_hashes[segment], boundary_hashes[segment + 1], 1, n_watches)


@external
def convict_unposted(round_id: uint256) -> uint256:
    """
    @notice Anyone, after the round's commit_deadline and by its deadline: a trainer that did not post its
            boundaries kept its segments from the watchers, a missed move: the fraud slash (its fraud_reward_bps
            share to the caller), the round ends in fraud.
    @param round_id A round in phase ENDS_REVEALED.
    @return The dispute id recording the conviction.
    """
    r: RoundView = staticcall self.rounds.rounds(round_id)
    assert r.phase == rules.ENDS_REVEALED and block.number > r.commit_deadline, "disputes: boundaries not due yet"
    assert self.boundaries_hash[round_id] == empty(bytes32), "disputes: boundaries posted"
    return self._convict_at_once(round_id, "boundaries not posted")


@external
def convict_off_root(round_id: uint256, boundary_hashes: DynArray[bytes32, MAX_BOUNDARIES]) -> uint256:
    """
    @notice Anyone, by the round's deadline: the trainer's posted boundaries are not the leaves of its trace root
            (rules.compute_merkle_root recomputed here: only this call pays for it): the fraud slash, as
            convict_unposted.
    @param round_id A round whose boundaries were posted.
    @param boundary_hashes The trainer's post (checked against its hash).
    @return The dispute id recording the conviction.
    """
    posted: bytes32 = self.boundaries_hash[round_id]
    assert posted != empty(bytes32) and keccak256(abi_encode(boundary_hashes)) == posted, "disputes: not the posted boundaries"
    r: RoundView = staticcall self.rounds.rounds(round_id)
    assert rules.compute_merkle_root(boundary_hashes) != r.trace_root, "disputes: boundaries match the trace root"
    return self._convict_at_once(round_id, "boundaries off the trace root")


@external
@payable
def open_flag(round_id: uint256, flag: uint256, answer_commitment: bytes32) -> uint256:
    """
    @notice A committee member whose revealed verdict contradicts the trainer disputes one of the trainer's
            commitments that no span replay settles (FLAG_DATA_ROOT, FLAG_STARTS, FLAG_FINAL), posting the
            same bond as open. Nothing to narrow: the jury block is the next block, anyone draws the jury
            once it is mined, and each juror checks the flag itself (recomputes the data root; fetches the
            start or final checkpoints and hashes them against their leaves: content the trainer does not
            serve is the trainer's fault). A member disputes once per round, a span or a flag.
            Answers: FLAG_DATA_ROOT the data root (the trainer's: its committed one); FLAG_STARTS
            keccak256(abi.encode(bytes32[])) of one hash per revealed start (the trainer's: its start leaves;
            a juror's: what it finds under each start CID); FLAG_FINAL the final checkpoint's hash (the
            trainer's: h_M). What a juror finds: the leaf if the bytes hash to it, else keccak256 of the bytes.
    @param round_id A round in phase ENDS_REVEALED.
    @param flag FLAG_DATA_ROOT, FLAG_STARTS or FLAG_FINAL.
    @param answer_commitment rules.compute_vote_commitment(round_id, the challenger, its answer, salt): keyed by
           the round (a member disputes once per round; the dispute id is not known before this is mined).
    @return The dispute id.
    """
    assert flag >= FLAG_DATA_ROOT and flag <= FLAG_FINAL, "disputes: no such flag"
    dispute_id: uint256 = self._open(round_id, 0, msg.value, empty(bytes32), empty(bytes32), 0, 0)
    jury_block: uint256 = rules.compute_jury_block(block.number)
    self.disputes[dispute_id].phase = rules.DISPUTE_STEP_NAMED
    self.disputes[dispute_id].jury_block = jury_block
    self.disputes[dispute_id].deadline = 0
    self.disputes[dispute_id].claimed_hash = self._flag_answer(round_id, flag)
    self.disputes[dispute_id].challenger_commitment = self._checked_commitment(answer_commitment)
    self.flag_of[dispute_id] = flag
    log FlagDisputed(dispute_id=dispute_id, flag=flag, jury_block=jury_block)
    return dispute_id


@internal
def _open(round_id: uint256, check_index: uint256, bond: uint256, start_hash: bytes32, end_hash: bytes32, span_segments: uint256, n_watches: uint256) -> uint256:
    """Registers the dispute with TrainingRounds (which checks the challenger contradicted, or watches, and disputes
    once) and records it in phase DISPUTE_OPENED over the span from `start_hash` to `end_hash` (`span_segments`
    segments); `bond` is all of msg.value, at least the challenger bond doubled `n_watches` times."""
    trainer: address = empty(address)
    task_id: uint256 = 0
    commit_block: uint256 = 0
    # the jury is drawn over the entries eligible at the round's commit block, as its committee was: nobody can
    # stake into a jury after seeing a contradiction (the activation delay is one block; issue #13's registry)
    trainer, task_id, commit_block = extcall self.rounds.open_dispute(round_id, msg.sender, check_index)
    p: rules.TaskParams = self._params(task_id)
    # all of msg.value is the bond (at least the formula at this block's basefee): a loser loses all of it
    assert bond >= rules.compute_watch_bond(rules.compute_challenger_bond(p.verifier_reward_wei, block.basefee), n_watches), "disputes: bond below rules.compute_challenger_bond"
    span_steps: uint256 = span_segments * p.segment_steps
    assert span_steps <= rules.MAX_SPAN_STEPS, "disputes: span too long"
    dispute_id: uint256 = self.dispute_count + 1
    self.dispute_count = dispute_id
    deadline: uint256 = block.number + p.reveal_window
    self.disputes[dispute_id] = Dispute(
        round_id=round_id, task_id=task_id, trainer=trainer, challenger=msg.sender, check_index=check_index,
        span_steps=span_steps, start_hash=start_hash, end_hash=end_hash, phase=rules.DISPUTE_OPENED,
        eligible_block=commit_block, deadline=deadline, reveal_deadline=0, gas_price=block.basefee, bond=bond,
        steps_hash=empty(bytes32), step=0, agreed_hash=empty(bytes32), claimed_hash=empty(bytes32), jury_block=0,
        n_committed=0, votes_trainer=0, votes_challenger=0, trainer_won=False,
        challenger_commitment=empty(bytes32), challenger_answer=empty(bytes32), n_revealed=0,
    )
    log DisputeOpened(dispute_id=dispute_id, round_id=round_id, challenger=msg.sender, trainer=trainer,
                      check_index=check_index, span_steps=span_steps, bond=bond, deadline=deadline)
    return dispute_id


@external
def post_steps(dispute_id: uint256, step_hashes: DynArray[bytes32, MAX_STEP_HASHES]):
    """
    @notice The trainer posts every per-step state hash of the disputed span in one transaction:
            span_steps + 1 hashes, from the span's start leaf to its end leaf (rules.is_valid_span_hashes).
    @param dispute_id A dispute awaiting the trainer's steps.
    @param step_hashes h_start, the state after each step of the span, ..., h_end.
    """
    d: Dispute = self._dispute(dispute_id)
    assert d.phase == rules.DISPUTE_OPENED, "disputes: not awaiting steps"
    assert msg.sender == d.trainer, "disputes: only the trainer"
    assert block.number <= d.deadline, "disputes: move window closed"
    assert rules.is_valid_span_hashes(step_hashes, d.span_steps, d.start_hash, d.end_hash), "disputes: steps do not match the span"
    deadline: uint256 = block.number + (self._params(d.task_id)).reveal_window
    self.disputes[dispute_id].steps_hash = keccak256(abi_encode(step_hashes))
    self.disputes[dispute_id].phase = rules.DISPUTE_STEPS_POSTED
    self.disputes[dispute_id].deadline = deadline
    log StepsPosted(dispute_id=dispute_id, step_hashes=step_hashes, deadline=deadline)


@external
def name_step(dispute_id: uint256, step: uint256, step_hashes: DynArray[bytes32, MAX_STEP_HASHES], answer_commitment: bytes32):
    """
    @notice The challenger names the first step it disputes (it agrees with step_hashes[step - 1], not
            with step_hashes[step]). The jury is not drawn here: this move fixes the jury block J =
            rules.compute_jury_block(block.number), the next block, and anyone draws from blockhash(J) with
            draw_jury once J is mined. The challenger cannot know blockhash(J) when it sends this move, so
            choosing the block it names in does not let it choose its jury (issue #15: the seed used to be
            blockhash(block.number - 1), known before sending, so it could wait for a friendly one).
    @param dispute_id A dispute whose steps were posted.
    @param step 1..span_steps.
    @param step_hashes The trainer's post, as in its StepsPosted event (checked against its hash).
    @param answer_commitment rules.compute_vote_commitment(the round id, the challenger, the state hash its replay
           gives after `step`, salt), keyed by the round as in open_flag: revealed with reveal_answer once the
           jury committed.
    """
    d: Dispute = self._dispute(dispute_id)
    assert d.phase == rules.DISPUTE_STEPS_POSTED, "disputes: not awaiting a step"
    assert msg.sender == d.challenger, "disputes: only the challenger"
    assert block.number <= d.deadline, "disputes: move window closed"
    assert keccak256(abi_encode(step_hashes)) == d.steps_hash, "disputes: not the posted steps"
    assert step >= 1 and step <= d.span_steps, "disputes: no such step"
    jury_block: uint256 = rules.compute_jury_block(block.number)
    self.disputes[dispute_id].step = step
    self.disputes[dispute_id].agreed_hash = step_hashes[step - 1]
    self.disputes[dispute_id].claimed_hash = step_hashes[step]
    self.disputes[dispute_id].challenger_commitment = self._checked_commitment(answer_commitment)
    self.disputes[dispute_id].jury_block = jury_block
    self.disputes[dispute_id].phase = rules.DISPUTE_STEP_NAMED
    self.disputes[dispute_id].deadline = 0
    log StepNamed(dispute_id=dispute_id, step=step, agreed_hash=step_hashes[step - 1], claimed_hash=step_hashes[step],
                  jury_block=jury_block)


@external
def draw_jury(dispute_id: uint256) -> bool:
    """
    @notice Anyone: draw the jury of a dispute whose step was named, once its jury block J is mined
            (block.number > J), from rules.compute_jury_seed(blockhash(J), dispute_id): every opted-in
            verifier eligible at the open block except the parties, up to rules.JURY_MAX, each reserving
            min(seat, free stake). The jury's commit window starts here: commit deadline = this block +
            commit_verdicts_window, reveal deadline = that + reveal_verdicts_window.
            If nobody drew while blockhash(J) was readable (rules.is_jury_block_expired: more than
            rules.BLOCKHASH_HORIZON blocks ago), this call does not revert: it re-targets J to
            rules.compute_jury_block(block.number), emits JuryBlockRetargeted and returns False (a revert
            would undo the re-target, and the dispute would be stuck with an unreadable seed); a call after
            the new J is mined draws. A re-target gives a fresh seed that nobody knew when it was sent, so
            letting J expire buys a colluder no known seed, only a redraw nobody else prevented in 256 blocks.
    @param dispute_id A dispute in phase rules.DISPUTE_STEP_NAMED.
    @return True if the jury was drawn, False if J was re-targeted.
    """
    d: Dispute = self._dispute(dispute_id)
    assert d.phase != rules.DISPUTE_JURY, "disputes: jury already drawn"
    assert d.phase == rules.DISPUTE_STEP_NAMED, "disputes: not awaiting a jury draw"
    assert block.number > d.jury_block, "disputes: jury block not mined yet"
    if rules.is_jury_block_expired(d.jury_block, block.number):
        jury_block: uint256 = rules.compute_jury_block(block.number)
        self.disputes[dispute_id].jury_block = jury_block
        log JuryBlockRetargeted(dispute_id=dispute_id, expired_block=d.jury_block, jury_block=jury_block)
        return False
    p: rules.TaskParams = self._params(d.task_id)
    # every opted-in verifier eligible at the open block except the parties (the trainer is no verifier)
    seed: bytes32 = rules.compute_jury_seed(blockhash(d.jury_block), dispute_id)
    drawn: DynArray[address, MAX_COMMITTEE] = staticcall self.stake_manager.draw_committee(seed, d.eligible_block, rules.JURY_MAX + 1, d.task_id)
    seat: uint256 = staticcall self.stake_manager.min_stake(rules.VERIFIER)
    jury: DynArray[address, MAX_COMMITTEE] = []
    for v: address in drawn:
        if v != d.challenger and len(jury) < rules.JURY_MAX:
            # a juror busy in other rounds reserves what it has free: skipping it would let a trainer steer
            # the jury by keeping verifiers busy (as TrainingRounds' seats, #13 attack 3)
            reservation: uint256 = min(seat, staticcall self.stake_manager.free_stake(v))
            if reservation > 0:
                extcall self.stake_manager.reserve(v, reservation)
            self.juror_reservation[dispute_id][v] = reservation
            jury.append(v)
    self.jury[dispute_id] = jury
    self.juror_seat[dispute_id] = seat
    commit_deadline: uint256 = block.number + p.commit_verdicts_window
    reveal_deadline: uint256 = commit_deadline + p.reveal_verdicts_window
    self.disputes[dispute_id].phase = rules.DISPUTE_JURY
    self.disputes[dispute_id].deadline = commit_deadline
    self.disputes[dispute_id].reveal_deadline = reveal_deadline
    log JuryDrawn(dispute_id=dispute_id, jury_block=d.jury_block, seed=seed, jury=jury,
                  commit_deadline=commit_deadline, reveal_deadline=reveal_deadline)
    return True


@external
def commit_vote(dispute_id: uint256, commitment: bytes32):
    """
    @notice A juror commits rules.compute_vote_commitment(dispute_id, juror, answer, salt): answer = the state
            hash replaying `step` steps from the span's start checkpoint gives (a flag dispute: open_flag's
            answers), or empty to abstain (it could not compute one).
    @param dispute_id A dispute in its jury phase.
    @param commitment The vote's commitment.
    """
    assert self.disputes[dispute_id].phase == rules.DISPUTE_JURY, "disputes: not voting"
    assert block.number <= self.disputes[dispute_id].deadline, "disputes: commit window closed"
    assert msg.sender in self.jury[dispute_id], "disputes: not a juror"
    assert self.vote_commitments[dispute_id][msg.sender] == empty(bytes32), "disputes: already committed"
    assert commitment != empty(bytes32), "disputes: empty commitment"
    self.vote_commitments[dispute_id][msg.sender] = commitment
    self.disputes[dispute_id].n_committed += 1
    log VoteCommitted(dispute_id=dispute_id, juror=msg.sender, commitment=commitment)


@external
def reveal_vote(dispute_id: uint256, answer: bytes32, salt: bytes32):
    """
    @notice A juror opens its commitment, once every juror committed or the commit window closed. An answer
            that is the trainer's counts for it now; any other waits for resolve, which compares it with the
            challenger's revealed answer.
    @param dispute_id A dispute in its jury phase.
    @param answer The committed answer (empty: an abstention).
    @param salt The commitment's salt.
    """
    d: Dispute = self._dispute(dispute_id)
    self._assert_reveal_open(dispute_id, d)
    commitment: bytes32 = self.vote_commitments[dispute_id][msg.sender]
    assert commitment != empty(bytes32), "disputes: no commitment"
    assert self.votes[dispute_id][msg.sender] == rules.VOTE_NONE, "disputes: already revealed"
    assert rules.compute_vote_commitment(dispute_id, msg.sender, answer, salt) == commitment, "disputes: reveal does not match commitment"
    side: uint256 = rules.compute_vote_side(answer, d.claimed_hash, empty(bytes32))  # the challenger's is unknown yet
    self.answers[dispute_id][msg.sender] = answer
    self.votes[dispute_id][msg.sender] = side
    self.disputes[dispute_id].n_revealed += 1
    if side == rules.VOTE_TRAINER:
        self.disputes[dispute_id].votes_trainer += 1
    log VoteRevealed(dispute_id=dispute_id, juror=msg.sender, answer=answer, trainer_right=side == rules.VOTE_TRAINER)


@external
def reveal_answer(dispute_id: uint256, answer: bytes32, salt: bytes32):
    """
    @notice The challenger opens the answer it committed with name_step (open_flag), in the jury's reveal
            window: after every juror committed, so nobody could copy it into a vote. Not revealed by the
            reveal deadline: no vote counts for the challenger (the trainer wins).
    @param dispute_id A dispute in its jury phase.
    @param answer The committed answer (not empty).
    @param salt The commitment's salt.
    """
    d: Dispute = self._dispute(dispute_id)
    assert msg.sender == d.challenger, "disputes: only the challenger"
    self._assert_reveal_open(dispute_id, d)
    assert d.challenger_answer == empty(bytes32), "disputes: answer already revealed"
    assert answer != empty(bytes32), "disputes: empty answer"
    assert rules.compute_vote_commitment(d.round_id, msg.sender, answer, salt) == d.challenger_commitment, "disputes: reveal does not match commitment"
    self.disputes[dispute_id].challenger_answer = answer
    log ChallengerAnswerRevealed(dispute_id=dispute_id, answer=answer)


@external
def resolve(dispute_id: uint256):
    """
    @notice Anyone: settle a dispute once its pending move is due. The trainer loses if it missed its
            post, the challenger if it missed naming a step; otherwise the jury decides (no conviction
            without a strict majority of the revealed votes), once its vote is final: the appeal window
            after its reveal deadline passed (rules.compute_appeal_deadline) and nobody appealed (an appealed
            dispute is settled by Appeals.resolve); never while the jury is undrawn (nobody's move is late then:
            anyone may call draw_jury). Pays, slashes, and tells TrainingRounds (resolve).
    @param dispute_id An open dispute.
    """
    d: Dispute = self._dispute(dispute_id)
    assert d.phase != rules.DISPUTE_APPEALED, "disputes: appealed (Appeals.resolve settles it)"
    assert d.phase >= rules.DISPUTE_OPENED and d.phase < rules.DISPUTE_RESOLVED, "disputes: not open"
    p: rules.TaskParams = self._params(d.task_id)
    trainer_won: bool = False
    reason: String[32] = "jury"
    if d.phase == rules.DISPUTE_OPENED:
        assert block.number > d.deadline, "disputes: trainer may still post"
        reason = "trainer missed its move"
    elif d.phase == rules.DISPUTE_STEPS_POSTED:
        assert block.number > d.deadline, "disputes: challenger may still name"
        trainer_won = True
        reason = "challenger missed its move"
    else:
        # no move is missed while the jury is undrawn: anyone may draw it (draw_jury re-targets an expired seed)
        assert d.phase != rules.DISPUTE_STEP_NAMED, "disputes: jury not drawn yet (draw_jury)"
        # the loser may appeal until the appeal deadline (Appeals.appeal): the vote is final only after it
        assert block.number > rules.compute_appeal_deadline(d.reveal_deadline, p.reveal_verdicts_window), "disputes: jury vote not final (appeal window)"
        trainer_won = rules.is_trainer_winner(d.votes_trainer, self._count_challenger_votes(dispute_id, d))
    self._settle(dispute_id, d, trainer_won, p, empty(address), reason)


@external
def mark_appealed(dispute_id: uint256):
    """
    @notice Appeals only (Appeals.appeal checked the appeal window and the appellant): the jury vote of `dispute_id`
            is appealed to the whole verifier set; it waits in phase DISPUTE_APPEALED for settle_appealed (Appeals
            emits DisputeAppealed).
    @param dispute_id A dispute in its jury phase.
    """
    assert msg.sender == appeals, "disputes: only Appeals"
    assert self.disputes[dispute_id].phase == rules.DISPUTE_JURY, "disputes: not a jury vote"
    self.disputes[dispute_id].phase = rules.DISPUTE_APPEALED


@external
def settle_appealed(dispute_id: uint256, trainer_won: bool, slashed_to: address):
    """
    @notice Appeals only, once its appeal jury decided: settle the appealed dispute by the final verdict exactly as
            resolve would have with it (its jury's votes counted, the side of the verdict paid, the other side
            slashed; the loser's pot pays), and tell TrainingRounds.
    @param dispute_id A dispute in phase DISPUTE_APPEALED.
    @param trainer_won The final verdict (the appeal jury's).
    @param slashed_to Who receives the first jury's slashes (Appeals: a winning appellant; empty: the treasury).
    """
    assert msg.sender == appeals, "disputes: only Appeals"
    d: Dispute = self._dispute(dispute_id)
    assert d.phase == rules.DISPUTE_APPEALED, "disputes: not appealed"
    self._count_challenger_votes(dispute_id, d)
    self._settle(dispute_id, d, trainer_won, self._params(d.task_id), slashed_to, "appeal")


# ================================================================ views

@external
@view
def jury_of(dispute_id: uint256) -> DynArray[address, MAX_COMMITTEE]:
    """
    @notice The jury of a dispute whose jury was drawn (empty before draw_jury).
    """
    return self.jury[dispute_id]


@external
@view
def bond_for(task_verifier_reward: uint256) -> uint256:
    """
    @notice The bond an `open` in this block would need for a task with this verifier reward.
    """
    return rules.compute_challenger_bond(task_verifier_reward, block.basefee)


@external
@view
def watch_bond_for(round_id: uint256, task_verifier_reward: uint256) -> uint256:
    """
    @notice The bond an `open_watch` on `round_id` in this block would need (doubled per earlier watch of the round).
    """
    return rules.compute_watch_bond(rules.compute_challenger_bond(task_verifier_reward, block.basefee), self.watch_count[round_id])


# ================================================================ internals of the moves

@internal
@pure
def _checked_commitment(answer_commitment: bytes32) -> bytes32:
    assert answer_commitment != empty(bytes32), "disputes: empty answer commitment"
    return answer_commitment


@internal
@view
def _flag_answer(round_id: uint256, flag: uint256) -> bytes32:
    """The trainer's answer in a flag dispute (open_flag's NatSpec): what it committed to on chain."""
    if flag == FLAG_DATA_ROOT:
        return (staticcall self.rounds.rounds(round_id)).data_root
    if flag == FLAG_STARTS:
        return keccak256(abi_encode(staticcall self.rounds.start_hashes_of(round_id)))
    return (staticcall self.rounds.rounds(round_id)).final_hash


@internal
@view
def _assert_reveal_open(dispute_id: uint256, d: Dispute):
    """Answers open once every juror committed or the commit window closed, until the reveal deadline."""
    assert d.phase == rules.DISPUTE_JURY, "disputes: not voting"
    assert d.n_committed == len(self.jury[dispute_id]) or block.number > d.deadline, "disputes: jury still committing"
    assert block.number <= d.reveal_deadline, "disputes: reveal window closed"


@internal
def _count_challenger_votes(dispute_id: uint256, d: Dispute) -> uint256:
    """Each revealed juror's final side (rules.compute_vote_side with the challenger's answer, empty if it never
    revealed); returns how many are the challenger's and records it."""
    n: uint256 = 0
    if d.challenger_answer != empty(bytes32):
        for juror: address in self.jury[dispute_id]:
            if self.votes[dispute_id][juror] == rules.VOTE_ABSTAIN:
                side: uint256 = rules.compute_vote_side(self.answers[dispute_id][juror], d.claimed_hash, d.challenger_answer)
                if side == rules.VOTE_CHALLENGER:
                    self.votes[dispute_id][juror] = side
                    n += 1
    self.disputes[dispute_id].votes_challenger = n
    return n


@internal
def _convict_at_once(round_id: uint256, reason: String[32]) -> uint256:
    """A conviction with no span and no jury (a missed or provably false boundary post): recorded as a dispute by
    the caller, resolved at once against the trainer; the fraud slash pays the caller its fraud_reward_bps share
    (no gas refund: the call is cheap) and the rest goes to the treasury."""
    trainer: address = empty(address)
    task_id: uint256 = 0
    commit_block: uint256 = 0
    assert not self.round_convicted[round_id], "disputes: trainer already convicted"
    trainer, task_id, commit_block = extcall self.rounds.open_dispute(round_id, msg.sender, NO_CHECK)
    dispute_id: uint256 = self.dispute_count + 1
    self.dispute_count = dispute_id
    d: Dispute = Dispute(
        round_id=round_id, task_id=task_id, trainer=trainer, challenger=msg.sender, check_index=NO_CHECK,
        span_steps=0, start_hash=empty(bytes32), end_hash=empty(bytes32), phase=rules.DISPUTE_RESOLVED,
        eligible_block=commit_block, deadline=block.number, reveal_deadline=block.number, gas_price=0, bond=0,
        steps_hash=empty(bytes32), step=0, agreed_hash=empty(bytes32), claimed_hash=empty(bytes32), jury_block=0,
        n_committed=0, votes_trainer=0, votes_challenger=0, trainer_won=False,
        challenger_commitment=empty(bytes32), challenger_answer=empty(bytes32), n_revealed=0,
    )
    self.disputes[dispute_id] = d
    log DisputeOpened(dispute_id=dispute_id, round_id=round_id, challenger=msg.sender, trainer=trainer,
                      check_index=NO_CHECK, span_steps=0, bond=0, deadline=block.number)
    self._pay_from_trainer(dispute_id, d, 0, self._params(task_id))
    extcall self.rounds.resolve(round_id, False)
    log DisputeResolved(dispute_id=dispute_id, round_id=round_id, trainer_won=False, reason=reason)
    return dispute_id


# ================================================================ settlement

@internal
def _settle(dispute_id: uint256, d: Dispute, trainer_won: bool, p: rules.TaskParams, slashed_to: address, reason: String[32]):
    """The end of every dispute (resolve, settle_appealed): record the verdict, settle the jury, the loser pays,
    TrainingRounds is told."""
    self.disputes[dispute_id].phase = rules.DISPUTE_RESOLVED
    self.disputes[dispute_id].trainer_won = trainer_won
    n_majority: uint256 = self._settle_jury(dispute_id, trainer_won, p, slashed_to)
    if trainer_won:
        self._pay_from_bond(dispute_id, d, n_majority, p)
    else:
        self._pay_from_trainer(dispute_id, d, n_majority, p)
    extcall self.rounds.resolve(d.round_id, trainer_won)
    log DisputeResolved(dispute_id=dispute_id, round_id=d.round_id, trainer_won=trainer_won, reason=reason)


@internal
def _settle_jury(dispute_id: uint256, trainer_won: bool, p: rules.TaskParams, slashed_to: address) -> uint256:
    """Release each juror's reservation less rules.compute_juror_slash_bps of it (an answer on the losing side,
    no answer revealed), slashed to `slashed_to` (empty: the treasury). Returns how many voted with the winner."""
    winning: uint256 = rules.VOTE_TRAINER if trainer_won else rules.VOTE_CHALLENGER
    n_majority: uint256 = 0
    for juror: address in self.jury[dispute_id]:
        seat: uint256 = self.juror_reservation[dispute_id][juror]
        vote: uint256 = self.votes[dispute_id][juror]
        if vote == winning:
            n_majority += 1
        amount: uint256 = rules.compute_slash(seat, rules.compute_juror_slash_bps(vote, winning, p.verifier_slash_bps, p.no_show_slash_bps))
        extcall self.stake_manager.settle_reserved(juror, seat, amount, slashed_to)
        if amount > 0:
            log DisputePaid(dispute_id=dispute_id, who=juror, amount=amount, reason="juror slashed")
    return n_majority


@internal
def _pay_from_bond(dispute_id: uint256, d: Dispute, n_majority: uint256, p: rules.TaskParams):
    """The challenger lost: its bond pays the majority jurors, then the trainer's gas and the rest to the trainer; a
    watcher's rest is burned (credited to the zero address, which nobody can claim: see open_watch). An availability
    challenge's rest goes back to the challenger (rules.is_availability_challenge: the trainer served only the jury)."""
    per_juror: uint256 = 0
    to_trainer: uint256 = 0
    rest: uint256 = 0
    watched: bool = d.check_index >= len(staticcall self.rounds.end_hashes_of(d.round_id))
    unavailable: bool = rules.is_availability_challenge(self.flag_of[dispute_id], d.challenger_answer)
    share: uint256 = 0 if watched or unavailable else rules.BPS
    per_juror, to_trainer, rest = rules.compute_dispute_payouts(d.bond, n_majority, p.verifier_reward_wei, 0 if unavailable else rules.DEFENDER_GAS_ALLOWANCE * d.gas_price, share)
    if per_juror > 0:
        winning: uint256 = rules.VOTE_TRAINER
        for juror: address in self.jury[dispute_id]:
            if self.votes[dispute_id][juror] == winning:
                self._credit(dispute_id, juror, per_juror, "juror reward")
    self._credit(dispute_id, d.trainer, to_trainer, "bond to the trainer")
    if unavailable:
        self._credit(dispute_id, d.challenger, rest, "availability bond back")
    else:
        self._credit(dispute_id, empty(address), rest, "watch bond burned")


@internal
def _pay_from_trainer(dispute_id: uint256, d: Dispute, n_majority: uint256, p: rules.TaskParams):
    """The trainer lost: the challenger's bond comes back; the fraud slash of the trainer's round
    reservation (once per round) pays the majority jurors, the challenger's gas and its fraud_reward_bps share."""
    self._credit(dispute_id, d.challenger, d.bond, "bond returned")
    if self.round_convicted[d.round_id]:
        return
    self.round_convicted[d.round_id] = True
    pot: uint256 = rules.compute_slash(staticcall self.rounds.trainer_reservation(d.round_id), p.trainer_slash_bps)
    per_juror: uint256 = 0
    to_challenger: uint256 = 0
    to_treasury: uint256 = 0
    per_juror, to_challenger, to_treasury = rules.compute_dispute_payouts(pot, n_majority, p.verifier_reward_wei, rules.CHALLENGER_GAS_ALLOWANCE * d.gas_price, p.fraud_reward_bps)
    if per_juror > 0:
        for juror: address in self.jury[dispute_id]:
            if self.votes[dispute_id][juror] == rules.VOTE_CHALLENGER:
                extcall self.stake_manager.slash_reserved(d.trainer, per_juror, juror)
                log DisputePaid(dispute_id=dispute_id, who=juror, amount=per_juror, reason="juror reward")
    if to_challenger > 0:
        extcall self.stake_manager.slash_reserved(d.trainer, to_challenger, d.challenger)
        log DisputePaid(dispute_id=dispute_id, who=d.challenger, amount=to_challenger, reason="fraud reward")
    if to_treasury > 0:
        extcall self.stake_manager.slash_reserved(d.trainer, to_treasury, empty(address))
    log DisputePaid(dispute_id=dispute_id, who=d.trainer, amount=pot, reason="fraud slash")


@internal
def _credit(dispute_id: uint256, who: address, amount: uint256, reason: String[32]):
    """Pay held wei into `who`'s claimable balance in StakeManager (pull payments: nobody can block a resolve)."""
    if amount == 0:
        return
    extcall self.stake_manager.credit(who, value=amount)
    log DisputePaid(dispute_id=dispute_id, who=who, amount=amount, reason=reason)


@internal
@view
def _dispute(dispute_id: uint256) -> Dispute:
    """The dispute's record (one copy of the load: EIP-170 room)."""
    return self.disputes[dispute_id]


@internal
@view
def _params(task_id: uint256) -> rules.TaskParams:
    """The task's parameters (one copy of the call: EIP-170 room)."""
    return staticcall self.registry.task_params(task_id)
