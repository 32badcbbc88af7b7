"""The embedded store: IPFS blocks in a directory, shared by the nodes of one machine.

Layout under `root` (by default `<datadir>/ipfs`):
    blocks/<2 chars>/<base32 multihash>   one file per block (v0 and v1 CIDs share it)
    pins/<cid>                            one empty file per pinned root

Several processes (a trainer and its verifiers) use one directory at once: every
file is written to a unique temp name and renamed into place, so a reader sees a
whole block or none. Blocks are content-addressed, so two writers of the same
block write the same bytes. Reads verify every block against its CID.
"""
from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Iterator

from node.store import car
from node.store.base import CIDError, IntegrityError, NotFound, StoreError, write_atomically
from node.store.cid import (
    DAG_PB,
    RAW,
    Cid,
    build_dag,
    decode_pb_node,
    decode_unixfs,
    iter_file,
    verify_block,
    walk_dag,
)

_counter = itertools.count()


class EmbeddedStore:
    """A ContentStore in a local directory; `put_*` return CIDv1 (raw leaves, base32)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blocks_dir = self.root / "blocks"
        self.pins_dir = self.root / "pins"
        try:
            self.blocks_dir.mkdir(parents=True, exist_ok=True)
            self.pins_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store: cannot create the store at {self.root} ({exc}); pass a writable --datadir") from None
        self._made_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # -- blocks ----------------------------------------------------------------

    def _block_path(self, cid: Cid) -> Path:
        key = cid.block_key()
        return self.blocks_dir / key[-3:-1] / key

    def put_block(self, cid: Cid, block: bytes) -> None:
        """Store one block (verified); a block already there with the right size is kept."""
        verify_block(cid, block)
        self._write_block(cid, block)

    def _write_block(self, cid: Cid, block: bytes) -> None:
        path = self._block_path(cid)
        try:
            if path.stat().st_size == len(block):
                return
        except FileNotFoundError:
            pass
        shard = path.parent
        if shard.name not in self._made_dirs:
            shard.mkdir(exist_ok=True)
            self._made_dirs.add(shard.name)
        # A name no other process or thread uses; O_EXCL makes sure of it.
        tmp = shard / f".{path.name}.{os.getpid()}.{threading.get_ident()}.{next(_counter)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the shard dir went away (pruned by hand): make it again
            shard.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(block)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def _read_block(self, cid: Cid) -> bytes:
        """The raw bytes on disk; callers verify (walk_dag does)."""
        try:
            with open(self._block_path(cid), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(
                f"store: {cid} is not in the local store at {self.root}; "
                "add it (`trainchain store add`), import a CAR, or fetch it from IPFS"
            ) from None

    def _fetch_many(self, cids: list[Cid]) -> Iterator[bytes]:
        return (self._read_block(cid) for cid in cids)

    def has_block(self, cid: str | Cid) -> bool:
        return self._block_path(Cid.parse(cid)).exists()

    def get_block(self, cid: str | Cid) -> bytes:
        """One block by its CID, verified (the trustless-gateway read path)."""
        cid = Cid.parse(cid)
        block = self._read_block(cid)
        verify_block(cid, block)
        return block

    def iter_blocks(self, cid: str | Cid) -> Iterator[tuple[str, bytes]]:
        """Every block of the DAG at `cid`, pre-order, verified: what a CAR holds."""
        for c, block in walk_dag(Cid.parse(cid), self._fetch_many):
            yield str(c), block

    # -- files -----------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"put_bytes: expected bytes, got {type(data).__name__}")
        return str(build_dag(data, 1, self._write_block))

    def put_file(self, path: str | os.PathLike) -> str:
        return str(build_dag(Path(path), 1, self._write_block))

    def open(self, cid: str | Cid) -> Iterator[bytes]:
        """The file's bytes, 256 KiB at a time, each block verified before it is yielded."""
        return iter_file(Cid.parse(cid), self._fetch_many)

    def get_bytes(self, cid: str | Cid) -> bytes:
        return b"".join(self.open(cid))

    def get_file(self, cid: str | Cid, path: str | os.PathLike) -> None:
        root = Cid.parse(cid)  # a malformed CID fails before any file is created
        write_atomically(path, self.open(root))

    def size(self, cid: str | Cid) -> int:
        """The file size the root block declares (for Content-Length)."""
        root = Cid.parse(cid)
        block = self.get_block(root)
        if root.codec == RAW:
            return len(block)
        if root.codec != DAG_PB:
            raise CIDError(f"cid: {root} is not a UnixFS file")
        links, data = decode_pb_node(block)
        fs = decode_unixfs(data)
        if fs.filesize is not None:
            return fs.filesize
        return len(fs.data or b"") + sum(fs.blocksizes)

    def has(self, cid: str | Cid) -> bool:
        """True when every block of the DAG is here (inner nodes are read, leaves stat'ed)."""
        root = Cid.parse(cid)
        stack = [root]
        while stack:
            c = stack.pop()
            if c.codec == RAW:
                if not self._block_path(c).exists():
                    return False
                continue
            try:
                block = self.get_block(c)
            except (NotFound, IntegrityError):
                return False
            if c.codec == DAG_PB:
                links, _ = decode_pb_node(block)
                stack.extend(link.cid for link in links)
        return True

    # -- pins ------------------------------------------------------------------

    def pin(self, cid: str | Cid) -> None:
        root = Cid.parse(cid)
        if not self.has(root):
            raise NotFound(f"pin: {root} is not complete in the local store; add or import it first")
        write_atomically(self.pins_dir / str(root.to_v1()), iter([b""]))

    def unpin(self, cid: str | Cid) -> None:
        try:
            (self.pins_dir / str(Cid.parse(cid).to_v1())).unlink()
        except FileNotFoundError:
            raise NotFound(f"unpin: {cid} is not pinned") from None

    def pins(self) -> list[str]:
        return sorted(p.name for p in self.pins_dir.iterdir() if not p.name.startswith("."))

    # -- CAR -------------------------------------------------------------------

    def export_car(self, cid: str | Cid, path: str | os.PathLike) -> None:
        """Write the whole DAG as a CARv1 (`ipfs dag import` takes it); atomic."""
        root = Cid.parse(cid)
        write_atomically(path, car.iter_car([root], walk_dag(root, self._fetch_many)))

    def import_car(self, path: str | os.PathLike) -> list[str]:
        """Store every block of a CARv1 (each verified); return its roots.

        A bad block stops the import with an IntegrityError; blocks stored before it
        are valid content-addressed blocks and harm nothing.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"store: {path} is not a readable file")
        with open(path, "rb") as f:
            roots = car.read_header(f)
            for cid, block in car.iter_blocks(f):
                self._write_block(cid, block)
        return [str(r) for r in roots]
