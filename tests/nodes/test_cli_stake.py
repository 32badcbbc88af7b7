"""stake / unstake / withdraw / status through the CLI against a real anvil (CliRunner)."""
from __future__ import annotations

import json

import pytest

from node.tools import free_port

ETH = 10**18


@pytest.fixture
def opts(keyed_datadir):
    devnet, addresses = keyed_datadir
    return ["--datadir", devnet.datadir, "--password-file", devnet.datadir / "password.txt", "--account", addresses[0]]


def _json(result):
    return json.loads(result.stdout)


def test_stake_unstake_withdraw_status_json(cli_run, opts, keyed_datadir):
    devnet, addresses = keyed_datadir
    me = addresses[0]
    staked = _json(cli_run("stake", "verifier", "1.5eth", *opts, "--json"))
    assert staked["total"] == 3 * ETH // 2 and staked["address"] == me and staked["role"] == "verifier"
    assert _json(cli_run("stake", "verifier", "500000000gwei", *opts, "--json"))["total"] == 2 * ETH

    status = _json(cli_run("status", *opts, "--json"))
    assert status["stake"] == 2 * ETH and status["role"] == "verifier" and status["eligible"] is True
    assert status["locked"] is False and status["claimable"] == 0 and status["slashes"] == []
    assert status["pending_withdrawal"]["amount"] == 0

    unstaked = _json(cli_run("unstake", "0.25", *opts, "--json"))
    assert unstaked["pending"] == ETH // 4 and unstaked["remaining"] == 7 * ETH // 4

    # unbonding (5 blocks in the fixture, automine): withdraw must wait and say until when
    result = cli_run("withdraw", *opts, "--json", ok=False)
    assert "still unbonding until block" in _json(result)["error"]
    devnet.chain.w3.provider.make_request("anvil_mine", [6])
    before = devnet.chain.balance(me)
    withdrawn = _json(cli_run("withdraw", *opts, "--json"))
    assert withdrawn["withdrawn"] == ETH // 4
    assert 0 < devnet.chain.balance(me) - before <= ETH // 4  # minus gas

    # status of another address, in text
    text = cli_run("status", addresses[1], *opts).stdout
    assert addresses[1] in text and "stake 0 ETH" in text


def test_stake_refusals_say_why(cli_run, opts, keyed_datadir):
    devnet, addresses = keyed_datadir
    r = cli_run("stake", "verifier", "0.5", *opts, ok=False)
    assert "below the verifier minimum of 1 ETH" in r.output
    cli_run("stake", "verifier", "1", *opts)
    r = cli_run("stake", "trainer", "2", *opts, ok=False)
    assert "already a verifier; an address has one role" in r.output
    r = cli_run("unstake", "5", *opts, ok=False)
    assert "bonds only 1 ETH" in r.output
    r = cli_run("stake", "verifier", "20000", *opts, ok=False)
    assert "less than the 20000 ETH to stake" in r.output
    r = cli_run("withdraw", *opts, ok=False)
    assert "nothing to withdraw" in r.output
    r = cli_run("unstake", *opts, ok=False)
    assert "give an AMOUNT or --all" in r.output


@pytest.mark.parametrize("amount,message", [
    ("1.5.2", "malformed amount"),
    ("abc", "malformed amount"),
    ("-1", "is negative"),
    ("1btc", "unknown unit 'btc'"),
    ("0", "is zero"),
    ("0.5wei", "not a whole number of wei"),
    ("1" + "0" * 80, "out of range"),
])
def test_malformed_amounts_are_refused_before_any_transaction(cli_run, opts, keyed_datadir, amount, message):
    devnet, addresses = keyed_datadir
    nonce = devnet.chain.w3.eth.get_transaction_count(addresses[0])
    r = cli_run("stake", *opts, "verifier", "--", amount, ok=False)  # "--": so that -1 is not an option
    assert message in r.output and r.exit_code == 2
    assert devnet.chain.w3.eth.get_transaction_count(addresses[0]) == nonce


