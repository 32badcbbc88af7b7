"""The engine is reentrant: steps on other threads of the same process never change a step's bits.

Issue #19: an honest trainer was convicted because dropout drew from torch's global RNG,
which step.py re-seeded before every forward; the trainer's training-ahead thread and the
in-process verifiers' replays moved that one generator between a seed and its draws. These
tests run whole segments side by side (many steps each, started together) and compare the
end hashes with a run alone: with a shared generator they differ, with draws that are a
pure function of (seed, step, purpose, index) they cannot.
"""
from __future__ import annotations

import threading

import torch

from node.engine.genesis import make_genesis
from node.engine.replay import replay_segment
from node.engine.sampling import generate
from node.engine.state import file_state_hash
from node.engine.trace import train_round

STEPS = 16  # per replay: each step's forward draws its masks between other threads' seeds and draws
COPIES = 3  # replays at once
TRIALS = 3  # side-by-side runs: any one of them shows a shared generator (with the old engine)


def run_together(jobs):
    """Run callables on their own threads, released together; return their results in order."""
    start = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def work(i, job):
        start.wait()
        try:
            results[i] = job()
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_replays_on_threads_of_one_process_equal_one_replay_alone(tiny_spec, dataset, round_trace):
    ckpt = round_trace.checkpoints[0]
    alone = replay_segment(tiny_spec, dataset, ckpt, STEPS)
    for _ in range(TRIALS):
        together = run_together([lambda: replay_segment(tiny_spec, dataset, ckpt, STEPS)] * COPIES)
        assert together == [alone] * COPIES, "a replay's bits depend on what other threads do"
    assert alone == round_trace.boundary_hashes[STEPS // tiny_spec.segment_steps]


def test_a_replay_next_to_a_training_run_equals_both_alone(tiny_spec, dataset, round_trace, tmp_path):
    k = tiny_spec.segment_steps
    ckpt = round_trace.checkpoints[1]
    alone = replay_segment(tiny_spec, dataset, ckpt, 2 * k)
    for trial in range(TRIALS):
        trained, replayed = run_together([
            lambda: train_round(tiny_spec, dataset, round_trace.checkpoints[0], tmp_path / f"ahead-{trial}"),
            lambda: replay_segment(tiny_spec, dataset, ckpt, 2 * k),
        ])
        assert replayed == alone == round_trace.boundary_hashes[3]
        assert trained.boundary_hashes == round_trace.boundary_hashes, "training ahead moved by a replay"


def global_torch_state() -> dict:
    """The process-global torch settings a step could change (the runtime pin sets them once)."""
    return {
        "rng": torch.get_rng_state().tolist(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "default_dtype": torch.get_default_dtype(),
        "grad": torch.is_grad_enabled(),
        "matmul_precision": torch.get_float32_matmul_precision(),
    }


def test_genesis_training_replay_and_sampling_leave_global_torch_state_alone(tiny_spec, dataset, round_trace,
                                                                           tmp_path):
    torch.manual_seed(4242)
    before = global_torch_state()
    make_genesis(tiny_spec, tmp_path / "genesis.safetensors")
    train_round(tiny_spec, dataset, round_trace.checkpoints[0], tmp_path / "round")
    replay_segment(tiny_spec, dataset, round_trace.checkpoints[1])
    generate(round_trace.final_checkpoint, tiny_spec, "hello", max_new_tokens=8, seed=3)
    assert global_torch_state() == before


def test_genesis_is_a_pure_function_of_the_spec(tiny_spec, tmp_path, genesis):
    torch.manual_seed(99)  # the global generator's state does not reach the weights
    assert make_genesis(tiny_spec, tmp_path / "a.safetensors") == file_state_hash(genesis)
    assert make_genesis(tiny_spec.with_(seed=1), tmp_path / "b.safetensors") != file_state_hash(genesis)
