"""Serve a content store read-only over the IPFS trustless-gateway protocol: how a node's
content reaches nodes on other machines (and the dapp's /ipfs/ route; both use this code).

    server = GatewayServer(store, ("127.0.0.1", 0)).start()   # a thread
    server.url   # http://127.0.0.1:<port>  -> advertise it (PeerDirectory.set_endpoint)
    server.stop()

Routes (GET and HEAD only; anything else is 405):
  /ipfs/<cid>             the file, verified block by block against the CID
  /ipfs/<cid>?format=raw  one block (application/vnd.ipld.raw); also `Accept: application/vnd.ipld.raw`
  /ipfs/<cid>?format=car  the whole DAG as a CARv1 (application/vnd.ipld.car); also by Accept
Every block leaves the server verified, and a fetcher verifies it again: the server is a
convenience, never trusted. `server.routes[path] = fn` adds a JSON route (GET only; `fn(parse_qs
query) -> (status, dict | why-not text)`): the trainer's final handoff (node/roles/handoff.py). Serve the node's LOCAL store (never a fetching one): a gateway
that fetched on a miss would turn two peers asking each other into a loop.
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from node.store.base import CIDError, IntegrityError, NotFound, StoreError, StoreUnavailable

log = logging.getLogger("trainchain.gateway")

# Trustless gateway response types (IPFS HTTP gateway spec).
RAW_BLOCK = "application/vnd.ipld.raw"
CAR = "application/vnd.ipld.car"
CHUNK = 256 * 1024


def ipfs_headers(cid: str, kind: str) -> dict:
    suffix = "" if kind == "file" else f".{kind}"
    return {
        "Etag": f'"{cid}{suffix}"',
        "X-Ipfs-Path": f"/ipfs/{cid}",
        "Cache-Control": "public, max-age=29030400, immutable",
        "X-Content-Type-Options": "nosniff",
        # Content comes from strangers: never let it run script on the serving origin.
        "Content-Security-Policy": "sandbox",
        "Content-Disposition": f'attachment; filename="{cid}{suffix or ".bin"}"',
    }


def requested_format(query: dict, accept: str) -> str | None:
    """"raw", "car", "" (the file) from ?format= or the Accept header; None if unknown."""
    fmt = (query.get("format") or [""])[0]
    if fmt == "raw" or (not fmt and RAW_BLOCK in accept):
        return "raw"
    if fmt == "car" or (not fmt and CAR in accept):
        return "car"
    return None if fmt else ""


class TrustlessGatewayHandler(BaseHTTPRequestHandler):
    """The /ipfs/ route and the response helpers; subclasses add routes (the dapp server).
    `ipfs_store()` returns the store to serve; `served(kind, cid, nbytes)` is called after
    each successful response (the node gateway counts and logs them)."""

    protocol_version = "HTTP/1.1"
    server_version = "trainchain-gateway"
    # Headers and body go out as two writes: with Nagle on, every keep-alive response
    # waits for the client's delayed ACK (~40 ms each).
    disable_nagle_algorithm = True

    read_only_message = "gateway: read-only (GET and HEAD only)"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    # GET and HEAD go to the subclass's `_dispatch` (its routes); every other method is refused
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _read_only(self) -> None:
        self._send_error(HTTPStatus.METHOD_NOT_ALLOWED, self.read_only_message, extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _read_only

    def ipfs_store(self):
        return self.server.store  # GatewayServer

    def served(self, kind: str, cid: str, nbytes: int) -> None:
        pass

    # ------------------------------------------------------------ responses
    def _send_error(self, status: HTTPStatus, message: str, extra: dict | None = None) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_bytes(self, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ------------------------------------------------------------ /ipfs/<cid>
    def _serve_ipfs(self, rel: str, query: dict) -> None:
        cid = rel.rstrip("/")
        if not cid or "/" in cid:
            return self._send_error(HTTPStatus.BAD_REQUEST, "ipfs: only /ipfs/<cid> is served (no paths inside a CID)")
        fmt = requested_format(query, self.headers.get("Accept", ""))
        if fmt is None:
            return self._send_error(HTTPStatus.BAD_REQUEST, f"ipfs: unknown format {query['format'][0]!r} (use raw or car)")
        try:
            store = self.ipfs_store()
            if fmt == "raw":
                block = store.get_block(cid)
                self._send_bytes(block, RAW_BLOCK, ipfs_headers(cid, "raw"))
                return self.served("raw", cid, len(block))
            if fmt == "car":
                return self._send_car(store, cid)
            size = store.size(cid)
            chunks = store.open(cid)
            first = next(chunks, b"")  # fail before the headers if the root is missing or bad
        except CIDError as exc:
            return self._send_error(HTTPStatus.BAD_REQUEST, f"ipfs: {exc}")
        except NotFound as exc:
            return self._send_error(HTTPStatus.NOT_FOUND, f"ipfs: {exc}")
        except IntegrityError as exc:
            return self._send_error(HTTPStatus.BAD_GATEWAY, f"ipfs: {exc}")
        except StoreUnavailable as exc:
            return self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, f"ipfs: {exc}")
        except StoreError as exc:
            return self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, f"ipfs: {exc}")
        self.send_response(HTTPStatus.OK)
        for key, value in ipfs_headers(cid, "file").items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            self.wfile.write(first)
            for chunk in chunks:
                self.wfile.write(chunk)
        except StoreError as exc:
            # Headers are gone: cut the connection so the client sees a short body,
            # never unverified bytes.
            log.error("ipfs: %s failed verification mid-stream: %s", cid, exc)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.served("file", cid, size)

    def _send_car(self, store, cid: str) -> None:
        # Export (which verifies every block) to a temp file first: the response then has
        # a true Content-Length and never starts unless the whole DAG is good.
        with tempfile.TemporaryDirectory(prefix="trainchain-car-") as tmp:
            car = Path(tmp) / "out.car"
            store.export_car(cid, car)
            size = car.stat().st_size
            self.send_response(HTTPStatus.OK)
            for key, value in {**ipfs_headers(cid, "car"), "Content-Type": CAR, "Content-Length": str(size)}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            with car.open("rb") as f:
                while chunk := f.read(CHUNK):
                    self.wfile.write(chunk)
        self.served("car", cid, size)


class GatewayRequestHandler(TrustlessGatewayHandler):
    """A node's gateway: /ipfs/ only."""

    server: "GatewayServer"

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        try:
            route = self.server.routes.get(path)
            if route is not None:
                return self._send_json(*route(parse_qs(url.query)))
            if not path.startswith("/ipfs/"):
                return self._send_error(HTTPStatus.NOT_FOUND, "gateway: only /ipfs/<cid> is served here")
            self._serve_ipfs(path[len("/ipfs/"):], parse_qs(url.query))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher went away (it timed out, or got the block elsewhere)

    def served(self, kind: str, cid: str, nbytes: int) -> None:
        self.server.count(kind, cid, nbytes, self.client_address[0])

    def _send_json(self, status: int, body) -> None:
        if isinstance(body, str):
            return self._send_error(HTTPStatus(status), body)
        self._send_bytes(json.dumps(body).encode(), "application/json", {"Cache-Control": "no-store"})


