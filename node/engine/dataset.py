"""Datasets: text files frozen into the content store as shards + a manifest.

The token stream is the concatenation of the shards (byte-level: one byte, one
token). The batch of global step g is a pure function of (manifest, seed, g): each of
the B rows starts at seed_for(seed, g, "batch:<row>") mod (N − T), computed with
sha256 in Python, so every platform draws the same offsets. Batch hash = sha256 of the
batch's token bytes (B × (T+1) bytes, row-major).
"""
from __future__ import annotations

import hashlib
import json
import sysconfig
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import DatasetError

DEFAULT_SHARD_BYTES = 1 << 20
DOC_SEPARATOR = b"\n"  # between files


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Shard(_Strict):
    cid: str
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Source(_Strict):
    name: str  # file name as given (informative; the shards are what count)
    size: int = Field(ge=0)


class Manifest(_Strict):
    format: Literal["trainchain-dataset-v1"] = "trainchain-dataset-v1"
    tokenizer: Literal["bytes"] = "bytes"
    total_bytes: int = Field(ge=1)
    shards: list[Shard]
    sources: list[Source] = []

    def canonical_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


# ------------------------------------------------------------------ building
def expand_paths(paths, pattern: str = "*") -> list[Path]:
    """Files in the order given; a directory expands to its files (recursive, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob(pattern) if f.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise DatasetError(f"dataset: no such file or directory: {p}")
    if not out:
        raise DatasetError("dataset: no input files")
    return out


def demo_corpus_paths(limit_bytes: int = 2_000_000) -> list[Path]:
    """The demo corpus: this Python's top-level stdlib *.py files, sorted, up to ~2 MB.

    Another Python has other files: what a task commits to is the manifest in the store,
    built once from these (`trainchain dataset build --demo`).
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for f in sorted(stdlib.glob("*.py")):
        size = f.stat().st_size
        if total + size > limit_bytes:
            continue
        out.append(f)
        total += size
    return out


def build_dataset(paths, store, shard_bytes: int = DEFAULT_SHARD_BYTES, pattern: str = "*") -> str:
    """Freeze text files into the store as shards + a manifest; returns the manifest CID."""
    if shard_bytes < 1:
        raise DatasetError("dataset: shard_bytes must be positive")
    files = expand_paths(paths, pattern)
    parts, sources = [], []
    for f in files:
        data = f.read_bytes()
        parts.append(data)
        sources.append(Source(name=f.name, size=len(data)))
    stream = DOC_SEPARATOR.join(parts)
    if not stream:
        raise DatasetError("dataset: the input files are empty")
    shards = []
    for off in range(0, len(stream), shard_bytes):
        chunk = stream[off:off + shard_bytes]
        cid = store.put_bytes(chunk)
        shards.append(Shard(cid=cid, size=len(chunk), sha256=hashlib.sha256(chunk).hexdigest()))
    manifest = Manifest(total_bytes=len(stream), shards=shards, sources=sources)
    return store.put_bytes(manifest.canonical_json())


# ------------------------------------------------------------------ reading
class Dataset:
    """A verified token stream and its batch schedule."""

    def __init__(self, data: bytes, manifest: Manifest | None = None, manifest_cid: str | None = None):
        import torch

        self.manifest = manifest
        self.manifest_cid = manifest_cid
        self.tokens = torch.frombuffer(bytearray(data), dtype=torch.uint8)  # (N,)

    def __len__(self) -> int:
        return self.tokens.numel()

    @classmethod
    def load(cls, manifest_cid: str, store) -> "Dataset":
        """Fetch the manifest and every shard; verify sizes and sha256 (the store verifies CIDs)."""
        try:
            manifest = Manifest.model_validate_json(store.get_bytes(manifest_cid), strict=True)
        except ValueError as exc:
            raise DatasetError(f"dataset: {manifest_cid} is not a dataset manifest: {exc}") from None
        chunks = []
        for i, shard in enumerate(manifest.shards):
            chunk = store.get_bytes(shard.cid)
            if len(chunk) != shard.size or hashlib.sha256(chunk).hexdigest() != shard.sha256:
                raise DatasetError(f"dataset: shard {i} ({shard.cid}) does not match the manifest's size/sha256")
            chunks.append(chunk)
        data = b"".join(chunks)
        if len(data) != manifest.total_bytes:
            raise DatasetError(f"dataset: shards hold {len(data)} bytes, manifest says {manifest.total_bytes}")
        return cls(data, manifest, manifest_cid)

    @classmethod
    def for_spec(cls, spec, store) -> "Dataset":
        if not spec.dataset.manifest_cid:
            raise DatasetError("dataset: the spec has no dataset.manifest_cid (run `trainchain dataset build`)")
        return cls.load(spec.dataset.manifest_cid, store)

    def offsets(self, seed: int, g: int, batch_size: int, block_size: int) -> list[int]:
        """Start of each row of step g's batch."""
        from .step import seed_for

        span = len(self) - block_size
        if span < 1:
            raise DatasetError(f"dataset: {len(self)} tokens is too short for a context of {block_size}")
        return [seed_for(seed, g, f"batch:{i}") % span for i in range(batch_size)]

    def batch(self, seed: int, g: int, batch_size: int, block_size: int):
        """LongTensor (B, T+1) of step g: inputs are [:, :-1], targets [:, 1:]."""
        import torch

        rows = [self.tokens[o:o + block_size + 1] for o in self.offsets(seed, g, batch_size, block_size)]
        return torch.stack(rows).long()

    def batch_for(self, spec, g: int):
        """Step g's batch under a spec."""
        return self.batch(spec.seed, g, spec.batch_size, spec.model.block_size)


def batch_hash(tokens) -> bytes:
    """sha256 of the batch's token bytes (row-major uint8)."""
    import torch

    if tokens.dtype != torch.uint8:
        if int(tokens.min()) < 0 or int(tokens.max()) > 255:
            raise DatasetError("dataset: token ids outside 0..255")
        tokens = tokens.to(torch.uint8)
    return hashlib.sha256(tokens.contiguous().cpu().numpy().tobytes()).digest()
