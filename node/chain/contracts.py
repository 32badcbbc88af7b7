"""Compile the protocol contracts with the vyper package and deploy them with web3.

    from node.chain.contracts import compile_contracts, deploy, contract, DeployParams
    from node.chain.records import TaskParams
    addresses = deploy(w3, w3.eth.accounts[0])             # or an eth_account LocalAccount
    rounds = contract(w3, "TrainingRounds", addresses["TrainingRounds"])

The deployment: StakeManager (stake), ModelOracle (canonical versions), TaskRegistry (tasks,
pools), TrainingRounds (rounds); each restricted function is open to a set of authorized
callers wired here once and then frozen (contracts/lib/wiring.vy). The pure rules are the
module contracts/lib/rules.vy, compiled into each; ProtocolRules exposes them (tests).

Compiled output is cached in build/trainchain/<name>-<sha256 of sources + vyper version>.json
(not brownie's build folder, so the node never needs brownie).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node import protocol as P
from node.errors import TrainchainError
from node.tools import PROJECT_ROOT

CONTRACTS_DIR = PROJECT_ROOT / "contracts"
CACHE_DIR = PROJECT_ROOT / "build" / "trainchain"
LIB_DIR = CONTRACTS_DIR / "lib"  # Vyper modules (imported, never deployed on their own)
CONTRACT_NAMES = ("StakeManager", "ModelOracle", "TaskRegistry", "TrainingRounds", "Epochs")  # a deployment
REFERENCE_NAMES = ("ProtocolRules",)  # the rules as external pure functions (tests, tools)
OPTIONAL_NAMES = ("Disputes", "Appeals")  # deployed when DeployParams asks (disputes=True: no majority vote for fraud, #15)
EIP170_LIMIT = 24_576  # bytes of runtime code a chain accepts (anvil enforces it)
# Who may call whose restricted functions, wired once at deploy and then frozen (lib/wiring.vy):
# StakeManager: TrainingRounds locks, unlocks, slashes; TaskRegistry credits rewards.
# ModelOracle: TaskRegistry writes the versions. TaskRegistry: TrainingRounds pays and advances.
# The epochs and disputes contracts of protocol v2 join these sets (docs/protocol-v2-interface.md).
# Epochs (#14): StakeManager reserves and settles its aggregation seats and posts; TaskRegistry reserves,
# pays and advances for it; TrainingRounds.set_epochs names it (it opens and commits epoch slots).
WIRING = {"StakeManager": ("TrainingRounds", "TaskRegistry", "Epochs"), "ModelOracle": ("TaskRegistry",),
          "TaskRegistry": ("TrainingRounds", "Epochs")}
# With Disputes (#15), StakeManager's callers also include Disputes (juror seats, slashes, bond payouts) and Appeals
# (the appeal jury's seats, slashes, the appeal bond's payouts); Disputes takes Appeals' address in its constructor
# and Appeals.set_disputes names Disputes; TrainingRounds.set_disputes names Disputes.
DISPUTES_CALLERS = ("Disputes", "Appeals")


class ContractsError(TrainchainError):
    """Compiling, deploying or wiring the contracts failed."""


@dataclass(frozen=True)
class DeployParams:
    # wei; None: P.MIN_TRAINER_STAKE_WEI (1 ETH), or with Disputes P.DISPUTES_MIN_TRAINER_STAKE_WEI (3 ETH, __post_init__)
    min_trainer_stake: int | None = None
    min_verifier_stake: int = 10**18      # wei
    unbonding_blocks: int = 20
    # TaskRegistry's bounds on every task's parameters (rules.TaskBounds, issue #13; defaults in
    # node.protocol, which the demo spec and the test suites fit)
    min_window_blocks: int = P.MIN_WINDOW_BLOCKS
    max_window_blocks: int = P.MAX_WINDOW_BLOCKS
    max_trainer_slash_bps: int = P.MAX_TRAINER_SLASH_BPS
    max_verifier_slash_bps: int = P.MAX_VERIFIER_SLASH_BPS
    max_no_show_slash_bps: int = P.MAX_NO_SHOW_SLASH_BPS
    notice_blocks: int = P.TASK_NOTICE_BLOCKS  # a new task's first commit or claim waits this long (#13, attack 1)
    # Disputes (issue #15): deployed with Appeals (a jury vote's appeal to the whole verifier set), both authorized in
    # StakeManager, Disputes named by TrainingRounds.set_disputes; a contradiction then opens a dispute and no majority vote decides fraud (the nodes play it: DisputeRole). Off by
    # default: the suites and the bench keep v1's tally; the demo's dispute act and section 5.6 run both.
    disputes: bool = False

    def __post_init__(self):
        if self.min_trainer_stake is None:  # the default depends on the mode: whitepaper §5.6 (stake under disputes)
            default = P.DISPUTES_MIN_TRAINER_STAKE_WEI if self.disputes else P.MIN_TRAINER_STAKE_WEI
            object.__setattr__(self, "min_trainer_stake", default)

    @property
    def task_bounds(self) -> tuple:
        """rules.TaskBounds as the constructor's ABI tuple."""
        return (self.min_window_blocks, self.max_window_blocks, self.max_trainer_slash_bps,
                self.max_verifier_slash_bps, self.max_no_show_slash_bps, self.notice_blocks)


