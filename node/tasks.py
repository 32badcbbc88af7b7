"""Creating a task: the spec and its genesis state into the store, then TaskRegistry.create_task.

    from node.tasks import create_task
    created = create_task(chain, store, spec, fund_wei)   # {"task_id", "spec_cid", "genesis_cid", ...}

Used by `trainchain task create`, the demo and LocalNet (so no lower layer imports the CLI).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from node.chain.records import format_ether
from node.errors import PreflightError


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def create_task(chain, store, spec, fund: int, log=lambda msg: None) -> dict:
    """Put the spec and its genesis state in the store, then create_task on-chain (funded with `fund` wei).

    The spec's dataset manifest must already be in the store. Returns the ids, CIDs and hashes.
    """
    from node.chain.records import TaskParams
    from node.engine import make_genesis

    manifest = spec.dataset.manifest_cid
    if not manifest:
        raise PreflightError("the spec has no dataset: pass --data PATH (or --demo-data) or set dataset.manifest_cid")
    if not store.has(manifest):
        raise PreflightError(f"dataset manifest {manifest} is not in the content store: build it first "
                             "(`trainchain dataset build`) or pass --data")
    params = TaskParams.from_spec(spec)
    if params.n_segments < 2 * params.samples + 1:
        raise PreflightError(f"the spec has {params.n_segments} segments per round but {params.samples} samples "
                             f"need at least {2 * params.samples + 1} (raise steps_per_round or lower samples)")
    if fund < params.round_cost:
        log(f"warning: the pool ({format_ether(fund)}) pays for no round (one costs {format_ether(params.round_cost)})")
    spec_json = spec.canonical_json()
    spec_cid = store.put_bytes(spec_json)
    store.pin(spec_cid)
    with tempfile.TemporaryDirectory(prefix="trainchain-genesis-") as tmp:
        path = Path(tmp) / "genesis.safetensors"
        log("drawing the genesis weights ...")
        genesis_hash = make_genesis(spec, path)
        genesis_cid = store.put_file(path)
    store.pin(genesis_cid)
    fn = chain.registry.functions.create_task(spec_cid, spec.spec_hash(), genesis_hash, genesis_cid, params.as_tuple())
    receipt = chain.transact(fn, value=fund, what="create_task")
    from web3.logs import DISCARD

    created = chain.registry.events.TaskCreated().process_receipt(receipt, errors=DISCARD)  # skip other contracts' logs
    task_id = created[0]["args"]["task_id"]
    return {
        "task_id": task_id,
        "spec_cid": spec_cid,
        "spec_hash": _hex(spec.spec_hash()),
        "dataset_cid": manifest,
        "genesis_cid": genesis_cid,
        "genesis_hash": _hex(genesis_hash),
        "pool": fund,
        "tx": _hex(receipt["transactionHash"]),
        "block": receipt["blockNumber"],
    }
