# pragma version 0.4.3
"""
@title TaskRegistry
@notice Tasks: what is trained (spec CID + hash), the canonical state each next round starts
        from, the reward pool, and the round parameters. Anyone creates and funds a task;
        only the authorized protocol contracts (TrainingRounds) pay from a pool and advance
        the canonical state. Writes every canonical version to ModelOracle.
@dev Invariant: self.balance == sum of the pools. The parameter bounds and a round's cost
     are rules of the shared module (lib/rules.vy).
"""

from .lib import rules
from .lib import wiring

initializes: wiring
exports: wiring.__interface__

MAX_PAYEES: constant(uint256) = rules.MAX_COMMITTEE + 1  # the trainer and the committee

interface IStakeManager:
    def credit(who: address): payable

interface IModelOracle:
    def record(task_id: uint256, cid: String[128], state_hash: bytes32, round_id: uint256) -> uint256: nonpayable

struct Task:
    creator: address
    spec_cid: String[128]
    spec_hash: bytes32
    canonical_hash: bytes32      # h_0 of the next round
    canonical_cid: String[128]
    pool: uint256                # wei left for rewards
    rounds_accepted: uint256
    params: rules.TaskParams

event TaskCreated:
    task_id: indexed(uint256)
    creator: indexed(address)
    spec_cid: String[128]
    spec_hash: bytes32
    genesis_hash: bytes32
    genesis_cid: String[128]
    pool: uint256
    params: rules.TaskParams

event TaskFunded:
    task_id: indexed(uint256)
    funder: indexed(address)
    amount: uint256
    pool: uint256

event PoolPaid:
    task_id: indexed(uint256)
    total: uint256               # to the payees (TrainingRounds logs RewardPaid for each)
    pool: uint256                # left after the payment

event TaskAdvanced:
    task_id: indexed(uint256)
    round_id: indexed(uint256)
    state_hash: bytes32          # the CID is in ModelOracle's CanonicalModelUpdated, same transaction
    rounds_accepted: uint256

stake_manager: public(IStakeManager)
oracle: public(IModelOracle)
bounds: public(rules.TaskBounds)         # deployment-wide bounds on task parameters (set once, here)
task_count: public(uint256)
tasks: public(HashMap[uint256, Task])


@deploy
def __init__(stake_manager: address, oracle: address, bounds: rules.TaskBounds):
    """
    @param stake_manager StakeManager (must authorize this contract: rewards are credited there).
    @param oracle ModelOracle (must authorize this contract as a writer).
    @param bounds Deployment-wide bounds every task's parameters must lie in (never changed).
    """
    assert stake_manager != empty(address) and oracle != empty(address), "registry: zero address"
    rules.check_bounds(bounds)
    self.bounds = bounds
    wiring.__init__()
    self.stake_manager = IStakeManager(stake_manager)
    self.oracle = IModelOracle(oracle)


# ---------------------------------------------------------------- anyone

@external
@payable
def create_task(spec_cid: String[128], spec_hash: bytes32, genesis_hash: bytes32, genesis_cid: String[128], params: rules.TaskParams) -> uint256:
    """
    @notice Create a task funded with msg.value; records the genesis state as version 0.
    @param spec_cid CID of the TaskSpec JSON.
    @param spec_hash keccak256 of the TaskSpec canonical JSON.
    @param genesis_hash State hash h_0 of the genesis state.
    @param genesis_cid CID of the genesis safetensors state.
    @param params Round parameters (rules.TaskParams; rules.check_task_params, and inside the
           deployment's `bounds`: rules.check_task_bounds).
    @return The task id.
    """
    assert len(spec_cid) > 0 and len(genesis_cid) > 0, "registry: empty cid"
    assert spec_hash != empty(bytes32) and genesis_hash != empty(bytes32), "registry: empty hash"
    rules.check_task_params(params)
    rules.check_task_bounds(params, self.bounds)
    assert msg.value >= rules.compute_task_round_cost(params), "registry: pool below one round"

    task_id: uint256 = self.task_count + 1
    self.task_count = task_id
    self.tasks[task_id] = Task(
        creator=msg.sender, spec_cid=spec_cid, spec_hash=spec_hash,
        canonical_hash=genesis_hash, canonical_cid=genesis_cid, pool=msg.value,
        rounds_accepted=0, params=params,
    )
    log TaskCreated(task_id=task_id, creator=msg.sender, spec_cid=spec_cid, spec_hash=spec_hash,
                    genesis_hash=genesis_hash, genesis_cid=genesis_cid, pool=msg.value, params=params)
    extcall self.oracle.record(task_id, genesis_cid, genesis_hash, 0)
    return task_id


@external
@payable
def fund_task(task_id: uint256):
    """
    @notice Add msg.value to a task's reward pool.
    @param task_id Task.
    """
    assert self.tasks[task_id].creator != empty(address), "registry: unknown task"
    assert msg.value > 0, "registry: zero value"
    self.tasks[task_id].pool += msg.value
    log TaskFunded(task_id=task_id, funder=msg.sender, amount=msg.value, pool=self.tasks[task_id].pool)


# ---------------------------------------------------------------- authorized protocol contracts

