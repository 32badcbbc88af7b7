"""Helpers shared by the content-store tests (imported by name: tests/store is on sys.path)."""
from __future__ import annotations

import hashlib


def vector_bytes(seed: str, size: int) -> bytes:
    """The vectors' input: sha256(f"{seed}:{i}") for i = 0, 1, ... truncated to size."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:size])
