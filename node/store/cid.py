"""CIDs and the UnixFS file DAG, exactly as `ipfs add` builds it.

Kubo's defaults (also js-ipfs's): fixed 256 KiB chunks, a balanced DAG of at most
174 links per node, dag-pb nodes carrying UnixFS `Data`, sha2-256.
- `cid_version=1` = `ipfs add --cid-version 1 --raw-leaves`: leaves are raw blocks,
  CIDs are printed base32 (`bafy...` for a dag-pb root, `bafk...` for a raw one).
- `cid_version=0` = plain `ipfs add`: leaves are dag-pb/UnixFS nodes, CIDs `Qm...`.

Everything streams: a file is read 256 KiB at a time and the builder keeps at most
174 links per DAG level, so memory does not grow with file size.
"""
from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from node.store.base import CIDError, IntegrityError, read_chunks

CHUNK_SIZE = 256 * 1024  # Kubo's default chunker, size-262144
MAX_LINKS = 174  # Kubo's balanced layout: links per node

RAW = 0x55  # multicodec: raw bytes
DAG_PB = 0x70  # multicodec: dag-pb
SHA2_256 = 0x12  # multihash function code
SHA2_256_LEN = 32

# UnixFS Data.Type
UNIXFS_RAW, UNIXFS_DIRECTORY, UNIXFS_FILE, UNIXFS_METADATA, UNIXFS_SYMLINK, UNIXFS_HAMT = range(6)

MAX_BLOCK_SIZE = 2 * 1024 * 1024  # larger blocks are refused by IPFS peers (bitswap limit)

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


# ---------------------------------------------------------------------------
# varints and base encodings
# ---------------------------------------------------------------------------

def encode_varint(n: int) -> bytes:
    """Unsigned LEB128, as protobuf, multiformats and CAR use it."""
    if n < 0:
        raise ValueError("varint: negative")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Return (value, position after it); ValueError on a truncated/overlong varint."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint: truncated")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint: longer than 9 bytes")


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"invalid base58 character {c!r}")
        n = n * 58 + _B58_INDEX[c]
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _b32decode(text: str) -> bytes:
    text = text.upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


# ---------------------------------------------------------------------------
# CID
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Cid:
    """A content identifier: version, codec and a sha2-256 multihash."""

    version: int
    codec: int
    multihash: bytes  # 0x12 0x20 + 32-byte sha256 digest

    @classmethod
    def of(cls, version: int, codec: int, block: bytes | memoryview) -> "Cid":
        return cls(version, codec, bytes([SHA2_256, SHA2_256_LEN]) + hashlib.sha256(block).digest())

    @property
    def digest(self) -> bytes:
        return self.multihash[2:]

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return _b58encode(self.multihash)
        return "b" + _b32encode(self.to_bytes())

    def to_v1(self) -> "Cid":
        return Cid(1, self.codec, self.multihash)

    def block_key(self) -> str:
        """Where a block lives: keyed by multihash, so v0 and v1 CIDs share it."""
        return _b32encode(self.multihash)

    @classmethod
    def parse(cls, text: "str | Cid") -> "Cid":
        """Parse a CID string (v0 base58, v1 in any multibase); CIDError says why not."""
        if isinstance(text, Cid):
            return text
        if not isinstance(text, str):
            raise CIDError(f"cid: expected a CID string, got {type(text).__name__}")
        text = text.strip()
        if text.startswith("/ipfs/"):
            text = text[len("/ipfs/"):]
        if not text:
            raise CIDError("cid: empty string; pass a CID such as bafybei... or Qm...")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                raw = _b58decode(text)
            elif text[0] == "b":
                raw = _b32decode(text[1:])
            elif text[0] == "B":
                raw = _b32decode(text[1:].lower())
            else:
                from multiformats import multibase

                raw = bytes(multibase.decode(text))
            cid, end = cls.from_bytes(raw)
        except CIDError:
            raise
        except Exception as exc:  # binascii.Error, KeyError, ValueError, ...
            raise CIDError(f"cid: {text!r} is not a valid CID ({exc}); expected e.g. bafybei... or Qm...") from None
        if end != len(raw):
            raise CIDError(f"cid: {text!r} has {len(raw) - end} trailing bytes; not a valid CID")
        return cid

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview, pos: int = 0) -> tuple["Cid", int]:
        """Decode a binary CID at `pos`; return it and the position after it."""
        raw = bytes(raw[pos:pos + 80])  # a CID we handle is never longer than this
        if raw[:2] == bytes([SHA2_256, SHA2_256_LEN]):
            if len(raw) < 34:
                raise CIDError("cid: truncated CIDv0")
            return cls(0, DAG_PB, raw[:34]), pos + 34
        version, p = decode_varint(raw, 0)
        if version != 1:
            raise CIDError(f"cid: unsupported CID version {version}")
        codec, p = decode_varint(raw, p)
        fn, p = decode_varint(raw, p)
        length, p = decode_varint(raw, p)
        if fn != SHA2_256 or length != SHA2_256_LEN:
            raise CIDError(f"cid: unsupported multihash 0x{fn:x}/{length} (only sha2-256 is supported)")
        if len(raw) < p + length:
            raise CIDError("cid: truncated multihash")
        return cls(1, codec, bytes([SHA2_256, SHA2_256_LEN]) + raw[p:p + length]), pos + p + length


