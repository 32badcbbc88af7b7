# pragma version 0.4.3
"""
@title ProtocolRules
@notice The pure rules of lib/rules.vy as external functions, under node/protocol.py's
        names: the very code TaskRegistry and TrainingRounds compile in, callable by tests,
        tools and auditors (tests/contracts hold it against the Python reference on random
        inputs). No state; not part of a deployment's wiring.
"""

from .lib import rules

MAX_CHECKED: constant(uint256) = rules.MAX_CHECKED
MAX_DEPTH: constant(uint256) = rules.MAX_DEPTH
MAX_DRAW: constant(uint256) = rules.MAX_DRAW


@external
@pure
def compute_leaf(index: uint256, leaf_value: bytes32) -> bytes32:
    """
    @notice Merkle leaf: keccak256(abi.encode(index, value)).
    """
    return rules.compute_leaf(index, leaf_value)


@external
@pure
def is_valid_merkle_proof(root: bytes32, n_leaves: uint256, index: uint256, leaf_value: bytes32, proof: DynArray[bytes32, MAX_DEPTH]) -> bool:
    """
    @notice Whether `proof` shows `value` is leaf `index` of a tree of `n_leaves` with `root`.
    """
    return rules.is_valid_merkle_proof(root, n_leaves, index, leaf_value, proof)


@external
@pure
def compute_seed(block_hash: bytes32, round_id: uint256) -> bytes32:
    """
    @notice Round seed: keccak256(abi.encode(block_hash, round_id)).
    """
    return rules.compute_seed(block_hash, round_id)


