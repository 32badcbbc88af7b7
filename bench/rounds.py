"""Devnet rounds: what verified training costs on top of training -> bench/rounds.md.

    .venv/bin/python -m bench rounds          # also via `make bench`
    BENCH_QUICK=1 .venv/bin/python -m bench rounds   # smaller plan (a few minutes)

Everything runs in one worker process (`python -m bench.rounds worker OUT.json`) that
applies the demo spec's runtime pin before torch loads; the nodes are the real
`trainchain trainer run` / `trainchain verifier run` processes of node.localnet, on a
real anvil (1 s blocks) with the real contracts and one shared embedded content store.

1. protocol overhead: the demo spec (TaskSpec.preset("demo")), 1 trainer + 3 verifiers,
   the trainer as it runs by default (pipelined: it trains round r+1 while round r is
   verified) and with --no-pipeline, and the same for short rounds (SHORT_STEPS, the
   earlier demo spec) where the chain's latency cannot be hidden. Pure training time
   (S times: the step's batch + the engine's Trainer.step; no hashing, no checkpoints,
   no chain) is measured in the same run, on the same machine, right before.
   protocol overhead = (time per round - pure training time) / pure training time, where
   time per round is, pipelined, the steady-state interval between consecutive commits
   (each round's verification overlaps the next round's training) and, sequential, the
   round's wall time (trainer fetches the canonical state -> finalize receipt), split
   from the nodes' own sqlite timings (node/roles/db.py `timings`).
2. compute: verifier compute over trainer compute (CPU seconds and wall seconds), the
   verifier doing exactly verifier/replay.py's checks, for the demo spec and for a
   steps_per_round >= 1024 design; next to the detection probability it buys (exact,
   whitepaper/analysis.py, and counted over random seeds with node.protocol's rule).
3. scaling: devnet rounds (tiny model, so that the protocol, not training, dominates)
   with 3, 7 and 15 verifiers, committee 3 and 7, steps per round 32 to 4096: gas per
   round (sum of every receipt of the round, claims included) and wall time per round,
   each as a ratio to the baseline (3 verifiers, committee 3, 64 steps) of the same run.

The machine is shared and noisy: read the ratios; absolute seconds are context.
"""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_MD = BENCH_DIR / "rounds.md"
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
# a part of the plan only (`BENCH_ROUNDS_PARTS=overhead python -m bench.rounds worker out.json`), for
# working on one section; `make bench` runs them all (the report needs all three)
PARTS = set(os.environ.get("BENCH_ROUNDS_PARTS", "overhead,compute,scaling").split(","))

BLOCK_TIME = 1.0  # seconds, as `make demo` and `trainchain devnet up`
STAKE = 4 * 10**18
FUND = 5 * 10**18
# poll twice per block on every node: 15 verifiers polling faster would load a 2-core machine
NODE_CONFIG = "tx_replace_after = 8.0\ntx_timeout = 120.0\npoll_interval = 0.5\nrpc_backoff = 0.3\n"
ROUND_TIMEOUT = 900.0  # seconds per task; a 4096-step round of the tiny model trains for minutes here
FAKE_FRACTION = 0.10  # "a trainer that fakes 10% of its segments"
TARGETS = {"overhead": 0.10, "replay_fraction": 0.05, "detection": 0.99, "gas_flat": 1.05, "target_min_steps": 1024}

# ------------------------------------------------------------------ the plan
# (label, steps per round or None for the demo spec's, pipelined trainer?, rounds): pipelined rounds are
# timed commit to commit, so they need >= 2; the first interval is already steady state (the trainer
# starts training round 2 when it sends round 1's commit)
SHORT_STEPS = 64  # the earlier demo spec: a round trains for ~1 s, far less than the ~10 blocks it takes on-chain
OVERHEAD_RUNS = [
    ("demo", None, True, 3 if QUICK else 4),
    ("demo_sequential", None, False, 1 if QUICK else 2),
    ("short", SHORT_STEPS, True, 3),
    ("short_sequential", SHORT_STEPS, False, 1 if QUICK else 2),
]
BASELINE = {"verifiers": 3, "committee": 3, "steps": 64}
# (verifiers in the network, committee size, steps per round): tiny model, k = 4, s = 2
# (k = 4, the tiny preset's: S = 32 must still have M >= 2s + 1 segments)
SCALING_K = 4
SCALING = [(3, 3, 32), (3, 3, 64), (3, 3, 512), (3, 3, 4096), (7, 3, 64), (7, 7, 64), (15, 3, 64), (15, 7, 64)]
SCALING_QUICK = [(3, 3, 32), (3, 3, 64), (3, 3, 256), (7, 3, 64), (7, 7, 64)]
# compute designs: (name, steps_per_round, segment_steps, samples, measured?)
DESIGNS = [  # the first is TaskSpec.preset("demo") (tests/bench checks it)
    ("demo spec", 2048, 64, 2, True),
    ("short rounds (S=64, the earlier demo spec)", 64, 8, 2, True),
    ("S=1024, k=1, s=44", 1024, 1, 44, True),
    ("S=4096, k=4, s=44", 4096, 4, 44, False),
    ("S=4096, k=8, s=2", 4096, 8, 2, False),
]
DESIGNS_QUICK = [d if d[1] < 1024 or d[0] == "demo spec" else (*d[:4], False) for d in DESIGNS] + [
    ("S=256, k=1, s=12", 256, 1, 12, True)]


# ------------------------------------------------------------------ small helpers
class Clock:
    """Wall and CPU seconds of a block: `with Clock() as c: ...; c.wall, c.cpu`."""

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 4) if baseline else None


def r4(x: float) -> float:
    return round(float(x), 4)


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"   rounds [{time.monotonic() - _T0:5.0f} s]: {msg}", flush=True)


