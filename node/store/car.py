"""CARv1 files: what `ipfs dag export` writes and `ipfs dag import` reads.

Layout: varint(len(header)) ‖ dag-cbor {"roots": [CID...], "version": 1}, then for
each block varint(len(cid) + len(block)) ‖ binary CID ‖ block.
"""
from __future__ import annotations

from typing import BinaryIO, Iterable, Iterator

import cbor2

from node.store.base import CIDError, IntegrityError
from node.store.cid import Cid, encode_varint, verify_block

MAX_SECTION = 8 * 1024 * 1024  # far above any IPFS block (2 MiB); guards against a bogus length
MAX_HEADER = 1024 * 1024


def _cbor_cid(cid: Cid) -> bytes:
    """dag-cbor CID: tag 42 around bytes 0x00 ‖ binary CID."""
    payload = b"\0" + cid.to_bytes()
    return b"\xd8\x2a" + _cbor_head(2, len(payload)) + payload


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + n.to_bytes(4, "big")


def encode_header(roots: list[Cid]) -> bytes:
    # dag-cbor map keys sort by length first: "roots" (5) before "version" (7).
    body = (
        _cbor_head(5, 2)
        + _cbor_head(3, 5) + b"roots"
        + _cbor_head(4, len(roots)) + b"".join(_cbor_cid(c) for c in roots)
        + _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    )
    return encode_varint(len(body)) + body


def iter_car(roots: list[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> Iterator[bytes]:
    """The byte sections of a CARv1 (header, then each block once), for streaming."""
    yield encode_header(roots)
    seen: set[bytes] = set()
    for cid, block in blocks:
        key = cid.to_bytes()
        if key in seen:
            continue
        seen.add(key)
        yield encode_varint(len(key) + len(block)) + key
        yield block


def write_car(out: BinaryIO, roots: list[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> int:
    """Write a CARv1; a block that appears twice is written once. Returns bytes written."""
    written = 0
    for section in iter_car(roots, blocks):
        out.write(section)
        written += len(section)
    return written


def _read_varint(f: BinaryIO) -> int | None:
    """A varint from a stream; None at a clean end of file."""
    result = shift = 0
    first = True
    while True:
        b = f.read(1)
        if not b:
            if first:
                return None
            raise IntegrityError("car: truncated file (inside a length prefix)")
        first = False
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise IntegrityError("car: malformed length prefix")


def _read_exactly(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise IntegrityError(f"car: truncated file (in {what}: {len(data)} of {n} bytes)")
    return data


def read_header(f: BinaryIO) -> list[Cid]:
    length = _read_varint(f)
    if length is None:
        raise IntegrityError("car: empty file; not a CAR")
    if length == 0 or length > MAX_HEADER:
        raise IntegrityError(f"car: header length {length} is implausible; not a CARv1 file")
    try:
        header = cbor2.loads(_read_exactly(f, length, "the header"))
    except IntegrityError:
        raise
    except Exception as exc:
        raise IntegrityError(f"car: header is not valid CBOR ({exc}); not a CAR file") from None
    if not isinstance(header, dict):
        raise IntegrityError("car: header is not a map; not a CAR file")
    if header.get("version") != 1:
        raise IntegrityError(
            f"car: version {header.get('version')!r} is not supported; export a CARv1 (`ipfs dag export` does)"
        )
    roots = []
    for item in header.get("roots") or []:
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 42 and isinstance(item.value, bytes)
                and item.value[:1] == b"\0"):
            raise IntegrityError("car: a root is not a dag-cbor CID")
        try:
            cid, end = Cid.from_bytes(item.value, 1)
        except (CIDError, ValueError) as exc:
            raise IntegrityError(f"car: bad root CID ({exc})") from None
        roots.append(cid)
    return roots


def iter_blocks(f: BinaryIO, verify: bool = True) -> Iterator[tuple[Cid, bytes]]:
    """The blocks after the header, each verified against its CID (unless the caller
    verifies them itself, as walk_dag does)."""
    while True:
        length = _read_varint(f)
        if length is None:
            return
        if length > MAX_SECTION:
            raise IntegrityError(f"car: section of {length} bytes is larger than any IPFS block; refusing it")
        section = _read_exactly(f, length, "a block")
        try:
            cid, end = Cid.from_bytes(section)
        except (CIDError, ValueError) as exc:
            raise IntegrityError(f"car: bad block CID ({exc})") from None
        block = section[end:]
        if verify:
            verify_block(cid, block)
        yield cid, block