@external
def pay(task_id: uint256, payees: DynArray[address, MAX_PAYEES], amounts: DynArray[uint256, MAX_PAYEES]):
    """
    @notice Pay each of `amounts` from the task's pool to the matching payee's claimable
            balance in StakeManager; only an authorized protocol contract (TrainingRounds,
            on an accepted round: one call for the trainer and the majority).
    @param task_id Task whose pool pays.
    @param payees Beneficiaries.
    @param amounts Wei for each payee; in all at most the pool.
    """
    assert wiring.is_authorized[msg.sender], "registry: only an authorized protocol contract"
    assert len(payees) == len(amounts), "registry: payees and amounts differ in length"
    pool: uint256 = self.tasks[task_id].pool
    total: uint256 = 0
    for amount: uint256 in amounts:
        total += amount
    assert total <= pool, "registry: pool exhausted"
    self.tasks[task_id].pool = pool - total
    log PoolPaid(task_id=task_id, total=total, pool=pool - total)
    for i: uint256 in range(len(payees), bound=MAX_PAYEES):
        extcall self.stake_manager.credit(payees[i], value=amounts[i])


@external
def advance(task_id: uint256, round_id: uint256, state_hash: bytes32, cid: String[128]):
    """
    @notice Make an accepted round's final state the task's canonical state and append it to
            ModelOracle; only an authorized protocol contract.
    @param task_id Task.
    @param round_id The accepted round.
    @param state_hash Its final state hash h_M.
    @param cid CID of its final checkpoint.
    """
    assert wiring.is_authorized[msg.sender], "registry: only an authorized protocol contract"
    # no task check: an authorized contract only advances a task it ran a round of
    accepted: uint256 = self.tasks[task_id].rounds_accepted + 1
    self.tasks[task_id].canonical_hash = state_hash
    self.tasks[task_id].canonical_cid = cid
    self.tasks[task_id].rounds_accepted = accepted
    log TaskAdvanced(task_id=task_id, round_id=round_id, state_hash=state_hash, rounds_accepted=accepted)
    extcall self.oracle.record(task_id, cid, state_hash, round_id)


# ---------------------------------------------------------------- views

@external
@view
def task_params(task_id: uint256) -> rules.TaskParams:
    """
    @notice Round parameters of a task (all zero for an unknown task).
    """
    return self.tasks[task_id].params


@external
@view
def commit_inputs(task_id: uint256) -> rules.CommitInputs:
    """
    @notice What a commit checks, in one call (canonical_hash is empty for an unknown task).
    """
    return rules.CommitInputs(
        canonical_hash=self.tasks[task_id].canonical_hash,
        pool=self.tasks[task_id].pool,
        round_cost=rules.compute_round_cost(self.tasks[task_id].params.trainer_reward_wei,
                                            self.tasks[task_id].params.verifier_reward_wei,
                                            self.tasks[task_id].params.committee_size),
        n_segments=rules.compute_n_segments(self.tasks[task_id].params.steps_per_round, self.tasks[task_id].params.segment_steps),
        min_trainer_stake_wei=self.tasks[task_id].params.min_trainer_stake_wei,
        quorum=self.tasks[task_id].params.quorum,
        seal_delay_blocks=self.tasks[task_id].params.seal_delay_blocks,
    )


@external
@view
def round_windows(task_id: uint256) -> rules.RoundWindows:
    """
    @notice The draw sizes and windows a round's seal and reveals use, in one call.
    """
    return rules.RoundWindows(
        n_segments=rules.compute_n_segments(self.tasks[task_id].params.steps_per_round, self.tasks[task_id].params.segment_steps),
        samples=self.tasks[task_id].params.samples,
        committee_size=self.tasks[task_id].params.committee_size,
        seal_delay_blocks=self.tasks[task_id].params.seal_delay_blocks,
        reveal_window=self.tasks[task_id].params.reveal_window,
        commit_verdicts_window=self.tasks[task_id].params.commit_verdicts_window,
        reveal_verdicts_window=self.tasks[task_id].params.reveal_verdicts_window,
    )


@external
@view
def settlement(task_id: uint256) -> rules.Settlement:
    """
    @notice The quorum, rewards and slash fractions finalize applies, in one call.
    """
    return rules.Settlement(
        quorum=self.tasks[task_id].params.quorum,
        trainer_reward_wei=self.tasks[task_id].params.trainer_reward_wei,
        verifier_reward_wei=self.tasks[task_id].params.verifier_reward_wei,
        trainer_slash_bps=self.tasks[task_id].params.trainer_slash_bps,
        fraud_reward_bps=self.tasks[task_id].params.fraud_reward_bps,
        verifier_slash_bps=self.tasks[task_id].params.verifier_slash_bps,
        no_show_slash_bps=self.tasks[task_id].params.no_show_slash_bps,
    )


@external
@view
def n_segments(task_id: uint256) -> uint256:
    """
    @notice M = steps_per_round / segment_steps of a task (0 for an unknown task).
    """
    return rules.compute_n_segments(self.tasks[task_id].params.steps_per_round, self.tasks[task_id].params.segment_steps)


@external
@view
def round_cost(task_id: uint256) -> uint256:
    """
    @notice Most an accepted round of the task pays from its pool.
    """
    return rules.compute_task_round_cost(self.tasks[task_id].params)
