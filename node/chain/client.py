"""The chain client every node and CLI command uses (web3.py).

    chain = ChainClient(rpc_urls, Deployment.load(path), account)
    chain.call(chain.stake_manager.functions.stake_of(addr))
    receipt = chain.transact(chain.rounds.functions.seal(round_id), what="seal")

What it adds to web3: failover across several RPC URLs with retries and backoff
(`FailoverProvider`), one nonce sequence per account, gas estimation that turns a
revert into `ChainError` with the contract's reason, receipts with timeouts, and
replacement (same nonce, higher fees) of a transaction that is not mined in time —
a stuck transaction is replaced, never forgotten.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
import tenacity
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from pydantic import BaseModel, ValidationError, field_validator
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.providers.base import JSONBaseProvider
from web3.providers.rpc import HTTPProvider

from node.config import DEFAULT_RPC
from node.errors import ChainError, DeploymentError, PreflightError, RPCUnavailable, TxTimeout
from node.chain.records import Epoch, ModelVersion, Round, Slot, Task
from node.rounds import Action, EpochAction, Phase, why_not, why_not_epoch

log = logging.getLogger("trainchain.chain")

CONTRACT_NAMES = ("StakeManager", "TaskRegistry", "TrainingRounds", "ModelOracle")
GAS_MARGIN = 1.25  # estimates are exact for the state they ran on; state moves
FEE_BUMP = 1.25  # a replacement must pay >= 10% more (geth, anvil); 25% clears it
ROLE_NAMES = {1: "trainer", 2: "verifier"}
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.HTTPError, ProviderConnectionError)


# ---------------------------------------------------------------- deployment.json
class Deployment(BaseModel):
    """`<datadir>/deployment.json`: where the contracts live."""

    chain_id: int
    rpc_urls: list[str]
    addresses: dict[str, str]  # StakeManager, TaskRegistry, TrainingRounds, ModelOracle (+ PeerDirectory)
    deploy_block: int

    @field_validator("addresses")
    @classmethod
    def _check_addresses(cls, addresses: dict[str, str]) -> dict[str, str]:
        missing = [n for n in CONTRACT_NAMES if n not in addresses]
        if missing:
            raise ValueError(f"missing contract addresses: {', '.join(missing)}")
        return {name: to_checksum_address(a) for name, a in addresses.items()}

    @classmethod
    def load(cls, path: str | Path) -> "Deployment":
        path = Path(path)
        if not path.exists():
            raise DeploymentError(
                f"no deployment at {path}: start a devnet (`trainchain devnet up`) "
                "or deploy (`trainchain deploy --rpc URL`), or pass --deployment"
            )
        try:
            return cls.model_validate_json(path.read_text())
        except (ValidationError, ValueError) as e:
            raise DeploymentError(f"{path} is not a valid deployment file: {e}") from None

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2) + "\n")
        tmp.replace(path)


# ---------------------------------------------------------------- RPC failover
def _short(e: BaseException) -> str:
    text = str(e)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if isinstance(e, requests.Timeout):
        return "timed out"
    return text.splitlines()[0][:120] if text else type(e).__name__


class _AllDown(Exception):
    """One pass over every URL failed (internal: retried, then RPCUnavailable)."""


class FailoverProvider(JSONBaseProvider):
    """JSON-RPC over several HTTP endpoints: the first that answers wins and stays active.

    A transport error (refused, timeout, HTTP 5xx) moves to the next URL; after a full
    pass fails, it waits `backoff * 2**pass` and tries again, `retries` passes in all,
    then raises RPCUnavailable listing every endpoint's error. JSON-RPC errors (reverts,
    'nonce too low') are answers, not failures: they pass through untouched.
    """

    def __init__(self, urls: list[str], retries: int = 5, backoff: float = 0.5, timeout: float = 10.0):
        super().__init__()
        if not urls:
            raise ValueError("FailoverProvider needs at least one URL")
        self.urls = list(urls)
        self.retries = retries
        self.backoff = backoff
        self._providers = [
            HTTPProvider(u, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
            for u in self.urls
        ]
        self.active = 0

    def __str__(self) -> str:
        return f"RPC failover {self.urls} (active {self.urls[self.active]})"

    def make_request(self, method, params):
        errors: dict[str, str] = {}
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries),
            wait=tenacity.wait_exponential(multiplier=self.backoff, max=30),
            retry=tenacity.retry_if_exception_type(_AllDown),
            reraise=True,
        )
        try:
            return retrying(self._one_pass, method, params, errors)
        except _AllDown:
            detail = "; ".join(f"{u}: {msg}" for u, msg in errors.items())
            raise RPCUnavailable(f"no RPC endpoint answers ({detail}) after {self.retries} attempt(s)") from None

    def _one_pass(self, method, params, errors: dict[str, str]):
        """Try every URL once, the active one first."""
        n = len(self._providers)
        for k in range(n):
            i = (self.active + k) % n
            try:
                response = self._providers[i].make_request(method, params)
            except TRANSPORT_ERRORS as e:
                errors[self.urls[i]] = _short(e)
                continue
            if i != self.active:
                log.warning("RPC failover: %s -> %s", self.urls[self.active], self.urls[i])
                self.active = i
            return response
        raise _AllDown()

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            return self.make_request("web3_clientVersion", []).get("result") is not None
        except RPCUnavailable:
            return False


def _log_item(entry) -> dict:
    """A decoded log as ChainClient.events / events_of give it: event, args (plain), blockNumber, transactionHash
    (hex), logIndex, address."""
    return {"event": entry["event"], "args": _plain(entry["args"]), "blockNumber": entry["blockNumber"],
            "transactionHash": "0x" + bytes(entry["transactionHash"]).hex(), "logIndex": entry["logIndex"],
            "address": entry["address"]}


def _plain(value):
    """AttributeDicts (nested) -> dicts; bytes stay bytes."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def revert_reason(e: Exception) -> str:
    """'execution reverted: stake: below minimum' -> 'stake: below minimum'."""
    msg = getattr(e, "message", None) or (e.args[0] if e.args else str(e))
    msg = str(msg)
    for prefix in ("execution reverted: ", "execution reverted"):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg.strip() or "reverted without a reason"


