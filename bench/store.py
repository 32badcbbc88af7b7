"""Content-store benchmark: CID computation, put and get in MB/s for 1 MB, 100 MB and
1 GB files, the embedded store vs a js-ipfs 0.66.1 daemon, with peak memory; and the
fetch from a peer's trustless gateway (another process on loopback, node/store/gateway.py)
into an empty store (node/store/fetch.py: every block verified, stored, then read back)
against the local get of the same file in the same run.

    .venv/bin/python -m bench store            # all sizes (about 3 minutes, ~4 GB of temp disk)
    TRAINCHAIN_BENCH_STORE_SIZES=1,100 .venv/bin/python -m bench store

Every operation runs in a fresh Python process (`python -m bench.store op ...`) so
its peak RSS (ru_maxrss) is its own; the daemon's peak RSS is sampled with psutil
while it works. Timings exclude interpreter start-up and imports. Files are in the
page cache (written just before): these are CPU/FS-path numbers, not cold-disk ones.
Writes bench/store.md; returns the numbers for bench/results.json.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MB = 1_000_000
DEFAULT_SIZES_MB = [1, 100, 1000]

# ------------------------------------------------------------------ one operation (child)


def _op(name: str, args: list[str]) -> dict:
    from node.store import compute_cid
    from node.store.embedded import EmbeddedStore

    if name == "idle":
        return {}
    if name == "serve":  # a peer: its store on a gateway until killed
        from node.store.gateway import GatewayServer

        server = GatewayServer(EmbeddedStore(args[0]))
        print(json.dumps({"url": server.url}), flush=True)
        server.serve_forever()
    if name == "peer_fetch":  # imports outside the timing, as for the other ops
        from node.store.fetch import Fetcher, FetchingStore, GatewaySource
    started = time.perf_counter()
    result: dict = {}
    if name == "cid":
        result["cid"] = compute_cid(Path(args[0]))
    elif name == "embedded_put":
        result["cid"] = EmbeddedStore(args[0]).put_file(args[1])
    elif name == "embedded_get":
        EmbeddedStore(args[0]).get_file(args[1], args[2])
    elif name == "peer_fetch":  # args: empty store dir, gateway url, cid, out path, parallel
        local = EmbeddedStore(args[0])
        sources = [GatewaySource(args[1])]
        store = FetchingStore(local, Fetcher(local, lambda: sources, parallel=int(args[4])), budget_s=600)
        report = store.fetch(args[2])
        result["fetch_seconds"] = time.perf_counter() - started
        result["blocks"] = report.blocks
        store.get_file(args[2], args[3])
    else:
        from node.store.kubo import KuboStore

        store = KuboStore(args[0], timeout=120)
        client = store._client()
        if name == "kubo_put":  # verified: local CID computed and compared
            result["cid"] = store.put_file(args[1])
        elif name == "kubo_get":  # verified block by block
            store.get_file(args[1], args[2])
        elif name == "daemon_add":  # the daemon alone, nothing checked
            result["cid"] = client.add(args[1], cid_version=1, raw_leaves=True,
                                       chunker="size-262144", opts={"cid-base": "base32"})["Hash"]
        elif name == "daemon_cat":  # the daemon alone, nothing checked
            with open(args[2], "wb") as out:
                for chunk in client.cat(args[1], stream=True):
                    out.write(chunk)
        else:
            raise SystemExit(f"bench.store: unknown op {name}")
        store.close()
    result["seconds"] = time.perf_counter() - started
    return result


def _child_main(argv: list[str]) -> None:
    result = _op(argv[0], argv[1:])
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


# ------------------------------------------------------------------ orchestration (parent)


class _RssSampler:
    """Peak RSS of a process tree (the daemon), sampled every 20 ms."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(0.02)

    def __enter__(self):
        if self.pid:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.pid:
            self._thread.join()


