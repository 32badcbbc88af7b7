"""PeerDirectory through the node's code (web3 on a real anvil): advertising a gateway,
reading the peer list, and a store that fetches from the peers it finds there."""
from __future__ import annotations

import pytest

from node import protocol
from node.errors import ChainError
from node.store.embedded import EmbeddedStore
from node.store.peers import ChainPeers, NodeContent, advertise, peer_directory

STAKE = 2 * 10**18


def staked(client, account, role=protocol.VERIFIER):
    chain = client(account)
    chain.transact(chain.stake_manager.functions.stake(role), value=STAKE, what="stake")
    return chain


def test_only_stakers_advertise_and_the_peer_list_follows_the_chain(deployed, client, dev):
    a, b = staked(client, dev[1]), staked(client, dev[2])
    outsider = client(dev[3])
    assert not advertise(outsider, "http://127.0.0.1:1")  # no stake: refused before any transaction
    with pytest.raises(ChainError, match="only stakers"):
        outsider.transact(peer_directory(outsider).functions.set_endpoint("http://127.0.0.1:1"), what="advertise")
    assert advertise(a, "http://127.0.0.1:1001") and advertise(b, "http://127.0.0.1:1002")
    block = a.block_number()
    assert advertise(a, "http://127.0.0.1:1001") and a.block_number() == block  # unchanged: no transaction
    peers = ChainPeers(client(), ttl=0)
    assert peers.endpoints() == [(a.address, "http://127.0.0.1:1001"), (b.address, "http://127.0.0.1:1002")]
    assert ChainPeers(a, exclude=(a.address,), ttl=0).endpoints() == [(b.address, "http://127.0.0.1:1002")]
    # a replaced URL wins; a cleared one and an unstaked address drop out
    advertise(a, "http://127.0.0.1:2001")
    assert peers.endpoints()[0] == (a.address, "http://127.0.0.1:2001")
    b.transact(peer_directory(b).functions.clear_endpoint(), what="clear")
    assert peers.endpoints() == [(a.address, "http://127.0.0.1:2001")]
    a.transact(a.stake_manager.functions.request_unstake(STAKE), what="unstake")
    assert peers.endpoints() == []


def test_a_node_fetches_from_the_gateway_a_peer_advertised(deployed, client, dev, tmp_path):
    seller = staked(client, dev[1])
    theirs = EmbeddedStore(tmp_path / "theirs")
    cid = theirs.put_bytes(b"a checkpoint" * 100_000)
    served = NodeContent.start(theirs, seller)  # gateway on a free loopback port, advertised
    try:
        assert peer_directory(seller).functions.endpoint_of(seller.address).call() == served.gateway.url
        me = NodeContent.start(EmbeddedStore(tmp_path / "mine"), client(dev[2]), listen=None, budget_s=10)
        assert not me.store.has(cid)
        assert me.store.get_bytes(cid) == b"a checkpoint" * 100_000
        assert me.store.has(cid) and served.gateway.stats["raw"] >= 2
    finally:
        served.close()


def test_a_node_whose_advertisement_fails_still_starts(deployed, client, dev, tmp_path):
    staked(client, dev[1])
    chain = client(dev[1], rpc_retries=1, rpc_backoff=0.0, rpc_timeout=1.0)
    chain.check_chain()
    deployed.anvil.stop()  # the chain goes away between staking and the node's start
    content = NodeContent.start(EmbeddedStore(tmp_path / "s"), chain, budget_s=1)
    try:
        assert content.gateway is not None and content.gateway.url.startswith("http://127.0.0.1:")
    finally:
        content.close()
