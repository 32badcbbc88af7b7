"""node/roles/pipeline.py: the training-ahead job's life cycle (no chain, no torch: the work is a stand-in).

The node-level behaviour (round 2 trained while round 1 is verified; a cheater's work ahead
dropped after its fraud) is in tests/nodes/test_rounds.py and tests/adversarial.
"""
from __future__ import annotations

import sys
import threading

import pytest

from node.roles.pipeline import AHEAD_NICE, AheadJob, Cancelled

BASE = bytes(range(32))


def test_a_finished_job_hands_its_result_to_the_caller():
    job = AheadJob(BASE, 64, lambda check: {"trace_root": "0x01", "checked": check() is None}).start()
    assert job.wait(10) and job.done
    assert job.result == {"trace_root": "0x01", "checked": True}
    assert job.error is None and not job.cancelled and job.finished >= job.started
    assert job.is_for(BASE, 64) and not job.is_for(BASE, 128) and not job.is_for(bytes(32), 64)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own niceness is Linux's")
def test_the_work_runs_at_a_lower_priority_than_the_node():
    """Work ahead is speculative: it yields the CPU to duties with deadlines (a verifier's replay beside it), while
    the node's own thread keeps its priority."""
    import os

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}
    job = AheadJob(BASE, 64, lambda check: seen.update(nice=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) or {})
    assert job.start().wait(10) and job.error is None
    assert seen["nice"] == job.niceness == min(19, before + AHEAD_NICE) > before
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_cancel_stops_the_work_at_its_next_check():
    steps, started = [], threading.Event()

    def work(check):
        while True:  # a round that would never end: only cancel stops it
            started.set()
            check()
            steps.append(1)

    job = AheadJob(BASE, 0, work).start()
    assert started.wait(10)
    job.cancel(timeout=10)
    assert job.done and job.cancelled and job.result is None and job.error is None
    with pytest.raises(Cancelled, match="cancelled"):
        job.check()


def test_an_error_in_the_work_is_kept_for_the_main_thread():
    def work(check):
        raise OSError(28, "No space left on device")

    job = AheadJob(BASE, 0, work).start()
    assert job.wait(10)
    assert isinstance(job.error, OSError) and job.result is None and not job.cancelled


def test_a_job_not_started_is_not_done():
    job = AheadJob(BASE, 0, lambda check: {})
    assert not job.done


def test_a_node_whose_training_ahead_fails_records_it_once_and_leaves_the_round_to_start_round(tmp_path):
    """A real TrainerNode (no chain needed for this part): the work ahead cannot fetch its base (the store
    lost the checkpoint); the failure is a recorded duty, and the node does not retry it every block."""
    from node.roles.db import NodeDB
    from node.engine.spec import TaskSpec
    from node.store import open_store
    from node.store.cid import compute_cid
    from node.roles.trainer import TrainerNode

    node = TrainerNode(None, open_store(datadir=tmp_path), NodeDB(tmp_path / "trainer.sqlite"), 1, tmp_path,
                       show_progress=False)
    node.spec = TaskSpec.preset("tiny")
    final = b"\xab" * 32
    trace = {"boundary_hashes": [b"\x00" * 32, final], "base_step": 0, "cids": [compute_cid(b"lost")],
             "final_path": str(tmp_path / "gone.safetensors")}
    node.train_ahead(trace, "test")
    assert node.ahead is not None and node.ahead.wait(30)
    node.collect_ahead()
    failed = [d for d in node.db.duties(duty="train_ahead")]
    assert [d["outcome"] for d in failed] == ["failed"] and "NotFound" in failed[0]["detail"]
    assert node.ahead is None and node.ahead_failed == final
    assert node.db.get_json("ahead:1") is None
    node.train_ahead(trace, "test")  # the next block: not again
    assert node.ahead is None
