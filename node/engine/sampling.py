"""Forward-only sampling from a state (for `trainchain generate`)."""
from __future__ import annotations

import torch

from .model import build_model
from .spec import TaskSpec
from .state import TrainingState, load_state
from .step import seed_for


@torch.no_grad()
def generate(state, spec: TaskSpec, prompt: str | bytes, max_new_tokens: int = 200,
             temperature: float = 0.8, seed: int = 0, top_k: int | None = None) -> str:
    """Continue `prompt` byte by byte; returns prompt + continuation (UTF-8, errors replaced)."""
    if not isinstance(state, TrainingState):
        state = load_state(state)
    if temperature < 0:
        raise ValueError("generate: temperature must be >= 0")
    model = build_model(spec.model)
    state.check_against(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(state.params[name])
    model.eval()
    data = prompt.encode() if isinstance(prompt, str) else bytes(prompt)
    idx = torch.tensor([list(data or b"\n")], dtype=torch.long)  # (1, T)
    gen = torch.Generator().manual_seed(seed_for(seed, 0, "generate"))
    T = spec.model.block_size
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -T:])
        logits = logits[:, -1, :]  # (1, vocab)
        if temperature == 0:
            nxt = logits.argmax(dim=-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("inf")
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)
        idx = torch.cat([idx, nxt], dim=1)
    out = bytes(idx[0].tolist())
    return (out if data else out[1:]).decode("utf-8", errors="replace")
