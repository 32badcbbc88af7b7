"""Nodes on different machines (issue #16): a trainer, three verifiers and a cheater as
separate processes, each with its OWN content store; content moves only through the
nodes' trustless gateways (advertised in PeerDirectory) and the task creator's seed
gateway. A staked peer that serves corrupted blocks is advertised first: every node asks
it, drops it, and the rounds go on.
"""
from __future__ import annotations

import os
import re

import pytest

from node import protocol
from node.localnet import LocalNet, wait_until
from node.store.embedded import EmbeddedStore
from node.store.gateway import GatewayRequestHandler, GatewayServer
from node.store.peers import peer_directory
from nodes_helpers import NODE_CONFIG as BASE_CONFIG, tiny_spec

STAKE = 4 * 10**18
ROUND_TIMEOUT = 200
NODE_CONFIG = BASE_CONFIG + "fetch_timeout = 3.0\n"


class LyingHandler(GatewayRequestHandler):
    """Answers every block request with 200 and bytes that are not the block."""

    def _serve_ipfs(self, rel, query):
        self._send_bytes(os.urandom(1024), "application/vnd.ipld.raw")
        self.served("raw", rel, 1024)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from node.engine import TaskSpec, apply_runtime_pin
    from node.engine.runtime import is_torch_loaded
    if not is_torch_loaded():
        apply_runtime_pin(TaskSpec.preset("tiny"))
    root = tmp_path_factory.mktemp("content")
    local = LocalNet(root, block_time=0.5).start()
    try:
        # the liar stakes and advertises before anyone else: it is every node's first peer
        liar = GatewayServer(EmbeddedStore(root / "liar"))
        liar.RequestHandlerClass = LyingHandler
        liar.start()
        liar_chain = local.client(local.dev[8])
        liar_chain.transact(liar_chain.stake_manager.functions.stake(protocol.TRAINER), value=STAKE, what="stake")
        liar_chain.transact(peer_directory(liar_chain).functions.set_endpoint(liar.url), what="advertise")

        def node(name, i, role):
            n = local.add_node(name, local.dev[i])
            (n.datadir / "config.toml").write_text(NODE_CONFIG)
            local.stake(n, role, STAKE)
            return n

        verifiers = [node(f"verifier{i}", 2 + i, "verifier") for i in range(3)]
        trainer = node("trainer", 1, "trainer")
        cheater = node("cheater", 5, "trainer")
        spec = tiny_spec(local.store())
        created = local.create_task(spec, 2 * 10**18)
        task_id = created["task_id"]
        for v in verifiers:
            local.spawn_verifier(v)
        yield type("Net", (), dict(local=local, chain=local.client(), liar=liar, liar_address=local.dev[8].address,
                                   verifiers=verifiers, trainer=trainer, cheater=cheater, spec=spec,
                                   task_id=task_id, genesis_cid=created["genesis_cid"]))
    finally:
        local.stop()
        liar.stop()


def store_of(node) -> EmbeddedStore:
    path = node.datadir / "ipfs"
    assert not path.is_symlink(), f"{node.name}'s store is a link to a shared one"
    return EmbeddedStore(path)  # (made here when the node has not started yet)


def round_fields(round_id: int, rnd) -> dict:
    """What these tests read of a round (works on the chain client's dicts and typed records)."""
    return {"round_id": round_id, **{k: rnd[k] for k in ("phase", "outcome", "n_contradicting", "final_cid")}}


def finalized(net, n: int) -> list[dict]:
    def done():
        net.local.check_alive(*(v.name for v in net.verifiers))
        rounds = [round_fields(e["args"]["round_id"], net.chain.get_round(e["args"]["round_id"]))
                  for e in net.chain.events("RoundCommitted", task_id=net.task_id)]
        ended = [r for r in rounds if r["phase"] == protocol.Phase.FINALIZED]
        return ended if len(ended) >= n else None

    try:
        return wait_until(done, ROUND_TIMEOUT, what=f"{n} finalized round(s)")
    except TimeoutError:
        logs = "\n".join(f"--- {name}\n{net.local.log_tail(name, 20)}" for name in net.local.procs)
        raise AssertionError(f"rounds did not finalize:\n{logs}") from None


