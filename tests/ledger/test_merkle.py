"""RFC 9162 hashing, compact range and proof generation against published vectors and oracles.

Oracles: tests/reference.py (our naive transcription of the RFC) and tlog-scales (independent,
pinned). Every valid proof for every size 1..300 must equal the reference and verify with both
verifiers; every mutation must be rejected by both.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tlog_scales.tlog import (
    ConsistencyProof,
    ConsistencyProofInvalid,
    InclusionProof,
    InclusionProofInvalid,
)

from ledger.errors import InvalidProofRequest, ProofInvalid
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeID,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    node_hash,
    range_nodes,
)
from tests import reference
from tests.ledger.trees import build
from verifier.proof import verify_consistency, verify_inclusion

CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip


def root_of(leaves: list[bytes]) -> bytes:
    cr = CompactRange()
    for x in leaves:
        cr.append(leaf_hash(x))
    return cr.root()


def test_published_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    assert (
        root_of([b"a", b"b", b"c"]).hex()
        == "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1"
    )
    assert (
        root_of(CT_LEAVES[:1]).hex()
        == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert (
        root_of(CT_LEAVES).hex()
        == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_domain_separation() -> None:
    """A two-leaf tree's root is not the leaf hash of its concatenated children (RFC 9162 §2.1)."""
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) != leaf_hash(a + b)
    assert root_of([a + b]) != root_of([b"a", b"b"])


def test_compact_range_matches_reference_every_size() -> None:
    leaves = [i.to_bytes(2, "big") for i in range(300)]
    cr = CompactRange()
    for n in range(301):
        assert cr.root() == reference.mth(leaves[:n])
        assert cr.size == n and len(cr.hashes) == n.bit_count()
        if n < 300:
            cr.append(leaf_hash(leaves[n]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 70), min_size=1, max_size=8))
def test_compact_range_extend_equals_appends(runs: list[int]) -> None:
    """Extending by runs of any lengths gives the frontier of appending one by one, and returns
    every complete node the run finished, level by level, in index order (against the RFC
    reference: node (level, i) is MTH of leaves [i << level, (i + 1) << level))."""
    leaves = [i.to_bytes(2, "big") for i in range(sum(runs))]
    one, many = CompactRange(), CompactRange()
    for n in runs:
        old = many.size
        chunk = [leaf_hash(x) for x in leaves[old : old + n]]
        levels = many.extend(chunk)
        for h in chunk:
            one.append(h)
        assert (many.size, many.hashes) == (one.size, one.hashes)
        new = many.size
        want = []
        level = 0
        while (new >> level) > (old >> level):
            want.append(
                [
                    reference.mth(leaves[i << level : (i + 1) << level])
                    for i in range(old >> level, new >> level)
                ]
            )
            level += 1
        assert levels == want


def test_compact_range_refuses_wrong_hash_count() -> None:
    with pytest.raises(InvalidProofRequest):
        CompactRange(3, [EMPTY_ROOT])


@pytest.mark.parametrize(
    ("begin", "end", "want"),
    [
        (0, 0, []),
        (0, 1, [(0, 0)]),
        (0, 7, [(2, 0), (1, 2), (0, 6)]),
        (3, 8, [(0, 3), (2, 1)]),
        (5, 13, [(0, 5), (1, 3), (2, 2), (0, 12)]),
    ],
)
def test_range_nodes(begin: int, end: int, want: list[tuple[int, int]]) -> None:
    assert range_nodes(begin, end) == [NodeID(*w) for w in want]


def test_plans_refuse_bad_sizes() -> None:
    with pytest.raises(InvalidProofRequest, match="index is beyond size: 5 >= 5"):
        inclusion_plan(5, 5)
    with pytest.raises(InvalidProofRequest):
        inclusion_plan(-1, 5)
    with pytest.raises(InvalidProofRequest):
        consistency_plan(6, 5)
    assert consistency_plan(0, 5).nodes == ()
    assert consistency_plan(5, 5).nodes == ()


def _ours_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(index=index, size=size, leaf_hash=leaf, path=path, root=root)
    except ProofInvalid:
        return False
    return True


def _oracle_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    try:
        InclusionProof(index, size, list(path)).check(leaf, root)
    except (InclusionProofInvalid, IndexError):
        return False
    return True


def _ours_consistency(m: int, n: int, r1: bytes, r2: bytes, path: list[bytes]) -> bool:
    try:
        verify_consistency(size1=m, size2=n, root1=r1, root2=r2, path=path)
    except ProofInvalid:
        return False
    return True


def _oracle_consistency(m: int, n: int, r1: bytes, r2: bytes, path: list[bytes]) -> bool:
    try:
        ConsistencyProof(m, n, list(path)).check(r1, r2)
    except (ConsistencyProofInvalid, IndexError):
        return False
    return True