class GatewayServer(ThreadingHTTPServer):
    """A trustless gateway over `store` on its own thread; `stats` counts what it served."""

    daemon_threads = True

    def __init__(self, store, address: tuple[str, int] = ("127.0.0.1", 0), public_url: str | None = None):
        self.store = store
        self.public_url = public_url  # what peers should use, if not the bound address (NAT, a proxy)
        self.stats = {"requests": 0, "bytes": 0, "raw": 0, "car": 0, "file": 0}
        self.routes: dict = {}  # path -> fn(query) -> (status, dict | str): JSON routes beside /ipfs/
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, GatewayRequestHandler)

    @property
    def url(self) -> str:
        """The URL to advertise: public_url, else the bound address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request, client_address) -> None:
        """A fetcher that drops its keep-alive connection is normal, not a traceback on stderr."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("gateway: %s went away", client_address[0])
            return
        super().handle_error(request, client_address)

    def count(self, kind: str, cid: str, nbytes: int, client: str) -> None:
        with self._lock:
            self.stats["requests"] += 1
            self.stats["bytes"] += nbytes
            self.stats[kind] += 1
        log.info("gateway: served %s %s (%d bytes) to %s", kind, cid, nbytes, client)

    def start(self) -> "GatewayServer":
        # poll 20x a second: stop() returns within 50 ms (the default 0.5 s poll made every stop cost 0.5 s)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="gateway",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def parse_listen(text: str) -> tuple[str, int]:
    """"host:port" (port 0: any free one) -> (host, port); StoreError in words otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StoreError(f"gateway: listen address {text!r} must be host:port, e.g. 127.0.0.1:8081 (port 0: any free one)")
    return host.strip("[]"), int(port)
