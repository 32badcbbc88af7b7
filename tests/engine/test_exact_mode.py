"""Exact mode end to end: the spec, the pin, and traces that are identical on other runtimes.

Each configuration trains in a separate process (the CPU code path and MKL path are read
when torch loads): 1 vs 2 threads, ATEN_CPU_CAPABILITY default / avx2 / avx512 (where the
CPU has it), MKL_CBWR AVX2 vs COMPATIBLE. The trace of every one must equal the first's,
bit for bit, and a process on yet another runtime must replay its segments. A control in
each process shows the configuration really changed torch's own kernels: the plain model's
gradients of one batch differ between them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from node.engine.errors import RuntimeMismatch, SpecError
from node.engine.runtime import check_runtime, compute_machine_capabilities, compute_pin_env, describe_pin
from node.engine.spec import RuntimePin, TaskSpec

from engine_helpers import REPO, write_spec

WORKER = str(REPO / "tests" / "engine" / "exact_worker.py")
STEPS = 4  # two segments of 2
BASE = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
CONFIGS = {
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "ATEN_CPU_CAPABILITY=avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
}


@pytest.fixture(scope="module")
def exact_spec(tiny_spec) -> TaskSpec:
    """The tiny model with a batch big enough that torch splits its reductions over 2 threads."""
    return tiny_spec.with_(runtime=RuntimePin.exact(), batch_size=32, model={"block_size": 64},
                           steps_per_round=STEPS, segment_steps=2)


def _run(args: list, env: dict) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in (*BASE, "TRAINCHAIN_DEVICE")}
    proc = subprocess.run([sys.executable, WORKER, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env={**clean, **BASE, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exact_files(exact_spec, tmp_path_factory):
    from node.engine.genesis import make_genesis

    d = tmp_path_factory.mktemp("exact")
    make_genesis(exact_spec, d / "genesis.safetensors")  # one file for all: genesis draws are not exact-mode ops
    return write_spec(d / "spec.json", exact_spec), d / "genesis.safetensors", d


@pytest.fixture(scope="module")
def base_run(exact_files, datadir):
    spec, genesis, d = exact_files
    return _run(["train", spec, datadir, genesis, d / "base", STEPS], {})


def test_the_base_run_ran_where_it_says(base_run):
    assert (base_run["threads"], base_run["capability"], base_run["mkl_cbwr"]) == (1, "AVX2", "AVX2")
    assert len(base_run["boundary_hashes"]) == 3 and len(set(base_run["boundary_hashes"])) == 3


@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_exact_trace_is_identical_on_another_runtime(name, exact_files, datadir, base_run):
    env = CONFIGS[name]
    if env.get("ATEN_CPU_CAPABILITY", "avx2") not in (compute_machine_capabilities() or {"default", "avx2"}):
        pytest.skip(f"this CPU cannot run the {env['ATEN_CPU_CAPABILITY']} code path (/proc/cpuinfo lacks its flags)")
    spec, genesis, d = exact_files
    other = _run(["train", spec, datadir, genesis, d / name.replace(" ", "_"), STEPS], env)
    expected = {"2 threads": ("threads", 2), "MKL_CBWR=COMPATIBLE": ("mkl_cbwr", "COMPATIBLE")}.get(
        name, ("capability", env.get("ATEN_CPU_CAPABILITY", "").upper()))
    assert other[expected[0]] == expected[1], f"the process did not run as {name}: {other}"
    assert other["boundary_hashes"] == base_run["boundary_hashes"], f"exact mode differs under {name}"
    assert other["trace_root"] == base_run["trace_root"]
    assert other["losses"] == base_run["losses"]
    test_an_exact_trace_is_identical_on_another_runtime.controls[name] = other["plain_gradient"]


test_an_exact_trace_is_identical_on_another_runtime.controls = {}


def test_the_runtimes_differ_for_torchs_own_kernels(base_run):
    """The control: the configurations above change the plain model's bits (else they proved nothing)."""
    controls = test_an_exact_trace_is_identical_on_another_runtime.controls
    if len(controls) < 2:
        pytest.skip("run with the cross-runtime tests (their processes compute the control)")
    differing = [name for name, h in controls.items() if h != base_run["plain_gradient"]]
    assert differing, f"no configuration changed torch's own gradient bits: {sorted(controls)}"


def test_another_runtime_replays_every_segment(exact_files, datadir, base_run):
    spec, genesis, d = exact_files
    env = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    replay = _run(["replay", spec, datadir, d / "base"], env)
    assert (replay["threads"], replay["capability"]) == (2, "DEFAULT")
    assert replay["end_hashes"] == base_run["boundary_hashes"][1:]


