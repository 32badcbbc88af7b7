# pragma version 0.4.3
"""
@title wiring
@notice A set of authorized callers, wired once at deploy and then frozen: the deployer
        authorizes each protocol contract that may call the restricted functions, then
        calls finish_wiring(); from then on nobody can add or remove a caller (no admin key
        stays behind). StakeManager, ModelOracle and TaskRegistry initialize it.
@dev Each contract checks `is_authorized[msg.sender]` with its own revert reason
     ("stake: only an authorized protocol contract", ...), so a revert names the contract.
"""

MAX_CALLERS: constant(uint256) = 8

event CallerAuthorized:
    caller: indexed(address)

event WiringFinished:
    callers: DynArray[address, MAX_CALLERS]

wiring_admin: public(address)                        # the deployer until finish_wiring, then empty
is_authorized: public(HashMap[address, bool])
authorized_callers: public(DynArray[address, MAX_CALLERS])  # in the order they were authorized


@deploy
def __init__():
    self.wiring_admin = msg.sender


@external
def authorize(caller: address):
    """
    @notice Add `caller` to the authorized callers; only the deployer, before finish_wiring.
    @param caller A protocol contract (TrainingRounds, TaskRegistry, ...).
    """
    assert msg.sender == self.wiring_admin, "wiring: only the deployer, before finish_wiring"
    assert caller != empty(address), "wiring: caller is the zero address"
    assert not self.is_authorized[caller], "wiring: caller already authorized"
    assert len(self.authorized_callers) < MAX_CALLERS, "wiring: too many callers"
    self.is_authorized[caller] = True
    self.authorized_callers.append(caller)
    log CallerAuthorized(caller=caller)


@external
def finish_wiring():
    """
    @notice Freeze the set of authorized callers for good (the deployer keeps no wiring power).
    """
    assert msg.sender == self.wiring_admin, "wiring: only the deployer, before finish_wiring"
    assert len(self.authorized_callers) > 0, "wiring: no caller authorized"
    self.wiring_admin = empty(address)
    log WiringFinished(callers=self.authorized_callers)
