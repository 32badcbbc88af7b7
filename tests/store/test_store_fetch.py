"""Content between machines: a store that fetches what it lacks from peers' trustless
gateways (real HTTP servers on loopback, real CIDs), verifying every block."""
from __future__ import annotations

import socket
import threading
import time
from http import HTTPStatus

import pytest

from node.store.cid import Cid, walk_dag
from node.store.embedded import EmbeddedStore
from node.store.fetch import (
    ContentUnavailable, Fetcher, FetchingStore, GatewaySource, SourceError, is_unavailable,
)
from node.store.gateway import GatewayRequestHandler, GatewayServer, parse_listen
from node.store.peers import latest_endpoints
from store_helpers import vector_bytes

BIG = 3 * 1024 * 1024 + 12_345  # 13 leaves: a root with links (two levels)


class CorruptingHandler(GatewayRequestHandler):
    """A lying peer: every raw block it serves has one byte flipped."""

    def _send_bytes(self, body, content_type, headers=None):
        if body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        super()._send_bytes(body, content_type, headers)


def serve(store, handler=GatewayRequestHandler) -> GatewayServer:
    server = GatewayServer(store)
    server.RequestHandlerClass = handler
    return server.start()


@pytest.fixture
def peer(tmp_path):
    """A peer's store with a file in it, served by its gateway."""
    store = EmbeddedStore(tmp_path / "peer")
    data = vector_bytes("fetch", BIG)
    cid = store.put_bytes(data)
    server = serve(store)
    yield store, server, cid, data
    server.stop()


def served_raw(server, n: int, timeout: float = 2.0) -> int:
    """The gateway's count of raw blocks served, once it reaches n (or the timeout passes): a handler counts a block
    after writing it, so the client can hold the last block a moment before the server has counted it."""
    deadline = time.monotonic() + timeout
    while server.stats["raw"] < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.stats["raw"]


def fetching(tmp_path, *urls, budget=5.0, timeout=2.0, name="me") -> FetchingStore:
    local = EmbeddedStore(tmp_path / name)
    sources = [GatewaySource(u) for u in urls]
    return FetchingStore(local, Fetcher(local, lambda: sources, timeout=timeout, parallel=4), budget)


