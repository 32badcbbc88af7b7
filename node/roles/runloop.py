"""The loop both nodes run: tick on every new block, survive RPC/store outages, stop on a signal.

SIGINT/SIGTERM set an Event (hivemind style); the loop finishes the current tick
and the caller's shutdown runs in `finally`. A tick that fails on a transient error
(RPC down, store unreachable) is logged and counted, and the loop backs off and
retries: the node's state lives on-chain and in its sqlite DB, so the next tick
catches up from where things are.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from node.errors import TrainchainError

log = logging.getLogger("trainchain.node")


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM -> stop.set(); a second signal while stopping exits at once.

    Returns a function that puts the previous handlers back (call it in `finally`).
    """

    def handler(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("received %s: stopping after the current step", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


class Fatal(TrainchainError):
    """An error the loop must not retry (bad config, wrong key, runtime mismatch)."""


def run_loop(
    tick: Callable[[], bool | None],
    stop: threading.Event,
    poll_s: float = 0.5,
    max_backoff_s: float = 8.0,
    on_error: Callable[[BaseException], None] | None = None,
    fatal: tuple[type[BaseException], ...] = (Fatal,),
) -> None:
    """Call `tick` until `stop` is set or tick returns True (done).

    Errors in `fatal` propagate; any other Exception is logged, passed to
    `on_error`, and retried with exponential backoff (reset after a good tick).
    """
    backoff = poll_s
    while not stop.is_set():
        try:
            if tick():
                return
            backoff = poll_s
            stop.wait(poll_s)
        except fatal:
            raise
        except Exception as exc:  # transient by default: the chain and the DB hold the state
            log.warning("tick failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
            if on_error is not None:
                on_error(exc)
            stop.wait(backoff)
            backoff = min(backoff * 2, max_backoff_s)


def fatal_errors() -> tuple[type[BaseException], ...]:
    """Errors a node loop must not retry: they need a person (config, stake, runtime)."""
    from node.errors import PreflightError

    out: list[type[BaseException]] = [Fatal, PreflightError]
    try:
        from node.engine.errors import RuntimeMismatch, SpecError

        out += [RuntimeMismatch, SpecError]
    except ImportError:
        pass
    return tuple(out)


class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.seconds` — stage timings for the DB and metrics."""

    def __enter__(self) -> "Stopwatch":
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started


class DutyNode:
    """What the trainer and verifier share: send a duty's transaction, log and count
    its outcome (sqlite + Prometheus), record stage timings for the benchmarks.

    Subclasses set `role` and have `chain`, `db`, `metrics`.
    """

    role = "node"
    ticked_head: int | None = None  # the head of the last tick that ran to its end

    def is_new_head(self, head: int) -> bool:
        """Worth a whole tick: the chain moved since the last one that ran to its end (the DB
        changes only by this node, the chain only by blocks). A failed tick is retried at once."""
        return head != self.ticked_head

    def ticked(self, head: int) -> None:
        self.ticked_head = head

    def run_ticks(self, stop: threading.Event) -> None:
        """`self.tick` on every poll until `stop` (or tick says done); RPC errors counted and retried."""
        run_loop(self.tick, stop, poll_s=self.chain.poll_interval, on_error=lambda e: self.metrics.rpc_error(),
                 fatal=fatal_errors())

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"trainchain.{self.role}")

    def transact(self, round_id, fn, what: str, done=None, record: bool = True):
        """Send; log and count the outcome. If it reverts and `done()` says its effect is
        already on-chain (another node did it first), that is not a failure: None."""
        from node.errors import ChainError

        with Stopwatch() as sw:
            try:
                receipt = self.chain.transact(fn, what=what)
            except ChainError as e:
                if done is not None and done():
                    self.log.info("%s: already done by another node (%s)", what, e.reason or e)
                    return None
                self.duty(round_id, what, "failed", detail=str(e))
                raise
        if record:  # record=False: the caller records it (e.g. once the receipt names the round)
            self.timing(round_id, f"tx:{what}", sw.seconds)
            self.duty(round_id, what, "ok", tx=receipt)
        return receipt

    def phase_past(self, round_id: int, phase: int):
        """A `done` check: the round has moved beyond `phase`."""
        return lambda: self.chain.get_round(round_id).phase > phase

    def duty(self, round_id, duty: str, outcome: str, detail: str = "", tx=None) -> None:
        tx_hash = "0x" + bytes(tx["transactionHash"]).hex() if tx is not None else None
        self.db.record_duty(self.role, round_id, duty, outcome, detail, tx_hash)
        self.metrics.duty(duty, outcome)
        level = logging.INFO if outcome in ("ok", "accepted") else logging.WARNING
        self.log.log(level, "duty %s round=%s: %s%s%s", duty, round_id, outcome, f" {detail}" if detail else "",
                     f" ({tx_hash})" if tx_hash else "")

    def timing(self, round_id, stage: str, seconds: float) -> None:
        self.db.record_timing(self.role, round_id, stage, seconds)
        self.metrics.stage(stage.split(":")[0], seconds)

    def claim_rewards(self, round_id) -> None:
        """Pull payments: claim whatever StakeManager credited to this address."""
        sm = self.chain.stake_manager.functions
        if self.chain.call(sm.claimable(self.chain.address)):
            self.transact(round_id, sm.claim(), "claim", done=lambda: not self.chain.call(sm.claimable(self.chain.address)))


class progress_bar:
    """A rich progress bar on stderr; `with progress_bar("train", n) as advance: advance(step, loss)`."""

    def __init__(self, what: str, total: int, enabled: bool = True):
        self.what, self.total, self.enabled = what, total, enabled
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda step, loss: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn(f"[bold]{self.what}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        )
        self._progress.start()
        task = self._progress.add_task(self.what, total=self.total, loss="-")

        def advance(step, loss):
            self._progress.update(task, advance=1, loss=f"{loss:.4f}" if loss == loss else "skipped")

        return advance

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