def _flip(h: bytes, bit: int) -> bytes:
    return h[: bit // 8] + bytes([h[bit // 8] ^ (1 << (bit % 8))]) + h[bit // 8 + 1 :]


def inclusion_mutations(
    index: int, size: int, path: list[bytes], rng: random.Random
) -> dict[str, tuple[int, int, list[bytes]]]:
    """Named wrong variants of a valid inclusion proof: (index, size, path)."""
    out: dict[str, tuple[int, int, list[bytes]]] = {
        "index+1": (index + 1, size, path),
        "size+1": (index, size + 1, path),
        "extended": (index, size, [*path, EMPTY_ROOT]),
    }
    if index > 0:
        out["index-1"] = (index - 1, size, path)
    if size - 1 > index:
        out["size-1"] = (index, size - 1, path)
    if path:
        k = rng.randrange(len(path))
        flipped = _flip(path[k], rng.randrange(256))
        out[f"flipped-bit-path[{k}]"] = (index, size, [*path[:k], flipped, *path[k + 1 :]])
        out["truncated"] = (index, size, path[:-1])
    return out


@pytest.mark.slow
def test_every_proof_up_to_300_against_reference_and_tlog_scales() -> None:
    rng = random.Random(9162)
    leaves = [rng.randbytes(rng.randrange(0, 40)) for _ in range(301)]
    tiles = build(leaves[:300], block=37)  # many blocks: partial tiles grow across commits
    ref = reference.RangeReference(leaves)
    roots = [ref.mth(0, n) for n in range(302)]
    hashes = [leaf_hash(x) for x in leaves]
    for n in range(1, 301):
        for i in range(n):
            path = tiles.inclusion(i, n)
            assert path == ref.path(i, 0, n), (i, n)
            assert _ours_inclusion(i, n, hashes[i], path, roots[n])
            assert _oracle_inclusion(i, n, hashes[i], path, roots[n])
            assert not _ours_inclusion(i, n, _flip(hashes[i], 0), path, roots[n])
            for name, (i2, n2, p2) in inclusion_mutations(i, n, path, rng).items():
                # Each wrong claim is checked against the true root of the size it claims.
                ours = _ours_inclusion(i2, n2, hashes[i], p2, roots[n2])
                oracle = _oracle_inclusion(i2, n2, hashes[i], p2, roots[n2])
                assert ours == oracle, (name, i, n)
                assert not ours, (name, i, n)
        for m in range(n + 1):
            path = tiles.consistency(m, n)
            assert path == ref.proof(m, n), (m, n)
            assert _ours_consistency(m, n, roots[m], roots[n], path)
            if 0 < m < n:
                assert _oracle_consistency(m, n, roots[m], roots[n], path)
                variants = {
                    "m-1": (m - 1, n, path),
                    "n+1": (m, n + 1, path),
                    "extended": (m, n, [*path, EMPTY_ROOT]),
                    "truncated": (m, n, path[:-1]),
                    "wrong-old-root": (m, n, path),
                }
                if path:
                    k = rng.randrange(len(path))
                    variants["flipped-bit"] = (m, n, [*path[:k], _flip(path[k], 7), *path[k + 1 :]])
                for name, (m2, n2, p2) in variants.items():
                    r1 = _flip(roots[m], 3) if name == "wrong-old-root" else roots[m2]
                    if m2 == 0:
                        continue  # a proof from the empty tree is trivially empty
                    ours = _ours_consistency(m2, n2, r1, roots[n2], p2)
                    oracle = _oracle_consistency(m2, n2, r1, roots[n2], p2)
                    assert ours == oracle, (name, m, n)
                    assert not ours, (name, m, n)


@pytest.mark.slow
def test_random_sizes_up_to_a_million() -> None:
    rng = random.Random(6962)
    total = 1_000_000
    leaves = [i.to_bytes(4, "big") for i in range(total)]
    tiles = build(leaves, block=65_536)
    ref = reference.RangeReference(leaves)
    hashes = {}
    for n in sorted([*rng.sample(range(1, total + 1), 4), total, 2**19, 2**19 + 1]):
        root = ref.mth(0, n)
        for _ in range(200):
            i = rng.randrange(n)
            hashes[i] = leaf_hash(leaves[i])
            path = tiles.inclusion(i, n)
            assert path == ref.path(i, 0, n)
            assert _ours_inclusion(i, n, hashes[i], path, root)
            assert _oracle_inclusion(i, n, hashes[i], path, root)
            for name, (i2, n2, p2) in inclusion_mutations(i, n, path, rng).items():
                if n2 != n:
                    continue  # needs the root of another size; covered up to 300 above
                assert not _ours_inclusion(i2, n2, hashes[i], p2, root), name
                assert not _oracle_inclusion(i2, n2, hashes[i], p2, root), name
        for _ in range(50):
            m = rng.randrange(1, n + 1)
            path = tiles.consistency(m, n)
            assert path == ref.proof(m, n)
            r1 = ref.mth(0, m)
            assert _ours_consistency(m, n, r1, root, path)
            if m < n:
                assert _oracle_consistency(m, n, r1, root, path)
                assert not _ours_consistency(m, n, r1, root, path[:-1])
                assert not _oracle_consistency(m, n, r1, root, path[:-1])
