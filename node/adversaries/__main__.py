"""Dishonest trainers (and verifiers) as separate processes, for the demo and the tests only.

    python -m node.adversaries --task 1 --skip-segment 3 --datadir D --password-file P   # cheats
    python -m node.adversaries --task 1 --withhold ...                                   # never reveals
    python -m node.adversaries --task 1 --verifier accuse ...   # a MisbehavingVerifier (modes: verifiers.MODES)
    python -m node.adversaries --task 1 --verifier accuse --appeal ...   # ... that appeals the jury vote it lost
    python -m node.adversaries --task 1 --skip-segment 3 --defend ...    # cheats, and defends its forgery in a dispute

Deliberately not a `trainchain` subcommand: users get no --cheat flag. The same
TrainerNode runs, as CheatingTrainer / WithholdingTrainer (node/adversaries/trainers.py); with
--verifier MODE the VerifierNode runs as MisbehavingVerifier (node/adversaries/verifiers.py) on --task only.
"""
from __future__ import annotations

from pathlib import Path

import click

from node.cli.options import NodeContext, node_options, store_option
from node.cli.run import configure_logging, gateway_flags, gateway_options, run_node


@click.command()
@click.option("--task", "task_id", required=True, type=click.IntRange(1))
@click.option("--rounds", type=click.IntRange(1), default=1)
@click.option("--skip-segment", "skip", multiple=True, type=click.IntRange(0), help="Segments whose steps are skipped.")
@click.option("--withhold", is_flag=True, help="Commit, then never reveal.")
@click.option("--verifier", "verifier_mode", default=None,
              help="Run a MisbehavingVerifier in this mode (node/adversaries/verifiers.py MODES) instead of a trainer.")
@click.option("--appeal", "appeal", is_flag=True,
              help="--verifier accuse: appeal a jury vote it lost to the whole verifier set (a griefing accuser).")
@click.option("--defend", is_flag=True,
              help="Cheating trainer: post a span ending at its forged leaf in a dispute (a jury decides, not its miss).")
@click.option("--from-epoch", "from_epoch", type=click.IntRange(0), default=0,
              help="Epoch tasks: claim a slot only from this epoch on (the demo's cheater waits for its epoch).")
@gateway_options
@node_options
@store_option
def adversary(node: NodeContext, task_id: int, rounds: int, skip: tuple[int, ...], withhold: bool,
              verifier_mode: str | None, appeal: bool, defend: bool, from_epoch: int, gateway_listen: str | None,
              ipfs_gateways: tuple[str, ...]) -> None:
    from node.adversaries.trainers import CheatingTrainer, WithholdingTrainer
    from node.adversaries.verifiers import MODES, MisbehavingVerifier

    if verifier_mode is not None and verifier_mode not in MODES:
        raise click.BadParameter(f"unknown verifier mode {verifier_mode!r}; known: {', '.join(MODES)}", param_hint="--verifier")
    gateway_flags(node, gateway_listen, ipfs_gateways)

    configure_logging(node.verbose)

    if verifier_mode is not None:
        def make_verifier(chain, store, db, metrics):
            return MisbehavingVerifier(chain, store, db, Path(node.datadir) / "verifier", mode=verifier_mode,
                                       appeal=appeal, metrics=metrics, tasks={task_id}, show_progress=False)

        node.emit(run_node(node, "verifier", make_verifier, None))
        return

    def make(chain, store, db, metrics):
        common = dict(metrics=metrics, max_rounds=rounds, show_progress=False)
        workdir = Path(node.datadir) / "trainer"
        if withhold:
            trainer = WithholdingTrainer(chain, store, db, task_id, workdir, **common)
        else:
            trainer = CheatingTrainer(chain, store, db, task_id, workdir, skip_segments=set(skip), defend=defend, **common)
        trainer.first_epoch = from_epoch
        return trainer

    result = run_node(node, "trainer", make, None)
    node.emit(result)


if __name__ == "__main__":
    adversary()
