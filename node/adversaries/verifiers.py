"""Dishonest verifiers: the real VerifierNode, configured to misbehave (adversarial suite only).

    node = MisbehavingVerifier(chain, store, db, workdir, mode="lazy")

Deliberately not a CLI flag. Modes:
- "lazy":       approves without replaying: commits the revealed start hashes as the end
                hashes (the only hashes it can see before committing), every flag true.
- "reject":     rejects everything: random end hashes, every flag bad.
- "accuse":     rejects everything without replaying (as "reject") and, on a deployment with Disputes,
                disputes every round it contradicted and names step 1 of the span without replaying
                (a lazy challenger betting the trainer will not defend; as a juror it votes against the
                trainer). The demo's lazy verifier: it loses its bond to the honest trainer and the jury.
                With `appeal=True` (`--appeal`) it also appeals the jury's count it lost to the whole verifier
                set (a griefing accuser: it bonds an answer it never computed); by default it does not.
- "silent":     commits an honest verdict, then never reveals it.
- "equivocate": commits an honest verdict, then reveals other end hashes (the contract
                refuses them, so it never opens its commitment).
- "copy":       commits a copy of the first commitment another member put on chain.
- "collude":    commits the end hashes a cheating trainer hands it (`accomplice`: the
                trainer's NodeDB, read directly: the off-chain side channel), all flags true.
Everything else (discovery, deadlines, finalize, claims) is the honest node's code.
"""
from __future__ import annotations

import logging
import os

from node import protocol
from verifier.node import VerifierNode

log = logging.getLogger("trainchain.verifier")

MODES = ("lazy", "reject", "accuse", "silent", "equivocate", "copy", "collude")


class MisbehavingVerifier(VerifierNode):
    def __init__(self, *args, mode: str, accomplice=None, appeal: bool = False, **kwargs):
        if mode not in MODES:
            raise ValueError(f"adversary: unknown verifier mode {mode!r}; known: {MODES}")
        if mode == "collude" and accomplice is None:
            raise ValueError("adversary: a colluding verifier needs the trainer's NodeDB (accomplice)")
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.accomplice = accomplice
        self.appeal = appeal

    def compute_verdict(self, rec, rnd) -> dict:
        samples = list(self.chain.call(self.chain.rounds.functions.round_samples_of(rec.round_id)))
        if self.mode == "lazy":
            starts = [bytes(h) for h in self.chain.call(self.chain.rounds.functions.start_hashes_of(rec.round_id))]
            return {"end_hashes": starts, "data_root_ok": True, "starts_ok": True, "verdict_samples": samples}
        if self.mode in ("reject", "accuse"):
            return {"end_hashes": [os.urandom(32) for _ in samples], "data_root_ok": False, "starts_ok": False,
                    "verdict_samples": samples}
        if self.mode == "collude":
            trace = self.accomplice.get_round("trainer", rec.round_id)
            hashes = list(trace.data["boundary_hashes"])
            ends = protocol.compute_check_ends(samples, len(hashes) - 1)
            return {"end_hashes": [hashes[e] for e in ends], "data_root_ok": True, "starts_ok": True,
                    "verdict_samples": samples}
        return super().compute_verdict(rec, rnd)

    def compute_final_ok(self, rec, rnd) -> bool:
        if self.mode in ("lazy", "collude"):
            return True  # approves without fetching the final checkpoint
        if self.mode in ("reject", "accuse"):
            return False
        return super().compute_final_ok(rec, rnd)

    @property
    def appeals_lost_votes(self) -> bool:
        # an accuser never replayed: it has no answer of its own to put an appeal bond on (65 juror rewards), so the
        # jury's vote against it stands — unless told to grief (`appeal`): then it bonds its made-up answer again
        return self.mode != "accuse" or self.appeal

    def make_span_hashes(self):
        if self.mode != "accuse":
            return super().make_span_hashes()

        def no_replay(d, steps: int) -> list[bytes]:
            # the span's start leaf, then anything: the first step differs, so step 1 is named (and voted on)
            return [d.start_hash] + [os.urandom(32) for _ in range(steps)]
        return no_replay

    def dispute_flag_answer(self, round_id: int, flag: int) -> bytes | None:
        if self.mode == "accuse":
            return os.urandom(32)  # checks nothing: a guess (a flag dispute it opens is lost; as a juror, counts for nobody)
        return super().dispute_flag_answer(round_id, flag)

    def commit_verdict(self, rec, rnd) -> None:
        if self.mode != "copy" or rec.phase == "verdict_ready":
            return super().commit_verdict(rec, rnd)
        theirs = [e for e in self.chain.events("VerdictCommitted", rec.data.get("sealed_block"), round_id=rec.round_id)
                  if e["args"]["verifier"] != self.address]
        if not theirs:
            return  # nothing to copy yet: wait for the next tick
        copied = bytes(theirs[0]["args"]["commitment"])
        log.warning("ADVERSARY: round %d: copying the commitment of %s", rec.round_id, theirs[0]["args"]["verifier"])
        self.db.set_phase("verifier", rec.round_id, "verdict_ready", salt=os.urandom(32), commitment=copied,
                          end_hashes=[], data_root_ok=True, starts_ok=True)
        self.send_commitment(rec.round_id, copied)

    def reveal_verdict(self, rec, rnd) -> None:
        if self.mode == "silent":
            if not rec.data.get("silent_logged"):
                log.warning("ADVERSARY: round %d: not revealing", rec.round_id)
                self.db.set_phase("verifier", rec.round_id, rec.phase, silent_logged=True)
            return
        if self.mode == "equivocate":
            rec.data["end_hashes"] = [os.urandom(32) for _ in rec.data["end_hashes"]]
        return super().reveal_verdict(rec, rnd)
