# pragma version 0.4.3
"""
@title StakeManager
@notice Holds the stake of trainers and verifiers, the unbonding queue, the claimable
        rewards (pull payments) and the treasury. Only the authorized protocol contracts
        (TrainingRounds: lock, unlock, slash; TaskRegistry: credit), a set wired once at
        deploy (lib/wiring.vy), may move stake. Keeps the active verifier set the
        committees are drawn from.
@dev Invariant: self.balance == sum(stake) + sum(pending) + sum(claimable) + treasury, and
     reserved[who] <= stake of who (a reservation is part of the bonded stake; issue #13, attack 7).
"""

from .lib import rules
from .lib import wiring

initializes: wiring
exports: wiring.__interface__

TRAINER: constant(uint256) = rules.TRAINER
VERIFIER: constant(uint256) = rules.VERIFIER
MAX_VERIFIERS: constant(uint256) = 256
MAX_ENTRIES_PER_VERIFIER: constant(uint256) = 8  # stake weight: one entry per minimum, at most this many

struct Staker:
    role: uint256          # TRAINER or VERIFIER; 0 = never staked; fixed once set
    amount: uint256        # bonded stake, slashable
    pending: uint256       # unbonding, no longer slashable
    unlock_block: uint256  # block from which `pending` can be withdrawn
    locks: uint256         # open rounds involving this staker

event Staked:
    who: indexed(address)
    role: uint256
    amount: uint256
    total: uint256

event UnstakeRequested:
    who: indexed(address)
    amount: uint256
    unlock_block: uint256

event Withdrawn:
    who: indexed(address)
    amount: uint256

event Locked:
    who: indexed(address)
    locks: uint256

event Unlocked:
    who: indexed(address)
    locks: uint256

event Slashed:
    who: indexed(address)
    amount: uint256
    to: indexed(address)  # empty address: the treasury

event Reserved:
    who: indexed(address)
    amount: uint256
    reserved: uint256            # the staker's total reservation after this one

event Released:
    who: indexed(address)
    amount: uint256
    reserved: uint256

event Credited:
    who: indexed(address)
    amount: uint256

event Claimed:
    who: indexed(address)
    amount: uint256

# The verifier registry (issue #13, attacks 3 and 6): append-only, nothing reordered, no cap. An
# entry opens when an address's verifier stake reaches the minimum and is drawable from the next
# block on; it closes (for good) when the stake falls below it. Committees are drawn over the
# entries that existed and were open at the round's commit block, so nothing done after a commit
# (staking throwaway addresses, unstaking, reordering) changes who can be drawn.
struct Entry:
    verifier: address
    active_from: uint256         # first block at which it can be drawn
    active_until: uint256        # first block at which it no longer can (0: open)

event EntryOpened:
    index: indexed(uint256)
    verifier: indexed(address)
    active_from: uint256

event EntryClosed:
    index: indexed(uint256)
    verifier: indexed(address)
    active_until: uint256

event TaskOptIn:
    task_id: indexed(uint256)
    verifier: indexed(address)
    opted_in: bool               # False: opted out
    from_block: uint256          # an opt-in counts for rounds committed after this block

event VerifierActivated:
    who: indexed(address)

event VerifierDeactivated:
    who: indexed(address)

event TreasuryWithdrawn:
    to: indexed(address)
    amount: uint256

