# pragma version 0.4.3
"""
@title Appeals
@notice The appeal of a dispute's jury vote to the whole verifier set (issue #15). A jury of at most
        rules.JURY_MAX verifiers is an honest-majority assumption with a price (a third colluding captures 15
        jurors ~8.8 %, node/protocol.py compute_jury_capture_probability); the appeal makes a captured jury's
        verdict reversible by the whole set. Within the appeal window after a jury's reveal deadline
        (rules.compute_appeal_deadline) the side that jury's count makes the loser may appeal once, posting
        rules.compute_appeal_bond; Disputes then holds the dispute (phase DISPUTE_APPEALED: not resolvable). Once
        the block after the appeal is mined anyone draws the appeal jury (draw_jury: every verifier eligible at the
        round's commit block except the parties, or a stake-weighted random sample of rules.APPEAL_JURY_MAX of them),
        which votes commit-reveal on the same answers as the first jury: both are public by now (the trainer's,
        and the challenger's revealed one), so any other answer abstains and a revealed vote's side is known at
        once. The appeal is an honest-majority judgement of the whole set, and is stated as such: an appeal
        juror could copy either party's answer without replaying.
        resolve settles: the appeal jury's verdict (rules.is_trainer_winner) is final. Its jurors are settled as a
        dispute's are (rules.compute_juror_slash_bps, slashes to the treasury) and its majority paid the task's
        verifier reward each from the appeal bond, whose rest goes back to an appellant that won, else to the other
        party; then Disputes.settle_appealed settles the first dispute by the final verdict exactly as its resolve
        would have (the loser's pot pays). The first jury's slashes go to an appellant that won (it advanced the
        appeal jury's pay to undo that jury's verdict), else to the treasury as in any dispute.
@dev An authorized caller of StakeManager (juror seats, slashes, credits); the only caller of
     Disputes.mark_appealed / settle_appealed (Disputes takes this contract's address in its constructor, and
     set_disputes names that Disputes here, once). Every rule is a function of lib/rules.vy, the same names as
     node/protocol.py.
"""

from .lib import rules

MAX_COMMITTEE: constant(uint256) = rules.MAX_COMMITTEE
APPEAL_JURY_MAX: public(constant(uint256)) = rules.APPEAL_JURY_MAX
MAX_DRAWN: constant(uint256) = rules.APPEAL_JURY_MAX + 1  # eligible_verifiers returns the jury and the challenger

interface IStakeManager:
    def reserve(who: address, amount: uint256): nonpayable
    def settle_reserved(who: address, reservation: uint256, amount: uint256, to: address) -> uint256: nonpayable
    def credit(who: address): payable
    def min_stake(role: uint256) -> uint256: view
    def free_stake(who: address) -> uint256: view
    def eligible_verifiers(at_block: uint256, task_id: uint256, seed: bytes32, limit: uint256) -> DynArray[address, MAX_DRAWN]: view

# Disputes.Dispute, field for field (its public getter's return type)
struct Dispute:
    round_id: uint256
    task_id: uint256
    trainer: address
    challenger: address
    check_index: uint256
    span_steps: uint256
    start_hash: bytes32
    end_hash: bytes32
    phase: uint256
    eligible_block: uint256
    deadline: uint256
    reveal_deadline: uint256
    gas_price: uint256
    bond: uint256
    steps_hash: bytes32
    step: uint256
    agreed_hash: bytes32
    claimed_hash: bytes32
    jury_block: uint256
    n_committed: uint256
    votes_trainer: uint256
    votes_challenger: uint256
    trainer_won: bool
    challenger_commitment: bytes32
    challenger_answer: bytes32
    n_revealed: uint256

interface IDisputes:
    def disputes(dispute_id: uint256) -> Dispute: view
    def jury_of(dispute_id: uint256) -> DynArray[address, MAX_COMMITTEE]: view
    def answers(dispute_id: uint256, juror: address) -> bytes32: view
    def appeals() -> address: view
    def mark_appealed(dispute_id: uint256): nonpayable
    def settle_appealed(dispute_id: uint256, trainer_won: bool, slashed_to: address): nonpayable

interface ITaskRegistry:
    def task_params(task_id: uint256) -> rules.TaskParams: view

