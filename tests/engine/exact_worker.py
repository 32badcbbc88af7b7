"""A fresh process for test_exact_mode.py: train or replay an exact-mode spec under this process's runtime.

    python tests/engine/exact_worker.py train  SPEC DATADIR GENESIS OUT_DIR STEPS
    python tests/engine/exact_worker.py replay SPEC DATADIR TRACE_DIR

The caller sets OMP/MKL threads, ATEN_CPU_CAPABILITY and MKL_CBWR in the environment; an
exact-mode pin leaves them alone. Prints one JSON line: what this process really ran on
(threads, CPU code path, MKL_CBWR), the hashes, and a control — the plain model's gradient
of one batch under the same runtime, whose bits DO depend on it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def plain_gradient_hash(spec, genesis, tokens) -> str:
    """sha256 of torch's own forward+backward gradients (the plain model, autograd) of one batch."""
    import torch

    from node.engine.model import build_model
    from node.engine.state import load_state

    model = build_model(spec.model)
    state = load_state(genesis)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(state.params[name])
    model.eval()  # no dropout: the control is about kernels, not masks
    _, loss = model(tokens[:, :-1], tokens[:, 1:])
    loss.backward()
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        digest.update(p.grad.numpy().tobytes())
    return digest.hexdigest()


def main(argv: list[str]) -> dict:
    from node.engine.runtime import apply_runtime_pin
    from node.engine.spec import TaskSpec

    cmd, spec_path, datadir = argv[0], argv[1], argv[2]
    spec = TaskSpec.from_file(spec_path)
    apply_runtime_pin(spec)  # exact mode: checks torch's major version, pins nothing else
    import torch

    from node.engine.dataset import Dataset
    from node.store import open_store

    dataset = Dataset.for_spec(spec, open_store(datadir=datadir))
    out = {"threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability(),
           "mkl_cbwr": os.environ.get("MKL_CBWR")}
    if cmd == "train":
        from node.engine.trace import train_round

        genesis, out_dir, steps = argv[3], argv[4], int(argv[5])
        trace = train_round(spec, dataset, genesis, out_dir, steps=steps)
        out.update(boundary_hashes=["0x" + h.hex() for h in trace.boundary_hashes],
                   trace_root="0x" + trace.trace_root.hex(), losses=trace.losses)
        out["plain_gradient"] = plain_gradient_hash(spec, genesis, dataset.batch_for(spec, 0))
    elif cmd == "replay":
        from node.engine.replay import replay_segment
        from node.engine.trace import load_trace

        trace = load_trace(argv[3])
        out["end_hashes"] = ["0x" + replay_segment(spec, dataset, ckpt, expected_hash=h).hex()
                             for ckpt, h in zip(trace.checkpoints[:-1], trace.boundary_hashes[:-1])]
    else:
        raise SystemExit(f"exact_worker: unknown command {cmd!r}")
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
