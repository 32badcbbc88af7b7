"""A byte-level GPT in the nanoGPT layout, written for bit-exact replay.

Differences from nanoGPT, each for determinism: attention is written out (no SDPA
kernel choice); dropout masks come from the step's counter-based stream (rng.StepRandom,
passed to `forward` as `rng`), each site under its own name, never from torch's global
RNG, so a forward's bits do not depend on what other threads do; and weights are only
initialised in `init_weights` (called by genesis.make_genesis, never on a verifier).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rng import StepRandom
from .spec import ModelConfig


class Dropout(nn.Module):
    """Dropout whose mask is drawn from the forward's StepRandom under a fixed site name."""

    def __init__(self, p: float, site: str):
        super().__init__()
        self.p, self.site = p, site

    def forward(self, x: torch.Tensor, rng: StepRandom | None) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if rng is None:
            raise ValueError(f"model: dropout {self.site} in training needs the step's rng (forward(..., rng=))")
        return rng.dropout(x, self.p, self.site)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.attn_dropout = Dropout(cfg.dropout, f"h.{layer}.attn")
        self.resid_dropout = Dropout(cfg.dropout, f"h.{layer}.resid")

    def forward(self, x: torch.Tensor, rng: StepRandom | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # no buffer: models are built on meta
        att = att.masked_fill(~causal, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1), rng)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y), rng)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = Dropout(cfg.dropout, f"h.{layer}.mlp")

    def forward(self, x: torch.Tensor, rng: StepRandom | None) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))), rng)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg, layer)

    def forward(self, x: torch.Tensor, rng: StepRandom | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rng)
        return x + self.mlp(self.ln_2(x), rng)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),  # token embedding, tied to lm_head
                wpe=nn.Embedding(cfg.block_size, cfg.n_embd),  # position embedding
                drop=Dropout(cfg.dropout, "emb"),
                h=nn.ModuleList([Block(cfg, layer) for layer in range(cfg.n_layer)]),
                ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
            )
        )
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        self.lm_head.weight = self.transformer.wte.weight  # one tensor: lm_head = wte

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """nanoGPT init from an explicit generator; only genesis calls this (verifiers load
        weights, never draw them). Parameters are drawn in sorted-name order."""
        for name, p in sorted(self.named_parameters()):
            if name.endswith("c_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * self.cfg.n_layer), generator=generator)
            elif p.dim() >= 2:
                p.normal_(0.0, 0.02, generator=generator)
            elif "ln_" in name and name.endswith("weight"):
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, rng: StepRandom | None = None):
        """Logits (B, T, vocab) and the mean cross-entropy if targets; `rng` draws the dropout
        masks (needed in training mode when dropout > 0)."""
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"model: sequence of {T} tokens > block_size {self.cfg.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos), rng)  # (B, T, C)
        for block in self.transformer.h:
            x = block(x, rng)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss


class SkipMetaInit(torch.overrides.TorchFunctionMode):
    """Skip the modules' own weight init on meta tensors (there are no values to fill). torch runs the meta
    `normal_` through a Python reference whose first call imports torch._dynamo: ~1.3 s of CPU in every process
    that builds a model (each node's first training or replay)."""

    INIT_OPS = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "zero_", "zeros_", "fill_",
                          "ones_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("tensor")  # nn.init's functions pass it by name
        if getattr(func, "__name__", None) in self.INIT_OPS and isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        return func(*args, **kwargs)


def build_model(cfg: ModelConfig, device: str | torch.device = "cpu") -> GPT:
    """A GPT with uninitialised weights on `device`: the caller loads a state into it.

    Built on the meta device, so no weights are ever drawn outside genesis.
    """
    with torch.device("meta"), SkipMetaInit():
        model = GPT(cfg)
    model.to_empty(device=device)
    model.tie_weights()  # to_empty may replace the shared Parameter by two
    return model


def count_parameters(cfg: ModelConfig) -> int:
    """Parameters of the model (tied lm_head counted once), without building it."""
    C, L, V, T = cfg.n_embd, cfg.n_layer, cfg.vocab_size, cfg.block_size
    b = 1 if cfg.bias else 0
    per_block = 2 * (C + b * C) + (3 * C * C + b * 3 * C) + (C * C + b * C) + (4 * C * C + b * 4 * C) + (4 * C * C + b * C)
    return V * C + T * C + L * per_block + (C + b * C)
