"""TaskSpec: everything a trainer and a verifier must agree on, as one canonical JSON.

The keccak256 of `canonical_json()` goes on-chain with the task. Every field is strict
(no coercion, no unknown keys) so that two honest parties can never read one spec two
ways. This module does not import torch: the runtime pin must be applied before torch
loads (see runtime.py).
"""
from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from .errors import SpecError

SPEC_VERSION = 1
# What the engine computes from a spec, pinned in `runtime.engine`: a replay by another engine
# version proves nothing, so a spec for another version is refused in words, never replayed.
ENGINE_VERSION = 2
ENGINE_CHANGES = {
    1: "dropout masks drew from torch's global RNG, re-seeded before every step (other torch work "
       "on another thread of the process moved it: honest replays got other bits, issue #19)",
    2: "every random draw is counter-based: bits = f(seed, step, purpose, element index) "
       "(node/engine/rng.py), identical on any thread and device; genesis draws from its own generator",
}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """A byte-level GPT (nanoGPT layout). Weights are tied: lm_head = wte."""

    arch: Literal["gpt"] = "gpt"
    vocab_size: Literal[256] = 256  # bytes are tokens: no tokenizer to download
    block_size: int = Field(64, ge=2, le=8192)  # context length T
    n_layer: int = Field(2, ge=1, le=128)
    n_head: int = Field(4, ge=1, le=128)
    n_embd: int = Field(64, ge=1, le=16384)  # must be divisible by n_head
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # > 0 in the demo: proves the RNG derivation
    bias: bool = True  # biases in Linear and LayerNorm

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"spec: n_embd {self.n_embd} not divisible by n_head {self.n_head}")
        return self


class OptimizerConfig(_Strict):
    """AdamW written out in step.py (never torch.optim: fused/foreach give other bits)."""

    name: Literal["adamw"] = "adamw"
    impl: Literal["trainchain-adamw-v1"] = "trainchain-adamw-v1"
    beta1: float = Field(0.9, gt=0.0, lt=1.0)
    beta2: float = Field(0.99, gt=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.1, ge=0.0)  # applied to tensors with dim >= 2 only
    grad_clip: float = Field(1.0, ge=0.0)  # max global L2 norm; 0 disables clipping


class LRSchedule(_Strict):
    """Linear warmup, then linear decay to min_lr, then constant: + − × ÷ only.

    No cos/exp: those come from the platform libm and may differ in the last bit.
    """

    kind: Literal["warmup-linear"] = "warmup-linear"
    max_lr: float = Field(3e-3, gt=0.0)
    min_lr: float = Field(3e-4, ge=0.0)
    warmup_steps: int = Field(20, ge=0)
    decay_steps: int = Field(2000, ge=1)  # steps from the end of warmup to min_lr

    def lr_at(self, step: int) -> float:
        """Learning rate of global step `step` (0-based), pure Python floats."""
        if step < self.warmup_steps:
            return self.max_lr * (step + 1) / self.warmup_steps
        t = step - self.warmup_steps
        if t >= self.decay_steps:
            return self.min_lr
        return self.max_lr - (self.max_lr - self.min_lr) * t / self.decay_steps


PLAIN_ONLY_FIELDS = ("device", "threads", "cpu_capability", "mkl_cbwr")  # null in exact mode
CUDA_ONLY_FIELDS = ("gpu_name", "cuda_version", "cublas_workspace_config")


