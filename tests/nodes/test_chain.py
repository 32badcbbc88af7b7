"""ChainClient against a real anvil: reverts in words, failover, stuck-tx replacement, outages."""
from __future__ import annotations

import json
import threading
import time

import pytest

from node.chain.client import ChainClient, Deployment
from node.errors import ChainError, DeploymentError, PreflightError, RPCUnavailable
from node.rounds import Phase
from node.tools import free_port

VERIFIER = 2
ETH = 10**18


def test_stake_transaction_and_its_event(deployed, client, dev):
    chain = client(dev[1])
    before = chain.balance()
    receipt = chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=2 * ETH, what="stake")
    assert receipt["status"] == 1
    assert chain.call(chain.stake_manager.functions.stake_of(dev[1].address)) == 2 * ETH
    assert before - chain.balance() >= 2 * ETH
    events = chain.events("Staked", who=dev[1].address)
    assert [(e["args"]["who"], e["args"]["amount"], e["args"]["role"]) for e in events] == [(dev[1].address, 2 * ETH, VERIFIER)]
    assert chain.events("Staked", who=dev[2].address) == []


def test_revert_reason_at_estimation_sends_nothing(client, dev):
    chain = client(dev[1])
    nonce = chain.w3.eth.get_transaction_count(dev[1].address)
    with pytest.raises(ChainError, match="stake would revert: stake: below minimum") as info:
        chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=10**17, what="stake")
    assert info.value.reason == "stake: below minimum"
    assert chain.w3.eth.get_transaction_count(dev[1].address) == nonce  # nothing was sent


def test_revert_on_chain_reports_the_reason(client, dev):
    chain = client(dev[1])
    with pytest.raises(ChainError, match="reverted on-chain .*stake: nothing pending") as info:
        chain.transact(chain.stake_manager.functions.withdraw(), gas=200_000, what="withdraw")  # skip estimation
    assert info.value.reason == "stake: nothing pending"
    # the nonce sequence survives a failed transaction
    chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH)


def test_call_revert_is_a_chain_error(client):
    chain = client()
    with pytest.raises(ChainError, match="oracle: unknown task"):
        chain.call(chain.oracle.functions.latest(7))


def test_transact_needs_an_account(client):
    chain = client()
    with pytest.raises(PreflightError, match="needs an account"):
        chain.transact(chain.stake_manager.functions.withdraw())


def test_failover_to_the_next_rpc_url(deployed, client, dev):
    dead = f"http://127.0.0.1:{free_port()}"
    chain = client(dev[1], rpc_urls=[dead, deployed.url])
    chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH)
    assert chain.provider.urls[chain.provider.active] == deployed.url


def test_all_rpc_urls_down_is_a_clear_error(deployed):
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    chain = ChainClient(dead, deployed.deployment, rpc_retries=2, rpc_backoff=0.01)
    with pytest.raises(RPCUnavailable, match="no RPC endpoint answers") as info:
        chain.block_number()
    assert all(url in str(info.value) for url in dead) and "connection refused" in str(info.value)


def test_dropped_transaction_is_replaced(deployed, client, dev):
    chain = client(dev[1], tx_replace_after=1.0)
    rpc = chain.w3.provider
    rpc.make_request("evm_setAutomine", [False])
    dropped: list[str] = []

    def drop_then_mine():
        deadline = time.monotonic() + 5
        while not dropped and time.monotonic() < deadline:
            pending = rpc.make_request("txpool_content", [])["result"]["pending"]
            for txs in pending.values():
                for tx in txs.values():
                    rpc.make_request("anvil_dropTransaction", [tx["hash"]])
                    dropped.append(tx["hash"])
            time.sleep(0.05)
        rpc.make_request("evm_setAutomine", [True])

    helper = threading.Thread(target=drop_then_mine)
    helper.start()
    receipt = chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH, what="stake")
    helper.join()
    assert dropped, "the first version never reached the pool"
    assert receipt["status"] == 1 and "0x" + bytes(receipt["transactionHash"]).hex() not in dropped
    assert chain.call(chain.stake_manager.functions.stake_of(dev[1].address)) == ETH


def test_concurrent_transactions_share_one_nonce_sequence(client, dev):
    chain = client(dev[1])
    chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH)
    errors: list[BaseException] = []

    def add_stake():
        try:
            chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=add_stake) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert chain.call(chain.stake_manager.functions.stake_of(dev[1].address)) == 5 * ETH


def test_rpc_restart_is_waited_out(deployed, client, dev):
    chain = client(dev[1], rpc_retries=3, rpc_backoff=0.2)
    start = chain.block_number()
    threading.Thread(target=lambda: deployed.anvil.restart(down_for=1.5)).start()
    time.sleep(0.3)
    # the restarted anvil reloads its state: the contracts and the stake survive
    assert chain.wait_for_block(start, timeout=20)
    chain.transact(chain.stake_manager.functions.stake(VERIFIER), value=ETH)
    assert chain.call(chain.stake_manager.functions.stake_of(dev[1].address)) == ETH


def test_wait_for_block_stops_on_event(client):
    chain = client()
    stop = threading.Event()
    stop.set()
    assert chain.wait_for_block(chain.block_number() + 1000, stop_event=stop) is False


