"""`make bench`: every benchmark of the project, one report.

Each module in BENCHES exposes `run() -> dict` (its results, JSON-serialisable) and
writes its own markdown under bench/. `python -m bench [name ...]` runs all or some;
results are merged into bench/results.json under each module's short name.
"""
