"""`trainchain trainer run` / `verifier run`: refusals in words (CliRunner), and a real
verifier process with --metrics-port that stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import requests

from node.keys import NodeLock
from node.localnet import trainchain_command
from node.tools import free_port


@pytest.fixture
def opts(keyed_datadir):
    devnet, addresses = keyed_datadir
    return ["--datadir", devnet.datadir, "--password-file", devnet.datadir / "password.txt", "--account", addresses[0]]


def test_trainer_run_refuses_an_unstaked_key(cli_run, opts, keyed_datadir):
    r = cli_run("trainer", "run", "--task", "1", *opts, ok=False)
    assert f"{keyed_datadir[1][0]} is not staked as trainer" in r.output
    assert "Traceback" not in r.output


def test_verifier_run_json_error(cli_run, opts):
    r = cli_run("verifier", "run", *opts, "--json", ok=False)
    assert "not staked as verifier" in json.loads(r.stdout.splitlines()[-1])["error"]


def test_unknown_task_is_named(cli_run, opts):
    cli_run("stake", "trainer", "2", *opts)
    r = cli_run("trainer", "run", "--task", "99", *opts, ok=False)
    assert "task 99 does not exist" in r.output


def test_bad_password_fails_before_anything_runs(cli_run, opts, keyed_datadir):
    devnet, _ = keyed_datadir
    wrong = devnet.datadir / "wrong.txt"
    wrong.write_text("not the password\n")
    args = [a if a != devnet.datadir / "password.txt" else wrong for a in opts]
    r = cli_run("verifier", "run", *args, ok=False)
    assert "wrong password" in r.output
    assert not (devnet.datadir / "verifier.sqlite").exists()


def test_a_key_runs_once(cli_run, opts, keyed_datadir):
    devnet, addresses = keyed_datadir
    with NodeLock(devnet.datadir, addresses[0]):
        r = cli_run("verifier", "run", *opts, ok=False)
    assert "already in use" in r.output


@pytest.mark.parametrize("args, message", [
    (["trainer", "run"], "Missing option '--task'"),
    (["trainer", "run", "--task", "0"], "0 is not in the range x>=1"),
    (["verifier", "run", "--metrics-port", "99999"], "99999 is not in the range"),
])
def test_bad_flags(cli_run, opts, args, message):
    r = cli_run(*args, *opts, ok=False)
    assert message in r.output


def test_verifier_process_serves_metrics_and_stops_on_sigterm(cli_run, opts, keyed_datadir):
    cli_run("stake", "verifier", "1", *opts)
    port = free_port()
    proc = subprocess.Popen([*trainchain_command(), "verifier", "run", *map(str, opts), "--metrics-port", str(port),
                             "--json", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, text, sample = time.monotonic() + 60, "", 'trainchain_head_block{role="verifier"}'
        while time.monotonic() < deadline and sample not in text:
            assert proc.poll() is None, proc.stderr.read()
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except requests.RequestException:
                time.sleep(0.3)
        assert sample in text
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["stopped_by_signal"] is True and summary["role"] == "verifier" and summary["rounds"] == []
    assert "received SIGTERM" in err


def test_verifier_refuses_in_words_a_task_it_cannot_replay(cli_run, opts, keyed_datadir, client, dev):
    """A task pinning another torch build: the verifier process says why it will not vote
    on its round, records the refusal, and keeps running."""
    import os

    from node.cli.task import create_task
    from node.engine import TaskSpec, build_dataset
    from node.protocol import compute_merkle_proof, compute_merkle_root
    from node.roles.db import NodeDB
    from node.store import open_store

    devnet, addresses = keyed_datadir
    store = open_store(devnet.datadir)  # the verifier's own store: it holds the spec
    corpus = devnet.datadir / "corpus.txt"
    corpus.write_text("the canonical model lives in the store. " * 200)
    spec = TaskSpec.preset("tiny").with_(runtime={"torch_version": "9.9.9+cpu"},
                                         protocol={"samples": 1, "committee_size": 1, "quorum": 1, "seal_delay_blocks": 1})
    spec = spec.with_(dataset={"manifest_cid": build_dataset([corpus], store)})
    task = create_task(devnet.chain, store, spec, 10**18)
    cli_run("stake", "verifier", "1", *opts)

    # a trainer commits a (made-up) trace, seals and reveals its starts
    trainer = client(dev[5])
    trainer.transact(trainer.stake_manager.functions.stake(1), value=10**18)
    trace = [bytes.fromhex(task["genesis_hash"][2:])] + [os.urandom(32) for _ in range(spec.segments_per_round)]
    trainer.transact(trainer.rounds.functions.commit(task["task_id"], trace[0], os.urandom(32),
                                                     compute_merkle_root(trace), compute_merkle_proof(trace, 0)))
    trainer.w3.provider.make_request("anvil_mine", [3])
    trainer.transact(trainer.rounds.functions.seal(1))
    samples = trainer.call(trainer.rounds.functions.round_samples_of(1))
    trainer.transact(trainer.rounds.functions.reveal_starts(
        1, [trace[j] for j in samples], ["bafynotfetched"] * len(samples), [compute_merkle_proof(trace, j) for j in samples]))

    proc = subprocess.Popen([*trainchain_command(), "verifier", "run", *map(str, opts), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        db_path, refused, deadline = devnet.datadir / "verifier.sqlite", [], time.monotonic() + 90
        while not refused and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.5)
            if db_path.exists():
                with NodeDB(db_path) as db:
                    refused = [d for d in db.duties(duty="commit_verdict") if d["outcome"] == "refused"]
        assert refused, "the verifier never recorded a refusal"
        assert "torch 2.13.0+cpu but the spec pins 9.9.9+cpu" in refused[0]["detail"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err  # refused the task, did not crash
    assert "refusing task 1: runtime: this process cannot replay the spec" in err
    assert trainer.call(trainer.rounds.functions.commitments(1, addresses[0])) == b"\x00" * 32
    # and it opted out of the task on chain (#13 attack 1): never drawn for its rounds again
    assert trainer.call(trainer.stake_manager.functions.opted_out(1, addresses[0])) is True
    with NodeDB(db_path) as db:
        optouts = [d for d in db.duties(duty="optout") if d["outcome"] == "ok"]
    assert len(optouts) == 1 and "task 1" in optouts[0]["detail"] and "9.9.9" in optouts[0]["detail"]

    # a trainer refuses the same task at start, in words, with a non-zero exit
    trainer_opts = [str(a) for a in opts[:-1]] + [addresses[1]]
    cli_run("stake", "trainer", "1", *trainer_opts)
    done = subprocess.run([*trainchain_command(), "trainer", "run", "--task", "1", *trainer_opts, "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "torch 2.13.0+cpu but the spec pins 9.9.9+cpu" in done.stderr and "Traceback" not in done.stderr


def test_one_node_per_data_dir(cli_run, opts, keyed_datadir):
    """Two verifier keys in one data dir would share one round database: the second is refused."""
    from node.roles.db import NodeDB

    devnet, addresses = keyed_datadir
    with NodeDB(devnet.datadir / "verifier.sqlite") as db:
        db.put_json("owner", addresses[1])  # another key already runs a verifier from this data dir
    r = cli_run("verifier", "run", *opts, ok=False)
    assert f"holds the rounds of {addresses[1]}; run {addresses[0]} as a verifier with its own --datadir" in r.output
