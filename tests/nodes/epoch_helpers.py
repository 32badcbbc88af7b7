"""An epoch task with real nodes in this process (issue #14), for tests/nodes/test_epoch_nodes.py and the
adversarial epoch cases (imported by name: tests/ has no packages).

    with EpochNet.start(tmp_path, n_slots=2, max_slots=2, trainer_cls={1: CheatingTrainer}, trainer_kw={1: {...}}) as net:
        net.run(epochs=2)             # ticks every node once per pass, mines a block, until the trainers are done
        net.chain.get_epoch(net.task_id, 0).accepted_slots

Every node is the real TrainerNode / VerifierNode (or a subclass) with its own ChainClient (its own key), its own
sqlite and work dir; they share one embedded store (the IPFS network's stand-in). Each trainer serves the final
handoff (node/roles/handoff.py) on a gateway of its own, advertised in PeerDirectory, as `trainer run` does
(`final_handoff=False`: no gateways; co-trainers learn final states at the ends reveals). The chain is a LocalNet with
anvil automining (node/localnet.py). Driven tick by tick as tests/adversarial/nodekit.py does: deterministic,
and as fast as the work. The trainers train ahead (the CLI's
default). Windows are short, in blocks: anvil automines one block per transaction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from node.engine.runtime import compute_pin_env, is_torch_loaded
from node.engine.spec import TaskSpec

STAKE = 2 * 10**18

if not is_torch_loaded():  # the nodes run in this process: pin it before anything loads torch
    os.environ.update(compute_pin_env(TaskSpec.default().runtime))


def epoch_spec(corpus_cid: str, n_slots: int, inner_moments: str = "average"):
    """The tiny model, slots of 8 steps in 4 segments, DiLoCo's outer step, short windows."""
    return TaskSpec.preset("tiny", corpus_cid).with_(
        name="epochs", steps_per_round=8, segment_steps=2,
        epochs={"slots": n_slots, "outer_lr": 0.7, "outer_momentum": 0.9, "inner_moments": inner_moments,
                "claim_window": 4, "train_window": 6},
        # the slots' and the aggregation's transactions all fall into every window (one block each)
        protocol={"samples": 1, "committee_size": 3, "quorum": 2, "seal_delay_blocks": 1, "reveal_window": 8,
                  "commit_verdicts_window": 12, "reveal_verdicts_window": 12})


