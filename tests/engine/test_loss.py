"""Training works: the loss of a small model goes down over a few hundred steps of the demo corpus."""
from __future__ import annotations

from statistics import mean

from node.engine.genesis import compute_genesis_state
from node.engine import generate
from node.engine.step import Trainer


def test_loss_goes_down_over_a_few_hundred_steps(tiny_spec, dataset):
    spec = tiny_spec.with_(lr={"max_lr": 0.01, "min_lr": 0.001, "warmup_steps": 20, "decay_steps": 280})
    trainer = Trainer(spec, compute_genesis_state(spec))
    losses = [trainer.step(dataset.batch_for(spec, g)) for g in range(300)]
    first, last = mean(losses[:20]), mean(losses[-30:])
    assert losses[0] > 5.0  # ~ln(256) = 5.55: an untrained byte model
    print(f"loss {losses[0]:.3f} -> first 20 {first:.3f} -> last 30 {last:.3f}")
    assert last < 3.3 and last < first - 1.0, (first, last)
    text = generate(trainer.state(), spec, "def ", max_new_tokens=40, temperature=0.5, seed=1)
    assert text.startswith("def ") and len(text) > 10
    assert text == generate(trainer.state(), spec, "def ", max_new_tokens=40, temperature=0.5, seed=1)