# ------------------------------------------------------------------ detection probability
def sampling_pool(M: int) -> int:
    """How many segments the random draw covers, 0..n-1, under node.protocol's rule: 0..M-2
    (a drawn M-2 is checked together with M-1) where the rule has compute_check_ends, else
    0..M-3 (M-2 never checked). M-1 is always checked: a cheater fakes within the pool."""
    from node import protocol

    return M - 1 if hasattr(protocol, "compute_check_ends") else M - 2


def sampling_rule() -> str:
    """The rule measured, in words (the report says which one its numbers are for)."""
    from node import protocol

    n = "M−2" if hasattr(protocol, "compute_check_ends") else "M−3"
    extra = (", a drawn M−2 checked together with M−1" if n == "M−2" else "; M−2 is never checked")
    return f"s pairwise non-adjacent segments drawn uniformly from 0..{n}{extra}, and M−1 always"


def fake_layout(n: int, b: int, layout: str) -> frozenset[int]:
    """b faked segments among 0..n-1: spread evenly, or one block of neighbours in the middle."""
    if layout == "spread":
        return frozenset(int((i + 0.5) * n / b) for i in range(b))
    first = (n - b) // 2
    return frozenset(range(first, first + b))


def detection_exact(M: int, s: int, b: int) -> dict:
    """P(a check covers a faked segment) for b faked segments in the draw's pool, exact: the
    draw is uniform over the non-adjacent s-subsets of the pool (whitepaper/analysis.py's count)."""
    sys.path.insert(0, str(REPO))
    from whitepaper.analysis import count_nonadjacent_subsets

    n = sampling_pool(M)
    total = count_nonadjacent_subsets(n, s)
    return {lay: 1 - count_nonadjacent_subsets(n, s, fake_layout(n, b, lay)) / total for lay in ("spread", "block")}


def detection_counted(M: int, s: int, b: int, trials: int, seed: int = 9) -> float:
    """The same, counted: random seeds through node.protocol.compute_samples (the contract's
    rule) and the segments each check covers; faked segments spread evenly over the pool."""
    from node import protocol

    bad = fake_layout(sampling_pool(M), b, "spread")
    rng = random.Random(seed)
    caught = 0
    for _ in range(trials):
        spans = check_spans(protocol.compute_samples(rng.randbytes(32), M, s), M)
        caught += any(j in bad for a, e in spans for j in range(a, e))
    return caught / trials


def check_spans(samples: list[int], M: int) -> list[tuple[int, int]]:
    """(start leaf, end leaf) of each check of a sample list: node.protocol.compute_check_ends
    where the rule has it (a last check may span two segments), else one segment each."""
    from node import protocol

    if hasattr(protocol, "compute_check_ends"):
        return list(zip(samples, protocol.compute_check_ends(samples, M)))
    return [(j, j + 1) for j in samples]


