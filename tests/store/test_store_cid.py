"""CID computation: the shared vectors (from js-ipfs), the DAG shape, CID parsing."""
from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.store import CIDError, compute_cid, compute_cid_v0, parse_cid
from node.store.cid import (
    CHUNK_SIZE,
    DAG_PB,
    MAX_LINKS,
    RAW,
    Cid,
    DagBuilder,
    decode_pb_node,
    decode_unixfs,
    decode_varint,
    encode_varint,
)
from store_helpers import vector_bytes


def test_every_vector_gives_both_cids(vectors, tmp_path):
    assert len(vectors) >= 9
    for case in vectors:
        data = vector_bytes(case["seed"], case["size"])
        assert hashlib.sha256(data).hexdigest() == case["sha256"], "input generator drifted from the vectors"
        assert compute_cid(data) == case["cidv1_raw_leaves"], case["size"]
        assert compute_cid_v0(data) == case["cidv0"], case["size"]
    # The path and file-object inputs stream, and must agree with bytes.
    big = vectors[-1]
    path = tmp_path / "big.bin"
    path.write_bytes(vector_bytes(big["seed"], big["size"]))
    assert compute_cid(path) == big["cidv1_raw_leaves"]
    with open(path, "rb") as f:
        assert compute_cid_v0(f) == big["cidv0"]


def _blocks(data: bytes, version: int) -> dict[Cid, bytes]:
    blocks: dict[Cid, bytes] = {}
    builder = DagBuilder(version, lambda cid, block: blocks.__setitem__(cid, block))
    for i in range(0, len(data), CHUNK_SIZE):
        builder.add_chunk(data[i:i + CHUNK_SIZE])
    root = builder.finish()
    blocks["root"] = root
    return blocks


def test_balanced_layout_174_links_and_equal_depth():
    # 175 leaves: a root over a full node of 174 leaves and a node with one leaf.
    data = b"\x01" * (CHUNK_SIZE * MAX_LINKS) + b"\x02" * 10
    blocks = _blocks(data, 1)
    root = blocks.pop("root")
    links, pb_data = decode_pb_node(blocks[root])
    fs = decode_unixfs(pb_data)
    assert fs.filesize == len(data)
    assert [len(decode_pb_node(blocks[link.cid])[0]) for link in links] == [MAX_LINKS, 1]
    assert fs.blocksizes == (CHUNK_SIZE * MAX_LINKS, 10)
    # Tsize counts every byte of the DAG below the link.
    full = links[0]
    assert full.tsize == len(blocks[full.cid]) + CHUNK_SIZE * MAX_LINKS
    # Identical leaves are one block: the 174 leaves of the first node share one CID.
    assert len({link.cid for link in decode_pb_node(blocks[full.cid])[0]}) == 1
    assert all(c.codec in (RAW, DAG_PB) for c in blocks)


def test_v0_leaves_are_dag_pb_unixfs_files():
    blocks = _blocks(b"x" * (CHUNK_SIZE + 1), 0)
    root = blocks.pop("root")
    assert str(root).startswith("Qm")
    links, _ = decode_pb_node(blocks[root])
    leaf = decode_unixfs(decode_pb_node(blocks[links[1].cid])[1])
    assert (leaf.type, leaf.data, leaf.filesize) == (2, b"x", 1)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3 * 1024), st.integers(min_value=0, max_value=2))
def test_chunked_input_matches_one_shot(data, split):
    # Reading a stream in short pieces must give the CID of the whole bytes.
    class Trickle(io.RawIOBase):
        def __init__(self, payload):
            self.buf = io.BytesIO(payload)

        def readable(self):
            return True

        def read(self, n=-1):
            return self.buf.read(min(n, 7 + split) if n and n > 0 else n)

    assert compute_cid(Trickle(data)) == compute_cid(data)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_roundtrip(n):
    encoded = encode_varint(n)
    assert decode_varint(encoded) == (n, len(encoded))


@given(st.binary(min_size=0, max_size=600))
def test_cid_string_roundtrip(data):
    for text in (compute_cid(data), compute_cid_v0(data)):
        cid = parse_cid(text)
        assert str(cid) == text
        assert Cid.from_bytes(cid.to_bytes()) == (cid, len(cid.to_bytes()))


def test_cid_accepts_other_multibases_and_ipfs_paths():
    v1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    cid = parse_cid(v1)
    assert parse_cid("/ipfs/" + v1) == cid
    assert parse_cid("B" + v1[1:].upper()) == cid
    from multiformats import multibase

    assert parse_cid(multibase.encode(cid.to_bytes(), "base58btc")) == cid


@pytest.mark.parametrize("bad", [
    "", "   ", "hello", "Qm123", "bafybeig", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",
    "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykuaa", "zzzz", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1Aw0H",
])
def test_malformed_cid_is_a_clear_error(bad):
    with pytest.raises(CIDError, match="cid"):
        parse_cid(bad)


def test_non_string_cid_and_unsupported_hash_are_clear_errors():
    with pytest.raises(CIDError, match="expected a CID string"):
        parse_cid(123)
    # CIDv1 raw with a blake2b-256 multihash (0xb220): valid CID, not one we can verify.
    from multiformats import CID

    other = str(CID("base32", 1, "raw", ("blake2b-256", b"\0" * 32)))
    with pytest.raises(CIDError, match="only sha2-256"):
        parse_cid(other)


def test_vector_copy_matches_the_shared_original():
    """The repo's copy of the vectors must be the shared file, byte for byte."""
    from conftest import SHARED_VECTORS, VECTORS

    if not SHARED_VECTORS.exists():
        pytest.skip("the shared vectors are not beside this checkout (a CI clone)")
    assert VECTORS.read_bytes() == SHARED_VECTORS.read_bytes()
