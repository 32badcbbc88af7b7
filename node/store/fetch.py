"""Fetch what the local store lacks from other machines, block by block, every block
verified against its CID, and keep it (so this node re-serves it to the next).

    fetcher = Fetcher(local, sources=lambda: [GatewaySource("http://10.0.0.7:8081"), KuboSource(api)])
    store = FetchingStore(local, fetcher, budget_s=120)   # a ContentStore: nodes use it as before
    store.get_file(cid, "ckpt.safetensors")                # local, else fetched, verified, stored
    store.fetch(cid, budget_s=30)                          # the budgeted call; ContentUnavailable

Sources are tried in order of past success (the peer that served the last block is asked
first), each request with a timeout; a source that answers "not found" or fails is
skipped for that block and asked again on the next pass (passes until the budget is
spent, with backoff); a source that serves bytes that do not hash to the CID is dropped
for `bad_source_s`. The blocks of one DAG level are fetched in parallel.

"Unavailable" (protocol-v2 part E): not fetched from at least MIN_SOURCES advertised
sources within the budget. ContentUnavailable carries what each source answered and
`.conclusive` says whether that many were tried (issue #13 turns it into a flag).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from node.store.base import IntegrityError, NotFound, StoreError, StoreUnavailable
from node.store.cid import DAG_PB, RAW, Cid, decode_pb_node, verify_block
from node.store.gateway import RAW_BLOCK

log = logging.getLogger("trainchain.fetch")

MIN_SOURCES = 2  # "unavailable" needs this many advertised sources tried (protocol-v2 part E)
MAX_BLOCK = 4 * 1024 * 1024  # IPFS blocks are <= 2 MiB; more from a source is an attack


def is_unavailable(sources_tried: int, fetched: bool) -> bool:
    """The rule: content is unavailable when it was not fetched although at least
    MIN_SOURCES advertised sources were asked within the budget."""
    return not fetched and sources_tried >= MIN_SOURCES


class SourceError(StoreError):
    """One source failed for a reason that may pass (timeout, refused, 5xx)."""


class ContentUnavailable(NotFound):
    """The content could not be fetched within the budget; `.attempts` = {source: last answer}."""

    def __init__(self, cid: str, attempts: dict[str, str], budget_s: float, missing: str | None = None):
        self.cid, self.attempts, self.budget_s = cid, dict(attempts), budget_s
        tried = "; ".join(f"{s}: {a}" for s, a in self.attempts.items()) or "no sources known"
        what = f"block {missing} of {cid}" if missing and missing != cid else cid
        super().__init__(f"store: {what} not fetched within {budget_s:g} s from {len(self.attempts)} source(s) ({tried})")

    @property
    def sources_tried(self) -> int:
        return len(self.attempts)

    @property
    def conclusive(self) -> bool:
        """True when this counts as 'unavailable' under the protocol's rule."""
        return is_unavailable(self.sources_tried, fetched=False)


class Source(Protocol):
    name: str

    def get_block(self, cid: Cid, timeout: float) -> bytes:
        """The block's bytes (unverified: the fetcher verifies); NotFound, SourceError."""


class GatewaySource:
    """A peer's (or a public) IPFS trustless gateway: GET <url>/ipfs/<cid>?format=raw."""

    def __init__(self, url: str, label: str | None = None):
        import urllib3

        self.url = url.rstrip("/")
        self.name = label or self.url
        # one pool per source, thread-safe; no urllib3 retries: the fetcher decides
        self._http = urllib3.PoolManager(num_pools=2, maxsize=16, retries=False)

    def __repr__(self) -> str:
        return f"GatewaySource({self.name!r})"

    def get_block(self, cid: Cid, timeout: float) -> bytes:
        import urllib3

        try:
            r = self._http.request("GET", f"{self.url}/ipfs/{cid}?format=raw", headers={"Accept": RAW_BLOCK},
                                   timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
                                   preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"{type(exc).__name__}: {exc}") from None
        try:
            if r.status in (404, 410):
                raise NotFound("not found")
            if r.status != 200:
                raise SourceError(f"HTTP {r.status}")
            length = r.headers.get("Content-Length")
            if length is not None and int(length) > MAX_BLOCK:
                raise IntegrityError(f"announced a {length}-byte block (> {MAX_BLOCK})")
            body = r.read(MAX_BLOCK + 1)
            if len(body) > MAX_BLOCK:
                raise IntegrityError(f"sent more than {MAX_BLOCK} bytes for one block")
            return body
        except urllib3.exceptions.HTTPError as exc:
            raise SourceError(f"{type(exc).__name__}: {exc}") from None
        finally:
            r.release_conn()


