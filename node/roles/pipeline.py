"""Training ahead: the trainer trains round r+1 while the committee verifies round r.

A round spends ~10 blocks between commit and finalize (seal delay, reveals, verdict
commit-reveal). A trainer that waits for them idles its machine for that long every
round; one that trains ahead keeps training from its own final state h_M(r) and
commits the next trace the moment r is accepted. The protocol is unchanged: commit
still requires base == the task's canonical hash, so a trace trained ahead is only
ever committed once h_M(r) *is* canonical. If r ends any other way (fraud, abandoned,
expired) the work ahead is thrown away; if r is void, it waits for r's re-commit.
The trainer risks only its own compute, never stake.

One job at a time, on a thread: torch and the store release the GIL for the heavy
parts. The thread runs at a lower CPU priority (AHEAD_NICE): work ahead is speculative
and has no deadline, so on a machine it shares with verifiers (or a node's own duties)
it must yield to the replays that do — on 2 shared cores, 4 trainers training ahead at
full priority made all three verifiers miss a slot's 60-block verdict window (the slot
void, every trainer's ahead work thrown away; bench/epochs.md). The job only computes and uploads; the node's main thread does every sqlite
write and every transaction, so crash-safety is the same as without it (a job lost
in a crash is just trained again).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


AHEAD_NICE = 10  # added to the job thread's niceness (Linux: per thread); raising it needs no privilege


def lower_this_threads_priority(increment: int = AHEAD_NICE) -> int | None:
    """Raise the calling thread's niceness by `increment`; its new niceness, or None where a thread has none of its
    own (not Linux) or the OS refuses."""
    import os

    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (AttributeError, OSError):
        return None


class Cancelled(Exception):
    """Raised inside a job that was cancelled (its base will never be canonical)."""


class AheadJob:
    """Train one round ahead on a thread: `AheadJob(base_hash, start_step, work).start()`.

    `work(check)` does the training; it must call `check()` often (every step): `check`
    raises Cancelled once `cancel()` was called. Its return value is `result`; an
    exception is kept in `error` for the main thread to log.
    """

    def __init__(self, base_hash: bytes, start_step: int, work: Callable[[Callable[[], None]], dict]):
        self.base_hash = bytes(base_hash)
        self.start_step = start_step
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.started = self.finished = None  # time.time()
        self.cpu_s = 0.0  # CPU seconds of the job's thread: against its wall time, how much of a core it got
        self.niceness: int | None = None  # the job thread's, once it runs (lower_this_threads_priority)
        self._work = work
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"train-ahead-{self.base_hash.hex()[:8]}", daemon=True)

    def start(self) -> "AheadJob":
        self.started = time.time()
        self._thread.start()
        return self

    def _run(self) -> None:
        self.niceness = lower_this_threads_priority()
        cpu = time.thread_time()
        try:
            self.result = self._work(self.check)
        except Cancelled:
            self.cancelled = True
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which logs and retrains
            self.error = exc
        finally:
            self.cpu_s = time.thread_time() - cpu
            self.finished = time.time()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"training ahead on 0x{self.base_hash.hex()[:12]} cancelled")

    def is_for(self, base_hash: bytes, start_step: int) -> bool:
        return self.base_hash == bytes(base_hash) and self.start_step == start_step

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self.started is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread; True once it has finished."""
        self._thread.join(timeout)
        return self.done

    def cancel(self, timeout: float | None = 60.0) -> None:
        """Stop at the next step and wait for the thread to end."""
        self._cancel.set()
        self.wait(timeout)
