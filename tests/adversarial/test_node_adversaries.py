"""Adversaries built from the real node code (TrainerNode / VerifierNode subclasses), on a devnet,
training and replaying a tiny GPT through the real engine, CIDs in a real content store.

Stakes are read from the chain before and after the round; fraud rewards go to claimable
balances (the nodes claim them), so a verifier's bonded stake only moves when it is slashed.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from node import protocol

from node.adversaries.trainers import CheatingTrainer, FinalSwapTrainer, ForgingTrainer, WithholdingTrainer
from nodekit import STAKE, NodeNet

ETH = 10**18
M = 8  # tiny spec of nodekit: 16 steps, segments of 2


@pytest.fixture
def net(tmp_path):
    with NodeNet.start(tmp_path / "net") as network:
        yield network


def bps(net) -> dict:
    p = net.spec.protocol
    return {"fraud": p.trainer_slash_bps, "miss": p.no_show_slash_bps, "minority": p.verifier_slash_bps,
            # a trainer's missed deadline costs at least the fraud slash (#13, no re-roll)
            "trainer_miss": protocol.compute_trainer_miss_bps(p.trainer_slash_bps, p.no_show_slash_bps)}


def fmt(wei: int) -> str:
    return f"{wei / ETH:+.3f} ETH"


def honest_verifiers(net, skip=()):
    for i in range(3):
        if i not in skip:
            net.make_verifier(i)


TRAINER_FRAUD = {
    "CheatingTrainer: skip the steps of the last segment": ("skip", None),
    "CheatingTrainer: last segment on other data": ("cheat", {"other_data_segments": {M - 1}}),
    "CheatingTrainer: lr x2 in the last segment (one hyper-parameter)": ("cheat", {"lr_scale": 2.0, "lr_segments": {M - 1}}),
    "CheatingTrainer: segment 0 on other data, commits the batches really used": (
        "cheat", {"other_data_segments": {0}, "report_actual_batches": True}),
    "FinalSwapTrainer: reveal another checkpoint's CID as the final one": ("swap", None),
}


@pytest.mark.parametrize("name", list(TRAINER_FRAUD))
def test_cheating_trainer_node(net, case, name):
    c = case(name, "fraud: trainer -50% stake; every honest verifier keeps its stake and is paid a share; canonical "
                   "model unchanged")

    kind, arg = TRAINER_FRAUD[name]
    if kind == "skip":
        net.make_trainer(CheatingTrainer, skip_segments={M - 1}, max_rounds=1)
    elif kind == "cheat":
        net.make_trainer(CheatingTrainer, cheat=arg, max_rounds=1)
    elif kind == "forge":
        net.make_trainer(ForgingTrainer, boundary=arg, max_rounds=1)
    else:
        net.make_trainer(FinalSwapTrainer, max_rounds=1)
    honest_verifiers(net)
    canonical = net.chain.get_task(net.task_id).canonical_hash
    r = net.run_round()
    trainer = net.trainer.address
    paid = {e["args"]["who"]: e["args"]["amount"] for e in net.chain.events("RewardPaid", round_id=r.round_id)}
    assert r.outcome == protocol.Outcome.FRAUD, r.outcome_name
    assert r.stake_delta[trainer] == -protocol.compute_slash(STAKE, bps(net)["fraud"])
    assert all(r.stake_delta[v] == 0 for v in r.committee)
    assert set(paid) == set(r.committee) and len(set(paid.values())) == 1
    assert net.chain.get_task(net.task_id).canonical_hash == canonical
    c.observe(f"outcome {r.outcome_name} (samples {r.samples}); trainer stake {fmt(r.stake_delta[trainer])}; "
              f"3 verifiers' stake unchanged, each paid {fmt(next(iter(paid.values())))}; canonical unchanged")


def test_cheater_training_ahead_never_commits_on_its_faked_state(net, case, caplog):
    c = case("CheatingTrainer training ahead (pipelined): its next round, trained on its own faked final state, "
             "is dropped after the fraud",
             "round 1 fraud; the work ahead on the faked h_M is cancelled, unpinned and deleted; slashed below the "
             "minimum stake the trainer waits, in words, and sends no commit; staked again, round 2 is trained on "
             "the canonical state (the contract would refuse any other base) and is fraud again")

    net.make_trainer(CheatingTrainer, skip_segments={M - 1}, max_rounds=2)
    assert net.trainer.pipeline  # the default
    honest_verifiers(net)
    finished_ahead = []

    def let_the_work_ahead_finish(net):  # so the whole trace ahead is stored, then dropped (not just cancelled)
        job = net.trainer.ahead
        if job is not None and job.wait(60) and job.result is not None:
            finished_ahead.append(job.result)

    net.hook = let_the_work_ahead_finish
    canonical = net.chain.get_task(net.task_id).canonical_hash
    with caplog.at_level(logging.INFO, logger="trainchain.trainer"):
        first = net.run_round()
    net.hook = None
    faked_final = net.trainer.db.get_round("trainer", first.round_id).data["boundary_hashes"][-1]
    (ahead,) = finished_ahead
    assert ahead["base_hash"] == faked_final  # bytes: the DB hands hashes back as bytes
    assert f"dropping the round trained ahead on 0x{faked_final.hex()[:12]}" in caplog.text
    pinned = set(net.store.pins())
    assert not (set(ahead["cids"][1:]) - set(net.trainer.db.get_round("trainer", first.round_id).data["cids"])) & pinned
    # the fraud slash (half of the round's reservation, #13) leaves the trainer under the deployment's minimum: it
    # says so and sends nothing (a commit would revert 'rounds: not a staked trainer', every tick) until it stakes again
    trainer = net.trainer.address
    slashed = -first.stake_delta[trainer]
    assert net.stakes()[trainer] < net.chain.call(net.chain.stake_manager.functions.min_stake(protocol.TRAINER))
    with caplog.at_level(logging.INFO, logger="trainchain.trainer"):
        for _ in range(4):
            net.step()
    assert net.next_round() is None and net.open_round() == 0
    assert f"needs a trainer stake of {STAKE / ETH:g} ETH, this key has {(STAKE - slashed) / ETH:g} ETH free" in caplog.text
    own = net.client(net.accounts[1])
    own.transact(own.stake_manager.functions.stake(protocol.TRAINER), value=slashed, what="stake again")
    with caplog.at_level(logging.INFO, logger="trainchain.trainer"):
        second = net.run_round()
    assert (first.outcome, second.outcome) == (protocol.Outcome.FRAUD, protocol.Outcome.FRAUD)
    assert net.chain.get_round(second.round_id).base_hash == canonical != faked_final
    faked_short = "0x" + faked_final.hex()[:12]  # how the trainer's log names a state
    trained_ahead = f"training the next 16 steps ahead, from step 16 (base {faked_short})"
    assert trained_ahead in caplog.text and f"on {faked_short}: round {first.round_id} ended fraud" in caplog.text
    assert net.trainer.db.get_json(f"ahead:{net.task_id}") is None and net.trainer.ahead is None
    assert not list(Path(net.trainer.workdir).glob(f"ahead-{faked_final.hex()[:12]}*"))  # TrainerNode.ahead_dir
    refused = [d for d in net.trainer.db.duties(duty="commit") if d["outcome"] != "ok"]
    assert refused == [], refused  # it never tried to commit on the faked state
    c.observe(f"rounds {first.round_id}, {second.round_id}: {first.outcome_name}, {second.outcome_name}; round 2's base "
              f"= the canonical 0x{canonical.hex()[:12]}…, not the faked {faked_short}…; work ahead dropped; waited under the "
              f"minimum stake after the {slashed / ETH:g} ETH slash, staked again; no refused commit")


def test_skip_segment_m2_node(net, case):
    c = case("CheatingTrainer: skip the steps of segment M-2 (checked only as the span (M-2, M) when drawn)",
             "fraud and -50% in the first round that draws M-2; every earlier round accepted (unchecked)")

    net.make_trainer(CheatingTrainer, skip_segments={M - 2}, max_rounds=8)
    honest_verifiers(net)
    net.steer_samples(lambda samples: samples[-1] == M - 2)  # the first round draws M-2 (grinding the seal block)
    seen = []
    for _ in range(8):
        r = net.run_round()
        seen.append(f"{r.samples}->{r.outcome_name}")
        if r.samples[-1] == M - 2:
            break
        assert r.outcome == protocol.Outcome.ACCEPTED, seen
    else:
        pytest.fail(f"segment M-2 never drawn in 8 rounds: {seen}")
    c.observe(f"rounds (starts->outcome): {', '.join(seen)}; trainer stake in the round that drew M-2: "
              f"{fmt(r.stake_delta[net.trainer.address])}")
    assert r.outcome == protocol.Outcome.FRAUD
    assert r.stake_delta[net.trainer.address] == -protocol.compute_slash(STAKE, bps(net)["fraud"])


@pytest.mark.parametrize("m2_drawn", [False, True], ids=["last-check-(M-1,M)", "last-check-(M-2,M)"])
def test_forged_unused_checkpoint_node(net, case, m2_drawn):
    if m2_drawn:
        c = case("ForgingTrainer: commit a forged h_{M-1} checkpoint (final state trained from the true one); M-2 drawn",
                 "the span (M-2, M) never opens h_{M-1}: accepted, and the forgery is harmless (h_M, now canonical, "
                 "replays from h_{M-2})")
    else:
        c = case("ForgingTrainer: commit a forged h_{M-1} checkpoint (final state trained from the true one); M-2 not drawn",
                 "the check (M-1, M) replays from the forged start: fraud, trainer -50%")
    net.make_trainer(ForgingTrainer, boundary=M - 1, max_rounds=1)
    honest_verifiers(net)
    net.steer_samples(lambda samples: (samples[-1] == M - 2) == m2_drawn)
    r = net.run_round()
    assert (r.samples[-1] == M - 2) == m2_drawn, f"steering failed: samples {r.samples}"
    trainer = net.trainer.address
    if r.samples[-1] == M - 2:
        assert r.outcome == protocol.Outcome.ACCEPTED, r.outcome_name
        final = net.chain.get_round(r.round_id).final_hash
        assert net.chain.get_task(net.task_id).canonical_hash == final
        verdicts = [e["args"]["contradicts"] for e in net.chain.events("VerdictRevealed", round_id=r.round_id)]
        assert verdicts == [False] * 3  # h_M replayed from h_{M-2} matched: the final state is honestly trained
    else:
        assert r.outcome == protocol.Outcome.FRAUD, r.outcome_name
        assert r.stake_delta[trainer] == -protocol.compute_slash(STAKE, bps(net)["fraud"])
    c.observe(f"samples {r.samples}: outcome {r.outcome_name}; trainer stake {fmt(r.stake_delta[trainer])}")


def test_withholding_trainer_node(net, case):
    c = case("WithholdingTrainer: commits, never reveals", "abandoned: trainer -50% stake (the fraud slash); verifiers keep theirs")

    net.make_trainer(WithholdingTrainer, max_rounds=1)
    honest_verifiers(net)
    r = net.run_round()
    trainer = net.trainer.address
    assert r.outcome == protocol.Outcome.ABANDONED, r.outcome_name
    assert r.stake_delta[trainer] == -protocol.compute_slash(STAKE, bps(net)["trainer_miss"])
    assert all(r.stake_delta[v] == 0 for v in net.addresses if v != trainer)
    c.observe(f"outcome {r.outcome_name}; trainer {fmt(r.stake_delta[trainer])}; verifiers "
              f"{sorted({fmt(r.stake_delta[v]) for v in net.addresses if v != trainer})}")


VERIFIER_CASES = {
    "lazy": ("approves without replaying", "minority", protocol.Outcome.ACCEPTED),
    "reject": ("rejects everything", "minority", protocol.Outcome.ACCEPTED),
    "silent": ("never reveals", "miss", protocol.Outcome.ACCEPTED),
    "equivocate": ("reveals other hashes than it committed", "miss", protocol.Outcome.ACCEPTED),
    "copy": ("copies another member's commitment", "miss", protocol.Outcome.ACCEPTED),
}


@pytest.mark.parametrize("mode", list(VERIFIER_CASES))
def test_misbehaving_verifier_node(net, case, mode):
    what, penalty, outcome = VERIFIER_CASES[mode]
    c = case(f"MisbehavingVerifier({mode}): {what}, honest trainer",
             f"round accepted; that verifier -{bps(net)[penalty] / 100:g}% ({penalty}); honest trainer and verifiers "
             "lose nothing and are paid")
    from node.adversaries.verifiers import MisbehavingVerifier

    net.make_trainer(max_rounds=1)
    honest_verifiers(net, skip=(0,))
    bad = net.make_verifier(0, MisbehavingVerifier, mode=mode).address
    r = net.run_round()
    if bad not in r.committee:  # 3 verifiers, committee of 3: always in it
        pytest.fail("the bad verifier was not drawn")
    paid = {e["args"]["who"] for e in net.chain.events("RewardPaid", round_id=r.round_id)}
    assert r.outcome == outcome, r.outcome_name
    assert r.stake_delta[bad] == -protocol.compute_slash(STAKE, bps(net)[penalty])
    assert all(r.stake_delta[a] == 0 for a in net.addresses if a != bad)
    assert paid == set(net.addresses) - {bad}
    errs = [e for name, es in r.errors.items() for e in es if bad[:8] in name]
    c.observe(f"outcome {r.outcome_name}; bad verifier {fmt(r.stake_delta[bad])}; others unchanged and paid "
              f"({len(paid)}); bad node's own failed ticks: {len(errs)}"
              + (f" e.g. '{errs[0][:90]}'" if errs else ""))


def test_colluding_minority_node(net, case):
    c = case("MisbehavingVerifier(collude) + CheatingTrainer (skips the last segment): a minority of 1 of 3",
             "fraud: trainer -50%; colluder -5% (minority); the 2 honest verifiers keep their stake and are paid")
    from node.adversaries.verifiers import MisbehavingVerifier

    trainer = net.make_trainer(CheatingTrainer, skip_segments={M - 1}, max_rounds=1)
    honest_verifiers(net, skip=(0,))
    bad = net.make_verifier(0, MisbehavingVerifier, mode="collude", accomplice=trainer.db).address
    r = net.run_round()
    honest = [v for v in r.committee if v != bad]
    paid = {e["args"]["who"] for e in net.chain.events("RewardPaid", round_id=r.round_id)}
    assert r.outcome == protocol.Outcome.FRAUD, r.outcome_name
    assert r.stake_delta[trainer.address] == -protocol.compute_slash(STAKE, bps(net)["fraud"])
    assert r.stake_delta[bad] == -protocol.compute_slash(STAKE, bps(net)["minority"])
    assert all(r.stake_delta[v] == 0 for v in honest) and paid == set(honest)
    c.observe(f"outcome {r.outcome_name}; trainer {fmt(r.stake_delta[trainer.address])}; colluder "
              f"{fmt(r.stake_delta[bad])}; honest verifiers unchanged, paid: {len(paid)}")


def test_same_key_twice_processes(tmp_path, case):
    c = case("run the same key twice: a second `trainchain trainer run` while a node process holds the key",
             "the second exits non-zero at start, naming the process that holds the key, before any transaction; "
             "once the holder is killed -9 the key is free again")
    import os
    import signal
    import subprocess
    import sys
    import time

    from node.errors import NodeLocked
    from node.keys import LIGHT_KDF, Keystore, NodeLock

    datadir = tmp_path / "datadir"
    address = Keystore(datadir, scrypt_n=LIGHT_KDF).new("pw")
    (tmp_path / "pw").write_text("pw\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from node.keys import NodeLock; "
         f"l = NodeLock({str(datadir)!r}, {address!r}).acquire(); print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [str(Path(sys.executable).with_name("trainchain")), "trainer", "run", "--task", "1", "--datadir", str(datadir),
             "--account", address, "--password-file", str(tmp_path / "pw"), "--rpc", "http://127.0.0.1:9"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "TRAINCHAIN_DATADIR": str(datadir)})
        with pytest.raises(NodeLocked):
            NodeLock(datadir, address).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    NodeLock(datadir, address).acquire().release()  # the OS released the flock of the killed holder
    message = (second.stderr.strip().splitlines() or [""])[-1]
    assert second.returncode != 0 and "Traceback" not in second.stderr
    assert f"process {holder.pid}" in second.stderr and "already in use" in second.stderr
    c.observe(f"second process exit {second.returncode}: {message[:160]}; after kill -9 of the holder the key locks again")


@pytest.mark.parametrize("variant", ["spec is not JSON", "spec hash does not match the spec", "spec CID nobody has"])
def test_hostile_task_creator(net, case, variant):
    c = case(f"a hostile task next to a good one: {variant}",
             "a trainer asked to train it refuses at start in words (no commit, no stake moved); verifiers that "
             "warm up on it keep serving the good task: its round is accepted, nobody loses stake")
    import os

    from eth_utils import keccak

    from node.chain.records import TaskParams
    from node.errors import TrainchainError
    from node.store import compute_cid

    spec_bytes = b"{not a spec" if variant == "spec is not JSON" else net.spec.canonical_json()
    spec_cid = compute_cid(os.urandom(64)) if variant == "spec CID nobody has" else net.store.put_bytes(spec_bytes)
    spec_hash = keccak(b"another spec") if variant == "spec hash does not match the spec" else keccak(spec_bytes)
    good = net.chain.get_task(net.task_id)
    params = TaskParams.from_spec(net.spec)
    admin = net.client(net.accounts[0])
    admin.transact(admin.registry.functions.create_task(spec_cid, spec_hash, good.canonical_hash,
                                                      good.canonical_cid, params.as_tuple()),
                   value=params.round_cost * 2, what="create_task")
    bad_task = admin.call(admin.registry.functions.task_count())
    # the trainer pointed at the hostile task refuses at start
    from node.roles.db import NodeDB
    from node.roles.trainer import TrainerNode

    hostile = TrainerNode(net.client(net.accounts[1]), net.store,
                          NodeDB(net.root / "hostile" / "trainer.sqlite"), bad_task, net.root / "hostile",
                          show_progress=False)
    from node.store import StoreError

    with pytest.raises((TrainchainError, StoreError)) as refused:  # a missing CID may yet appear: retried, in words
        hostile.prepare()
    # verifiers created now warm up on the newest task: the hostile one
    net.make_trainer(max_rounds=1)
    honest_verifiers(net)
    r = net.run_round()
    assert r.outcome == protocol.Outcome.ACCEPTED
    assert all(d == 0 for d in r.stake_delta.values()) and r.penalties == []
    assert net.chain.get_task(bad_task).open_round == 0 and str(refused.value)
    c.observe(f"trainer on the hostile task: {type(refused.value).__name__}: {str(refused.value)[:110]}; good task's "
              f"round {r.outcome_name}, stake changes {sorted(set(r.stake_delta.values()))}")


def test_hostile_task_no_running_verifier_can_replay(net, case):
    """#13 attack 1 end to end: a task whose spec pins a runtime no honest node has. Running verifier nodes
    screen it within the deployment's notice (TaskRegistry.opens_block) and opt out on chain, so the hostile
    trainer's first round, committed the first block it may, draws none of them and nobody honest pays."""
    from node.chain.records import TaskParams

    c = case("attack 1 (nodes): a task no running verifier can replay, committed the first block it may",
             "every running verifier opts out within the notice (it screens the spec on TaskCreated); the round "
             "draws none of them; no honest stake moves")
    honest_verifiers(net)
    foreign = net.spec.model_copy(update={"runtime": net.spec.runtime.model_copy(update={"torch_version": "9.9.9+cpu"})})
    params = TaskParams.from_spec(foreign)
    admin = net.client(net.accounts[0])
    good = net.chain.get_task(net.task_id)
    before = net.stakes()
    receipt = admin.transact(admin.registry.functions.create_task(
        net.store.put_bytes(foreign.canonical_json()), foreign.spec_hash(), good.canonical_hash, good.canonical_cid,
        params.as_tuple()), value=params.round_cost * 2, what="create_task")
    hostile = admin.call(admin.registry.functions.task_count())
    opens = admin.call(admin.registry.functions.opens_block(hostile))
    assert opens - receipt["blockNumber"] == protocol.TASK_NOTICE_BLOCKS > 0
    sm = net.chain.stake_manager.functions
    verifiers = [v.address for v in net.verifiers]
    while net.chain.block_number() < opens:  # the notice: the nodes tick, a block per pass
        net.step()
    opted_out = {a: net.chain.call(sm.opted_out(hostile, a)) for a in verifiers}
    assert all(opted_out.values()), opted_out
    # the hostile trainer commits the first block it may (a made-up trace: nobody replays it anyway)
    trainer = net.client(net.accounts[1])
    trace = [good.canonical_hash] + [os.urandom(32) for _ in range(params.n_segments)]
    trainer.transact(trainer.rounds.functions.commit(hostile, trace[0], os.urandom(32), protocol.compute_merkle_root(trace),
                                                     protocol.compute_merkle_proof(trace, 0)), what="commit")
    round_id = trainer.call(trainer.rounds.functions.round_count())
    net.mine(params.seal_delay_blocks + 1)
    trainer.transact(trainer.rounds.functions.seal(round_id), what="seal")
    committee = list(net.chain.call(net.chain.rounds.functions.committee_of(round_id)))
    assert not set(committee) & set(verifiers), committee
    for _ in range(3):
        net.step()
    after = net.stakes()
    assert all(after[a] == before[a] for a in verifiers)
    optouts = [d for d in net.verifiers[0].db.duties(duty="optout") if d["outcome"] == "ok"]
    assert optouts and "9.9.9" in optouts[0]["detail"]
    c.observe(f"notice {opens - receipt['blockNumber']} blocks; opted out before block {opens}: "
              f"{sum(opted_out.values())}/{len(verifiers)}; committee of the first round {committee or 'empty'}; "
              f"honest stake changes {sorted({after[a] - before[a] for a in verifiers})}")