def test_wrong_password(cli_run, keyed_datadir, tmp_path):
    devnet, addresses = keyed_datadir
    (tmp_path / "bad").write_text("not-it\n")
    r = cli_run("stake", "verifier", "1", "--datadir", devnet.datadir, "--account", addresses[0],
                "--password-file", tmp_path / "bad", "--json", ok=False)
    assert json.loads(r.stdout) == {"error": f"wrong password for {addresses[0]}"}
    assert "Traceback" not in r.output


def test_unknown_account(cli_run, opts, keyed_datadir):
    devnet, addresses = keyed_datadir
    stranger = devnet.accounts[9].address
    r = cli_run("stake", "verifier", "1", "--datadir", devnet.datadir, "--account", stranger,
                "--password-file", devnet.datadir / "password.txt", ok=False)
    assert f"no keystore for {stranger}" in r.output and addresses[0] in r.output
    r = cli_run("stake", "verifier", "1", "--datadir", devnet.datadir, ok=False)
    assert "several keys in the keystore, pick one with --account" in r.output


def test_no_deployment(cli_run, tmp_path):
    r = cli_run("status", "0x" + "ab" * 20, "--datadir", tmp_path / "empty", ok=False)
    assert "no deployment at" in r.output and "trainchain devnet up" in r.output


def test_rpc_down(cli_run, opts, keyed_datadir):
    dead = f"http://127.0.0.1:{free_port()}"
    r = cli_run("status", *opts, "--rpc", dead, "--json", env={"TRAINCHAIN_RPC_RETRIES": "1"}, ok=False)
    assert json.loads(r.stdout)["error"].startswith(f"no RPC endpoint answers ({dead}: connection refused)")
    # a second URL that works: failover, same answer as without the dead one
    devnet, addresses = keyed_datadir
    r = cli_run("status", *opts, "--rpc", dead, "--rpc", devnet.url, "--json", env={"TRAINCHAIN_RPC_RETRIES": "1"})
    assert json.loads(r.stdout)["address"] == addresses[0]


def test_status_shows_locks_rounds_and_slashes(cli_run, deployed, open_round, tmp_path):
    """A trainer that commits and never reveals: locked while open, then slashed ('missed deadline')."""
    from node.keys import LIGHT_KDF, Keystore

    trainer = open_round()
    Keystore(deployed.datadir, scrypt_n=LIGHT_KDF).import_key(deployed.accounts[1].key, "pw")
    me = deployed.accounts[1].address
    opts = ["--datadir", deployed.datadir, "--account", me]
    locked = json.loads(cli_run("status", *opts, "--json").stdout)
    assert locked["locked"] is True and locked["reserved"] > 0 and locked["role"] == "trainer"
    assert locked["rounds"] == [{"round": 1, "task": 1, "duty": "trainer", "outcome": "open"}]
    (tmp_path / "pw").write_text("pw")
    r = cli_run("unstake", "--all", *opts, "--password-file", tmp_path / "pw", ok=False)
    assert "reserved by open rounds" in r.output

    rpc = trainer.w3.provider
    rpc.make_request("anvil_mine", [3])
    trainer.transact(trainer.rounds.functions.seal(1))
    rpc.make_request("anvil_mine", [11])
    trainer.transact(trainer.rounds.functions.finalize(1))
    after = json.loads(cli_run("status", *opts, "--json").stdout)
    assert after["locked"] is False
    assert after["rounds"] == [{"round": 1, "task": 1, "duty": "trainer", "outcome": "abandoned"}]
    # a trainer's missed deadline costs the fraud slash (50% at the spec defaults; #13, no re-roll)
    assert [(s["round"], s["reason"], s["amount"]) for s in after["slashes"]] == [(1, "missed deadline", ETH // 2)]
    assert after["stake"] == ETH - ETH // 2 and after["slashed_total"] == ETH // 2
    text = cli_run("status", *opts).stdout
    assert "slashed 0.5 ETH in round 1 (missed deadline)" in text and "round 1 (task 1): trainer, abandoned" in text