# ---------------------------------------------------------------- client
class ChainClient:
    """web3 + the deployed contracts + (optionally) the account that signs."""

    def __init__(
        self,
        rpc_urls: list[str] | None,
        deployment: Deployment | None,
        account: LocalAccount | None = None,
        *,
        tx_timeout: float = 120.0,
        tx_replace_after: float = 20.0,
        rpc_retries: int = 5,
        rpc_backoff: float = 0.5,
        rpc_timeout: float = 10.0,
        poll_interval: float = 0.5,
    ):
        urls = list(rpc_urls or (deployment.rpc_urls if deployment else None) or [DEFAULT_RPC])
        self.provider = FailoverProvider(urls, retries=rpc_retries, backoff=rpc_backoff, timeout=rpc_timeout)
        self.w3 = Web3(self.provider)
        self.deployment = deployment
        self.account = account
        self.tx_timeout = tx_timeout
        self.tx_replace_after = tx_replace_after
        self.poll_interval = poll_interval
        self._lock = threading.RLock()  # one transaction in flight per client: a clean nonce sequence
        self._next_nonce_local: int | None = None
        self._chain_checked = False

    @classmethod
    def from_config(cls, cfg, account: LocalAccount | None = None, require_deployment: bool = True) -> "ChainClient":
        """From a NodeConfig: its RPC URLs (else the deployment's) and deployment file."""
        if require_deployment or cfg.deployment_path.exists():
            deployment = Deployment.load(cfg.deployment_path)
        else:
            deployment = None
        return cls(
            cfg.rpc_urls,
            deployment,
            account,
            tx_timeout=cfg.tx_timeout,
            tx_replace_after=cfg.tx_replace_after,
            rpc_retries=cfg.rpc_retries,
            rpc_backoff=cfg.rpc_backoff,
            rpc_timeout=cfg.rpc_timeout,
            poll_interval=cfg.poll_interval,
        )

    # ------------------------------------------------------------ identity
    @property
    def address(self) -> str | None:
        return self.account.address if self.account else None

    @cached_property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def check_chain(self) -> None:
        """DeploymentError unless the RPC's chain is the one the deployment names, with code there."""
        if self._chain_checked or self.deployment is None:
            return
        if self.chain_id != self.deployment.chain_id:
            raise DeploymentError(
                f"the RPC endpoint is chain {self.chain_id} but the deployment is for chain "
                f"{self.deployment.chain_id}: wrong --rpc or stale deployment.json?"
            )
        address = self.deployment.addresses["TrainingRounds"]
        if not self.w3.eth.get_code(address):
            raise DeploymentError(
                f"no contract at TrainingRounds {address} on this chain: the devnet was "
                "restarted without its state, or the deployment.json is stale; redeploy"
            )
        self._chain_checked = True

    # ------------------------------------------------------------ contracts
    def contract(self, name: str):
        if self.deployment is None:
            raise DeploymentError("no deployment loaded: pass --deployment or run `trainchain devnet up`")
        self.check_chain()
        from node.chain.contracts import contract  # compiled artifacts (cached in build/)

        return contract(self.w3, name, self.deployment.addresses[name])

    @cached_property
    def stake_manager(self):
        return self.contract("StakeManager")

    @cached_property
    def registry(self):
        return self.contract("TaskRegistry")

    @cached_property
    def rounds(self):
        return self.contract("TrainingRounds")

    @cached_property
    def oracle(self):
        return self.contract("ModelOracle")

    @cached_property
    def epochs(self):
        """Epochs (#14): claims, slots and the checked aggregate of epoch tasks (None: a deployment without it)."""
        if self.deployment is None or "Epochs" not in self.deployment.addresses:
            return None
        return self.contract("Epochs")

    @cached_property
    def disputes(self):
        """Disputes (#15), or None when the deployment has none (then v1's majority vote decides fraud)."""
        if self.deployment is None or "Disputes" not in self.deployment.addresses:
            return None
        return self.contract("Disputes")

    @cached_property
    def appeals(self):
        """Appeals (#15): a jury vote's appeal to the whole verifier set; deployed with Disputes (None without)."""
        if self.deployment is None or "Appeals" not in self.deployment.addresses:
            return None
        return self.contract("Appeals")

    # ------------------------------------------------------------ reads
    def block_number(self) -> int:
        return self.w3.eth.block_number

    def balance(self, address: str | None = None) -> int:
        return self.w3.eth.get_balance(to_checksum_address(address or self._require_account("balance")))

    def call(self, fn, block: int | str = "latest") -> Any:
        """A view call; a revert becomes ChainError with the contract's reason."""
        try:
            return fn.call(block_identifier=block)
        except ContractLogicError as e:
            reason = revert_reason(e)
            raise ChainError(f"{fn.fn_name}: {reason}", reason) from None

    def wait_for_block(self, n: int, stop_event: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Block until block n exists. False if stopped or timed out first. RPC outages are waited out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if self.block_number() >= n:
                    return True
            except RPCUnavailable as e:
                log.warning("waiting for block %d: %s", n, e)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if stop_event is not None:
                if stop_event.wait(self.poll_interval):
                    return False
            else:
                time.sleep(self.poll_interval)

    def events(self, name: str, from_block: int | None = None, to_block: int | str = "latest", chunk: int = 10_000, **filters) -> list[dict]:
        """Decoded logs of event `name` (whichever contract declares it), oldest first.

        Each item: {"event", "args" (dict), "blockNumber", "transactionHash" (hex), "logIndex", "address"}.
        """
        target = self._contract_with_event(name)
        if from_block is None:
            from_block = self.deployment.deploy_block if self.deployment else 0
        start = from_block
        end = self.block_number() if to_block == "latest" else int(to_block)
        out: list[dict] = []
        lo = start
        while lo <= end:
            hi = min(end, lo + chunk - 1)
            logs = target.events[name].get_logs(from_block=lo, to_block=hi, argument_filters=filters or None)
            out += [_log_item(entry) for entry in logs]
            lo = hi + 1
        return out

    def events_of(self, names, from_block: int, to_block: int) -> list[dict]:
        """The decoded logs of every event in `names` between the two blocks, from ONE eth_getLogs over the
        contracts that declare them (not one per name, as `events` would), sorted by (block, log index); items as
        `events` gives them. For a watcher that follows many events block by block (the demo's transcript)."""
        from eth_utils import event_abi_to_log_topic

        wanted = {}  # (contract address, topic0) -> the contract's event
        for name in names:
            contract = self._contract_with_event(name)
            abi = next(i for i in contract.abi if i.get("type") == "event" and i.get("name") == name)
            wanted[(contract.address.lower(), bytes(event_abi_to_log_topic(abi)))] = contract.events[name]()
        addresses = sorted({to_checksum_address(a) for a, _ in wanted})
        out = []
        for log_entry in self.w3.eth.get_logs({"fromBlock": from_block, "toBlock": to_block, "address": addresses}):
            event = wanted.get((log_entry["address"].lower(), bytes(log_entry["topics"][0]))) if log_entry["topics"] else None
            if event is None:
                continue
            out.append(_log_item(event.process_log(log_entry)))
        return sorted(out, key=lambda e: (e["blockNumber"], e["logIndex"]))

    def _contract_with_event(self, name: str):
        for contract in (self.stake_manager, self.registry, self.rounds, self.oracle, self.disputes, self.appeals,
                         self.epochs):
            if contract is not None and any(item.get("type") == "event" and item.get("name") == name for item in contract.abi):
                return contract
        raise ChainError(f"no deployed contract declares an event {name!r}")

    # ------------------------------------------------------------ records (node/chain/records.py: decoded here, once)
    def get_task(self, task_id: int) -> Task:
        """TaskRegistry.tasks(task_id) + TrainingRounds.open_round(task_id), typed; PreflightError if
        there is no such task."""
        task = Task.from_abi(task_id, self.call(self.registry.functions.tasks(task_id)),
                             self.call(self.rounds.functions.open_round(task_id)))
        if not task.exists:
            raise PreflightError(f"task {task_id} does not exist (tasks: 1..{self.call(self.registry.functions.task_count())})")
        return task

    def get_round(self, round_id: int) -> Round:
        """TrainingRounds.rounds(round_id), typed (with n_final_committed once the ends are revealed: it
        counts only then); PreflightError if there is no such round."""
        rnd = Round.from_abi(round_id, self.call(self.rounds.functions.rounds(round_id)))
        if not rnd.exists:
            raise PreflightError(f"round {round_id} does not exist")
        if rnd.phase == Phase.ENDS_REVEALED:
            rnd = dataclasses.replace(rnd, n_final_committed=self.call(self.rounds.functions.n_final_committed(round_id)))
        return rnd

    def committee_of(self, round_id: int) -> list[str]:
        """The committee of a sealed round (empty before seal)."""
        return list(self.call(self.rounds.functions.committee_of(round_id)))

    # ------------------------------------------------------------ epochs (#14, contracts/Epochs.vy)
    def get_epoch(self, task_id: int, epoch: int | None = None):
        """Epochs.epochs(task, e) as a records.Epoch (e None: the task's current epoch, the one claims go to)."""
        from node.chain.records import Epoch

        if epoch is None:
            epoch = self.call(self.epochs.functions.current_epoch(task_id))
        return Epoch.from_abi(task_id, epoch, self.call(self.epochs.functions.epochs(task_id, epoch)))

    def slot_id(self, task_id: int, epoch: int, slot: int) -> int:
        """The round id of slot `slot` of epoch `epoch` (0: not claimed)."""
        return self.call(self.epochs.functions.slot_ids(task_id, epoch, slot))

    def get_slot(self, slot_id: int):
        """Where a round sits as an epoch slot (records.Slot; `.exists` False for a v1 round)."""
        from node.chain.records import Slot

        return Slot.from_abi(slot_id, self.call(self.epochs.functions.slots(slot_id)))

    def epoch_committee(self, task_id: int, epoch: int) -> list[str]:
        """The aggregation committee of an epoch (empty before open_aggregation)."""
        return list(self.call(self.epochs.functions.committee_of(task_id, epoch)))

    def claimed_slot_id(self, receipt) -> int:
        """The slot id a claim transaction got (its SlotClaimed event)."""
        for ev in self.epochs.events.SlotClaimed().process_receipt(receipt):
            return ev["args"]["slot_id"]
        raise ChainError("no SlotClaimed event in the claim's receipt")

    def latest_model(self, task_id: int) -> ModelVersion:
        """ModelOracle.latest(task_id), typed."""
        return ModelVersion.from_abi(self.call(self.oracle.functions.latest(task_id)))

    def committed_round_id(self, receipt) -> int:
        """The round id of a commit, from its RoundCommitted log."""
        from web3.logs import DISCARD

        events = self.rounds.events.RoundCommitted().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise ChainError("commit receipt holds no RoundCommitted event")
        return int(events[0]["args"]["round_id"])

    # ------------------------------------------------------------ epochs (#14): pre-flight and transactions
    def epoch_base(self, task_id: int) -> tuple[int, bytes]:
        """(current epoch, its base hash): Epochs.epoch_of (the canonical hash while not opened)."""
        epoch, base, *_ = self.call(self.epochs.functions.epoch_of(task_id))
        return int(epoch), bytes(base)

    def require_epoch_window(self, task_id: int, action: str, epoch: int | None = None, slot: int | None = None) -> Epoch:
        """PreflightError in words unless `action` (claim | commit | open_aggregation | commit_aggregate |
        post_aggregate | reveal_aggregate | finalize_epoch) is safe to send now on the epoch (node.rounds'
        epoch state machine at the head and the block after); returns the epoch record. `slot`: the slot
        index (claim, commit; post_aggregate: the poster's accepted slot)."""
        action = EpochAction(action)
        ep = self.get_epoch(task_id, epoch)
        current = self.call(self.epochs.functions.current_epoch(task_id))
        if ep.epoch != current:
            raise PreflightError(f"{action.value}: epoch {ep.epoch} of task {task_id} is not its current epoch ({current})")
        params = self.get_task(task_id).params
        if not params.is_epoch_task:
            raise PreflightError(f"task {task_id} is a one-slot identity task: it runs v1 rounds (TrainingRounds.commit), not epochs")
        kw = {"post_window": params.reveal_window, "n_slots": params.slots_per_epoch}
        if action == EpochAction.POST_AGGREGATE:
            kw["committee_size"] = len(self.epoch_committee(task_id, ep.epoch))
        reason = why_not_epoch(action, ep, self.block_number(), slot=slot, **kw)
        if reason:
            raise PreflightError(reason)
        return ep

    def claim(self, task_id: int, slot: int | None = None) -> int:
        """Claim slot `slot` (None: the lowest free one) of the task's current epoch; returns the slot id.
        Pre-flight: staked as trainer, the epoch's claim window, a free slot."""
        self.require_staked(1)
        epoch = self.call(self.epochs.functions.current_epoch(task_id))
        if slot is None:
            params = self.get_task(task_id).params
            free = self.get_epoch(task_id, epoch).free_slots(params.slots_per_epoch)
            if not free:
                raise PreflightError(f"claim: every slot of epoch {epoch} of task {task_id} is taken")
            slot = free[0]
        self.require_epoch_window(task_id, "claim", epoch, slot)
        receipt = self.transact(self.epochs.functions.claim(task_id, epoch, slot), what=f"claim slot {slot} of epoch {epoch}")
        return self.claimed_slot_id(receipt)

    def commit_slot(self, slot_id: int, base_hash: bytes, data_root: bytes, trace_root: bytes, proof0: list) -> dict:
        """Commit a claimed slot's hashes (Epochs.commit); from here the slot is a round: seal ... finalize
        with slot_id. Pre-flight: the caller's slot, the commit window, the epoch's base."""
        s = self.get_slot(slot_id)
        if not s.exists:
            raise PreflightError(f"commit: slot {slot_id} is not an epoch slot")
        if s.trainer != self._require_account("commit"):
            raise PreflightError(f"commit: slot {slot_id} was claimed by {s.trainer}, not {self.address}")
        ep = self.require_epoch_window(s.task_id, "commit", s.epoch, s.index)
        if bytes(base_hash) != ep.base_hash:
            raise PreflightError(f"commit: base hash 0x{bytes(base_hash).hex()} is not epoch {s.epoch}'s base 0x{ep.base_hash.hex()}")
        return self.transact(self.epochs.functions.commit(slot_id, base_hash, data_root, trace_root, proof0),
                             what=f"commit slot {slot_id}")

    def open_aggregation(self, task_id: int, epoch: int) -> dict:
        """Draw the epoch's aggregation committee (anyone, once A is final)."""
        self.require_epoch_window(task_id, "open_aggregation", epoch)
        return self.transact(self.epochs.functions.open_aggregation(task_id, epoch), what=f"open aggregation of epoch {epoch}")

    def commit_aggregate(self, task_id: int, epoch: int, state_hash: bytes, salt: bytes) -> dict:
        """A committee member commits to the aggregate hash it computed (node.protocol.compute_aggregate_commitment)."""
        from node.protocol import compute_aggregate_commitment

        who = self._require_account("commit_aggregate")
        if who not in self.epoch_committee(task_id, epoch):
            raise PreflightError(f"commit_aggregate: {who} is not in the aggregation committee of epoch {epoch} of task {task_id}")
        self.require_epoch_window(task_id, "commit_aggregate", epoch)
        commitment = compute_aggregate_commitment(task_id, epoch, who, state_hash, salt)
        return self.transact(self.epochs.functions.commit_aggregate(task_id, epoch, commitment), what=f"commit aggregate of epoch {epoch}")

    def post_aggregate(self, task_id: int, epoch: int, state_hash: bytes, cid: str) -> dict:
        """The trainer of an accepted slot posts the aggregate (its turn: node.protocol.compute_post_opens)."""
        who = self._require_account("post_aggregate")
        ep = self.get_epoch(task_id, epoch)
        mine = [i for i in ep.accepted_slots if self.get_slot(self.slot_id(task_id, epoch, i)).trainer == who]
        if not mine:
            raise PreflightError(f"post_aggregate: {who} holds no accepted slot of epoch {epoch} of task {task_id}")
        self.require_epoch_window(task_id, "post_aggregate", epoch, mine[0])
        return self.transact(self.epochs.functions.post_aggregate(task_id, epoch, state_hash, cid), what=f"post aggregate of epoch {epoch}")

    def reveal_aggregate(self, task_id: int, epoch: int, state_hash: bytes, salt: bytes) -> dict:
        """A committee member opens its commitment once the aggregate is posted."""
        self.require_epoch_window(task_id, "reveal_aggregate", epoch)
        return self.transact(self.epochs.functions.reveal_aggregate(task_id, epoch, state_hash, salt), what=f"reveal aggregate of epoch {epoch}")

    def finalize_epoch(self, task_id: int, epoch: int) -> dict:
        """Close the epoch (anyone, when node.rounds.is_finalize_epoch_allowed_at says so)."""
        self.require_epoch_window(task_id, "finalize_epoch", epoch)
        return self.transact(self.epochs.functions.finalize_epoch(task_id, epoch), what=f"finalize epoch {epoch}")


    # ------------------------------------------------------------ pre-flight checks
    def require_staked(self, role: int, who: str | None = None) -> None:
        """PreflightError('not staked as verifier ...') unless `who` has `role` with the minimum stake."""
        who = to_checksum_address(who or self._require_account("staking check"))
        if self.call(self.stake_manager.functions.is_eligible(who, role)):
            return
        name = ROLE_NAMES.get(role, str(role))
        have_role = self.call(self.stake_manager.functions.role_of(who))
        if have_role and have_role != role:
            raise PreflightError(f"{who} is staked as {ROLE_NAMES.get(have_role, have_role)}, not as {name} (one role per address)")
        amount = self.call(self.stake_manager.functions.stake_of(who))
        minimum = self.call(self.stake_manager.functions.min_stake(role))
        raise PreflightError(
            f"{who} is not staked as {name}: bonded {amount} wei, minimum {minimum} wei "
            f"(`trainchain stake {name} AMOUNT`)"
        )

    def require_in_committee(self, round_id: int, who: str | None = None) -> None:
        who = to_checksum_address(who or self._require_account("committee check"))
        committee = self.call(self.rounds.functions.committee_of(round_id))
        if who not in committee:
            raise PreflightError(f"{who} is not in the committee of round {round_id} (committee: {', '.join(committee) or 'not drawn yet'})")

    def require_window(self, round_id: int, action: str) -> Round:
        """PreflightError in words unless `action` is safe to send on round_id now (node.rounds'
        state machine: phase and windows at the head and the block after); returns the round.

        action: seal | reveal_starts | commit_verdict | reveal_ends | commit_final | reveal_verdict | finalize
        (commit_final: the second commit_verdict, of the final flag, after the ends).
        """
        rnd = self.get_round(round_id)
        action = Action(action)
        kw = {}
        if action == Action.SEAL:
            kw["seal_delay_blocks"] = self.get_task(rnd.task_id).params.seal_delay_blocks
        elif action == Action.REVEAL_ENDS:
            kw["committee_size"] = len(self.committee_of(round_id))
        reason = why_not(action, rnd, self.block_number(), **kw)
        if reason:
            raise PreflightError(reason)
        return rnd

    # ------------------------------------------------------------ writes
    def _require_account(self, what: str) -> str:
        if self.account is None:
            raise PreflightError(f"{what} needs an account: pass --account (and --password-file)")
        return self.account.address

    def transact(self, fn, value: int = 0, what: str | None = None, gas: int | None = None) -> dict:
        """Send a contract call as a transaction; return the receipt of the mined transaction.

        Reverts (at estimation or on-chain) raise ChainError(reason); a transaction not
        mined within tx_replace_after is re-sent with the same nonce and higher fees; none
        mined within tx_timeout raises TxTimeout.
        """
        what = what or getattr(fn, "fn_name", "transaction")
        sender = self._require_account(what)
        with self._lock:
            if gas is None:
                try:
                    gas = int(fn.estimate_gas({"from": sender, "value": value}) * GAS_MARGIN)
                except ContractLogicError as e:
                    reason = revert_reason(e)
                    raise ChainError(f"{what} would revert: {reason}", reason) from None
            tx = fn.build_transaction(
                {"from": sender, "value": value, "gas": gas, "nonce": 0, "chainId": self.chain_id, **self._fees()}
            )
            return self._send(tx, what)

    def send_value(self, to: str, value: int, what: str = "transfer") -> dict:
        """Plain ether transfer (funding dev accounts)."""
        sender = self._require_account(what)
        with self._lock:
            tx = {"from": sender, "to": to_checksum_address(to), "value": value, "gas": 21_000,
                  "chainId": self.chain_id, "nonce": 0, **self._fees()}
            return self._send(tx, what)

    def _fees(self) -> dict:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        try:
            tip = self.w3.eth.max_priority_fee
        except Web3RPCError:
            tip = 10**9
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}

    def _take_nonce(self, sender: str) -> int:
        pending = self.w3.eth.get_transaction_count(sender, "pending")
        nonce = max(pending, self._next_nonce_local or 0)
        self._next_nonce_local = nonce + 1
        return nonce

    def _send(self, tx: dict, what: str) -> dict:
        tx = dict(tx)
        try:
            tx["nonce"] = self._take_nonce(tx["from"])
            receipt = self._send_until_mined(tx, what)
        except BaseException:
            self._next_nonce_local = None  # unsure what reached the pool: re-read from the chain
            raise
        if receipt["status"] != 1:
            reason = self._replay_reason(tx, receipt["blockNumber"])
            raise ChainError(f"{what} reverted on-chain (tx {receipt['transactionHash'].hex()}): {reason}", reason)
        log.debug("%s mined in block %d (gas %d)", what, receipt["blockNumber"], receipt["gasUsed"])
        return receipt

    def _send_until_mined(self, tx: dict, what: str) -> dict:
        deadline = time.monotonic() + self.tx_timeout
        sent: list[bytes] = []  # every version of this nonce we sent: any may be mined
        while True:
            signed = self.account.sign_transaction(tx)
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
                sent.append(bytes(signed.hash))
            except Web3RPCError as e:
                msg = str(e).lower()
                if "already known" in msg or "already imported" in msg:
                    sent.append(bytes(signed.hash))
                elif "nonce too low" in msg:
                    receipt = self._first_receipt(sent)
                    if receipt is not None:
                        return receipt  # an earlier version made it
                    # Someone else used this nonce (another process with the key?): take the next.
                    log.warning("%s: nonce %d already used, re-reading the account's nonce", what, tx["nonce"])
                    self._next_nonce_local = None
                    tx["nonce"] = self._take_nonce(tx["from"])
                    continue
                elif "underpriced" in msg or "replacement" in msg:
                    self._bump(tx)
                    continue
                else:
                    raise ChainError(f"{what}: the node refused the transaction: {e}") from None
            except RPCUnavailable as e:
                sent.append(bytes(signed.hash))  # it may have arrived before the line dropped
                if time.monotonic() >= deadline:
                    raise TxTimeout(f"{what}: could not send before the {self.tx_timeout:.0f}s timeout: {e}") from None
                log.warning("%s: send failed (%s); retrying", what, e)
            receipt = self._wait_receipt(sent, min(deadline, time.monotonic() + self.tx_replace_after))
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise TxTimeout(
                    f"{what}: not mined within {self.tx_timeout:.0f}s (nonce {tx['nonce']}, "
                    f"{len(sent)} version(s) sent)"
                )
            log.warning("%s: not mined after %.0fs; replacing (nonce %d) with higher fees", what, self.tx_replace_after, tx["nonce"])
            self._bump(tx)

    def _bump(self, tx: dict) -> None:
        market = self._fees()
        tx["maxPriorityFeePerGas"] = max(int(tx["maxPriorityFeePerGas"] * FEE_BUMP) + 1, market["maxPriorityFeePerGas"])
        tx["maxFeePerGas"] = max(int(tx["maxFeePerGas"] * FEE_BUMP) + 1, market["maxFeePerGas"], tx["maxPriorityFeePerGas"])

    def _first_receipt(self, hashes: list[bytes]) -> dict | None:
        for h in hashes:
            try:
                receipt = self.w3.eth.get_transaction_receipt(h)
            except TransactionNotFound:
                continue
            except RPCUnavailable as e:
                log.warning("receipt lookup failed: %s", e)
                return None
            if receipt is not None and receipt.get("blockNumber") is not None:
                return receipt
        return None

    def _wait_receipt(self, hashes: list[bytes], until: float) -> dict | None:
        while True:
            receipt = self._first_receipt(hashes)
            if receipt is not None or time.monotonic() >= until:
                return receipt
            time.sleep(self.poll_interval)

    def _replay_reason(self, tx: dict, block: int) -> str:
        call = {k: tx[k] for k in ("from", "to", "value", "data", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=max(block - 1, 0))
        except ContractLogicError as e:
            return revert_reason(e)
        except Exception as e:  # the reason is a courtesy: never mask the failure itself
            return f"reverted (reason unavailable: {_short(e)})"
        return "reverted (out of gas or state changed within the block)"