owner: public(address)                         # may withdraw the treasury; nothing else
min_stake: public(HashMap[uint256, uint256])   # role -> minimum bonded stake
unbonding_blocks: public(uint256)
stakers: public(HashMap[address, Staker])
claimable: public(HashMap[address, uint256])
treasury: public(uint256)
active_verifiers: public(DynArray[address, MAX_VERIFIERS])
active_index: HashMap[address, uint256]        # 1-based position in active_verifiers; 0 = absent
entries: public(HashMap[uint256, Entry])       # the verifier registry, index 0..entry_count-1
entry_count: public(uint256)
entry_of: public(HashMap[address, uint256])    # 1-based index of the address's first open entry; 0 = none
open_entries: public(uint256)                  # entries open now
# Stake weight (issue #13): one entry per verifier minimum staked (at most MAX_ENTRIES_PER_VERIFIER), so
# splitting a stake over several addresses draws no more seats than keeping it on one; the draw still
# seats an address at most once per committee.
open_entries_of: public(HashMap[address, DynArray[uint256, MAX_ENTRIES_PER_VERIFIER]])
open_verifiers: public(uint256)                # addresses with at least one open entry
# Per-task opt-out (issue #13, attack 1): a verifier is drawn for every task unless it opted out of it
# (e.g. a spec it cannot replay). Opting out counts at once (it can only give up one's own seat);
# opting back in counts only for rounds committed after the opt-in block, so nobody opts in after
# seeing a seed.
opted_out: public(HashMap[uint256, HashMap[address, bool]])
opted_in_block: public(HashMap[uint256, HashMap[address, uint256]])
# Reservations (issue #13, attack 7): each open round (or epoch slot) reserves the part of a stake it may
# slash: the trainer's task minimum, each verifier seat's slash base. A reserved wei cannot back another
# round's minimum nor be unstaked, and slashes are fractions of the reservation, never of the rest.
reserved: public(HashMap[address, uint256])


@deploy
def __init__(min_trainer_stake: uint256, min_verifier_stake: uint256, unbonding_blocks: uint256):
    """
    @param min_trainer_stake Minimum bonded stake (wei) to train.
    @param min_verifier_stake Minimum bonded stake (wei) to be in the active verifier set.
    @param unbonding_blocks Blocks between request_unstake and withdraw.
    """
    assert min_trainer_stake > 0 and min_verifier_stake > 0, "stake: minimum must be positive"
    wiring.__init__()
    self.owner = msg.sender
    self.min_stake[TRAINER] = min_trainer_stake
    self.min_stake[VERIFIER] = min_verifier_stake
    self.unbonding_blocks = unbonding_blocks


# ---------------------------------------------------------------- stakers

@external
@payable
def stake(role: uint256):
    """
    @notice Bond msg.value as `role` (1 trainer, 2 verifier). One role per address.
    @param role TRAINER (1) or VERIFIER (2).
    """
    assert role == TRAINER or role == VERIFIER, "stake: unknown role"
    assert msg.value > 0, "stake: zero value"
    s: Staker = self.stakers[msg.sender]
    assert s.role == 0 or s.role == role, "stake: address has another role"
    s.role = role
    s.amount += msg.value
    assert s.amount >= self.min_stake[role], "stake: below minimum"
    self.stakers[msg.sender] = s
    log Staked(who=msg.sender, role=role, amount=msg.value, total=s.amount)
    if role == VERIFIER:
        self._activate(msg.sender)


@external
def request_unstake(amount: uint256):
    """
    @notice Start unbonding `amount`; refused while a round involving the caller is open.
    @dev Stake left below the role minimum leaves the active verifier set.
    @param amount Wei to unbond.
    """
    s: Staker = self.stakers[msg.sender]
    assert amount > 0, "stake: zero amount"
    assert amount <= s.amount, "stake: amount exceeds stake"
    assert amount <= s.amount - self.reserved[msg.sender], "stake: amount exceeds the free stake (reserved by open rounds)"
    assert s.locks == 0, "stake: locked by an open round"
    s.amount -= amount
    s.pending += amount
    s.unlock_block = block.number + self.unbonding_blocks
    self.stakers[msg.sender] = s
    log UnstakeRequested(who=msg.sender, amount=amount, unlock_block=s.unlock_block)
    self._check_active(msg.sender)


@external
@nonreentrant
def withdraw():
    """
    @notice Withdraw the unbonded stake once the unbonding delay has passed.
    """
    s: Staker = self.stakers[msg.sender]
    assert s.pending > 0, "stake: nothing pending"
    assert block.number >= s.unlock_block, "stake: still unbonding"
    amount: uint256 = s.pending
    self.stakers[msg.sender].pending = 0
    log Withdrawn(who=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)