struct Appeal:
    dispute_id: uint256       # the appealed dispute (Disputes)
    round_id: uint256
    task_id: uint256
    trainer: address
    challenger: address
    appellant: address        # the loser of the first jury's vote: the trainer or the challenger
    claimed_hash: bytes32     # the trainer's answer (the dispute's)
    challenger_answer: bytes32  # the challenger's answer, revealed in the dispute
    eligible_block: uint256   # jurors are drawn from the entries eligible at this block: the round's commit block
    jury_block: uint256       # J: blockhash(J) seeds the jury's sample (rules.compute_jury_block of the appeal or of a re-target)
    phase: uint256            # rules.DISPUTE_STEP_NAMED (jury not drawn yet), DISPUTE_JURY (voting), DISPUTE_RESOLVED
    deadline: uint256         # last block of the jury's commit window (0 while the jury is undrawn)
    reveal_deadline: uint256  # last block of its reveal window
    bond: uint256             # wei the appellant posted (held here until resolve)
    n_committed: uint256
    n_revealed: uint256       # jurors that revealed an answer
    votes_trainer: uint256    # revealed answers that are the trainer's
    votes_challenger: uint256 # revealed answers that are the challenger's
    trainer_won: bool         # the final verdict, once resolved

event DisputesSet:
    disputes: indexed(address)

event DisputeAppealed:
    dispute_id: indexed(uint256)
    appeal_id: indexed(uint256)
    appellant: indexed(address)
    jury_block: uint256       # draw_jury is open from jury_block + 1
    bond: uint256

event AppealJuryDrawn:
    appeal_id: indexed(uint256)
    dispute_id: indexed(uint256)
    jury_block: uint256
    seed: bytes32
    jury: DynArray[address, APPEAL_JURY_MAX]
    commit_deadline: uint256
    reveal_deadline: uint256

event AppealJuryBlockRetargeted:
    appeal_id: indexed(uint256)
    expired_block: uint256    # the jury block whose hash nobody read in time
    jury_block: uint256       # the new one: draw_jury is open from jury_block + 1

event AppealVoteCommitted:
    appeal_id: indexed(uint256)
    juror: indexed(address)
    commitment: bytes32

event AppealVoteRevealed:
    appeal_id: indexed(uint256)
    juror: indexed(address)
    answer: bytes32
    side: uint256             # rules.VOTE_TRAINER, VOTE_CHALLENGER or VOTE_ABSTAIN

event AppealResolved:
    appeal_id: indexed(uint256)
    dispute_id: indexed(uint256)
    trainer_won: bool         # the final verdict
    appellant_won: bool

event AppealPaid:
    appeal_id: indexed(uint256)
    who: indexed(address)
    amount: uint256
    reason: String[32]

disputes: public(IDisputes)
stake_manager: public(IStakeManager)
registry: public(ITaskRegistry)
deployer: address                                              # may set `disputes` once
appeal_count: public(uint256)
appeals: public(HashMap[uint256, Appeal])
appeal_of: public(HashMap[uint256, uint256])                   # dispute -> its appeal (0: not appealed)
jury: HashMap[uint256, DynArray[address, APPEAL_JURY_MAX]]
juror_seat: public(HashMap[uint256, uint256])                  # appeal -> a juror's seat (the verifier minimum)
juror_reservation: public(HashMap[uint256, HashMap[address, uint256]])  # what each juror could reserve of its seat
vote_commitments: public(HashMap[uint256, HashMap[address, bytes32]])
answers: public(HashMap[uint256, HashMap[address, bytes32]])   # each juror's revealed answer
votes: public(HashMap[uint256, HashMap[address, uint256]])     # rules.VOTE_* of each juror


@deploy
def __init__(stake_manager: address, registry: address):
    """
    @param stake_manager StakeManager (must authorize this contract).
    @param registry TaskRegistry (the task parameters).
    """
    assert stake_manager != empty(address) and registry != empty(address), "appeals: zero address"
    self.stake_manager = IStakeManager(stake_manager)
    self.registry = ITaskRegistry(registry)
    self.deployer = msg.sender


@external
def set_disputes(disputes: address):
    """
    @notice Deployer, once: the Disputes contract whose jury votes may be appealed here (it must name this
            contract as its appeals, which it takes in its constructor).
    @param disputes Disputes.
    """
    assert msg.sender == self.deployer and self.disputes.address == empty(address), "appeals: disputes already set"
    assert disputes != empty(address), "appeals: zero address"
    assert staticcall IDisputes(disputes).appeals() == self, "appeals: Disputes names another appeals contract"
    self.disputes = IDisputes(disputes)
    log DisputesSet(disputes=disputes)


# ================================================================ moves

