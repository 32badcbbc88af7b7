"""`trainchain trainer run --task ID` and `trainchain verifier run`: the long-running nodes.

    trainchain trainer run --task 1 --account 0x.. --password-file pw --metrics-port 9100
    trainchain verifier run --account 0x.. --password-file pw

The key is unlocked once at start (a bad password fails at once), a lock file in the
data dir keeps a second process off the same key, SIGINT/SIGTERM stop the node after
the current step, and `<datadir>/<role>.sqlite` lets a restarted node resume its rounds.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import click

from node.cli.options import NodeContext, node_options, store_option

METRICS_HELP = "Serve Prometheus metrics on this port (127.0.0.1). Default: the config's metrics_port, else off."


def gateway_options(f):
    """--gateway-listen / --ipfs-gateway for the node commands (put them above @node_options)."""
    f = click.option("--ipfs-gateway", "ipfs_gateways", multiple=True, metavar="URL",
                     help="Also fetch missing content from this trustless gateway (repeatable). "
                          "Env TRAINCHAIN_IPFS_GATEWAYS.")(f)
    return click.option("--gateway-listen", default=None, metavar="HOST:PORT",
                        help="Serve this node's store to peers here (advertised in PeerDirectory; port 0: any; "
                             "'' : off). Default 127.0.0.1:0.")(f)


def gateway_flags(node: NodeContext, gateway_listen: str | None, ipfs_gateways: tuple[str, ...]) -> None:
    if gateway_listen is not None:
        node.flags["gateway_listen"] = gateway_listen
    if ipfs_gateways:
        node.flags["ipfs_gateways"] = list(ipfs_gateways)


def configure_logging(verbose: int) -> None:
    """Duties are logged at INFO by default (node_options leaves other loggers at WARNING)."""
    logging.getLogger("trainchain").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def run_node(node: NodeContext, role: str, make, metrics_port: int | None) -> dict:
    """Unlock, lock the key, open the DB and metrics, run `make(chain, store, db, metrics)` until stopped."""
    from node.roles.db import NodeDB
    from node.keys import NodeLock
    from node.roles.metrics import NodeMetrics
    from node.roles.runloop import install_signal_handlers

    account = node.unlock()
    node.note(f"{role} {account.address} (data dir {node.datadir})")
    with NodeLock(node.datadir, account.address):
        chain = node.chain(sign=True)
        from node.store.peers import node_content

        # the store fetches what it lacks from peers; the gateway serves this node's store to them
        from node.store import open_store

        content = node_content(node.config, chain, open_store(node.datadir, node.config.ipfs_api))
        store = content.store
        if content.gateway is not None:
            node.note(f"{role} gateway {content.gateway.url} (serving {content.gateway.store})")
        db = NodeDB(Path(node.datadir) / f"{role}.sqlite")
        claim_db(db, role, account.address, node.datadir)
        metrics = NodeMetrics(role)
        port = metrics_port if metrics_port is not None else node.config.metrics_port
        server = metrics.serve(port) if port else None
        stop = threading.Event()
        restore_signals = install_signal_handlers(stop)
        try:
            runner = make(chain, store, db, metrics)
            if content.gateway is not None and hasattr(runner, "serve_finals"):
                runner.serve_finals(content.gateway)  # a trainer hands its epoch slots' final states to co-trainers
            runner.run(stop)
            return {
                "role": role,
                "address": account.address,
                "stopped_by_signal": stop.is_set(),
                "rounds": [{"round": r.round_id, "task": r.task_id, "phase": r.phase, "outcome": r.data.get("outcome")}
                           for r in db.rounds(role)],
            }
        finally:
            restore_signals()
            content.close()
            if server is not None:
                server.shutdown()
            db.close()


def claim_db(db, role: str, address: str, datadir) -> None:
    """A data dir's <role>.sqlite holds one key's rounds and salts: refuse another key."""
    from node.errors import ConfigError

    owner = db.get_json("owner")
    if owner and owner != address:
        db.close()
        raise ConfigError(f"{datadir}/{role}.sqlite holds the rounds of {owner}; run {address} as a {role} "
                          "with its own --datadir (one node per data dir)")
    if not owner:
        db.put_json("owner", address)


# ---------------------------------------------------------------- trainer
@click.group()
def trainer() -> None:
    """Run a trainer node."""


@trainer.command("run")
@click.option("--task", "task_id", required=True, type=click.IntRange(1), help="Task to train.")
@click.option("--rounds", type=click.IntRange(1), default=None, help="Stop after this many decided rounds (void rounds are retried).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, help=METRICS_HELP)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--no-pipeline", is_flag=True,
              help="Train the next round only once this one is final (default: train it while this one is verified).")
@click.option("--no-final-handoff", is_flag=True,
              help="Epoch tasks: neither hand this slot's final state to the epoch's co-trainers at the commit nor ask "
                   "for theirs (default: do both, so training ahead starts at the last commit, not the last ends reveal).")
@gateway_options
@node_options
@store_option
def trainer_run(node: NodeContext, task_id: int, rounds: int | None, metrics_port: int | None, no_progress: bool,
                no_pipeline: bool, no_final_handoff: bool, gateway_listen: str | None, ipfs_gateways: tuple[str, ...]) -> None:
    """Train the task round after round: commit, reveal when asked, collect."""
    from node.roles.trainer import TrainerNode

    gateway_flags(node, gateway_listen, ipfs_gateways)

    configure_logging(node.verbose)

    def make(chain, store, db, metrics):
        return TrainerNode(chain, store, db, task_id, Path(node.datadir) / "trainer", metrics=metrics,
                           max_rounds=rounds, show_progress=not no_progress, pipeline=not no_pipeline,
                           final_handoff=not no_final_handoff)

    result = run_node(node, "trainer", make, metrics_port)
    node.emit(result, lambda: f"trainer stopped after {len(result['rounds'])} round(s)")


# ---------------------------------------------------------------- verifier
@click.group()
def verifier() -> None:
    """Run a verifier node."""


@verifier.command("run")
@click.option("--task", "task_ids", multiple=True, type=click.IntRange(1), help="Only these tasks (repeatable). Default: all.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, help=METRICS_HELP)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--watch", "watch_share", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="With Disputes: replay this share of every round's posted segments (chosen at random, committee "
                   "or not) and dispute one that does not end at its posted boundary.")
@gateway_options
@node_options
@store_option
def verifier_run(node: NodeContext, task_ids: tuple[int, ...], metrics_port: int | None, no_progress: bool,
                 watch_share: float, gateway_listen: str | None, ipfs_gateways: tuple[str, ...]) -> None:
    """Replay the sampled segments of every round whose committee holds this key, and vote; with --watch, also
    watch a share of every round's segments."""
    from verifier.node import VerifierNode

    gateway_flags(node, gateway_listen, ipfs_gateways)

    configure_logging(node.verbose)

    def make(chain, store, db, metrics):
        return VerifierNode(chain, store, db, Path(node.datadir) / "verifier", metrics=metrics,
                            tasks=set(task_ids) or None, show_progress=not no_progress, watch_share=watch_share)

    result = run_node(node, "verifier", make, metrics_port)
    node.emit(result, lambda: f"verifier stopped after {len(result['rounds'])} round(s)")


