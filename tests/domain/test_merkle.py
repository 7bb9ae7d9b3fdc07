"""The RFC 9162 tree: known vectors, a brute-force check against the RFC's recursion, tampering."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest

from domain.merkle import (
    EMPTY_ROOT,
    assemble,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_needed,
    perfect_subtrees,
    range_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 reference tree as transparency-dev/merkle's proof/verify_test.go
# and Certificate Transparency's tests give it: eight leaves, the root of each
# prefix, and proofs computed by those implementations.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
          "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (leaf index, tree size, path)
INCLUSION_VECTORS = [
    (0, 8, h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (0, 1, []),
]  # fmt: skip

# (first, second, path)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]  # fmt: skip


def store_of(hashes: Sequence[bytes]) -> dict[tuple[int, int], bytes]:
    """What a store keeps: every perfect subtree's hash, built level by level."""
    nodes = {(0, i): x for i, x in enumerate(hashes)}
    level = 0
    while len(hashes) >> (level + 1):
        level += 1
        for i in range(len(hashes) >> level):
            nodes[level, i] = node_hash(nodes[level - 1, 2 * i], nodes[level - 1, 2 * i + 1])
    return nodes


VECTOR_STORE = store_of([leaf_hash(x) for x in LEAVES])


def flip(hashes: list[bytes], at: int, bit: int) -> list[bytes]:
    changed = bytearray(hashes[at])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*hashes[:at], bytes(changed), *hashes[at + 1 :]]


def test_the_root_of_every_prefix_of_the_reference_tree_is_the_published_one() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    assert [root(hashes[:n]) for n in range(1, 9)] == ROOTS
    assert ROOTS[7].hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_the_empty_tree_hashes_to_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_the_published_vectors(
    index: int, size: int, path: list[bytes]
) -> None:
    assert assemble(inclusion_ranges(index, size), VECTOR_STORE) == path
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, path, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_the_published_vectors(
    first: int, second: int, path: list[bytes]
) -> None:
    assert assemble(consistency_ranges(first, second), VECTOR_STORE) == path
    assert verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], path)


# The RFC's own recursive definitions over lists of leaf hashes, with no store.
def naive_mth(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 0:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(hashes[:k]) + naive_mth(hashes[k:])).digest()


def naive_path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m < k:
        return [*naive_path(m, hashes[:k]), naive_mth(hashes[k:])]
    return [*naive_path(m - k, hashes[k:]), naive_mth(hashes[:k])]


def naive_subproof(m: int, hashes: Sequence[bytes], whole: bool) -> list[bytes]:
    if m == len(hashes):
        return [] if whole else [naive_mth(hashes)]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m <= k:
        return [*naive_subproof(m, hashes[:k], whole), naive_mth(hashes[k:])]
    return [*naive_subproof(m - k, hashes[k:], False), naive_mth(hashes[:k])]


BRUTE = [leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
BRUTE_STORE = store_of(BRUTE)


@cache
def brute_root(size: int) -> bytes:
    return naive_mth(BRUTE[:size])


def test_every_inclusion_proof_up_to_64_leaves_is_the_rfc_path_and_verifies() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = assemble(inclusion_ranges(index, size), BRUTE_STORE)
            assert proof == naive_path(index, BRUTE[:size]), (index, size)
            assert verify_inclusion(BRUTE[index], index, size, proof, brute_root(size))
            for at in range(len(proof)):
                bit = (index + at) % 256
                tampered = flip(proof, at, bit)
                assert not verify_inclusion(BRUTE[index], index, size, tampered, brute_root(size))
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(BRUTE[index], other, size, proof, brute_root(size))
                assert not verify_inclusion(BRUTE[other], index, size, proof, brute_root(size))


def test_every_consistency_proof_up_to_64_leaves_is_the_rfc_proof_and_verifies() -> None:
    for second in range(1, 65):
        for first in range(1, second + 1):
            proof = assemble(consistency_ranges(first, second), BRUTE_STORE)
            assert proof == naive_subproof(first, BRUTE[:second], True), (first, second)
            old, new = brute_root(first), brute_root(second)
            assert verify_consistency(first, second, old, new, proof)
            for at in range(len(proof)):
                tampered = flip(proof, at, (first + at) % 256)
                assert not verify_consistency(first, second, old, new, tampered), (first, second)
            if first < second:
                assert not verify_consistency(first, second, new, new, proof)
                assert not verify_consistency(first, second, old, old, proof)


def test_a_range_hash_is_the_mth_of_its_leaves() -> None:
    for size in range(1, 65):
        for start, end in [(0, size), *inclusion_ranges(size - 1, size)]:
            assert range_hash(start, end, BRUTE_STORE) == naive_mth(BRUTE[start:end])


def test_perfect_subtrees_are_the_binary_digits_of_the_length() -> None:
    assert perfect_subtrees(0, 8) == [(3, 0)]
    assert perfect_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert perfect_subtrees(8, 13) == [(2, 2), (0, 12)]


@pytest.mark.parametrize(("start", "end"), [(1, 3), (2, 5), (3, 3), (5, 4), (-1, 0), (4, 9)])
def test_a_range_no_proof_names_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="not a range"):
        perfect_subtrees(start, end)


