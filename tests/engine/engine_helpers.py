"""Helpers shared by the engine tests (imported by name: tests/ has no packages)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAINCHAIN = [str(Path(sys.executable).parent / "trainchain")]  # the venv's console script


def write_spec(path: Path, spec: TaskSpec) -> Path:
    path.write_bytes(spec.canonical_json())
    return path


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
