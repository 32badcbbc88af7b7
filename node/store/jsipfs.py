"""Start a local js-ipfs daemon (npm `ipfs@0.66.1`): a real, independent IPFS RPC peer
for the tests, the benchmark and the demo — no Kubo binary can be installed here.

    with JsIpfsDaemon(tmp_path / "jsipfs") as daemon:
        store = KuboStore(daemon.api)

Offline, loopback only, on free ports, in its own repo; `stop()` kills its process
group. On Node 20 it needs the `Promise.withResolvers` polyfill in scripts/js/.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from node.store.base import StoreUnavailable
from node.tools import find_binary, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
POLYFILL = REPO_ROOT / "scripts" / "js" / "withresolvers.cjs"


def find_jsipfs() -> Path:
    found = find_binary("jsipfs")
    if found:
        return Path(found)
    raise StoreUnavailable("store: jsipfs not found; run `make setup` (installs ipfs@0.66.1 into node_modules)")


class JsIpfsDaemon:
    def __init__(self, repo: str | os.PathLike, *, start_timeout: float = 60.0):
        self.repo = Path(repo)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path = self.repo.with_name(self.repo.name + ".log")

    @property
    def api(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/http"

    @property
    def blocks_dir(self) -> Path:
        return self.repo / "blocks"

    def _env(self) -> dict:
        env = dict(os.environ, IPFS_PATH=str(self.repo))
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + f" --require {POLYFILL}").strip()
        return env

    def _init_repo(self) -> None:
        if not (self.repo / "config").exists():
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(find_jsipfs()), "init", "--profile", "test"], env=self._env(),
                           check=True, capture_output=True, timeout=120)
        # No swarm (it hangs the daemon offline), loopback API/Gateway/RPC on free ports.
        config_path = self.repo / "config"
        config = json.loads(config_path.read_text())
        self.port = free_port()
        config["Addresses"].update(
            Swarm=[], API=f"/ip4/127.0.0.1/tcp/{self.port}",
            Gateway=f"/ip4/127.0.0.1/tcp/{free_port()}", RPC=f"/ip4/127.0.0.1/tcp/{free_port()}",
        )
        config["Bootstrap"] = []
        config_path.write_text(json.dumps(config, indent=2))

    def start(self) -> "JsIpfsDaemon":
        self._init_repo()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(find_jsipfs()), "daemon", "--offline", "--enable-preload=false"],
            env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v0/id", method="POST")
                with urllib.request.urlopen(req, timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise StoreUnavailable(f"store: js-ipfs daemon did not start within {self.start_timeout:.0f} s:\n{tail}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc = None
        # A killed daemon leaves its lock and api file; the next start must not trip on them.
        for leftover in (self.repo / "repo.lock", self.repo / "api"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> "JsIpfsDaemon":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
