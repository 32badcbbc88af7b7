"""The Python reference (node/protocol.py) and the contracts agree exactly on random inputs."""
import os

import brownie

from hypothesis import HealthCheck, given, settings, strategies as st

from node import protocol as P

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def b32(x) -> bytes:
    return bytes(x)


# plain hypothesis strategies: these calls change no state, so no per-example chain revert
def uint(bits=256, min_value=0, max_value=None):
    return st.integers(min_value=min_value, max_value=(2**bits - 1) if max_value is None else max_value)


bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@FAST
@given(index=uint(), value=bytes32)
def test_compute_leaf(staked, index, value):
    assert b32(staked.rules.compute_leaf(index, value)) == P.compute_leaf(index, b32(value))


@FAST
@given(n=uint(16, min_value=1, max_value=300), pick=uint(16), tamper=uint(8))
def test_merkle_proofs(staked, n, pick, tamper):
    values = [os.urandom(32) for _ in range(n)]
    root = P.compute_merkle_root(values)
    i = pick % n
    proof = P.compute_merkle_proof(values, i)
    r = staked.rules
    assert r.is_valid_merkle_proof(root, n, i, values[i], proof) is True
    assert P.is_valid_merkle_proof(root, n, i, values[i], proof)
    # a tampered input is rejected by both
    bad = [
        (root, n, i, os.urandom(32), proof),
        (root, n, (i + 1) % n if n > 1 else 1, values[i], proof),
        (root, n, i, values[i], proof + [os.urandom(32)]),
        (root, 2 * n + 1, i, values[i], proof),
    ]
    if proof:
        k = tamper % len(proof)
        bad.append((root, n, i, values[i], proof[:k] + [os.urandom(32)] + proof[k + 1:]))
        bad.append((root, n, i, values[i], proof[:-1]))
    for args in bad:
        assert r.is_valid_merkle_proof(*args) == P.is_valid_merkle_proof(*args)
        assert not P.is_valid_merkle_proof(*args)


def test_merkle_vectors(staked):
    """Fixed vectors (also pinned in the Python suite): one rule everywhere."""
    values = [bytes([i]) * 32 for i in range(5)]
    root = P.compute_merkle_root(values)
    for i in range(5):
        assert staked.rules.is_valid_merkle_proof(root, 5, i, values[i], P.compute_merkle_proof(values, i))
    assert P.compute_tree_depth(5) == 3 and P.compute_tree_depth(1) == 0


@FAST
@given(block_hash=bytes32, round_id=uint())
def test_compute_seed(staked, block_hash, round_id):
    assert b32(staked.rules.compute_seed(block_hash, round_id)) == P.compute_seed(b32(block_hash), round_id)


@FAST
@given(seed=bytes32, n_samples=uint(8, min_value=1, max_value=64), extra=uint(16, max_value=4096))
def test_compute_samples(staked, seed, n_samples, extra):
    n_segments = min(2 * n_samples + 1 + extra, P.MAX_SEGMENTS)
    got = list(staked.rules.compute_samples(seed, n_segments, n_samples))
    want = P.compute_samples(b32(seed), n_segments, n_samples)
    assert got == want
    ends = P.compute_check_ends(want, n_segments)
    assert list(staked.rules.compute_check_ends(want, n_segments)) == ends
    # the s drawn segments: pairwise non-adjacent in 0..M-2; M-2 drawn iff the last check starts there
    last_drawn = want[-1] == n_segments - 2
    drawn = want if last_drawn else want[:-1]
    assert want[-1] in (n_segments - 2, n_segments - 1) and len(set(drawn)) == len(drawn) == n_samples
    assert all(0 <= j <= n_segments - 2 for j in drawn)
    assert all(b - a >= 2 for a, b in zip(drawn, drawn[1:]))  # sorted, pairwise non-adjacent
    # checks: (j, j+1) except the last, which always ends at leaf M
    assert ends[-1] == n_segments and all(e == j + 1 for j, e in zip(want[:-1], ends[:-1]))
    # no revealed start is the hidden end of another check
    assert all(nxt > end for end, nxt in zip(ends, want[1:]))


@FAST
@given(seed=bytes32, n_samples=uint(8, min_value=1, max_value=4), extra=uint(8, max_value=3))
def test_compute_samples_small_rounds(staked, seed, n_samples, extra):
    """Small M, where the last span (M-2, M) is drawn often."""
    n_segments = 2 * n_samples + 1 + extra
    got = list(staked.rules.compute_samples(seed, n_segments, n_samples))
    assert got == P.compute_samples(b32(seed), n_segments, n_samples)
    assert list(staked.rules.compute_check_ends(got, n_segments)) == P.compute_check_ends(got, n_segments)


