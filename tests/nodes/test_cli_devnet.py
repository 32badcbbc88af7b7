"""`trainchain devnet up|status|down` and `deploy` through CliRunner; a detached anvil, always stopped."""
from __future__ import annotations

import json

import pytest

from node.chain.devnet import devnet_down, rpc_ready
from node.tools import free_port


@pytest.fixture
def datadir(tmp_path):
    yield tmp_path / "dd"
    devnet_down(tmp_path / "dd")  # whatever the test did, no anvil outlives it


def _j(result):
    return json.loads(result.stdout)


def test_up_status_down_up_keeps_the_chain(cli_run, datadir, tmp_path):
    (tmp_path / "pw").write_text("pw\n")
    key = _j(cli_run("keys", "new", "--light-kdf", "--datadir", datadir, "--password-file", tmp_path / "pw", "--json"))
    outsider = "0x" + "42" * 20
    r = cli_run("devnet", "up", "--datadir", datadir, "--fund", "0x42", ok=False)
    assert "is not an Ethereum address" in r.output
    up = _j(cli_run("devnet", "up", "--datadir", datadir, "--block-time", "1", "--unbonding-blocks", "3",
                    "--fund", outsider, "--json"))
    assert rpc_ready(up["url"]) and up["funded"] == [key["address"], outsider]
    from web3 import Web3

    assert Web3(Web3.HTTPProvider(up["url"])).eth.get_balance(outsider) == 100 * 10**18
    deployment = json.loads((datadir / "deployment.json").read_text())
    assert deployment["addresses"] == up["deployment"]["addresses"] and deployment["rpc_urls"] == [up["url"]]

    status = _j(cli_run("devnet", "status", "--datadir", datadir, "--json"))
    assert status["running"] and status["chain_id"] == 31337 and status["addresses"] == deployment["addresses"]
    r = cli_run("devnet", "up", "--datadir", datadir, ok=False)
    assert "already runs" in r.output

    # the key is funded and the contracts answer: stake through the new devnet
    cli_run("stake", "trainer", "1", "--datadir", datadir, "--password-file", tmp_path / "pw")

    assert _j(cli_run("devnet", "down", "--datadir", datadir, "--json")) == {"stopped": True}
    assert not rpc_ready(up["url"])
    assert _j(cli_run("devnet", "status", "--datadir", datadir, "--json"))["running"] is False
    assert _j(cli_run("devnet", "down", "--datadir", datadir, "--json")) == {"stopped": False}

    again = _j(cli_run("devnet", "up", "--datadir", datadir, "--json"))
    assert again["url"] == up["url"] and again["deployment"]["addresses"] == deployment["addresses"]
    status = _j(cli_run("status", "--datadir", datadir, "--json"))
    assert status["stake"] == 10**18 and status["role"] == "trainer"  # the chain came back with its state


def test_deploy_to_a_given_rpc(cli_run, anvil, tmp_path):
    out = tmp_path / "dep.json"
    result = _j(cli_run("deploy", "--rpc", anvil.url, "--anvil-dev-account", "--deployment", out,
                        "--min-trainer-stake", "2", "--json"))
    assert json.loads(out.read_text())["addresses"] == result["addresses"]
    from node.chain.contracts import CONTRACT_NAMES

    assert set(result["addresses"]) == {*CONTRACT_NAMES, "PeerDirectory"}
    from node.chain.client import ChainClient, Deployment

    chain = ChainClient(None, Deployment.load(out))
    assert chain.call(chain.stake_manager.functions.min_stake(1)) == 2 * 10**18


def test_deploy_with_disputes(cli_run, anvil, tmp_path):
    """--disputes deploys Disputes too (wired: TrainingRounds names it) and defaults the trainer minimum to 3 ETH."""
    out = tmp_path / "dep.json"
    result = _j(cli_run("deploy", "--rpc", anvil.url, "--anvil-dev-account", "--deployment", out, "--disputes", "--json"))
    from node.chain.client import ChainClient, Deployment
    from node.chain.contracts import CONTRACT_NAMES
    from node.protocol import DISPUTES_MIN_TRAINER_STAKE_WEI

    assert set(result["addresses"]) == {*CONTRACT_NAMES, "Disputes", "Appeals", "PeerDirectory"}
    chain = ChainClient(None, Deployment.load(out))
    assert chain.call(chain.rounds.functions.disputes()) == result["addresses"]["Disputes"]
    assert chain.call(chain.disputes.functions.appeals()) == result["addresses"]["Appeals"]  # wired both ways
    assert chain.call(chain.appeals.functions.disputes()) == result["addresses"]["Disputes"]
    assert chain.call(chain.stake_manager.functions.min_stake(1)) == DISPUTES_MIN_TRAINER_STAKE_WEI


def test_deploy_errors(cli_run, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    r = cli_run("deploy", "--rpc", dead, "--anvil-dev-account", "--datadir", tmp_path, "--json",
                env={"TRAINCHAIN_RPC_RETRIES": "1"}, ok=False)
    assert "no RPC endpoint answers" in json.loads(r.stdout)["error"]
    r = cli_run("deploy", "--rpc", "localhost:8545", "--anvil-dev-account", "--datadir", tmp_path, ok=False)
    assert "must start with http:// or https://" in r.output
    r = cli_run("deploy", "--rpc", dead, "--datadir", tmp_path, ok=False)
    assert "no keys in" in r.output
    assert not (tmp_path / "deployment.json").exists()


def test_an_anvil_never_takes_another_nodes_port_for_its_own(anvil, monkeypatch):
    """A port that already answers RPC is someone else's chain (same dev keys: its nonces would collide):
    an anvil given that port refuses in words; one whose free_port() came back taken moves to another port
    before it starts, and then answers from its own, fresh chain."""
    from node.chain import devnet
    from node.errors import DevnetError

    with pytest.raises(DevnetError, match=f"port {anvil.port} already serves an RPC node"):
        devnet.Anvil(port=anvil.port).start()
    ports = iter([anvil.port])
    monkeypatch.setattr(devnet, "free_port", lambda: next(ports, None) or free_port())
    own = devnet.Anvil(block_time=None)
    assert own.port == anvil.port  # taken between free_port()'s check and the start
    with own:
        assert own.port != anvil.port and own.proc.poll() is None and rpc_ready(own.url)
