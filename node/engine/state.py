"""Training state: one safetensors file, one canonical hash.

Tensor names in the file:
  model.<param>               float32 weights
  optim.exp_avg.<param>       float32 Adam first moment
  optim.exp_avg_sq.<param>    float32 Adam second moment
  optim.step.<param>          int64 scalar, Adam steps taken by that parameter
  meta.global_step            int64 scalar, the global step the next update will be
  outer.momentum.<param>      float32 outer Nesterov momentum (epochs, issue #14): only in states
                              an outer step with momentum wrote, so a v1 state's tensors (and
                              hash) are exactly what they were

State hash (protocol rule; never the file's bytes, whose header order is not stable):
  tensor_digest(name, t) = sha256(b"trainchain-tensor-v1\\0" ‖ u32 len(name) ‖ name
                                  ‖ u8 len(dtype) ‖ dtype ‖ u32 ndim ‖ u64 dims... ‖ LE bytes)
  state_hash = sha256(b"trainchain-state-v1\\0" ‖ u32 n ‖ digest_1 ‖ … ‖ digest_n)
with the tensors sorted by name. Integers little-endian. Tensor digests are computed
in parallel (hashlib releases the GIL), so hashing runs at ~cores × sha256 speed.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import StateError

TENSOR_DOMAIN = b"trainchain-tensor-v1\x00"
STATE_DOMAIN = b"trainchain-state-v1\x00"
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a safetensors header past this is hostile
PARALLEL_MIN_BYTES = 32 << 20  # below this, thread hand-offs cost more than they save (10 MB: 0.7 vs 1.2 GB/s)
OPTIM_KINDS = ("exp_avg", "exp_avg_sq", "step")
# safetensors dtype tag <-> torch dtype; the tag is also what the hash encodes
DTYPES = {"F32": torch.float32, "I64": torch.int64}
DTYPE_TAGS = {v: k for k, v in DTYPES.items()}
DTYPE_SIZES = {"F32": 4, "I64": 8}

assert sys.byteorder == "little", "state: the canonical encoding assumes a little-endian host"


@dataclass
class TrainingState:
    """Everything a step reads: weights, Adam moments, per-parameter step, global step."""

    params: dict[str, torch.Tensor]  # name -> float32 tensor
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]
    steps: dict[str, torch.Tensor]  # name -> int64 scalar tensor
    global_step: int
    outer_momentum: dict[str, torch.Tensor] | None = None  # name -> float32; None: no outer optimizer state

    def tensors(self) -> dict[str, torch.Tensor]:
        """The flat name -> tensor map that is saved and hashed."""
        out = {f"model.{n}": t for n, t in self.params.items()}
        out.update({f"optim.exp_avg.{n}": t for n, t in self.exp_avg.items()})
        out.update({f"optim.exp_avg_sq.{n}": t for n, t in self.exp_avg_sq.items()})
        out.update({f"optim.step.{n}": t for n, t in self.steps.items()})
        out["meta.global_step"] = torch.tensor(self.global_step, dtype=torch.int64)
        if self.outer_momentum is not None:
            out.update({f"outer.momentum.{n}": t for n, t in self.outer_momentum.items()})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "TrainingState":
        """Split and validate a flat map; raises StateError, never returns a partial state."""
        tensors = dict(tensors)
        gs = tensors.pop("meta.global_step", None)
        if gs is None:
            raise StateError("state: missing tensor meta.global_step")
        _check_scalar_int("meta.global_step", gs)
        parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "exp_avg": {}, "exp_avg_sq": {}, "step": {}}
        outer: dict[str, torch.Tensor] = {}
        for name, t in tensors.items():
            if name.startswith("outer.momentum.") and len(name) > len("outer.momentum."):
                outer[name[len("outer.momentum."):]] = t
            elif name.startswith("model."):
                parts["model"][name[len("model."):]] = t
            elif name.startswith("optim."):
                kind, _, param = name[len("optim."):].partition(".")
                if kind not in OPTIM_KINDS or not param:
                    raise StateError(f"state: unexpected tensor {name!r}")
                parts[kind][param] = t
            else:
                raise StateError(f"state: unexpected tensor {name!r}")
        if not parts["model"]:
            raise StateError("state: no model.* tensors")
        for param, w in parts["model"].items():
            if w.dtype != torch.float32:
                raise StateError(f"state: model.{param} has dtype {w.dtype}, expected float32")
            for kind in OPTIM_KINDS:
                if param not in parts[kind]:
                    raise StateError(f"state: missing tensor optim.{kind}.{param}")
            for kind in ("exp_avg", "exp_avg_sq"):
                m = parts[kind][param]
                if m.dtype != torch.float32 or m.shape != w.shape:
                    raise StateError(
                        f"state: optim.{kind}.{param} is {m.dtype} {tuple(m.shape)}, expected float32 {tuple(w.shape)}"
                    )
            _check_scalar_int(f"optim.step.{param}", parts["step"][param])
        for kind in OPTIM_KINDS:
            extra = sorted(set(parts[kind]) - set(parts["model"]))
            if extra:
                raise StateError(f"state: optim.{kind}.{extra[0]} has no model parameter")
        if outer:
            if set(outer) != set(parts["model"]):
                odd = sorted(set(outer) ^ set(parts["model"]))[0]
                raise StateError(f"state: outer.momentum.* must cover exactly the model parameters (not {odd!r})")
            for param, b in outer.items():
                w = parts["model"][param]
                if b.dtype != torch.float32 or b.shape != w.shape:
                    raise StateError(f"state: outer.momentum.{param} is {b.dtype} {tuple(b.shape)}, "
                                     f"expected float32 {tuple(w.shape)}")
        for name, t in tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise StateError(f"state: tensor {name} holds NaN or Inf")
        return cls(parts["model"], parts["exp_avg"], parts["exp_avg_sq"], parts["step"], int(gs.item()),
                   outer or None)

    def check_against(self, model: torch.nn.Module) -> None:
        """The state fits this model: same parameter names and shapes."""
        expected = {n: tuple(p.shape) for n, p in model.named_parameters()}
        got = {n: tuple(t.shape) for n, t in self.params.items()}
        if expected != got:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            wrong = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
            raise StateError(f"state: does not fit the spec's model (missing {missing}, extra {extra}, wrong shape {wrong})")


def _check_scalar_int(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.int64 or t.dim() != 0:
        raise StateError(f"state: {name} must be an int64 scalar, got {t.dtype} {tuple(t.shape)}")
    if int(t.item()) < 0:
        raise StateError(f"state: {name} is negative")


# ------------------------------------------------------------------ hashing
def compute_tensor_digest(name: str, t: torch.Tensor) -> bytes:
    tag = DTYPE_TAGS.get(t.dtype)
    if tag is None:
        raise StateError(f"state: tensor {name} has unsupported dtype {t.dtype}")
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    name_b = name.encode()
    h = hashlib.sha256(TENSOR_DOMAIN)
    h.update(struct.pack("<I", len(name_b)) + name_b + struct.pack("<B", len(tag)) + tag.encode())
    h.update(struct.pack("<I", t.dim()) + b"".join(struct.pack("<Q", d) for d in t.shape))
    if t.numel():
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.digest()


def compute_root(digests: list[bytes]) -> bytes:
    return hashlib.sha256(STATE_DOMAIN + struct.pack("<I", len(digests)) + b"".join(digests)).digest()


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="state-hash")
    return _POOL


def hash_tensors(tensors: dict[str, torch.Tensor], parallel: bool = True) -> bytes:
    """Canonical hash of a flat name -> tensor map (the protocol's state hash)."""
    names = sorted(tensors)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if parallel and len(names) > 1 and total >= PARALLEL_MIN_BYTES:
        digests = list(_pool().map(lambda n: compute_tensor_digest(n, tensors[n]), names))
    else:
        digests = [compute_tensor_digest(n, tensors[n]) for n in names]
    return compute_root(digests)


def state_hash(state: TrainingState, parallel: bool = True) -> bytes:
    """32-byte canonical hash of a training state."""
    return hash_tensors(state.tensors(), parallel=parallel)


# ------------------------------------------------------------------ files
def save_state(path, state: TrainingState, metadata: dict[str, str] | None = None) -> bytes:
    """Write the state atomically (tmp + rename); returns its hash (also in the metadata)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {n: t.detach().cpu().contiguous() for n, t in state.tensors().items()}
    h = hash_tensors(tensors)
    meta = {"format": "trainchain-state-v1", "state_hash": "0x" + h.hex(), **(metadata or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    _canonicalize_header(tmp)
    os.replace(tmp, path)
    return h


def _canonicalize_header(path: Path) -> None:
    """Rewrite the header JSON with sorted keys, in place: safetensors writes its metadata
    map in hash order, so the same state would get a different file, hence another CID."""
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        # same keys and values, only reordered: never longer than what safetensors wrote
        assert len(canonical) <= n, "state: canonical header longer than the original"
        f.seek(8)
        f.write(canonical + b" " * (n - len(canonical)))  # safetensors pads headers with spaces


def _parse_header(path: Path, size: int, f) -> dict:
    """Validate the safetensors header by hand before safetensors touches the file."""
    if size < 8:
        raise StateError(f"state: {path} is too short to be a safetensors file ({size} bytes)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise StateError(f"state: {path} declares a header of {n} bytes (file is {size} bytes): refused")
    try:
        header = json.loads(f.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"state: {path} has a malformed header: {exc}") from None
    if not isinstance(header, dict):
        raise StateError(f"state: {path} header is not an object")
    data_len = size - 8 - n
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise StateError(f"state: {path} entry {name!r} is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPES:
            raise StateError(f"state: {path} tensor {name} has dtype {dtype!r}; allowed {sorted(DTYPES)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 2**40 for d in shape):
            raise StateError(f"state: {path} tensor {name} has a bad shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise StateError(f"state: {path} tensor {name} has bad data offsets {offsets!r}")
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * DTYPE_SIZES[dtype]:
            raise StateError(f"state: {path} tensor {name}: shape {shape} does not match its {offsets[1] - offsets[0]} bytes")
        spans.append(tuple(offsets))
    spans.sort()
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        if b0 < a1:
            raise StateError(f"state: {path} has overlapping tensors")
    return header


def load_state(path, expected_hash: bytes | None = None) -> TrainingState:
    """Read, validate and hash a state file; raises StateError (nothing half-loaded).

    The state must hash to `expected_hash` if given, else to the state_hash its own
    metadata claims (files written by save_state carry one).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        with open(path, "rb") as f:
            header = _parse_header(path, os.fstat(f.fileno()).st_size, f)
    except OSError as exc:
        raise StateError(f"state: cannot read {path}: {exc.strerror}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise StateError(f"state: {path} is not a valid safetensors file: {exc}") from None
    state = TrainingState.from_tensors(tensors)
    claimed = (header.get("__metadata__") or {}).get("state_hash")
    if expected_hash is None and isinstance(claimed, str) and claimed.startswith("0x"):
        try:
            expected_hash, source = bytes.fromhex(claimed[2:]), "its metadata claims"
        except ValueError:
            raise StateError(f"state: {path} has a malformed state_hash in its metadata") from None
    else:
        source = "expected"
    if expected_hash is not None:
        got = state_hash(state)
        if got != bytes(expected_hash):
            raise StateError(f"state: {path} hashes to 0x{got.hex()}, {source} 0x{bytes(expected_hash).hex()}")
    return state


def file_state_hash(path) -> bytes:
    """Hash of the state in a file (loads and validates it)."""
    return state_hash(load_state(path))