def parse_cid(text: "str | Cid") -> Cid:
    return Cid.parse(text)


def verify_block(cid: Cid, block: bytes | memoryview) -> None:
    """Raise IntegrityError unless `block` hashes to `cid`."""
    if hashlib.sha256(block).digest() != cid.digest:
        raise IntegrityError(
            f"integrity: block {cid} does not match its CID (corrupted on disk or sent by a lying peer); "
            "it was not used — fetch it again from a trusted source"
        )


# ---------------------------------------------------------------------------
# protobuf: dag-pb PBNode and UnixFS Data
# ---------------------------------------------------------------------------

def _field_bytes(field: int, value: bytes) -> bytes:
    return encode_varint(field << 3 | 2) + encode_varint(len(value)) + value


def _field_varint(field: int, value: int) -> bytes:
    return encode_varint(field << 3) + encode_varint(value)


@dataclass(frozen=True, slots=True)
class Link:
    cid: Cid
    name: str
    tsize: int  # bytes of the whole DAG below (and including) the child block


def encode_pb_node(links: Iterable[Link], data: bytes | None) -> bytes:
    """dag-pb canonical form: Links (field 2) before Data (field 1)."""
    parts = []
    for link in links:
        body = (
            _field_bytes(1, link.cid.to_bytes())
            + _field_bytes(2, link.name.encode())
            + _field_varint(3, link.tsize)
        )
        parts.append(_field_bytes(2, body))
    if data is not None:
        parts.append(_field_bytes(1, data))
    return b"".join(parts)