class RuntimePin(_Strict):
    """The runtime a replay is bit-exact in. A process that differs refuses the spec.

    mode "plain": torch's own kernels, bit-exact only inside this pin (same torch build,
    thread count, CPU code path, MKL path; on GPUs the same model, CUDA and cuBLAS config).
    mode "exact": the engine's exact operators (node/engine/exact/): the bits do not depend
    on threads, CPU code path, BLAS library or device, so the pin names only what still
    matters — torch's major version (`torch_version`, e.g. "2") and the dtype; every other
    field is null and a verifier runs on whatever CPU or GPU it has.
    """

    mode: Literal["plain", "exact"] = "plain"
    torch_version: str = "2.13.0+cpu"  # exact mode: the major version only, e.g. "2"
    device: Literal["cpu", "cuda"] | None = "cpu"
    dtype: Literal["float32"] = "float32"
    threads: int | None = Field(1, ge=1, le=1024)  # intra-op threads (also OMP/MKL env)
    cpu_capability: str | None = "AVX2"  # ATEN_CPU_CAPABILITY: default | AVX2 | AVX512 | ...
    mkl_cbwr: str | None = "AVX2"  # MKL_CBWR: pins MKL's code path (conditional bitwise repro)
    deterministic: bool = True  # torch.use_deterministic_algorithms + cudnn flags
    engine: int = ENGINE_VERSION  # what the engine computes (ENGINE_CHANGES); specs without it are engine 1
    # cuda only (None on cpu): the GPU model, CUDA version, cuBLAS workspace config
    gpu_name: str | None = None
    cuda_version: str | None = None
    cublas_workspace_config: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _exact_defaults(cls, data):
        """In exact mode the plain-only fields default to null and torch_version to a major version."""
        if isinstance(data, dict) and data.get("mode") == "exact":
            return {"torch_version": EXACT_TORCH_MAJOR, **{k: None for k in PLAIN_ONLY_FIELDS}, **data}
        return data

    @model_validator(mode="after")
    def _fields_of_mode(self) -> "RuntimePin":
        if not self.deterministic:
            raise ValueError("spec: runtime.deterministic must be true (replay is the point)")
        if self.engine != ENGINE_VERSION:
            raise ValueError(compute_engine_refusal(self.engine))
        if self.mode == "exact":
            pinned = [k for k in (*PLAIN_ONLY_FIELDS, *CUDA_ONLY_FIELDS) if getattr(self, k) is not None]
            if pinned:
                raise ValueError(f"spec: runtime.mode exact pins no {', '.join(pinned)} (must be null): exact operators "
                                 "give the same bits on any thread count, CPU code path, BLAS library and device")
            if not self.torch_version.isdigit():
                raise ValueError(f"spec: runtime.mode exact pins torch's major version only (e.g. \"2\"), "
                                 f"not {self.torch_version!r}")
            return self
        missing = [k for k in PLAIN_ONLY_FIELDS if getattr(self, k) is None]
        if missing:
            raise ValueError(f"spec: runtime.mode plain needs {', '.join(missing)} (bits depend on them)")
        if self.device == "cuda":
            if not (self.gpu_name and self.cuda_version and self.cublas_workspace_config):
                raise ValueError("spec: runtime.device cuda needs gpu_name, cuda_version, cublas_workspace_config")
        elif self.gpu_name or self.cuda_version or self.cublas_workspace_config:
            raise ValueError("spec: gpu_name/cuda_version/cublas_workspace_config are for device cuda only")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """Plain specs serialize as before `mode` existed (their hashes are unchanged); exact specs
        leave out the fields that are null by definition."""
        data = handler(self)
        if self.mode == "plain":
            data.pop("mode", None)
        else:
            for k in (*PLAIN_ONLY_FIELDS, *CUDA_ONLY_FIELDS):
                data.pop(k, None)
        return data

    @classmethod
    def exact(cls, torch_major: str | None = None) -> dict:
        """The runtime fields of an exact-mode spec, for `spec.with_(runtime=RuntimePin.exact())`
        (nulls included, so they replace a plain pin's values)."""
        return {"mode": "exact", "torch_version": torch_major or EXACT_TORCH_MAJOR,
                **{k: None for k in (*PLAIN_ONLY_FIELDS, *CUDA_ONLY_FIELDS)}}


EXACT_TORCH_MAJOR = "2"


def compute_engine_refusal(engine: int) -> str:
    """Why a spec pinned to another engine version is refused, and what to do."""
    was = ENGINE_CHANGES.get(engine, "unknown to this node")
    return (f"spec: runtime.engine {engine} ({was}) cannot be replayed by this node, which runs engine "
            f"{ENGINE_VERSION} ({ENGINE_CHANGES[ENGINE_VERSION]}); its traces would not match bit for bit. "
            f"Use a trainchain release of engine {engine}, or create a new task from a spec made by this "
            f"version (`trainchain spec init`) and train it from its own genesis")


