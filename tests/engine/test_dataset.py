"""Datasets in the content store; the batch schedule is a pure function of (manifest, seed, g)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from node.engine.dataset import Dataset, Manifest, Shard, batch_hash, build_dataset, demo_corpus_paths
from node.engine.errors import DatasetError


def test_build_then_load_gives_back_the_files(tmp_path, store):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"hello " * 50)
    b.write_bytes(b"world " * 50)
    cid = build_dataset([a, b], store, shard_bytes=128)
    ds = Dataset.load(cid, store)
    assert bytes(ds.tokens.tolist()) == a.read_bytes() + b"\n" + b.read_bytes()
    assert len(ds.manifest.shards) == 5  # 601 bytes in 128-byte shards
    assert [s.name for s in ds.manifest.sources] == ["a.txt", "b.txt"]
    # same files, same manifest CID: a dataset is content-addressed
    assert build_dataset([a, b], store, shard_bytes=128) == cid


def test_directories_expand_sorted_with_a_pattern(tmp_path, store):
    (tmp_path / "d").mkdir()
    for name in ("z.py", "a.py", "m.txt"):
        (tmp_path / "d" / name).write_text(name * 10)
    ds = Dataset.load(build_dataset([tmp_path / "d"], store, pattern="*.py"), store)
    assert [s.name for s in ds.manifest.sources] == ["a.py", "z.py"]


def test_manifest_that_lies_about_a_shard_is_refused(store):
    chunk = b"x" * 100
    cid = store.put_bytes(chunk)
    bad = Manifest(total_bytes=100, shards=[Shard(cid=cid, size=100, sha256="0" * 64)])
    with pytest.raises(DatasetError, match="does not match the manifest"):
        Dataset.load(store.put_bytes(bad.canonical_json()), store)


def test_non_manifest_is_refused(store):
    with pytest.raises(DatasetError, match="not a dataset manifest"):
        Dataset.load(store.put_bytes(b'{"format": "something else"}'), store)


def test_bad_inputs(tmp_path, store):
    with pytest.raises(DatasetError, match="no such file"):
        build_dataset([tmp_path / "missing.txt"], store)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        build_dataset([tmp_path / "empty"], store)


def test_batch_is_a_pure_function_of_seed_and_step(dataset, tiny_spec):
    a = dataset.batch_for(tiny_spec, 41)
    assert a.dtype == torch.int64 and a.shape == (tiny_spec.batch_size, tiny_spec.model.block_size + 1)
    assert torch.equal(a, dataset.batch_for(tiny_spec, 41))
    assert not torch.equal(a, dataset.batch_for(tiny_spec, 42))
    assert not torch.equal(a, dataset.batch(tiny_spec.seed + 1, 41, tiny_spec.batch_size, tiny_spec.model.block_size))
    # rows are windows of the stream at the derived offsets
    T = tiny_spec.model.block_size
    for row, off in zip(a, dataset.offsets(tiny_spec.seed, 41, tiny_spec.batch_size, T)):
        assert torch.equal(row, dataset.tokens[off:off + T + 1].long())


def test_batch_offsets_are_pinned():
    """Offsets come from sha256, not torch's RNG: fixed values, on any platform."""
    ds = Dataset(bytes(range(256)) * 4)
    assert ds.offsets(1337, 0, 4, 32) == [seed % (1024 - 32) for seed in _expected_seeds(1337, 0, 4)]


def _expected_seeds(seed, g, n):
    return [int.from_bytes(hashlib.sha256(f"{seed}:{g}:batch:{i}".encode()).digest()[:8], "big") & (2**63 - 1)
            for i in range(n)]


def test_batch_hash_is_sha256_of_token_bytes(dataset, tiny_spec):
    b = dataset.batch_for(tiny_spec, 3)
    assert batch_hash(b) == hashlib.sha256(bytes(b.flatten().tolist())).digest()
    with pytest.raises(DatasetError, match="outside 0..255"):
        batch_hash(torch.tensor([[256]]))


def test_too_short_for_the_context(tiny_spec):
    with pytest.raises(DatasetError, match="too short"):
        Dataset(b"abc").batch_for(tiny_spec, 0)


def test_demo_corpus_is_sorted_stdlib_python_within_the_limit():
    paths = demo_corpus_paths(limit_bytes=500_000)
    assert paths == sorted(paths) and all(p.suffix == ".py" for p in paths)
    assert 0 < sum(p.stat().st_size for p in paths) <= 500_000
