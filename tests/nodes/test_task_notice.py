"""A new task's notice (TaskRegistry.opens_block, issue #13 attack 1), end to end on anvil: verifiers are
drawn for every task they have not opted out of, so no round of a new task can be committed before the
deployment's notice_blocks have passed — the time a running verifier node has to screen the task's spec
and opt out. The trainer's pre-flight waits in words and sends nothing; the contract refuses earlier."""
from __future__ import annotations

import os

import pytest

from node.errors import ChainError

ETH = 10**18
NOTICE = 6


@pytest.fixture
def deploy_params():
    from node.chain.contracts import DeployParams

    return DeployParams(min_trainer_stake=ETH, min_verifier_stake=ETH, unbonding_blocks=5, notice_blocks=NOTICE)


def test_no_round_of_a_new_task_before_its_notice(deployed, client, dev, tmp_path):
    from node import protocol
    from node.chain.records import TaskParams
    from node.engine.spec import TaskSpec
    from node.roles.db import NodeDB
    from node.roles.trainer import TrainerNode
    from node.store import open_store

    chain = client(dev[1])
    chain.transact(chain.stake_manager.functions.stake(protocol.TRAINER), value=ETH)
    for v in dev[2:4]:
        c = client(v)
        c.transact(c.stake_manager.functions.stake(protocol.VERIFIER), value=ETH)
    params = TaskParams.from_spec(TaskSpec.preset("tiny").with_(protocol={"samples": 1, "committee_size": 2, "quorum": 2}))
    trace = [os.urandom(32) for _ in range(params.n_segments + 1)]
    owner = deployed.chain
    receipt = owner.transact(owner.registry.functions.create_task("bafyspec", b"\x02" * 32, trace[0], "bafygenesis",
                                                                params.as_tuple()), value=ETH)
    opens = chain.call(chain.registry.functions.opens_block(1))
    assert opens == protocol.compute_task_opens_block(receipt["blockNumber"], NOTICE)

    node = TrainerNode(chain, open_store(datadir=tmp_path), NodeDB(tmp_path / "trainer.sqlite"), 1, tmp_path,
                       show_progress=False)
    assert node.can_commit(chain.get_task(1)) is False
    assert node._waiting == (f"task 1 is new: its first round can be committed from block {opens} "
                             f"(now {chain.block_number()}), once verifiers have screened it")
    commit = chain.rounds.functions.commit(1, trace[0], os.urandom(32), protocol.compute_merkle_root(trace),
                                           protocol.compute_merkle_proof(trace, 0))
    with pytest.raises(ChainError, match="rounds: task not open yet"):
        chain.transact(commit)  # estimated at the head, mined in the next block: both before `opens`

    deployed.mine(opens - chain.block_number())  # the head is `opens`: the commit passes its estimate there
    assert node.can_commit(chain.get_task(1)) is True
    receipt = chain.transact(commit)
    assert receipt["status"] == 1 and receipt["blockNumber"] > opens and chain.get_task(1).open_round == 1
