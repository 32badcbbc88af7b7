"""Epochs (issue #14): the schedule rules, the outer step, the optional state/spec parts, and
train-local's epochs against v1 (one slot + identity outer step == a v1 run, bit for bit)."""
from __future__ import annotations

import json
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from node.engine.errors import StateError
from node.engine.genesis import compute_genesis_state
from node.engine.outer import compute_outer_step, train_epochs
from node.engine.replay import compute_batch_hashes, compute_data_root, replay_segment
from node.engine.spec import EpochConfig, TaskSpec
from node.engine.state import TrainingState, load_state, save_state, state_hash
from node.engine.trace import Slot, train_round
from node.protocol import compute_batch_index, compute_lr_step, compute_random_key, compute_step_key

from engine_helpers import write_spec


# ------------------------------------------------------------------ schedule rules
def test_schedule_rules_follow_the_interface():
    assert compute_batch_index(3, 2, 5, 4, 16) == (3 * 4 + 2) * 16 + 5
    assert compute_lr_step(3, 5, 16) == 3 * 16 + 5
    assert compute_random_key(7, 3, 2, 5) == (7, 3, 2, 5)
    assert compute_step_key(7, 3, 2, 5, 4, 16) == (7, 3, 2, 5)
    assert compute_step_key(7, 3, 0, 5, 1, 16) == (7, 3 * 16 + 5)  # one slot: v1's (seed, g)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 16), st.integers(1, 64), st.data())
def test_batch_indices_are_distinct_across_slots_and_epochs(n, h, data):
    a = (data.draw(st.integers(0, 50)), data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, h - 1)))
    b = (data.draw(st.integers(0, 50)), data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, h - 1)))
    ga, gb = compute_batch_index(*a[:2], a[2], n, h), compute_batch_index(*b[:2], b[2], n, h)
    assert (ga == gb) == (a == b)
    assert compute_lr_step(a[0], a[2], h) <= ga  # the lr position never runs ahead of the data


# ------------------------------------------------------------------ spec and state stay v1 when unused
def test_spec_without_epochs_keeps_its_canonical_json():
    spec = TaskSpec.default()
    assert b"epochs" not in spec.canonical_json()
    with_epochs = spec.with_(epochs=EpochConfig(slots=4).model_dump())
    assert with_epochs.spec_hash() != spec.spec_hash()
    again = TaskSpec.from_json(with_epochs.canonical_json())
    assert again.epochs == EpochConfig(slots=4) and again.spec_hash() == with_epochs.spec_hash()
    with pytest.raises(Exception, match="slots"):
        spec.with_(epochs={"slots": 17})


def test_outer_momentum_is_hashed_only_when_present(tmp_path):
    spec = TaskSpec.preset("tiny")
    st0 = compute_genesis_state(spec)
    assert not any(n.startswith("outer.") for n in st0.tensors())
    h0 = state_hash(st0)
    mom = {n: torch.full_like(t, 0.25) for n, t in st0.params.items()}
    st1 = TrainingState(st0.params, st0.exp_avg, st0.exp_avg_sq, st0.steps, st0.global_step, mom)
    h1 = save_state(tmp_path / "s.safetensors", st1)
    assert h1 != h0
    back = load_state(tmp_path / "s.safetensors", h1)
    assert back.outer_momentum is not None and all(torch.equal(back.outer_momentum[n], mom[n]) for n in mom)
    bad = dict(st1.tensors())
    bad.pop(next(n for n in bad if n.startswith("outer.momentum.")))
    with pytest.raises(StateError, match="outer.momentum"):
        TrainingState.from_tensors(bad)


# ------------------------------------------------------------------ the outer step
def _state(params: dict, step: int = 5, fill: float = 0.0) -> TrainingState:
    return TrainingState(params, {n: torch.full_like(t, fill) for n, t in params.items()},
                         {n: torch.full_like(t, fill * fill) for n, t in params.items()},
                         {n: torch.tensor(step) for n in params}, step)