@external
@payable
def appeal(dispute_id: uint256) -> uint256:
    """
    @notice The loser of a dispute's jury vote appeals it to the whole verifier set, after the jury's reveal
            deadline and by rules.compute_appeal_deadline, once per dispute, posting at least
            rules.compute_appeal_bond (all of msg.value is the bond). The loser is the side the jury's count makes
            it (rules.compute_vote_side over the jurors' revealed answers, rules.is_trainer_winner); a vote whose
            challenger never revealed its answer is not appealable (the challenger lost it by its own miss).
            The jury block is the next block: anyone draws the appeal jury once it is mined (draw_jury).
    @param dispute_id A dispute in its jury phase (Disputes.DISPUTE_JURY) whose reveal deadline passed.
    @return The appeal id.
    """
    assert self.appeal_of[dispute_id] == 0, "appeals: already appealed"
    d: Dispute = staticcall self.disputes.disputes(dispute_id)
    assert d.phase == rules.DISPUTE_JURY, "appeals: not a jury vote"
    p: rules.TaskParams = staticcall self.registry.task_params(d.task_id)
    assert block.number > d.reveal_deadline, "appeals: jury still voting"
    assert block.number <= rules.compute_appeal_deadline(d.reveal_deadline, p.reveal_verdicts_window), "appeals: appeal window closed"
    assert d.challenger_answer != empty(bytes32), "appeals: challenger's answer never revealed"
    loser: address = d.challenger if self._first_verdict(dispute_id, d) else d.trainer
    assert msg.sender == loser, "appeals: only the loser of the vote"
    assert msg.value >= rules.compute_appeal_bond(p.verifier_reward_wei, block.basefee), "appeals: bond below rules.compute_appeal_bond"
    appeal_id: uint256 = self.appeal_count + 1
    self.appeal_count = appeal_id
    self.appeal_of[dispute_id] = appeal_id
    jury_block: uint256 = rules.compute_jury_block(block.number)
    self.appeals[appeal_id] = Appeal(
        dispute_id=dispute_id, round_id=d.round_id, task_id=d.task_id, trainer=d.trainer, challenger=d.challenger,
        appellant=msg.sender, claimed_hash=d.claimed_hash, challenger_answer=d.challenger_answer,
        eligible_block=d.eligible_block, jury_block=jury_block, phase=rules.DISPUTE_STEP_NAMED, deadline=0,
        reveal_deadline=0, bond=msg.value, n_committed=0, n_revealed=0, votes_trainer=0, votes_challenger=0,
        trainer_won=False,
    )
    extcall self.disputes.mark_appealed(dispute_id)
    log DisputeAppealed(dispute_id=dispute_id, appeal_id=appeal_id, appellant=msg.sender, jury_block=jury_block, bond=msg.value)
    return appeal_id


@external
def draw_jury(appeal_id: uint256) -> bool:
    """
    @notice Anyone, once the appeal's jury block J is mined (block.number > J): seat every verifier eligible at
            the round's commit block except the parties, or with more of them than rules.APPEAL_JURY_MAX seats a
            stake-weighted random sample (StakeManager.eligible_verifiers from rules.compute_jury_seed(blockhash(J),
            appeal_id), the challenger dropped), each reserving min(seat, free stake) as a dispute's jurors do. The
            commit window starts here (commit_verdicts_window, then reveal_verdicts_window). An expired J is
            re-targeted as Disputes.draw_jury does (no revert; returns False).
    @param appeal_id An appeal whose jury is not drawn yet.
    @return True if the jury was drawn, False if J was re-targeted.
    """
    a: Appeal = self.appeals[appeal_id]
    assert a.phase == rules.DISPUTE_STEP_NAMED, "appeals: not awaiting a jury draw"
    assert block.number > a.jury_block, "appeals: jury block not mined yet"
    if rules.is_jury_block_expired(a.jury_block, block.number):
        jury_block: uint256 = rules.compute_jury_block(block.number)
        self.appeals[appeal_id].jury_block = jury_block
        log AppealJuryBlockRetargeted(appeal_id=appeal_id, expired_block=a.jury_block, jury_block=jury_block)
        return False
    p: rules.TaskParams = staticcall self.registry.task_params(a.task_id)
    seed: bytes32 = rules.compute_jury_seed(blockhash(a.jury_block), appeal_id)
    drawn: DynArray[address, MAX_DRAWN] = staticcall self.stake_manager.eligible_verifiers(a.eligible_block, a.task_id, seed, MAX_DRAWN)
    seat: uint256 = staticcall self.stake_manager.min_stake(rules.VERIFIER)
    jury: DynArray[address, APPEAL_JURY_MAX] = []
    for v: address in drawn:
        if v != a.challenger and len(jury) < APPEAL_JURY_MAX:
            # a juror busy elsewhere (the first jury included) reserves what it has free, as in Disputes.draw_jury
            reservation: uint256 = min(seat, staticcall self.stake_manager.free_stake(v))
            if reservation > 0:
                extcall self.stake_manager.reserve(v, reservation)
            self.juror_reservation[appeal_id][v] = reservation
            jury.append(v)
    self.jury[appeal_id] = jury
    self.juror_seat[appeal_id] = seat
    commit_deadline: uint256 = block.number + p.commit_verdicts_window
    reveal_deadline: uint256 = commit_deadline + p.reveal_verdicts_window
    self.appeals[appeal_id].phase = rules.DISPUTE_JURY
    self.appeals[appeal_id].deadline = commit_deadline
    self.appeals[appeal_id].reveal_deadline = reveal_deadline
    log AppealJuryDrawn(appeal_id=appeal_id, dispute_id=a.dispute_id, jury_block=a.jury_block, seed=seed, jury=jury,
                        commit_deadline=commit_deadline, reveal_deadline=reveal_deadline)
    return True