def min_samples_for(M: int, b: int, target: float) -> int | None:
    """Fewest random samples s with exact detection >= target at both layouts (None: not
    reachable within the contract's MAX_SAMPLES and the rule's 2s+1 <= M)."""
    from node.protocol import MAX_SAMPLES

    lo, hi = 1, min((M - 1) // 2, MAX_SAMPLES)

    def ok(s):
        return min(detection_exact(M, s, b).values()) >= target

    if hi < 1 or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


# ------------------------------------------------------------------ engine-level measurements (worker)
def measure_training(spec, dataset, workdir: Path, reps: int = 2) -> dict:
    """Pure training (the loop an unverified trainer runs: S times fetch the step's batch and
    Trainer.step) and the trainer's train_round (same steps + batch hashes + boundary hashes +
    checkpoint writes), interleaved `reps` times; the fastest counts."""
    import shutil

    from node.engine import make_genesis, train_round
    from node.engine.genesis import compute_genesis_state
    from node.engine.step import Trainer

    genesis = workdir / "genesis.safetensors"
    make_genesis(spec, genesis)
    pure, traced = [], []
    for rep in range(reps):
        trainer = Trainer(spec, compute_genesis_state(spec))
        with Clock() as c:
            for g in range(spec.steps_per_round):
                trainer.step(dataset.batch_for(spec, g))
        pure.append(c)
        out = workdir / f"trace-{rep}"
        with Clock() as c:
            train_round(spec, dataset, genesis, out)
        traced.append(c)
        shutil.rmtree(out, ignore_errors=True)
    p = min(pure, key=lambda c: c.wall)
    t = min(traced, key=lambda c: c.wall)
    return {"steps": spec.steps_per_round, "pure_training_s": r4(p.wall), "pure_training_cpu_s": r4(p.cpu),
            "train_round_s": r4(t.wall), "train_round_cpu_s": r4(t.cpu),
            "hashing_and_checkpoints_share": r4(max(0.0, 1 - p.cpu / t.cpu))}  # of train_round, CPU seconds


def measure_compute(name: str, spec, store, dataset, workdir: Path) -> dict:
    """Trainer: train_round. Verifier (one committee member): verifier/replay.py's checks of
    the sampled segments (fetch start from the store, hash, replay k steps), the data root
    and the final checkpoint. Replays must match the trainer's boundary hashes bit for bit."""
    from node import protocol
    from node.engine import make_genesis, train_round
    from verifier.replay import check_data_root, check_final, check_segment

    M, s = spec.segments_per_round, spec.protocol.samples
    genesis = workdir / "genesis.safetensors"
    make_genesis(spec, genesis)
    with Clock() as trainer:
        trace = train_round(spec, dataset, genesis, workdir / "trace")
    samples = protocol.compute_samples(os.urandom(32), M, s)
    spans = check_spans(samples, M)
    start_cids = [store.put_file(trace.checkpoints[j]) for j in samples]
    final_cid = store.put_file(trace.final_checkpoint)
    vdir = workdir / "verifier"
    vdir.mkdir()
    with Clock() as replay:
        checks = [check_segment(spec, dataset, store, j, cid, trace.boundary_hashes[j], vdir, span=e - j)
                  for (j, e), cid in zip(spans, start_cids)]
    with Clock() as other:
        data_ok = check_data_root(spec, dataset, 0, trace.data_root)
        final_ok = check_final(store, final_cid, trace.final_hash, vdir)
    exact = all(c.start_ok and c.end_hash == trace.boundary_hashes[e] for c, (j, e) in zip(checks, spans))
    if not (exact and data_ok and final_ok):
        raise RuntimeError(f"rounds bench: {name}: the verifier's checks disagree with an honest trainer "
                           f"(bit-exact {exact}, data root {data_ok}, final {final_ok})")
    v_wall, v_cpu = replay.wall + other.wall, replay.cpu + other.cpu
    return {"trainer_s": r4(trainer.wall), "trainer_cpu_s": r4(trainer.cpu), "verifier_s": r4(v_wall),
            "verifier_cpu_s": r4(v_cpu), "verifier_replay_s": r4(replay.wall), "verifier_checks_s": r4(other.wall),
            "measured_fraction_wall": r4(v_wall / trainer.wall), "measured_fraction_cpu": r4(v_cpu / trainer.cpu),
            "replays_bit_exact": exact, "checkpoints_written": len(trace.checkpoints)}


def compute_section(base_spec, store, manifest: str, root: Path, designs) -> list[dict]:
    """Each design: replay fraction (theory; measured where `measured`) and detection."""
    from node.engine import Dataset

    rows = []
    for name, S, k, s, measured in designs:
        M = S // k
        b = max(1, math.ceil(FAKE_FRACTION * M))
        det = detection_exact(M, s, b)
        row = {"design": name, "steps_per_round": S, "segment_steps": k, "samples": s, "segments": M,
               "replayed_steps_per_member": (s + 1) * k, "replay_fraction": r4((s + 1) * k / S),
               "fake_segments": b, "detection_spread": r4(det["spread"]), "detection_block": r4(det["block"]),
               "detection_counted": r4(detection_counted(M, s, b, trials=400 if QUICK else 2000)),
               "min_samples_for_99": min_samples_for(M, b, TARGETS["detection"])}
        if measured:
            spec = base_spec.with_(steps_per_round=S, segment_steps=k, protocol={"samples": s})
            log(f"compute: {name} (train {S} steps, replay {(s + 1) * k})")
            work = Path(tempfile.mkdtemp(prefix="compute-", dir=root))
            row.update(measure_compute(name, spec, store, Dataset.for_spec(spec, store), work))
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
    return rows


# ------------------------------------------------------------------ a devnet with node processes (worker)
def trainer_core() -> set[int] | None:
    """Core 0 for the trainer (this worker process) when the machine has >= 2 cores: one machine
    split into the trainer's and the rest of the network's (anvil, verifiers), as in a real
    deployment where verifiers replay on their own machines. None: not possible here."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    return {0}


def network_cores() -> set[int]:
    return set(range(1, os.cpu_count() or 2))


class network_affinity:
    """`with network_affinity(): spawn...`: processes started inside (and all their threads) run on
    the network's cores; this thread goes back to the trainer's core after (a no-op without a split)."""

    def __enter__(self):
        if trainer_core() is not None:
            os.sched_setaffinity(0, network_cores())
        return self

    def __exit__(self, *exc):
        if trainer_core() is not None:
            os.sched_setaffinity(0, trainer_core())


class Devnet:
    """A LocalNet with n verifier processes running, warmed up, and one trainer data dir."""

    def __init__(self, root: Path, n_verifiers: int):
        from node.localnet import LocalNet

        with network_affinity():  # anvil and its threads
            self.local = LocalNet(root, block_time=BLOCK_TIME, n_accounts=n_verifiers + 3).start()
        self.chain = self.local.client()
        self.trainer = self.node("trainer", 1, "trainer")
        self.verifiers = [self.node(f"verifier{i}", 2 + i, "verifier") for i in range(n_verifiers)]
        self.store = self.local.store()
        self._dbs: dict = {}
        self._log = _trainer_log(root / "logs" / "trainer.log")

    def node(self, name: str, dev_index: int, role: str):
        node = self.local.add_staked_node(name, dev_index, role, STAKE, config=NODE_CONFIG)
        return node

    def start_verifiers(self, timeout: float = 300.0) -> None:
        """Spawn every verifier and wait until each has ticked once (torch loaded, warm)."""
        from node.localnet import wait_until

        with network_affinity():
            for v in self.verifiers:
                self.local.spawn_verifier(v)

        def all_ticking():
            self.local.check_alive()
            return all(self.db(v, "verifier").get_cursor("sealed-events", -1) >= 0 for v in self.verifiers)

        wait_until(all_ticking, timeout, interval=1.0, what="verifiers warm")

    def open_db(self, node, role: str):
        from node.roles.db import NodeDB

        path = node.datadir / f"{role}.sqlite"
        if path not in self._dbs:
            self._dbs[path] = NodeDB(path)
        return self._dbs[path]

    def db(self, node, role: str):
        """The node's sqlite (read while the node process writes it: WAL); empty before it exists."""
        return self.local.node_db(node, role) or _EmptyDB()

    def create_task(self, spec) -> int:
        return self.local.create_task(spec, FUND)["task_id"]

    def run_task(self, task_id: int, rounds: int, pipeline: bool = True) -> list[int]:
        """Run the trainer node for `rounds` rounds of the task; wait until it and every
        committee member are done with them (rewards claimed). Returns the round ids.

        The trainer is node.roles.trainer.TrainerNode run in this (already pinned) process, as
        `trainchain trainer run` runs it: a fresh process per task would cost a torch
        import per task on a loaded 2-core machine. Its stage timings go to its own sqlite.
        """
        import threading

        from node.localnet import wait_until
        from node.roles.trainer import TrainerNode

        stop, failures = threading.Event(), []

        def watchdog():  # a dead verifier or a stuck round stops the trainer, with the reason
            deadline = time.monotonic() + ROUND_TIMEOUT * rounds
            while not stop.wait(1.0):
                try:
                    self.local.check_alive(*(v.name for v in self.verifiers))
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"task {task_id}: {rounds} round(s) not done in {ROUND_TIMEOUT * rounds:.0f} s")
                except RuntimeError as e:
                    failures.append(str(e))
                    stop.set()

        chain = self.local.client(self.trainer.account, tx_timeout=120, tx_replace_after=8, poll_interval=0.5)
        node = TrainerNode(chain, self.store, self.open_db(self.trainer, "trainer"), task_id,
                           self.trainer.datadir / "trainer", max_rounds=rounds, show_progress=False, pipeline=pipeline)
        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        try:
            node.run(stop)
        finally:
            stop.set()
            guard.join()
        if failures:
            raise RuntimeError(f"rounds bench: {failures[0]}")
        round_ids = [e["args"]["round_id"] for e in self.chain.events("RoundCommitted", task_id=task_id)]
        for r in round_ids:
            committee = list(self.chain.call(self.chain.rounds.functions.committee_of(r)))
            members = [v for v in self.verifiers if v.address in committee]

            def members_done():
                recs = [self.db(v, "verifier").get_round("verifier", r) for v in members]
                return all(rec is not None and rec.phase == "done" for rec in recs)

            wait_until(members_done, 120, interval=0.5, what=f"committee of round {r} done")
        return round_ids

    def round_report(self, round_id: int) -> dict:
        """Gas of every receipt of the round and its timeline from the nodes' sqlite timings."""
        rnd = self.chain.get_round(round_id)
        committee = list(self.chain.call(self.chain.rounds.functions.committee_of(round_id)))
        members = [v for v in self.verifiers if v.address in committee]
        gas: dict[str, int] = {}
        for node, role in [(self.trainer, "trainer")] + [(v, "verifier") for v in members]:
            for d in self.db(node, role).duties(round_id=round_id):
                if d["tx_hash"] and d["outcome"] == "ok":
                    used = self.chain.w3.eth.get_transaction_receipt(d["tx_hash"])["gasUsed"]
                    gas[d["duty"]] = gas.get(d["duty"], 0) + used
        t = trainer_timings(self.db(self.trainer, "trainer").timings("trainer"), round_id)
        member_t = [stage_totals(self.db(v, "verifier").timings("verifier", round_id)) for v in members]
        finalize_ts = [x["ts"] for node, role in [(self.trainer, "trainer")] + [(v, "verifier") for v in members]
                       for x in self.db(node, role).timings(role, round_id) if x["stage"] == "tx:finalize"]
        finalized = [e for e in self.chain.events("RoundFinalized", rnd["commit_block"], "latest")
                     if e["args"]["round_id"] == round_id]
        start = round_start(t)
        if not finalize_ts:
            raise RuntimeError(f"rounds bench: no finalize receipt recorded for round {round_id}")
        end = min(finalize_ts)
        commit_done = t["tx:commit"]["ts"]
        replay = max((m.get("replay", 0) + m.get("data_root", 0) for m in member_t), default=0.0)
        fetch_final = max((m.get("fetch_final", 0) for m in member_t), default=0.0)
        trainer_tx = sum(v["seconds"] for k, v in t.items() if k.startswith("tx:") and k != "tx:claim")
        return {
            "round_id": round_id, "outcome": rnd["outcome"], "committee": len(committee),
            # the draw decides how many checks a round has (s, or s+1 when M-2 is not drawn): gas follows
            "checks": len(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id))),
            "gas_total": sum(gas.values()), "gas_by_call": dict(sorted(gas.items())),
            "blocks": finalized[0]["blockNumber"] - rnd["commit_block"] if finalized else None,
            "wall_s": r4(end - start), "fetch_s": r4(t["fetch"]["seconds"]), "train_s": r4(t["train"]["seconds"]),
            "upload_s": r4(t["upload"]["seconds"]), "trainer_tx_s": r4(trainer_tx),
            "commit_tx_s": r4(t["tx:commit"]["seconds"]), "committed_at": t["tx:commit"]["ts"], "finalized_at": end,
            "wait_ahead_s": r4(t["wait_ahead"]["seconds"]) if "wait_ahead" in t else None,  # chain ready, trace not yet
            "ahead_cpu_s": r4(t["ahead_cpu"]["seconds"]) if "ahead_cpu" in t else None,  # the training thread's CPU
            "verify_latency_s": r4(end - commit_done),  # commit receipt -> finalize receipt
            "replay_slowest_member_s": r4(replay), "fetch_final_s": r4(fetch_final),
            "replay_members_s": [r4(m.get("replay", 0)) for m in member_t],
        }

    def stop(self) -> None:
        import logging

        logging.getLogger("trainchain").removeHandler(self._log)
        self._log.close()
        for db in self._dbs.values():
            db.close()
        self.local.stop()