@external
@nonreentrant
def claim():
    """
    @notice Withdraw rewards and slash proceeds credited to the caller (pull payment).
    """
    amount: uint256 = self.claimable[msg.sender]
    assert amount > 0, "stake: nothing to claim"
    self.claimable[msg.sender] = 0
    log Claimed(who=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)


@external
@nonreentrant
def withdraw_treasury(to: address, amount: uint256):
    """
    @notice Move treasury funds out; only the owner.
    @param to Recipient.
    @param amount Wei.
    """
    assert msg.sender == self.owner, "stake: only owner"
    assert to != empty(address), "stake: zero recipient"
    assert amount <= self.treasury, "stake: amount exceeds treasury"
    self.treasury -= amount
    log TreasuryWithdrawn(to=to, amount=amount)
    raw_call(to, b"", value=amount)


# ---------------------------------------------------------------- authorized protocol contracts only

@external
def lock(who: address):
    """
    @notice Lock `who`'s stake for one more open round; only an authorized protocol contract.
    @param who Staker.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    self.stakers[who].locks += 1
    log Locked(who=who, locks=self.stakers[who].locks)


@external
def unlock(who: address):
    """
    @notice Release one round's lock on `who`; only an authorized protocol contract.
    @param who Staker.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    assert self.stakers[who].locks > 0, "stake: not locked"
    self.stakers[who].locks -= 1
    log Unlocked(who=who, locks=self.stakers[who].locks)


@external
def slash(who: address, amount: uint256, to: address) -> uint256:
    """
    @notice Take up to `amount` of `who`'s free (unreserved) stake, credit it to `to` (empty:
            treasury). A round that reserved stake slashes with slash_reserved instead.
    @param who Staker slashed.
    @param amount Wei wanted; capped at the free stake (a reservation belongs to its round).
    @param to Beneficiary, or the empty address for the treasury.
    @return The amount actually slashed.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    taken: uint256 = min(amount, self.stakers[who].amount - self.reserved[who])
    if taken == 0:
        return 0
    self.stakers[who].amount -= taken
    if to == empty(address):
        self.treasury += taken
    else:
        self.claimable[to] += taken
    log Slashed(who=who, amount=taken, to=to)
    self._check_active(who)
    return taken


@external
def reserve(who: address, amount: uint256):
    """
    @notice Reserve `amount` of `who`'s free stake for one open round or slot; only an authorized
            protocol contract (which remembers the amount and settles it with settle_reserved).
    @param who Staker.
    @param amount Wei to reserve; must not exceed the free stake (stake - reserved).
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    total: uint256 = self.reserved[who] + amount
    assert total <= self.stakers[who].amount, "stake: free stake below the reservation"
    self.reserved[who] = total
    log Reserved(who=who, amount=amount, reserved=total)


@external
def release(who: address, amount: uint256):
    """
    @notice Give back `amount` of `who`'s reservation; only an authorized protocol contract.
    @param who Staker.
    @param amount Wei; at most the staker's reservation.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    self._release(who, amount)


@external
def slash_reserved(who: address, amount: uint256, to: address) -> uint256:
    """
    @notice Take `amount` out of `who`'s reservation (and so out of its stake), credit it to `to`
            (empty: the treasury); only an authorized protocol contract.
    @param who Staker.
    @param amount Wei, at most the staker's reservation (the caller computes it as
           rules.compute_slash(its reservation, bps)).
    @param to Beneficiary, or the empty address for the treasury.
    @return The amount slashed.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    return self._slash_reserved(who, amount, to)


