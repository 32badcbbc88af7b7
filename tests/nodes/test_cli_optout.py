"""`trainchain verifier optout|optin --task N` (issue #13, attack 1) through the CLI against a real anvil:
a verifier opts out of a task; opting back in is refused in words when this machine cannot replay the
task's spec bit-exactly (checked by `trainchain spec check` in a fresh process), and otherwise counts
for rounds committed after it."""
from __future__ import annotations

import json
import os

from node.engine.spec import TaskSpec

ETH = 10**18


def _create_task(deployed, spec: TaskSpec) -> int:
    """A task whose spec is in the CLI's store (<datadir>/ipfs); genesis is a stand-in (no replay here)."""
    from node.chain.records import TaskParams
    from node.store import open_store

    store = open_store(deployed.datadir)
    spec_cid = store.put_bytes(spec.canonical_json())
    params = TaskParams(steps_per_round=4, segment_steps=1, samples=1, committee_size=2, quorum=2, seal_delay_blocks=2,
                        reveal_window=10, commit_verdicts_window=10, reveal_verdicts_window=10)
    owner = deployed.chain
    owner.transact(owner.registry.functions.create_task(spec_cid, spec.spec_hash(), os.urandom(32), "bafygenesis",
                                                        params.as_tuple()), value=ETH)
    return owner.call(owner.registry.functions.task_count())


def test_optout_then_optin_only_for_a_spec_this_machine_can_replay(cli_run, keyed_datadir):
    deployed, addresses = keyed_datadir
    me = addresses[0]
    opts = ["--datadir", deployed.datadir, "--password-file", deployed.datadir / "password.txt", "--account", me]
    sm = deployed.chain.stake_manager.functions
    replayable = _create_task(deployed, TaskSpec.default())
    foreign = TaskSpec.default()
    foreign = foreign.model_copy(update={"runtime": foreign.runtime.model_copy(update={"torch_version": "1.0.0"})})
    unreplayable = _create_task(deployed, foreign)

    r = cli_run("verifier", "optout", "--task", replayable, *opts, ok=False)  # not a verifier yet
    assert "is not a verifier" in r.output
    cli_run("stake", "verifier", "1", *opts)
    for task in (replayable, unreplayable):
        out = json.loads(cli_run("verifier", "optout", "--task", task, *opts, "--json").stdout)
        assert out["opted_in"] is False and deployed.chain.call(sm.opted_out(task, me)) is True
    r = cli_run("verifier", "optout", "--task", replayable, *opts, ok=False)
    assert f"already opted out of task {replayable}" in r.output

    r = cli_run("verifier", "optin", "--task", unreplayable, *opts, ok=False)
    assert f"refusing to opt into task {unreplayable}: this machine cannot replay its spec bit-exactly" in r.output
    assert "1.0.0" in r.output and deployed.chain.call(sm.opted_out(unreplayable, me)) is True

    out = json.loads(cli_run("verifier", "optin", "--task", replayable, *opts, "--json").stdout)
    assert out["opted_in"] is True and deployed.chain.call(sm.opted_out(replayable, me)) is False
    assert deployed.chain.call(sm.opted_in_block(replayable, me)) == out["block"]
    r = cli_run("verifier", "optin", "--task", replayable, *opts, ok=False)
    assert "has not opted out of task" in r.output
