"""A headless Chromium page steered from pytest through browser.mjs (playwright-core).

    with Browser(tmp_path / "profile") as b:
        b.goto(url)
        b.wait_text("#status", "ready")
"""
from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("browser.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class BrowserError(AssertionError):
    """A browser step failed; the message carries the page's console log."""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None if they can)."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (make setup installs Debian's chromium)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        return "node_modules/playwright-core is missing (make setup)"
    return None


class Browser:
    def __init__(self, user_data_dir: Path, step_timeout: float = 120.0):
        user_data_dir.mkdir(parents=True, exist_ok=False)  # always a fresh profile
        self.step_timeout = step_timeout
        self._next_id = 1
        self.proc = subprocess.Popen(
            ["node", str(DRIVER), str(user_data_dir)],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env={**os.environ, "CHROMIUM": CHROMIUM},
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.version = self._read_reply(0)["value"]["version"]

    # ------------------------------------------------------------ protocol
    def _read_reply(self, want_id: int) -> dict:
        while True:
            if not self._selector.select(timeout=self.step_timeout):
                raise BrowserError(f"browser: no answer in {self.step_timeout}s")
            line = self.proc.stdout.readline()
            if not line:
                raise BrowserError(f"browser: driver exited ({self.proc.poll()}): {self.proc.stderr.read()[-2000:]}")
            reply = json.loads(line)
            if reply.get("id") == want_id:
                return reply

    def call(self, op: str, **args):
        cmd_id, self._next_id = self._next_id, self._next_id + 1
        self.proc.stdin.write(json.dumps({"id": cmd_id, "op": op, **args}) + "\n")
        reply = self._read_reply(cmd_id)
        if not reply["ok"]:
            raise BrowserError(f"browser: {op} failed: {reply['error']}\npage log:\n" + "\n".join(self.log()))
        return reply["value"]

    # ------------------------------------------------------------ steps
    def goto(self, url: str) -> None:
        self.call("goto", url=url)

    def reload(self) -> None:
        self.call("reload")

    def text(self, selector: str) -> str:
        return self.call("text", selector=selector)

    def wait_text(self, selector: str, text: str | None = None, timeout: float = 60.0) -> str:
        return self.call("wait_text", selector=selector, text=text, timeout=int(timeout * 1000))

    def eval(self, js: str):
        return self.call("eval", js=js)

    def fill(self, selector: str, value: str) -> None:
        self.call("fill", selector=selector, value=value)

    def click(self, selector: str) -> None:
        self.call("click", selector=selector)

    def screenshot(self, path: Path) -> None:
        self.call("screenshot", path=str(path))

    def log(self) -> list[str]:
        """Console messages and page errors since the last call (drained)."""
        cmd_id, self._next_id = self._next_id, self._next_id + 1
        self.proc.stdin.write(json.dumps({"id": cmd_id, "op": "log"}) + "\n")
        return self._read_reply(cmd_id).get("value") or []

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close")
                self.proc.wait(timeout=15)
            except (BrowserError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
