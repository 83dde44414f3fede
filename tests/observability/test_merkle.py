"""The batch tree is RFC 6962's: checked against the RFC's own recursive definitions of the
Merkle Tree Hash and the audit path, and every path checks only where it belongs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from observability.audit._merkle import leaf_hash, merkle_tree, node_hash, root_from_path

SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33]


def _leaves(size: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(size)]


def _k(size: int) -> int:
    k = 1
    while k * 2 < size:
        k *= 2
    return k


def _mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 section 2.1, word for word."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1, word for word."""
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


@pytest.mark.parametrize("size", SIZES)
def test_root_and_paths_are_those_of_rfc_6962(size: int) -> None:
    leaves = _leaves(size)

    tree = merkle_tree(leaves)

    assert tree.root == _mth(leaves)
    assert [list(path) for path in tree.paths] == [_path(m, leaves) for m in range(size)]


@pytest.mark.parametrize("size", SIZES)
def test_every_leaf_folds_to_the_root_at_its_index_only(size: int) -> None:
    leaves = _leaves(size)
    tree = merkle_tree(leaves)

    for index, path in enumerate(tree.paths):
        assert root_from_path(leaves[index], index, size, path) == tree.root
        other = (index + 1) % size
        if other != index:
            assert root_from_path(leaves[index], other, size, path) != tree.root
            assert root_from_path(leaves[other], index, size, path) != tree.root


@pytest.mark.parametrize("size", [2, 3, 5, 8, 13])
def test_a_path_too_long_too_short_or_changed_fails(size: int) -> None:
    leaves = _leaves(size)
    tree = merkle_tree(leaves)
    index = size - 1
    path = list(tree.paths[index])
    changed = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]

    assert root_from_path(leaves[index], index, size, [*path, path[0]]) is None
    assert root_from_path(leaves[index], index, size, path[:-1]) != tree.root
    assert root_from_path(leaves[index], index, size, changed) != tree.root


def test_an_index_outside_the_tree_fails() -> None:
    tree = merkle_tree(_leaves(3))

    assert root_from_path(b"leaf 0", 3, 3, tree.paths[0]) is None
    assert root_from_path(b"leaf 0", -1, 3, tree.paths[0]) is None


def test_a_leaf_cannot_pass_for_a_node() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")

    assert leaf_hash(left + right) != node_hash(left, right)


def test_an_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle_tree([])
