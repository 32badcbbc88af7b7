"""The final handoff: an epoch's co-trainers learn each other's final state at the commit, not at the ends reveal.

Training ahead (node/roles/epoch_trainer.py) starts a trainer's slot of epoch e+1 once it knows the final state
h_M of every committed slot of e. On chain a co-trainer's h_M appears only with that slot's ends reveal, which
waits for the seal, the starts reveal, the committee's replays and its final flags: 13-44 blocks in which every
co-trainer idles (bench/epochs.md). But the slot's own trainer knows h_M at its commit, and its commit already
binds it: h_M is leaf M of the committed trace root. So the trainer hands it to the epoch's *other committed
trainers* (and nobody else) when they ask, with its Merkle proof and its checkpoint's CID:

    board = HandoffBoard(chain_id)                        # the trainer's offers; its gateway's thread reads them
    board.offer(FinalOffer(...), allowed={co-trainers})
    gateway.routes[FINAL_ROUTE] = board.answer            # GET /trainchain/final?task=&epoch=&slot=&requester=&issued=&sig=
    offer = request_final(url, account, chain_id, task, epoch, slot)   # a co-trainer asks (signed, time-stamped)
    why = why_not_valid(offer, task, epoch, slot, slot_id, rnd, n_leaves)  # checked against the chain: None = valid

Nothing is trusted: the co-trainer checks the proof against the trace root on chain (the tree size from the
task, not from the offer), and compute_aggregate checks the fetched checkpoint against h_M, so a wrong offer
costs the asker a retry at the ends reveal (the old path), never a wrong base. A trainer that does not answer
costs the same. Who may ask is proven by a signature (EIP-191) over the request, issued within FRESH_SECONDS of
the server's clock (a wall clock, not a block: the server's main thread may be busy training for minutes, and
the board must answer without reading the chain), by an address that holds another committed slot of the epoch.

What it changes for the committee (whitepaper §3.6): the ends reveal keeps h_M from the committee so that no
member can copy it instead of replaying. A slot's trainer could always tell anyone its own h_M; the handoff
tells it to the epoch's co-trainers only, and a co-trainer who passes it on to a committee member is the same
collusion (a forged h_M handed on is the forger's own, which the honest replays contradict). A trainer that
wants none of it runs `--no-final-handoff`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass

from node import protocol

log = logging.getLogger("trainchain.handoff")

FINAL_ROUTE = "/trainchain/final"
FRESH_SECONDS = 300  # a request issued further from the server's clock is refused (a replayed request)
MAX_ANSWER_BYTES = 64 * 1024  # an offer is a few hundred bytes: a peer sending more is cut off


class HandoffError(Exception):
    """A final state could not be handed off (refused, unreachable, malformed); the asker waits for the reveal.
    `answered`: the peer answered (a 404 or a 403 is often only "not yet": a trainer offers from the block after its
    commit, and reads who may ask once per block, so a co-trainer that committed a block later is refused until
    then), so asking again next block costs one quick round trip; unreachable peers (refused, timed out) are worth
    a pause."""

    def __init__(self, message: str, answered: bool = True):
        super().__init__(message)
        self.answered = answered


@dataclass(frozen=True)
class FinalOffer:
    """What a trainer hands its co-trainers: its slot's h_M, the checkpoint's CID and the proof of leaf M."""

    task: int
    epoch: int
    slot: int
    slot_id: int
    final_hash: bytes
    final_cid: str
    proof: tuple[bytes, ...]

    def to_json(self) -> dict:
        return {**asdict(self), "final_hash": "0x" + self.final_hash.hex(), "proof": ["0x" + p.hex() for p in self.proof]}

    @classmethod
    def from_json(cls, d: dict) -> "FinalOffer":
        """Parse a peer's answer; HandoffError in words on anything malformed."""
        try:
            fields = {k: d[k] for k in ("task", "epoch", "slot", "slot_id", "final_hash", "final_cid", "proof")}
            ints = {k: fields[k] for k in ("task", "epoch", "slot", "slot_id")}
            if not all(type(v) is int and v >= 0 for v in ints.values()):
                raise ValueError(f"task, epoch, slot and slot_id must be non-negative integers, not {ints}")
            if not isinstance(fields["final_cid"], str) or not 0 < len(fields["final_cid"]) <= 128:
                raise ValueError("final_cid must be a CID string")
            if not isinstance(fields["proof"], list) or len(fields["proof"]) > protocol.MAX_DEPTH:
                raise ValueError(f"proof must be a list of at most {protocol.MAX_DEPTH} hashes")
            return cls(**ints, final_hash=_bytes32(fields["final_hash"]), final_cid=fields["final_cid"],
                       proof=tuple(_bytes32(p) for p in fields["proof"]))
        except (KeyError, TypeError, ValueError) as e:
            raise HandoffError(f"malformed final offer: {e}") from None


def _bytes32(text) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 66:
        raise ValueError(f"{str(text)[:80]!r} is not a 0x-prefixed 32-byte hex string")
    return bytes.fromhex(text[2:])


def compute_request_message(chain_id: int, task: int, epoch: int, slot: int, requester: str, issued: int) -> str:
    """The text a co-trainer signs (EIP-191 personal message) to ask for slot `slot`'s final state at unix time
    `issued`."""
    return (f"trainchain final handoff\nchain {chain_id}\ntask {task}\nepoch {epoch}\nslot {slot}\n"
            f"requester {requester.lower()}\nissued {issued}")


