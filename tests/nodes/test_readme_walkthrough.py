"""The README's walkthrough ("Run the pieces by hand"), run as written by bash in an empty directory.

It is the project's promise to a trainer operator: two trainers share each epoch of one model between real node
processes (a devnet, three verifiers, two trainers, each its own data dir and store), and the canonical state after
two epochs equals `train-local` of the same epochs bit for bit. A renamed flag or a changed output breaks it here,
not on a reader's machine. About 2.5 minutes on 2 cores.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TIMEOUT_S = 540

# Whatever the block leaves behind when it fails half-way: its background nodes and its devnet (set +e: under -e
# the trap itself would stop at its first failing command, e.g. a kill with no job left).
CLEANUP = "trap 'set +e; kill $(jobs -p) 2>/dev/null; trainchain devnet down --datadir chain >/dev/null 2>&1' EXIT\n"


def walkthrough() -> str:
    """The first sh block of the README's "Run the pieces by hand" section."""
    readme = (REPO / "README.md").read_text()
    return re.search(r"## Run the pieces by hand.*?```sh\n(.*?)```", readme, re.S).group(1)


def stop_session(sid: int) -> None:
    """SIGTERM every process of the walkthrough's session: bash's job control (-m) gives each job, the foreground
    one included, a process group of its own, so signalling bash's group would leave the nodes running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command: state, ppid, pgrp, session
            if int(fields[3]) == sid:
                os.kill(int(stat.parent.name), signal.SIGTERM)
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile


def test_the_walkthrough_runs_two_trainers():
    script = walkthrough()
    assert "--slots 2" in script
    assert len(re.findall(r"^trainchain trainer run ", script, re.M)) == 2


def test_the_walkthrough_trains_two_epochs_that_equal_train_local(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINCHAIN_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # the README puts .venv/bin on PATH
    # -e: the first failing command fails the test; -m: job control, for the block's `kill %1 %2 %3`
    proc = subprocess.Popen(["bash", "-e", "-m", "-c", CLEANUP + walkthrough()], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop_session(proc.pid)
        out, err = proc.communicate(timeout=60)
        subprocess.run(["trainchain", "devnet", "down", "--datadir", "chain"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=120)  # the devnet's anvil runs detached, outside the session
    logs = "".join(f"\n--- {p.name} (tail)\n" + p.read_text()[-1500:] for p in sorted(tmp_path.glob("*.log")))
    what = f"still running after {TIMEOUT_S} s: stopped" if timed_out else f"rc {proc.returncode}"
    assert proc.returncode == 0 and not timed_out, f"{what}\n--- stderr (tail)\n{err[-3000:]}{logs}"

    # `trainchain status`: both epochs accepted with both slots, each slot trained by another trainer
    for epoch in (0, 1):
        assert re.search(rf"^\s*epoch {epoch}: accepted, A = slots \[0, 1\]", out, re.M), out
    trainers = set(re.findall(r"^\s*slot [01] \(round \d+\): accepted, trainer (0x[0-9a-fA-F]{40})", out, re.M))
    assert len(trainers) == 2, out

    # `model latest` and `model pull`: version 2 (one per epoch), its content hashes to the oracle's state hash
    canonical = re.search(r"^task 1 v2 .*\n\s*cid\s+\S+\n\s*state hash (0x[0-9a-f]{64})", out, re.M)
    assert canonical, out
    assert f"state hash {canonical.group(1)} verified" in out
    # `train-local` of the same two epochs on one machine: the same state, bit for bit
    local = re.search(r"^final (0x[0-9a-f]{64})$", out, re.M)
    assert local, out
    assert local.group(1) == canonical.group(1)
