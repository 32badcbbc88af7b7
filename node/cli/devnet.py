"""`trainchain devnet up|down|status` (a local anvil with the contracts) and `trainchain deploy`."""
from __future__ import annotations

import click

from node.chain.records import format_ether
from node.cli.options import AMOUNT, NodeContext, node_options

ETH = 10**18


def _deploy_options(f):
    f = click.option("--unbonding-blocks", type=click.IntRange(0), default=20, show_default=True,
                     help="Blocks between `unstake` and `withdraw`.")(f)
    f = click.option("--min-verifier-stake", type=AMOUNT, default="1", show_default=True,
                     help="Minimum verifier stake (ether; or 1000gwei, 5wei...).")(f)
    f = click.option("--min-trainer-stake", type=AMOUNT, default=None,
                     help="Minimum trainer stake. [default: 1; 3 with --disputes (whitepaper §5.6)]")(f)
    f = click.option("--disputes", is_flag=True,
                     help="Deploy Disputes too: no majority vote for fraud — one honest challenger (a member, or any "
                          "watching verifier) brings a cheat before a jury (whitepaper §3.7).")(f)
    return f


def _params(min_trainer_stake: int | None, min_verifier_stake: int, unbonding_blocks: int, disputes: bool = False):
    from node.chain.contracts import DeployParams

    return DeployParams(min_trainer_stake=min_trainer_stake, min_verifier_stake=min_verifier_stake,
                        unbonding_blocks=unbonding_blocks, disputes=disputes)


@click.group()
def devnet() -> None:
    """Start/stop a local anvil devnet with the contracts."""


@devnet.command("up")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="RPC port (default: the one this devnet used before, else a free one).")
@click.option("--block-time", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="Seconds per block.")
@click.option("--fund", "extra_fund", multiple=True, metavar="ADDRESS",
              help="Also send 100 ETH to this address (repeatable); the data dir's keys always get it.")
@_deploy_options
@node_options
def up(node: NodeContext, port, block_time, extra_fund, disputes, min_trainer_stake, min_verifier_stake, unbonding_blocks) -> None:
    """Start anvil (state kept in <datadir>/devnet), deploy the contracts once, fund the data dir's keys.

    Writes <datadir>/deployment.json. Running `up` again after `down` reloads the same chain.
    """
    from node.chain.devnet import DEV_FUNDING, devnet_up

    from node.keys import normalize_address

    fund = node.keystore().list() + [a for a in map(normalize_address, extra_fund) if a not in node.keystore().list()]
    info = devnet_up(node.datadir, port=port, block_time=block_time,
                     params=_params(min_trainer_stake, min_verifier_stake, unbonding_blocks, disputes), fund=fund)
    info["deployment_file"] = str(node.datadir / "deployment.json")

    def text() -> str:
        lines = [f"devnet up at {info['url']} (pid {info['pid']}, {block_time}s blocks)",
                 f"  deployment: {info['deployment_file']}"]
        lines += [f"  {name}: {address}" for name, address in info["deployment"]["addresses"].items()]
        lines += [f"  funded {a} with {format_ether(DEV_FUNDING)}" for a in info["funded"]]
        lines.append("  stop it with `trainchain devnet down`")
        return "\n".join(lines)

    node.emit(info, text)


@devnet.command("down")
@node_options
def down(node: NodeContext) -> None:
    """Stop the devnet's anvil (its chain state is kept for the next `up`)."""
    from node.chain.devnet import devnet_down

    stopped = devnet_down(node.datadir)
    node.emit({"stopped": stopped}, "devnet stopped" if stopped else f"no devnet running for {node.datadir}")


@devnet.command("status")
@node_options
def status(node: NodeContext) -> None:
    """Whether the devnet runs; its URL, block, chain id and contract addresses."""
    from node.chain.devnet import devnet_status

    info = devnet_status(node.datadir)

    def text() -> str:
        if not info["running"]:
            return f"no devnet running for {node.datadir}"
        lines = [f"devnet running at {info['url']} (pid {info['pid']}), chain {info['chain_id']}, block {info['block']}"]
        lines += [f"  {name}: {address}" for name, address in (info["addresses"] or {}).items()]
        return "\n".join(lines)

    node.emit(info, text)


@click.command()
@click.option("--anvil-dev-account", is_flag=True,
              help="Deploy from anvil's first dev account (devnets only) instead of a keystore account.")
@_deploy_options
@node_options
def deploy(node: NodeContext, anvil_dev_account, disputes, min_trainer_stake, min_verifier_stake, unbonding_blocks) -> None:
    """Deploy the contracts to the chain at --rpc; write deployment.json (or --deployment)."""
    from node.chain.client import DEFAULT_RPC
    from node.chain.devnet import deploy_contracts, dev_accounts

    urls = node.config.rpc_urls or [DEFAULT_RPC]
    deployer = dev_accounts(1)[0] if anvil_dev_account else node.unlock()
    out = node.config.deployment_path
    node.note(f"deploying from {deployer.address} to {urls[0]} ...")
    deployment = deploy_contracts(urls, deployer, _params(min_trainer_stake, min_verifier_stake, unbonding_blocks, disputes),
                                  out=out)
    data = {**deployment.model_dump(), "deployment_file": str(out)}
    node.emit(data, lambda: "\n".join([f"deployed on chain {deployment.chain_id} at block {deployment.deploy_block}",
                                       *[f"  {n}: {a}" for n, a in deployment.addresses.items()],
                                       f"  written to {out}"]))
