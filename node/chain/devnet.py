"""A local chain: anvil from the project's npm install, the contracts, funded dev accounts.

    with Anvil(block_time=1) as anvil:            # free port; killed on exit
        dep = deploy_contracts(anvil.url, dev_accounts(1)[0])

    devnet_up(datadir)    # detached anvil (state kept in <datadir>/devnet/), deployment.json
    devnet_down(datadir)

anvil is started with `--state` so a devnet (or a test that restarts the RPC mid-round)
comes back with its chain; SIGTERM makes anvil write the state before it exits.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount

from node.errors import DevnetError
from node.tools import PROJECT_ROOT, find_binary, free_port

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's default
ANVIL_CHAIN_ID = 31337
DEV_FUNDING = 100 * 10**18  # what `devnet up` sends each keystore account of the data dir


def anvil_binary() -> str:
    """TRAINCHAIN_ANVIL, else node_modules/.bin/anvil of the project, else anvil on PATH."""
    found = find_binary("anvil", "TRAINCHAIN_ANVIL")
    if found is None:
        raise DevnetError("anvil not found: run `make setup` (installs it into node_modules/.bin)")
    return found


def dev_accounts(n: int = 10) -> list[LocalAccount]:
    """anvil's pre-funded accounts (10 000 ETH each), from its default mnemonic."""
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)]


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    try:
        r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return r.ok and "result" in r.json()
    except (requests.RequestException, ValueError):
        return False


