"""The RFC 6962 Merkle tree (section 2.1) over one batch's evidence, and its audit paths.

Leaf hash = SHA-256(0x00 || leaf bytes), node hash = SHA-256(0x01 || left || right); a tree of n
leaves splits at the largest power of two below n. The two prefixes keep a leaf from passing for
a node. Checking an audit path follows RFC 9162 section 2.1.3.2, which also refuses a path that
is too long or too short for the tree size, so a signed size pins down the tree's shape.

Never: raise on bad input in `root_from_path` (it checks what arrived in a header).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MerkleTree", "leaf_hash", "merkle_tree", "node_hash", "root_from_path"]


@dataclass(frozen=True)
class MerkleTree:
    """A tree's root and, for each leaf in order, its audit path (leaf level first)."""

    root: bytes
    paths: tuple[tuple[bytes, ...], ...]


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_tree(leaves: Sequence[bytes]) -> MerkleTree:
    """The tree over `leaves` (at least one), with every leaf's path in one pass: n - 1 nodes."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    root, paths = _subtree([leaf_hash(leaf) for leaf in leaves])
    return MerkleTree(root, tuple(tuple(path) for path in paths))


def _subtree(hashes: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    if len(hashes) == 1:
        return hashes[0], [[]]
    split = _split(len(hashes))
    left, left_paths = _subtree(hashes[:split])
    right, right_paths = _subtree(hashes[split:])
    for path in left_paths:
        path.append(right)
    for path in right_paths:
        path.append(left)
    return node_hash(left, right), left_paths + right_paths


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (> 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that `leaf`'s hash and `path` give at `index` of `size`; None if they cannot."""
    if not 0 <= index < size:
        return None
    node, last, current = index, size - 1, leaf_hash(leaf)
    for sibling in path:
        if last == 0:
            return None  # the path is longer than the tree is deep
        if node & 1 or node == last:
            current = node_hash(sibling, current)
            while not node & 1 and node != 0:  # a right edge: climb past the levels it skips
                node, last = node >> 1, last >> 1
        else:
            current = node_hash(current, sibling)
        node, last = node >> 1, last >> 1
    return current if last == 0 else None
