"""`trainchain dapp serve`: the dapp page, viem from node_modules, and the store read-only.

    trainchain dapp serve --port 8080 --datadir ~/.local/share/trainchain
    # open http://127.0.0.1:8080/?rpc=http://127.0.0.1:8545&oracle=0x...
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from urllib.parse import urlencode

import click

from node.cli.options import DATADIR_OPTION, IPFS_API_OPTION, JSON_OPTION
from node.config import DEFAULT_RPC, load_config
from node.errors import DeploymentError, TrainchainError


def page_defaults(cfg, rpc_url: str | None, oracle: str | None) -> dict:
    """What the page starts with: the flags, else the node's deployment.json, else nothing."""
    from node.chain.client import Deployment

    try:
        deployment = Deployment.load(cfg.deployment_path)
    except DeploymentError as exc:
        deployment = None
        if cfg.deployment_path.exists():
            click.echo(f"dapp: ignoring {exc}", err=True)
    rpc_urls = cfg.rpc_urls or (deployment.rpc_urls if deployment else None) or [DEFAULT_RPC]
    page = {"rpc": rpc_url or rpc_urls[0], "oracle": oracle or (deployment.addresses["ModelOracle"] if deployment else None)}
    return {k: v for k, v in page.items() if v}


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@click.group()
def dapp() -> None:
    """Serve the dapp page and the content store (read-only)."""


@dapp.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0 picks a free one).")
@DATADIR_OPTION
@IPFS_API_OPTION
@click.option("--rpc", "rpc_url", default=None, help="RPC URL the page starts with (default: the node config's).")
@click.option("--oracle", default=None, help="ModelOracle address the page starts with (default: deployment.json's).")
@JSON_OPTION
def serve(host: str, port: int, datadir: Path | None, ipfs_api: str | None, rpc_url: str | None,
          oracle: str | None, as_json: bool) -> None:
    """Serve the dapp until interrupted."""
    from node.dapp.server import DappServerConfig, make_server

    try:
        cfg = load_config(datadir=datadir, ipfs_api=ipfs_api)
    except TrainchainError as exc:
        raise click.ClickException(str(exc)) from None
    page = page_defaults(cfg, rpc_url, oracle)
    try:
        server = make_server(DappServerConfig(datadir=cfg.datadir, ipfs_api=cfg.ipfs_api, page_config=page),
                             host=host, port=port)
    except OSError as exc:
        raise click.ClickException(f"dapp: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    page_url = server.url + ("?" + urlencode(page) if page else "")
    if as_json:
        click.echo(json.dumps({"url": server.url, "page": page_url, "datadir": str(cfg.datadir), **page}))
    else:
        click.echo(f"dapp: serving {server.url} (store: {cfg.ipfs_api or cfg.datadir}); open {page_url}")
    sys.stdout.flush()
    # SIGTERM stops like Ctrl-C: shutdown runs in `finally`.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