class Anvil:
    """One anvil process. `stop()` (SIGTERM) dumps `--state`; `restart()` reloads it on the same port."""

    def __init__(
        self,
        port: int | None = None,
        block_time: float | None = 1.0,
        state: str | Path | None = None,
        accounts: int = 10,
        chain_id: int = ANVIL_CHAIN_ID,
        log_path: str | Path | None = None,
        detached: bool = False,
        extra_args: tuple[str, ...] = (),
    ):
        self.port = port or free_port()
        self._port_chosen_here = port is None  # free to move before the first start (another process took it)
        self.block_time = block_time
        self.state = Path(state) if state else None
        self.accounts = accounts
        self.chain_id = chain_id
        self.log_path = Path(log_path) if log_path else None
        self.detached = detached
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [anvil_binary(), "--port", str(self.port), "--host", "127.0.0.1", "--accounts", str(self.accounts),
               "--chain-id", str(self.chain_id), "--mnemonic", ANVIL_MNEMONIC, "--silent"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        if self.state:
            cmd += ["--state", str(self.state)]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = 15.0) -> "Anvil":
        # a node already answering on the port is someone else's (free_port's port can be taken between its
        # check and our bind, e.g. by the contract suite's anvil running beside the Python suite): our anvil would
        # exit on the bind while the readiness poll below got its answers from the other chain, same dev keys
        while rpc_ready(self.url, timeout=0.5):
            if not (self._port_chosen_here and self.proc is None):
                raise DevnetError(f"port {self.port} already serves an RPC node that is not this anvil")
            self.port = free_port()
        if self.state:
            self.state.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=self.detached,
            )
        finally:
            if self.log_path:
                out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevnetError(f"anvil exited with code {self.proc.returncode} (port {self.port} taken?)"
                                  + (f"; log: {self.log_path}" if self.log_path else ""))
            if rpc_ready(self.url, timeout=0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise DevnetError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: anvil dumps --state
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> "Anvil":
        """Stop, optionally stay down a while (an RPC outage), start again on the same port."""
        self.stop()
        time.sleep(down_for)
        return self.start()

    def __enter__(self) -> "Anvil":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- deploy
def deploy_contracts(rpc_url: str | list[str], deployer: LocalAccount, params=None,
                     out: str | Path | None = None):
    """Deploy and wire the contracts (node.chain.contracts.deploy); return (and write to `out`) the Deployment."""
    from node.chain.client import ChainClient, Deployment
    from node.chain.contracts import DeployParams, deploy

    urls = [rpc_url] if isinstance(rpc_url, str) else list(rpc_url)
    chain = ChainClient(urls, None, deployer)
    start_block = chain.block_number()
    addresses = deploy(chain.w3, deployer, params or DeployParams())
    deployment = Deployment(chain_id=chain.chain_id, rpc_urls=urls, addresses=dict(addresses), deploy_block=start_block)
    if out is not None:
        deployment.save(out)
    return deployment


def fund_accounts(rpc_url: str, funder: LocalAccount, addresses: list[str], amount: int = DEV_FUNDING) -> None:
    """Send `amount` wei to each address that holds less than that."""
    from node.chain.client import ChainClient

    chain = ChainClient([rpc_url], None, funder)
    for address in addresses:
        if chain.balance(address) < amount:
            chain.send_value(address, amount, what=f"fund {address}")


# ---------------------------------------------------------------- `trainchain devnet`
def devnet_dir(datadir: str | Path) -> Path:
    return Path(datadir) / "devnet"


def _read_info(datadir) -> dict | None:
    path = devnet_dir(datadir) / "anvil.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_anvil(pid: int) -> bool:
    try:
        return "anvil" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def devnet_up(datadir: str | Path, port: int | None = None, block_time: float = 1.0, params=None,
              fund: list[str] | None = None) -> dict:
    """Start a detached anvil with its state in the data dir, deploy (first time), fund, write deployment.json.

    Restarting a devnet whose state file exists reloads the chain and keeps the deployment.
    """
    from node.chain.client import Deployment

    datadir = Path(datadir)
    info = _read_info(datadir)
    if info and _is_anvil(info["pid"]) and rpc_ready(info["url"]):
        raise DevnetError(f"a devnet already runs for {datadir} at {info['url']} (pid {info['pid']}); "
                          "`trainchain devnet down` first")
    ddir = devnet_dir(datadir)
    state = ddir / "state.json"
    deployment_path = datadir / "deployment.json"
    if port is None and state.exists() and deployment_path.exists():
        port = _port_of(deployment_path)  # same URL as before, so running nodes reconnect
    anvil = Anvil(port=port, block_time=block_time, state=state, log_path=ddir / "anvil.log", detached=True)
    anvil.start()
    info = {"pid": anvil.proc.pid, "port": anvil.port, "url": anvil.url, "state": str(state), "block_time": block_time}
    (ddir / "anvil.json").write_text(json.dumps(info, indent=2) + "\n")
    try:
        funder = dev_accounts(1)[0]
        fast = float(block_time).is_integer()
        if fast:  # mine set-up transactions instantly, then back to the block time
            _rpc(anvil.url, "evm_setAutomine", [True])
        deployment = None
        if deployment_path.exists():
            try:
                deployment = Deployment.load(deployment_path)
                from node.chain.client import ChainClient

                ChainClient([anvil.url], deployment).check_chain()
                deployment = deployment.model_copy(update={"rpc_urls": [anvil.url]})
                deployment.save(deployment_path)
            except Exception:
                deployment = None  # stale (another chain or lost state): deploy afresh
        if deployment is None:
            deployment = deploy_contracts(anvil.url, funder, params, out=deployment_path)
        if fund:
            fund_accounts(anvil.url, funder, fund)
        if fast:
            _rpc(anvil.url, "evm_setIntervalMining", [int(block_time)])
    except BaseException:
        anvil.stop()
        (ddir / "anvil.json").unlink(missing_ok=True)
        raise
    anvil.proc = None  # detached: it outlives this process; `devnet down` stops it
    return {**info, "deployment": deployment.model_dump(), "funded": list(fund or [])}


def _port_of(deployment_path: Path) -> int | None:
    from urllib.parse import urlparse

    try:
        port = urlparse(json.loads(deployment_path.read_text())["rpc_urls"][0]).port
    except (OSError, ValueError, KeyError, IndexError):
        return None
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as anvil binds: TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None  # taken now: take a free one
    return port


def _rpc(url: str, method: str, params: list) -> object:
    r = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
    body = r.json()
    if "error" in body:
        raise DevnetError(f"anvil {method}: {body['error'].get('message')}")
    return body.get("result")


def devnet_down(datadir: str | Path, timeout: float = 10.0) -> bool:
    """SIGTERM the devnet's anvil (it dumps its state); False if none was running."""
    info = _read_info(datadir)
    path = devnet_dir(datadir) / "anvil.json"
    if not info or not _is_anvil(info["pid"]):
        path.unlink(missing_ok=True)
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_anvil(info["pid"]):
        try:
            os.waitpid(info["pid"], os.WNOHANG)  # reap if it is our child
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if _is_anvil(info["pid"]):
        os.kill(info["pid"], signal.SIGKILL)
    path.unlink(missing_ok=True)
    return True


def devnet_status(datadir: str | Path) -> dict:
    """{"running", "url", "pid", "block", "chain_id", "addresses"}."""
    from node.chain.client import Deployment

    info = _read_info(datadir) or {}
    running = bool(info) and _is_anvil(info["pid"]) and rpc_ready(info["url"])
    out = {"running": running, "url": info.get("url"), "pid": info.get("pid") if running else None,
           "block": None, "chain_id": None, "addresses": None}
    if running:
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(info["url"]))
        out["block"] = w3.eth.block_number
        out["chain_id"] = w3.eth.chain_id
    dep_path = Path(datadir) / "deployment.json"
    if dep_path.exists():
        try:
            out["addresses"] = Deployment.load(dep_path).addresses
        except Exception:
            pass
    return out