@external
def settle_reserved(who: address, reservation: uint256, amount: uint256, to: address) -> uint256:
    """
    @notice Settle one reservation in one call: slash `amount` of it to `to` (empty: the treasury)
            and release the rest; only an authorized protocol contract.
    @param who Staker.
    @param reservation Wei the caller reserved (what is left of it).
    @param amount Wei to slash, at most `reservation`.
    @param to Beneficiary, or the empty address for the treasury.
    @return The amount slashed.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    assert amount <= reservation, "stake: slash exceeds the reservation"
    taken: uint256 = self._slash_reserved(who, amount, to)
    self._release(who, reservation - amount)
    return taken


@external
@payable
def credit(who: address):
    """
    @notice Credit msg.value to `who`'s claimable balance; only an authorized protocol contract (TaskRegistry pays rewards).
    @param who Beneficiary.
    """
    assert wiring.is_authorized[msg.sender], "stake: only an authorized protocol contract"
    self.claimable[who] += msg.value
    log Credited(who=who, amount=msg.value)


@external
def optout(task_id: uint256):
    """
    @notice Never be drawn for `task_id`'s rounds from now on (a task whose spec this verifier
            cannot replay, or does not want to): counts at once, also for rounds already committed.
    @param task_id The task.
    """
    assert self.stakers[msg.sender].role == VERIFIER, "stake: only a verifier opts in or out"
    assert not self.opted_out[task_id][msg.sender], "stake: already opted out"
    self.opted_out[task_id][msg.sender] = True
    log TaskOptIn(task_id=task_id, verifier=msg.sender, opted_in=False, from_block=block.number)


@external
def optin(task_id: uint256):
    """
    @notice Be drawn for `task_id` again, for rounds committed after this block (never for a round
            whose seed may already be known).
    @param task_id A task the caller opted out of.
    """
    assert self.stakers[msg.sender].role == VERIFIER, "stake: only a verifier opts in or out"
    assert self.opted_out[task_id][msg.sender], "stake: not opted out"
    self.opted_out[task_id][msg.sender] = False
    self.opted_in_block[task_id][msg.sender] = block.number
    log TaskOptIn(task_id=task_id, verifier=msg.sender, opted_in=True, from_block=block.number)


# ---------------------------------------------------------------- views

@external
@view
def stake_of(who: address) -> uint256:
    """
    @notice Bonded (slashable) stake of `who`.
    """
    return self.stakers[who].amount


@external
@view
def role_of(who: address) -> uint256:
    """
    @notice Role of `who` (0 none, 1 trainer, 2 verifier).
    """
    return self.stakers[who].role


@external
@view
def is_eligible(who: address, role: uint256) -> bool:
    """
    @notice Whether `who` has `role` with at least the minimum bonded stake.
    """
    s: Staker = self.stakers[who]
    return s.role == role and s.amount >= self.min_stake[role]


@external
@view
def free_stake(who: address) -> uint256:
    """
    @notice Bonded stake of `who` not reserved by an open round (what a new round can reserve).
    """
    return self.stakers[who].amount - self.reserved[who]


@external
@view
def active_verifier_count() -> uint256:
    """
    @notice Size of the active verifier set.
    """
    return len(self.active_verifiers)


@external
@view
def active_verifier_list() -> DynArray[address, MAX_VERIFIERS]:
    """
    @notice The active verifier set, in set order (a view for nodes and the dapp, at most 256;
            committees are drawn from the entries, see draw_committee).
    """
    return self.active_verifiers


@external
@view
def eligible_entry_count() -> uint256:
    """
    @notice Verifiers with an open entry now (distinct addresses: a committee seats an address once;
            those opened in this very block are drawable from the next one: draw_committee checks
            each entry exactly; this count is the commit's quick check). `open_entries` counts entries.
    @dev No per-block bookkeeping on purpose: a stake's gas must not depend on which block it lands
         in, or a gas estimate made one block earlier runs short.
    """
    return self.open_verifiers


@external
@view
def draw_committee(seed: bytes32, at_block: uint256, size: uint256, task_id: uint256) -> DynArray[address, rules.MAX_COMMITTEE]:
    """
    @notice Committee of `size` distinct verifiers by rejection sampling over the entries that existed
            at `at_block` (the commit block): attempt k tries entry rules.compute_committee_candidate(seed,
            k, n) and keeps it if it was open at `at_block`, its verifier still has the minimum stake and
            is not drawn yet, and has not opted out of `task_id` (nor opted back in at or after
            `at_block`); at most rules.MAX_COMMITTEE_ATTEMPTS attempts (fewer members if the
            entries run dry). O(size) storage reads when most entries are eligible.
    @param seed The round's seed.
    @param at_block The round's commit block.
    @param size Seats wanted (<= 16).
    @param task_id The round's task (opt-outs).
    """
    n: uint256 = self._entries_opened_by(at_block)
    out: DynArray[address, rules.MAX_COMMITTEE] = []
    if n == 0:
        return out
    for k: uint256 in range(rules.MAX_COMMITTEE_ATTEMPTS):
        if len(out) >= size:
            break
        e: Entry = self.entries[rules.compute_committee_candidate(seed, k, n)]
        if e.verifier not in out and self._is_drawable(e.verifier, e.active_until, at_block, task_id):
            out.append(e.verifier)
    return out


@external
@view
def eligible_verifiers(at_block: uint256, task_id: uint256, seed: bytes32, limit: uint256) -> DynArray[address, rules.APPEAL_JURY_MAX + 1]:
    """
    @notice Up to `limit` distinct verifiers drawable for `task_id` at `at_block` (the same eligibility as
            draw_committee), an appeal's jury (Appeals.vy): every one of them when they are at most `limit`, else a
            stake-weighted random sample. Over the n entries opened by `at_block`, step k reads entry
            rules.compute_appeal_candidate(seed, k, n, attempts) and keeps its verifier if drawable and not kept yet:
            with more entries than verifiers wanted (min(`limit`, rules.APPEAL_JURY_MAX + 1)) the first
            rules.APPEAL_DRAW_ATTEMPTS steps sample entries at random as draw_committee does (a coalition's contiguous
            run of entries is seated by its share, not whenever a walk starts near it); the later steps (all of them
            otherwise: no entry need be read twice) walk at most rules.APPEAL_WALK_MAX entries in
            registry order from seed mod n, wrapping, filling what the sample left (a small set is seated whole).
    @param at_block The disputed round's commit block.
    @param task_id The round's task (opt-outs).
    @param seed The appeal's jury seed (rules.compute_jury_seed).
    @param limit Verifiers wanted (at most rules.APPEAL_JURY_MAX + 1 are returned).
    """
    n: uint256 = self._entries_opened_by(at_block)
    out: DynArray[address, rules.APPEAL_JURY_MAX + 1] = []
    if n == 0:
        return out
    wanted: uint256 = min(limit, rules.APPEAL_JURY_MAX + 1)
    attempts: uint256 = rules.compute_appeal_draw_attempts(n, wanted)
    steps: uint256 = attempts + min(n, rules.APPEAL_WALK_MAX)
    for k: uint256 in range(rules.APPEAL_DRAW_ATTEMPTS + rules.APPEAL_WALK_MAX):
        if k >= steps or len(out) >= wanted:
            break
        index: uint256 = rules.compute_appeal_candidate(seed, k, n, attempts)
        # one slot read for an entry whose verifier is kept already (a stake of m minimums holds m entries)
        verifier: address = self.entries[index].verifier
        if verifier not in out and self._is_drawable(verifier, self.entries[index].active_until, at_block, task_id):
            out.append(verifier)
    return out


# ---------------------------------------------------------------- internal

@internal
def _release(who: address, amount: uint256):
    if amount == 0:
        return
    assert amount <= self.reserved[who], "stake: release exceeds the reservation"
    self.reserved[who] -= amount
    log Released(who=who, amount=amount, reserved=self.reserved[who])


@internal
def _slash_reserved(who: address, amount: uint256, to: address) -> uint256:
    if amount == 0:
        return 0
    assert amount <= self.reserved[who], "stake: slash exceeds the reservation"
    self.reserved[who] -= amount
    self.stakers[who].amount -= amount
    if to == empty(address):
        self.treasury += amount
    else:
        self.claimable[to] += amount
    log Slashed(who=who, amount=amount, to=to)
    self._check_active(who)
    return amount


@internal
@view
def _is_drawable(verifier: address, active_until: uint256, at_block: uint256, task_id: uint256) -> bool:
    """An entry (of `verifier`, closed at `active_until`, 0: open) open at `at_block` (opened by then: the callers
    walk only those) whose verifier still has the minimum stake (not the free stake: reservations change after the
    commit, and a committee must not; a member short of a free seat reserves what it has,
    TrainingRounds.seat_shortfall) and has not opted out of `task_id` (nor opted back in at or after `at_block`)."""
    if active_until != 0 and active_until <= at_block:
        return False
    if self.stakers[verifier].amount < self.min_stake[VERIFIER]:
        return False
    return not self.opted_out[task_id][verifier] and self.opted_in_block[task_id][verifier] < at_block


@internal
@view
def _entries_opened_by(at_block: uint256) -> uint256:
    """How many entries had opened by `at_block` (active_from only grows with the index: binary search)."""
    lo: uint256 = 0
    hi: uint256 = self.entry_count
    for i: uint256 in range(64):
        if lo >= hi:
            break
        mid: uint256 = (lo + hi) // 2
        if self.entries[mid].active_from <= at_block:
            lo = mid + 1
        else:
            hi = mid
    return lo


@internal
def _sync_entries(who: address):
    """Open or close `who`'s entries so it holds one per verifier minimum staked (at most
    MAX_ENTRIES_PER_VERIFIER): new ones at the end of the registry (drawable from the next block),
    closed ones for good (the last opened first). Nothing is reordered."""
    target: uint256 = min(self.stakers[who].amount // self.min_stake[VERIFIER], MAX_ENTRIES_PER_VERIFIER)
    held: DynArray[uint256, MAX_ENTRIES_PER_VERIFIER] = self.open_entries_of[who]
    had: uint256 = len(held)
    for i: uint256 in range(MAX_ENTRIES_PER_VERIFIER):
        if len(held) >= target:
            break
        index: uint256 = self.entry_count
        self.entries[index] = Entry(verifier=who, active_from=block.number + 1, active_until=0)
        self.entry_count = index + 1
        held.append(index)
        log EntryOpened(index=index, verifier=who, active_from=block.number + 1)
    for i: uint256 in range(MAX_ENTRIES_PER_VERIFIER):
        if len(held) <= target:
            break
        index: uint256 = held.pop()
        self.entries[index].active_until = block.number
        log EntryClosed(index=index, verifier=who, active_until=block.number)
    if len(held) == had:
        return
    self.open_entries = self.open_entries + len(held) - had
    if had == 0:
        self.open_verifiers += 1
    elif len(held) == 0:
        self.open_verifiers -= 1
    self.open_entries_of[who] = held
    if len(held) > 0:
        self.entry_of[who] = held[0] + 1
    else:
        self.entry_of[who] = 0


@internal
def _activate(who: address):
    self._sync_entries(who)
    # the list is a view (capped); a full list never refuses a staker: the draw uses the entries
    if self.active_index[who] != 0 or len(self.active_verifiers) >= MAX_VERIFIERS:
        return
    self.active_verifiers.append(who)
    self.active_index[who] = len(self.active_verifiers)
    log VerifierActivated(who=who)


@internal
def _check_active(who: address):
    """Close the entries `who`'s stake no longer covers; drop it from the active set below the minimum."""
    if self.stakers[who].role == VERIFIER:
        self._sync_entries(who)
    if self.stakers[who].amount >= self.min_stake[VERIFIER]:
        return
    position: uint256 = self.active_index[who]
    if position == 0:
        return
    # swap-and-pop: move the last verifier into the freed slot
    last: address = self.active_verifiers.pop()
    if last != who:
        self.active_verifiers[position - 1] = last
        self.active_index[last] = position
    self.active_index[who] = 0
    log VerifierDeactivated(who=who)