def test_deployment_file_errors(tmp_path, deployed):
    with pytest.raises(DeploymentError, match="no deployment at .*devnet up"):
        Deployment.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"chain_id": 1, "rpc_urls": [], "addresses": {"StakeManager": deployed.deployment.addresses["StakeManager"]}, "deploy_block": 0}))
    with pytest.raises(DeploymentError, match="missing contract addresses: TaskRegistry, TrainingRounds, ModelOracle"):
        Deployment.load(bad)
    wrong_chain = deployed.deployment.model_copy(update={"chain_id": 1})
    with pytest.raises(DeploymentError, match="chain 31337 but the deployment is for chain 1"):
        ChainClient([deployed.url], wrong_chain).check_chain()
    stale = deployed.deployment.model_copy(update={"addresses": {**deployed.deployment.addresses, "TrainingRounds": "0x" + "11" * 20}})
    with pytest.raises(DeploymentError, match="no contract at TrainingRounds"):
        ChainClient([deployed.url], stale).check_chain()
    assert Deployment.load(deployed.deployment_path) == deployed.deployment


# ---------------------------------------------------------------- pre-flight checks on a real round
def test_preflight_checks_say_why(deployed, client, dev, open_round):
    trainer = open_round()
    rpc = trainer.w3.provider
    with pytest.raises(PreflightError, match="is not staked as verifier: bonded 0 wei, minimum 1000000000000000000 wei"):
        client(dev[6]).require_staked(VERIFIER)
    with pytest.raises(PreflightError, match="is staked as trainer, not as verifier"):
        trainer.require_staked(VERIFIER)
    trainer.require_staked(1)
    with pytest.raises(PreflightError, match="round 9 does not exist"):
        trainer.require_window(9, "seal")
    with pytest.raises(PreflightError, match="task 5 does not exist"):
        trainer.get_task(5)
    with pytest.raises(PreflightError, match="can be sealed after block"):
        trainer.require_window(1, "seal")
    with pytest.raises(PreflightError, match="reveal_starts is not possible now: round 1 is awaiting seal"):
        trainer.require_window(1, "reveal_starts")
    with pytest.raises(PreflightError, match="not in the committee of round 1 .*not drawn yet"):
        trainer.require_in_committee(1, dev[2].address)

    rpc.make_request("anvil_mine", [3])  # head > commit block + seal delay
    trainer.require_window(1, "seal")
    trainer.transact(trainer.rounds.functions.seal(1))
    committee = trainer.call(trainer.rounds.functions.committee_of(1))
    assert len(committee) == 2 and dev[1].address not in committee
    trainer.require_in_committee(1, committee[0])
    with pytest.raises(PreflightError, match=f"{dev[1].address} is not in the committee of round 1"):
        trainer.require_in_committee(1)
    rnd = trainer.require_window(1, "reveal_starts")
    assert rnd.phase == Phase.SEALED and rnd.trainer == dev[1].address
    with pytest.raises(PreflightError, match="finalize: round 1 is awaiting the trainer's starts until block"):
        trainer.require_window(1, "finalize")
    rpc.make_request("anvil_mine", [11])
    with pytest.raises(PreflightError, match=r"reveal_starts: window closed at block \d+ \(now \d+\)"):
        trainer.require_window(1, "reveal_starts")
    trainer.require_window(1, "finalize")
    trainer.transact(trainer.rounds.functions.finalize(1))
    with pytest.raises(PreflightError, match=r"round 1 is already finalized \(outcome abandoned\)"):
        trainer.require_window(1, "finalize")
    # the trainer who missed its reveal was penalized: visible in its events
    assert [e["args"]["who"] for e in trainer.events("PenaltyApplied", round_id=1)] == [dev[1].address]


def test_transaction_survives_an_rpc_restart_and_runs_once(anvil_factory, dev, tmp_path):
    """anvil (1 s blocks) goes down right after the send and loses its pool: the client re-sends the
    same nonce once the RPC is back, and the stake is added exactly once."""
    from node.chain.devnet import deploy_contracts

    anvil = anvil_factory(block_time=1, state=tmp_path / "state.json")
    deployment = deploy_contracts(anvil.url, dev[0])
    chain = ChainClient([anvil.url], deployment, dev[1], tx_replace_after=3, tx_timeout=40, rpc_retries=8,
                        rpc_backoff=0.2, poll_interval=0.1)
    fn = chain.stake_manager.functions.stake(VERIFIER)
    chain.call(chain.stake_manager.functions.stake_of(dev[1].address))  # bindings ready before the outage
    real_send = chain.w3.eth.send_raw_transaction

    def send_then_crash(raw):
        result = real_send(raw)
        if not getattr(send_then_crash, "done", False):
            send_then_crash.done = True
            anvil.stop()  # before the next block: the pending transaction dies with the process
            threading.Thread(target=lambda: (time.sleep(1.5), anvil.start())).start()
        return result

    chain.w3.eth.send_raw_transaction = send_then_crash
    receipt = chain.transact(fn, value=ETH, what="stake")
    assert receipt["status"] == 1
    assert chain.call(chain.stake_manager.functions.stake_of(dev[1].address)) == ETH
    assert chain.w3.eth.get_transaction_count(dev[1].address) == 1
