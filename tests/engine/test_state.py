"""State files and the canonical state hash; hostile files give a clear error and no state."""
from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from node.engine.errors import StateError
from node.engine.genesis import compute_genesis_state
from node.engine.state import (TrainingState, compute_tensor_digest, hash_tensors, load_state, save_state,
                               state_hash)


@pytest.fixture
def state(tiny_spec) -> TrainingState:
    s = compute_genesis_state(tiny_spec)
    # non-trivial moments and steps, so that every part of the state matters
    g = torch.Generator().manual_seed(7)
    for n in s.params:
        s.exp_avg[n] = torch.randn(s.params[n].shape, generator=g)
        s.exp_avg_sq[n] = torch.rand(s.params[n].shape, generator=g)
        s.steps[n] = torch.tensor(5, dtype=torch.int64)
    s.global_step = 5
    return s


def test_save_load_round_trip_keeps_the_hash(state, tmp_path):
    path = tmp_path / "s.safetensors"
    h = save_state(path, state)
    assert h == state_hash(state) and len(h) == 32
    loaded = load_state(path, expected_hash=h)
    assert state_hash(loaded) == h
    assert loaded.global_step == 5


def test_the_same_state_always_gives_the_same_file(state, tmp_path):
    """Byte-identical checkpoints, so the same state always has the same CID (safetensors
    alone writes its metadata map in hash order)."""
    from node.store import compute_cid

    files = [tmp_path / f"s{i}.safetensors" for i in range(4)]
    for f in files:
        save_state(f, state, metadata={"spec_hash": "0x" + "ab" * 32, "z": "1", "a": "2"})
    assert len({f.read_bytes() for f in files}) == 1
    assert len({compute_cid(f) for f in files}) == 1
    assert state_hash(load_state(files[0])) == state_hash(state)


