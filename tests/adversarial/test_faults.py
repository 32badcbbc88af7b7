"""Faults that honest nodes must survive without losing stake: kills in every phase, the chain
going away, an unreachable RPC, a block missing from the store, a full disk.

The nodes are the real TrainerNode / VerifierNode on a devnet (tests/adversarial/nodekit.py).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from node import protocol

from nodekit import STAKE, Killed, NodeNet

ETH = 10**18


@pytest.fixture
def net(tmp_path):
    with NodeNet.start(tmp_path / "net") as network:
        yield network


def honest(net, **trainer_kw):
    net.make_trainer(max_rounds=1, **trainer_kw)
    for i in range(3):
        net.make_verifier(i)


def nobody_lost(r) -> bool:
    return all(d == 0 for d in r.stake_delta.values())


# ---------------------------------------------------------------- kills
KILLS = [
    ("trainer", "train", "mid"),
    ("trainer", "commit", "before"), ("trainer", "commit", "after"),
    ("trainer", "seal", "after"),
    ("trainer", "reveal_starts", "before"), ("trainer", "reveal_starts", "after"),
    ("trainer", "reveal_ends", "before"), ("trainer", "reveal_ends", "after"),
    ("trainer", "finalize", "after"),
    ("verifier", "commit_verdict", "before"), ("verifier", "commit_verdict", "after"),
    ("verifier", "reveal_verdict", "before"), ("verifier", "reveal_verdict", "after"),
]


def kill_mid_training(node, at_step: int = 5) -> None:
    """The trainer dies in the middle of training (from inside the engine's progress callback)."""
    from contextlib import contextmanager

    @contextmanager
    def dying_bar(what, total):
        def advance(step, loss):
            if what == "train" and step >= at_step:
                raise Killed(f"mid-training at step {step}")

        yield advance

    node.progress_bar = dying_bar


@pytest.mark.parametrize("role,what,when", KILLS, ids=[f"{r}-{w}-{t}" for r, w, t in KILLS])
def test_node_killed_and_restarted(net, case, role, what, when):
    c = case(f"{role} killed {when} {what}, restarted from its DB",
             "resumes (same trace, same salt); round accepted; nobody's stake changes")
    honest(net)
    node = net.trainer if role == "trainer" else net.verifiers[0]
    if what == "train":
        kill_mid_training(node)
    else:
        net.kill_at(node, what, when)
    r = net.run_round()
    assert net.kills, "the node was never killed: the phase was not reached"
    assert r.outcome == protocol.Outcome.ACCEPTED, f"{r.outcome_name}; penalties {r.penalties}; errors {r.errors}"
    assert nobody_lost(r) and r.penalties == []
    c.observe(f"killed: {net.kills[0].split(' ', 1)[1]}; outcome {r.outcome_name}; penalties {len(r.penalties)}; "
              f"stake changes {sorted(set(r.stake_delta.values()))}; retried tick errors {sum(map(len, r.errors.values()))}")


# ---------------------------------------------------------------- the chain goes away
@pytest.mark.parametrize("phase", [protocol.Phase.COMMITTED, protocol.Phase.STARTS_REVEALED, protocol.Phase.ENDS_REVEALED],
                         ids=["committed", "starts-revealed", "ends-revealed"])
def test_anvil_restarted_mid_round(net, case, phase):
    phases = {1: "committed", 3: "starts revealed", 4: "ends revealed"}
    c = case(f"anvil stopped ~2 s and restarted (same state) while the round is {phases[phase]}",
             "every node's ticks fail while it is down, then resume; round accepted; nobody's stake changes")
    honest(net)
    done = {"down": False}

    def outage(n):
        rid = n.open_round()
        if not done["down"] and rid and n.chain.get_round(rid).phase == phase:
            done["down"] = True
            n.anvil.stop()
            for _ in range(3):
                n.step(mine=False)  # every node tries, every call is refused
            n.anvil.start()

    net.hook = outage
    r = net.run_round()
    failed = sum(map(len, r.errors.values()))
    assert done["down"]
    assert failed >= 3
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r) and r.penalties == []
    sample = next(iter(e for es in r.errors.values() for e in es))
    c.observe(f"{failed} failed ticks while down (e.g. '{sample[:80]}'); outcome {r.outcome_name}; "
              f"stake changes {sorted(set(r.stake_delta.values()))}")