def _iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, object]]:
    """Yield (field number, wire type, value) for varint and length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = decode_varint(buf, pos)
        elif wire == 2:
            length, pos = decode_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("protobuf: truncated field")
            value = buf[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"protobuf: unsupported wire type {wire}")
        yield field, wire, value


def decode_pb_node(block: bytes | memoryview) -> tuple[list[Link], bytes | None]:
    """Parse a dag-pb block into (links, data)."""
    links: list[Link] = []
    data = None
    try:
        for field, wire, value in _iter_fields(memoryview(block)):
            if field == 2 and wire == 2:
                cid = name = None
                tsize = 0
                for f, w, v in _iter_fields(value):
                    if f == 1 and w == 2:
                        cid, _ = Cid.from_bytes(v)
                    elif f == 2 and w == 2:
                        name = bytes(v).decode()
                    elif f == 3 and w == 0:
                        tsize = v
                if cid is None:
                    raise ValueError("link without a hash")
                links.append(Link(cid, name or "", tsize))
            elif field == 1 and wire == 2:
                data = bytes(value)
    except (ValueError, CIDError) as exc:
        raise IntegrityError(f"dag-pb: malformed node ({exc})") from None
    return links, data


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: int
    data: bytes | None
    filesize: int | None
    blocksizes: tuple[int, ...]


def encode_unixfs(type_: int, data: bytes | None, filesize: int | None, blocksizes: Iterable[int] = ()) -> bytes:
    out = _field_varint(1, type_)
    if data is not None:
        out += _field_bytes(2, data)
    if filesize is not None:
        out += _field_varint(3, filesize)
    for size in blocksizes:
        out += _field_varint(4, size)
    return out


def decode_unixfs(buf: bytes | None) -> UnixFSData:
    if buf is None:
        raise IntegrityError("unixfs: dag-pb node without UnixFS data; not a file")
    type_ = None
    data = filesize = None
    sizes = []
    try:
        for field, wire, value in _iter_fields(memoryview(buf)):
            if field == 1 and wire == 0:
                type_ = value
            elif field == 2 and wire == 2:
                data = bytes(value)
            elif field == 3 and wire == 0:
                filesize = value
            elif field == 4 and wire == 0:
                sizes.append(value)
            elif field == 4 and wire == 2:  # a packed encoding of blocksizes
                p = 0
                while p < len(value):
                    v, p = decode_varint(value, p)
                    sizes.append(v)
    except ValueError as exc:
        raise IntegrityError(f"unixfs: malformed data ({exc})") from None
    if type_ is None:
        raise IntegrityError("unixfs: data without a type")
    return UnixFSData(type_, data, filesize, tuple(sizes))


# ---------------------------------------------------------------------------
# Building the file DAG (streaming)
# ---------------------------------------------------------------------------

BlockSink = Callable[[Cid, bytes], None]


@dataclass(slots=True)
class _Entry:
    cid: Cid
    tsize: int
    filesize: int


class DagBuilder:
    """Feed 256 KiB chunks in file order; `finish()` returns the root CID.

    Every block (leaves and inner nodes) is handed to `sink(cid, block)` as it is
    made, so a store can write it out; `sink=None` only computes the CID.
    """

    def __init__(self, cid_version: int = 1, sink: BlockSink | None = None):
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self.cid_version = cid_version
        self.sink = sink
        self.levels: list[list[_Entry]] = [[]]
        self.size = 0
        self._last_short = False

    def _emit(self, cid: Cid, block: bytes) -> None:
        if self.sink is not None:
            self.sink(cid, block)

    def _leaf(self, chunk: bytes) -> _Entry:
        if self.cid_version == 1:
            cid = Cid.of(1, RAW, chunk)
            self._emit(cid, chunk)
            return _Entry(cid, len(chunk), len(chunk))
        block = encode_pb_node((), encode_unixfs(UNIXFS_FILE, chunk, len(chunk)))
        cid = Cid.of(0, DAG_PB, block)
        self._emit(cid, block)
        return _Entry(cid, len(block), len(chunk))

    def _parent(self, children: list[_Entry]) -> _Entry:
        filesize = sum(c.filesize for c in children)
        data = encode_unixfs(UNIXFS_FILE, None, filesize, [c.filesize for c in children])
        block = encode_pb_node([Link(c.cid, "", c.tsize) for c in children], data)
        cid = Cid.of(self.cid_version, DAG_PB, block)
        self._emit(cid, block)
        return _Entry(cid, len(block) + sum(c.tsize for c in children), filesize)

    def add_chunk(self, chunk: bytes) -> None:
        if self._last_short:
            raise ValueError("DagBuilder: only the last chunk may be shorter than CHUNK_SIZE")
        if len(chunk) > CHUNK_SIZE:
            raise ValueError("DagBuilder: chunk larger than CHUNK_SIZE")
        if not chunk:
            return
        self._last_short = len(chunk) < CHUNK_SIZE
        self.size += len(chunk)
        self.levels[0].append(self._leaf(chunk))
        # A full level becomes one node of the level above (Kubo's balanced layout).
        level = 0
        while len(self.levels[level]) == MAX_LINKS:
            parent = self._parent(self.levels[level])
            self.levels[level] = []
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(parent)
            level += 1

    def finish(self) -> Cid:
        if self.size == 0:
            return self._empty()
        for level, entries in enumerate(self.levels):
            higher = any(self.levels[level + 1:])
            if not entries:
                continue
            if not higher and len(entries) == 1:
                return entries[0].cid
            parent = self._parent(entries)
            self.levels[level] = []
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(parent)
        raise AssertionError("DagBuilder: unreachable")

    def _empty(self) -> Cid:
        if self.cid_version == 1:
            cid = Cid.of(1, RAW, b"")
            self._emit(cid, b"")
            return cid
        block = encode_pb_node((), encode_unixfs(UNIXFS_FILE, None, 0))
        cid = Cid.of(0, DAG_PB, block)
        self._emit(cid, block)
        return cid


def iter_source_chunks(data_or_path: "bytes | bytearray | memoryview | str | os.PathLike | BinaryIO") -> Iterator[bytes]:
    """256 KiB chunks of bytes, a file path or a binary file object."""
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        view = memoryview(data_or_path)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start:start + CHUNK_SIZE])
        return
    if isinstance(data_or_path, (str, os.PathLike)):
        path = Path(data_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"store: {path} is not a readable file")
        with open(path, "rb") as f:
            yield from read_chunks(f, CHUNK_SIZE)
        return
    if hasattr(data_or_path, "read"):
        yield from read_chunks(data_or_path, CHUNK_SIZE)
        return
    raise TypeError(f"store: expected bytes, a path or a binary file, got {type(data_or_path).__name__}")


def build_dag(source, cid_version: int = 1, sink: BlockSink | None = None) -> Cid:
    builder = DagBuilder(cid_version, sink)
    for chunk in iter_source_chunks(source):
        builder.add_chunk(chunk)
    return builder.finish()


def compute_cid(data_or_path, *, cid_version: int = 1) -> str:
    """The CID `ipfs add --cid-version 1 --raw-leaves` gives (base32), storing nothing."""
    return str(build_dag(data_or_path, cid_version))


def compute_cid_v0(data_or_path) -> str:
    """The CIDv0 (`Qm...`) plain `ipfs add` gives, storing nothing."""
    return str(build_dag(data_or_path, 0))


# ---------------------------------------------------------------------------
# Reading the file DAG back (verified, streaming)
# ---------------------------------------------------------------------------

FetchMany = Callable[[list[Cid]], Iterator[bytes]]


def walk_dag(root: Cid, fetch_many: FetchMany) -> Iterator[tuple[Cid, bytes]]:
    """Pre-order walk of a DAG: yields (cid, block) with every block verified.

    `fetch_many(cids)` yields the blocks of `cids` in order (it may prefetch);
    blocks are checked against their CIDs here, whatever the backend did. Pre-order
    is file order for UnixFS and the order `ipfs dag export` writes a CAR in.
    """
    if root.codec not in (RAW, DAG_PB):
        raise CIDError(f"cid: codec 0x{root.codec:x} of {root} is not a UnixFS file (raw or dag-pb)")
    stack: list[tuple[Iterator[Cid], Iterator[bytes]]] = [(iter([root]), fetch_many([root]))]
    while stack:
        cids, blocks = stack[-1]
        cid = next(cids, None)
        if cid is None:
            stack.pop()
            continue
        block = next(blocks)
        verify_block(cid, block)
        yield cid, block
        if cid.codec == DAG_PB:
            links, _ = decode_pb_node(block)
            if links:
                for link in links:
                    if link.cid.codec not in (RAW, DAG_PB):
                        raise IntegrityError(f"dag-pb: {cid} links to codec 0x{link.cid.codec:x}; not a UnixFS file")
                children = [link.cid for link in links]
                stack.append((iter(children), fetch_many(children)))


def iter_file(root: Cid, fetch_many: FetchMany) -> Iterator[bytes]:
    """The bytes of the UnixFS file at `root`, block by block, every block verified."""
    expected = None
    produced = 0
    for cid, block in walk_dag(root, fetch_many):
        if cid.codec == RAW:
            data = block
        else:
            _, pb_data = decode_pb_node(block)
            fs = decode_unixfs(pb_data)
            if fs.type not in (UNIXFS_FILE, UNIXFS_RAW):
                kind = {UNIXFS_DIRECTORY: "a directory", UNIXFS_HAMT: "a sharded directory",
                        UNIXFS_SYMLINK: "a symlink"}.get(fs.type, f"UnixFS type {fs.type}")
                raise CIDError(f"cid: {cid} is {kind}, not a file; trainchain stores single files")
            if expected is None:
                expected = fs.filesize
            data = fs.data or b""
        produced += len(data)
        if data:
            yield data
    if expected is not None and produced != expected:
        raise IntegrityError(f"unixfs: {root} says {expected} bytes but its blocks hold {produced}")