def test_hash_ignores_file_layout_and_metadata(state, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_state(a, state, {"note": "one"})
    tensors = {n: t.contiguous() for n, t in reversed(list(state.tensors().items()))}
    save_file(tensors, str(b), metadata={"other": "metadata"})
    assert a.read_bytes() != b.read_bytes()
    assert state_hash(load_state(a)) == state_hash(load_state(b))


def test_parallel_and_serial_hash_agree(state):
    assert state_hash(state, parallel=True) == state_hash(state, parallel=False)


def test_hash_is_sensitive_to_every_part(state):
    base = state_hash(state)
    name = sorted(state.params)[0]
    variants = []
    for part in ("params", "exp_avg", "exp_avg_sq"):
        t = getattr(state, part)[name].clone()
        t.view(-1)[0] = torch.nextafter(t.view(-1)[0], torch.tensor(float("inf")))  # one ulp
        variants.append(state.tensors() | {f"{'model' if part == 'params' else 'optim.' + part}.{name}": t})
    variants.append(state.tensors() | {f"optim.step.{name}": torch.tensor(6, dtype=torch.int64)})
    variants.append(state.tensors() | {"meta.global_step": torch.tensor(6, dtype=torch.int64)})
    hashes = {hash_tensors(v) for v in variants}
    assert len(hashes) == len(variants) and base not in hashes


def test_tensor_digest_encodes_name_dtype_and_shape():
    t = torch.zeros(2, 3)
    assert compute_tensor_digest("a", t) != compute_tensor_digest("b", t)
    assert compute_tensor_digest("a", t) != compute_tensor_digest("a", t.view(3, 2))
    assert compute_tensor_digest("a", torch.zeros(2, dtype=torch.int64)) != compute_tensor_digest(
        "a", torch.zeros(4, dtype=torch.float32))  # same 16 zero bytes, other dtype


# ------------------------------------------------------------------ hostile files
def _write_raw(path, header: dict | bytes, data: bytes = b"", declared_len: int | None = None):
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(hb) if declared_len is None else declared_len
    path.write_bytes(struct.pack("<Q", n) + hb + data)
    return path


def _tensors_without(state, drop=None, **replace):
    t = state.tensors()
    if drop:
        del t[drop]
    t.update(replace)
    return t


def test_missing_adam_moment_is_refused(state, tmp_path):
    name = sorted(state.params)[0]
    path = tmp_path / "s.safetensors"
    save_file(_tensors_without(state, drop=f"optim.exp_avg.{name}"), str(path))
    with pytest.raises(StateError, match=f"missing tensor optim.exp_avg.{name}"):
        load_state(path)


@pytest.mark.parametrize("what, words", [
    ("nan", "NaN or Inf"),
    ("wrong_shape", "expected float32"),
    ("wrong_dtype_moment", "expected float32"),
    ("step_not_scalar", "int64 scalar"),
    ("extra", "unexpected tensor"),
    ("no_global_step", "meta.global_step"),
    ("orphan_moment", "has no model parameter"),
])
def test_inconsistent_states_are_refused(state, tmp_path, what, words):
    name = sorted(state.params)[0]
    p = state.params[name]
    edits = {
        "nan": dict(replace={f"model.{name}": torch.full_like(p, float("nan"))}),
        "wrong_shape": dict(replace={f"optim.exp_avg_sq.{name}": torch.zeros(p.numel() + 1)}),
        "wrong_dtype_moment": dict(replace={f"optim.exp_avg.{name}": torch.zeros(p.shape, dtype=torch.int64)}),
        "step_not_scalar": dict(replace={f"optim.step.{name}": torch.zeros(2, dtype=torch.int64)}),
        "extra": dict(replace={"junk.tensor": torch.zeros(1)}),
        "no_global_step": dict(drop="meta.global_step"),
        "orphan_moment": dict(drop=f"model.{name}"),
    }[what]
    path = tmp_path / "s.safetensors"
    save_file(_tensors_without(state, drop=edits.get("drop"), **edits.get("replace", {})), str(path))
    with pytest.raises(StateError, match=words):
        load_state(path)


def test_unsupported_dtype_is_refused(tmp_path):
    path = tmp_path / "s.safetensors"
    save_file({"model.w": torch.zeros(2, dtype=torch.float16)}, str(path))
    with pytest.raises(StateError, match="dtype 'F16'"):
        load_state(path)


@pytest.mark.parametrize("case, words", [
    ("empty", "too short"),
    ("huge_header", "declares a header"),
    ("header_past_end", "declares a header"),
    ("not_json", "malformed header"),
    ("not_object", "not an object"),
    ("bad_offsets", "bad data offsets"),
    ("shape_vs_bytes", "does not match"),
    ("overlap", "overlapping"),
    ("negative_dim", "bad shape"),
])
def test_malformed_files_are_refused(tmp_path, case, words):
    path = tmp_path / "bad.safetensors"
    f32 = lambda shape, a, b: {"dtype": "F32", "shape": shape, "data_offsets": [a, b]}  # noqa: E731
    if case == "empty":
        path.write_bytes(b"\x01\x02")
    elif case == "huge_header":
        _write_raw(path, {}, declared_len=2**63)
    elif case == "header_past_end":
        _write_raw(path, {}, declared_len=1000)
    elif case == "not_json":
        _write_raw(path, b"\xff{nope")
    elif case == "not_object":
        _write_raw(path, b"[1, 2]")
    elif case == "bad_offsets":
        _write_raw(path, {"model.w": f32([2], 0, 800)}, b"\0" * 8)
    elif case == "shape_vs_bytes":
        _write_raw(path, {"model.w": f32([3], 0, 8)}, b"\0" * 8)
    elif case == "overlap":
        _write_raw(path, {"model.a": f32([2], 0, 8), "model.b": f32([2], 4, 12)}, b"\0" * 12)
    elif case == "negative_dim":
        _write_raw(path, {"model.w": f32([-2], 0, 8)}, b"\0" * 8)
    with pytest.raises(StateError, match=words):
        load_state(path)


def test_wrong_expected_hash_is_refused(state, tmp_path):
    path = tmp_path / "s.safetensors"
    save_state(path, state)
    with pytest.raises(StateError, match="expected 0x"):
        load_state(path, expected_hash=b"\x11" * 32)


def test_missing_file_is_a_state_error(tmp_path):
    with pytest.raises(StateError, match="cannot read"):
        load_state(tmp_path / "nope.safetensors")


def test_save_is_atomic_and_leaves_no_temp_file(state, tmp_path):
    path = tmp_path / "s.safetensors"
    save_state(path, state)
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_a_tampered_file_fails_its_own_claimed_hash(state, tmp_path):
    path = tmp_path / "s.safetensors"
    save_state(path, state)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # flip one bit of the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(StateError, match="its metadata claims 0x"):
        load_state(path)