def test_compute_check_ends_needs_samples(staked):
    with brownie.reverts("rules: no samples"):
        staked.rules.compute_check_ends([], 5)
    for not_samples in ([0, 2], [1, 7]):  # the last start must be M-2 or M-1 (M = 7)
        with brownie.reverts("rules: not a sample list"):
            staked.rules.compute_check_ends(not_samples, 7)


@FAST
@given(seed=bytes32, n_active=uint(16, min_value=1, max_value=256), c=uint(8, min_value=1, max_value=16))
def test_compute_committee_indices(staked, seed, n_active, c):
    got = list(staked.rules.compute_committee_indices(seed, n_active, c))
    want = P.compute_committee_indices(b32(seed), n_active, c)
    assert got == want
    assert len(want) == min(c, n_active) and len(set(want)) == len(want) and all(0 <= i < n_active for i in want)


@FAST
@given(round_id=uint(), verifier=address, ends=st.lists(bytes32, max_size=65),
       ok=st.booleans(), starts_ok=st.booleans(), salt=bytes32)
def test_compute_verdict_commitment(staked, round_id, verifier, ends, ok, starts_ok, salt):
    got = staked.rules.compute_verdict_commitment(round_id, verifier, ends, ok, starts_ok, salt)
    assert b32(got) == P.compute_verdict_commitment(round_id, verifier, [b32(e) for e in ends], ok, starts_ok, b32(salt))
    # the flags are inside: flipping either changes the commitment (issue #13, attack 5)
    assert b32(staked.rules.compute_verdict_commitment(round_id, verifier, ends, ok, not starts_ok, salt)) != b32(got)


@FAST
@given(round_id=uint(), verifier=address, final_ok=st.booleans(), salt=bytes32)
def test_compute_final_commitment(staked, round_id, verifier, final_ok, salt):
    got = staked.rules.compute_final_commitment(round_id, verifier, final_ok, salt)
    assert b32(got) == P.compute_final_commitment(round_id, verifier, final_ok, b32(salt))
    # the final flag is inside (issue #13, attack 5): flipping it changes the commitment, and it never
    # equals the verdict commitment made with the same salt (no ends: the shortest verdict encoding)
    assert b32(staked.rules.compute_final_commitment(round_id, verifier, not final_ok, salt)) != b32(got)
    assert b32(got) != P.compute_verdict_commitment(round_id, verifier, [], final_ok, final_ok, b32(salt))


@FAST
@given(n_revealed=uint(8, max_value=16), contradicting=uint(8, max_value=16), quorum=uint(8, min_value=1, max_value=16))
def test_compute_tally(staked, n_revealed, contradicting, quorum):
    n_contradicting = min(contradicting, n_revealed)
    assert staked.rules.compute_tally(n_revealed, n_contradicting, quorum) == P.compute_tally(n_revealed, n_contradicting, quorum)


@FAST
@given(stake=uint(128), bps=uint(16, max_value=10_000), n=uint(8, max_value=16))
def test_compute_slash_and_fraud_split(staked, stake, bps, n):
    slashed = staked.rules.compute_slash(stake, bps)
    assert slashed == P.compute_slash(stake, bps) <= stake
    got = tuple(staked.rules.compute_fraud_split(slashed, bps, n))
    per, rest = P.compute_fraud_split(slashed, bps, n)
    assert got == (per, rest)
    assert per * n + rest == slashed  # nothing created or lost


def test_compute_round_cost(staked):
    assert staked.rules.compute_round_cost(10, 3, 7) == P.compute_round_cost(10, 3, 7) == 31


def test_sealed_round_matches_reference(task, staked, web3):
    """A real seal: samples and committee equal the reference on the chain's own blockhash."""
    task.commit()
    task.seal()
    rd = task.round
    seal_block = rd["commit_block"] + task.params.seal_delay_blocks
    seed = P.compute_seed(bytes(web3.eth.get_block(seal_block)["hash"]), task.round_id)
    assert b32(rd["seed"]) == seed
    assert task.samples == P.compute_samples(seed, task.params.n_segments, task.params.samples)
    assert task.ends == P.compute_check_ends(task.samples, task.params.n_segments)
    entries = [tuple(staked.sm.entries(i)) for i in range(staked.sm.entry_count())]
    staked_ok = lambda v: staked.sm.is_eligible(v, P.VERIFIER)  # noqa: E731
    assert [v.address for v in task.committee] == P.compute_committee_by_rejection(
        seed, entries, rd["commit_block"], task.params.committee_size, staked_ok)


@FAST
@given(seed=bytes32, attempt=uint(16), n=uint(32, min_value=1))
def test_compute_committee_candidate(staked, seed, attempt, n):
    assert staked.rules.compute_committee_candidate(seed, attempt, n) == P.compute_committee_candidate(b32(seed), attempt, n)