@pytest.mark.parametrize("who", ["trainer", "verifier"])
def test_rpc_unreachable_for_a_while(net, case, who):
    c = case(f"{who}'s RPC unreachable for 6 blocks right after the seal (windows are 12 blocks)",
             "the chain goes on; the node catches up and meets its deadlines; round accepted; nobody's stake changes")
    honest(net)
    node = net.trainer if who == "trainer" else net.verifiers[0]
    state = {"blocks": 0}

    def outage(n):
        rid = n.open_round()
        if state["blocks"] == 0 and rid and n.chain.get_round(rid).phase == protocol.Phase.SEALED:
            with n.cut_off(node):
                for _ in range(6):
                    n.step()  # the others tick, blocks are mined, this node's calls are refused
                    state["blocks"] += 1

    net.hook = outage
    r = net.run_round()
    failed = sum(len(es) for name, es in r.errors.items() if node.address[:8] in name)
    assert state["blocks"] == 6 and failed >= 1
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r) and r.penalties == []
    c.observe(f"{failed} failed ticks of the cut-off node over 6 blocks; outcome {r.outcome_name}; "
              f"penalties {len(r.penalties)}")


# ---------------------------------------------------------------- the store
def block_paths(store, cid: str) -> list[Path]:
    """Files of the store's blocks under `cid`, root first (the embedded store's layout)."""
    from node.store.cid import parse_cid

    return [store._block_path(parse_cid(c)) for c, _ in store.iter_blocks(cid)]


def test_store_missing_canonical_block(net, case):
    c = case("the store lost a block of the canonical checkpoint when the trainer starts a round",
             "trainer's ticks fail with NotFound and it commits nothing (no stake at risk); once the block is back, "
             "the round is accepted and nobody loses stake")
    honest(net)
    canonical = net.chain.get_task(net.task_id).canonical_cid
    victim = block_paths(net.store, canonical)[-1]
    saved = victim.read_bytes()
    victim.unlink()
    before = net.stakes()
    for _ in range(4):
        net.step()
    errors = net.errors.get(f"TrainerNode:{net.trainer.address[:8]}", [])
    committed = net.open_round()
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(saved)
    r = net.run_round()
    assert errors and committed == 0 and net.stakes().keys() == before.keys()
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r)
    c.observe(f"while missing: {len(errors)} failed ticks ('{errors[0][:90]}'), open round {committed}; after restore: "
              f"{r.outcome_name}, stake changes {sorted(set(r.stake_delta.values()))}")


def test_store_missing_start_checkpoint_block(net, case):
    c = case("the store lost a block of the last segment's start checkpoint before the committee fetched it",
             "verifiers flag starts_ok=false without crashing; data the trainer committed is unavailable, which the "
             "protocol punishes as fraud (trainer -50%); no verifier loses stake")
    honest(net)
    real = net.trainer.reveal_starts
    lost = {}

    def reveal_then_lose(round_id, data):
        real(round_id, data)
        samples = list(net.chain.call(net.chain.rounds.functions.round_samples_of(round_id)))
        path = block_paths(net.store, data["cids"][samples[-1]])[-1]
        path.unlink()
        lost["cid"] = data["cids"][samples[-1]]

    net.trainer.reveal_starts = reveal_then_lose
    r = net.run_round()
    trainer = net.trainer.address
    verifier_errors = sum(len(es) for name, es in r.errors.items() if "Verifier" in name)
    flags = [e["args"]["starts_ok"] for e in net.chain.events("VerdictRevealed", round_id=r.round_id)]
    assert lost and flags == [False] * 3
    assert r.outcome == protocol.Outcome.FRAUD
    assert r.stake_delta[trainer] == -protocol.compute_slash(STAKE, net.spec.protocol.trainer_slash_bps)
    assert all(r.stake_delta[v] == 0 for v in r.committee)
    c.observe(f"verdicts starts_ok {flags}; verifier tick errors {verifier_errors}; outcome {r.outcome_name}; trainer "
              f"{r.stake_delta[trainer] / ETH:+.3f} ETH; verifiers {sorted({r.stake_delta[v] for v in r.committee})}")