def test_outer_step_is_the_fp64_formula_element_by_element():
    g = torch.Generator().manual_seed(3)
    base = _state({"w": torch.randn(40, generator=g)}, step=0)
    base.outer_momentum = {"w": torch.randn(40, generator=g) * 0.01}
    slots = [_state({"w": base.params["w"] + torch.randn(40, generator=g) * 0.1}, fill=i + 1.0) for i in range(3)]
    cfg = EpochConfig(slots=3, outer_lr=0.7, outer_momentum=0.9, inner_moments="average")
    out = compute_outer_step(base, slots, cfg)

    def f32(x: float) -> float:
        return struct.unpack("<f", struct.pack("<f", x))[0]

    for j in range(40):  # Python floats are IEEE doubles: the rule written out per element
        theta = float(base.params["w"][j])
        delta = 0.0
        for s in slots:
            delta += (theta - float(s.params["w"][j])) / 3
        b = 0.9 * float(base.outer_momentum["w"][j]) + delta
        assert float(out.params["w"][j]) == f32(theta - 0.7 * (delta + 0.9 * b))
        assert float(out.outer_momentum["w"][j]) == f32(b)
    assert torch.equal(out.exp_avg["w"], torch.full((40,), 2.0))  # mean of 1, 2, 3
    assert out.global_step == 5 and int(out.steps["w"]) == 5
    reset = compute_outer_step(base, slots, cfg.model_copy(update={"inner_moments": "reset"}))
    assert torch.equal(reset.params["w"], out.params["w"])
    assert not reset.exp_avg["w"].any() and not reset.exp_avg_sq["w"].any() and int(reset.steps["w"]) == 0


# ------------------------------------------------------------------ inner_moments "corrected" (data-parallel's v)
def _epoch_of(base: TrainingState, grads: list[torch.Tensor], b1: float, b2: float) -> TrainingState:
    """A slot's state after AdamW's moment updates over `grads` (one per inner step) from `base`."""
    m, v = base.exp_avg["w"].clone(), base.exp_avg_sq["w"].clone()
    for g in grads:
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    step = int(base.steps["w"]) + len(grads)
    return TrainingState({"w": base.params["w"] + 0.01}, {"w": m}, {"w": v}, {"w": torch.tensor(step)}, step)


def _corrected_reference(base, slots, b1, b2):
    """The rule written out per element in Python floats, the cross-slot sum as an explicit double loop."""
    n, h = len(slots), int(slots[0].steps["w"]) - int(base.steps["w"])
    c1, c2 = b1 ** h, b2 ** h
    out = []
    for j in range(base.params["w"].numel()):
        vb, mb = float(base.exp_avg_sq["w"][j]), float(base.exp_avg["w"][j])
        d = [float(s.exp_avg["w"][j]) - c1 * mb for s in slots]
        new = [float(s.exp_avg_sq["w"][j]) - c2 * vb for s in slots]
        cross = sum(d[a] * d[b] for a in range(n) for b in range(n) if a != b)
        mu2 = max(0.0, cross / (n * (n - 1)) / (1 - c1) ** 2)
        out.append(max(0.0, c2 * vb + sum(new) / n / n + (1 - 1 / n) * (1 - c2) * mu2))
    return torch.tensor(out, dtype=torch.float64)


