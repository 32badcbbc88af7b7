"""The runtime pin: a process that cannot reproduce the spec's runtime refuses it, in words."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from node.engine.errors import RuntimeMismatch
from node.engine.runtime import check_runtime, compute_machine_capabilities, compute_pin_env
from node.engine.spec import TaskSpec

from engine_helpers import REPO, write_spec


def test_this_process_matches_the_demo_pin():
    check_runtime(TaskSpec.default())  # conftest applied it


def test_a_different_thread_count_is_refused():
    with pytest.raises(RuntimeMismatch, match="1 threads but the spec pins 2"):
        check_runtime(TaskSpec.default().with_(runtime={"threads": 2}))


@pytest.mark.parametrize("capability, words", [
    ("DEFAULT", "CPU capability AVX2 but the spec pins DEFAULT"),
    ("AVX512", "CPU capability AVX2 but the spec pins AVX512"),
])
def test_a_different_cpu_capability_is_refused(capability, words):
    with pytest.raises(RuntimeMismatch, match=words):
        check_runtime(TaskSpec.default().with_(runtime={"cpu_capability": capability}))


def test_other_torch_or_mkl_path_is_refused():
    with pytest.raises(RuntimeMismatch, match="torch 2.13.0"):
        check_runtime(TaskSpec.default().with_(runtime={"torch_version": "2.12.0+cpu"}))
    with pytest.raises(RuntimeMismatch, match="MKL_CBWR"):
        check_runtime(TaskSpec.default().with_(runtime={"mkl_cbwr": "COMPATIBLE"}))


def test_cpu_capabilities_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor: 0\nflags\t\t: fpu sse avx avx2 fma\n")
    assert compute_machine_capabilities(str(info)) == {"default", "avx2"}
    other = tmp_path / "cpuinfo2"
    other.write_text("flags : sse avx\n")
    assert compute_machine_capabilities(str(other)) == {"default"}
    assert compute_machine_capabilities(str(tmp_path / "none")) is None


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in compute_pin_env(TaskSpec.default().runtime)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**clean, **env}, timeout=120)


PIN_AFTER_TORCH = """
import torch
from node.engine import TaskSpec, apply_runtime_pin
apply_runtime_pin(TaskSpec.default(), reexec={reexec})
import os; print("pinned", torch.get_num_threads(), os.environ["MKL_CBWR"])
"""


def test_pin_after_torch_loaded_with_other_env_is_refused():
    proc = _python(PIN_AFTER_TORCH.format(reexec=False), {"OMP_NUM_THREADS": "2"})
    assert proc.returncode != 0
    assert "RuntimeMismatch" in proc.stderr and "torch was loaded before the runtime pin" in proc.stderr
    assert "OMP_NUM_THREADS='2' but the spec needs '1'" in proc.stderr


def test_pin_after_torch_loaded_can_reexec_the_process():
    proc = _python(PIN_AFTER_TORCH.format(reexec=True), {"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pinned", "1", "AVX2"]


def _capability_this_cpu_lacks() -> str | None:
    supported = compute_machine_capabilities() or set()
    return next((c for c in ("avx512_vnni", "avx512", "avx2") if c not in supported), None)


def test_cli_refuses_a_runtime_it_cannot_reproduce(cli, tmp_path, tiny_spec, genesis):
    lacking = _capability_this_cpu_lacks()
    if lacking:  # a CPU path this machine cannot run (an AVX2-only CPU lacks avx512)
        spec = write_spec(tmp_path / "lacking.json", tiny_spec.with_(runtime={"cpu_capability": lacking.upper()}))
        proc = cli("spec", "check", spec, check=False)
        assert proc.returncode == 1 and f"cannot run the {lacking.upper()} code path" in proc.stdout
    spec = write_spec(tmp_path / "spec.json", tiny_spec.with_(runtime={"torch_version": "2.12.0+cpu"}))
    proc = cli("spec", "check", spec, check=False)
    assert proc.returncode == 1 and "torch 2.13.0+cpu but the spec pins 2.12.0+cpu" in proc.stdout
    proc = cli("replay", "--spec", spec, "--checkpoint", genesis, "--steps", "1", check=False)
    assert proc.returncode != 0 and "runtime: this process cannot replay the spec" in proc.stderr


def test_train_and_replay_refuse_a_spec_of_another_runtime(tiny_spec, dataset, genesis, tmp_path):
    from node.engine.replay import replay_segment
    from node.engine.trace import train_round

    other = tiny_spec.with_(runtime={"threads": 2})
    with pytest.raises(RuntimeMismatch, match="spec pins 2"):
        train_round(other, dataset, genesis, tmp_path)
    with pytest.raises(RuntimeMismatch, match="spec pins 2"):
        replay_segment(other, dataset, genesis)
    assert not any(tmp_path.iterdir())  # refused before writing anything
