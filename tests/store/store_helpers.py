"""Helpers shared by the content-store tests (imported by name: tests/store is on sys.path)."""
from __future__ import annotations

import hashlib

_BIG: dict[tuple[str, int], bytes] = {}  # the >= 1 MB vector inputs, made once per session


def vector_bytes(seed: str, size: int) -> bytes:
    """The vectors' input: sha256(f"{seed}:{i}") for i = 0, 1, ... truncated to size."""
    key = (seed, size)
    if key in _BIG:
        return _BIG[key]
    sha = hashlib.sha256
    data = b"".join(sha(f"{seed}:{i}".encode()).digest() for i in range((size + 31) // 32))[:size]
    if size >= 1 << 20:
        _BIG[key] = data
    return data
