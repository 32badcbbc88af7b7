"""The Kubo backend: any Kubo-compatible HTTP RPC daemon (Kubo, js-ipfs) via ipfshttpclient.

The daemon is not trusted. `put_*` computes the CID locally and refuses a daemon
that answers another one; every read fetches blocks (`block/get`) and checks each
against its CID before a byte of it is returned, so a lying daemon or a corrupted
repo gives an IntegrityError, never data. Connection failures are retried with
exponential backoff (tenacity); a daemon that stays down is a StoreUnavailable.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_errors
import tenacity

from node.store import car
from node.store.base import CIDError, IntegrityError, NotFound, StoreError, StoreUnavailable, write_atomically
from node.store.cid import (
    CHUNK_SIZE, DAG_PB, MAX_LINKS, RAW, Cid, build_dag, decode_pb_node, decode_unixfs, iter_file, verify_block, walk_dag,
)

# ipfshttpclient 0.7 passes urllib3 a `strict` argument it deprecates; one warning per
# request would drown the CLI's output.
warnings.filterwarnings("ignore", message=".*'strict' parameter.*", category=FutureWarning)

ADD_OPTS = {"cid-version": 1, "raw-leaves": "true", "chunker": f"size-{CHUNK_SIZE}", "cid-base": "base32"}


def api_to_multiaddr(api: str) -> str:
    """Accept a multiaddr (/ip4/127.0.0.1/tcp/5001/http) or a URL (http://127.0.0.1:5001)."""
    api = api.strip()
    if api.startswith("/"):
        return api
    url = urlparse(api if "://" in api else "http://" + api)
    if not url.hostname or not url.port:
        raise StoreError(f"store: IPFS API {api!r} must be a multiaddr like /ip4/127.0.0.1/tcp/5001/http "
                         "or a URL like http://127.0.0.1:5001")
    proto = "ip6" if ":" in url.hostname else ("ip4" if url.hostname.replace(".", "").isdigit() else "dns")
    return f"/{proto}/{url.hostname}/tcp/{url.port}/{url.scheme or 'http'}"


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (ipfs_errors.ConnectionError, ipfs_errors.ProtocolError))


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (an HTTP response body)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = memoryview(chunk)
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _ExportFeed:
    """The blocks of one `dag/export` stream, handed out in the order walk_dag asks.

    A daemon exports in pre-order, each block once: exactly walk_dag's order, minus
    repeats. `take(cid)` returns the next streamed block when it is the one asked for,
    else None (a repeat, another order, a broken stream) and the caller falls back to
    `block/get`. Blocks are checked against their CIDs by walk_dag, not trusted here.
    """

    def __init__(self, response):
        self._response = response
        self._blocks = None
        self._pending = None
        self._misses = 0
        self.broken = response is None
        if self.broken:
            return
        try:
            reader = io.BufferedReader(_ChunkReader(iter(response)), buffer_size=1 << 20)
            car.read_header(reader)
            self._blocks = car.iter_blocks(reader, verify=False)
        except Exception:
            self.close()

    def take(self, cid: Cid) -> bytes | None:
        if self.broken:
            return None
        if self._pending is None:
            try:
                self._pending = next(self._blocks, None)
            except Exception:  # a cut or garbled stream: block/get does the rest
                self.close()
                return None
            if self._pending is None:  # the stream ended: the rest comes from block/get
                self.close()
                return None
        got, block = self._pending
        if got.multihash != cid.multihash:
            self._misses += 1
            if self._misses > MAX_LINKS:  # not the order we walk in: stop reading it
                self.close()
            return None
        self._misses = 0
        self._pending = None
        return block

    def close(self) -> None:
        self.broken = True
        close = getattr(self._response, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                pass


class KuboStore:
    """A ContentStore backed by an IPFS daemon's HTTP RPC API.

    `timeout` bounds how long the daemon may look for one block (it may ask the
    network); `retries` connection attempts are made with backoff before
    StoreUnavailable; `window` blocks are fetched in parallel while reading.
    """

    def __init__(self, api: str, *, timeout: float = 60.0, retries: int = 4, window: int = 8):
        self.api = api_to_multiaddr(api)
        self.timeout = timeout
        self.retries = retries
        self.window = window
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        try:  # parse the address now: a typo is a clear error, not a retry loop
            ipfshttpclient.Client(self.api)
        except ipfs_errors.AddressError as exc:
            raise StoreError(f"store: IPFS API {api!r} is not a valid multiaddr ({exc})") from None

    def __repr__(self) -> str:
        return f"KuboStore({self.api!r})"

    # -- plumbing ---------------------------------------------------------------

    def _client(self) -> ipfshttpclient.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = ipfshttpclient.Client(self.api, chunk_size=CHUNK_SIZE, session=True,
                                           timeout=(5, self.timeout + 30))
            self._local.client = client
        return client

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.window, thread_name_prefix="kubo-fetch")
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _call(self, what: str, fn, *args, **kwargs):
        """Run one RPC with retries on connection errors; map daemon errors to StoreErrors."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_transient),
            stop=tenacity.stop_after_attempt(self.retries),
            wait=tenacity.wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        try:
            return retrying(fn, self._client(), *args, **kwargs)
        except (ipfs_errors.ConnectionError, ipfs_errors.ProtocolError) as exc:
            raise StoreUnavailable(
                f"store: the IPFS daemon at {self.api} is not reachable ({type(exc).__name__}) after "
                f"{self.retries} tries; start it (`ipfs daemon`), fix TRAINCHAIN_IPFS_API, "
                "or unset it to use the embedded store"
            ) from None
        except ipfs_errors.TimeoutError:
            raise NotFound(f"store: {what}: the daemon at {self.api} did not answer within "
                           f"{self.timeout:.0f} s; the content is probably not available") from None
        except ipfs_errors.ErrorResponse as exc:
            message = str(exc)
            lowered = message.lower()
            if "timed out" in lowered or "not found" in lowered or "no link named" in lowered:
                raise NotFound(f"store: {what}: the daemon at {self.api} does not have it ({message}); "
                               "add or import it there, or check the CID") from None
            if "invalid" in lowered or "cid" in lowered or "multihash" in lowered:
                raise CIDError(f"store: {what}: the daemon refused the CID ({message})") from None
            raise StoreError(f"store: {what}: the daemon at {self.api} answered an error: {message}") from None

    def _opts(self, **extra) -> dict:
        return {"timeout": f"{int(self.timeout * 1000)}ms", **extra}

    # -- blocks ------------------------------------------------------------------

    def _fetch(self, cid: Cid) -> bytes:
        data = self._call(f"block/get {cid}", lambda c: c.block.get(str(cid), opts=self._opts()))
        if not isinstance(data, (bytes, bytearray)):
            raise IntegrityError(f"integrity: the daemon returned {type(data).__name__} for block {cid}, not bytes")
        return bytes(data)

    def _fetch_many(self, cids: list[Cid]) -> Iterator[bytes]:
        """Blocks in order, up to `window` requests in flight; memory stays bounded."""
        if len(cids) == 1:
            yield self._fetch(cids[0])
            return
        pool = self._executor()
        pending: deque = deque()
        todo = iter(cids)
        try:
            for cid in todo:
                pending.append(pool.submit(self._fetch, cid))
                if len(pending) >= self.window:
                    break
            while pending:
                block = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(self._fetch, nxt))
                yield block
        finally:
            for future in pending:
                future.cancel()

    def get_block(self, cid: str | Cid) -> bytes:
        cid = Cid.parse(cid)
        block = self._fetch(cid)
        verify_block(cid, block)
        return block

    def _stream(self, root: Cid, walk):
        """Run `walk(root, fetch_many)` (walk_dag or iter_file) fed by one `dag/export`
        stream: one request instead of one per block. Whatever the stream does not
        give in order comes from `block/get` (with prefetch once the stream is gone)."""
        feed: _ExportFeed | None = None

        def fetch_many(cids: list[Cid]) -> Iterator[bytes]:
            nonlocal feed
            if feed is None:  # the root: block/get gives a quick NotFound for missing content
                block = self._fetch(cids[0])
                verify_block(cids[0], block)  # before looking inside it
                if cids[0].codec == DAG_PB and len(decode_pb_node(block)[0]) > 0:
                    feed = self._export(cids[0])
                    feed.take(cids[0])  # the stream starts with the root we already have
                else:
                    feed = _ExportFeed(None)
                yield block
                return
            for i, cid in enumerate(cids):
                block = feed.take(cid)
                if block is None and feed.broken:  # no stream left: parallel block/get
                    yield from self._fetch_many(cids[i:])
                    return
                yield block if block is not None else self._fetch(cid)

        try:
            yield from walk(root, fetch_many)
        finally:
            if feed is not None:
                feed.close()

    def _export(self, root: Cid) -> _ExportFeed:
        try:
            response = self._call(f"dag/export {root}",
                                  lambda c: c.dag.export(str(root), stream=True, opts=self._opts()))
        except StoreError:
            response = None
        return _ExportFeed(response)

    def iter_blocks(self, cid: str | Cid) -> Iterator[tuple[str, bytes]]:
        for c, block in self._stream(Cid.parse(cid), walk_dag):
            yield str(c), block

    def _has_block(self, cid: Cid) -> bool:
        try:
            self._call(f"block/stat {cid}", lambda c: c.block.stat(str(cid), offline=True,
                                                                   opts=self._opts()))
            return True
        except NotFound:
            return False

    # -- files -------------------------------------------------------------------

    def _check_added(self, result, expected: Cid, what: str) -> str:
        got = result.get("Hash") if hasattr(result, "get") else None
        if got is None:
            raise StoreError(f"store: the daemon gave no CID for {what}: {result!r}")
        try:
            same = Cid.parse(got).to_bytes() == expected.to_bytes()
        except CIDError:
            same = False
        if not same:
            raise IntegrityError(
                f"integrity: the daemon at {self.api} says {what} is {got} but its bytes give {expected}; "
                "the daemon is misconfigured or lying (or the file changed while it was added)"
            )
        return str(expected)

    def put_bytes(self, data: bytes) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"put_bytes: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        expected = build_dag(data, 1)
        result = self._call("add", lambda c: c.add_bytes(data, opts=ADD_OPTS))
        if isinstance(result, str):
            result = {"Hash": result}
        return self._check_added(result, expected, f"{len(data)} bytes")

    def put_file(self, path: str | os.PathLike) -> str:
        path = Path(path)
        expected = build_dag(path, 1)  # also checks the file is readable
        result = self._call(f"add {path}", lambda c: c.add(str(path), cid_version=1, raw_leaves=True,
                                                           chunker=f"size-{CHUNK_SIZE}", pin=True,
                                                           opts={"cid-base": "base32"}))
        if isinstance(result, list):  # a single file gives one entry
            result = result[-1]
        return self._check_added(result, expected, str(path))

    def open(self, cid: str | Cid) -> Iterator[bytes]:
        root = Cid.parse(cid)  # a malformed CID fails now, not at the first read
        return self._stream(root, iter_file)

    def get_bytes(self, cid: str | Cid) -> bytes:
        return b"".join(self.open(cid))

    def get_file(self, cid: str | Cid, path: str | os.PathLike) -> None:
        write_atomically(path, self.open(Cid.parse(cid)))

    def size(self, cid: str | Cid) -> int:
        root = Cid.parse(cid)
        block = self.get_block(root)
        if root.codec == RAW:
            return len(block)
        _, data = decode_pb_node(block)
        fs = decode_unixfs(data)
        return fs.filesize if fs.filesize is not None else len(fs.data or b"") + sum(fs.blocksizes)

    def has(self, cid: str | Cid) -> bool:
        """True when the daemon holds every block locally (it is not asked to search the network)."""
        root = Cid.parse(cid)
        stack = [root]
        while stack:
            c = stack.pop()
            if not self._has_block(c):
                return False
            if c.codec == DAG_PB:
                try:
                    links, _ = decode_pb_node(self.get_block(c))
                except (NotFound, IntegrityError):
                    return False
                stack.extend(link.cid for link in links)
        return True

    def pin(self, cid: str | Cid) -> None:
        root = Cid.parse(cid)
        self._call(f"pin/add {root}", lambda c: c.pin.add(str(root), opts=self._opts()))

    def pins(self) -> list[str]:
        result = self._call("pin/ls", lambda c: c.pin.ls(type="recursive"))
        return sorted(str(Cid.parse(k).to_v1()) if not k.startswith("Qm") else k for k in result["Keys"])

    # -- CAR ---------------------------------------------------------------------

    def export_car(self, cid: str | Cid, path: str | os.PathLike) -> None:
        """Write a CARv1 of the DAG from blocks verified here (not the daemon's own export)."""
        root = Cid.parse(cid)
        write_atomically(path, car.iter_car([root], self._stream(root, walk_dag)))

    def import_car(self, path: str | os.PathLike) -> list[str]:
        """Verify every block of a CARv1 here, then hand the file to `dag/import` (which
        pins its roots); return the roots. A bad CAR never reaches the daemon."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"store: {path} is not a readable file")
        with open(path, "rb") as f:
            roots = car.read_header(f)
            for _ in car.iter_blocks(f):
                pass

        def dag_import(client):
            with open(path, "rb") as f:
                return client.dag.imprt(f)

        self._call(f"dag/import {path}", dag_import)
        return [str(r) for r in roots]

