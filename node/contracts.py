"""Compile the protocol contracts with the vyper package and deploy them with web3.

    from node.contracts import compile_contracts, deploy, contract, DeployParams, TaskParams
    addresses = deploy(w3, w3.eth.accounts[0])             # or an eth_account LocalAccount
    rounds = contract(w3, "TrainingRounds", addresses["TrainingRounds"])

Compiled output is cached in build/trainchain/<name>-<sha256 of source + vyper version>.json
(not brownie's build folder, so the node never needs brownie).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = ROOT / "contracts"
CACHE_DIR = ROOT / "build" / "trainchain"
CONTRACT_NAMES = ("StakeManager", "ModelOracle", "TrainingRounds")


class ContractsError(Exception):
    """Compiling, deploying or wiring the contracts failed."""


@dataclass(frozen=True)
class DeployParams:
    min_trainer_stake: int = 10**18       # wei
    min_verifier_stake: int = 10**18      # wei
    unbonding_blocks: int = 20


@dataclass(frozen=True)
class TaskParams:
    """Mirror of TrainingRounds.TaskParams (field order is the ABI tuple order)."""

    steps_per_round: int = 32
    segment_steps: int = 1
    samples: int = 2
    committee_size: int = 3
    quorum: int = 2
    seal_delay: int = 2
    reveal_window: int = 50
    commit_window: int = 50
    verdict_window: int = 50
    trainer_reward: int = 10**17
    verifier_reward: int = 10**16
    fraud_slash_bps: int = 5_000
    fraud_reward_bps: int = 5_000
    miss_slash_bps: int = 1_000
    minority_slash_bps: int = 500
    min_trainer_stake: int = 0  # wei; 0: the StakeManager minimum only

    def as_tuple(self) -> tuple:
        return astuple(self)

    @property
    def n_segments(self) -> int:
        return self.steps_per_round // self.segment_steps

    @property
    def round_cost(self) -> int:
        return self.trainer_reward + self.verifier_reward * self.committee_size


# ---------------------------------------------------------------- compile
def _source_key(source: str) -> str:
    # the version from package metadata: importing vyper costs ~0.7 s on every CLI command
    from importlib.metadata import version

    return hashlib.sha256(f"{version('vyper')}\0{source}".encode()).hexdigest()[:16]


def compile_contract(name: str) -> dict[str, Any]:
    """{"abi": [...], "bytecode": "0x..."} of contracts/<name>.vy, cached by source hash."""
    path = CONTRACTS_DIR / f"{name}.vy"
    if not path.exists():
        raise ContractsError(f"contracts: no source {path}")
    source = path.read_text()
    cached = CACHE_DIR / f"{name}-{_source_key(source)}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    import vyper

    try:
        out = vyper.compile_code(source, contract_path=str(path), output_formats=["abi", "bytecode"])
    except Exception as exc:  # vyper raises many types; the message is what matters
        raise ContractsError(f"contracts: compiling {name} failed: {exc}") from exc
    result = {"abi": out["abi"], "bytecode": out["bytecode"]}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(cached)  # atomic: concurrent compilers never see half a file
    return result


def compile_contracts() -> dict[str, dict[str, Any]]:
    """{name: {"abi", "bytecode"}} for StakeManager, ModelOracle, TrainingRounds."""
    return {name: compile_contract(name) for name in CONTRACT_NAMES}


def abi(name: str) -> list:
    return compile_contract(name)["abi"]


def contract(w3, name: str, address: str):
    """A web3 contract binding of `name` at `address`."""
    from web3 import Web3

    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi(name))


# ---------------------------------------------------------------- transactions
def send(w3, fn, sender, value: int = 0, gas: int | None = None):
    """Send a contract call/constructor from `sender` (an unlocked address or a LocalAccount); return the receipt.

    Raises ContractsError with the revert reason when the transaction reverts.
    """
    from web3.exceptions import ContractLogicError

    address = getattr(sender, "address", sender)
    tx: dict[str, Any] = {"from": address, "value": value}
    if gas is not None:
        tx["gas"] = gas
    try:
        if hasattr(sender, "key"):
            tx = fn.build_transaction({**tx, "nonce": w3.eth.get_transaction_count(address, "pending")})
            signed = sender.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        else:
            tx_hash = fn.transact(tx)
    except ContractLogicError as exc:
        raise ContractsError(f"reverted: {exc}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise ContractsError(f"transaction {tx_hash.hex()} failed (status 0)")
    return receipt


def _deploy_one(w3, name: str, sender, *args) -> str:
    built = compile_contract(name)
    factory = w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
    receipt = send(w3, factory.constructor(*args), sender)
    return receipt["contractAddress"]


def deploy(w3, deployer, params: DeployParams = DeployParams()) -> dict[str, str]:
    """Deploy StakeManager, ModelOracle, TrainingRounds and wire them; return {name: address}.

    `deployer`: an address the node holds unlocked (anvil) or an eth_account LocalAccount.
    """
    stake_manager = _deploy_one(w3, "StakeManager", deployer, params.min_trainer_stake, params.min_verifier_stake, params.unbonding_blocks)
    oracle = _deploy_one(w3, "ModelOracle", deployer)
    rounds = _deploy_one(w3, "TrainingRounds", deployer, stake_manager, oracle)
    send(w3, contract(w3, "StakeManager", stake_manager).functions.set_rounds(rounds), deployer)
    send(w3, contract(w3, "ModelOracle", oracle).functions.set_writer(rounds), deployer)
    # Where stakers' content gateways are advertised (node/store/peers.py, H3 #16); no wiring needed.
    peers = _deploy_one(w3, "PeerDirectory", deployer, stake_manager)
    return {"StakeManager": stake_manager, "ModelOracle": oracle, "TrainingRounds": rounds, "PeerDirectory": peers}