@external
@pure
def compute_samples(seed: bytes32, n_segments: uint256, n_samples: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice Start leaves of the checks, ascending (s or s+1; the last check ends at leaf M).
    """
    return rules.compute_samples(seed, n_segments, n_samples)


@external
@pure
def compute_check_ends(samples: DynArray[uint256, MAX_CHECKED], n_segments: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice End leaf of each check of compute_samples: start + 1, except the last: M.
    """
    return rules.compute_check_ends(samples, n_segments)


@external
@pure
def compute_draw(seed: bytes32, domain: uint256, pool_size: uint256, n: uint256) -> DynArray[uint256, MAX_DRAW]:
    """
    @notice `n` distinct indices of 0..pool_size-1 by a partial Fisher-Yates shuffle, in draw order.
    """
    return rules.compute_draw(seed, domain, pool_size, n)


@external
@pure
def compute_committee_indices(seed: bytes32, n_active: uint256, committee_size: uint256) -> DynArray[uint256, MAX_DRAW]:
    """
    @notice Positions in the active verifier set of the committee (min(c, n_active) members).
    """
    return rules.compute_committee_indices(seed, n_active, committee_size)


@external
@pure
def compute_verdict_commitment(round_id: uint256, verifier: address, end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, starts_ok: bool, salt: bytes32) -> bytes32:
    """
    @notice keccak256(abi.encode(round_id, verifier, end_hashes, data_root_ok, starts_ok, salt)).
    """
    return rules.compute_verdict_commitment(round_id, verifier, end_hashes, data_root_ok, starts_ok, salt)


@external
@pure
def compute_final_commitment(round_id: uint256, verifier: address, final_ok: bool, salt: bytes32) -> bytes32:
    """
    @notice keccak256(abi.encode(round_id, verifier, final_ok, salt)), the verdict's salt.
    """
    return rules.compute_final_commitment(round_id, verifier, final_ok, salt)


@external
@pure
def is_contradicting(trainer_end_hashes: DynArray[bytes32, MAX_CHECKED], end_hashes: DynArray[bytes32, MAX_CHECKED], data_root_ok: bool, starts_ok: bool, final_ok: bool, member_index: uint256, committee_size: uint256) -> bool:
    """
    @notice Whether a verdict contradicts the trainer (a flag is false or an end hash of a check the member
            holds differs: every check for member 0 of 1, the dealt ones with Disputes).
    """
    assert len(end_hashes) == len(trainer_end_hashes), "rules: wrong number of ends"
    assert member_index < committee_size, "rules: not a committee position"
    return rules.is_contradicting(trainer_end_hashes, end_hashes, data_root_ok, starts_ok, final_ok, member_index, committee_size)


@external
@pure
def compute_tally(n_revealed: uint256, n_contradicting: uint256, quorum: uint256) -> uint256:
    """
    @notice Outcome of the votes: 3 void (< quorum reveals), 2 fraud (strict majority
            contradicts), else 1 accepted.
    """
    return rules.compute_tally(n_revealed, n_contradicting, quorum)


@external
@pure
def compute_slash(stake: uint256, bps: uint256) -> uint256:
    """
    @notice stake * bps // 10000.
    """
    return rules.compute_slash(stake, bps)


@external
@pure
def compute_fraud_split(slashed: uint256, reward_bps: uint256, n_majority: uint256) -> (uint256, uint256):
    """
    @notice Split of a fraud slash: (per majority verifier, to treasury); dust to treasury.
    """
    return rules.compute_fraud_split(slashed, reward_bps, n_majority)


@external
@pure
def compute_round_cost(trainer_reward: uint256, verifier_reward: uint256, committee_size: uint256) -> uint256:
    """
    @notice Most an accepted round can pay from the pool.
    """
    return rules.compute_round_cost(trainer_reward, verifier_reward, committee_size)


@external
@pure
def check_task_params(params: rules.TaskParams) -> bool:
    """
    @notice True if `params` is within the bounds create_task accepts; reverts with the bound otherwise.
    """
    rules.check_task_params(params)
    return True


@external
@pure
def check_task_bounds(params: rules.TaskParams, bounds: rules.TaskBounds) -> bool:
    """
    @notice True if `params` is inside the deployment bounds `bounds`; reverts with the bound otherwise.
    """
    rules.check_task_bounds(params, bounds)
    return True


@external
@pure
def compute_trace_key(task_id: uint256, base_hash: bytes32, trace_root: bytes32) -> bytes32:
    """
    @notice Key under which a trace's first seed is kept (rules.compute_trace_key).
    """
    return rules.compute_trace_key(task_id, base_hash, trace_root)


@external
@pure
def compute_trainer_miss_bps(trainer_slash_bps: uint256, no_show_slash_bps: uint256) -> uint256:
    """
    @notice What a trainer's missed deadline costs, in bps of its stake (rules.compute_trainer_miss_bps).
    """
    return rules.compute_trainer_miss_bps(trainer_slash_bps, no_show_slash_bps)


@external
@pure
def compute_committee_candidate(seed: bytes32, attempt: uint256, n_entries: uint256) -> uint256:
    """
    @notice Entry index tried by one attempt of a committee draw (rules.compute_committee_candidate).
    """
    return rules.compute_committee_candidate(seed, attempt, n_entries)


# ---------------------------------------------------------------- disputes (issue #15)

@external
@pure
def compute_dealt_count(n_samples: uint256, committee_size: uint256, n_segments: uint256) -> uint256:
    """
    @notice Checks a round with Disputes draws: min(c·s, (M - 1) // 2).
    """
    return rules.compute_dealt_count(n_samples, committee_size, n_segments)


@external
@pure
def compute_dealt_samples(seed: bytes32, n_segments: uint256, n_samples: uint256, committee_size: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice One draw of compute_dealt_count pairwise non-adjacent checks.
    """
    return rules.compute_dealt_samples(seed, n_segments, n_samples, committee_size)


@external
@pure
def compute_member_checks(n_checks: uint256, committee_size: uint256, member_index: uint256) -> DynArray[uint256, MAX_CHECKED]:
    """
    @notice Positions of a dealt check list held by committee member `member_index`.
    """
    return rules.compute_member_checks(n_checks, committee_size, member_index)


@external
@pure
def compute_challenger_bond(juror_reward: uint256, gas_price: uint256) -> uint256:
    """
    @notice A challenger's bond: a full jury's pay plus one reward, and the trainer's dispute gas.
    """
    return rules.compute_challenger_bond(juror_reward, gas_price)


@external
@pure
def compute_jury_seed(block_hash: bytes32, dispute_id: uint256) -> bytes32:
    """
    @notice keccak256(abi.encode(block_hash, dispute_id, DOMAIN_JURY)).
    """
    return rules.compute_jury_seed(block_hash, dispute_id)


@external
@pure
def compute_jury_block(block_number: uint256) -> uint256:
    """
    @notice The block whose hash seeds the jury of a step named (or a draw re-targeted) in `block_number`.
    """
    return rules.compute_jury_block(block_number)


@external
@pure
def is_jury_block_expired(jury_block: uint256, block_number: uint256) -> bool:
    """
    @notice Whether blockhash(jury_block) is past the horizon in `block_number` (a draw re-targets).
    """
    return rules.is_jury_block_expired(jury_block, block_number)


@external
@pure
def compute_vote_commitment(dispute_id: uint256, voter: address, answer: bytes32, salt: bytes32) -> bytes32:
    """
    @notice keccak256(abi.encode(dispute_id, voter, answer, salt)): a juror's answer (the challenger's: keyed by the round id).
    """
    return rules.compute_vote_commitment(dispute_id, voter, answer, salt)


@external
@pure
def compute_merkle_root(values: DynArray[bytes32, rules.MAX_SEGMENTS + 1]) -> bytes32:
    """
    @notice The Merkle root over leaves compute_leaf(i, values[i]), zero-padded to a power of two (a trace root).
    """
    return rules.compute_merkle_root(values)


@external
@pure
def compute_watch_bond(challenger_bond: uint256, n_watches: uint256) -> uint256:
    """
    @notice A watcher's bond: the challenger's doubled for every watch dispute already opened on the round.
    """
    return rules.compute_watch_bond(challenger_bond, n_watches)


@external
@pure
def compute_vote_side(answer: bytes32, trainer_answer: bytes32, challenger_answer: bytes32) -> uint256:
    """
    @notice Whose side a revealed answer is on: 1 the trainer's, 2 the challenger's (empty: not revealed), 3 neither (abstains).
    """
    return rules.compute_vote_side(answer, trainer_answer, challenger_answer)


@external
@pure
def is_availability_challenge(flag: uint256, challenger_answer: bytes32) -> bool:
    """
    @notice A FLAG_STARTS / FLAG_FINAL dispute whose challenger answered ANSWER_UNAVAILABLE (its bond's rest comes back if it loses).
    """
    return rules.is_availability_challenge(flag, challenger_answer)


@external
@pure
def answer_unavailable() -> bytes32:
    """
    @notice rules.ANSWER_UNAVAILABLE: a flag dispute's answer for checkpoints not served.
    """
    return rules.ANSWER_UNAVAILABLE


@external
@pure
def is_valid_span_hashes(step_hashes: DynArray[bytes32, rules.MAX_SPAN_STEPS + 1], span_steps: uint256, start_hash: bytes32, end_hash: bytes32) -> bool:
    """
    @notice Whether a trainer's post holds span_steps + 1 hashes from the span's start leaf to its end leaf.
    """
    return rules.is_valid_span_hashes(step_hashes, span_steps, start_hash, end_hash)


@external
@pure
def is_trainer_winner(votes_trainer: uint256, votes_challenger: uint256) -> bool:
    """
    @notice No conviction without a strict majority of the revealed votes.
    """
    return rules.is_trainer_winner(votes_trainer, votes_challenger)


@external
@pure
def compute_dispute_outcome(n_revealed: uint256, quorum: uint256, convicted: bool) -> uint256:
    """
    @notice A round's outcome with a disputes contract: 2 fraud if convicted, 3 void below quorum, else 1.
    """
    return rules.compute_dispute_outcome(n_revealed, quorum, convicted)


@external
@pure
def compute_dispute_payouts(pot: uint256, n_majority: uint256, juror_reward: uint256, gas_refund: uint256, winner_share_bps: uint256) -> (uint256, uint256, uint256):
    """
    @notice (each majority juror, the winner, the treasury) out of the loser's pot.
    """
    return rules.compute_dispute_payouts(pot, n_majority, juror_reward, gas_refund, winner_share_bps)


@external
@pure
def compute_appeal_draw_attempts(n_entries: uint256, n_wanted: uint256) -> uint256:
    """
    @notice Steps of an appeal jury draw that sample entries at random (rules.compute_appeal_draw_attempts).
    """
    return rules.compute_appeal_draw_attempts(n_entries, n_wanted)


@external
@pure
def compute_appeal_candidate(seed: bytes32, step: uint256, n_entries: uint256, attempts: uint256) -> uint256:
    """
    @notice Entry index read by one step of an appeal jury draw (rules.compute_appeal_candidate).
    """
    return rules.compute_appeal_candidate(seed, step, n_entries, attempts)


@external
@pure
def compute_appeal_deadline(reveal_deadline: uint256, reveal_verdicts_window: uint256) -> uint256:
    """
    @notice Last block at which a jury vote whose reveal window closed at `reveal_deadline` may be appealed.
    """
    return rules.compute_appeal_deadline(reveal_deadline, reveal_verdicts_window)


@external
@pure
def compute_appeal_bond(juror_reward: uint256, gas_price: uint256) -> uint256:
    """
    @notice An appellant's bond: a full appeal jury's pay plus one reward, and an appeal's gas.
    """
    return rules.compute_appeal_bond(juror_reward, gas_price)


@external
@pure
def compute_juror_slash_bps(vote: uint256, winning: uint256, verifier_slash_bps: uint256, no_show_slash_bps: uint256) -> uint256:
    """
    @notice The share of a juror's seat it loses once the verdict is `winning`: 0, no_show or verifier slash bps.
    """
    return rules.compute_juror_slash_bps(vote, winning, verifier_slash_bps, no_show_slash_bps)


# ---------------------------------------------------------------- epochs (#14)

@external
@pure
def is_epoch_task(p: rules.TaskParams) -> bool:
    """
    @notice Whether Epochs runs the task: more than one slot or a non-identity outer step.
    """
    return rules.is_epoch_task(p)


@external
@pure
def compute_slot_span(seal_delay_blocks: uint256, reveal_window: uint256, commit_verdicts_window: uint256, reveal_verdicts_window: uint256) -> uint256:
    """
    @notice Most blocks an honest slot takes from its commit to its finalize.
    """
    return rules.compute_slot_span(seal_delay_blocks, reveal_window, commit_verdicts_window, reveal_verdicts_window)


@external
@pure
def compute_dispute_span(reveal_window: uint256, commit_verdicts_window: uint256, reveal_verdicts_window: uint256) -> uint256:
    """
    @notice Most blocks a dispute opened at its round's deadline takes until the round can finalize (one appeal included).
    """
    return rules.compute_dispute_span(reveal_window, commit_verdicts_window, reveal_verdicts_window)


@external
@pure
def compute_epoch_deadlines(opened_block: uint256, claim_window: uint256, train_window: uint256, slot_span: uint256) -> (uint256, uint256, uint256):
    """
    @notice (claim_deadline, commit_deadline, aggregate_deadline) of an epoch opened at `opened_block`.
    """
    return rules.compute_epoch_deadlines(opened_block, claim_window, train_window, slot_span)


@external
@pure
def compute_aggregate_seed(block_hash: bytes32, task_id: uint256, epoch: uint256) -> bytes32:
    """
    @notice The aggregation committee's seed.
    """
    return rules.compute_aggregate_seed(block_hash, task_id, epoch)


@external
@pure
def compute_aggregate_commitment(task_id: uint256, epoch: uint256, member: address, state_hash: bytes32, salt: bytes32) -> bytes32:
    """
    @notice A member's commitment to the aggregate state hash.
    """
    return rules.compute_aggregate_commitment(task_id, epoch, member, state_hash, salt)


@external
@pure
def compute_accepted_rank(accepted: uint256, slot: uint256) -> uint256:
    """
    @notice Accepted slots before `slot`: its trainer's turn to post.
    """
    return rules.compute_accepted_rank(accepted, slot)


@external
@pure
def compute_post_opens(commit_deadline: uint256, rank: uint256, post_window: uint256) -> uint256:
    """
    @notice First block at which the accepted slot of rank `rank` may post (committee not all committed).
    """
    return rules.compute_post_opens(commit_deadline, rank, post_window)


@external
@pure
def compute_post_deadline(commit_deadline: uint256, n_accepted: uint256, post_window: uint256) -> uint256:
    """
    @notice Last block at which any accepted slot's trainer may post.
    """
    return rules.compute_post_deadline(commit_deadline, n_accepted, post_window)


@external
@pure
def compute_ready_block(claim_deadline: uint256, aggregate_deadline: uint256, last_finalized_block: uint256, all_finalized: bool,
                        every_slot_claimed: bool) -> uint256:
    """
    @notice The block from which an epoch's set A is final (asked once the claim phase is over).
    """
    return rules.compute_ready_block(claim_deadline, aggregate_deadline, last_finalized_block, all_finalized, every_slot_claimed)


@external
@pure
def is_every_slot_claimed(n_slots: uint256, claimed: uint256) -> bool:
    """
    @notice Whether all N slots of an epoch are claimed.
    """
    return rules.is_every_slot_claimed(n_slots, claimed)


@external
@pure
def is_claim_phase_over(block_number: uint256, claim_deadline: uint256, every_slot_claimed: bool) -> bool:
    """
    @notice Whether an epoch's claim phase is over: its claim window closed, or every slot is claimed.
    """
    return rules.is_claim_phase_over(block_number, claim_deadline, every_slot_claimed)