def test_an_exact_round_runs_the_same_protocol_in_process(exact_spec, dataset, tmp_path):
    """train_round / trace.json / replay_segment / data root: unchanged for an exact-mode task."""
    from node.engine.genesis import make_genesis
    from node.engine.replay import compute_data_root, replay_segment
    from node.engine.trace import load_trace, train_round

    spec = TaskSpec.preset("tiny", exact_spec.dataset.manifest_cid).with_(runtime=RuntimePin.exact())
    make_genesis(spec, tmp_path / "genesis.safetensors")
    trace = train_round(spec, dataset, tmp_path / "genesis.safetensors", tmp_path / "round")
    assert load_trace(tmp_path / "round").trace_root == trace.trace_root
    assert trace.data_root == compute_data_root(spec, dataset, 0)
    for j in range(spec.segments_per_round):
        assert replay_segment(spec, dataset, trace.checkpoints[j], expected_hash=trace.boundary_hashes[j]) \
            == trace.boundary_hashes[j + 1]
    plain = train_round(spec.with_(runtime={"mode": "plain", **TaskSpec.default().runtime.model_dump()}), dataset,
                        tmp_path / "genesis.safetensors", tmp_path / "plain")
    assert plain.boundary_hashes[0] == trace.boundary_hashes[0] and plain.boundary_hashes[1] != trace.boundary_hashes[1]


# ------------------------------------------------------------------ spec and pin
def test_an_exact_spec_names_only_what_matters():
    spec = TaskSpec.default().with_(runtime=RuntimePin.exact())
    runtime = json.loads(spec.canonical_json())["runtime"]
    assert runtime == {"mode": "exact", "torch_version": "2", "dtype": "float32", "deterministic": True,
                       "engine": spec.runtime.engine}
    assert TaskSpec.from_json(spec.canonical_json()) == spec
    assert spec.spec_hash() != TaskSpec.default().spec_hash()
    assert "mode" not in json.loads(TaskSpec.default().canonical_json())["runtime"]  # plain: as before the field
    assert compute_pin_env(spec.runtime) == {}


@pytest.mark.parametrize("runtime, words", [
    ({"mode": "exact", "threads": 2}, "exact pins no threads"),
    ({"mode": "exact", "device": "cuda"}, "exact pins no device"),
    ({"mode": "exact", "cpu_capability": "AVX2"}, "exact pins no cpu_capability"),
    ({"mode": "exact", "torch_version": "2.13.0+cpu"}, "major version only"),
    ({"mode": "fast"}, "mode"),
    ({"threads": None}, "plain needs threads"),
])
def test_a_runtime_that_mixes_the_modes_is_refused_in_words(runtime, words):
    data = json.loads(TaskSpec.default().canonical_json())
    data["runtime"] = {"engine": data["runtime"]["engine"], **runtime}
    if runtime.get("mode") != "exact":
        data["runtime"] = {**json.loads(TaskSpec.default().canonical_json())["runtime"], **runtime}
    with pytest.raises(SpecError, match=words):
        TaskSpec.from_json(json.dumps(data))


def test_check_runtime_in_exact_mode_ignores_threads_and_paths_but_not_torch(monkeypatch):
    spec = TaskSpec.default().with_(runtime=RuntimePin.exact())
    check_runtime(spec)  # this process is pinned to the plain demo runtime; exact mode does not care
    assert "exact mode" in describe_pin(spec) and "torch 2.x" in describe_pin(spec)
    assert "plain mode" in describe_pin(TaskSpec.default())
    with pytest.raises(RuntimeMismatch, match="spec pins torch 3.x"):
        check_runtime(spec.with_(runtime={"torch_version": "3"}))
    monkeypatch.setenv("TRAINCHAIN_DEVICE", "tpu")
    with pytest.raises(RuntimeMismatch, match="exact mode runs on cpu or cuda"):
        check_runtime(spec)


def test_spec_init_writes_an_exact_spec_and_check_says_why_it_matches(cli, tmp_path, corpus_cid):
    out = tmp_path / "exact.json"
    cli("spec", "init", "--preset", "tiny", "--mode", "exact", "--dataset", corpus_cid, "--out", out)
    spec = TaskSpec.from_file(out)
    assert spec.runtime.mode == "exact" and spec.runtime.threads is None
    assert "exact mode (any hardware), torch 2.x" in cli("spec", "show", out).stdout
    proc = cli("spec", "check", out, env={"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default"})
    assert "matches the spec (exact mode" in proc.stdout
    proc = cli("spec", "init", "--mode", "exact", "--threads", "2", "--dataset", corpus_cid, "--out",
               tmp_path / "bad.json", check=False)
    assert proc.returncode != 0 and "--mode exact pins no" in proc.stderr