class KuboSource:
    """A Kubo (or js-ipfs) RPC daemon: `block/get`, which fetches over its own swarm."""

    def __init__(self, api: str):
        from node.store.kubo import KuboStore

        self.name = f"kubo {api}"
        self._store = KuboStore(api)

    def get_block(self, cid: Cid, timeout: float) -> bytes:
        try:
            return self._store._fetch(cid)
        except StoreUnavailable as exc:
            raise SourceError(str(exc)) from None


@dataclass
class FetchReport:
    cid: str
    blocks: int = 0          # blocks fetched over the network (the rest were local)
    bytes: int = 0
    seconds: float = 0.0
    by_source: dict[str, int] = field(default_factory=dict)  # source -> blocks it served


class Fetcher:
    """Fetches DAGs into `local` (an EmbeddedStore) from `sources()`; see the module doc."""

    def __init__(self, local, sources: Callable[[], list[Source]], timeout: float = 10.0, parallel: int = 8,
                 bad_source_s: float = 600.0, backoff: float = 0.25):
        self.local = local
        self.sources = sources
        self.timeout = timeout
        self.parallel = parallel
        self.bad_source_s = bad_source_s
        self.backoff = backoff
        self._lock = threading.Lock()
        self._score: dict[str, int] = {}       # source name -> blocks it served (ordering)
        self._bad: dict[str, float] = {}       # source name -> monotonic time it may be tried again
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fetch")

    # ------------------------------------------------------------ sources
    def ordered_sources(self) -> list[Source]:
        """Sources not dropped, the one that served most first (stable otherwise)."""
        now = time.monotonic()
        with self._lock:
            usable = [s for s in self.sources() if self._bad.get(s.name, 0.0) <= now]
            return sorted(usable, key=lambda s: -self._score.get(s.name, 0))

    def dropped(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [name for name, until in self._bad.items() if until > now]

    def _drop(self, source: Source, cid: Cid, why: str) -> None:
        with self._lock:
            self._bad[source.name] = time.monotonic() + self.bad_source_s
            self._score.pop(source.name, None)
        log.warning("fetch: dropped source %s for %.0f s: it served wrong bytes for %s (%s)",
                    source.name, self.bad_source_s, cid, why)

    # ------------------------------------------------------------ one block
    def fetch_block(self, cid: Cid, deadline: float, attempts: dict[str, str], report: FetchReport, root: str) -> None:
        """Get one block from the first source that has it (verified), into the local store."""
        wait = self.backoff
        while True:
            sources = self.ordered_sources()
            for source in sources:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    block = source.get_block(cid, min(self.timeout, remaining))
                    verify_block(cid, block)
                except IntegrityError as exc:
                    attempts[source.name] = f"wrong bytes ({exc})"
                    self._drop(source, cid, str(exc))
                    continue
                except NotFound:
                    attempts[source.name] = "not found"
                    continue
                except (SourceError, StoreError, OSError) as exc:
                    attempts[source.name] = f"failed ({exc})"
                    continue
                self.local.put_block(cid, block)
                with self._lock:
                    self._score[source.name] = self._score.get(source.name, 0) + 1
                    report.by_source[source.name] = report.by_source.get(source.name, 0) + 1
                    report.blocks += 1
                    report.bytes += len(block)
                return
            if not sources and not attempts:
                # nobody to ask (no peers advertised, no gateway configured): fail now, in words
                raise ContentUnavailable(root, attempts, 0.0, str(cid))
            if time.monotonic() + wait >= deadline:
                raise ContentUnavailable(root, attempts, self._budget_of(deadline), str(cid))
            time.sleep(wait)  # the content may appear (a peer starting, an upload finishing)
            wait = min(wait * 2, 5.0)

    @staticmethod
    def _budget_of(deadline: float) -> float:
        return round(max(0.0, deadline - time.monotonic()), 1)

    # ------------------------------------------------------------ a DAG
    def fetch(self, cid: str | Cid, budget_s: float) -> FetchReport:
        """Make every block of the DAG at `cid` local (fetching what is missing) within
        `budget_s` seconds; ContentUnavailable (with what each source answered) if not."""
        root = Cid.parse(cid)
        started = time.monotonic()
        deadline = started + budget_s
        report = FetchReport(str(root))
        attempts: dict[str, str] = {}
        level = [root]
        try:
            while level:
                missing = [c for c in level if not self.local.has_block(c)]
                if len(missing) == 1:
                    self.fetch_block(missing[0], deadline, attempts, report, str(root))
                elif missing:
                    futures = [self._pool.submit(self.fetch_block, c, deadline, attempts, report, str(root))
                               for c in missing]
                    for f in futures:
                        f.result()
                nxt: list[Cid] = []
                for c in level:
                    if c.codec == DAG_PB:  # inner nodes are small: read them back for their links
                        links, _ = decode_pb_node(self.local.get_block(c))
                        nxt.extend(link.cid for link in links)
                    elif c.codec != RAW:
                        raise IntegrityError(f"fetch: {c} has codec 0x{c.codec:x}; not a UnixFS block")
                level = list(dict.fromkeys(nxt))
        except ContentUnavailable as exc:
            # what did arrive stays in the store (a later fetch finds it local and logs nothing): say where from
            self._log_report(report, started, "before the budget ran out")
            raise ContentUnavailable(str(root), exc.attempts, budget_s, None) from None
        self._log_report(report, started)
        return report

    @staticmethod
    def _log_report(report: FetchReport, started: float, note: str = "") -> None:
        report.seconds = time.monotonic() - started
        if report.blocks:
            log.info("fetch: %s: %d block(s), %d bytes in %.2f s from %s%s", report.cid, report.blocks, report.bytes,
                     report.seconds, ", ".join(f"{s} ({n})" for s, n in report.by_source.items()), f" {note}" if note else "")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FetchingStore:
    """A ContentStore over a local EmbeddedStore: reads fetch what is missing first (within
    `budget_s`), writes go to the local store. Nodes get one of these and use it as before."""

    def __init__(self, local, fetcher: Fetcher, budget_s: float = 120.0):
        self.local = local
        self.fetcher = fetcher
        self.budget_s = budget_s

    def __repr__(self) -> str:
        return f"FetchingStore({self.local!r})"

    @property
    def root(self):
        return self.local.root

    def fetch(self, cid: str | Cid, budget_s: float | None = None) -> FetchReport:
        """The budgeted call: every block of `cid` local within budget_s, else ContentUnavailable."""
        return self.fetcher.fetch(cid, self.budget_s if budget_s is None else budget_s)

    def _ensure(self, cid) -> None:
        if not self.local.has(cid):
            self.fetch(cid)

    # reads: local after _ensure (verified again by the local store)
    def get_bytes(self, cid) -> bytes:
        self._ensure(cid)
        return self.local.get_bytes(cid)

    def get_file(self, cid, path: str | os.PathLike) -> None:
        self._ensure(cid)
        self.local.get_file(cid, path)

    def open(self, cid) -> Iterator[bytes]:
        self._ensure(cid)
        return self.local.open(cid)

    def get_block(self, cid) -> bytes:
        if not self.local.has_block(cid):
            self.fetcher.fetch_block(Cid.parse(cid), time.monotonic() + self.budget_s, {}, FetchReport(str(cid)), str(cid))
        return self.local.get_block(cid)

    def iter_blocks(self, cid):
        self._ensure(cid)
        return self.local.iter_blocks(cid)

    def size(self, cid) -> int:
        self._ensure(cid)
        return self.local.size(cid)

    def export_car(self, cid, path) -> None:
        self._ensure(cid)
        self.local.export_car(cid, path)

    def pin(self, cid) -> None:
        self._ensure(cid)
        self.local.pin(cid)

    def has(self, cid) -> bool:
        """Whether the content is here now (no network)."""
        return self.local.has(cid)

    # writes and local bookkeeping
    def put_bytes(self, data: bytes) -> str:
        return self.local.put_bytes(data)

    def put_file(self, path) -> str:
        return self.local.put_file(path)

    def import_car(self, path) -> list[str]:
        return self.local.import_car(path)

    def __getattr__(self, name):  # unpin, pins, has_block, put_block: the local store's
        return getattr(self.local, name)
