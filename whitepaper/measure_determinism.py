"""What bit-exact replay needs, measured: `python whitepaper/measure_determinism.py [--preset 875k --steps 6]`.

A reference process trains `steps` steps from a genesis state with the engine's own
Trainer under the spec's runtime pin and records the state hash after every step.
Verifier processes then replay the same steps from the same genesis file (never
re-drawn) under one change of runtime each, and we count the steps whose state hash
is bit-identical. Each process is fresh, because the runtime environment must be set
before `import torch`. Prints JSON (one object per variant).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# variant -> (what changes, environment overrides, threads, start from a mid-round checkpoint)
VARIANTS = {
    "reference": ("the pinned runtime (trainer)", {}, None, False),
    "same runtime, fresh process": ("verifier in the pinned runtime", {}, None, False),
    "replay from a mid-round checkpoint": ("fresh process loads the state saved after half the steps", {}, None, True),
    "2 threads instead of 1": ("intra-op threads (OMP/MKL too)", {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, 2,
                               False),
    "MKL_CBWR=COMPATIBLE": ("MKL's code path, as on another CPU", {"MKL_CBWR": "COMPATIBLE"}, None, False),
    "ATEN_CPU_CAPABILITY=default": ("ATen kernels without AVX2", {"ATEN_CPU_CAPABILITY": "default"}, None, False),
}


def _spec(preset: str):
    from node.engine.spec import TaskSpec

    return TaskSpec.preset(preset)


def _dataset():
    from node.engine.dataset import Dataset, demo_corpus_paths

    return Dataset(b"\n".join(p.read_bytes() for p in demo_corpus_paths(limit_bytes=1_000_000)))


def worker(preset: str, steps: int, genesis: str, threads: int, start: int, save_at: int, out_dir: str) -> dict:
    """Train from `genesis` (or from the checkpoint saved at step `start`) and hash each state."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    from node.engine.genesis import compute_genesis_state
    from node.engine.state import load_state, save_state, state_hash
    from node.engine.step import Trainer

    spec = _spec(preset)
    path = Path(genesis)
    if start == 0 and not path.exists():  # the reference draws the genesis once
        save_state(path, compute_genesis_state(spec))
    state = load_state(path if start == 0 else Path(out_dir) / f"step{start}.safetensors")
    trainer = Trainer(spec, state)
    ds = _dataset()
    hashes = {}
    for g in range(start, steps):
        trainer.step(ds.batch_for(spec, g))
        hashes[g + 1] = state_hash(trainer.state()).hex()
        if g + 1 == save_at:
            save_state(Path(out_dir) / f"step{save_at}.safetensors", trainer.state())
    return {"hashes": hashes, "threads": torch.get_num_threads(),
            "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")}}


def run(preset: str = "875k", steps: int = 6, timeout: int = 600) -> list[dict]:
    from node.engine.runtime import compute_pin_env

    spec = _spec(preset)
    pin_env = compute_pin_env(spec.runtime)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        genesis = str(Path(tmp) / "genesis.safetensors")
        reference = None
        for name, (what, overrides, threads, from_middle) in VARIANTS.items():
            env = {**os.environ, **pin_env, **overrides}
            start = steps // 2 if from_middle else 0
            save_at = steps // 2 if name == "reference" else -1
            cmd = [sys.executable, __file__, "worker", preset, str(steps), genesis,
                   str(threads or spec.runtime.threads), str(start), str(save_at), tmp]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
            if out.returncode != 0:
                raise RuntimeError(f"measure_determinism: {name} failed: {out.stderr.strip()[-800:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            if reference is None:
                reference = got["hashes"]
            same = sum(got["hashes"][k] == reference[k] for k in got["hashes"])
            results.append({"variant": name, "changes": what, "identical_steps": same,
                            "steps": len(got["hashes"]), "first_step": start + 1, "env": got["env"],
                            "threads": got["threads"]})
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "worker":
        preset, steps, genesis, threads, start, save_at, out_dir = argv[1:8]
        print(json.dumps(worker(preset, int(steps), genesis, int(threads), int(start), int(save_at), out_dir)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="875k", help="a TaskSpec preset (node/engine/spec.py PRESETS)")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args(argv)
    print(json.dumps({"preset": args.preset, "variants": run(args.preset, args.steps)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
