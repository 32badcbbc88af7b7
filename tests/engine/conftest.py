"""Engine test fixtures. This pytest process is pinned to the demo spec's runtime
before anything imports torch (the pin's env vars are read when torch loads)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.engine.runtime import apply_runtime_pin, compute_pin_env, is_torch_loaded
from node.engine.spec import TaskSpec

from engine_helpers import REPO, TRAINCHAIN

if not is_torch_loaded():
    os.environ.update(compute_pin_env(TaskSpec.default().runtime))
apply_runtime_pin(TaskSpec.default())  # raises RuntimeMismatch, in words, if torch loaded unpinned

CORPUS_BYTES = 300_000  # a slice of the demo corpus: enough for tiny models, fast to build


@pytest.fixture(scope="session")
def datadir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datadir")


@pytest.fixture(scope="session")
def store(datadir):
    from node.store import open_store

    return open_store(datadir=datadir)


@pytest.fixture(scope="session")
def corpus_cid(store) -> str:
    from node.engine.dataset import build_dataset, demo_corpus_paths

    return build_dataset(demo_corpus_paths(limit_bytes=CORPUS_BYTES), store, shard_bytes=100_000)


@pytest.fixture(scope="session")
def dataset(corpus_cid, store):
    from node.engine.dataset import Dataset

    return Dataset.load(corpus_cid, store)


@pytest.fixture(scope="session")
def tiny_spec(corpus_cid) -> TaskSpec:
    """1 layer, d=32, ctx 32, batch 4, dropout 0.1; 16 steps per round in 4 segments of 4."""
    return TaskSpec.preset("tiny", corpus_cid)


@pytest.fixture(scope="session")
def genesis(tiny_spec, tmp_path_factory) -> Path:
    from node.engine.genesis import make_genesis

    path = tmp_path_factory.mktemp("genesis") / "genesis.safetensors"
    make_genesis(tiny_spec, path)
    return path


@pytest.fixture(scope="session")
def round_trace(tiny_spec, dataset, genesis, tmp_path_factory):
    from node.engine.trace import train_round

    return train_round(tiny_spec, dataset, genesis, tmp_path_factory.mktemp("round"))


@pytest.fixture
def cli(datadir):
    """Run `trainchain ARGS...` in a fresh process; returns CompletedProcess (text)."""

    def run(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "TRAINCHAIN_DATADIR": str(datadir), **(env or {})}
        proc = subprocess.run([*TRAINCHAIN, *map(str, args)], capture_output=True, text=True, env=full_env,
                              cwd=REPO, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"trainchain {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run
