"""GPU check: is a training step bit-exact across processes on a GPU, and how fast is it?

Run by scripts/gpu_check.sh on a GPU machine (one short call). In separate processes:
two trainings of one round on the GPU (their traces must be identical), a replay of every
segment from the first one's checkpoints (must reproduce every boundary hash), a CPU
training of the same spec (compared, expected to differ: CPU and CUDA kernels are not
bit-compatible), and step times CPU vs GPU at three model sizes. Writes
gpu_check.json + gpu_check.md to --out.

Exact mode (issue #17, runtime.mode = exact): the same exact-mode spec trained on the GPU
and on the CPU (two CPU runtimes: 1 thread / ATEN default and all threads / MKL COMPATIBLE)
must give the SAME trace root, and the exact step's time is measured against the plain
step on the device (target <= 2x on a GPU). Without a GPU the CPU part still runs and the
GPU part is reported as not run.

    python scripts/gpu_check.py --out bench/gpu            # driver
    python scripts/gpu_check.py --device cpu --out /tmp/x   # the same checks on the CPU (tests the script)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS_BYTES = 1_000_000
CHECK_PRESET = "875k"  # the model of determinism.md
# exact mode's cross-runtime check: the demo model (an exact 875k step takes ~1.8 s on one CPU thread, so 32 steps on
# two CPU runtimes used most of a device lease); the exact-vs-plain step time is still taken on CHECK_PRESET
EXACT_PRESET = "demo"
TIMING = [("875k", 5), ("10m", 5), ("100m", 3)]
WORKER_TIMEOUT_S = 240  # one worker process: a stuck stage reports an error instead of eating the lease


def _dataset():
    from node.engine.dataset import Dataset, demo_corpus_paths

    data = b"\n".join(p.read_bytes() for p in demo_corpus_paths(limit_bytes=CORPUS_BYTES))
    return Dataset(data), hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ workers (fresh process each)
def worker(args) -> dict:
    from node.engine.spec import TaskSpec
    from node.engine.runtime import apply_runtime_pin

    spec = TaskSpec.from_file(args.spec)
    apply_runtime_pin(spec)  # before torch does anything
    import torch

    ds, corpus_sha = _dataset()
    from node.engine.runtime import compute_device

    out = {"corpus_sha256": corpus_sha, "device": compute_device(spec), "mode": spec.runtime.mode,
           "torch": torch.__version__, "threads_used": torch.get_num_threads(),
           "cpu_capability_used": torch.backends.cpu.get_cpu_capability()}
    if args.worker == "train":
        from node.engine.genesis import make_genesis
        from node.engine.trace import train_round

        d = Path(args.dir)
        d.mkdir(parents=True, exist_ok=True)
        genesis = Path(args.genesis)
        if not genesis.exists():
            make_genesis(spec, genesis)
        stamps = []
        trace = train_round(spec, ds, genesis, d, progress=lambda g, loss: stamps.append(time.perf_counter()))
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
        out.update(trace.to_json())
        out["step_s_median"] = gaps[len(gaps) // 2] if gaps else None
    elif args.worker == "replay":
        from node.engine.replay import replay_segment
        from node.engine.trace import load_trace

        trace = load_trace(args.dir)
        results = []
        for j in range(len(trace.boundary_hashes) - 1):
            end = replay_segment(spec, ds, trace.checkpoints[j], expected_hash=trace.boundary_hashes[j])
            results.append(end == trace.boundary_hashes[j + 1])
        out["segments_bit_exact"] = results
    elif args.worker == "time":
        from node.engine.genesis import compute_genesis_state
        from node.engine.model import count_parameters
        from node.engine.step import Trainer

        trainer = Trainer(spec, compute_genesis_state(spec))
        batches = [ds.batch_for(spec, g) for g in range(args.steps + 2)]
        for g in range(2):
            trainer.step(batches[g])  # warm-up
        times = []
        for g in range(2, args.steps + 2):
            t = time.perf_counter()
            trainer.step(batches[g])  # .item() on the loss synchronises the GPU
            times.append(time.perf_counter() - t)
        out.update(params=count_parameters(spec.model), threads=spec.runtime.threads,
                   step_s_median=sorted(times)[len(times) // 2], step_s_min=min(times))
    return out


# ------------------------------------------------------------------ driver
def _run_worker(name: str, spec: Path, env_extra: dict | None = None, **kw) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--spec", str(spec)]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                            "ATEN_CPU_CAPABILITY", "MKL_CBWR", "TRAINCHAIN_DEVICE")}
    env.update(env_extra or {})  # exact mode: the process's own runtime (threads, ISA, MKL path, device)
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return {"error": f"timeout: worker {name} ran past {WORKER_TIMEOUT_S} s\n{err[-2000:]}", "wall_s": WORKER_TIMEOUT_S}
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:], "wall_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def _make_spec(path: Path, preset: str, device: str, threads: int, **changes) -> Path:
    from node.engine.spec import TaskSpec

    runtime = dict(DESCRIBED[device], threads=threads)
    spec = TaskSpec.preset(preset).with_(runtime=runtime, **changes)
    path.write_bytes(spec.canonical_json())
    return path


DESCRIBED: dict[str, dict] = {}


def _describe(device: str) -> dict:
    """This machine's runtime for the pin (read in a process that has set no pin of its own)."""
    os.environ.setdefault("MKL_CBWR", "AVX2")
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    from node.engine.runtime import describe_runtime

    d = describe_runtime(device)
    d.pop("threads")
    return d


