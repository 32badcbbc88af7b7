"""The final handoff (node/roles/handoff.py): who may have a slot's final state before its ends reveal, and what a
co-trainer accepts. A real gateway over HTTP, real EIP-191 signatures; the chain's part (the committed trace root,
the task's tree size) as the records the node reads. The nodes using it: tests/nodes/test_epoch_nodes.py; a
trainer handing bad offers: tests/adversarial/test_epoch_attacks.py."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from node import protocol
from node.roles.handoff import (FINAL_ROUTE, FRESH_SECONDS, FinalOffer, HandoffBoard, HandoffError, request_final,
                                why_not_valid)
from node.store.embedded import EmbeddedStore
from node.store.gateway import GatewayServer

CHAIN_ID = 31337
TASK, EPOCH, SLOT, SLOT_ID = 1, 3, 0, 7
HASHES = [bytes([i]) * 32 for i in range(1, 6)]  # h_0..h_M, M = 4: five leaves
ROUND = SimpleNamespace(trace_root=protocol.compute_merkle_root(HASHES))
N_LEAVES = len(HASHES)

OWNER, CO_TRAINER, STRANGER = (Account.from_key(bytes([k]) * 32) for k in (1, 2, 3))


def true_offer() -> FinalOffer:
    return FinalOffer(TASK, EPOCH, SLOT, SLOT_ID, HASHES[-1], "bafkreigood",
                      tuple(protocol.compute_merkle_proof(HASHES, N_LEAVES - 1)))


@pytest.fixture()
def served(tmp_path):
    """A gateway whose board offers the true final state of slot 0 to CO_TRAINER; (url, board)."""
    board = HandoffBoard(CHAIN_ID)
    board.offer(true_offer(), {CO_TRAINER.address})
    gateway = GatewayServer(EmbeddedStore(tmp_path / "store"), ("127.0.0.1", 0)).start()
    gateway.routes[FINAL_ROUTE] = board.answer
    try:
        yield gateway.url, board
    finally:
        gateway.stop()


def test_a_co_trainer_gets_the_offer_and_it_verifies(served):
    url, board = served
    offer = request_final(url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT)
    assert offer == true_offer() and board.served == 1
    assert why_not_valid(offer, TASK, EPOCH, SLOT, SLOT_ID, ROUND, N_LEAVES) is None


@pytest.mark.parametrize("who, kw, status, words", [
    (STRANGER, {}, 403, "holds no other committed slot"),  # not one of the epoch's committed trainers
    (OWNER, {}, 403, "holds no other committed slot"),  # the slot's own trainer is not in its allowed set
    (CO_TRAINER, {"chain_id": CHAIN_ID + 1}, 403, "not by the requester"),  # signed for another chain
    (CO_TRAINER, {"issued": 1_000}, 403, "not within"),  # a replayed (stale) request
    (CO_TRAINER, {"slot": 1}, 404, "no final state"),  # a slot not offered here
    (CO_TRAINER, {"epoch": EPOCH + 1}, 404, "no final state"),
])
def test_who_may_not_have_it(served, who, kw, status, words):
    url, board = served
    args = {"chain_id": CHAIN_ID, "slot": SLOT, "epoch": EPOCH, **kw}
    with pytest.raises(HandoffError, match=f"{status} .*{words}") as e:
        request_final(url, who, args["chain_id"], TASK, args["epoch"], args["slot"], issued=kw.get("issued"))
    assert board.served == 0
    assert e.value.answered  # a peer that answers (often only "not yet") is asked again next block


def test_a_request_signed_by_another_key_is_refused(served):
    """The requester named in the query must be the signer: a stranger cannot ask in a co-trainer's name."""
    import urllib.parse
    import urllib.request
    import time

    from eth_account.messages import encode_defunct
    from node.roles.handoff import compute_request_message

    url, board = served
    issued = int(time.time())
    sig = STRANGER.sign_message(encode_defunct(text=compute_request_message(
        CHAIN_ID, TASK, EPOCH, SLOT, CO_TRAINER.address, issued))).signature.hex()
    q = urllib.parse.urlencode({"task": TASK, "epoch": EPOCH, "slot": SLOT, "issued": issued,
                                "requester": CO_TRAINER.address, "sig": sig})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{url}{FINAL_ROUTE}?{q}", timeout=5)
    assert e.value.code == 403 and b"not by the requester" in e.value.read()
    for bad in ({"task": "x"}, {}):  # malformed queries: 400 in words
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{url}{FINAL_ROUTE}?{urllib.parse.urlencode(bad)}", timeout=5)
        assert e.value.code == 400 and b"required" in e.value.read()
    assert board.served == 0


