"""Dishonest trainers: the real TrainerNode with one thing changed each (demo and tests only).

- CheatingTrainer(cheat=dict(...)) or (skip_segments={j}): trains through cheats.CheatingRounds
  (skipped segments, other data, a changed hyper-parameter) and commits as if honest. With defend=True it
  defends a dispute instead of missing its post: its honest replay of the span with the last hash replaced by
  its forged end leaf (a post the contract takes), so the forgery goes to a jury (and, lost there, to appeal).
- WithholdingTrainer: commits and seals, then goes silent (never reveals, never finalizes).
- ForgingTrainer(boundary=j): trains honestly, then replaces boundary checkpoint j by a forged
  state (perturbed weights) and commits the forged h_j (training is not redone from it).
- FinalSwapTrainer: commits an honest trace but reveals the CID of another checkpoint as the final one.
- FinalWithholdingTrainer: commits an honest trace but reveals a final CID whose content it serves to nobody.
"""
from __future__ import annotations

import logging
from pathlib import Path

from node import protocol
from node.roles.trainer import TrainerNode

log = logging.getLogger("trainchain.trainer")


class CheatingTrainer(TrainerNode):
    """Trains as `cheat` says (node.adversaries.cheats.Cheat fields, plain values) and commits as if honest.

    The last segment is always sampled, so `CheatingTrainer(..., skip_segments={M-1})` is always caught.
    """

    def __init__(self, *args, skip_segments=frozenset(), cheat: dict | None = None, defend: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.cheat_kw = {"skip_segments": skip_segments, **(cheat or {})}
        self.defend = defend

    def make_span_hashes(self):
        honest = super().make_span_hashes()
        if not self.defend:
            return honest  # its real replay cannot end at the forged leaf: post_steps reverts, the move is missed

        def defended(d, steps: int) -> list[bytes]:
            hashes = honest(d, steps)
            if steps == d.span_steps and len(hashes) == steps + 1 and hashes[-1] != d.end_hash:
                log.warning("ADVERSARY: dispute %d: posting the span with its last hash forged (0x%s)", d.dispute_id,
                            d.end_hash.hex()[:12])
                hashes[-1] = d.end_hash  # only the last step is contested: the challenger names it
            return hashes
        return defended

    def round_trainer(self):
        from node.adversaries.cheats import Cheat, CheatingRounds  # torch: only after the runtime pin

        cheat = Cheat.of(**self.cheat_kw)
        log.warning("ADVERSARY: training with %s", cheat)
        return CheatingRounds(cheat)


class WithholdingTrainer(TrainerNode):
    """Commits and seals, then goes silent (never reveals, never finalizes): the
    committee finalizes the round as abandoned and the trainer is slashed."""

    def reveal_starts(self, round_id: int, data: dict) -> None:
        pass

    def reveal_ends(self, round_id: int, data: dict) -> None:
        pass

    def finalize(self, round_id: int) -> None:
        pass


class ForgingTrainer(TrainerNode):
    def __init__(self, *args, boundary: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.boundary = boundary

    def train(self, task: dict, base_hash: bytes) -> dict:
        import torch

        from node.engine.state import load_state, save_state

        pending = super().train(task, base_hash)
        j = self.boundary
        cid = pending["cids"][j]
        src = Path(pending["out_dir"]) / "forged-src.safetensors"
        self.store.get_file(cid, src)
        state = load_state(src)
        name = sorted(state.params)[0]
        state.params[name] = state.params[name] + torch.full_like(state.params[name], 1e-3)  # a "better" weight
        forged = Path(pending["out_dir"]) / f"forged-{j}.safetensors"
        h = save_state(forged, state)
        hashes = list(pending["boundary_hashes"])
        hashes[j] = h
        pending["boundary_hashes"] = hashes
        pending["cids"][j] = self.store.put_file(forged)
        pending["trace_root"] = protocol.compute_merkle_root(hashes)
        self.db.put_json(self.pending_key(), pending)
        log.warning("ADVERSARY: boundary %d forged (h=0x%s)", j, h.hex()[:12])
        return self.db.get_json(self.pending_key())


class FinalSwapTrainer(TrainerNode):
    def final_cid(self, data: dict) -> str:
        return data["cids"][-2]  # h_{M-1}'s checkpoint as "final"

    def reveal_ends(self, round_id: int, data: dict) -> None:
        data = dict(data, cids=list(data["cids"][:-1]) + [self.final_cid(data)])
        log.warning("ADVERSARY: round %d: revealing %s as the final checkpoint", round_id, data["cids"][-1])
        super().reveal_ends(round_id, data)


class FinalWithholdingTrainer(FinalSwapTrainer):
    """Reveals, as the final checkpoint, a CID that no store holds (an honest h_M, content served to nobody): the
    canonical model would point at nothing. Members cannot fetch it and dispute FLAG_FINAL answering
    protocol.ANSWER_UNAVAILABLE; jurors cannot fetch it either."""

    def final_cid(self, data: dict) -> str:
        import os

        from node.store.cid import DagBuilder

        builder = DagBuilder()
        builder.add_chunk(os.urandom(1024))  # never added to any store
        return str(builder.finish())
