"""A task's minimum trainer stake (TaskParams.min_trainer_stake_wei), end to end on anvil: the node's
pre-flight says what to do in words and sends nothing; the contract refuses a commit below it."""
from __future__ import annotations

import os

import pytest

from node.errors import ChainError

ETH = 10**18


def test_trainer_below_the_tasks_minimum_waits_in_words_and_the_contract_refuses(deployed, client, dev, tmp_path):
    from node.chain.records import TaskParams
    from node.engine.spec import TaskSpec
    from node.protocol import compute_merkle_proof, compute_merkle_root
    from node.roles.db import NodeDB
    from node.roles.trainer import TrainerNode
    from node.store import open_store

    spec = TaskSpec.preset("tiny").with_(protocol={"samples": 1, "committee_size": 2, "quorum": 2,
                                                   "min_trainer_stake_wei": 2 * ETH})
    params = TaskParams.from_spec(spec)
    assert params.min_trainer_stake_wei == 2 * ETH
    trace = [os.urandom(32) for _ in range(params.n_segments + 1)]
    owner = deployed.chain
    owner.transact(owner.registry.functions.create_task("bafyspec", b"\x02" * 32, trace[0], "bafygenesis",
                                                      params.as_tuple()), value=ETH)
    for v in dev[2:4]:
        c = client(v)
        c.transact(c.stake_manager.functions.stake(2), value=ETH)
    chain = client(dev[1])
    chain.transact(chain.stake_manager.functions.stake(1), value=ETH)  # the deployment's minimum, not the task's

    node = TrainerNode(chain, open_store(datadir=tmp_path), NodeDB(tmp_path / "trainer.sqlite"), 1, tmp_path,
                       show_progress=False)
    task = chain.get_task(1)
    assert task.params.min_trainer_stake_wei == 2 * ETH
    assert node.can_commit(task) is False
    assert node._waiting == ("task 1 needs a trainer stake of 2 ETH, this key has 1 ETH free (staked, less what "
                             "open rounds reserve; `trainchain stake trainer AMOUNT` adds to it)")
    commit = chain.rounds.functions.commit(1, trace[0], os.urandom(32), compute_merkle_root(trace),
                                           compute_merkle_proof(trace, 0))
    with pytest.raises(ChainError, match="rounds: free stake below the task's minimum"):
        chain.transact(commit)

    chain.transact(chain.stake_manager.functions.stake(1), value=ETH)  # top up to the task's minimum
    assert node.can_commit(chain.get_task(1)) is True
    receipt = chain.transact(commit)
    assert receipt["status"] == 1 and chain.get_task(1).open_round == 1


def test_trainer_waits_in_words_on_a_closed_task(deployed, client, dev, tmp_path):
    """Issue #13: the creator closed the task (pool withdrawn): the pre-flight says so and sends nothing."""
    from node.chain.records import TaskParams
    from node.engine.spec import TaskSpec
    from node.roles.db import NodeDB
    from node.roles.trainer import TrainerNode
    from node.store import open_store

    params = TaskParams.from_spec(TaskSpec.preset("tiny").with_(protocol={"samples": 1, "committee_size": 2, "quorum": 2}))
    owner = deployed.chain
    owner.transact(owner.registry.functions.create_task("bafyspec", b"\x02" * 32, os.urandom(32), "bafygenesis",
                                                      params.as_tuple()), value=ETH)
    for v in dev[2:4]:
        c = client(v)
        c.transact(c.stake_manager.functions.stake(2), value=ETH)
    chain = client(dev[1])
    chain.transact(chain.stake_manager.functions.stake(1), value=ETH)
    node = TrainerNode(chain, open_store(datadir=tmp_path), NodeDB(tmp_path / "trainer.sqlite"), 1, tmp_path,
                       show_progress=False)
    assert node.can_commit(chain.get_task(1)) is True
    owner.transact(owner.registry.functions.close_task(1))
    assert node.can_commit(chain.get_task(1)) is False
    assert node._waiting == "task 1 was closed by its creator: no new rounds"