def log_of(net, name: str) -> str:
    return (net.local.root / "logs" / f"{name}.log").read_text(errors="replace")


def test_an_honest_round_with_separate_stores_content_over_gateways_only(net):
    trainer_store = store_of(net.trainer)
    stores = [store_of(v) for v in net.verifiers]
    assert len({s.root.resolve() for s in [trainer_store, *stores]}) == 4
    proc = net.local.spawn_trainer(net.trainer, net.task_id, rounds=1)
    (rnd,) = finalized(net, 1)
    assert proc.wait(60) == 0, net.local.log_tail("trainer")
    assert rnd["outcome"] == protocol.Outcome.ACCEPTED and rnd["n_contradicting"] == 0

    revealed = net.chain.events("StartsRevealed", round_id=rnd["round_id"])[-1]["args"]
    start_cids, final_cid = list(revealed["start_cids"]), rnd["final_cid"]
    trainer_log = log_of(net, "trainer")
    for v, store in zip(net.verifiers, stores):
        # the checkpoints were made in the trainer's process, into its own store; they are in
        # this verifier's store now because it fetched them from a peer's gateway (the
        # trainer's, or a verifier that fetched them first and re-serves them)
        for cid in [*start_cids, final_cid]:
            assert store.has(cid), f"{v.name} lacks {cid}"
            # segment 0's start is the genesis, which the task creator's seed gateway serves too (the verifier may
            # have fetched it from there while warming up): any source; every other checkpoint only from peers
            source = ".*" if cid == net.genesis_cid else ".*peer 0x"
            assert re.search(rf"fetch: {cid}: .* from {source}", log_of(net, v.name)), (v.name, cid)
    made_by_trainer = [cid for cid in [*start_cids, final_cid] if cid != net.genesis_cid]
    assert final_cid in made_by_trainer
    for cid in made_by_trainer:  # and only the trainer had them at first: its gateway served them
        assert f"gateway: served raw {cid}" in trainer_log
        # the lying peer was asked and dropped
        assert re.search(rf"dropped source peer {net.liar_address[:10]}", log_of(net, v.name)), v.name
    assert net.liar.stats["raw"] >= 3
    # the spec, dataset and genesis reached the trainer from the task creator's seed gateway
    assert net.local.seed.stats["raw"] > 0
    assert re.search(r"fetch: \S+: .* from gateway http://127\.0\.0\.1", trainer_log)
    # and the harness, a store that never saw the final state, fetches it from the network too
    assert not net.local.store().has(final_cid)
    assert net.local.store().get_bytes(final_cid)


def test_a_cheater_with_its_own_store_is_caught(net):
    cheater_store = store_of(net.cheater)
    assert not cheater_store.has(net.chain.get_task(net.task_id)["canonical_cid"])
    before = net.chain.call(net.chain.stake_manager.functions.stake_of(net.cheater.address))
    last = net.spec.segments_per_round - 1
    proc = net.local.spawn_adversary(net.cheater, net.task_id, "--skip-segment", str(last), "--rounds", "1")
    rnd = finalized(net, 2)[-1]
    assert proc.wait(60) == 0, net.local.log_tail("cheater")
    assert rnd["outcome"] == protocol.Outcome.FRAUD and rnd["n_contradicting"] == 3
    after = net.chain.call(net.chain.stake_manager.functions.stake_of(net.cheater.address))
    assert after < before
    # the honest trainer has exited: the canonical state the cheater built on came from the
    # verifiers, which re-serve what they verified
    cheater_log = log_of(net, "cheater")
    assert re.search(r"fetch: \S+: .* from .*peer 0x", cheater_log)
    assert not any(f"peer {net.trainer.address[:10]}" in line for line in cheater_log.splitlines() if "fetch:" in line)
