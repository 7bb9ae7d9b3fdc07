"""The Merkle tree of RFC 9162 section 2.1 (SHA-256): hashes, proofs, and their verification.

A store keeps the hashes of perfect subtrees only, keyed (level, index): the
hash of leaves [index * 2**level, (index + 1) * 2**level). Every node a proof
names covers a range that starts on a power-of-two boundary and either is
perfect or ends at the tree size, so it folds from O(log n) stored nodes: a
proof is one read of `nodes_needed(ranges)`, then `assemble`. The verifiers
are the RFC's own algorithms (2.1.3.2, 2.1.4.2) and refuse, never raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index): a perfect subtree
Range = tuple[int, int]  # [start, end) of leaf indexes


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes; the empty tree's root is SHA-256 of nothing."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # Fold level by level: an odd last node rises unchanged, which is the RFC's
    # split at the largest power of two below n.
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where MTH splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[Node]:
    """The perfect subtrees, left to right, whose hashes folded right to left give the range's MTH.

    The range must be one a proof names: not empty, and `start` a multiple of
    the smallest power of two not below its length (perfect, or ending at the
    tree size). Raises ValueError otherwise.
    """
    length = end - start
    if start < 0 or length <= 0 or start % (1 << (length - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not a range of an RFC 9162 tree")
    nodes = []
    # MTH splits at the largest power of two below the length: the pieces are
    # the length's binary digits, highest first, each aligned on its size.
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def range_hash(start: int, end: int, nodes: Mapping[Node, bytes]) -> bytes:
    """MTH(D[start:end]) from the stored hashes of its perfect subtrees."""
    pieces = [nodes[key] for key in perfect_subtrees(start, end)]
    value = pieces[-1]
    for piece in reversed(pieces[:-1]):
        value = node_hash(piece, value)
    return value


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges of PATH(index, D[size]) (RFC 9162 2.1.3.1), bottom up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _path(index, 0, size)


def _path(m: int, start: int, end: int) -> list[Range]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, start, start + k), (start + k, end)]
    return [*_path(m - k, start + k, end), (start, start + k)]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The leaf ranges of PROOF(first, D[second]) (RFC 9162 2.1.4.1); empty when first is 0."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} leaves to {second}")
    if first == 0:
        return []
    return _subproof(first, 0, second, True)


def _subproof(m: int, start: int, end: int, whole: bool) -> list[Range]:
    n = end - start
    if m == n:
        return [] if whole else [(start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, whole), (start + k, end)]
    return [*_subproof(m - k, start + k, end, False), (start, start + k)]


def nodes_needed(ranges: Iterable[Range]) -> set[Node]:
    """Every stored node the ranges fold from: what one query reads."""
    return {node for start, end in ranges for node in perfect_subtrees(start, end)}


def assemble(ranges: Iterable[Range], nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The proof's hashes, in the ranges' order, from the stored nodes."""
    return [range_hash(start, end, nodes) for start, end in ranges]


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: whether `path` proves leaf `index` is in the tree of `size` with `root`."""
    if not (_is_count(index) and _is_count(size) and index < size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_path(path)):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: whether `path` proves the tree of `second` leaves extends that of `first`.

    A tree always extends itself (empty path, equal roots) and the empty tree
    (empty path, first_root the empty tree's root).
    """
    if not (_is_count(first) and _is_count(second) and first <= second):
        return False
    if not (_is_hash(first_root) and _is_hash(second_root) and _is_path(path)):
        return False
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: its root is a node of the new tree
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(path: object) -> bool:
    return (
        isinstance(path, Sequence)
        and not isinstance(path, bytes | str)
        and all(_is_hash(p) for p in path)
    )
