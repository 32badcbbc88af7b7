"""Measure what one training state costs to store: `python whitepaper/measure_checkpoint.py`.

Writes the genesis state of the default TaskSpec (and of a larger model) with the
engine's own save_state and prints JSON: parameters, file bytes, seconds to write and
hash. Run in its own process because the runtime pin must precede `import torch`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.engine.runtime import apply_runtime_pin  # noqa: E402
from node.engine.spec import ModelConfig, TaskSpec  # noqa: E402


def main() -> int:
    spec = TaskSpec()
    apply_runtime_pin(spec)
    from node.engine.genesis import make_genesis
    from node.engine.model import count_parameters

    out = []
    models = (("default TaskSpec", spec.model),
              ("4 layers, d = 128, T = 128", ModelConfig(n_layer=4, n_embd=128, block_size=128)))
    for label, model in models:
        task = TaskSpec(model=model)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "state.safetensors")
            started = time.perf_counter()
            make_genesis(task, path)
            seconds = time.perf_counter() - started
            out.append({"model": label, "params": count_parameters(model), "bytes": os.path.getsize(path),
                        "write_and_hash_s": round(seconds, 3)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
