"""Named adversarial vectors for the RFC 9162 verifiers (after transparency-dev/merkle testdata)."""

from __future__ import annotations

import pytest

from ledger.errors import ProofInvalid
from ledger.merkle import EMPTY_ROOT, leaf_hash
from tests import reference
from verifier.proof import root_from_inclusion, verify_consistency, verify_inclusion

LEAVES = [bytes([i]) * (i % 5) for i in range(14)]
ROOT = {n: reference.mth(LEAVES[:n]) for n in range(15)}


def flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def test_valid_inclusion() -> None:
    for n in range(1, 14):
        for i in range(n):
            verify_inclusion(
                index=i, size=n, leaf_hash=leaf_hash(LEAVES[i]),
                path=reference.path(i, LEAVES[:n]), root=ROOT[n],
            )  # fmt: skip


INCLUSION_CASES = {
    "wrong-leaf": dict(index=5, size=13, leaf_hash=leaf_hash(b"x")),
    "wrong-index": dict(index=4, size=13),
    # A wrong size is checked against the true root of that size: the root binds the size.
    "wrong-size-smaller": dict(index=5, size=12, root=ROOT[12]),
    "wrong-size-larger": dict(index=5, size=14, root=ROOT[14]),
    "index-equals-size": dict(index=13, size=13),
    "negative-index": dict(index=-1, size=13),
    "trailing-garbage": dict(path_edit=lambda p: [*p, EMPTY_ROOT]),
    "truncated": dict(path_edit=lambda p: p[:-1]),
    "empty-path": dict(path_edit=lambda p: []),
    "modified-proof[0]-bit-@3": dict(path_edit=lambda p: [flip(p[0], 3), *p[1:]]),
    "modified-proof[last]-bit-@0": dict(path_edit=lambda p: [*p[:-1], flip(p[-1])]),
    "short-hash-in-path": dict(path_edit=lambda p: [p[0][:31], *p[1:]]),
    "swapped-proof-hashes": dict(path_edit=lambda p: [p[1], p[0], *p[2:]]),
    "wrong-root": dict(root=flip(ROOT[13])),
    "root-of-other-size": dict(root=ROOT[12]),
}


@pytest.mark.parametrize("case", sorted(INCLUSION_CASES))
def test_inclusion_rejects(case: str) -> None:
    spec = dict(INCLUSION_CASES[case])
    path = reference.path(5, LEAVES[:13])
    edit = spec.pop("path_edit", None)
    args = {
        "index": 5, "size": 13, "leaf_hash": leaf_hash(LEAVES[5]),
        "path": edit(path) if edit else path, "root": ROOT[13],
    }  # fmt: skip
    args.update(spec)
    with pytest.raises(ProofInvalid):
        verify_inclusion(**args)


def test_mismatch_error_carries_both_roots() -> None:
    path = reference.path(2, LEAVES[:13])
    with pytest.raises(ProofInvalid) as err:
        verify_inclusion(
            index=2, size=13, leaf_hash=leaf_hash(LEAVES[2]), path=path, root=EMPTY_ROOT
        )
    assert err.value.details["expected_root"] == EMPTY_ROOT.hex()
    assert err.value.details["calculated_root"] == ROOT[13].hex()
    assert root_from_inclusion(2, 13, leaf_hash(LEAVES[2]), path) == ROOT[13]


def test_valid_consistency() -> None:
    for n in range(14):
        for m in range(n + 1):
            verify_consistency(
                size1=m, size2=n, root1=ROOT[m], root2=ROOT[n], path=reference.proof(m, LEAVES[:n])
            )


CONSISTENCY_CASES = {
    "empty-path": dict(path=[]),
    "trailing-garbage": dict(path_edit=lambda p: [*p, EMPTY_ROOT]),
    "truncated": dict(path_edit=lambda p: p[:-1]),
    "modified-proof[0]-bit-@7": dict(path_edit=lambda p: [flip(p[0], 7), *p[1:]]),
    "wrong-old-root": dict(root1=flip(ROOT[6])),
    "wrong-new-root": dict(root2=flip(ROOT[11])),
    "wrong-size1": dict(size1=5, root1=ROOT[5]),
    "wrong-size2": dict(size2=12, root2=ROOT[12]),
    "size1-beyond-size2": dict(size1=12, size2=11),
    "short-hash": dict(path_edit=lambda p: [p[0][:16], *p[1:]]),
}


@pytest.mark.parametrize("case", sorted(CONSISTENCY_CASES))
def test_consistency_rejects(case: str) -> None:
    spec = dict(CONSISTENCY_CASES[case])
    path = reference.proof(6, LEAVES[:11])
    edit = spec.pop("path_edit", None)
    args = {"size1": 6, "size2": 11, "root1": ROOT[6], "root2": ROOT[11],
            "path": edit(path) if edit else path}  # fmt: skip
    args.update(spec)
    with pytest.raises(ProofInvalid):
        verify_consistency(**args)


def test_consistency_edge_sizes() -> None:
    verify_consistency(size1=0, size2=5, root1=EMPTY_ROOT, root2=ROOT[5], path=[])
    with pytest.raises(ProofInvalid, match="empty tree"):
        verify_consistency(size1=0, size2=5, root1=EMPTY_ROOT, root2=ROOT[5], path=[ROOT[5]])
    verify_consistency(size1=7, size2=7, root1=ROOT[7], root2=ROOT[7], path=[])
    with pytest.raises(ProofInvalid, match="equal sizes with different roots"):
        verify_consistency(size1=7, size2=7, root1=ROOT[7], root2=ROOT[6], path=[])
    with pytest.raises(ProofInvalid, match="must be empty"):
        verify_consistency(size1=7, size2=7, root1=ROOT[7], root2=ROOT[7], path=[ROOT[7]])
    # size1 a power of two: the old root is implied, not sent.
    verify_consistency(size1=4, size2=13, root1=ROOT[4], root2=ROOT[13],
                       path=reference.proof(4, LEAVES[:13]))  # fmt: skip
