"""The engine's GPT (node/engine/model.py) forward and backward, written out with exact operators.

Same layout, same parameter names (the TrainingState's), same function — except GELU, which
is the tanh form here (exp is exact, erf would need its own polynomial). The backward is
written by hand, not autograd: every gradient op is one of ops.py's, so its bits are the same
on any thread count, CPU code path, BLAS or device. Shapes: B batch, T context, C n_embd,
nh heads, hs = C / nh, V vocab; N = B·T rows.

    loss, grads = forward_backward(cfg, params, x, y, dropout)    # grads: name -> float32

`dropout(site, shape) -> bool keep-mask | None` gives the masks (None: dropout off); the
step draws them from counter-based bits (node/engine/rng.py) under the plain model's site
names (emb, h.<L>.attn, h.<L>.resid, h.<L>.mlp), so both modes drop the same elements.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .optim import f32
from .ops import F32, F64, exact_matmul, exp64, gelu_backward, gelu_forward, layer_norm_backward, layer_norm_forward, \
    log64, map_rows, softmax_backward, softmax_rows, tree_sum

Dropout = Callable[[str, tuple], "torch.Tensor | None"]


def no_dropout(purpose: str, shape: tuple) -> None:
    return None


# ------------------------------------------------------------------ building blocks
def linear_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """x (N, in) @ w.T (in, out) + b: exact GEMM, bias added in float64, one rounding."""
    y = exact_matmul(x, w.t(), F64)
    if b is not None:
        y.add_(b)
    return y.to(F32)


def linear_backward(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor, has_bias: bool):
    """(dx, dw, db) of linear_forward: dx = dy @ w, dw = dy.T @ x, db = Σ_rows dy (tree order)."""
    dx = exact_matmul(dy, w)
    dw = exact_matmul(dy.t(), x)
    db = tree_sum(dy, 0) if has_bias else None
    return dx, dw, db


def apply_dropout(x: torch.Tensor, keep: torch.Tensor | None, p: float) -> torch.Tensor:
    """Inverted dropout as the plain model's (rng.StepRandom.dropout): x · keep · fl32(1/(1−p)),
    two IEEE multiplies per element."""
    if keep is None:
        return x
    return (x * keep.to(x.dtype)).mul_(f32(1.0 / (1.0 - p)))


def _cross_entropy_rows(logits: torch.Tensor, targets: torch.Tensor, n: int):
    z = logits.to(F64)
    z = z - z.amax(dim=-1, keepdim=True)
    e = exp64(z)
    s = tree_sum(e, -1, keepdim=True)
    t = targets.view(-1, 1)
    losses = log64(s) - z.gather(1, t)  # (rows, 1): log Σ e^z − z_target
    p = e.div_(s)
    p.scatter_(1, t, p.gather(1, t) - 1.0)
    return losses, p.div_(n).to(F32)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean cross-entropy over N rows and its gradient d loss / d logits (float32).

    In float64: max, exp64, tree sums, log64; the mean over rows is a tree sum too.
    """
    n = logits.shape[0]
    losses, dlogits = map_rows(lambda z, t: _cross_entropy_rows(z, t, n), logits, targets)
    return float(tree_sum(losses.view(-1), 0)) / n, dlogits  # Python float division: IEEE


# ------------------------------------------------------------------ the model
def _params_of_block(params: dict, i: int) -> dict:
    prefix = f"transformer.h.{i}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def attention_forward(cfg, p: dict, h: torch.Tensor, B: int, T: int, keep_att, keep_resid):
    C, nh = cfg.n_embd, cfg.n_head
    hs = C // nh
    qkv = linear_forward(h, p["attn.c_attn.weight"], p.get("attn.c_attn.bias"))  # (N, 3C)
    q, k, v = (t.reshape(B, T, nh, hs).transpose(1, 2) for t in qkv.split(C, dim=1))  # (B, nh, T, hs)
    causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
    s = exact_matmul(q, k.transpose(-2, -1))  # (B, nh, T, T)
    att = softmax_rows(s, causal, scale=1.0 / math.sqrt(hs))
    att_d = apply_dropout(att, keep_att, cfg.dropout)
    y = exact_matmul(att_d, v)  # (B, nh, T, hs)
    y = y.transpose(1, 2).reshape(B * T, C)
    out = linear_forward(y, p["attn.c_proj.weight"], p.get("attn.c_proj.bias"))
    cache = (h, q, k, v, att, att_d, keep_att, y, keep_resid)
    return apply_dropout(out, keep_resid, cfg.dropout), cache


def attention_backward(cfg, p: dict, dout: torch.Tensor, cache, B: int, T: int, grads: dict, prefix: str):
    C, nh = cfg.n_embd, cfg.n_head
    hs = C // nh
    h, q, k, v, att, att_d, keep_att, y, keep_resid = cache
    dout = apply_dropout(dout, keep_resid, cfg.dropout)
    dy, grads[prefix + "attn.c_proj.weight"], db = linear_backward(dout, y, p["attn.c_proj.weight"], cfg.bias)
    if cfg.bias:
        grads[prefix + "attn.c_proj.bias"] = db
    dy = dy.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    datt_d = exact_matmul(dy, v.transpose(-2, -1))  # (B, nh, T, T)
    dv = exact_matmul(att_d.transpose(-2, -1), dy)
    drop_scale = float(f32(1.0 / (1.0 - cfg.dropout))) if keep_att is not None else 1.0  # as the forward's
    ds = softmax_backward(datt_d, att, 1.0 / math.sqrt(hs), keep_att, drop_scale)  # (masked: att = 0 there)
    dq = exact_matmul(ds, k)
    dk = exact_matmul(ds.transpose(-2, -1), q)
    dqkv = torch.cat([t.transpose(1, 2).reshape(B * T, C) for t in (dq, dk, dv)], dim=1)  # (N, 3C)
    dh, grads[prefix + "attn.c_attn.weight"], db = linear_backward(dqkv, h, p["attn.c_attn.weight"], cfg.bias)
    if cfg.bias:
        grads[prefix + "attn.c_attn.bias"] = db
    return dh


