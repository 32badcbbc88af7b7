# pragma version 0.4.3
"""
@title TaskRegistry
@notice Tasks: what is trained (spec CID + hash), the canonical state each next round starts
        from, the reward pool, and the round parameters. Anyone creates and funds a task;
        only the authorized protocol contracts (TrainingRounds) pay from a pool and advance
        the canonical state. Writes every canonical version to ModelOracle.
        A creator can close its task (no new rounds) and withdraw the pool not reserved by an
        open round (issue #13).
@dev Invariant: self.balance == sum of the pools; reserved[t] <= pool of t (each open round
     reserves its round cost at commit; pay or release frees it at finalize). The parameter bounds and a round's cost
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

event PoolReserved:
    task_id: indexed(uint256)
    amount: uint256              # one round's cost, held for the round just committed
    reserved: uint256            # held for open rounds now

event PoolReleased:
    task_id: indexed(uint256)
    amount: uint256
    reserved: uint256

event TaskClosed:
    task_id: indexed(uint256)
    creator: indexed(address)

event PoolWithdrawn:
    task_id: indexed(uint256)
    creator: indexed(address)
    amount: uint256              # credited to the creator's claimable balance in StakeManager
    pool: uint256                # left: what open rounds still reserve

event TaskAdvanced:
    task_id: indexed(uint256)
    round_id: indexed(uint256)
    state_hash: bytes32          # the CID is in ModelOracle's CanonicalModelUpdated, same transaction
    rounds_accepted: uint256

stake_manager: public(IStakeManager)
oracle: public(IModelOracle)
bounds: public(rules.TaskBounds)         # deployment-wide bounds on task parameters (set once, here)
opens_block: public(HashMap[uint256, uint256])  # task -> first block of its first commit or claim (#13, attack 1)
task_count: public(uint256)
tasks: public(HashMap[uint256, Task])
reserved: public(HashMap[uint256, uint256])  # pool wei held for the task's open rounds
closed: public(HashMap[uint256, bool])       # closed by its creator: no new rounds, no funding


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
    @notice Create a task funded with msg.value; records the genesis state as version 0. No round of
            it can be committed (or slot claimed) before bounds.notice_blocks have passed: verifiers are
            drawn for every task they have not opted out of, so each gets that long to screen the spec
            and opt out of one it cannot replay (issue #13, attack 1).
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
    self.opens_block[task_id] = block.number + self.bounds.notice_blocks
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
    assert not self.closed[task_id], "registry: task closed"
    assert msg.value > 0, "registry: zero value"
    self.tasks[task_id].pool += msg.value
    log TaskFunded(task_id=task_id, funder=msg.sender, amount=msg.value, pool=self.tasks[task_id].pool)


@external
def close_task(task_id: uint256):
    """
    @notice The creator closes its task: no new round can commit, nobody can fund it; the pool
            not reserved by an open round is credited to the creator (claim it from StakeManager).
    @param task_id A task of the caller's, not closed yet.
    """
    assert self.tasks[task_id].creator == msg.sender, "registry: only the task's creator"
    assert not self.closed[task_id], "registry: task closed"
    self.closed[task_id] = True
    log TaskClosed(task_id=task_id, creator=msg.sender)
    self._withdraw(task_id, msg.sender)


@external
def withdraw_pool(task_id: uint256):
    """
    @notice The creator of a closed task takes what its open rounds no longer reserve (after
            they finalized), credited to its claimable balance in StakeManager.
    @param task_id A closed task of the caller's.
    """
    assert self.tasks[task_id].creator == msg.sender, "registry: only the task's creator"
    assert self.closed[task_id], "registry: task not closed"
    self._withdraw(task_id, msg.sender)


@internal
def _withdraw(task_id: uint256, creator: address):
    pool: uint256 = self.tasks[task_id].pool
    amount: uint256 = pool - self.reserved[task_id]
    assert amount > 0 or pool == 0, "registry: the rest is reserved by an open round"
    if amount == 0:
        return
    self.tasks[task_id].pool = pool - amount
    log PoolWithdrawn(task_id=task_id, creator=creator, amount=amount, pool=pool - amount)
    extcall self.stake_manager.credit(creator, value=amount)


# ---------------------------------------------------------------- authorized protocol contracts

@external
def reserve(task_id: uint256):
    """
    @notice Hold one round's cost of the pool for a round just committed; only an authorized
            protocol contract (TrainingRounds.commit).
    @param task_id An open (not closed) task whose unreserved pool covers a round.
    """
    assert wiring.is_authorized[msg.sender], "registry: only an authorized protocol contract"
    assert not self.closed[task_id], "registry: task closed"
    cost: uint256 = rules.compute_task_round_cost(self.tasks[task_id].params)
    reserved: uint256 = self.reserved[task_id] + cost
    assert self.tasks[task_id].pool >= reserved, "registry: task pool exhausted"
    self.reserved[task_id] = reserved
    log PoolReserved(task_id=task_id, amount=cost, reserved=reserved)


@external
def release(task_id: uint256):
    """
    @notice Free one round's reservation without paying (a round that was not accepted); only an
            authorized protocol contract (TrainingRounds.finalize).
    @param task_id Task with a reservation.
    """
    assert wiring.is_authorized[msg.sender], "registry: only an authorized protocol contract"
    self._release(task_id)


@internal
def _release(task_id: uint256):
    cost: uint256 = rules.compute_task_round_cost(self.tasks[task_id].params)
    reserved: uint256 = self.reserved[task_id]
    assert reserved >= cost, "registry: nothing reserved"
    self.reserved[task_id] = reserved - cost
    log PoolReleased(task_id=task_id, amount=cost, reserved=reserved - cost)


@external
def pay(task_id: uint256, payees: DynArray[address, MAX_PAYEES], amounts: DynArray[uint256, MAX_PAYEES]):
    """
    @notice Free one round's reservation and pay each of `amounts` from the task's pool to the
            matching payee's claimable balance in StakeManager; only an authorized protocol
            contract (TrainingRounds, on an accepted round: one call for the trainer and the majority).
    @param task_id Task whose pool pays.
    @param payees Beneficiaries.
    @param amounts Wei for each payee; in all at most the pool.
    """
    assert wiring.is_authorized[msg.sender], "registry: only an authorized protocol contract"
    assert len(payees) == len(amounts), "registry: payees and amounts differ in length"
    self._release(task_id)
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
        pool=self.tasks[task_id].pool - self.reserved[task_id],
        round_cost=rules.compute_round_cost(self.tasks[task_id].params.trainer_reward_wei,
                                            self.tasks[task_id].params.verifier_reward_wei,
                                            self.tasks[task_id].params.committee_size),
        n_segments=rules.compute_n_segments(self.tasks[task_id].params.steps_per_round, self.tasks[task_id].params.segment_steps),
        min_trainer_stake_wei=self.tasks[task_id].params.min_trainer_stake_wei,
        quorum=self.tasks[task_id].params.quorum,
        seal_delay_blocks=self.tasks[task_id].params.seal_delay_blocks,
        in_epochs=rules.is_epoch_task(self.tasks[task_id].params),
        opens_block=self.opens_block[task_id],
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