def test_a_proof_reads_o_log_n_stored_nodes() -> None:
    size = (1 << 20) - 1
    for index in (0, 1, 12345, size // 2, size - 2, size - 1):
        assert len(nodes_needed(inclusion_ranges(index, size))) <= 2 * 20
    for first in (1, 3, 1 << 19, size // 3, size - 1):
        assert len(nodes_needed(consistency_ranges(first, size))) <= 2 * 20


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (4, 3), (-1, 3)])
def test_proof_ranges_of_a_leaf_outside_the_tree_are_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_ranges(index, size)


def test_consistency_ranges_refuse_a_first_tree_larger_than_the_second() -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_ranges(5, 4)
    assert consistency_ranges(0, 4) == []


def test_malformed_inclusion_inputs_fail_without_raising() -> None:
    index, size, path = INCLUSION_VECTORS[1]
    leaf, good_root = leaf_hash(LEAVES[index]), ROOTS[size - 1]
    assert verify_inclusion(leaf, index, size, path, good_root)
    malformed: list[tuple[object, ...]] = [
        (leaf, size, size, path, good_root),  # index == size
        (leaf, size + 1, size, path, good_root),
        (leaf, -1, size, path, good_root),
        (leaf, index, 0, [], good_root),
        (leaf, index, size, path[:-1], good_root),  # too short
        (leaf, index, size, [*path, good_root], good_root),  # too long
        (leaf, index, size, [good_root, *path], good_root),
        (leaf, index, size * 2, path, good_root),
        (leaf, index, size // 2, path, good_root),
        (leaf, index, size, [*path[:-1], b""], good_root),
        (leaf, index, size, [p.hex() for p in path], good_root),
        (leaf, index, size, b"".join(path), good_root),
        (leaf, index, size, None, good_root),
        (b"WrongLeaf", index, size, path, good_root),
        (leaf, index, size, path, EMPTY_ROOT),
        (leaf, index, size, path, None),
        (leaf, "5", size, path, good_root),
        (leaf, True, size, path, good_root),
    ]
    for args in malformed:
        assert verify_inclusion(*args) is False, args  # type: ignore[arg-type]


def test_the_only_leaf_of_a_one_leaf_tree_is_its_root() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)


def test_malformed_consistency_inputs_fail_without_raising() -> None:
    first, second, path = CONSISTENCY_VECTORS[2]
    old, new = ROOTS[first - 1], ROOTS[second - 1]
    assert verify_consistency(first, second, old, new, path)
    malformed: list[tuple[object, ...]] = [
        (second, first, new, old, path),  # first > second
        (first, second, old, new, []),
        (first, second, old, new, path[:-1]),
        (first, second, old, new, [*path, new]),
        (first, second, old, new, [path[0], *path]),
        (first, second, new, old, path),  # swapped roots
        (first - 1, second, old, new, path),
        (first + 1, second, old, new, path),
        (first, second * 2, old, new, path),
        (first, second // 2, old, new, path),
        (first, second, b"WrongRoot", new, path),
        (first, second, old, new, [p.hex() for p in path]),
        (first, second, old, new, None),
        (-1, second, old, new, path),
        (first, second, old, new, [b"", *path]),
    ]
    for args in malformed:
        assert verify_consistency(*args) is False, args  # type: ignore[arg-type]


def test_a_tree_extends_itself_and_the_empty_tree_with_an_empty_proof_only() -> None:
    assert verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[2], [ROOTS[2]])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
    assert not verify_consistency(0, 5, ROOTS[0], ROOTS[4], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [EMPTY_ROOT])