@external
def commit_vote(appeal_id: uint256, commitment: bytes32):
    """
    @notice An appeal juror commits rules.compute_vote_commitment(appeal_id, juror, answer, salt): answer = the
            state hash its own replay of the dispute's named step gives (a flag dispute: Disputes.open_flag's
            answers), or empty to abstain.
    @param appeal_id An appeal in its jury phase.
    @param commitment The vote's commitment.
    """
    assert self.appeals[appeal_id].phase == rules.DISPUTE_JURY, "appeals: not voting"
    assert block.number <= self.appeals[appeal_id].deadline, "appeals: commit window closed"
    assert msg.sender in self.jury[appeal_id], "appeals: not a juror"
    assert self.vote_commitments[appeal_id][msg.sender] == empty(bytes32), "appeals: already committed"
    assert commitment != empty(bytes32), "appeals: empty commitment"
    self.vote_commitments[appeal_id][msg.sender] = commitment
    self.appeals[appeal_id].n_committed += 1
    log AppealVoteCommitted(appeal_id=appeal_id, juror=msg.sender, commitment=commitment)


@external
def reveal_vote(appeal_id: uint256, answer: bytes32, salt: bytes32):
    """
    @notice An appeal juror opens its commitment, once every juror committed or the commit window closed, by the
            reveal deadline. Both parties' answers are public: its side (rules.compute_vote_side) counts at once.
    @param appeal_id An appeal in its jury phase.
    @param answer The committed answer (empty: an abstention).
    @param salt The commitment's salt.
    """
    a: Appeal = self.appeals[appeal_id]
    assert a.phase == rules.DISPUTE_JURY, "appeals: not voting"
    assert a.n_committed == len(self.jury[appeal_id]) or block.number > a.deadline, "appeals: jury still committing"
    assert block.number <= a.reveal_deadline, "appeals: reveal window closed"
    commitment: bytes32 = self.vote_commitments[appeal_id][msg.sender]
    assert commitment != empty(bytes32), "appeals: no commitment"
    assert self.votes[appeal_id][msg.sender] == rules.VOTE_NONE, "appeals: already revealed"
    assert rules.compute_vote_commitment(appeal_id, msg.sender, answer, salt) == commitment, "appeals: reveal does not match commitment"
    side: uint256 = rules.compute_vote_side(answer, a.claimed_hash, a.challenger_answer)
    self.answers[appeal_id][msg.sender] = answer
    self.votes[appeal_id][msg.sender] = side
    self.appeals[appeal_id].n_revealed += 1
    if side == rules.VOTE_TRAINER:
        self.appeals[appeal_id].votes_trainer += 1
    elif side == rules.VOTE_CHALLENGER:
        self.appeals[appeal_id].votes_challenger += 1
    log AppealVoteRevealed(appeal_id=appeal_id, juror=msg.sender, answer=answer, side=side)