def driver(args) -> dict:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    device = args.device
    cpu_threads = min(os.cpu_count() or 1, 16)
    DESCRIBED["cpu"] = _describe("cpu")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        # no GPU here: run what the CPU can (the exact-mode CPU runtimes), report the GPU part as not run
        res = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "runtime": DESCRIBED["cpu"]},
               "device": device, "gpu": "not run: no CUDA GPU available on this machine"}
        started = time.perf_counter()
        try:
            res["exact"] = _check_exact(work, device, cpu_threads, gpu=False)
        except Exception:
            res["driver_error"] = traceback.format_exc()
        return _write_report(out_dir, res, started)
    DESCRIBED[device] = _describe(device)
    res: dict = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                             "runtime": DESCRIBED[device]}, "device": device, "stages_s": {},
                 "commit": os.environ.get("BENCH_COMMIT")}  # device_env.sh: the copy on a lent machine has no .git
    started = time.perf_counter()
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        res["machine"]["gpu"] = {"name": p.name, "sm_count": p.multi_processor_count,
                                 "memory_gib": round(p.total_memory / 2**30, 1)}
    spec = _make_spec(work / "spec.json", CHECK_PRESET, device, 1, steps_per_round=32, segment_steps=8)
    genesis = work / "genesis.safetensors"
    genesis.unlink(missing_ok=True)  # made by the first training, loaded by the others
    runs: dict = {}

    def two_trainings() -> dict:  # 2. two trainings in separate processes, same spec, same genesis file
        runs["a"] = a = _run_worker("train", spec, dir=work / "a", genesis=genesis)
        b = _run_worker("train", spec, dir=work / "b", genesis=genesis)
        return {"bit_exact": "error" not in a and "error" not in b and a["boundary_hashes"] == b["boundary_hashes"],
                "a": _brief(a), "b": _brief(b)}

    def replay() -> dict:  # 3. replay every segment of run a in a third process
        r = _run_worker("replay", spec, dir=work / "a")
        return {"all_segments_bit_exact": bool(r.get("segments_bit_exact")) and all(r["segments_bit_exact"]),
                **{k: v for k, v in r.items() if k != "corpus_sha256"}}

    def cpu_vs_gpu() -> dict:  # 4. the same spec trained on the CPU: does the device change the bits? (expected: yes)
        a = runs.get("a", {})
        cspec = _make_spec(work / "spec_cpu.json", CHECK_PRESET, "cpu", cpu_threads, steps_per_round=32,
                           segment_steps=8)
        c = _run_worker("train", cspec, dir=work / "c", genesis=genesis)
        return {"same_genesis": "error" not in c and c["boundary_hashes"][0] == a.get("boundary_hashes", [None])[0],
                "same_after_first_segment": "error" not in c and "error" not in a
                and c["boundary_hashes"][1] == a["boundary_hashes"][1],
                "cpu": _brief(c)}

    def step_times() -> dict:  # 6. step times, CPU vs device
        timing = {}
        for preset, steps in TIMING:
            row = {}
            for dev, threads in ((device, 1), ("cpu", cpu_threads)):
                if dev == device and dev == "cpu" and threads != cpu_threads:
                    continue
                row[dev] = _run_worker("time", _make_spec(work / f"t_{preset}_{dev}.json", preset, dev, threads),
                                       steps=steps)
            timing[preset] = row
        return timing

    # the stages in order of what a lease most needs to learn (exact mode across devices was never run on a GPU
    # before); after each one the report is written again, so a run cut off by its lease keeps what it did
    stages = [("exact", lambda: _check_exact(work, device, cpu_threads, gpu=device == "cuda")),
              ("two_trainings", two_trainings), ("replay", replay)]
    if device != "cpu":
        stages.append(("cpu_vs_gpu", cpu_vs_gpu))
    stages += [("refusal", lambda: _check_refusal(work, device)),  # 5. the pin refuses another GPU model
               ("step_times", step_times)]
    res["stages_planned"] = [name for name, _ in stages]
    for name, run in stages:
        t = time.perf_counter()
        _progress(f"{name}: started", started)
        try:
            res[name] = run()
        except Exception:
            res["driver_error"] = traceback.format_exc()
            _progress(f"{name}: failed\n{res['driver_error']}", started)
            break
        res["stages_s"][name] = round(time.perf_counter() - t, 1)
        _progress(f"{name}: done in {res['stages_s'][name]:.0f} s", started)
        _write_report(out_dir, res, started)
    return _write_report(out_dir, res, started)