def _run_op(name: str, *args, daemon_pid: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.store", name, *map(str, args)]
    with _RssSampler(daemon_pid) as sampler:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH_DIR.parent, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"bench.store {name} failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if daemon_pid:
        result["daemon_peak_rss_mb"] = sampler.peak / (1 << 20)
    return result


class _Peer:
    """A peer in its own process: `python -m bench.store serve <store>` (its gateway URL)."""

    def __init__(self, store_dir: Path):
        self.store_dir = store_dir

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.store", "serve", str(self.store_dir)],
                                     stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR.parent)
        return json.loads(self.proc.stdout.readline())["url"]

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def _sizes() -> list[int]:
    env = os.environ.get("TRAINCHAIN_BENCH_STORE_SIZES")
    if not env and os.environ.get("BENCH_QUICK", "") not in ("", "0"):
        env = "1,100"  # `BENCH_QUICK=1 make bench`: skip the 1 GB case
    return [int(s) for s in env.split(",")] if env else DEFAULT_SIZES_MB


def run() -> dict:
    from node.store.jsipfs import JsIpfsDaemon

    rows: dict[str, dict] = {}
    baseline = _run_op("idle")["max_rss_mb"]
    with tempfile.TemporaryDirectory(prefix="trainchain-bench-store-") as tmp:
        tmp = Path(tmp)
        with JsIpfsDaemon(tmp / "jsipfs") as daemon:
            pid = daemon.proc.pid
            for size_mb in _sizes():
                size = size_mb * MB
                src = tmp / f"src-{size_mb}.bin"
                _write_random(src, size)
                emb = tmp / f"embedded-{size_mb}"
                r: dict = {"bytes": size}
                cid = _run_op("cid", src)
                put = _run_op("embedded_put", emb, src)
                get = _run_op("embedded_get", emb, put["cid"], tmp / "out.bin")
                assert put["cid"] == cid["cid"]
                (tmp / "out.bin").unlink()
                peer = {}
                with _Peer(emb) as url:
                    for parallel in (1, 8):
                        dst = tmp / f"fetched-{size_mb}-{parallel}"
                        peer[parallel] = _run_op("peer_fetch", dst, url, cid["cid"], tmp / "out.bin", parallel)
                        assert (tmp / "out.bin").stat().st_size == size
                        (tmp / "out.bin").unlink()
                        shutil.rmtree(dst)
                shutil.rmtree(emb)
                dput = _run_op("daemon_add", daemon.api, src, daemon_pid=pid)
                assert dput["cid"] == cid["cid"], "the daemon and the embedded store disagree on the CID"
                dcat = _run_op("daemon_cat", daemon.api, cid["cid"], tmp / "out.bin", daemon_pid=pid)
                (tmp / "out.bin").unlink()
                kget = _run_op("kubo_get", daemon.api, cid["cid"], tmp / "out.bin", daemon_pid=pid)
                (tmp / "out.bin").unlink()
                # Fresh bytes of the same size, so the daemon has none of its blocks yet.
                src2 = tmp / f"src2-{size_mb}.bin"
                _write_random(src2, size)
                kput = _run_op("kubo_put", daemon.api, src2, daemon_pid=pid)
                src2.unlink()
                for key, res in [("cid", cid), ("embedded_put", put), ("embedded_get", get),
                                 ("peer_fetch_1", peer[1]), ("peer_fetch", peer[8]),
                                 ("daemon_add", dput), ("daemon_cat", dcat), ("kubo_get", kget),
                                 ("kubo_put_verified", kput)]:
                    r[key] = {"MBps": round(size / MB / res["seconds"], 1), "seconds": round(res["seconds"], 3),
                              "peak_rss_mb": round(res["max_rss_mb"], 1)}
                    if "daemon_peak_rss_mb" in res:
                        r[key]["daemon_peak_rss_mb"] = round(res["daemon_peak_rss_mb"], 1)
                rows[f"{size_mb}MB"] = r
                src.unlink()
                print(f"   {size_mb} MB: cid {r['cid']['MBps']} MB/s, embedded put {r['embedded_put']['MBps']} / "
                      f"get {r['embedded_get']['MBps']}, peer gateway fetch {r['peer_fetch']['MBps']} "
                      f"(1 at a time {r['peer_fetch_1']['MBps']}), daemon add {r['daemon_add']['MBps']} / "
                      f"verified get {r['kubo_get']['MBps']} MB/s", flush=True)
    result = {"sizes": rows, "python_baseline_rss_mb": round(baseline, 1), "targets": _targets(rows),
              "loadavg": [round(x, 1) for x in os.getloadavg()]}
    _write_markdown(result)
    return result