# ---------------------------------------------------------------- the disk
@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB tmpfs (needs root: skipped otherwise), unmounted at teardown."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_writing_checkpoints(net, case, small_disk):
    c = case("the trainer's disk fills up while it writes the round's checkpoints",
             "ticks fail with 'No space left on device', nothing is committed, no stake moves; once space is freed "
             "the round is trained again and accepted")
    honest(net, workdir=small_disk / "trainer")
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 600_000))  # room for the base and about one checkpoint
    before = net.stakes()
    for _ in range(3):
        net.step()
    errors = net.errors.get(f"TrainerNode:{net.trainer.address[:8]}", [])
    committed = net.open_round()
    after = net.stakes()
    # nothing half-written under a checkpoint's name: every *.safetensors left on the full disk loads
    from node.engine.state import load_state

    left = sorted((small_disk / "trainer").rglob("*.safetensors"))
    for path in left:
        load_state(path)
    partial = sorted(p.name for p in (small_disk / "trainer").rglob("*.tmp"))
    filler.unlink()
    r = net.run_round()
    assert any("No space left" in e for e in errors), errors
    assert committed == 0 and before == after
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r)
    c.observe(f"{len(errors)} failed ticks ('{errors[0][:90]}'); open round while full: {committed}; stakes unchanged: "
              f"{before == after}; {len(left)} checkpoint file(s) left, all load; {len(partial)} *.tmp left; "
              f"after freeing: {r.outcome_name}")


# ---------------------------------------------------------------- a real process, kill -9
class VerifierProcess:
    """`trainchain verifier run` as a real process on a data dir of its own whose store is the net's
    (TRAINCHAIN_STORE_DIR: the in-process nodes read what it writes, it reads what they and the task
    creator wrote)."""

    def __init__(self, net, index: int, log_path: Path):
        from node.keys import LIGHT_KDF, Keystore

        self.net, self.account = net, net.accounts[2 + index]
        self.datadir = net.root / "network"  # keystore, password, sqlite; the store is env()'s
        ks = Keystore(self.datadir, scrypt_n=LIGHT_KDF)
        if self.account.address not in ks.list():
            ks.import_key(self.account.key, "pw")
        (self.datadir / "pw").write_text("pw\n")
        self.log_path = log_path
        self.proc = None

    def start(self, timeout: float = 120) -> None:
        import sys
        import time

        cmd = [str(Path(sys.executable).with_name("trainchain")), "verifier", "run", "--no-progress",
               "--datadir", str(self.datadir), "--rpc", self.net.anvil.url, "--deployment", str(self.net.root / "deployment.json"),
               "--account", self.account.address, "--password-file", str(self.datadir / "pw")]
        env = self.env()
        self.log = open(self.log_path, "a")
        self.started_at = self.net.chain.block_number()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.net.mine()  # its first tick sees a block no earlier run of it saw: the cursor proves it is up
        deadline = time.monotonic() + timeout
        while not self.ticking():  # up once it has warmed up (torch, the task) and ticked once
            assert self.proc.poll() is None, f"verifier process exited: {self.log_path.read_text()[-500:]}"
            assert time.monotonic() < deadline, "verifier process did not start"
            time.sleep(0.2)

    def env(self) -> dict[str, str]:
        """This environment without TRAINCHAIN_* settings, plus a fast poll and the net's store: without it
        the process opens <datadir>/ipfs, an empty store nobody serves ('no sources known')."""
        from node.store import ENV_STORE_DIR

        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINCHAIN_")}
        env["TRAINCHAIN_POLL_INTERVAL"] = "0.1"
        env[ENV_STORE_DIR] = str(self.net.store.root)
        return env

    def ticking(self) -> bool:
        from node.roles.db import NodeDB

        path = self.datadir / "verifier.sqlite"
        if not path.exists():
            return False
        db = NodeDB(path)
        try:
            return db.get_cursor("sealed-events", -1) >= self.started_at + 2
        except Exception:  # noqa: BLE001 - the schema may not be there yet
            return False
        finally:
            db.close()

    def kill9(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()


def run_round_killing_process(net, proc, marker: str, max_passes: int = 400):
    """Run one round while a real node process is killed -9 the moment `marker` appears in
    its log, then restarted on the next pass. Returns (round report, round phase at the kill)."""
    import threading
    import time

    state = {"killed": False, "phase": None, "restarted": False}
    stop = threading.Event()

    def killer():  # watches the process's log and kills it the moment the marker appears
        while not stop.is_set() and not state["killed"]:
            if proc.proc is not None and marker in proc.log_path.read_text():
                proc.kill9()
                rid = net.open_round()
                state["phase"] = net.chain.get_round(rid).phase if rid else None
                state["killed"] = True
            time.sleep(0.02)

    def watch(n):
        time.sleep(0.2)  # blocks at a pace a polling process can follow
        if state["killed"] and not state["restarted"]:
            state["restarted"] = True
            proc.start()

    thread = threading.Thread(target=killer, daemon=True)
    try:
        proc.start()
        thread.start()
        net.hook = watch
        r = net.run_round(max_passes=max_passes)
        for _ in range(8):
            watch(net)
            net.step()
    finally:
        stop.set()
        if thread.is_alive():  # not started when the process failed to start: that error is the one to see
            thread.join()
        proc.stop()
    assert state["killed"] and state["restarted"], "the process was never killed"
    return r, state["phase"]


@pytest.mark.parametrize("after", ["commit_verdict", "assigned"])
def test_verifier_process_kill9(net, case, tmp_path, after):
    when = "after its commitment is mined" if after == "commit_verdict" else "as soon as it learns it is in the committee"
    c = case(f"`trainchain verifier run` (a real process) killed -9 {when}, then restarted",
             "the restarted process resumes from sqlite (same salt, or a fresh replay), reveals in time; round "
             "accepted; nobody's stake changes")
    net.make_trainer(max_rounds=1)
    for i in range(2):
        net.make_verifier(i)
    proc = VerifierProcess(net, 2, tmp_path / "verifier-process.log")
    marker = "verdict committed" if after == "commit_verdict" else "duty assigned round="
    r, phase = run_round_killing_process(net, proc, marker)
    revealed = [e["args"]["verifier"] for e in net.chain.events("VerdictRevealed", round_id=r.round_id)]
    assert proc.account.address in revealed
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r) and r.penalties == []
    c.observe(f"killed -9 on '{marker.strip()}' (round phase {phase}); restarted process revealed: "
              f"{proc.account.address in revealed}; outcome {r.outcome_name}; stake changes {sorted(set(r.stake_delta.values()))}")


