"""`trainchain store add|get|cid|has|pin|export|import`: the content store from the shell.

    trainchain store add model.safetensors             # -> bafybei... (CIDv1, raw leaves)
    trainchain store get bafybei... -o model.safetensors
    trainchain store cid model.safetensors --v0        # compute only: same as `ipfs add -n`
    trainchain store export bafybei... -o model.car    # then on any IPFS node: ipfs dag import model.car

The embedded store under <datadir>/ipfs by default; --ipfs-api (or TRAINCHAIN_IPFS_API)
talks to a Kubo-compatible daemon instead. Every get is verified against the CID.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

import click

from node.cli.options import DATADIR_OPTION, IPFS_API_OPTION, JSON_OPTION, NodeContext, fail, user_errors


def store_options(f: Callable) -> Callable:
    """--datadir, --ipfs-api, --json; call f(node, ...); user errors become one line."""

    @DATADIR_OPTION
    @IPFS_API_OPTION
    @JSON_OPTION
    @functools.wraps(f)
    def wrapper(datadir, ipfs_api, as_json, **kwargs):
        node = NodeContext({"datadir": datadir, "ipfs_api": ipfs_api}, as_json, 0)
        try:
            return f(node, **kwargs)
        except click.ClickException:
            raise
        except (*user_errors(), FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            fail(node, str(exc))

    return wrapper


@click.group()
def store() -> None:
    """Add, get and compute CIDs in the content store."""


@store.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pin/--no-pin", default=True, show_default=True, help="Pin the content after adding it.")
@store_options
def add(node: NodeContext, file: Path, pin: bool) -> None:
    """Add FILE to the store; print its CID (what `ipfs add --cid-version 1 --raw-leaves` gives)."""
    st = node.store()
    cid = st.put_file(file)
    if pin:
        st.pin(cid)
    node.emit({"cid": cid, "size": file.stat().st_size, "path": str(file), "pinned": pin}, cid)


@store.command("get")
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True), required=True,
              help="Where to write the file ('-' for stdout). Written atomically: nothing on failure.")
@store_options
def get(node: NodeContext, cid: str, output: Path) -> None:
    """Fetch CID, verify every block against it, write it to -o FILE."""
    st = node.store()
    if str(output) == "-":
        if node.as_json:
            fail(node, "store get: --json and -o - both want stdout; pick one")
        out = sys.stdout.buffer
        for chunk in st.open(cid):
            out.write(chunk)
        out.flush()
        return
    st.get_file(cid, output)
    size = output.stat().st_size
    node.emit({"cid": cid, "path": str(output), "size": size}, f"{cid} -> {output} ({size} bytes, verified)")


@store.command("cid")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--v0", "v0", is_flag=True, help="Also print the CIDv0 (plain `ipfs add`).")
@JSON_OPTION
def cid(file: Path, v0: bool, as_json: bool) -> None:
    """Compute FILE's CID without storing anything ('-' reads stdin; one pass either way)."""
    from node.store import StoreError
    from node.store.cid import DagBuilder, iter_source_chunks

    node = NodeContext({}, as_json, 0)
    builders = [DagBuilder(1)] + ([DagBuilder(0)] if v0 else [])
    try:
        source = sys.stdin.buffer if str(file) == "-" else file
        for chunk in iter_source_chunks(source):
            for b in builders:
                b.add_chunk(chunk)
        cids = [str(b.finish()) for b in builders]
    except (StoreError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        fail(node, str(exc))
    data = {"cid": cids[0], "size": builders[0].size, "path": str(file)}
    if v0:
        data["cidv0"] = cids[1]
    node.emit(data, "\n".join(cids))


@store.command("has")
@click.argument("cid")
@store_options
def has(node: NodeContext, cid: str) -> None:
    """Whether every block of CID is in the store (exit code 1 when not)."""
    present = node.store().has(cid)
    node.emit({"cid": cid, "has": present}, "yes" if present else "no")
    if not present:
        sys.exit(1)


@store.command("pin")
@click.argument("cid")
@store_options
def pin_(node: NodeContext, cid: str) -> None:
    """Pin CID (it must be complete in the store)."""
    node.store().pin(cid)
    node.emit({"cid": cid, "pinned": True}, f"pinned {cid}")


@store.command("export")
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CAR file to write (`ipfs dag import` reads it).")
@store_options
def export(node: NodeContext, cid: str, output: Path) -> None:
    """Write CID's whole DAG as a CARv1 file, to move it to any IPFS node."""
    node.store().export_car(cid, output)
    node.emit({"cid": cid, "path": str(output), "size": output.stat().st_size}, f"{cid} -> {output}")


@store.command("import")
@click.argument("car_file", type=click.Path(dir_okay=False, path_type=Path))
@store_options
def import_(node: NodeContext, car_file: Path) -> None:
    """Import a CARv1 file (every block verified); print its root CIDs."""
    roots = node.store().import_car(car_file)
    node.emit({"roots": roots, "path": str(car_file)}, "\n".join(roots))
