"""Drive whole rounds directly with web3 against deployed contracts, no nodes needed.

    net = LocalNet(root, block_time=None).start()   # node/localnet.py: anvil automining + the contracts
    kit = RoundKit.on(net, trainer=accounts[1], verifiers=accounts[2:5], store=store)
    kit.stake_all()
    task = kit.create_task()                  # genesis = version 0 in ModelOracle
    result = kit.run_round(task)              # commit .. finalize; a new canonical version
    result.final_cid, result.final_hash, result.outcome

The trainer's states are small blobs put in a real content store, so every CID on chain
is real and fetchable; state hashes are sha256 of those blobs. Samples and committee are
recomputed with node/protocol.py and checked against what the contract drew. Verifiers
behave as told (`verdicts`): "agree" (default), "contradict" or "absent".
The chain is a LocalNet's (the one local-network harness); anvil should automine
(block_time=None): seal delays are skipped with anvil_mine.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from node import protocol
from node.chain.contracts import contract, send
from node.chain.records import TaskParams

# Small rounds: M = 8 segments, 2 samples (+ the last), committee of 3, quorum 2.
SMALL_TASK = TaskParams(steps_per_round=8, segment_steps=1, samples=2, committee_size=3, quorum=2, seal_delay_blocks=1)


@dataclass
class RoundResult:
    round_id: int
    task_id: int
    outcome: int
    final_cid: str
    final_hash: bytes
    samples: list[int]
    committee: list[str]
    receipts: dict = field(default_factory=dict)  # step name -> receipt (gas, block)


@dataclass
class RoundKit:
    w3: object
    addresses: dict[str, str]
    deployer: object  # eth_account LocalAccount (or an unlocked address)
    trainer: object
    verifiers: list
    store: object  # a ContentStore: every CID the kit puts on chain is in it
    rounds_done: int = 0

    @classmethod
    def on(cls, net, trainer, verifiers, store, deployer=None) -> "RoundKit":
        """A kit on a started LocalNet's contracts (`net.web3()`); the deployer (who creates tasks, seals and
        finalizes) is dev account 0 unless given."""
        deployer = net.dev[0].address if deployer is None else deployer
        return cls(net.web3(), dict(net.deployment.addresses), deployer, trainer, list(verifiers), store)

    # ------------------------------------------------------------ plumbing
    def contract(self, name: str):
        return contract(self.w3, name, self.addresses[name])

    def tx(self, name: str, fn: str, *args, sender, value: int = 0):
        return send(self.w3, getattr(self.contract(name).functions, fn)(*args), sender, value=value)

    def mine(self, blocks: int) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])

    def put_state(self, label: str) -> tuple[str, bytes]:
        """A stand-in checkpoint: (CID in the store, sha256 of its bytes)."""
        blob = f"trainchain roundkit state {label} {os.urandom(8).hex()}".encode()
        return self.store.put_bytes(blob), hashlib.sha256(blob).digest()

    # ------------------------------------------------------------ set-up
    def stake_all(self, trainer_stake: int = 2 * 10**18, verifier_stake: int = 2 * 10**18) -> None:
        self.tx("StakeManager", "stake", protocol.TRAINER, sender=self.trainer, value=trainer_stake)
        for v in self.verifiers:
            self.tx("StakeManager", "stake", protocol.VERIFIER, sender=v, value=verifier_stake)

    def create_task(self, params: TaskParams = SMALL_TASK, rounds_funded: int = 10) -> int:
        """A task whose genesis is a real blob in the store; returns the task id."""
        spec_cid, spec_hash = self.put_state("spec")
        genesis_cid, genesis_hash = self.put_state("genesis")
        self.tx("TaskRegistry", "create_task", spec_cid, spec_hash, genesis_hash, genesis_cid, params.as_tuple(),
                sender=self.deployer, value=params.round_cost * rounds_funded)
        registry = self.contract("TaskRegistry").functions
        task_id = registry.task_count().call()
        self.mine_to(registry.opens_block(task_id).call())  # the deployment's notice for new tasks (#13 attack 1)
        return task_id

    def mine_to(self, block: int) -> None:
        """Mine until the head is `block` (a transaction is estimated at the head: it passes there)."""
        behind = block - self.w3.eth.block_number
        if behind > 0:
            self.mine(behind)

    # ------------------------------------------------------------ a round
    def run_round(self, task_id: int, verdicts: dict[str, str] | None = None, finalize: bool = True,
                  post_boundaries: bool = True) -> RoundResult:
        """commit, seal, reveal starts, commit verdicts, reveal ends, reveal verdicts, finalize (unless told not to:
        a round left open to its disputes)."""
        verdicts = verdicts or {}
        rounds = self.contract("TrainingRounds")
        registry = self.contract("TaskRegistry")
        params = TaskParams(*registry.functions.task_params(task_id).call())
        m = params.n_segments
        task = registry.functions.tasks(task_id).call()
        base_hash, base_cid = task[3], task[4]  # Task.canonical_hash, Task.canonical_cid
        self.rounds_done += 1
        states = [self.put_state(f"task {task_id} round {self.rounds_done} boundary {j}") for j in range(1, m + 1)]
        cids = [base_cid] + [cid for cid, _ in states]
        trace = [base_hash] + [h for _, h in states]
        batches = [hashlib.sha256(f"batch {g}".encode()).digest() for g in range(params.steps_per_round)]
        trace_root = protocol.compute_merkle_root(trace)
        data_root = protocol.compute_merkle_root(batches)
        receipts = {}

        receipts["commit"] = self.tx("TrainingRounds", "commit", task_id, base_hash, data_root, trace_root,
                                     protocol.compute_merkle_proof(trace, 0), sender=self.trainer)
        round_id = rounds.functions.round_count().call()
        commit_block = receipts["commit"]["blockNumber"]
        self.mine(params.seal_delay_blocks + 1)
        receipts["seal"] = self.tx("TrainingRounds", "seal", round_id, sender=self.deployer)

        # Verify the draw with the Python reference rules.
        seal_hash = self.w3.eth.get_block(commit_block + params.seal_delay_blocks)["hash"]
        seed = protocol.compute_seed(bytes(seal_hash), round_id)
        samples = rounds.functions.round_samples_of(round_id).call()
        committee = rounds.functions.committee_of(round_id).call()
        sm = self.contract("StakeManager").functions
        entries = [tuple(sm.entries(i).call()) for i in range(sm.entry_count().call())]
        min_verifier = sm.min_stake(protocol.VERIFIER).call()
        disputes = rounds.functions.disputes().call() != "0x" + "00" * 20
        assert samples == protocol.compute_round_samples(seed, m, params.samples, len(committee), disputes), \
            "roundkit: samples differ from the rules"
        check_ends = rounds.functions.round_check_ends_of(round_id).call()
        assert check_ends == protocol.compute_check_ends(samples, m), "roundkit: check ends differ from the rules"
        assert committee == protocol.compute_committee_by_rejection(
            seed, entries, commit_block, params.committee_size, lambda v: sm.stake_of(v).call() >= min_verifier), "roundkit: committee differs"

        starts = [trace[j] for j in samples]
        receipts["reveal_starts"] = self.tx(
            "TrainingRounds", "reveal_starts", round_id, starts, [cids[j] for j in samples],
            [protocol.compute_merkle_proof(trace, j) for j in samples], sender=self.trainer)

        by_address = {getattr(v, "address", v): v for v in self.verifiers}
        ends = [trace[e] for e in check_ends]
        plans = {}
        for member in committee:
            behaviour = verdicts.get(member, "agree")
            if behaviour == "absent":
                continue
            claimed = ends if behaviour == "agree" else [os.urandom(32) for _ in ends]
            salt = os.urandom(32)
            plans[member] = (claimed, salt)
            commitment = protocol.compute_verdict_commitment(round_id, member, claimed, True, True, salt)
            receipts[f"commit_verdict {member}"] = self.tx("TrainingRounds", "commit_verdict", round_id, commitment,
                                                           sender=by_address[member])
        if len(plans) < len(committee):
            self.mine(params.commit_verdicts_window + 1)
        receipts["reveal_ends"] = self.tx("TrainingRounds", "reveal_ends", round_id, ends,
                                          [protocol.compute_merkle_proof(trace, e) for e in check_ends],
                                          cids[m], sender=self.trainer)
        for member, (claimed, salt) in plans.items():  # the final flag's commitment, before any reveal
            receipts[f"commit_final {member}"] = self.tx(
                "TrainingRounds", "commit_verdict", round_id, protocol.compute_final_commitment(round_id, member, True, salt),
                sender=by_address[member])
        if disputes and post_boundaries:  # watchers (#15): the trainer posts h_0 .. h_M and its boundary checkpoints' manifest
            manifest = self.store.put_bytes(json.dumps(cids).encode())
            receipts["post_boundaries"] = self.tx("Disputes", "post_boundaries", round_id, trace, manifest, sender=self.trainer)
        for member, (claimed, salt) in plans.items():
            receipts[f"reveal_verdict {member}"] = self.tx("TrainingRounds", "reveal_verdict", round_id, claimed, True,
                                                           salt, True, True, sender=by_address[member])
        if not finalize:
            return RoundResult(round_id, task_id, rounds.functions.rounds(round_id).call()[6], cids[m], trace[m], samples,
                               committee, receipts)
        if disputes and all(verdicts.get(v, "agree") == "agree" for v in committee):
            # nobody contradicted: the round still waits out its watch window (its deadline) before finalize
            self.mine(max(0, rounds.functions.rounds(round_id).call()[9] - self.w3.eth.block_number) + 1)
        receipts["finalize"] = self.tx("TrainingRounds", "finalize", round_id, sender=self.deployer)
        outcome = rounds.functions.rounds(round_id).call()[6]  # Round.outcome
        return RoundResult(round_id, task_id, outcome, cids[m], trace[m], samples, committee, receipts)