# ---------------------------------------------------------------- verifier: per-task opt-out (issue #13)
def _verifier_chain(node: NodeContext):
    """The signing chain client of a staked verifier (PreflightError in words otherwise)."""
    from node.errors import PreflightError

    chain = node.chain(sign=True)
    role = chain.call(chain.stake_manager.functions.stakers(chain.address))[0]
    if role != 2:
        raise PreflightError(f"{chain.address} is not a verifier: opting in or out of a task is a verifier's choice "
                             "(`trainchain stake verifier AMOUNT`)")
    return chain


def compute_replay_refusal(spec_json: bytes) -> str | None:
    """Why this machine cannot replay a spec bit-exactly, in words (None if it can): `trainchain spec
    check` in a fresh process, because the runtime pin must be applied before torch loads."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="trainchain-optin-") as tmp:
        path = Path(tmp) / "spec.json"
        path.write_bytes(spec_json)
        done = subprocess.run([sys.executable, "-c", "from node.cli import main; main()", "spec", "check", str(path), "--json"],
                              capture_output=True, text=True, timeout=600)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"`trainchain spec check` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None if result.get("ok") else str(result.get("reason"))


@verifier.command("optout")
@click.option("--task", "task_id", required=True, type=click.IntRange(1), help="Task never to be drawn for.")
@node_options
def verifier_optout(node: NodeContext, task_id: int) -> None:
    """Never be drawn for TASK's committees (a spec this machine cannot replay, or will not): counts at once."""
    from node.errors import PreflightError

    chain = _verifier_chain(node)
    sm = chain.stake_manager.functions
    if chain.call(sm.opted_out(task_id, chain.address)):
        raise PreflightError(f"{chain.address} already opted out of task {task_id}")
    receipt = chain.transact(sm.optout(task_id), what=f"opt out of task {task_id}")
    node.emit({"address": chain.address, "task": task_id, "opted_in": False, "block": receipt["blockNumber"]},
              f"{chain.address} opted out of task {task_id}: never drawn for its rounds")


@verifier.command("optin")
@click.option("--task", "task_id", required=True, type=click.IntRange(1), help="Task to be drawn for again.")
@node_options
@store_option
def verifier_optin(node: NodeContext, task_id: int) -> None:
    """Be drawn for TASK again (rounds committed after this block) — refused in words if this machine
    cannot replay the task's spec bit-exactly."""
    from node.engine.spec import TaskSpec
    from node.errors import PreflightError

    chain = _verifier_chain(node)
    sm = chain.stake_manager.functions
    task = chain.get_task(task_id)
    if not task.exists:
        raise PreflightError(f"no task {task_id} on this deployment")
    if not chain.call(sm.opted_out(task_id, chain.address)):
        raise PreflightError(f"{chain.address} has not opted out of task {task_id}: a verifier is drawn for every "
                             "task it has not opted out of")
    try:
        spec_json = node.store().get_bytes(task.spec_cid)
        spec = TaskSpec.from_json(spec_json)
    except Exception as exc:  # unavailable or not a spec: either way nothing to replay
        raise PreflightError(f"refusing to opt into task {task_id}: cannot read its spec {task.spec_cid} ({exc})") from None
    if spec.spec_hash() != task.spec_hash:
        raise PreflightError(f"refusing to opt into task {task_id}: the spec at {task.spec_cid} does not hash to the on-chain spec hash")
    refusal = compute_replay_refusal(spec_json)
    if refusal:
        raise PreflightError(f"refusing to opt into task {task_id}: this machine cannot replay its spec bit-exactly ({refusal})")
    receipt = chain.transact(sm.optin(task_id), what=f"opt into task {task_id}")
    node.emit({"address": chain.address, "task": task_id, "opted_in": True, "block": receipt["blockNumber"]},
              f"{chain.address} opted into task {task_id} again: drawn for rounds committed after block {receipt['blockNumber']}")
