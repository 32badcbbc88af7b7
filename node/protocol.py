"""The protocol's pure rules: the Python reference the contracts are tested against.

One source of truth for each rule. Vyper implements the same names; tests in
tests/contracts check both agree on random inputs. Style: consensus-specs
(`compute_*` pure helpers, `is_*` predicates, constants in one table).
"""
from __future__ import annotations

from eth_utils import keccak

# ---------------------------------------------------------------- constants
ZERO_HASH = b"\x00" * 32


# ---------------------------------------------------------------- merkle rule
def compute_leaf(index: int, value: bytes) -> bytes:
    """leaf = keccak256(abi.encode(uint256 index, bytes32 value))."""
    assert 0 <= index < 2**256 and len(value) == 32
    return keccak(index.to_bytes(32, "big") + value)


def compute_parent(left: bytes, right: bytes) -> bytes:
    """parent = keccak256(left ‖ right)."""
    return keccak(left + right)


def compute_tree_depth(n_leaves: int) -> int:
    """Depth of the tree over n leaves padded to a power of two (1 leaf: depth 0)."""
    assert n_leaves >= 1
    return (n_leaves - 1).bit_length()


def compute_merkle_layers(values: list[bytes]) -> list[list[bytes]]:
    """All layers, leaves first; padded to a power of two with zero leaves (raw ZERO_HASH)."""
    assert len(values) >= 1
    layer = [compute_leaf(i, v) for i, v in enumerate(values)]
    layer += [ZERO_HASH] * ((1 << compute_tree_depth(len(values))) - len(values))
    layers = [layer]
    while len(layer) > 1:
        layer = [compute_parent(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        layers.append(layer)
    return layers


def compute_merkle_root(values: list[bytes]) -> bytes:
    return compute_merkle_layers(values)[-1][0]


def compute_merkle_proof(values: list[bytes], index: int) -> list[bytes]:
    """Siblings from the leaf up to (not including) the root."""
    assert 0 <= index < len(values)
    layers = compute_merkle_layers(values)
    proof = []
    for layer in layers[:-1]:
        proof.append(layer[index ^ 1])
        index >>= 1
    return proof


def compute_root_from_proof(index: int, value: bytes, proof: list[bytes]) -> bytes:
    node = compute_leaf(index, value)
    for sibling in proof:
        node = compute_parent(node, sibling) if index & 1 == 0 else compute_parent(sibling, node)
        index >>= 1
    return node


def is_valid_merkle_proof(root: bytes, n_leaves: int, index: int, value: bytes, proof: list[bytes]) -> bool:
    """A proof is valid only for the tree size it claims: its length must be the depth."""
    return (
        0 <= index < n_leaves
        and len(proof) == compute_tree_depth(n_leaves)
        and compute_root_from_proof(index, value, proof) == root
    )
