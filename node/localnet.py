"""A whole trainchain network on this machine: anvil, the contracts, one data dir per
node, and the nodes as separate processes. The one harness: `trainchain demo`, the node
tests (tests/nodes/test_rounds.py), bench/rounds.py and bench/soak.py run it as is; the
kits of the tests are layered on it (tests/roundkit.py: contract-level rounds with web3 on
`net.web3()`; tests/adversarial/nodekit.py: real nodes in-process, ticked block by block).

    net = LocalNet(root).start()                       # anvil (--state) + contracts
    v = [net.add_node(f"verifier{i}", net.dev[2 + i]) for i in range(3)]
    net.stake(v[0], "verifier", 2 * 10**18)
    task = net.create_task(spec, fund=10**18)
    proc = net.spawn_verifier(v[0]); net.spawn_trainer(t, task["task_id"], rounds=3)
    ...
    net.rounds_of(task["task_id"]); net.wait_finalized(task["task_id"], n=3, watch=v)
    net.stop()                                         # every process, then anvil

`LocalNet(root, block_time=None)`: anvil automines (one block per transaction; `mine(n)`),
what the contract-level and in-process kits use.

Each node gets `<root>/nodes/<name>/` with its encrypted keystore (light scrypt), a
password file, deployment.json and its own content store (`<datadir>/ipfs`), as on
separate machines: a node serves its store on a loopback gateway it advertises in
PeerDirectory, and fetches what it lacks from its peers' gateways (node/store/peers.py).
The harness's own store (`net.store()`: specs, datasets and genesis states of the tasks it
creates) is served by `net.seed` (a gateway every node is given with --ipfs-gateway), as a
task creator would publish through an IPFS gateway. `LocalNet(..., shared_store=True)`
links every data dir's `ipfs/` to one store instead (one machine's optimisation; also
what TRAINCHAIN_STORE_DIR does). Process output goes to `<root>/logs/<name>.log`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from node.chain.devnet import Anvil, dev_accounts

ROLES = {"trainer": 1, "verifier": 2}
# (deploy parameters, accounts) -> (anvil --state JSON right after the deploy, its Deployment): LocalNet._deploy
_DEPLOYED_CHAINS: dict[tuple, tuple[bytes, object]] = {}
DEMO_PASSWORD = "trainchain-demo"


@dataclass
class NodeDir:
    name: str
    address: str
    datadir: Path
    password_file: Path
    account: object  # LocalAccount (for the harness's own transactions)

    def flags(self) -> list[str]:
        return ["--datadir", str(self.datadir), "--account", self.address, "--password-file", str(self.password_file)]


def trainchain_command() -> list[str]:
    """The `trainchain` entry point of this Python (the venv's script, else via -c)."""
    script = Path(sys.executable).with_name("trainchain")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from node.cli import main; main()"]


class LocalNet:
    def __init__(self, root: str | Path, block_time: float = 1.0, deploy_params=None, n_accounts: int = 10,
                 shared_store: bool = False):
        self.root = Path(root)
        self.shared_store = shared_store
        self.seed = None  # GatewayServer over the harness's store (started with the chain)
        self._store = None
        self.block_time = block_time
        self.deploy_params = deploy_params
        self.dev = dev_accounts(n_accounts)
        self.anvil: Anvil | None = None
        self.deployment = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.nodes: dict[str, NodeDir] = {}
        self._dbs: dict = {}  # sqlite path -> NodeDB (node_db)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / "nodes").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ chain
    def start(self) -> "LocalNet":
        state = self.root / "anvil" / "state.json"
        template = _DEPLOYED_CHAINS.get(self._template_key())
        if template is not None:  # anvil loads the deployed chain from its --state file at start
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_bytes(template[0])
        self.anvil = Anvil(block_time=self.block_time, state=state, accounts=len(self.dev),
                           log_path=self.root / "logs" / "anvil.log")
        self.anvil.start()
        try:
            if template is None:
                self.deployment = self._deploy()
            else:
                self.deployment = template[1].model_copy(update={"rpc_urls": [self.anvil.url]})
                self.deployment.save(self.root / "deployment.json")
        except BaseException:
            self.anvil.stop()
            raise
        from node.store.gateway import GatewayServer

        self.seed = GatewayServer(self.store().local).start()
        return self

    def _template_key(self) -> tuple:
        return (repr(self.deploy_params), len(self.dev))

    def _deploy(self):
        """Deploy the contracts and keep the chain as this process's template for the same parameters: the next
        LocalNet starts from it (a copy of the same blocks, logs and nonces) instead of sending ~16 deploy
        transactions again — about a second of CPU each time, and a block each on an interval-mining chain."""
        import gzip

        from node.chain.devnet import deploy_contracts

        deployment = deploy_contracts(self.anvil.url, self.dev[0], self.deploy_params, out=self.root / "deployment.json")
        dump = self.web3().provider.make_request("anvil_dumpState", [])["result"]  # hex of gzipped --state JSON
        _DEPLOYED_CHAINS[self._template_key()] = (gzip.decompress(bytes.fromhex(dump[2:])), deployment)
        return deployment

    @property
    def url(self) -> str:
        return self.anvil.url

    def web3(self):
        """Plain web3 on this chain without the validation middleware (it asks eth_chainId before every
        request): what contract-level kits send with (dev accounts are unlocked in anvil)."""
        from web3 import HTTPProvider, Web3

        w3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 30}))
        w3.middleware_onion.remove("validation")
        return w3

    def mine(self, blocks: int = 1) -> None:
        self.web3().provider.make_request("anvil_mine", [hex(blocks)])

    def client(self, account=None, **kw):
        """A ChainClient on this network (short timeouts: a local chain answers fast)."""
        from node.chain.client import ChainClient

        opts = dict(tx_timeout=60, tx_replace_after=15, rpc_retries=3, rpc_backoff=0.3, poll_interval=0.2)
        opts.update(kw)
        return ChainClient([self.url], self.deployment, account, **opts)

    def store(self):
        """The harness's store (a task creator's): local, else fetched from the nodes' gateways."""
        if self._store is None:
            from node.config import load_config
            from node.store.peers import fetching_store

            cfg = load_config(datadir=self.root / "store", fetch_budget=60.0)
            self._store = fetching_store(cfg, self.client(), self.local_store())
        return self._store

    def local_store(self):
        """The harness's own embedded store, without fetching (`<root>/store`)."""
        from node.store import open_store

        return open_store(self.root / "store")

    def content_flags(self) -> list[str]:
        """What every node process is given: the seed gateway (the harness's store)."""
        return ["--ipfs-gateway", self.seed.url] if self.seed is not None else []

    # ------------------------------------------------------------ nodes
    def add_node(self, name: str, account, password: str = DEMO_PASSWORD) -> NodeDir:
        """A data dir with the account's encrypted keystore, a password file and deployment.json."""
        from node.keys import LIGHT_KDF, Keystore

        datadir = self.root / "nodes" / name
        datadir.mkdir(parents=True, exist_ok=True)
        address = Keystore(datadir, scrypt_n=LIGHT_KDF).import_key(account.key, password)
        password_file = datadir / "password.txt"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.deployment.save(datadir / "deployment.json")
        if self.shared_store:
            shared = self.root / "store" / "ipfs"
            shared.mkdir(parents=True, exist_ok=True)
            link = datadir / "ipfs"
            if not link.exists():
                link.symlink_to(shared, target_is_directory=True)
        node = NodeDir(name, address, datadir, password_file, account)
        self.nodes[name] = node
        return node

    def stake(self, node: NodeDir, role: str, amount: int) -> None:
        chain = self.client(node.account)
        chain.transact(chain.stake_manager.functions.stake(ROLES[role]), value=amount, what=f"stake {role}")

    def add_staked_node(self, name: str, dev_index: int, role: str, amount: int, config: str | None = None) -> NodeDir:
        """add_node for dev account `dev_index`, its config.toml (if given), staked as `role`: ready to spawn."""
        node = self.add_node(name, self.dev[dev_index])
        if config is not None:
            (node.datadir / "config.toml").write_text(config)
        self.stake(node, role, amount)
        return node

    def node_db(self, node: NodeDir, role: str):
        """The node's sqlite (`<datadir>/<role>.sqlite`; readable while the node process writes it: WAL),
        or None before the node has made it; one handle per file."""
        from node.roles.db import NodeDB

        path = node.datadir / f"{role}.sqlite"
        if path not in self._dbs:
            if not path.exists():
                return None
            self._dbs[path] = NodeDB(path)
        return self._dbs[path]

    def create_task(self, spec, fund: int, creator=None) -> dict:
        """Spec + genesis into the harness's store, then the funded create_task (node.tasks)."""
        from node.tasks import create_task

        return create_task(self.client(creator or self.dev[0]), self.store(), spec, fund)

    # ------------------------------------------------------------ what the chain says
    def rounds_of(self, task_id: int) -> list:
        """Every round of the task (node.chain.records.Round), in commit order."""
        chain = self.client()
        return [chain.get_round(e["args"]["round_id"]) for e in chain.events("RoundCommitted", task_id=task_id)]

    def stake_of(self, address: str) -> int:
        chain = self.client()
        return chain.call(chain.stake_manager.functions.stake_of(address))

    def penalties(self, round_id: int) -> list[dict]:
        """The PenaltyApplied events of a round (args)."""
        return [e["args"] for e in self.client().events("PenaltyApplied", round_id=round_id)]

    def wait_finalized(self, task_id: int, n: int, watch=(), timeout: float = 150.0, interval: float = 0.5) -> list:
        """The task's finalized rounds, once there are at least n; the processes in `watch` (NodeDirs or
        names) must not die meanwhile. AssertionError with every process's log tail on timeout."""
        from node.rounds import Phase

        names = [getattr(w, "name", w) for w in watch]

        def done():
            if names:
                self.check_alive(*names)
            finished = [r for r in self.rounds_of(task_id) if r.phase == Phase.FINALIZED]
            return finished if len(finished) >= n else None

        try:
            return wait_until(done, timeout, interval=interval, what=f"{n} finalized round(s) of task {task_id}")
        except TimeoutError:
            logs = "\n".join(f"--- {name}\n{self.log_tail(name, 15)}" for name in self.procs)
            raise AssertionError(f"rounds of task {task_id} did not finalize:\n{logs}") from None

    # ------------------------------------------------------------ processes
    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        """Start a process with its output appended to logs/<name>.log."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"localnet: {name} is already running")
        log = open(self.root / "logs" / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.root, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def spawn_verifier(self, node: NodeDir, *extra: str) -> subprocess.Popen:
        return self.spawn(node.name, [*trainchain_command(), "verifier", "run", *node.flags(), *self.content_flags(),
                                      "--no-progress", *extra])

    def spawn_trainer(self, node: NodeDir, task_id: int, rounds: int | None = None, *extra: str) -> subprocess.Popen:
        args = [*trainchain_command(), "trainer", "run", "--task", str(task_id), *node.flags(), *self.content_flags(),
                "--no-progress"]
        if rounds is not None:
            args += ["--rounds", str(rounds)]
        return self.spawn(node.name, args + list(extra))

    def spawn_adversary(self, node: NodeDir, task_id: int, *extra: str) -> subprocess.Popen:
        """A dishonest trainer (node.adversaries): e.g. "--skip-segment", "7" or "--withhold"."""
        args = [sys.executable, "-m", "node.adversaries", "--task", str(task_id), *node.flags(), *self.content_flags(),
                *extra]
        return self.spawn(node.name, args)

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill_process(self, name: str) -> int | None:
        """SIGKILL: as if the machine lost power (no clean shutdown)."""
        return self.stop_process(name, signal.SIGKILL)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.root / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self, *names: str) -> None:
        """RuntimeError with the log tail if a node process died."""
        for name in names or list(self.procs):
            proc = self.procs[name]
            if proc.poll() is not None and proc.returncode != 0:
                raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{self.log_tail(name)}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every node at once (they finish their step), then anvil."""
        running = {n: p for n, p in self.procs.items() if p.poll() is None}
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.seed is not None:
            self.seed.stop()
            self.seed = None
        if self.anvil is not None:
            self.anvil.stop()
        for db in self._dbs.values():
            db.close()
        self._dbs.clear()

    def __enter__(self) -> "LocalNet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition", on_poll=None):
    """Poll predicate() until it returns a truthy value (returned) or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
