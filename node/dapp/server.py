"""The dapp's read-only HTTP server: the static page, viem from node_modules, the
contracts' ABIs, and the content store at /ipfs/<cid>.

    server = make_server(DappServerConfig(datadir=Path("~/.local/share/trainchain")), port=0)
    server.serve_forever()   # http://127.0.0.1:<server.server_port>/

Routes (GET and HEAD only; anything else is 405):
  /                      dapp/index.html (and the other files of dapp/)
  /vendor/importmap.js   installs the import map for viem and its dependencies
  /vendor/<pkg>/<file>   .js/.mjs/.json files of those packages only
  /abi/<Contract>.json   ABI from the compiled contracts (never hand-copied)
  /ipfs/<cid>            the content, verified block by block against the CID
  /ipfs/<cid>?format=raw one raw block (application/vnd.ipld.raw), trustless
  /ipfs/<cid>?format=car the whole DAG as a CARv1 (application/vnd.ipld.car), trustless
Every path is resolved inside its root; `..`, dot-files and symlinks out of the root
are refused.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import threading
from dataclasses import dataclass, field
from functools import cached_property
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from node.dapp.importmap import ImportMapError, allowed_dirs, build_import_map
from node.store.gateway import TrustlessGatewayHandler
from node.tools import PROJECT_ROOT

log = logging.getLogger(__name__)

DAPP_DIR = PROJECT_ROOT / "dapp"
NODE_MODULES = PROJECT_ROOT / "node_modules"
VENDOR_PREFIX = "/vendor/"
VENDOR_SUFFIXES = {".js", ".mjs", ".json"}
VENDOR_CACHE = "public, max-age=3600"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@dataclass
class DappServerConfig:
    datadir: Path | None = None  # the node data dir whose embedded store /ipfs serves
    ipfs_api: str | None = None  # or a Kubo RPC API (reads are verified all the same)
    dapp_dir: Path = DAPP_DIR
    node_modules: Path = NODE_MODULES
    # Extra info for the page (e.g. the devnet's RPC URL and oracle address) at /config.json.
    page_config: dict = field(default_factory=dict)


def resolve_inside(root: Path, rel: str) -> Path | None:
    """`root/rel` if it is a regular file inside `root` after resolving links; else None."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return None
    root = root.resolve()
    try:
        candidate = root.joinpath(*parts).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
    except (OSError, ValueError):  # a name the file system cannot hold (e.g. a lone surrogate)
        return None
    return candidate


class DappServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: DappServerConfig):
        self.config = config
        self._store_lock = threading.Lock()  # separate locks: a slow first compile never
        self._abi_lock = threading.Lock()    # holds up /ipfs reads
        self._store = None
        self._abis: dict[str, list] | None = None
        super().__init__(address, DappRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @cached_property
    def import_map(self) -> dict:
        return build_import_map(self.config.node_modules, prefix=VENDOR_PREFIX)

    @cached_property
    def vendor_dirs(self) -> list[Path]:
        return [d.resolve() for d in allowed_dirs(self.config.node_modules)]

    def store(self):
        """The content store, opened on first use (the page works without one)."""
        with self._store_lock:
            if self._store is None:
                from node.store import open_store

                self._store = open_store(datadir=self.config.datadir, api=self.config.ipfs_api)
            return self._store

    def abis(self) -> dict[str, list]:
        with self._abi_lock:
            if self._abis is None:
                from node.chain.contracts import compile_contracts

                self._abis = {name: art["abi"] for name, art in compile_contracts().items()}
            return self._abis


class DappRequestHandler(TrustlessGatewayHandler):
    """The dapp's routes; /ipfs/ and the response helpers come from node.store.gateway
    (the same code a node's gateway serves its peers with)."""

    server: DappServer
    server_version = "trainchain-dapp"
    read_only_message = "dapp: this server is read-only (GET and HEAD only)"

    def ipfs_store(self):
        return self.server.store()

    # ------------------------------------------------------------ plumbing
    def _send_file(self, path: Path, cache: str = "no-cache") -> None:
        content_type = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send_bytes(path.read_bytes(), content_type, {"Cache-Control": cache})

    # ------------------------------------------------------------ routes
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        try:
            if path.startswith("/ipfs/"):
                self._serve_ipfs(path[len("/ipfs/"):], query)
            elif path == VENDOR_PREFIX + "importmap.js":
                self._serve_import_map()
            elif path.startswith(VENDOR_PREFIX):
                self._serve_vendor(path[len(VENDOR_PREFIX):])
            elif path.startswith("/abi/"):
                self._serve_abi(path[len("/abi/"):])
            elif path == "/config.json":
                self._send_bytes(json.dumps(self.server.config.page_config).encode(), "application/json",
                                 {"Cache-Control": "no-cache"})
            else:
                self._serve_static(path.lstrip("/") or "index.html")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def _serve_static(self, rel: str) -> None:
        file = resolve_inside(self.server.config.dapp_dir, rel)
        if file is None:
            return self._send_error(HTTPStatus.NOT_FOUND, f"dapp: no such file {rel!r}")
        self._send_file(file)

    def _serve_vendor(self, rel: str) -> None:
        try:
            vendor_dirs = self.server.vendor_dirs
        except ImportMapError as exc:
            return self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        file = resolve_inside(self.server.config.node_modules, rel)
        if (
            file is None
            or file.suffix not in VENDOR_SUFFIXES
            or not any(file.is_relative_to(d) for d in vendor_dirs)
        ):
            return self._send_error(HTTPStatus.NOT_FOUND, f"dapp: {rel!r} is not a served dependency file")
        # viem's ESM build is ~430 modules: let the browser keep them between page loads
        # (they change only with `npm install`).
        self._send_file(file, cache=VENDOR_CACHE)

    def _serve_import_map(self) -> None:
        try:
            import_map = self.server.import_map
        except ImportMapError as exc:
            return self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        # A classic script that inserts the map before the page's module script runs.
        script = (
            "// Generated by `trainchain dapp serve` from node_modules.\n"
            "const map = document.createElement('script');\n"
            "map.type = 'importmap';\n"
            f"map.textContent = {json.dumps(json.dumps(import_map))};\n"
            "document.currentScript.after(map);\n"
        )
        self._send_bytes(script.encode(), CONTENT_TYPES[".js"], {"Cache-Control": "no-cache"})

    def _serve_abi(self, rel: str) -> None:
        name = rel[: -len(".json")] if rel.endswith(".json") else ""
        try:
            abis = self.server.abis()
        except Exception as exc:  # no contracts, a compile error: say so, keep serving the page
            log.warning("dapp: cannot compile the contracts: %s", exc)
            return self._send_error(HTTPStatus.SERVICE_UNAVAILABLE, f"dapp: contracts are not available: {exc}")
        if name not in abis:
            return self._send_error(HTTPStatus.NOT_FOUND, f"dapp: no contract named {name!r}; known: {sorted(abis)}")
        self._send_bytes(json.dumps(abis[name]).encode(), "application/json", {"Cache-Control": "no-cache"})


def make_server(config: DappServerConfig, host: str = "127.0.0.1", port: int = 8080) -> DappServer:
    """Bind (port 0 picks a free one); call .serve_forever() to run."""
    return DappServer((host, port), config)
