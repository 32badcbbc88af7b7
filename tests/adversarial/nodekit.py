"""Real nodes on a devnet, driven tick by tick: the node-level adversarial and fault cases.

    with NodeNet.start(tmp_path) as net:          # a LocalNet (automine) + a tiny task, everyone staked
        net.make_trainer(CheatingTrainer, skip_segments={7})
        for i in range(3):
            net.make_verifier(i, MisbehavingVerifier if i == 2 else None, **({"mode": "lazy"} if i == 2 else {}))
        result = net.run_round()      # ticks every node, mines one block per pass, until finalized
        result.outcome, result.stake_delta[net.trainer.address]

The chain is node/localnet.py's LocalNet with anvil automining (`net.local`: the contracts,
the dev accounts, `client()`). Every node is the real TrainerNode / VerifierNode (or a subclass
from node/adversaries/) with its own ChainClient (signing with its own key), its own sqlite
NodeDB and work dir; they share the LocalNet's embedded content store, which stands in for the
IPFS network. A tiny GPT (tiny preset: 1 layer,
d=32) trains 16 steps per round in 8 segments of 2 through the real engine; verifiers
replay through node.engine. Instead of threads with wall-clock polling, `step()` calls each
node's tick() once and mines one block: deterministic, and as fast as the work itself.
Errors a tick raises are what run_loop would retry: they are counted, not fatal.

Nodes are built as `trainchain trainer run` / `verifier run` build them (node/cli/run.py):
each with its own NodeMetrics, and the trainer trains ahead (pipeline=True, the CLI's default)
on its background thread — so that thread's training really runs beside the verifiers'
replays in this one process, as it did when issue #19's honest trainer was convicted.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from node import protocol
from node.rounds import compute_seal_block

log = logging.getLogger("trainchain.adversarial")

CORPUS_BYTES = 200_000


class Killed(BaseException):
    """Raised inside a node to stand for kill -9: BaseException, so no node code catches it."""
STAKE = 2 * 10**18


def tiny_spec(corpus_cid: str):
    from node.engine.spec import TaskSpec

    return TaskSpec.preset("tiny", corpus_cid).with_(
        name="adversarial", steps_per_round=16, segment_steps=2,
        protocol={"samples": 2, "committee_size": 3, "quorum": 2, "seal_delay_blocks": 1, "reveal_window": 12,
                  "commit_verdicts_window": 12, "reveal_verdicts_window": 12})


@dataclass
class RoundReport:
    round_id: int
    outcome: int
    samples: list[int]
    committee: list[str]
    stake_delta: dict[str, int]
    penalties: list[dict]          # PenaltyApplied args
    errors: dict[str, list[str]]   # node name -> tick errors seen (retried)
    passes: int

    @property
    def outcome_name(self) -> str:
        from node.rounds import outcome_name

        return outcome_name(self.outcome)


@dataclass
class NodeNet:
    local: object                  # node.localnet.LocalNet: anvil (automine), the contracts, the store
    root: Path
    accounts: list                 # LocalAccount: [deployer, trainer, v1, v2, v3]
    store: object
    spec: object
    task_id: int
    trainer: object = None
    verifiers: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    kills: list = field(default_factory=list)
    hook: object = None            # hook(net) before every pass: fault injection

    # ------------------------------------------------------------ set-up
    @classmethod
    def start(cls, root: Path, n_verifiers: int = 3, disputes: bool = False) -> "NodeNet":
        """A LocalNet under `root` (unbonding 5 blocks; with `disputes`, Disputes deployed: no majority vote for
        fraud), a tiny task funded for 20 rounds, the trainer and the verifiers staked. Stop it with `stop()`
        (or use it as a context manager)."""
        from node.chain.contracts import DeployParams
        from node.chain.records import TaskParams
        from node.engine.dataset import build_dataset, demo_corpus_paths
        from node.localnet import LocalNet
        from node.tasks import create_task

        root = Path(root)
        # minimums = STAKE: a round reserves the whole stake, the base of its slashes (#13, attack 7)
        local = LocalNet(root, block_time=None, deploy_params=DeployParams(
            unbonding_blocks=5, min_trainer_stake=STAKE, min_verifier_stake=STAKE, disputes=disputes)).start()
        try:
            store = local.local_store()
            corpus = build_dataset(demo_corpus_paths(limit_bytes=CORPUS_BYTES), store, shard_bytes=100_000)
            spec = tiny_spec(corpus)
            net = cls(local, root, local.dev[:2 + n_verifiers], store, spec, task_id=0)
            fund = TaskParams.from_spec(spec).round_cost * 20
            net.task_id = create_task(net.chain, store, spec, fund=fund)["task_id"]
            for i, acct in enumerate(net.accounts[1:]):
                chain = net.client(acct)
                role = protocol.TRAINER if i == 0 else protocol.VERIFIER
                chain.transact(chain.stake_manager.functions.stake(role), value=STAKE, what="stake")
        except BaseException:
            local.stop()
            raise
        return net

    def stop(self) -> None:
        self.local.stop()

    def __enter__(self) -> "NodeNet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def anvil(self):
        return self.local.anvil

    @property
    def deployment(self):
        return self.local.deployment

    def client(self, account):
        """A ChainClient signing as `account`, with timeouts for a chain that answers in milliseconds."""
        return self.local.client(account, tx_timeout=30, tx_replace_after=5, rpc_retries=2, rpc_backoff=0.1,
                                 poll_interval=0.05)

    def make_trainer(self, cls=None, workdir: Path | None = None, **kw):
        """The trainer (dev account 1) as `cls` (default TrainerNode); a second call restarts it on
        the same sqlite DB and work dir, as a node process restarted after a kill would."""
        from node.roles.db import NodeDB
        from node.roles.metrics import NodeMetrics
        from node.roles.trainer import TrainerNode

        cls = cls or TrainerNode
        acct = self.accounts[1]
        kw = {"pipeline": True, **kw}  # the CLI's default (--no-pipeline turns it off)
        node = cls(self.client(acct), self.store, NodeDB(self.root / "trainer" / "trainer.sqlite"),
                   self.task_id, workdir or self.root / "trainer", metrics=NodeMetrics("trainer"), show_progress=False,
                   **kw)
        node.prepare()
        node._remake = lambda: self.make_trainer(cls, workdir, **kw)
        self.trainer = node
        return node

    def make_verifier(self, i: int, cls=None, **kw):
        """Verifier i (0-based) as `cls` (default VerifierNode); replaces any earlier one of i."""
        from node.roles.db import NodeDB
        from node.roles.metrics import NodeMetrics
        from verifier.node import VerifierNode

        cls = cls or VerifierNode
        acct = self.accounts[2 + i]
        node = cls(self.client(acct), self.store,
                   NodeDB(self.root / f"verifier-{i}" / "verifier.sqlite"), self.root / f"verifier-{i}",
                   metrics=NodeMetrics("verifier"), show_progress=False, **kw)
        node.prepare()
        node._remake = lambda: self.make_verifier(i, cls, **kw)
        while len(self.verifiers) <= i:
            self.verifiers.append(None)
        self.verifiers[i] = node
        return node

    @property
    def nodes(self) -> list:
        return [n for n in [self.trainer, *self.verifiers] if n is not None]

    @property
    def addresses(self) -> list[str]:
        return [a.address for a in self.accounts[1:]]

    # ------------------------------------------------------------ reads
    @property
    def chain(self):
        if "_admin" not in self.__dict__:
            self.__dict__["_admin"] = self.client(self.accounts[0])
        return self.__dict__["_admin"]

    def stakes(self) -> dict[str, int]:
        sm = self.chain.stake_manager.functions
        return {a: self.chain.call(sm.stake_of(a)) for a in self.addresses}

    def open_round(self) -> int:
        return self.chain.get_task(self.task_id)["open_round"]

    def mine(self, n: int = 1) -> None:
        self.chain.w3.provider.make_request("anvil_mine", [hex(n)])

    def steer_samples(self, want, tries: int = 200) -> None:
        """Make the next seal block's hash draw samples with want(samples) true: when self.mine()
        is about to mine a committed round's seal block, mine it under anvil snapshots with
        different timestamps until the draw fits (luck, made deterministic). A seal block mined
        by a transaction instead is left as it is: callers keep a fallback loop."""
        real_mine = self.mine
        w3 = self.chain.w3

        def mine(n: int = 1) -> None:
            rid = self.open_round()
            rnd = self.chain.get_round(rid) if rid else None
            head = self.chain.block_number()
            if rnd is None or rnd.phase != protocol.Phase.COMMITTED:
                return real_mine(n)
            params = self.chain.get_task(self.task_id).params
            seal_block = compute_seal_block(rnd.commit_block, params.seal_delay_blocks)
            if not head < seal_block <= head + n:
                return real_mine(n)
            if seal_block - 1 > head:
                real_mine(seal_block - 1 - head)
            M = params.steps_per_round // params.segment_steps
            parent_ts = w3.eth.get_block("latest")["timestamp"]
            for i in range(tries):
                snap = w3.provider.make_request("evm_snapshot", [])["result"]
                w3.provider.make_request("evm_setNextBlockTimestamp", [parent_ts + 1 + i])
                real_mine(1)
                seed = protocol.compute_seed(bytes(w3.eth.get_block(seal_block)["hash"]), rid)
                if want(protocol.compute_samples(seed, M, params["samples"])):
                    break
                w3.provider.make_request("evm_revert", [snap])
            else:
                real_mine(1)
            if head + n > seal_block:
                real_mine(head + n - seal_block)

        self.mine = mine

    # ------------------------------------------------------------ driving
    def step(self, mine: bool = True) -> None:
        """Each node ticks once (errors are counted and retried next pass, as run_loop does); one block.
        A node that raises Killed is dropped mid-tick and restarted from its DB (a kill -9 + restart)."""
        for node in list(self.nodes):
            name = f"{type(node).__name__}:{node.address[:8]}"
            try:
                node.tick()
            except Killed as k:
                self.kills.append(f"{name} {k}")
                log.info("%s killed (%s); restarting it from its DB", name, k)
                node._remake()
            except Exception as exc:  # noqa: BLE001 - what run_loop would log and retry
                self.errors.setdefault(name, []).append(f"{type(exc).__name__}: {exc}"[:200])
                log.info("tick of %s failed: %s", name, exc)
        if mine:
            self.mine()

    # ------------------------------------------------------------ faults
    def kill_at(self, node, what: str, when: str = "before") -> None:
        """The node dies the first time it sends `what` (commit, seal, reveal_starts, commit_verdict, ...):
        just before the transaction leaves, or just after it is mined (before the node records it)."""
        real, target = node.chain.transact, what

        def transact(fn, value: int = 0, what: str | None = None, gas: int | None = None):
            if what == target and not state["done"]:
                state["done"] = True
                if when == "before":
                    raise Killed(f"before sending {what}")
                receipt = real(fn, value=value, what=what, gas=gas)
                raise Killed(f"after {what} was mined (block {receipt['blockNumber']})")
            return real(fn, value=value, what=what, gas=gas)

        state = {"done": False}
        node.chain.transact = transact

    @contextmanager
    def cut_off(self, node):
        """The node's RPC endpoint refuses connections (a dead port) inside the block."""
        from web3 import HTTPProvider

        from node.tools import free_port

        provider = node.chain.provider
        saved = provider._providers
        provider._providers = [HTTPProvider(f"http://127.0.0.1:{free_port()}", exception_retry_configuration=None)
                               for _ in saved]
        try:
            yield
        finally:
            provider._providers = saved

    def run_until(self, done, max_passes: int = 200) -> int:
        for i in range(max_passes):
            if done():
                return i
            if self.hook is not None:
                self.hook(self)
            self.step()
        raise AssertionError(f"nodekit: not done after {max_passes} passes; errors: {self.errors}")

    def round_finished(self, round_id: int) -> bool:
        return self.chain.get_round(round_id).phase == protocol.Phase.FINALIZED

    def run_round(self, max_passes: int = 200) -> RoundReport:
        """From a free task: ticks until a round is committed, then until it is finalized and every node saw it."""
        before = self.stakes()
        start_block = self.chain.block_number()
        self.errors = {}
        passes = self.run_until(lambda: self.next_round() is not None, max_passes)
        round_id = self.next_round()
        self.__dict__["_last_reported"] = round_id
        passes += self.run_until(lambda: self.round_finished(round_id), max_passes)
        for _ in range(3):  # let every node conclude (claim, clean up)
            self.step()
        rnd = self.chain.get_round(round_id)
        penalties = [e["args"] for e in self.chain.events("PenaltyApplied", start_block, round_id=round_id)]
        after = self.stakes()
        return RoundReport(
            round_id, rnd["outcome"], list(self.chain.call(self.chain.rounds.functions.round_samples_of(round_id))),
            list(self.chain.call(self.chain.rounds.functions.committee_of(round_id))),
            {a: after[a] - before[a] for a in after}, penalties, dict(self.errors), passes)

    def next_round(self) -> int | None:
        """The first round of the task committed after the last one run_round reported."""
        last = self.__dict__.get("_last_reported", 0)
        ids = [e["args"]["round_id"] for e in self.chain.events("RoundCommitted", task_id=self.task_id)]
        later = [i for i in ids if i > last]
        return later[0] if later else None