def test_a_missing_file_is_fetched_verified_kept_and_re_served(tmp_path, peer):
    _, server, cid, data = peer
    me = fetching(tmp_path, server.url)
    assert not me.has(cid)
    assert me.get_bytes(cid) == data
    # every block came over HTTP, one request each, and is now local (no second fetch)
    n_blocks = sum(1 for _ in walk_dag(Cid.parse(cid), me.local._fetch_many))
    assert n_blocks == 14 and served_raw(server, n_blocks) == n_blocks
    assert me.has(cid)
    me.get_file(cid, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data and served_raw(server, n_blocks) == n_blocks
    # this node's gateway now serves it to a third node
    mine = serve(me.local)
    try:
        third = fetching(tmp_path, mine.url, name="third")
        assert third.get_bytes(cid) == data and served_raw(mine, n_blocks) == n_blocks
    finally:
        mine.stop()


def test_a_peer_serving_wrong_bytes_is_dropped_and_the_next_one_used(tmp_path, peer):
    store, honest, cid, data = peer
    liar = serve(store, CorruptingHandler)
    try:
        me = fetching(tmp_path, liar.url, honest.url)
        report = me.fetch(cid)
        assert me.get_bytes(cid) == data
        assert liar.url in me.fetcher.dropped()
        assert liar.stats["raw"] >= 1  # it was asked (first), and never again once dropped
        assert report.by_source == {honest.url: 14}
    finally:
        liar.stop()


def test_only_liars_means_unavailable_and_nothing_stored(tmp_path, peer):
    store, _, cid, _ = peer
    liar = serve(store, CorruptingHandler)
    try:
        me = fetching(tmp_path, liar.url, budget=1.0)
        with pytest.raises(ContentUnavailable, match="wrong bytes"):
            me.get_bytes(cid)
        assert not me.local.has_block(cid)
    finally:
        liar.stop()


def test_unavailable_within_the_budget_says_what_each_source_answered(tmp_path):
    empty_a, empty_b = (serve(EmbeddedStore(tmp_path / n)) for n in "ab")
    cid = EmbeddedStore(tmp_path / "elsewhere").put_bytes(b"nobody serves this")
    try:
        one = fetching(tmp_path, empty_a.url, budget=0.8, name="one")
        started = time.monotonic()
        with pytest.raises(ContentUnavailable) as caught:
            one.fetch(cid)
        assert 0.5 <= time.monotonic() - started < 5  # retried until the budget was spent, not longer
        assert caught.value.attempts == {empty_a.url: "not found"}
        assert not caught.value.conclusive  # one source is not enough to call it unavailable
        two = fetching(tmp_path, empty_a.url, empty_b.url, budget=0.5, name="two")
        with pytest.raises(ContentUnavailable) as caught:
            two.fetch(cid)
        assert caught.value.sources_tried == 2 and caught.value.conclusive
        with pytest.raises(ContentUnavailable, match="no sources known"):
            fetching(tmp_path, name="none").fetch(cid)
    finally:
        empty_a.stop()
        empty_b.stop()


def test_the_unavailability_rule():
    assert is_unavailable(2, fetched=False) and is_unavailable(5, fetched=False)
    assert not is_unavailable(1, fetched=False)
    assert not is_unavailable(3, fetched=True)


def test_a_silent_peer_times_out_and_the_next_is_used(tmp_path, peer):
    _, honest, cid, data = peer
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections, never answers
    try:
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
        me = fetching(tmp_path, silent, honest.url, timeout=0.3, budget=20)
        started = time.monotonic()
        assert me.get_bytes(cid) == data
        assert time.monotonic() - started < 15
        src = GatewaySource(silent)
        with pytest.raises(SourceError):
            src.get_block(Cid.parse(cid), 0.2)
    finally:
        listener.close()


def test_a_gateway_refusing_a_huge_block_is_an_integrity_error(tmp_path):
    class Huge(GatewayRequestHandler):
        def _serve_ipfs(self, rel, query):
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", str(64 * 1024 * 1024))
            self.end_headers()

    store = EmbeddedStore(tmp_path / "s")
    cid = store.put_bytes(b"x")
    server = serve(store, Huge)
    try:
        me = fetching(tmp_path, server.url, budget=0.5)
        with pytest.raises(ContentUnavailable, match="announced"):
            me.fetch(cid)
        assert server.url in me.fetcher.dropped()
    finally:
        server.stop()


def test_parallel_fetches_of_one_cid_from_many_threads(tmp_path, peer):
    _, server, cid, data = peer
    me = fetching(tmp_path, server.url)
    out, errors = [], []

    def get():
        try:
            out.append(me.get_bytes(cid))
        except Exception as exc:  # noqa: BLE001 (collected for the assert)
            errors.append(exc)

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and out == [data] * 4


def test_latest_endpoints_keeps_the_last_word_of_each_address():
    ev = lambda who, url: {"args": {"who": who, "url": url}}  # noqa: E731
    events = [ev("0xA", "http://a:1"), ev("0xB", "http://b:1"), ev("0xA", "http://a:2"), ev("0xB", ""),
              ev("0xC", "http://c:1")]
    assert latest_endpoints(events) == {"0xA": "http://a:2", "0xC": "http://c:1"}


@pytest.mark.parametrize("text, ok", [("127.0.0.1:0", ("127.0.0.1", 0)), ("0.0.0.0:8081", ("0.0.0.0", 8081)),
                                      ("[::1]:9", ("::1", 9)), ("8081", None), ("host:", None), ("h:99999", None)])
def test_parse_listen(text, ok):
    from node.store.base import StoreError

    if ok is None:
        with pytest.raises(StoreError, match="host:port"):
            parse_listen(text)
    else:
        assert parse_listen(text) == ok


def test_a_kubo_daemon_is_a_source_too(tmp_path, kubo, jsipfs):
    """A real js-ipfs daemon (Kubo RPC) behind a silent peer: the fetch falls through to it."""
    from node.store.fetch import KuboSource

    data = vector_bytes("kubo-source", 700_000)
    cid = kubo.put_bytes(data)
    local = EmbeddedStore(tmp_path / "me")
    empty = serve(EmbeddedStore(tmp_path / "empty"))
    try:
        sources = [GatewaySource(empty.url), KuboSource(jsipfs.api)]
        me = FetchingStore(local, Fetcher(local, lambda: sources, timeout=5), 20)
        report = me.fetch(cid)
        assert me.get_bytes(cid) == data
        assert report.by_source == {f"kubo {jsipfs.api}": report.blocks} and report.blocks == 4
    finally:
        empty.stop()
