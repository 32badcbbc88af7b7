"""Content store: UnixFS CIDs as `ipfs add` computes them, an embedded block store
(the default) and a Kubo HTTP RPC backend; every read is verified against its CID.

    from node.store import open_store, compute_cid
    store = open_store()                 # embedded, under <datadir>/ipfs
    cid = store.put_file("model.safetensors")
    store.get_file(cid, "copy.safetensors")
"""
from __future__ import annotations

import os
from pathlib import Path

from node.store.base import (
    CIDError,
    ContentStore,
    IntegrityError,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from node.store.cid import CHUNK_SIZE, MAX_LINKS, Cid, compute_cid, compute_cid_v0, parse_cid
from node.store.embedded import EmbeddedStore

ENV_DATADIR = "TRAINCHAIN_DATADIR"
ENV_IPFS_API = "TRAINCHAIN_IPFS_API"
# One embedded store for several nodes of a machine, each with its own data dir.
ENV_STORE_DIR = "TRAINCHAIN_STORE_DIR"

__all__ = [
    "open_store", "default_datadir", "compute_cid", "compute_cid_v0", "parse_cid", "Cid",
    "ContentStore", "EmbeddedStore", "StoreError", "CIDError", "NotFound", "IntegrityError",
    "StoreUnavailable", "CHUNK_SIZE", "MAX_LINKS",
]


def default_datadir() -> Path:
    """$TRAINCHAIN_DATADIR, else the per-OS user data dir ("trainchain")."""
    env = os.environ.get(ENV_DATADIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("trainchain"))


def open_store(datadir: Path | str | None = None, api: str | None = None) -> ContentStore:
    """The embedded store under `<datadir>/ipfs` ($TRAINCHAIN_STORE_DIR, when set, wins: the
    nodes of one machine share one store), or a Kubo RPC daemon when `api` (or
    $TRAINCHAIN_IPFS_API, e.g. /ip4/127.0.0.1/tcp/5001/http) is given."""
    api = api or os.environ.get(ENV_IPFS_API) or None
    if api:
        from node.store.kubo import KuboStore

        return KuboStore(api)
    shared = os.environ.get(ENV_STORE_DIR)
    if shared:
        return EmbeddedStore(Path(shared).expanduser())
    root = Path(datadir).expanduser() if datadir is not None else default_datadir()
    return EmbeddedStore(root / "ipfs")