def _trainer_log(path: Path):
    """The in-process trainer's log lines go where LocalNet puts every node's log."""
    import logging

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("trainchain")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False  # not on the bench's stdout
    return handler


class _EmptyDB:
    """A node DB that does not exist yet (the process has not opened it)."""

    def get_cursor(self, name, default=0):
        return default

    def get_round(self, *a):
        return None

    def duties(self, **kw):
        return []

    def timings(self, *a, **kw):
        return []


def stage_totals(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in rows:
        out[row["stage"]] = out.get(row["stage"], 0.0) + row["seconds"]
    return out


def trainer_timings(rows: list[dict], round_id: int) -> dict[str, dict]:
    """The trainer's stages of one round: the round-less ones (fetch, train, upload,
    tx:commit: the id is known only from the commit's receipt) just before its first row."""
    pending: list[dict] = []
    for row in rows:  # ordered by id
        if row["round_id"] is None:
            pending.append(row)
            continue
        if row["round_id"] == round_id:
            out = {p["stage"]: p for p in pending}
            for later in rows:
                if later["round_id"] == round_id:
                    out.setdefault(later["stage"], later)
            return out
        pending = []
    raise KeyError(f"rounds bench: no trainer timings for round {round_id}")


def round_start(t: dict[str, dict]) -> float:
    """When the trainer began the round (unix time). fetch, train, upload and the commit run
    back to back, so it is that long before the commit was sent, whichever round id and
    timestamp the node files the pre-commit stages under."""
    commit_sent = t["tx:commit"]["ts"] - t["tx:commit"]["seconds"]
    return commit_sent - t["fetch"]["seconds"] - t["train"]["seconds"] - t["upload"]["seconds"]


def breakdown(rep: dict, train: dict) -> dict:
    """Split a round's wall time; `train` is the same-run engine baseline of the spec."""
    steps_share = min(1.0, train["pure_training_cpu_s"] / train["train_round_cpu_s"])  # CPU: robust to load
    training = rep["train_s"] * steps_share
    parts = {
        "training_s": training,
        "hashing_and_checkpoints_s": rep["train_s"] - training,
        "store_fetch_and_upload_s": rep["fetch_s"] + rep["upload_s"],
        "verifier_replay_s": rep["replay_slowest_member_s"] + rep["fetch_final_s"],
        "trainer_transactions_s": rep["trainer_tx_s"],
    }
    parts["waiting_s"] = rep["wall_s"] - sum(parts.values())  # blocks, phase windows, others' txs, polling
    return {k: r4(v) for k, v in parts.items()}


# ------------------------------------------------------------------ the worker
def worker(out_path: Path) -> None:
    from node.engine import TaskSpec, apply_runtime_pin

    core = trainer_core()
    if core is not None:  # before any thread: they all inherit it (the trainer's node thread and its training)
        os.sched_setaffinity(0, core)
    demo = TaskSpec.preset("demo")
    apply_runtime_pin(demo)  # before torch; the tiny preset pins the same runtime
    from node.engine import build_dataset, demo_corpus_paths

    result: dict = {"block_time_s": BLOCK_TIME, "quick": QUICK, "targets": TARGETS, "sampling_rule": sampling_rule(),
                    "cores": {"trainer": sorted(core), "network": sorted(network_cores())} if core else None,
                    "loadavg_start": [round(x, 1) for x in os.getloadavg()]}
    root = Path(tempfile.mkdtemp(prefix="bench-rounds-"))
    try:
        # -------- 1. the demo round on a devnet of 3 verifiers (also the scaling runs of that network)
        nets = sorted({v for v, _, _ in (SCALING_QUICK if QUICK else SCALING)})
        nets = nets if "scaling" in PARTS else nets[:1]
        scaling: list[dict] = []
        for n in nets:
            log(f"devnet with {n} verifiers")
            net = Devnet(root / f"net-v{n}", n)
            try:
                manifest = build_dataset(demo_corpus_paths(), net.store)
                plan = [(v, c, S) for v, c, S in (SCALING_QUICK if QUICK else SCALING) if v == n]
                specs = [TaskSpec.preset("tiny").with_(
                    steps_per_round=S, segment_steps=SCALING_K, dataset={"manifest_cid": manifest},
                    protocol={"samples": 2, "committee_size": c, "quorum": c // 2 + 1}) for v, c, S in plan]
                demo_spec = demo.with_(dataset={"manifest_cid": manifest})
                # the first task exists before the verifiers start: they warm up on it (torch, dataset)
                first = net.create_task(demo_spec if n == BASELINE["verifiers"] else specs[0])
                net.start_verifiers()
                if n == BASELINE["verifiers"] and "overhead" in PARTS:
                    baselines: dict = {}
                    for i, (label, steps, pipeline, n_rounds) in enumerate(OVERHEAD_RUNS):
                        spec = demo_spec if steps is None else demo_spec.with_(steps_per_round=steps, segment_steps=8)
                        task_id = first if i == 0 else net.create_task(spec)
                        result[label] = overhead_run(net, spec, task_id, root, n_rounds, pipeline, baselines)
                for i, ((v, c, S), spec) in enumerate(zip(plan, specs) if "scaling" in PARTS else []):
                    log(f"scaling: {v} verifiers, committee {c}, {S} steps")
                    task_id = first if (i == 0 and n != BASELINE["verifiers"]) else net.create_task(spec)
                    rid = net.run_task(task_id, 1)[0]
                    rep = net.round_report(rid)
                    scaling.append({"verifiers": v, "committee": c, "steps": S, "segments": S // SCALING_K, **rep})
                if n == nets[0] and "compute" in PARTS:
                    store = net.store
                    designs = DESIGNS_QUICK if QUICK else DESIGNS
                    result["compute"] = compute_section(demo.with_(dataset={"manifest_cid": manifest}), store,
                                                        manifest, root, designs)
            finally:
                net.stop()
        if "scaling" in PARTS:
            result["scaling"] = scaling_with_ratios(scaling)
        result["loadavg_end"] = [round(x, 1) for x in os.getloadavg()]
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    out_path.write_text(json.dumps(result, indent=1))


def overhead_run(net: Devnet, spec, task_id: int, root: Path, n_rounds: int, pipeline: bool, baselines: dict) -> dict:
    """Rounds of one spec next to its same-run pure training baseline (measured once per spec)."""
    from node.engine import Dataset

    S = spec.steps_per_round
    if S not in baselines:
        log(f"demo model, S={S}: pure training baseline")
        work = Path(tempfile.mkdtemp(prefix="baseline-", dir=root))
        baselines[S] = measure_training(spec, Dataset.for_spec(spec, net.store), work)
    how = "pipelined" if pipeline else "sequential (--no-pipeline)"
    log(f"demo model, S={S}: {n_rounds} round(s), {how} trainer + {len(net.verifiers)} verifiers")
    reports = [net.round_report(r) for r in net.run_task(task_id, n_rounds, pipeline=pipeline)]
    spec_info = {"preset": "demo", "steps_per_round": S, "segment_steps": spec.segment_steps,
                 "samples": spec.protocol.samples, "committee": spec.protocol.committee_size,
                 "seal_delay_blocks": spec.protocol.seal_delay_blocks, "params": _n_params(spec)}
    return derive_overhead({"spec": spec_info, "baseline": baselines[S], "pipeline": pipeline, "rounds": reports})


def derive_overhead(run: dict) -> dict:
    """The figures of section 1 from the measured rounds and baseline (pure: re-derivable from results.json).

    time per round: pipelined, the mean interval between consecutive commits (steady state: each round's
    commit->final latency overlaps the next round's training); sequential, the mean round wall time
    (trainer fetches the canonical state -> finalize receipt). overhead = (time per round - pure training)
    / pure training, pure training = the same-run baseline. It is also given against the training measured
    inside the rounds (CPU-share split of the node's train stage): both sides from the same minutes.
    """
    train = run["baseline"]
    base = train["pure_training_s"]
    rounds = []
    for rep in run["rounds"]:
        keep = {k: v for k, v in rep.items() if k not in ("breakdown", "overhead")}
        rounds.append({**keep, "breakdown": breakdown(keep, train)} if not run["pipeline"] else keep)
    mean = lambda key: r4(sum(r[key] for r in rounds) / len(rounds))  # noqa: E731
    if run["pipeline"]:
        if len(rounds) < 2:
            raise RuntimeError("rounds bench: a pipelined run is timed commit to commit: it needs >= 2 rounds")
        period = (rounds[-1]["committed_at"] - rounds[0]["committed_at"]) / (len(rounds) - 1)
    else:
        period = mean("wall_s")
    steps_share = min(1.0, train["pure_training_cpu_s"] / train["train_round_cpu_s"])
    inside = mean("train_s") * steps_share
    waits = [r["wait_ahead_s"] for r in rounds if r.get("wait_ahead_s") is not None]
    out = {
        "spec": run["spec"], "baseline": train, "pipeline": run["pipeline"], "rounds": rounds,
        "period_s": r4(period), "overhead": r4((period - base) / base),
        "training_in_round_s": r4(inside), "overhead_in_round": r4((period - inside) / inside),
        "verify_latency_s": mean("verify_latency_s"),
        # pipelined: how long the chain was ready before the trace was (training-bound when > 0 every round)
        "wait_ahead_s": r4(sum(waits) / len(waits)) if waits else None,
        # pipelined: CPU seconds the training thread got per wall second of fetch + train + upload
        "ahead_core_share": ahead_core_share(rounds),
        "met_overhead_target": (period - base) / base <= TARGETS["overhead"],
    }
    if not run["pipeline"]:
        out["wall_s"] = mean("wall_s")
    return out


def ahead_core_share(rounds: list[dict]) -> float | None:
    pairs = [(r["ahead_cpu_s"], r["fetch_s"] + r["train_s"] + r["upload_s"]) for r in rounds if r.get("ahead_cpu_s")]
    return r4(sum(c for c, _ in pairs) / sum(w for _, w in pairs)) if pairs else None


def _n_params(spec) -> int:
    from node.engine.genesis import compute_genesis_state

    return sum(t.numel() for name, t in compute_genesis_state(spec).params.items())


def scaling_with_ratios(rows: list[dict]) -> dict:
    base = next((r for r in rows if (r["verifiers"], r["committee"], r["steps"]) ==
                 (BASELINE["verifiers"], BASELINE["committee"], BASELINE["steps"])), None)
    if base is None:
        raise RuntimeError("rounds bench: the scaling baseline did not run")
    for r in rows:
        r["gas_ratio"] = ratio(r["gas_total"], base["gas_total"])
        r["wall_ratio"] = ratio(r["wall_s"], base["wall_s"])
    by_steps = [r for r in rows if (r["verifiers"], r["committee"]) == (BASELINE["verifiers"], BASELINE["committee"])]
    # flat in steps = same gas for the same work on-chain: compare rounds with the baseline's number
    # of checks (the random draw, not S, sets that); rounds with another count are shown, not judged
    same = [r for r in by_steps if r.get("checks") == base.get("checks")]
    gases = [r["gas_total"] for r in same]
    every = [r["gas_total"] for r in by_steps]
    return {"baseline": dict(BASELINE), "rows": rows,
            "gas_spread_over_steps": r4(max(gases) / min(gases)),
            "gas_flat_steps_compared": sorted(r["steps"] for r in same),
            "gas_spread_every_round": r4(max(every) / min(every)),
            "met_gas_flat_target": len(same) >= 2 and max(gases) / min(gases) <= TARGETS["gas_flat"]}


# ------------------------------------------------------------------ run() (bench runner) and the report
def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rounds.json"
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                 "ATEN_CPU_CAPABILITY", "MKL_CBWR")}
        proc = subprocess.run([sys.executable, "-m", "bench.rounds", "worker", str(out)], cwd=REPO, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"rounds bench worker exited {proc.returncode}")
        result = json.loads(out.read_text())
    result["summary"] = summarize(result)
    OUT_MD.write_text(render_markdown(result))
    return result


def summarize(res: dict) -> dict:
    """The issue's figures, each with its same-run baseline, ratio and target."""
    demo, comp, scal = res["demo"], res["compute"], res["scaling"]
    target_rows = [r for r in comp if r["steps_per_round"] >= TARGETS["target_min_steps"]]
    best = min((r for r in target_rows if r["detection_spread"] >= TARGETS["detection"]
                and r["detection_block"] >= TARGETS["detection"]), key=lambda r: r["replay_fraction"], default=None)
    measured_best = next((r for r in target_rows if "measured_fraction_cpu" in r and r is best), None)
    return {
        "protocol_overhead": demo["overhead"],
        "protocol_overhead_met": demo["met_overhead_target"],
        "protocol_overhead_in_round": demo["overhead_in_round"],
        "sequential_overhead": (res.get("demo_sequential") or {}).get("overhead"),
        "demo_replay_fraction": comp[0]["replay_fraction"],
        "demo_measured_fraction_cpu": comp[0].get("measured_fraction_cpu"),
        "target_design": best["design"] if best else None,
        "target_replay_fraction": best["replay_fraction"] if best else None,
        "target_measured_fraction_cpu": measured_best.get("measured_fraction_cpu") if measured_best else None,
        "target_detection": min(best["detection_spread"], best["detection_block"]) if best else None,
        "replay_and_detection_met": bool(best and best["replay_fraction"] <= TARGETS["replay_fraction"]),
        "short_steps": (res.get("short") or {}).get("spec", {}).get("steps_per_round"),
        "short_overhead": (res.get("short") or {}).get("overhead"),
        "gas_spread_over_steps": scal["gas_spread_over_steps"],
        "gas_flat_met": scal["met_gas_flat_target"],
    }


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def render_markdown(res: dict) -> str:
    demo, comp, scal, s = res["demo"], res["compute"], res["scaling"], res["summary"]
    b = demo["baseline"]
    L = ["# Devnet rounds: what verification costs on top of training", "",
         f"`make bench` (`bench/rounds.py`){' with BENCH_QUICK=1' if res.get('quick') else ''}; anvil with "
         f"{res['block_time_s']:g} s blocks, the real `trainchain trainer run` / `verifier run` processes, one "
         "shared embedded store. The machine is shared and noisy: the ratios are to baselines measured in "
         "the same run; absolute seconds are context only.", "",
         "## Targets", "", "| target | measured | met |", "|---|---|---|",
         f"| protocol overhead ≤ {pct(TARGETS['overhead'])} of training at the demo spec | {pct(s['protocol_overhead'])} "
         f"(pipelined trainer, the default; vs the training inside the rounds: {pct(s['protocol_overhead_in_round'])}; "
         f"--no-pipeline: {pct(s['sequential_overhead'])}) | {'yes' if s['protocol_overhead_met'] else '**no**'} |",
         f"| S ≥ {TARGETS['target_min_steps']}: each member replays ≤ {pct(TARGETS['replay_fraction'])} while 10% faked "
         f"segments are caught with ≥ {pct(TARGETS['detection'])} | {s['target_design']}: replays "
         f"{pct(s['target_replay_fraction'])} of the steps (CPU measured: {pct(s['target_measured_fraction_cpu'])}), "
         f"detection {pct(s['target_detection'])} | {'yes' if s['replay_and_detection_met'] else '**no**'} |",
         f"| gas per round flat in steps per round (max/min ≤ {TARGETS['gas_flat']}) | max/min = "
         f"{s['gas_spread_over_steps']:.3f} over S = {', '.join(map(str, scal.get('gas_flat_steps_compared', [])))} (same number of checks) "
         f"| {'yes' if s['gas_flat_met'] else '**no**'} |", ""]
    sp = demo["spec"]
    runs = [(k, res[k]) for k in ("demo", "demo_sequential", "short", "short_sequential") if res.get(k)]
    L += ["## 1. Protocol overhead at the demo spec", "",
          f"Demo spec: {sp['params']:,} parameters, S = {sp['steps_per_round']} steps, k = {sp['segment_steps']}, "
          f"s = {sp['samples']} (+ the last segment), committee {sp['committee']}, seal delay {sp['seal_delay_blocks']} blocks; "
          f"1 trainer + 3 verifiers on one machine. Pure training (same spec and pin, S × (batch + engine step), no hashing/"
          f"checkpoints/chain, same run, fastest of 2): **{b['pure_training_s']:.2f} s** ({b['pure_training_cpu_s']:.2f} CPU s); "
          f"the trainer's `train_round` (steps + boundary hashes + checkpoint writes): {b['train_round_s']:.2f} s.", "",
          "Time per round: pipelined (the trainer's default: it trains round r+1 while round r is verified and commits it "
          "the moment r is accepted), the mean interval between consecutive commits; sequential (`--no-pipeline`), the "
          "round's wall time from fetching the canonical state to the finalize receipt.", "",
          "| run | trainer | steps/round | rounds | pure training (baseline) | time per round | overhead | training inside "
          "the rounds | overhead vs it | commit→final latency | chain ready before the trace (pipelined) |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, d in runs:
        wait = d.get("wait_ahead_s")
        L.append(f"| {key} | {'pipelined' if d['pipeline'] else 'sequential'} | {d['spec']['steps_per_round']} | "
                 f"{len(d['rounds'])} | {d['baseline']['pure_training_s']:.2f} s | {d['period_s']:.2f} s | **{pct(d['overhead'])}** | "
                 f"{d['training_in_round_s']:.2f} s | {pct(d['overhead_in_round'])} | {d['verify_latency_s']:.2f} s | "
                 f"{'—' if wait is None else f'{wait:.2f} s'} |")
    cores = res.get("cores")
    split = (f"The trainer (this bench's process: the node loop and the thread training ahead) ran on core(s) "
             f"{cores['trainer']}, anvil and the verifiers on {cores['network']}: one machine split into the trainer's "
             "and the rest of the network's, as in a deployment where verifiers replay on their own machines. "
             if cores else "All processes shared every core (no split possible here). ")
    share = demo.get("ahead_core_share")
    L += ["", split + (f"While training ahead, the training thread got {pct(share)} of a core (CPU s per wall s); "
                       "the rest went to the node's own loop (polling, transactions, reveals) in the same process."
                       if share else ""), "",
          f"protocol overhead at the demo spec = **{pct(demo['overhead'])}** (target ≤ {pct(TARGETS['overhead'])}: "
          f"{'met' if demo['met_overhead_target'] else '**missed**'}).", "",
          f"Why pipelining is the whole story: a round needs ~{demo['rounds'][0]['blocks']} blocks from commit to finalize (seal "
          f"delay, one block per phase at best, and the committee's replay before it can commit its verdicts): "
          f"{demo['verify_latency_s']:.1f} s at {res['block_time_s']:g} s blocks. "
          "The contract still requires each commit's base to be the canonical state (rounds of a task are sequential), "
          "so a trainer that waits for the chain pays that latency every round; one that trains ahead pays it only when "
          "a round's training is shorter than the latency. The period is max(fetch + train + hash + upload, commit→final "
          "latency + the commit): the short rounds show the latency-bound case, where no trainer can do better than one "
          "round per latency. A round must train for longer than its commit→final latency (at least ~10 blocks plus "
          "the replay: here the number above; ~2 min and more on L1's 12 s slots); the demo spec does.", ""]
    seq = res.get("demo_sequential")
    if seq:
        L += [f"A sequential demo-spec round, broken down (`--no-pipeline`; the pipelined trainer overlaps everything "
              "but the training with the next round's training):", "",
              "| round | wall | training | hashing + checkpoints | store fetch + upload | trainer txs (send→receipt) | "
              "verifier replay (slowest member) | waiting (blocks, windows, others' txs) | blocks commit→final | gas |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in seq["rounds"]:
            q = r["breakdown"]
            L.append(f"| {r['round_id']} | {r['wall_s']:.2f} s | {q['training_s']:.2f} s | {q['hashing_and_checkpoints_s']:.2f} s | "
                     f"{q['store_fetch_and_upload_s']:.2f} s | {q['trainer_transactions_s']:.2f} s | {q['verifier_replay_s']:.2f} s | "
                     f"{q['waiting_s']:.2f} s | {r['blocks']} | {r['gas_total']:,} |")
        L += ["", "The three members replay side by side on the same 2 cores as the trainer here; on separate machines "
              f"in a real network. One member alone, engine level: {pct(comp[0].get('measured_fraction_cpu'))} of the "
              "trainer's CPU seconds (section 2).", ""]
    L += ["## 2. Verifier compute vs trainer compute, and the detection it buys", "",
          f"Per committee member: (s+1)·k replayed steps of S. Detection: P(at least one of the {int(FAKE_FRACTION * 100)}% "
          f"faked segments is checked) under the rule measured ({res.get('sampling_rule', 'see node/protocol.py')}; "
          "the cheater fakes only segments the draw may miss), exact for faked segments spread evenly and in one block, "
          "and counted over random seeds through `node.protocol.compute_samples`. Measured (where given): one member doing verifier/replay.py's checks "
          "(fetch + hash each start from the store, replay k steps, data root over S batches, final checkpoint) "
          "vs the trainer's `train_round`, CPU seconds; every replay was bit-exact.", "",
          "| design | S | k | s | M | replay fraction | measured (CPU) | measured (wall) | P(detect 10%) spread / block / counted | "
          "fewest s for 99% |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in comp:
        L.append(f"| {r['design']} | {r['steps_per_round']} | {r['segment_steps']} | {r['samples']} | {r['segments']} | "
                 f"{pct(r['replay_fraction'])} | {pct(r.get('measured_fraction_cpu'))} | {pct(r.get('measured_fraction_wall'))} | "
                 f"{pct(r['detection_spread'])} / {pct(r['detection_block'])} / {pct(r['detection_counted'])} | "
                 f"{r['min_samples_for_99'] if r['min_samples_for_99'] is not None else '—'} |")
    L += ["", "The replay fraction is (s+1)/M whatever k is: ≤ 5% with ≥ 99% detection needs M ≳ 900 segments "
          "(s ≈ 44), i.e. ~M+1 boundary states hashed and written per round; the measured fraction is above the "
          "step fraction because each sampled start is fetched, loaded and hashed and the data root covers all S batches.", ""]
    L += [f"## 3. Scaling on the devnet (tiny model, k = {SCALING_K}, s = 2)", "",
          f"Baseline: {scal['baseline']['verifiers']} verifiers, committee {scal['baseline']['committee']}, "
          f"{scal['baseline']['steps']} steps per round, same run. Gas = every receipt of the round (trainer's commit, seal, "
          "reveals, finalize; each member's verdict commit and reveal; the claims). All node processes share 2 cores: a "
          "committee's replays run side by side here, on separate machines in a real network.", "",
          "| verifiers | committee | steps/round | M | checks | gas per round | gas ratio | wall per round | wall ratio | blocks | "
          "train | slowest replay |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in scal["rows"]:
        L.append(f"| {r['verifiers']} | {r['committee']} | {r['steps']} | {r['segments']} | {r.get('checks', '—')} | {r['gas_total']:,} | "
                 f"{r['gas_ratio']:.3f} | {r['wall_s']:.1f} s | {r['wall_ratio']:.2f} | {r['blocks']} | {r['train_s']:.1f} s | "
                 f"{r['replay_slowest_member_s']:.2f} s |")
    L += ["", f"Gas over steps per round (3 verifiers, committee 3, rounds with the baseline's number of checks: S = "
          f"{', '.join(map(str, scal.get('gas_flat_steps_compared', [])))}): max/min = {scal['gas_spread_over_steps']:.3f} "
          "(only the Merkle proofs grow, with log₂ M). The random draw sets the number of checks — s when segment M−2 is "
          "drawn (it is then checked together with M−1), else s+1 — and one check fewer saves a start and an end "
          f"reveal; over every round of the column max/min = {scal.get('gas_spread_every_round', scal['gas_spread_over_steps']):.3f}. "
          "A trainer's first commit also pays for cold storage (the first round of each network).", ""]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "worker":
        worker(Path(sys.argv[2]))
    else:
        print(json.dumps(run(), indent=1))
