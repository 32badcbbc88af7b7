"""The embedded store: round trips, verification, atomic writes, concurrency, memory."""
from __future__ import annotations

import multiprocessing
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.store import (
    CIDError,
    ContentStore,
    EmbeddedStore,
    IntegrityError,
    NotFound,
    StoreError,
    compute_cid,
    compute_cid_v0,
    open_store,
)
from node.store.cid import CHUNK_SIZE, Cid
from store_helpers import vector_bytes

UNKNOWN = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"


def _leaf_paths(store: EmbeddedStore) -> list[Path]:
    return sorted(p for p in store.blocks_dir.rglob("*") if p.is_file())


def test_open_store_defaults_and_protocol(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINCHAIN_IPFS_API", raising=False)
    monkeypatch.delenv("TRAINCHAIN_STORE_DIR", raising=False)
    monkeypatch.setenv("TRAINCHAIN_DATADIR", str(tmp_path / "dd"))
    store = open_store()
    assert isinstance(store, EmbeddedStore) and isinstance(store, ContentStore)
    assert store.root == tmp_path / "dd" / "ipfs"
    assert open_store(tmp_path / "other").root == tmp_path / "other" / "ipfs"


def test_store_dir_env_shares_one_store_across_data_dirs(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINCHAIN_IPFS_API", raising=False)
    monkeypatch.setenv("TRAINCHAIN_STORE_DIR", str(tmp_path / "shared"))
    trainer, verifier = open_store(tmp_path / "trainer"), open_store(tmp_path / "verifier")
    assert trainer.root == verifier.root == tmp_path / "shared"
    cid = trainer.put_bytes(b"a checkpoint")
    assert verifier.get_bytes(cid) == b"a checkpoint"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([0, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]),
       seed=st.text(max_size=4))
def test_put_get_roundtrip_any_size(store, size, seed):
    data = vector_bytes(seed, size)
    cid = store.put_bytes(data)
    assert cid == compute_cid(data)
    assert store.get_bytes(cid) == data
    assert b"".join(store.open(cid)) == data
    assert store.has(cid) and store.size(cid) == size


def test_put_file_get_file_and_blocks(store, tmp_path):
    data = vector_bytes("file", 5 * CHUNK_SIZE + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cid = store.put_file(src)
    assert cid == store.put_bytes(data) == compute_cid(src)
    out = tmp_path / "deep" / "out.bin"
    store.get_file(cid, out)
    assert out.read_bytes() == data
    blocks = list(store.iter_blocks(cid))
    assert blocks[0][0] == cid and len(blocks) == 1 + 6
    assert store.get_block(blocks[1][0]) == data[:CHUNK_SIZE]


def test_unknown_cid_is_not_found_and_writes_nothing(store, tmp_path):
    with pytest.raises(NotFound, match="not in the local store"):
        store.get_bytes(UNKNOWN)
    out = tmp_path / "never.bin"
    with pytest.raises(NotFound):
        store.get_file(UNKNOWN, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")], "no temp file left"
    assert not store.has(UNKNOWN)
    with pytest.raises(NotFound, match="add or import it first"):
        store.pin(UNKNOWN)


def test_malformed_cid_is_a_clear_error(store, tmp_path):
    for bad in ("not-a-cid", "", "Qm" + "1" * 44):
        with pytest.raises(CIDError):
            store.get_bytes(bad)
        with pytest.raises(CIDError):
            store.get_file(bad, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_inner_block_is_not_found(store):
    data = vector_bytes("gap", 3 * CHUNK_SIZE)
    cid = store.put_bytes(data)
    # Delete the last leaf: the first two chunks stream out, then the read fails.
    last = str(list(store.iter_blocks(cid))[-1][0])
    store._block_path(Cid.parse(last)).unlink()
    assert not store.has(cid)
    with pytest.raises(NotFound):
        store.get_bytes(cid)


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap"])
def test_corrupted_block_is_rejected_never_returned(store, tmp_path, damage):
    data = vector_bytes("tamper", 2 * CHUNK_SIZE + 3)
    cid = store.put_bytes(data)
    leaf = store._block_path(Cid.parse(str(list(store.iter_blocks(cid))[2][0])))
    raw = bytearray(leaf.read_bytes())
    if damage == "flip":
        raw[100] ^= 0x01
    elif damage == "truncate":
        raw = raw[:-1]
    else:
        raw = bytearray(vector_bytes("other", len(raw)))
    leaf.write_bytes(bytes(raw))
    out = tmp_path / "out.bin"
    with pytest.raises(IntegrityError, match="does not match its CID"):
        store.get_file(cid, out)
    assert not out.exists(), "a failed get must leave nothing half-written"
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    stream = store.open(cid)
    assert next(stream) == data[:CHUNK_SIZE]  # blocks before the bad one are fine
    with pytest.raises(IntegrityError):
        next(stream)
    # A fresh put repairs a truncated block (the size no longer matches).
    if damage == "truncate":
        assert store.put_bytes(data) == cid and store.get_bytes(cid) == data


def test_corrupted_root_and_lying_file_size(store):
    cid = store.put_bytes(b"hello world")
    path = store._block_path(Cid.parse(cid))
    path.write_bytes(b"hello worle")
    with pytest.raises(IntegrityError):
        store.get_bytes(cid)
    with pytest.raises(IntegrityError):
        store.get_block(cid)


def test_get_file_replaces_atomically(store, tmp_path):
    out = tmp_path / "model.bin"
    out.write_bytes(b"old")
    bad = store.put_bytes(vector_bytes("bad", 2 * CHUNK_SIZE))
    leaf = store._block_path(Cid.parse(str(list(store.iter_blocks(bad))[-1][0])))
    leaf.write_bytes(b"\0" * leaf.stat().st_size)
    with pytest.raises(IntegrityError):
        store.get_file(bad, out)
    assert out.read_bytes() == b"old", "a failed get must not touch the existing file"
    good = store.put_bytes(b"new")
    store.get_file(good, out)
    assert out.read_bytes() == b"new"


def test_put_bad_input_is_a_clear_error(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a readable file"):
        store.put_file(tmp_path / "missing.bin")
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path)  # a directory
    with pytest.raises(TypeError, match="expected bytes"):
        store.put_bytes("text is not bytes")


def test_directory_cid_is_refused(store):
    # A UnixFS directory node (Type=1) with no links: valid dag-pb, not a file.
    from node.store.cid import DAG_PB, encode_pb_node, encode_unixfs

    block = encode_pb_node((), encode_unixfs(1, None, None))
    cid = Cid.of(1, DAG_PB, block)
    store.put_block(cid, block)
    with pytest.raises(CIDError, match="directory"):
        store.get_bytes(str(cid))


def test_pin_and_unpin(store):
    cid = store.put_bytes(b"keep me")
    store.pin(cid)
    assert cid in store.pins()
    store.unpin(cid)
    assert cid not in store.pins()
    with pytest.raises(NotFound):
        store.unpin(cid)


def test_v0_content_is_readable(store, tmp_path):
    # A CAR with CIDv0 (dag-pb leaves) imports and reads back by its Qm... CID.
    from node.store import car
    from node.store.cid import DagBuilder

    data = vector_bytes("v0", 2 * CHUNK_SIZE + 9)
    blocks = []
    builder = DagBuilder(0, lambda c, b: blocks.append((c, b)))
    for i in range(0, len(data), CHUNK_SIZE):
        builder.add_chunk(data[i:i + CHUNK_SIZE])
    root = builder.finish()
    path = tmp_path / "v0.car"
    with open(path, "wb") as f:
        car.write_car(f, [root], reversed(blocks))
    assert store.import_car(path) == [str(root)] == [compute_cid_v0(data)]
    assert store.get_bytes(str(root)) == data


def _hammer(root: str, seed: int, rounds: int, queue) -> None:
    """One node process: put shared and own content, read everything back."""
    try:
        store = EmbeddedStore(root)
        shared = vector_bytes("shared", 3 * CHUNK_SIZE + 1)
        for r in range(rounds):
            own = vector_bytes(f"own{seed}:{r}", CHUNK_SIZE + r)
            cids = [store.put_bytes(shared), store.put_bytes(own)]
            assert store.get_bytes(cids[0]) == shared
            assert store.get_bytes(cids[1]) == own
        queue.put("ok")
    except BaseException as exc:  # report, don't hang the parent
        queue.put(repr(exc))


def test_several_processes_share_one_store(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    root = str(tmp_path / "shared-ipfs")
    procs = [ctx.Process(target=_hammer, args=(root, i, 6, queue)) for i in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert results == ["ok"] * 4
    leftovers = [p for p in Path(root).rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_memory_stays_flat_for_large_files(store, tmp_path):
    size = 24 * 1024 * 1024
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for i in range(size // (1 << 20)):
            f.write(vector_bytes(f"m{i}", 1 << 20))
    tracemalloc.start()
    try:
        cid = store.put_file(src)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.get_file(cid, tmp_path / "back.bin")
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert put_peak < 4 * 1024 * 1024, put_peak
    assert get_peak < 4 * 1024 * 1024, get_peak
    assert os.path.getsize(tmp_path / "back.bin") == size
    assert compute_cid(tmp_path / "back.bin") == cid


def test_store_errors_share_one_root():
    for exc in (CIDError, NotFound, IntegrityError):
        assert issubclass(exc, StoreError)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.integers(min_value=0, max_value=5), tail=st.integers(min_value=0, max_value=300),
       repeat=st.booleans())
def test_car_roundtrip_moves_everything(store, tmp_path_factory, chunks, tail, repeat):
    # Invariant: export -> import into an empty store gives back the same bytes and blocks.
    one = vector_bytes("car-chunk", CHUNK_SIZE)
    data = (one * chunks if repeat else vector_bytes(f"car{chunks}", chunks * CHUNK_SIZE)) + b"t" * tail
    cid = store.put_bytes(data)
    where = tmp_path_factory.mktemp("car")
    store.export_car(cid, where / "x.car")
    fresh = EmbeddedStore(where / "fresh")
    assert fresh.import_car(where / "x.car") == [cid]
    assert fresh.get_bytes(cid) == data
    assert [c for c, _ in fresh.iter_blocks(cid)] == [c for c, _ in store.iter_blocks(cid)]