def why_not_valid(offer: FinalOffer, task: int, epoch: int, slot: int, slot_id: int, rnd, n_leaves: int) -> str | None:
    """None if `offer` is slot `slot_id`'s committed final state: the slot asked for, and h_M leaf M (n_leaves - 1:
    the task's tree size, never the offer's) of the round's committed trace root. Else why not, in words."""
    if (offer.task, offer.epoch, offer.slot, offer.slot_id) != (task, epoch, slot, slot_id):
        return (f"offer is for task {offer.task} epoch {offer.epoch} slot {offer.slot} (id {offer.slot_id}), "
                f"not task {task} epoch {epoch} slot {slot} (id {slot_id})")
    if not protocol.is_valid_merkle_proof(bytes(rnd.trace_root), n_leaves, n_leaves - 1, offer.final_hash, list(offer.proof)):
        return f"h_M 0x{offer.final_hash.hex()[:12]} is not leaf {n_leaves - 1} of the committed trace root"
    return None


class HandoffBoard:
    """The final states this trainer offers, and who may have them. Written by the node's main thread (which reads
    the chain), read by its gateway's threads (which never do): the answer needs no chain read."""

    def __init__(self, chain_id: int, clock=time.time):
        self.chain_id = chain_id
        self.clock = clock
        self._lock = threading.Lock()
        self._offers: dict[tuple[int, int, int], tuple[FinalOffer, frozenset[str]]] = {}
        self.served = 0  # offers handed out (logged; tests count them)

    def offer(self, offer: FinalOffer, allowed: set[str]) -> None:
        """Offer `offer` to the addresses `allowed` (the epoch's other committed trainers)."""
        with self._lock:
            self._offers[(offer.task, offer.epoch, offer.slot)] = (offer, frozenset(a.lower() for a in allowed))

    def withdraw(self, task: int, epoch: int) -> None:
        """Forget epoch `epoch`'s offers (it closed: its final states are public or thrown away)."""
        with self._lock:
            for key in [k for k in self._offers if k[:2] == (task, epoch)]:
                del self._offers[key]

    def answer(self, query: dict) -> tuple[int, dict | str]:
        """The gateway route: (HTTP status, the offer's JSON or why not). `query` is parse_qs's."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        try:
            task, epoch, slot, issued = (int(query[k][0]) for k in ("task", "epoch", "slot", "issued"))
            requester, sig = query["requester"][0], query["sig"][0]
        except (KeyError, IndexError, ValueError):
            return 400, "handoff: task, epoch, slot, issued (integers), requester and sig are required"
        with self._lock:
            held = self._offers.get((task, epoch, slot))
        if held is None:
            return 404, f"handoff: no final state of task {task} epoch {epoch} slot {slot} offered here"
        now = int(self.clock())
        if abs(now - issued) > FRESH_SECONDS:
            return 403, f"handoff: request issued at {issued}, not within {FRESH_SECONDS} s of this clock ({now})"
        message = compute_request_message(self.chain_id, task, epoch, slot, requester, issued)
        try:
            signer = Account.recover_message(encode_defunct(text=message), signature=sig)
        except Exception:  # noqa: BLE001 - any undecodable signature
            return 403, "handoff: the signature does not decode"
        offer, allowed = held
        if signer.lower() != requester.lower():
            return 403, f"handoff: signed by {signer}, not by the requester {requester}"
        if signer.lower() not in allowed:
            return 403, f"handoff: {signer} holds no other committed slot of task {task} epoch {epoch}"
        with self._lock:
            self.served += 1
        log.info("handoff: gave slot %d of epoch %d's final state 0x%s to %s", slot, epoch,
                 offer.final_hash.hex()[:12], signer)
        return 200, offer.to_json()


def request_final(url: str, account, chain_id: int, task: int, epoch: int, slot: int, timeout: float = 3.0,
                  issued: int | None = None) -> FinalOffer:
    """Ask the trainer at gateway `url` for slot `slot`'s final state, signed by `account` (time-stamped now, or
    `issued`); the offer as sent (unverified: check it with why_not_valid). HandoffError in words otherwise."""
    from eth_account.messages import encode_defunct

    issued = int(time.time()) if issued is None else issued
    message = compute_request_message(chain_id, task, epoch, slot, account.address, issued)
    sig = account.sign_message(encode_defunct(text=message)).signature.hex()
    query = urllib.parse.urlencode({"task": task, "epoch": epoch, "slot": slot, "issued": issued,
                                    "requester": account.address, "sig": sig if sig.startswith("0x") else "0x" + sig})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}{FINAL_ROUTE}?{query}", timeout=timeout) as r:
            body = r.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise HandoffError(f"{url}: {e.code} {e.read(512).decode(errors='replace').strip()}") from None
    except (OSError, ValueError) as e:  # refused, timed out, a bad URL
        raise HandoffError(f"{url}: {type(e).__name__}: {e}", answered=False) from None
    if len(body) > MAX_ANSWER_BYTES:
        raise HandoffError(f"{url}: answer longer than {MAX_ANSWER_BYTES} bytes")
    try:
        return FinalOffer.from_json(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as e:
        raise HandoffError(f"{url}: answer is not a final offer ({e})") from None
