"""The content-store interface every backend implements, and its errors.

Every read is verified against the CID it was asked for, whatever the backend:
bytes that do not hash to what the CID says are an `IntegrityError`, never data.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

from node.errors import TrainchainError


class StoreError(TrainchainError):
    """Root of every content-store error; the message says what to do."""


class CIDError(StoreError, ValueError):
    """A CID string that does not parse, or one this store cannot handle."""


class NotFound(StoreError, KeyError):
    """The content (or one of its blocks) is not in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class IntegrityError(StoreError):
    """Bytes that do not match their CID: a corrupted block or a lying daemon."""


class StoreUnavailable(StoreError):
    """The backend (an IPFS daemon) cannot be reached."""


@runtime_checkable
class ContentStore(Protocol):
    """What nodes, the engine and the dapp use; `open_store()` returns one."""

    def put_bytes(self, data: bytes) -> str: ...
    def put_file(self, path: str | os.PathLike) -> str: ...
    def get_bytes(self, cid: str) -> bytes: ...
    def get_file(self, cid: str, path: str | os.PathLike) -> None: ...
    def open(self, cid: str) -> Iterator[bytes]: ...
    def has(self, cid: str) -> bool: ...
    def pin(self, cid: str) -> None: ...
    def get_block(self, cid: str) -> bytes: ...
    def iter_blocks(self, cid: str) -> Iterator[tuple[str, bytes]]: ...
    def size(self, cid: str) -> int: ...
    def export_car(self, cid: str, path: str | os.PathLike) -> None: ...
    def import_car(self, path: str | os.PathLike) -> list[str]: ...


def write_atomically(path: str | os.PathLike, chunks: Iterator[bytes]) -> int:
    """Write `chunks` to a temp file beside `path`, then rename it into place.

    A failure anywhere (including an IntegrityError raised by `chunks`) leaves no
    file at `path` and no temp file behind. Returns the number of bytes written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return written


def read_chunks(source: BinaryIO, size: int) -> Iterator[bytes]:
    """Yield full `size`-byte chunks of `source` (the last one may be shorter)."""
    while True:
        chunk = source.read(size)
        # A pipe or socket may return short reads: keep filling the chunk.
        while chunk and len(chunk) < size:
            more = source.read(size - len(chunk))
            if not more:
                break
            chunk += more
        if not chunk:
            return
        yield chunk
        if len(chunk) < size:
            return
