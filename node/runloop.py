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

log = logging.getLogger("trainchain.node")


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM -> stop.set(); a second signal while stopping exits at once."""

    def handler(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("received %s: stopping after the current step", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class Fatal(Exception):
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


class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.seconds` — stage timings for the DB and metrics."""

    def __enter__(self) -> "Stopwatch":
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started