class TrainerProcess(VerifierProcess):
    """`trainchain trainer run --task T --rounds 1` as a real process (dev account 1)."""

    def __init__(self, net, log_path: Path):
        super().__init__(net, -1, log_path)  # accounts[2 - 1]: the trainer's key

    def start(self, timeout: float = 120) -> None:
        import sys
        import time

        cmd = [str(Path(sys.executable).with_name("trainchain")), "trainer", "run", "--task", str(self.net.task_id),
               "--rounds", "1", "--no-progress", "--datadir", str(self.datadir), "--rpc", self.net.anvil.url,
               "--deployment", str(self.net.root / "deployment.json"), "--account", self.account.address,
               "--password-file", str(self.datadir / "pw")]
        env = self.env()
        starts = self.log_path.read_text().count(" on task ") if self.log_path.exists() else 0
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while self.log_path.read_text().count(" on task ") <= starts:  # prepared: spec, runtime pin, dataset
            assert self.proc.poll() is None, f"trainer process exited: {self.log_path.read_text()[-500:]}"
            assert time.monotonic() < deadline, "trainer process did not start"
            time.sleep(0.2)


@pytest.mark.parametrize("marker", ["duty commit round=", "revealed the starts"], ids=["after-commit", "after-reveal-starts"])
def test_trainer_process_kill9(net, case, tmp_path, marker):
    c = case(f"`trainchain trainer run` (a real process) killed -9 right after '{marker.strip()}', then restarted",
             "the restarted process adopts its open round from sqlite and the chain, reveals in time; round "
             "accepted; nobody's stake changes")
    for i in range(3):
        net.make_verifier(i)
    proc = TrainerProcess(net, tmp_path / "trainer-process.log")
    r, phase = run_round_killing_process(net, proc, marker)
    assert r.outcome == protocol.Outcome.ACCEPTED and nobody_lost(r) and r.penalties == []
    after_restart = proc.log_path.read_text().rsplit(" on task ", 1)[-1].splitlines()
    duties = [ln.split("duty ", 1)[1].split(" round=")[0] for ln in after_restart if "duty " in ln and ": ok" in ln]
    c.observe(f"killed -9 in round phase {phase}; the restarted process then did {duties}; outcome "
              f"{r.outcome_name}; stake changes {sorted(set(r.stake_delta.values()))}")
