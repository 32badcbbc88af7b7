"""The deterministic training engine (issue #3): spec, runtime pin, dataset, step, state, trace, replay.

Importing this package does not import torch: the runtime pin must be applied first.
Names are loaded lazily from their modules:

    from node.engine import TaskSpec, apply_runtime_pin
    spec = TaskSpec.from_json(open("spec.json", "rb").read())
    apply_runtime_pin(spec)                     # before anything imports torch
    from node.engine import Dataset, train_round, replay_segment
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "spec": ["TaskSpec", "ModelConfig", "OptimizerConfig", "LRSchedule", "RuntimePin", "ProtocolParams",
             "DatasetRef", "SpecError", "PRESETS"],
    "runtime": ["apply_runtime_pin", "check_runtime", "describe_runtime", "RuntimeMismatch", "compute_pin_env",
                "describe_pin", "compute_device"],
    "dataset": ["build_dataset", "Dataset", "DatasetError", "Manifest", "batch_hash", "demo_corpus_paths"],
    "state": ["TrainingState", "StateError", "save_state", "load_state", "state_hash", "file_state_hash",
              "hash_tensors"],
    "step": ["Trainer", "seed_for"],
    "genesis": ["make_genesis", "compute_genesis_state"],
    "trace": ["train_round", "load_trace", "RoundTrace", "RoundTrainer", "Slot"],
    "replay": ["replay_segment", "compute_batch_hashes", "compute_data_root"],
    "sampling": ["generate"],
    "errors": ["EngineError"],
    "model": ["GPT", "build_model", "count_parameters"],
    "rng": ["StepRandom", "compute_key", "random_bits", "uniform", "keep_mask"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'node.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
