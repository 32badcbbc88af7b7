"""The `trainchain` command.

Subcommands live in their own modules and are imported only when used, so
`trainchain keys list` never pays for importing torch. To add a command, add one
line to COMMANDS: name -> ("module:attribute" of a click command/group, short help).
"""
from __future__ import annotations

import importlib
import importlib.util

import click

COMMANDS: dict[str, tuple[str, str]] = {
    # engine (issue 3)
    "spec": ("node.cli.engine:spec", "Write and check task specs."),
    "dataset": ("node.cli.engine:dataset", "Build a dataset into the content store."),
    "train-local": ("node.cli.engine:train_local", "Train a round locally: checkpoints + trace.json."),
    "replay": ("node.cli.engine:replay", "Replay K steps from a checkpoint; print the end state hash."),
    # content store (issue 4)
    "store": ("node.cli.store:store", "Add, get and compute CIDs in the content store."),
    # nodes (issue 5)
    "keys": ("node.cli.keys:keys", "Create, import, list and export encrypted keys."),
    "devnet": ("node.cli.devnet:devnet", "Start/stop a local anvil devnet with the contracts."),
    "deploy": ("node.cli.devnet:deploy", "Deploy the contracts to any chain."),
    "task": ("node.cli.task:task", "Create, list and show training tasks."),
    "stake": ("node.cli.stake:stake", "Stake as a trainer or verifier."),
    "unstake": ("node.cli.stake:unstake", "Request to unstake (starts the unbonding delay)."),
    "withdraw": ("node.cli.stake:withdraw", "Withdraw unbonded stake and rewards."),
    "status": ("node.cli.stake:status", "Stake, locks, rounds, rewards and slashes of an account."),
    "trainer": ("node.cli.run:trainer", "Run a trainer node."),
    "verifier": ("node.cli.run:verifier", "Run a verifier node."),
    "model": ("node.cli.model:model", "Read and pull the canonical model."),
    "generate": ("node.cli.model:generate", "Generate text locally from the canonical weights."),
    "demo": ("node.cli.demo:demo", "The whole protocol end to end on a local devnet."),
    # dapp (issue 6)
    "dapp": ("node.cli.dapp:dapp", "Serve the dapp page and the store read-only."),
}


def _is_available(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (target, _) in COMMANDS.items() if _is_available(target))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _is_available(COMMANDS[name][0]):
            return None
        module_name, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trainchain")
def cli() -> None:
    """trainchain: stake, train, verify, and read the canonical model."""


def main() -> None:
    cli()