class ProtocolParams(_Strict):
    """What goes on-chain with the task (node.chain.client maps these to create_task)."""

    samples: int = Field(2, ge=1)  # s sampled segments per round (the last one always)
    committee_size: int = Field(3, ge=1)  # c verifiers per round
    quorum: int = Field(2, ge=1)  # q reveals needed, else the round is void
    seal_delay_blocks: int = Field(2, ge=1)
    # phase windows, in blocks (the contract's TaskParams: one window for each of the
    # trainer's two reveals, one for the committee's commitments, one for its reveals)
    reveal_window: int = Field(40, ge=1)
    commit_verdicts_window: int = Field(60, ge=1)
    reveal_verdicts_window: int = Field(40, ge=1)
    trainer_reward_wei: int = Field(10**17, ge=0)  # per finalized round
    verifier_reward_wei: int = Field(10**16, ge=0)  # per majority verifier per round
    trainer_slash_bps: int = Field(5_000, ge=0, le=10_000)  # of the trainer's stake on fraud
    fraud_reward_bps: int = Field(5_000, ge=0, le=10_000)  # of that slash, to the majority; rest to treasury
    verifier_slash_bps: int = Field(500, ge=0, le=10_000)  # minority verifier
    no_show_slash_bps: int = Field(1_000, ge=0, le=10_000)  # missed reveal / verdict
    # a trainer needs this much staked to commit (on top of the deployment's minimum): the slash on fraud
    # is trainer_slash_bps of it, so it sets which forgeries are a loss in expectation (whitepaper §5.1)
    min_trainer_stake_wei: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _quorum(self) -> "ProtocolParams":
        if self.quorum > self.committee_size:
            raise ValueError(f"spec: quorum {self.quorum} > committee_size {self.committee_size}")
        return self


class EpochConfig(_Strict):
    """Epochs with N slots and the DiLoCo outer step (issue #14; docs/protocol-v2-interface.md).
    Absent from a spec = v1: one slot, the identity outer step (lr 1, no momentum)."""

    slots: int = Field(1, ge=1, le=16)  # N trainers per epoch; each trains H = steps_per_round steps
    outer_lr: float = Field(0.7, gt=0.0, le=2.0)  # DiLoCo's outer learning rate
    outer_momentum: float = Field(0.9, ge=0.0, lt=1.0)  # Nesterov momentum of the outer step
    # AdamW moments after the outer step (node/engine/outer.py): `corrected` (m averaged, v the second moment
    # data-parallel with an |A|x batch would have: closest to data-parallel at every seed of bench/diloco-moments.md),
    # averaged (v1 of epochs; every spec written before keeps it: the field is in its canonical JSON), or reset
    inner_moments: Literal["corrected", "average", "reset"] = "corrected"
    # the chain's epoch windows, in blocks (TaskParams claim_window / train_window; Epochs.vy)
    claim_window: int = Field(20, ge=1)  # after an epoch opens (its first claim), slots can be claimed
    train_window: int = Field(200, ge=1)  # after the claim window, every claimed slot must have committed

    @classmethod
    def identity(cls, slots: int = 1) -> "EpochConfig":
        """lr 1, no momentum: with one slot the epoch's state is the slot's final state."""
        return cls(slots=slots, outer_lr=1.0, outer_momentum=0.0)


class DatasetRef(_Strict):
    manifest_cid: str = ""  # the dataset manifest in the content store (dataset.py)