# ---------------------------------------------------------------- compile
def _source_key(source: str) -> str:
    # the version from package metadata: importing vyper costs ~0.7 s on every CLI command
    from importlib.metadata import version

    modules = "".join(f"\0{p.name}\0{p.read_text()}" for p in sorted(LIB_DIR.glob("*.vy")))
    return hashlib.sha256(f"{version('vyper')}\0{source}{modules}".encode()).hexdigest()[:16]


_COMPILE_LOCK = threading.Lock()


def compile_contract(name: str) -> dict[str, Any]:
    """{"abi", "bytecode", "runtime_size"} of contracts/<name>.vy, cached by the hash of its
    source and of the modules in contracts/lib/."""
    path = CONTRACTS_DIR / f"{name}.vy"
    if not path.exists():
        raise ContractsError(f"contracts: no source {path}")
    source = path.read_text()
    cached = CACHE_DIR / f"{name}-{_source_key(source)}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    # vyper keeps the settings of the compile under way in a global: two threads compiling at once (the demo's two
    # acts deploying on a fresh clone) fail with "settings conflict" (one's `optimize codesize` pragma in the other's)
    with _COMPILE_LOCK:
        if cached.exists():  # compiled by the thread we waited for
            return json.loads(cached.read_text())
        return _compile(name, cached)


def _compile(name: str, cached: Path) -> dict[str, Any]:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    try:
        bundle = FilesystemInputBundle([CONTRACTS_DIR])  # `from .lib import rules` resolves here
        out = compile_from_file_input(bundle.load_file(Path(f"{name}.vy")), input_bundle=bundle,
                                      output_formats=["abi", "bytecode", "bytecode_runtime"])
    except Exception as exc:  # vyper raises many types; the message is what matters
        raise ContractsError(f"contracts: compiling {name} failed: {exc}") from exc
    result = {"abi": out["abi"], "bytecode": out["bytecode"],
              "runtime_size": (len(out["bytecode_runtime"]) - 2) // 2}
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # one per process: two compilers never write the same file
    tmp.write_text(json.dumps(result))
    tmp.replace(cached)  # atomic: concurrent compilers never see half a file
    return result


def compile_contracts() -> dict[str, dict[str, Any]]:
    """{name: {"abi", "bytecode", "runtime_size"}} for the deployed contracts and ProtocolRules."""
    return {name: compile_contract(name) for name in CONTRACT_NAMES + OPTIONAL_NAMES + REFERENCE_NAMES}


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
    """Deploy StakeManager, ModelOracle, TaskRegistry, TrainingRounds, wire them as WIRING says
    and freeze the wiring (finish_wiring: no admin can change who may call what); return
    {name: address}. `deployer`: an address the node holds unlocked (anvil) or an
    eth_account LocalAccount.
    """
    stake_manager = _deploy_one(w3, "StakeManager", deployer, params.min_trainer_stake, params.min_verifier_stake, params.unbonding_blocks)
    oracle = _deploy_one(w3, "ModelOracle", deployer)
    registry = _deploy_one(w3, "TaskRegistry", deployer, stake_manager, oracle, params.task_bounds)
    rounds = _deploy_one(w3, "TrainingRounds", deployer, stake_manager, registry)
    epochs = _deploy_one(w3, "Epochs", deployer, stake_manager, registry, rounds)
    send(w3, contract(w3, "TrainingRounds", rounds).functions.set_epochs(epochs), deployer)
    addresses = {"StakeManager": stake_manager, "ModelOracle": oracle, "TaskRegistry": registry, "TrainingRounds": rounds,
                 "Epochs": epochs}
    wiring = dict(WIRING)
    if params.disputes:
        addresses["Appeals"] = _deploy_one(w3, "Appeals", deployer, stake_manager, registry)
        addresses["Disputes"] = _deploy_one(w3, "Disputes", deployer, stake_manager, rounds, registry, addresses["Appeals"])
        send(w3, contract(w3, "Appeals", addresses["Appeals"]).functions.set_disputes(addresses["Disputes"]), deployer)
        wiring["StakeManager"] = wiring["StakeManager"] + DISPUTES_CALLERS
        send(w3, contract(w3, "TrainingRounds", rounds).functions.set_disputes(addresses["Disputes"]), deployer)
    for name, callers in wiring.items():
        fns = contract(w3, name, addresses[name]).functions
        for caller in callers:
            send(w3, fns.authorize(addresses[caller]), deployer)
        send(w3, fns.finish_wiring(), deployer)
    # Where stakers' content gateways are advertised (node/store/peers.py, H3 #16); no wiring needed.
    peers = _deploy_one(w3, "PeerDirectory", deployer, stake_manager)
    return {**addresses, "PeerDirectory": peers}
