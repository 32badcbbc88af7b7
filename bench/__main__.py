"""Run the benchmarks: `python -m bench` (all) or `python -m bench gas engine`."""
from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BENCHES = ["gas", "engine", "store", "rounds", "chain", "dapp"]


def machine() -> dict:
    import os

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; known: {BENCHES}", file=sys.stderr)
        return 2
    results_path = BENCH_DIR / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine()
    failed = []
    for name in names:
        started = time.time()
        print(f"== bench {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"   skipped: {exc}")
            continue
        try:
            results[name] = module.run()
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            failed.append(name)
            print(f"   FAILED: {exc!r}", file=sys.stderr)
            continue
        results[name + "_wall_s"] = round(time.time() - started, 1)
        results_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    report = BENCH_DIR / "report.py"
    if report.exists():
        importlib.import_module("bench.report").write_readme(results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
