"""Fixtures for the content-store tests: the shared vectors, an embedded store per test,
and one real js-ipfs daemon per session (started on free ports, killed at the end)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.store.embedded import EmbeddedStore
from node.store.jsipfs import JsIpfsDaemon
from node.store.kubo import KuboStore
from store_helpers import vector_bytes  # noqa: F401  (re-exported for fixtures)

# A copy of ../shared/vectors/unixfs_cids.json (CIDs from js-ipfs 0.66.1): CI clones the repo
# alone, so the vectors travel with it. tests/store/test_store_cid.py checks the copy is verbatim
# whenever the shared original is present.
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "unixfs_cids.json"
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "unixfs_cids.json"


@pytest.fixture(scope="session")
def vectors() -> list[dict]:
    if not VECTORS.exists():
        pytest.fail(f"missing {VECTORS}: the UnixFS vectors are part of the repository")
    return json.loads(VECTORS.read_text())["cases"]


@pytest.fixture
def store(tmp_path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture(scope="session")
def jsipfs(tmp_path_factory):
    daemon = JsIpfsDaemon(tmp_path_factory.mktemp("jsipfs") / "repo")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def kubo(jsipfs) -> KuboStore:
    store = KuboStore(jsipfs.api, timeout=5)
    yield store
    store.close()


def pytest_collection_modifyitems(items):
    # pytest resets warning filters per test; ipfshttpclient's `strict` FutureWarning is noise.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning"))