def _targets(rows: dict) -> dict:
    faster = all(r["embedded_put"]["MBps"] >= r["daemon_add"]["MBps"] for r in rows.values())
    # Flat memory: for each client-side op, peak RSS at the largest size minus at the smallest.
    ordered = sorted(rows.values(), key=lambda r: r["bytes"])
    growth = {op: round(ordered[-1][op]["peak_rss_mb"] - ordered[0][op]["peak_rss_mb"], 1)
              for op in ("cid", "embedded_put", "embedded_get", "kubo_put_verified", "kubo_get")}
    return {"embedded_put_at_least_daemon_add": faster, "client_peak_rss_growth_mb": growth,
            "memory_flat": all(g < 32 for g in growth.values())}


def _write_markdown(result: dict) -> None:
    from bench.__main__ import machine

    m = machine()
    lines = [
        "# Content store benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. Run `make bench` "
        "(or `.venv/bin/python -m bench store`) to regenerate. Each operation runs once, in a fresh "
        "process; files are in the page cache. MB = 10^6 bytes.",
        "",
        "| size | op | MB/s | seconds | client peak RSS (MB) | daemon peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    names = {
        "cid": "compute CID (embedded, nothing stored)",
        "embedded_put": "embedded put_file",
        "embedded_get": "embedded get_file (verified)",
        "peer_fetch": "fetch from a peer's gateway into an empty store (8 blocks in flight, verified, stored) + get_file",
        "peer_fetch_1": "the same, one block at a time",
        "daemon_add": "js-ipfs `add` (daemon alone, unverified)",
        "kubo_put_verified": "KuboStore.put_file (local CID check + add)",
        "daemon_cat": "js-ipfs `cat` (daemon alone, unverified)",
        "kubo_get": "KuboStore.get_file (dag/export stream, every block verified)",
    }
    for size, r in result["sizes"].items():
        for key, label in names.items():
            v = r[key]
            lines.append(f"| {size} | {label} | {v['MBps']} | {v['seconds']} | {v['peak_rss_mb']} | "
                         f"{v.get('daemon_peak_rss_mb', '')} |")
    t = result["targets"]
    lines += ["", "Peer gateway fetch vs the local store (same run, same file; the peer is another "
              "process on loopback, so this is the protocol's CPU cost, not a network's):", ""]
    for size, r in result["sizes"].items():
        lines.append(f"- {size}: {r['peer_fetch']['MBps']} MB/s from the peer = "
                     f"{r['peer_fetch']['MBps'] / r['embedded_get']['MBps']:.2f}x the local get "
                     f"({r['embedded_get']['MBps']} MB/s); one block at a time {r['peer_fetch_1']['MBps']} MB/s")
    lines += [
        "",
        f"Python + store imports alone: {result['python_baseline_rss_mb']} MB RSS.",
        "",
        "Targets:",
        f"- embedded put at least as fast as the daemon's add at every size: "
        f"**{'met' if t['embedded_put_at_least_daemon_add'] else 'NOT met'}**",
        f"- client memory flat in file size (peak RSS growth from the smallest to the largest file, "
        f"per op, MB: {t['client_peak_rss_growth_mb']}): **{'met' if t['memory_flat'] else 'NOT met'}**",
        "",
        f"Load average during the run: {result['loadavg']} (a 2-core machine shared with other jobs: "
        "treat MB/s as indicative; the ratios are what the targets check).",
        "",
    ]
    (BENCH_DIR / "store.md").write_text("\n".join(lines))


if __name__ == "__main__":
    _child_main(sys.argv[1:])
