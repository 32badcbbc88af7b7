"""`trainchain model latest|pull` and `trainchain generate`: the canonical model, as ModelOracle names it.

`pull` fetches the safetensors state by CID (the store checks the bytes against the CID)
and then checks the state hash the oracle recorded, so what lands on disk is exactly the
canonical model, or nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from node.cli.options import NodeContext, hexstr, node_options, store_option


def canonical_model(chain, task_id: int, version: int | None = None) -> dict:
    """ModelOracle.latest / .at as a dict."""
    chain.get_task(task_id)  # PreflightError in words for an unknown task
    fn = chain.oracle.functions.latest(task_id) if version is None else chain.oracle.functions.at(task_id, version)
    cid, state_hash, version, round_id, block, timestamp = chain.call(fn)
    return {"task_id": task_id, "cid": cid, "state_hash": hexstr(state_hash), "version": version,
            "round": round_id, "block": block, "timestamp": timestamp}


def pull_model(chain, store, task_id: int, out_dir: Path, version: int | None = None) -> dict:
    """Fetch the canonical state and the task spec into out_dir; verify the state hash.

    Writes model.safetensors, spec.json, model.json; a state that does not hash to the
    oracle's value is deleted and raises StateError.
    """
    from node.engine import load_state

    info = canonical_model(chain, task_id, version)
    spec_cid = chain.get_task(task_id).spec_cid
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.safetensors"
    partial = out_dir / ".model.safetensors.partial"
    store.get_file(info["cid"], partial)
    try:
        load_state(partial, expected_hash=bytes.fromhex(info["state_hash"][2:]))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    (out_dir / "spec.json").write_bytes(store.get_bytes(spec_cid))
    meta = {**info, "spec_cid": spec_cid, "path": str(path), "verified": True}
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@click.group()
def model() -> None:
    """Read and pull the canonical model."""


@model.command("latest")
@click.option("--task", "task_id", required=True, type=click.IntRange(1))
@click.option("--version", type=click.IntRange(0), default=None, help="A given version instead of the latest.")
@node_options
def latest(node: NodeContext, task_id: int, version: int | None) -> None:
    """CID, state hash and version of the task's canonical model (ModelOracle)."""
    info = canonical_model(node.chain(), task_id, version)
    node.emit(info, f"task {task_id} v{info['version']} (round {info['round']}, block {info['block']})\n"
                    f"  cid        {info['cid']}\n  state hash {info['state_hash']}")


@model.command("pull")
@click.option("--task", "task_id", required=True, type=click.IntRange(1))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--version", type=click.IntRange(0), default=None)
@node_options
@store_option
def pull(node: NodeContext, task_id: int, out_dir: Path, version: int | None) -> None:
    """Fetch the canonical state by CID into OUT (model.safetensors + spec.json), checking its state hash."""
    meta = pull_model(node.chain(), node.store(), task_id, out_dir, version)
    node.emit(meta, f"pulled task {task_id} v{meta['version']} to {meta['path']}\n"
                    f"  state hash {meta['state_hash']} verified")


@click.command()
@click.option("--task", "task_id", required=True, type=click.IntRange(1))
@click.option("--prompt", required=True, help="Text to continue.")
@click.option("--max-tokens", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 10), default=0.8, show_default=True)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--version", type=click.IntRange(0), default=None)
@node_options
@store_option
def generate(node: NodeContext, task_id: int, prompt: str, max_tokens: int, temperature: float, seed: int,
             version: int | None) -> None:
    """Generate text locally from the task's canonical weights (fetched and verified first)."""
    from node.engine import TaskSpec, load_state
    from node.engine import generate as sample

    chain = node.chain()
    info = canonical_model(chain, task_id, version)
    cache = node.datadir / "models" / f"task-{task_id}" / f"v{info['version']}"
    meta_path = cache / "model.json"
    cached = meta_path.exists() and json.loads(meta_path.read_text()).get("state_hash") == info["state_hash"]
    meta = json.loads(meta_path.read_text()) if cached else pull_model(chain, node.store(), task_id, cache, info["version"])
    spec = TaskSpec.from_json((cache / "spec.json").read_bytes())
    state = load_state(meta["path"], expected_hash=bytes.fromhex(info["state_hash"][2:]))
    text = sample(state, spec, prompt, max_new_tokens=max_tokens, temperature=temperature, seed=seed)
    node.emit({**info, "prompt": prompt, "text": text}, text)