def mlp_forward(cfg, p: dict, h: torch.Tensor, keep):
    u = linear_forward(h, p["mlp.c_fc.weight"], p.get("mlp.c_fc.bias"))  # (N, 4C)
    g, t = gelu_forward(u)
    out = linear_forward(g, p["mlp.c_proj.weight"], p.get("mlp.c_proj.bias"))
    return apply_dropout(out, keep, cfg.dropout), (h, u, t, g, keep)


def mlp_backward(cfg, p: dict, dout: torch.Tensor, cache, grads: dict, prefix: str):
    h, u, t, g, keep = cache
    dout = apply_dropout(dout, keep, cfg.dropout)
    dg, grads[prefix + "mlp.c_proj.weight"], db = linear_backward(dout, g, p["mlp.c_proj.weight"], cfg.bias)
    if cfg.bias:
        grads[prefix + "mlp.c_proj.bias"] = db
    du = gelu_backward(dg, u, t)
    dh, grads[prefix + "mlp.c_fc.weight"], db = linear_backward(du, h, p["mlp.c_fc.weight"], cfg.bias)
    if cfg.bias:
        grads[prefix + "mlp.c_fc.bias"] = db
    return dh


def forward_backward(cfg, params: dict, idx: torch.Tensor, targets: torch.Tensor,
                     dropout: Dropout = no_dropout) -> tuple[float, dict]:
    """Loss of the batch and the gradient of every parameter (names as model.GPT's, float32)."""
    B, T = idx.shape
    C, N = cfg.n_embd, B * T
    if T > cfg.block_size:
        raise ValueError(f"model: sequence of {T} tokens > block_size {cfg.block_size}")
    wte, wpe = params["transformer.wte.weight"], params["transformer.wpe.weight"]
    drop = dropout if cfg.dropout > 0 else no_dropout
    # ---- forward (cache what the backward needs)
    x = wte[idx.reshape(-1)] + wpe[:T].repeat(B, 1)  # (N, C): one IEEE add per element
    keep_emb = drop("emb", (B, T, C))
    x = apply_dropout(x, None if keep_emb is None else keep_emb.reshape(N, C), cfg.dropout)
    caches = []
    for i in range(cfg.n_layer):
        p = _params_of_block(params, i)
        h1, ln1 = layer_norm_forward(x, p["ln_1.weight"], p.get("ln_1.bias"))
        keep_att = drop(f"h.{i}.attn", (B, cfg.n_head, T, T))
        keep_res = drop(f"h.{i}.resid", (B, T, C))
        a, att_cache = attention_forward(cfg, p, h1, B, T, keep_att,
                                         None if keep_res is None else keep_res.reshape(N, C))
        x = x + a
        h2, ln2 = layer_norm_forward(x, p["ln_2.weight"], p.get("ln_2.bias"))
        keep_mlp = drop(f"h.{i}.mlp", (B, T, C))
        m, mlp_cache = mlp_forward(cfg, p, h2, None if keep_mlp is None else keep_mlp.reshape(N, C))
        x = x + m
        caches.append((ln1, att_cache, ln2, mlp_cache))
    hf, lnf = layer_norm_forward(x, params["transformer.ln_f.weight"], params.get("transformer.ln_f.bias"))
    logits = exact_matmul(hf, wte.t())  # (N, V): lm_head tied to wte
    loss, dlogits = cross_entropy(logits, targets.reshape(-1))
    # ---- backward
    grads: dict[str, torch.Tensor] = {}
    dhf = exact_matmul(dlogits, wte)
    dwte_head = exact_matmul(dlogits.t(), hf, F64)
    dx, grads["transformer.ln_f.weight"], db = layer_norm_backward(dhf, params["transformer.ln_f.weight"], lnf)
    if cfg.bias:
        grads["transformer.ln_f.bias"] = db
    for i in reversed(range(cfg.n_layer)):
        p, prefix = _params_of_block(params, i), f"transformer.h.{i}."
        ln1, att_cache, ln2, mlp_cache = caches[i]
        dh2 = mlp_backward(cfg, p, dx, mlp_cache, grads, prefix)
        dx2, grads[prefix + "ln_2.weight"], db = layer_norm_backward(dh2, p["ln_2.weight"], ln2)
        if cfg.bias:
            grads[prefix + "ln_2.bias"] = db
        dx = dx + dx2
        dh1 = attention_backward(cfg, p, dx, att_cache, B, T, grads, prefix)
        dx1, grads[prefix + "ln_1.weight"], db = layer_norm_backward(dh1, p["ln_1.weight"], ln1)
        if cfg.bias:
            grads[prefix + "ln_1.bias"] = db
        dx = dx + dx1
    dx = apply_dropout(dx, None if keep_emb is None else keep_emb.reshape(N, C), cfg.dropout)
    # embedding backward: one-hot(idx).T @ dx, an exact GEMM (fixed result, no scatter-add order)
    onehot = torch.nn.functional.one_hot(idx.reshape(-1), cfg.vocab_size).to(F32)  # (N, V), 0/1 exactly
    dwte_emb = exact_matmul(onehot.t(), dx, F64)
    grads["transformer.wte.weight"] = (dwte_head + dwte_emb).to(F32)
    dwpe = torch.zeros_like(wpe)
    dwpe[:T] = tree_sum(dx.reshape(B, T, C), 0)
    grads["transformer.wpe.weight"] = dwpe
    return loss, grads