def test_corrected_second_moment_is_the_formula_element_by_element():
    opt = TaskSpec.preset("tiny").optimizer
    g = torch.Generator().manual_seed(11)
    base = _state({"w": torch.randn(64, generator=g)}, step=40, fill=0.02)
    slots = [_epoch_of(base, [torch.randn(64, generator=g) * 0.3 + 0.1 for _ in range(4)], opt.beta1, opt.beta2)
             for _ in range(3)]
    cfg = EpochConfig(slots=3, inner_moments="corrected")
    out = compute_outer_step(base, slots, cfg, opt)
    ref = _corrected_reference(base, slots, opt.beta1, opt.beta2)
    assert torch.allclose(out.exp_avg_sq["w"].double(), ref, rtol=1e-6, atol=1e-12)
    avg = compute_outer_step(base, slots, cfg.model_copy(update={"inner_moments": "average"}))
    # m and the parameters are `average`'s, bit for bit; only v differs
    assert torch.equal(out.exp_avg["w"], avg.exp_avg["w"]) and torch.equal(out.params["w"], avg.params["w"])
    assert not torch.equal(out.exp_avg_sq["w"], avg.exp_avg_sq["w"])
    with pytest.raises(ValueError, match="optimizer"):
        compute_outer_step(base, slots, cfg)  # the rule needs the betas


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.integers(1, 16), st.floats(0.05, 3.0), st.integers(0, 2**31 - 1))
def test_corrected_equals_average_without_noise_and_shrinks_noise_by_n(n, h, mu, seed):
    """Every slot seeing the same constant gradient (no noise): data-parallel's v is any slot's v, and so is the
    rule's. Pure noise (gradients that cancel across slots in every step): mu² = 0 and this epoch's part of v is
    divided by the number of slots, as an n x batch divides the noise's variance."""
    opt = TaskSpec.preset("tiny").optimizer
    g = torch.Generator().manual_seed(seed)
    base = _state({"w": torch.randn(32, generator=g)}, step=50, fill=0.05)
    grad = torch.full((32,), mu)
    same = [_epoch_of(base, [grad] * h, opt.beta1, opt.beta2) for _ in range(n)]
    out = compute_outer_step(base, same, EpochConfig(slots=n, inner_moments="corrected"), opt)
    assert torch.allclose(out.exp_avg_sq["w"], same[0].exp_avg_sq["w"], rtol=1e-5)
    noise = [torch.randn(32, generator=g) for _ in range(h)]
    signs = [1.0 if i % 2 == 0 else -1.0 for i in range(n - n % 2)]  # pairs of opposite gradients: Σ d_i = 0
    cancel = [_epoch_of(base, [s * z for z in noise], opt.beta1, opt.beta2) for s in signs]
    out = compute_outer_step(base, cancel, EpochConfig(slots=len(cancel), inner_moments="corrected"), opt)
    c2 = opt.beta2 ** h
    new = cancel[0].exp_avg_sq["w"].double() - c2 * base.exp_avg_sq["w"].double()  # the same for every slot
    expect = c2 * base.exp_avg_sq["w"].double() + new / len(cancel)
    assert torch.allclose(out.exp_avg_sq["w"].double(), expect, rtol=1e-5)
    assert (out.exp_avg_sq["w"] >= 0).all()


def test_corrected_with_one_slot_is_average_and_keeps_the_identity():
    opt = TaskSpec.preset("tiny").optimizer
    g = torch.Generator().manual_seed(7)
    base = _state({"w": torch.randn(100, generator=g)}, step=0)
    slot = _epoch_of(base, [torch.randn(100, generator=g) for _ in range(3)], opt.beta1, opt.beta2)
    cfg = EpochConfig.identity().model_copy(update={"inner_moments": "corrected"})
    assert state_hash(compute_outer_step(base, [slot], cfg, opt)) == state_hash(slot)


def test_outer_step_with_no_accepted_slot_leaves_the_state_unchanged():
    base = _state({"w": torch.arange(4.0)})
    assert compute_outer_step(base, [], EpochConfig(slots=4)) is base


def test_identity_outer_step_of_one_slot_is_that_slot_bit_for_bit():
    g = torch.Generator().manual_seed(5)
    theta = torch.randn(1000, generator=g)
    # sign changes and scale changes: where θ − round32(θ − θ₁) would miss θ₁ in fp32
    theta1 = torch.where(torch.arange(1000) % 2 == 0, -theta * 0.37, theta * 3.1) + 1e-3
    base, slot = _state({"w": theta}, step=0), _state({"w": theta1}, fill=0.5)
    out = compute_outer_step(base, [slot], EpochConfig.identity())
    assert state_hash(out) == state_hash(slot)
    naive = theta - (theta - theta1)  # the outer gradient rounded to fp32 first
    assert not torch.equal(naive, theta1)  # ...which would not be the identity


