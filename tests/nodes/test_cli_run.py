"""`trainchain trainer run` / `verifier run`: refusals in words (CliRunner), and a real
verifier process with --metrics-port that stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import requests

from node.devnet import free_port
from node.keys import NodeLock
from node.localnet import trainchain_command


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