def _progress(msg: str, started: float) -> None:
    print(f"[gpu_check {time.perf_counter() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)


def _write_report(out_dir: Path, res: dict, started: float) -> dict:
    """Stamp the wall time and write gpu_check.json + gpu_check.md (with a GPU or without)."""
    res["wall_s"] = time.perf_counter() - started
    (out_dir / "gpu_check.json").write_text(json.dumps(res, indent=1) + "\n")
    (out_dir / "gpu_check.md").write_text(_markdown(res))
    return res


def _check_exact(work: Path, device: str, cpu_threads: int, gpu: bool) -> dict:
    """An exact-mode spec trained in separate processes on different runtimes (and the GPU, if any):
    every trace root must be the same. Also the exact vs plain step time on the device."""
    from node.engine.spec import RuntimePin, TaskSpec

    spec = TaskSpec.preset(EXACT_PRESET).with_(runtime=RuntimePin.exact(), steps_per_round=32, segment_steps=8)
    path = work / "spec_exact.json"
    path.write_bytes(spec.canonical_json())
    genesis = work / "genesis_exact.safetensors"
    genesis.unlink(missing_ok=True)  # made by the first run, loaded by the others
    runtimes = {
        "cpu, 1 thread, ATEN default, MKL AVX2": {"TRAINCHAIN_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
                                                  "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default",
                                                  "MKL_CBWR": "AVX2"},
        f"cpu, {cpu_threads} threads, best ISA, MKL COMPATIBLE": {
            "TRAINCHAIN_DEVICE": "cpu", "OMP_NUM_THREADS": str(cpu_threads), "MKL_NUM_THREADS": str(cpu_threads),
            "MKL_CBWR": "COMPATIBLE"},
    }
    if gpu:
        runtimes["cuda"] = {"TRAINCHAIN_DEVICE": "cuda"}
    runs = {name: _run_worker("train", path, env, dir=work / f"exact_{i}", genesis=genesis)
            for i, (name, env) in enumerate(runtimes.items())}
    roots = {name: r.get("trace_root", "error: " + r.get("error", "")[-300:]) for name, r in runs.items()}
    out = {"spec_hash": "0x" + spec.spec_hash().hex(), "trace_roots": roots,
           "same_trace_root": len(set(roots.values())) == 1 and all(v.startswith("0x") for v in roots.values()),
           "runs": {name: _brief(r) for name, r in runs.items()},
           "gpu": "run" if gpu else "not run: no CUDA GPU available on this machine"}
    if gpu:
        # the exact step against the plain one on the device, on both models
        out["device_step_s"] = {}
        for preset in dict.fromkeys((EXACT_PRESET, CHECK_PRESET)):
            plain = _make_spec(work / f"t_exact_plain_{preset}.json", preset, device, 1)
            exact = work / f"t_exact_{preset}.json"
            exact.write_bytes(TaskSpec.preset(preset).with_(runtime=RuntimePin.exact()).canonical_json())
            out["device_step_s"][preset] = {
                "plain": _run_worker("time", plain, steps=5).get("step_s_min"),
                "exact": _run_worker("time", exact, {"TRAINCHAIN_DEVICE": device}, steps=5).get("step_s_min")}
    return out


def _brief(r: dict) -> dict:
    if "error" in r:
        return r
    keep = ("trace_root", "data_root", "step_s_median", "wall_s", "torch", "corpus_sha256")
    out = {k: r[k] for k in keep if k in r}
    out["final_hash"] = r["boundary_hashes"][-1]
    out["first_loss"], out["last_loss"] = r["losses"][0], r["losses"][-1]
    return out


def _check_refusal(work: Path, device: str) -> dict:
    from node.engine.spec import TaskSpec

    field = {"gpu_name": "Some Other GPU"} if device == "cuda" else {"torch_version": "0.0.0"}
    spec = TaskSpec.preset(CHECK_PRESET).with_(runtime=dict(DESCRIBED[device], threads=1, **field))
    path = work / "spec_other.json"
    path.write_bytes(spec.canonical_json())
    r = _run_worker("time", path, steps=1)
    return {"refused": "RuntimeMismatch" in r.get("error", ""), "message": r.get("error", "")[-300:]}


def _markdown(res: dict) -> str:
    m = res["machine"]
    gpu = m.get("gpu", {})
    if gpu or res["device"] == "cpu":
        where = f"{res['device']} {gpu.get('name', '')} ({gpu.get('sm_count', '?')} SMs)" if gpu else "cpu"
    else:
        where = f"{res['device']} requested, none available: CPU parts only"
    lines = ["# GPU check", "",
             f"Device: {where}; "
             f"runtime pinned: `{json.dumps(m['runtime'])}`; {m['cpu_count']} CPU cores. "
             f"Produced by `scripts/gpu_check.sh`{' at ' + res['commit'] if res.get('commit') else ''} in "
             f"{res['wall_s']:.0f} s.", ""]
    if res.get("stages_planned"):
        done = res.get("stages_s", {})
        missing = [n for n in res["stages_planned"] if n not in done]
        lines += ["Stages (s): " + ", ".join(f"{n} {t:.0f}" for n, t in done.items())
                  + (f"; **not run** (failed or cut off): {', '.join(missing)}" if missing else "") + ".", ""]
    if "driver_error" in res:
        lines += ["Driver error:", "```", res["driver_error"], "```", ""]
    t = res.get("two_trainings")
    if t:
        lines += [f"- Two trainings of one round ({CHECK_PRESET} model, 32 steps, 4 segments), separate processes: "
                  f"**{'bit-exact' if t['bit_exact'] else 'NOT bit-exact'}** "
                  f"(trace roots {t['a'].get('trace_root', 'error')} / {t['b'].get('trace_root', 'error')})."]
    r = res.get("replay")
    if r:
        lines += [f"- Replay of every segment in a third process: "
                  f"**{'all bit-exact' if r['all_segments_bit_exact'] else 'NOT bit-exact'}** "
                  f"({r.get('segments_bit_exact', r.get('error', '')[-200:])})."]
    c = res.get("cpu_vs_gpu")
    if c:
        lines += [f"- Same spec on the CPU: genesis identical: {c['same_genesis']}; state after the first segment "
                  f"identical to the GPU's: {c['same_after_first_segment']} (expected False: CPU and CUDA kernels "
                  "round differently, so a task pins one device class)."]
    f = res.get("refusal")
    if f:
        lines += [f"- A spec pinning another GPU model is refused: {f['refused']}."]
    if res.get("gpu"):
        lines += [f"- GPU: {res['gpu']}."]
    x = res.get("exact")
    if x:
        lines += [f"- Exact mode (runtime.mode = exact, {EXACT_PRESET} model, 32 steps): one trace root on every runtime"
                  f"{' and the GPU' if x['gpu'] == 'run' else ''}: **{'yes' if x['same_trace_root'] else 'NO'}** "
                  f"(GPU part: {x['gpu']})."]
        lines += [f"  - {name}: {root}" for name, root in x["trace_roots"].items()]
        for preset, t in (x.get("device_step_s") or {}).items():
            ratio = t["exact"] / t["plain"] if t.get("exact") and t.get("plain") else None
            lines += [f"  - {preset} step on the device: plain {t['plain']}, exact {t['exact']} s"
                      + (f" ({ratio:.2f}x; target <= 2x)" if ratio else "")]
    if res.get("step_times"):
        lines += ["", "| model | device | threads | step (median) | step (min) |", "|---|---|---|---|---|"]
        for preset, row in res["step_times"].items():
            for dev, v in row.items():
                if "error" in v:
                    lines.append(f"| {preset} | {dev} | | error | |")
                else:
                    lines.append(f"| {preset} ({v['params']:,}) | {dev} | {v['threads']} "
                                 f"| {v['step_s_median'] * 1e3:.1f} ms | {v['step_s_min'] * 1e3:.1f} ms |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "bench" / "gpu"))
    p.add_argument("--work", default="/tmp/trainchain-gpu-check")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--worker", choices=["train", "replay", "time"])
    p.add_argument("--spec")
    p.add_argument("--dir")
    p.add_argument("--genesis")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny models only (to test the script itself)")
    args = p.parse_args()
    if args.quick:
        global CHECK_PRESET, EXACT_PRESET, TIMING
        CHECK_PRESET, EXACT_PRESET, TIMING = "tiny", "tiny", [("tiny", 3)]
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    res = driver(args)
    print((Path(args.out) / "gpu_check.md").read_text())
    if "two_trainings" in res:
        ok = res["two_trainings"].get("bit_exact") and res.get("replay", {}).get("all_segments_bit_exact")
    else:  # no GPU: only the exact-mode CPU part ran
        ok = True
    ok = ok and res.get("exact", {}).get("same_trace_root", False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