@dataclass
class EpochNet:
    local: object  # the LocalNet
    store: object
    spec: object
    task: dict
    chain: object  # the deployer's client (reads, mining)
    trainers: list = field(default_factory=list)
    verifiers: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    gateways: list = field(default_factory=list)  # the trainers' (the final handoff's route)

    @property
    def task_id(self) -> int:
        return self.task["task_id"]

    @classmethod
    def start(cls, root: Path, n_slots: int, max_slots: int, trainer_cls: dict | None = None,
              trainer_kw: dict | None = None, disputes: bool = False, verifier_cls: dict | None = None,
              verifier_kw: dict | None = None, inner_moments: str = "average", final_handoff: bool = True) -> "EpochNet":
        """A LocalNet (automining; with `disputes`, Disputes deployed), the dataset, the task, n_slots staked trainers
        (dev 1..) and three verifiers, all prepared; `trainer_cls` / `trainer_kw` (`verifier_cls` / `verifier_kw`): per
        trainer (verifier) index, a TrainerNode (VerifierNode) subclass and its arguments."""
        from node import protocol
        from node.chain.contracts import DeployParams
        from node.chain.records import TaskParams
        from node.engine import apply_runtime_pin
        from node.engine.dataset import build_dataset, demo_corpus_paths
        from node.localnet import LocalNet
        from node.roles.db import NodeDB
        from node.roles.metrics import NodeMetrics
        from node.roles.trainer import TrainerNode
        from node.store.gateway import GatewayServer
        from node.store.peers import advertise
        from node.tasks import create_task
        from verifier.node import VerifierNode

        apply_runtime_pin(TaskSpec.default())  # the tiny spec has the same runtime
        root = Path(root)
        local = LocalNet(root / "net", block_time=None, deploy_params=DeployParams(unbonding_blocks=5, disputes=disputes, min_trainer_stake=10**18)).start()
        try:
            fast = dict(tx_timeout=30, tx_replace_after=5, rpc_retries=2, rpc_backoff=0.1, poll_interval=0.05)
            store = local.local_store()
            spec = epoch_spec(build_dataset(demo_corpus_paths(limit_bytes=200_000), store, shard_bytes=100_000), n_slots,
                              inner_moments)
            admin = local.client(local.dev[0], **fast)
            fund = TaskParams.from_spec(spec).round_cost * (n_slots + 1) * (max_slots + 2)
            task = create_task(admin, store, spec, fund=fund)
            for i, acct in enumerate(local.dev[1:1 + n_slots + 3]):
                chain = local.client(acct, **fast)
                chain.transact(chain.stake_manager.functions.stake(protocol.TRAINER if i < n_slots else protocol.VERIFIER),
                               value=STAKE, what="stake")
            net = cls(local, store, spec, task, admin)
            for i in range(n_slots):
                node_cls = (trainer_cls or {}).get(i, TrainerNode)
                node = node_cls(local.client(local.dev[1 + i], **fast), store, NodeDB(root / f"t{i}" / "trainer.sqlite"),
                                task["task_id"], root / f"t{i}", metrics=NodeMetrics("trainer"), max_rounds=max_slots,
                                show_progress=False, pipeline=True, **(trainer_kw or {}).get(i, {}))
                node.prepare()
                if final_handoff:
                    gateway = GatewayServer(store, ("127.0.0.1", 0)).start()
                    net.gateways.append(gateway)
                    advertise(node.chain, gateway.url)
                    node.serve_finals(gateway)
                net.trainers.append(node)
            for i in range(3):
                node = (verifier_cls or {}).get(i, VerifierNode)(
                    local.client(local.dev[1 + n_slots + i], **fast), store, NodeDB(root / f"v{i}" / "verifier.sqlite"),
                    root / f"v{i}", metrics=NodeMetrics("verifier"), show_progress=False, **(verifier_kw or {}).get(i, {}))
                node.prepare()
                net.verifiers.append(node)
            return net
        except BaseException:
            local.stop()
            raise

    def __enter__(self) -> "EpochNet":
        return self

    def __exit__(self, *exc) -> None:
        for node in [*self.trainers, *self.verifiers]:
            if getattr(node, "ahead", None) is not None:
                node.ahead.cancel()
            node.db.close()
        for gateway in self.gateways:
            gateway.stop()
        self.local.stop()

    @property
    def dev(self) -> list:
        return self.local.dev

    def _tick_all(self) -> set[int]:
        """Tick every node once (errors are kept, as run_loop would log and retry them); the trainers that are done."""
        done = set()
        for j, node in enumerate([*self.trainers, *self.verifiers]):
            try:
                if node.tick() and j < len(self.trainers):
                    done.add(j)
            except Exception as exc:  # noqa: BLE001 - what run_loop logs and retries
                self.errors.append(f"{type(node).__name__} {j}: {type(exc).__name__}: {exc}"[:300])
        return done

    def run(self, epochs: int, max_passes: int = 400) -> int:
        """A pass of every node and a block mined, until every trainer is done and epoch `epochs - 1` is closed;
        the number of passes."""
        from node.rounds import EpochPhase

        return self.run_until(lambda done: len(done) == len(self.trainers)
                              and self.chain.get_epoch(self.task_id, epochs - 1).phase == EpochPhase.CLOSED, max_passes)

    def run_until(self, until, max_passes: int = 200) -> int:
        """A pass of every node and a block mined, until `until(trainers done so far)`; the number of passes."""
        done: set[int] = set()
        for passes in range(max_passes):
            done |= self._tick_all()
            if until(done):
                return passes
            self.local.mine(1)
        raise AssertionError(f"epochs: not done after {max_passes} passes; errors: {self.errors[-10:]}")

    def penalties(self) -> list[dict]:
        return [e["args"] for e in self.chain.events("PenaltyApplied")] + \
               [e["args"] for e in self.chain.events("AggregationPenalty")]


def check_network_equals_train_local(net, tmp_path, n: int, epochs: int) -> None:
    """Run `epochs` epochs of n honest slots; every one accepted with every slot, nobody penalized, a slot trained
    ahead, and the canonical state of every epoch train-local's (`--trainers n --epochs epochs`) bit for bit."""
    from node.engine.dataset import Dataset
    from node.engine.outer import train_epochs
    from node.store import compute_cid

    chain, dev = net.chain, net.dev
    assert chain.get_task(net.task_id).params.is_epoch_task and all(t.epoch_task for t in net.trainers)
    net.run(epochs)

    closed = [chain.get_epoch(net.task_id, e) for e in range(epochs)]
    assert [e.accepted_slots for e in closed] == [list(range(n))] * epochs, (closed, net.errors[-10:])
    assert net.penalties() == [], (net.penalties(), net.errors[-10:])
    assert all(chain.call(chain.stake_manager.functions.stake_of(d.address)) >= STAKE for d in dev[1:1 + n + 3])
    trained_ahead = [r for t in net.trainers for r in t.db.rounds("trainer") if "aggregate_ahead" in
                     (r.data.get("stage_seconds") or {})]
    assert trained_ahead, "no slot of epoch 1 was trained ahead"

    # train-local --trainers n --epochs epochs from the task's genesis
    genesis = tmp_path / "genesis.safetensors"
    net.store.get_file(net.task["genesis_cid"], genesis)
    records = train_epochs(net.spec, Dataset.for_spec(net.spec, net.store), genesis, tmp_path / "local", epochs)
    latest = chain.latest_model(net.task_id)
    assert latest.version == epochs
    assert latest.state_hash == records[-1].state_hash  # bit for bit
    assert latest.cid == compute_cid(records[-1].checkpoint)  # the very same file
    versions = [chain.call(chain.oracle.functions.at(net.task_id, v)) for v in range(1, epochs + 1)]
    assert [bytes(v[1]) for v in versions] == [r.state_hash for r in records]  # every epoch, not only the last
