"""The Kubo RPC backend against a real js-ipfs 0.66.1 daemon (started once per session)."""
from __future__ import annotations

import http.client
import http.server
import random
import threading
import time
from pathlib import Path

import ipfshttpclient
import pytest

from node.store import (
    CIDError,
    IntegrityError,
    NotFound,
    StoreUnavailable,
    compute_cid,
    compute_cid_v0,
    open_store,
)
from node.store.cid import CHUNK_SIZE, MAX_LINKS, RAW, Cid
from node.store.kubo import KuboStore, api_to_multiaddr
from node.tools import free_port
from store_helpers import vector_bytes

UNKNOWN = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"


def _fast_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("size", [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 7 * CHUNK_SIZE + 3])
def test_both_backends_give_the_same_cids(kubo, store, tmp_path, size):
    data = _fast_bytes(size, size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    cid = store.put_file(path)
    assert kubo.put_file(path) == cid == compute_cid(data)
    assert kubo.put_bytes(data) == cid
    assert kubo.get_bytes(cid) == data
    assert kubo.has(cid) and kubo.size(cid) == size


def test_large_file_over_45_mb_same_cid_and_verified_get(kubo, store, vectors, tmp_path):
    # 174 chunks + 1 byte: the DAG gets a second level (the largest shared vector).
    case = max(vectors, key=lambda c: c["size"])
    assert case["size"] > 45_000_000 and case["size"] > MAX_LINKS * CHUNK_SIZE
    src = tmp_path / "big.bin"
    src.write_bytes(vector_bytes(case["seed"], case["size"]))
    assert store.put_file(src) == case["cidv1_raw_leaves"]
    assert kubo.put_file(src) == case["cidv1_raw_leaves"]
    out = tmp_path / "back.bin"
    kubo.get_file(case["cidv1_raw_leaves"], out)
    assert out.stat().st_size == case["size"]
    assert compute_cid(out) == case["cidv1_raw_leaves"]


def test_daemon_agrees_on_cidv0(jsipfs):
    client = ipfshttpclient.Client(jsipfs.api)
    for size in (0, 1000, 2 * CHUNK_SIZE + 1):
        data = _fast_bytes(size + 1, size)
        assert client.add_bytes(data, opts={"cid-version": 0}) == compute_cid_v0(data)


def _js_block_file(jsipfs, block: bytes) -> Path:
    """The daemon's on-disk file holding `block` (found by content: no guessing its key scheme)."""
    for path in jsipfs.blocks_dir.rglob("*.data"):
        if path.stat().st_size == len(block) and path.read_bytes() == block:
            return path
    raise AssertionError("block not found in the js-ipfs repo")


def test_tampered_block_in_the_daemon_is_rejected(kubo, jsipfs, tmp_path):
    data = _fast_bytes(99, 3 * CHUNK_SIZE + 11)
    cid = kubo.put_bytes(data)
    leaf_cid, leaf = list(kubo.iter_blocks(cid))[2]
    block_file = _js_block_file(jsipfs, leaf)
    damaged = bytearray(leaf)
    damaged[7] ^= 0x80
    block_file.write_bytes(bytes(damaged))
    try:
        # The daemon serves the damaged bytes as they are...
        assert ipfshttpclient.Client(jsipfs.api).block.get(leaf_cid) == bytes(damaged)
        # ...and every verified read refuses them.
        out = tmp_path / "out.bin"
        with pytest.raises(IntegrityError, match="does not match its CID"):
            kubo.get_file(cid, out)
        assert not out.exists()
        with pytest.raises(IntegrityError):
            kubo.get_bytes(cid)
        with pytest.raises(IntegrityError):
            kubo.get_block(leaf_cid)
    finally:
        block_file.write_bytes(leaf)
    assert kubo.get_bytes(cid) == data


class _Proxy(http.server.ThreadingHTTPServer):
    """A real HTTP daemon in front of js-ipfs that can misbehave:
    mode "lie": flips a byte of every block it serves (block/get and dag/export) and
    reports a wrong CID for every add — what a compromised gateway would do;
    mode "cut": cuts every dag/export stream in half, blocks stay honest."""

    def __init__(self, upstream_port: int, mode: str):
        self.upstream_port = upstream_port
        self.mode = mode
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def api(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.server_address[1]}/http"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if body is None and self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "content-length")}
        conn.request("POST", self.path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        lie, cut = self.server.mode == "lie", self.server.mode == "cut"
        if lie and self.path.startswith("/api/v0/block/get") and payload:
            payload = bytes([payload[0] ^ 1]) + payload[1:]
        if lie and self.path.startswith("/api/v0/dag/export") and len(payload) > 100:
            payload = payload[:-50] + bytes([payload[-50] ^ 1]) + payload[-49:]
        if cut and self.path.startswith("/api/v0/dag/export"):
            payload = payload[: len(payload) // 2]
        if lie and self.path.startswith("/api/v0/add"):
            payload = payload.replace(b'"Hash":"bafk', b'"Hash":"bafy')
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        conn.close()


def test_lying_daemon_is_an_error_never_data(kubo, jsipfs, tmp_path):
    small = b"the canonical weights"
    big = _fast_bytes(12, 3 * CHUNK_SIZE + 1)
    small_cid, big_cid = kubo.put_bytes(small), kubo.put_bytes(big)
    with _Proxy(jsipfs.port, "lie") as proxy:
        liar = KuboStore(proxy.api, timeout=5)
        with pytest.raises(IntegrityError, match="does not match its CID"):
            liar.get_bytes(small_cid)
        # A multi-block file: its root (block/get) is flipped already.
        with pytest.raises(IntegrityError, match="does not match its CID"):
            liar.get_file(big_cid, tmp_path / "big.bin")
        assert not (tmp_path / "big.bin").exists()
        with pytest.raises(IntegrityError, match="lying"):
            liar.put_bytes(b"anything")
        liar.close()


def test_lying_export_stream_is_caught(kubo, jsipfs, monkeypatch):
    # Honest block/get, a dag/export stream with one flipped byte: still an error.
    big = _fast_bytes(13, 3 * CHUNK_SIZE + 1)
    cid = kubo.put_bytes(big)
    with _Proxy(jsipfs.port, "lie") as proxy:
        liar = KuboStore(proxy.api, timeout=5)
        honest = KuboStore(jsipfs.api, timeout=5)
        monkeypatch.setattr(liar, "_fetch", honest._fetch)  # block/get from the real daemon
        with pytest.raises(IntegrityError, match="does not match its CID"):
            liar.get_bytes(cid)
        liar.close()
        honest.close()


def test_cut_export_stream_falls_back_to_blocks(kubo, jsipfs):
    data = _fast_bytes(14, 6 * CHUNK_SIZE + 5)
    cid = kubo.put_bytes(data)
    with _Proxy(jsipfs.port, "cut") as proxy:
        flaky = KuboStore(proxy.api, timeout=5)
        assert flaky.get_bytes(cid) == data
        assert [c for c, _ in flaky.iter_blocks(cid)] == [c for c, _ in kubo.iter_blocks(cid)]
        flaky.close()


def test_daemon_down_is_store_unavailable():
    down = KuboStore(f"/ip4/127.0.0.1/tcp/{free_port()}/http", retries=2, timeout=2)
    started = time.monotonic()
    for call in (lambda: down.put_bytes(b"x"), lambda: down.get_bytes(UNKNOWN), lambda: down.has(UNKNOWN),
                 lambda: down.pin(UNKNOWN)):
        with pytest.raises(StoreUnavailable, match="not reachable.*start it"):
            call()
    assert time.monotonic() - started < 20


def test_unknown_and_malformed_cids(jsipfs, tmp_path):
    quick = KuboStore(jsipfs.api, timeout=1)
    with pytest.raises(NotFound):
        quick.get_bytes(UNKNOWN)
    out = tmp_path / "x.bin"
    with pytest.raises(NotFound):
        quick.get_file(UNKNOWN, out)
    assert not out.exists()
    assert quick.has(UNKNOWN) is False
    with pytest.raises(CIDError):
        quick.get_bytes("not-a-cid")
    with pytest.raises(CIDError):
        quick.pin("Qm123")
    quick.close()


def test_pin_and_pins(kubo):
    cid = kubo.put_bytes(b"pin me please")
    kubo.pin(cid)
    assert cid in kubo.pins()


def test_car_moves_content_both_ways(kubo, store, jsipfs, tmp_path):
    # embedded -> CAR -> the daemon (`dag import`), read back by the daemon itself.
    data = _fast_bytes(5, 4 * CHUNK_SIZE + 77)
    cid = store.put_bytes(data)
    store.export_car(cid, tmp_path / "out.car")
    assert kubo.import_car(tmp_path / "out.car") == [cid]
    client = ipfshttpclient.Client(jsipfs.api)
    assert client.cat(cid) == data
    # the daemon's own `dag export` -> embedded import.
    other = _fast_bytes(6, 2 * CHUNK_SIZE + 1)
    cid2 = kubo.put_bytes(other)
    (tmp_path / "js.car").write_bytes(client.dag.export(cid2))
    fresh = open_store(tmp_path / "fresh")
    assert fresh.import_car(tmp_path / "js.car") == [cid2]
    assert fresh.get_bytes(cid2) == other


def test_truncated_or_bogus_car_is_refused(kubo, store, tmp_path):
    cid = store.put_bytes(_fast_bytes(8, 2 * CHUNK_SIZE))
    store.export_car(cid, tmp_path / "ok.car")
    raw = (tmp_path / "ok.car").read_bytes()
    (tmp_path / "cut.car").write_bytes(raw[:-100])
    for target in (kubo, open_store(tmp_path / "fresh")):
        with pytest.raises(IntegrityError, match="truncated"):
            target.import_car(tmp_path / "cut.car")
    (tmp_path / "junk.car").write_bytes(b"\x05hello")
    with pytest.raises(IntegrityError, match="not a CAR"):
        store.import_car(tmp_path / "junk.car")
    flipped = bytearray(raw)
    flipped[-5] ^= 1
    (tmp_path / "bad.car").write_bytes(bytes(flipped))
    with pytest.raises(IntegrityError, match="does not match"):
        kubo.import_car(tmp_path / "bad.car")


def test_api_selection_and_address_forms(jsipfs, monkeypatch, tmp_path):
    assert api_to_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert api_to_multiaddr("localhost:5001") == "/dns/localhost/tcp/5001/http"
    assert api_to_multiaddr("/ip4/10.0.0.1/tcp/5001/http") == "/ip4/10.0.0.1/tcp/5001/http"
    with pytest.raises(Exception, match="multiaddr"):
        api_to_multiaddr("http://nohost")
    monkeypatch.setenv("TRAINCHAIN_IPFS_API", jsipfs.api)
    store = open_store(tmp_path)
    assert isinstance(store, KuboStore)
    assert Cid.parse(store.put_bytes(b"env")).codec == RAW


def test_repeated_chunks_read_back_through_the_export_stream(kubo, store):
    # The daemon exports each block once; the walk asks for the zero chunk 200 times.
    data = b"\0" * (200 * CHUNK_SIZE) + b"tail"
    cid = kubo.put_bytes(data)
    assert cid == store.put_bytes(data)
    assert kubo.get_bytes(cid) == data
    assert len(list(kubo.iter_blocks(cid))) == 1 + 2 + 201