@external
def resolve(appeal_id: uint256):
    """
    @notice Anyone, after the appeal's reveal deadline: the appeal jury's verdict is final (rules.is_trainer_winner:
            no conviction without a strict majority of its revealed votes). Settles the appeal jury (its majority
            paid the task's verifier reward each from the bond; rules.compute_juror_slash_bps of the others' seats
            to the treasury), pays the bond's rest to the appellant if it won, else to the other party, and has
            Disputes settle the appealed dispute by the same verdict (Disputes.settle_appealed; the first jury's
            slashes to a winning appellant, else to the treasury).
    @param appeal_id An appeal in its jury phase.
    """
    a: Appeal = self.appeals[appeal_id]
    assert a.phase != rules.DISPUTE_STEP_NAMED, "appeals: jury not drawn yet (draw_jury)"
    assert a.phase == rules.DISPUTE_JURY, "appeals: not open"
    assert block.number > a.reveal_deadline, "appeals: jury still voting"
    trainer_won: bool = rules.is_trainer_winner(a.votes_trainer, a.votes_challenger)
    appellant_won: bool = trainer_won == (a.appellant == a.trainer)
    self.appeals[appeal_id].phase = rules.DISPUTE_RESOLVED
    self.appeals[appeal_id].trainer_won = trainer_won
    p: rules.TaskParams = staticcall self.registry.task_params(a.task_id)
    winning: uint256 = rules.VOTE_TRAINER if trainer_won else rules.VOTE_CHALLENGER
    n_majority: uint256 = 0
    for juror: address in self.jury[appeal_id]:
        seat: uint256 = self.juror_reservation[appeal_id][juror]
        vote: uint256 = self.votes[appeal_id][juror]
        if vote == winning:
            n_majority += 1
        amount: uint256 = rules.compute_slash(seat, rules.compute_juror_slash_bps(vote, winning, p.verifier_slash_bps, p.no_show_slash_bps))
        extcall self.stake_manager.settle_reserved(juror, seat, amount, empty(address))
        if amount > 0:
            log AppealPaid(appeal_id=appeal_id, who=juror, amount=amount, reason="juror slashed")
    # the bond pays the majority jurors first (the task's verifier reward each), all of the rest to the winner
    per_juror: uint256 = 0
    rest: uint256 = 0
    to_treasury: uint256 = 0  # the treasury's share: 0 with a winner's share of BPS
    per_juror, rest, to_treasury = rules.compute_dispute_payouts(a.bond, n_majority, p.verifier_reward_wei, 0, rules.BPS)
    if per_juror > 0:
        for juror: address in self.jury[appeal_id]:
            if self.votes[appeal_id][juror] == winning:
                self._credit(appeal_id, juror, per_juror, "juror reward")
    other: address = a.challenger if a.appellant == a.trainer else a.trainer
    if appellant_won:
        self._credit(appeal_id, a.appellant, rest, "appeal bond back")
        extcall self.disputes.settle_appealed(a.dispute_id, trainer_won, a.appellant)
    else:
        self._credit(appeal_id, other, rest, "appeal bond to the other party")
        extcall self.disputes.settle_appealed(a.dispute_id, trainer_won, empty(address))
    log AppealResolved(appeal_id=appeal_id, dispute_id=a.dispute_id, trainer_won=trainer_won, appellant_won=appellant_won)


# ================================================================ views

@external
@view
def jury_of(appeal_id: uint256) -> DynArray[address, APPEAL_JURY_MAX]:
    """
    @notice The jury of an appeal whose jury was drawn (empty before draw_jury).
    """
    return self.jury[appeal_id]


@external
@view
def bond_for(task_verifier_reward: uint256) -> uint256:
    """
    @notice The bond an `appeal` in this block would need for a task with this verifier reward.
    """
    return rules.compute_appeal_bond(task_verifier_reward, block.basefee)


# ================================================================ internals

@internal
@view
def _first_verdict(dispute_id: uint256, d: Dispute) -> bool:
    """The first jury's verdict, as Disputes.resolve would count it: the trainer's votes counted as they were
    revealed, the challenger's are the revealed answers equal to its revealed answer (rules.compute_vote_side)."""
    n_challenger: uint256 = 0
    for juror: address in staticcall self.disputes.jury_of(dispute_id):
        answer: bytes32 = staticcall self.disputes.answers(dispute_id, juror)
        if rules.compute_vote_side(answer, d.claimed_hash, d.challenger_answer) == rules.VOTE_CHALLENGER:
            n_challenger += 1
    return rules.is_trainer_winner(d.votes_trainer, n_challenger)


@internal
def _credit(appeal_id: uint256, who: address, amount: uint256, reason: String[32]):
    """Pay held wei into `who`'s claimable balance in StakeManager (pull payments: nobody can block a resolve)."""
    if amount == 0:
        return
    extcall self.stake_manager.credit(who, value=amount)
    log AppealPaid(appeal_id=appeal_id, who=who, amount=amount, reason=reason)
