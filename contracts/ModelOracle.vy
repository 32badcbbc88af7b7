# pragma version 0.4.3
"""
@title ModelOracle
@notice The canonical model of every task, version by version: IPFS CID of the
        safetensors state and its state hash. Version 0 is the genesis state; each
        accepted round appends one. Written only by its authorized writers (TaskRegistry), a
        set wired once at deploy (lib/wiring.vy); a separate contract with a stable interface
        so dapps keep working across protocol upgrades. A dapp finds the rest from here:
        authorized_callers(0) is the TaskRegistry, whose stake_manager() is the StakeManager.
"""

from .lib import wiring

initializes: wiring
exports: wiring.__interface__

struct ModelVersion:
    cid: String[128]
    state_hash: bytes32
    round_id: uint256      # 0 for genesis
    block_number: uint256
    timestamp: uint256

event CanonicalModelUpdated:
    task_id: indexed(uint256)
    version: indexed(uint256)
    round_id: indexed(uint256)
    cid: String[128]
    state_hash: bytes32

version_count: public(HashMap[uint256, uint256])                 # task -> number of versions
versions: HashMap[uint256, HashMap[uint256, ModelVersion]]       # task -> version -> entry


@deploy
def __init__():
    """
    @notice The deployer then authorizes the writers and calls finish_wiring().
    """
    wiring.__init__()


@external
def record(task_id: uint256, cid: String[128], state_hash: bytes32, round_id: uint256) -> uint256:
    """
    @notice Append a canonical version for `task_id`; only an authorized writer.
    @param task_id Task.
    @param cid IPFS CID of the safetensors state.
    @param state_hash Canonical state hash of that state.
    @param round_id Round that produced it (0: genesis).
    @return The new version number.
    """
    assert wiring.is_authorized[msg.sender], "oracle: only an authorized writer"
    assert len(cid) > 0, "oracle: empty cid"
    version: uint256 = self.version_count[task_id]
    self.versions[task_id][version] = ModelVersion(
        cid=cid, state_hash=state_hash, round_id=round_id,
        block_number=block.number, timestamp=block.timestamp,
    )
    self.version_count[task_id] = version + 1
    log CanonicalModelUpdated(task_id=task_id, version=version, round_id=round_id, cid=cid, state_hash=state_hash)
    return version


@external
@view
def latest(task_id: uint256) -> (String[128], bytes32, uint256, uint256, uint256, uint256):
    """
    @notice The latest canonical model of `task_id`.
    @return (cid, state_hash, version, round_id, block_number, timestamp)
    """
    count: uint256 = self.version_count[task_id]
    assert count > 0, "oracle: unknown task"
    return self._get(task_id, count - 1)


@external
@view
def at(task_id: uint256, version: uint256) -> (String[128], bytes32, uint256, uint256, uint256, uint256):
    """
    @notice Canonical model `version` of `task_id`.
    @return (cid, state_hash, version, round_id, block_number, timestamp)
    """
    assert version < self.version_count[task_id], "oracle: unknown version"
    return self._get(task_id, version)


@internal
@view
def _get(task_id: uint256, version: uint256) -> (String[128], bytes32, uint256, uint256, uint256, uint256):
    v: ModelVersion = self.versions[task_id][version]
    return v.cid, v.state_hash, version, v.round_id, v.block_number, v.timestamp