# ------------------------------------------------------------------ slots and train-local's epochs
def test_one_slot_identity_epochs_equal_a_v1_run(tiny_spec, dataset, genesis, tmp_path):
    S = tiny_spec.steps_per_round
    v1 = train_round(tiny_spec, dataset, genesis, tmp_path / "v1", steps=2 * S)
    recs = train_epochs(tiny_spec, dataset, genesis, tmp_path / "ep", epochs=2, config=EpochConfig.identity())
    assert [r.slot_final_hashes[0] for r in recs] == [r.state_hash for r in recs]
    assert recs[1].state_hash == v1.final_hash
    assert recs[0].state_hash == v1.boundary_hashes[S // tiny_spec.segment_steps]


def test_slots_follow_the_epoch_schedule(tiny_spec, dataset, genesis, tmp_path):
    S = tiny_spec.steps_per_round
    t1 = train_round(tiny_spec, dataset, genesis, tmp_path / "s1", slot=Slot(epoch=1, index=1, n_slots=2))
    assert t1.batch_hashes == compute_batch_hashes(tiny_spec, dataset, (1 * 2 + 1) * S)
    assert t1.data_root == compute_data_root(tiny_spec, dataset, 0, slot=Slot(1, 1, 2))  # a verifier's check
    assert t1.data_root != compute_data_root(tiny_spec, dataset, 0, slot=Slot(1, 0, 2))
    assert t1.start_step == S  # the lr position of epoch 1
    assert load_state(t1.final_checkpoint).global_step == 2 * S
    again = train_round(tiny_spec, dataset, genesis, tmp_path / "s1b", slot=Slot(epoch=1, index=1, n_slots=2))
    assert again.trace_root == t1.trace_root
    t0 = train_round(tiny_spec, dataset, genesis, tmp_path / "s0", slot=Slot(epoch=1, index=0, n_slots=2))
    assert t0.final_hash != t1.final_hash
    with pytest.raises(ValueError, match="slot 2 outside"):
        train_round(tiny_spec, dataset, genesis, tmp_path / "bad", slot=Slot(epoch=0, index=2, n_slots=2))


def test_diloco_epochs_are_reproducible_and_carry_momentum(tiny_spec, dataset, genesis, tmp_path):
    cfg = EpochConfig(slots=2, outer_lr=0.7, outer_momentum=0.9)
    a = train_epochs(tiny_spec, dataset, genesis, tmp_path / "a", epochs=2, config=cfg)
    b = train_epochs(tiny_spec, dataset, genesis, tmp_path / "b", epochs=2, config=cfg)
    assert [r.state_hash for r in a] == [r.state_hash for r in b]
    assert a[1].state_hash not in a[1].slot_final_hashes
    st1 = load_state(a[1].checkpoint, a[1].state_hash)
    assert st1.outer_momentum is not None and st1.global_step == 2 * tiny_spec.steps_per_round
    assert json.loads((tmp_path / "a" / "epochs.json").read_text())[1]["state_hash"] == "0x" + a[1].state_hash.hex()


def test_cli_train_local_epochs(cli, tiny_spec, tmp_path):
    spec = tiny_spec.with_(epochs=EpochConfig(slots=2).model_dump())
    path = write_spec(tmp_path / "spec.json", spec)
    out = json.loads(cli("train-local", "--spec", path, "--epochs", "1", "--out", tmp_path / "run", "--json").stdout)
    assert out["slots_per_epoch"] == 2 and out["epochs"] == 1
    assert load_state(out["final_checkpoint"]).outer_momentum is not None
    bad = cli("train-local", "--spec", path, "--trainers", "3", "--epochs", "1", "--out", tmp_path / "r2", check=False)
    assert bad.returncode != 0 and "contradicts the spec's epochs.slots 2" in bad.stderr


def test_every_segment_of_a_slot_replays(tiny_spec, dataset, genesis, tmp_path):
    """What a verifier does with a slot's trace: each boundary replays to the next on the slot's schedule,
    and the base's own counter does not matter (it is stale after an epoch with no accepted slot)."""
    slot, k = Slot(epoch=2, index=1, n_slots=3), tiny_spec.segment_steps
    trace = train_round(tiny_spec, dataset, genesis, tmp_path / "slot", slot=slot)
    for j in range(len(trace.boundary_hashes) - 1):
        end = replay_segment(tiny_spec, dataset, trace.checkpoints[j], expected_hash=trace.boundary_hashes[j],
                             slot=slot, slot_step=j * k)
        assert end == trace.boundary_hashes[j + 1], f"segment {j} of the slot did not replay"
    wrong = replay_segment(tiny_spec, dataset, trace.checkpoints[1], slot=Slot(2, 0, 3), slot_step=k)
    assert wrong != trace.boundary_hashes[2]  # another slot's schedule: other batches, other masks
