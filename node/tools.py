"""The local machine's plumbing, once: free TCP ports and the project's binaries.

Dependency-free (scripts import it before anything else is loaded). Used by the devnet
(anvil), the js-ipfs test daemon, the benchmarks and the brownie launcher.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary(name: str, env: str | None = None) -> str | None:
    """An executable: $`env` if set, else the project's node_modules/.bin/<name>, else <name> on PATH."""
    candidates = [os.environ.get(env) if env else None, str(PROJECT_ROOT / "node_modules" / ".bin" / name),
                  shutil.which(name)]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None