def test_freshness_is_the_server_clock_within_the_bound(tmp_path):
    now = [10_000.0]
    board = HandoffBoard(CHAIN_ID, clock=lambda: now[0])
    board.offer(true_offer(), {CO_TRAINER.address})
    gateway = GatewayServer(EmbeddedStore(tmp_path / "store"), ("127.0.0.1", 0)).start()
    gateway.routes[FINAL_ROUTE] = board.answer
    try:
        for issued in (10_000 - FRESH_SECONDS, 10_000 + FRESH_SECONDS):
            assert request_final(gateway.url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT, issued=issued) == true_offer()
        for issued in (10_000 - FRESH_SECONDS - 1, 10_000 + FRESH_SECONDS + 1):
            with pytest.raises(HandoffError, match="403"):
                request_final(gateway.url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT, issued=issued)
        board.withdraw(TASK, EPOCH)  # the epoch left its open phase
        with pytest.raises(HandoffError, match="404"):
            request_final(gateway.url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT, issued=10_000)
    finally:
        gateway.stop()


@pytest.mark.parametrize("offer, words", [
    (replace(true_offer(), slot=1), "not task"),  # another slot's offer, for this slot's question
    (replace(true_offer(), slot_id=SLOT_ID + 1), "not task"),
    (replace(true_offer(), final_hash=HASHES[-2]), "is not leaf 4"),  # h_{M-1}, with h_M's proof
    (replace(true_offer(), final_hash=HASHES[-2], proof=tuple(protocol.compute_merkle_proof(HASHES, 3))), "is not leaf 4"),
    (replace(true_offer(), proof=true_offer().proof[:-1]), "is not leaf 4"),  # a proof for a smaller tree
])
def test_what_a_co_trainer_refuses(offer, words):
    assert words in why_not_valid(offer, TASK, EPOCH, SLOT, SLOT_ID, ROUND, N_LEAVES)


@settings(max_examples=60, deadline=None)
@given(which=st.integers(0, protocol.compute_tree_depth(N_LEAVES)), byte=st.integers(0, 31), bit=st.integers(0, 7))
def test_any_flipped_bit_of_the_hash_or_proof_is_refused(which, byte, bit):
    """Property: the offer is bound to the committed trace root; one bit of h_M or of any sibling changed, it fails."""
    offer = true_offer()
    flip = lambda b: b[:byte] + bytes([b[byte] ^ (1 << bit)]) + b[byte + 1:]  # noqa: E731
    if which == 0:
        bad = replace(offer, final_hash=flip(offer.final_hash))
    else:
        proof = list(offer.proof)
        proof[which - 1] = flip(proof[which - 1])
        bad = replace(offer, proof=tuple(proof))
    assert why_not_valid(bad, TASK, EPOCH, SLOT, SLOT_ID, ROUND, N_LEAVES) is not None


def test_an_offer_round_trips_through_json_and_malformed_ones_are_refused():
    offer = true_offer()
    assert FinalOffer.from_json(json.loads(json.dumps(offer.to_json()))) == offer
    good = offer.to_json()
    for bad in ({k: v for k, v in good.items() if k != "proof"}, {**good, "final_hash": "0x12"},
                {**good, "slot": -1}, {**good, "slot": "0"}, {**good, "final_cid": ""}, {**good, "proof": "0x"},
                {**good, "proof": [good["final_hash"]] * (protocol.MAX_DEPTH + 1)}, [], "text"):
        with pytest.raises(HandoffError, match="malformed final offer"):
            FinalOffer.from_json(bad)


def test_a_peer_that_answers_garbage_or_nothing_is_a_handoff_error(tmp_path):
    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"x" * (100_000 if "big" in self.path else 10)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(HandoffError, match="not a final offer"):
            request_final(url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT)
        with pytest.raises(HandoffError, match="longer than"):
            request_final(url + "/big", CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(HandoffError, match="ConnectionRefused|URLError") as e:
        request_final(url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT, timeout=1)
    assert not e.value.answered  # unreachable: the asker pauses before asking again


def test_a_co_trainer_that_committed_after_the_offer_is_let_in_once_the_offer_is_renewed(tmp_path):
    """The allowed set is re-read once per block by the offering node: a co-trainer that committed a block later is
    refused (403, an answer: asked again next block, not paused) until the offer is renewed with it."""
    board = HandoffBoard(CHAIN_ID)
    board.offer(true_offer(), set())  # offered before anyone else committed
    gateway = GatewayServer(EmbeddedStore(tmp_path / "store"), ("127.0.0.1", 0)).start()
    gateway.routes[FINAL_ROUTE] = board.answer
    try:
        with pytest.raises(HandoffError, match="403 .*holds no other committed slot") as e:
            request_final(gateway.url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT)
        assert e.value.answered
        board.offer(true_offer(), {CO_TRAINER.address})  # the next block: slot 1 committed
        assert request_final(gateway.url, CO_TRAINER, CHAIN_ID, TASK, EPOCH, SLOT) == true_offer()
    finally:
        gateway.stop()