class TaskSpec(_Strict):
    version: Literal[1] = SPEC_VERSION
    name: str = "demo"
    model: ModelConfig = ModelConfig()
    dataset: DatasetRef = DatasetRef()
    optimizer: OptimizerConfig = OptimizerConfig()
    lr: LRSchedule = LRSchedule()
    batch_size: int = Field(8, ge=1, le=65536)  # B sequences per step
    seed: int = Field(1337, ge=0, lt=2**63)
    steps_per_round: int = Field(64, ge=1)  # S
    segment_steps: int = Field(8, ge=1)  # k; M = S / k segments per round
    runtime: RuntimePin = RuntimePin()
    protocol: ProtocolParams = ProtocolParams()
    epochs: EpochConfig | None = None  # None: v1 (left out of the canonical JSON, so v1 hashes stay)

    @model_validator(mode="before")
    @classmethod
    def _engine_pinned(cls, data):
        # a spec written before runtime.engine existed was trained by engine 1: refuse it by name
        # rather than let the field's default silently relabel it as the current engine
        if isinstance(data, dict) and isinstance(data.get("runtime"), dict) and "engine" not in data["runtime"]:
            raise ValueError(compute_engine_refusal(1) + " (the spec has no runtime.engine: it predates engine 2)")
        return data

    @model_validator(mode="after")
    def _segments(self) -> "TaskSpec":
        if self.steps_per_round % self.segment_steps:
            raise ValueError(
                f"spec: steps_per_round {self.steps_per_round} not a multiple of segment_steps {self.segment_steps}"
            )
        from node.protocol import MAX_SPAN_STEPS, is_every_check_disputable

        if not is_every_check_disputable(self.segment_steps):
            raise ValueError(f"spec: segment_steps {self.segment_steps} above {MAX_SPAN_STEPS // 2}: the last check "
                             f"(2k steps) could not be disputed (a dispute posts at most {MAX_SPAN_STEPS} step hashes)")
        m = self.segments_per_round
        if m < 2:
            raise ValueError("spec: a round needs at least 2 segments")
        if self.protocol.samples > m:
            raise ValueError(f"spec: samples {self.protocol.samples} > segments per round {m}")
        return self

    @property
    def segments_per_round(self) -> int:
        return self.steps_per_round // self.segment_steps

    @property
    def context_length(self) -> int:
        return self.model.block_size

    # ------------------------------------------------------------ encodings
    def canonical_json(self) -> bytes:
        """Sorted keys, no spaces, ASCII: one byte string per spec."""
        data = self.model_dump(mode="json")
        if data.get("epochs") is None:
            data.pop("epochs", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode()

    def spec_hash(self) -> bytes:
        from eth_utils import keccak

        return keccak(self.canonical_json())

    @classmethod
    def from_json(cls, data: bytes | str) -> "TaskSpec":
        """Parse a spec; raises SpecError with the offending field in words."""
        try:
            return cls.model_validate_json(data, strict=True)
        except ValueError as exc:
            raise SpecError(f"spec: invalid task spec: {exc}") from None

    @classmethod
    def from_file(cls, path) -> "TaskSpec":
        from pathlib import Path

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SpecError(f"spec: cannot read {path}: {exc.strerror}") from None
        return cls.from_json(data)

    def with_(self, **changes) -> "TaskSpec":
        """A copy with nested changes, validated: spec.with_(lr={"max_lr": 1e-3})."""
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            if isinstance(value, dict):
                data[key] = {**(data[key] or {}), **value}  # an absent optional section (epochs) starts empty
            else:
                data[key] = value
        return type(self).model_validate(data, strict=False)

    # ------------------------------------------------------------ presets
    @classmethod
    def default(cls, dataset_cid: str = "") -> "TaskSpec":
        """The base every preset edits: the demo's tiny GPT with short rounds (64 steps, ~1 s of
        training: quick tests). `preset("demo")` is what `make demo`, `spec init` and the bench run."""
        return cls(dataset=DatasetRef(manifest_cid=dataset_cid))

    @classmethod
    def preset(cls, name: str, dataset_cid: str = "") -> "TaskSpec":
        if name not in PRESETS:
            raise SpecError(f"spec: unknown preset {name!r}; known: {sorted(PRESETS)}")
        return cls.default(dataset_cid).with_(name=name, **PRESETS[name])


# Presets for benches: the 875k model of determinism.md, then ~10M and ~100M parameters.
PRESETS: dict[str, dict] = {
    # a round trains for ~33 s on one core: well past its commit->final latency (~10 blocks plus the
    # committee's replay: 15-22 s measured at 1 s blocks on the bench's shared core), so a pipelined trainer
    # never waits for the chain (bench/README.md: protocol overhead; at 1024 steps the two were within a
    # second of each other and a quiet run turned latency-bound). M = 32 keeps the boundary hashing and
    # checkpoints at ~1% of the round and each verifier's replay at (s+1)/M of it.
    # M = 32, s = 2 checks a one-segment forgery with p = 0.064 at its least-sampled position, so against
    # the deployment's minimum stake a forgery worth the round reward pays; protocol.min_trainer_stake_wei
    # raises the stake at risk, at the price of larger false convictions by a lazy majority (whitepaper §5.6)
    "demo": {"steps_per_round": 2048, "segment_steps": 64, "lr": {"decay_steps": 8000}},
    "tiny": {"model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32}, "batch_size": 4,
             "steps_per_round": 16, "segment_steps": 4},
    "875k": {"model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128}, "batch_size": 32},
    "10m": {"model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 128}, "batch_size": 8},
    "100m": {"model": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 128}, "batch_size": 4},
}
