"""Dapp page: load time in headless Chromium and how soon a finalized round shows up.

    .venv/bin/python -m bench dapp

A LocalNet (anvil automining, the contracts), rounds driven by tests/roundkit.py, the
page served in-process by node.dapp.server, Debian's chromium via tests/dapp/browser.py.
update latency = from the finalize receipt to the new CID on the page (the page polls
for blocks every POLL_S seconds; the driver checks the page every 0.1 s).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
POLL_S = 1.0  # dapp/oracle.js connect(pollingInterval = 1000)


def run() -> dict:
    sys.path += [str(ROOT / "tests"), str(ROOT / "tests" / "dapp")]  # last: shadow nothing
    from browser import Browser, browser_missing
    from roundkit import RoundKit

    from node.dapp.server import DappRequestHandler, DappServerConfig, make_server
    from node.localnet import LocalNet
    from node.store import open_store

    why = browser_missing()
    if why:
        raise RuntimeError(f"bench dapp: {why}")
    requests = {"n": 0}
    dispatch = DappRequestHandler._dispatch

    def counting(self):
        requests["n"] += 1
        return dispatch(self)

    DappRequestHandler._dispatch = counting
    tmp = Path(tempfile.mkdtemp(prefix="bench-dapp-"))
    server = make_server(DappServerConfig(datadir=tmp / "node"), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with LocalNet(tmp / "net", block_time=None) as net, Browser(tmp / "profile") as page:
            kit = RoundKit.on(net, net.dev[1], net.dev[2:5], open_store(tmp / "node"))
            kit.stake_all()
            task = kit.create_task()
            kit.run_round(task)
            url = server.url + "?" + urlencode({"rpc": net.url, "oracle": kit.addresses["ModelOracle"]})
            live = '#status[data-state="live"]'

            started = time.perf_counter()
            page.goto(url)
            page.wait_text(live, timeout=60)
            cold = time.perf_counter() - started
            cold_requests = requests["n"]

            warm = []
            for _ in range(3):
                started = time.perf_counter()
                page.reload()
                page.wait_text(live, timeout=60)
                warm.append(time.perf_counter() - started)

            latencies = []
            card = f'article.task[data-task-id="{task}"] dl.latest a.cid'
            for _ in range(ROUNDS):
                result = kit.run_round(task)
                finalized = time.perf_counter()
                page.wait_text(card, result.final_cid, timeout=30)
                latencies.append(time.perf_counter() - finalized)
            chromium = page.version
    finally:
        DappRequestHandler._dispatch = dispatch
        server.shutdown()
        server.server_close()
    return {
        "chromium": chromium,
        "page_load_cold_s": round(cold, 2),
        "page_load_cold_requests": cold_requests,
        "page_load_warm_s": round(statistics.median(warm), 2),
        "update_latency_s": {"median": round(statistics.median(latencies), 2), "max": round(max(latencies), 2),
                             "rounds": ROUNDS, "poll_s": POLL_S},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
