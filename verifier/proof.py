"""RFC 9162 proof verifiers: inclusion (§2.1.3.2) and consistency (§2.1.4.2).

Pure and independent of any store: inputs are hashes and sizes, the outcome is ``None`` or a
:class:`~ledger.errors.ProofInvalid` that says what was expected and what was found.

Sizes follow transparency-dev/merkle: a consistency proof from size 0, or between equal sizes,
is empty (and for equal sizes the roots must be equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

from ledger.errors import ProofInvalid
from ledger.merkle import HASH_SIZE, NODE_HASH_PREFIX

__all__ = ["root_from_inclusion", "verify_consistency", "verify_inclusion"]


def _check_hashes(path: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(path):
        if len(h) != HASH_SIZE:
            raise ProofInvalid(
                f"{what}[{i}] is {len(h)} bytes, want {HASH_SIZE}", position=i, got=len(h)
            )


def root_from_inclusion(index: int, size: int, leaf_hash: bytes, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` leads to from ``leaf_hash`` at ``index`` in a tree of ``size``.

    Steps 1–4 of RFC 9162 §2.1.3.2, plus the final ``sn == 0`` check of step 5.
    """
    if not 0 <= index < size:
        raise ProofInvalid(f"index is beyond size: {index} >= {size}", index=index, tree_size=size)
    if len(leaf_hash) != HASH_SIZE:
        raise ProofInvalid(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_SIZE}")
    _check_hashes(path, "inclusion_path")
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise ProofInvalid(
                "inclusion path is longer than the tree allows",
                index=index,
                tree_size=size,
                path_length=len(path),
            )
        if fn & 1 or fn == sn:
            r = sha256(NODE_HASH_PREFIX + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(NODE_HASH_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid(
            "inclusion path is shorter than the tree needs",
            index=index,
            tree_size=size,
            path_length=len(path),
        )
    return r


def verify_inclusion(
    *, index: int, size: int, leaf_hash: bytes, path: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` with ``leaf_hash`` is in the tree of ``size`` with ``root``."""
    calculated = root_from_inclusion(index, size, leaf_hash, path)
    if calculated != root:
        raise ProofInvalid(
            "inclusion proof leads to a different root",
            expected_root=root.hex(),
            calculated_root=calculated.hex(),
        )


def verify_consistency(
    *, size1: int, size2: int, root1: bytes, root2: bytes, path: Sequence[bytes]
) -> None:
    """Check that the tree ``(size2, root2)`` extends the tree ``(size1, root1)``.

    RFC 9162 §2.1.4.2 for ``0 < size1 < size2``; for ``size1 == size2`` the proof must be empty
    and the roots equal; for ``size1 == 0`` the proof must be empty.
    """
    if not 0 <= size1 <= size2:
        raise ProofInvalid(f"first size is beyond second: {size1} > {size2}")
    _check_hashes(path, "consistency_path")
    if size1 == size2:
        if path:
            raise ProofInvalid("a proof between equal sizes must be empty", path_length=len(path))
        if root1 != root2:
            raise ProofInvalid(
                "equal sizes with different roots",
                root1=root1.hex(),
                root2=root2.hex(),
            )
        return
    if size1 == 0:
        if path:
            raise ProofInvalid("a proof from the empty tree must be empty", path_length=len(path))
        return
    # Step 1: an empty path fails.
    if not path:
        raise ProofInvalid("consistency path is empty", size1=size1, size2=size2)
    # Step 2: if first is an exact power of 2, prepend first_hash.
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    # Step 3.
    fn, sn = size1 - 1, size2 - 1
    # Step 4: if LSB(fn) is set, right-shift both until it is not.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid(
                "consistency path is longer than the trees allow",
                size1=size1,
                size2=size2,
                path_length=len(path),
            )
        if fn & 1 or fn == sn:
            fr = sha256(NODE_HASH_PREFIX + c + fr).digest()
            sr = sha256(NODE_HASH_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(NODE_HASH_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofInvalid(
            "consistency path is shorter than the trees need",
            size1=size1,
            size2=size2,
            path_length=len(path),
        )
    if fr != root1:
        raise ProofInvalid(
            "consistency proof does not lead to the first root",
            expected_root=root1.hex(),
            calculated_root=fr.hex(),
        )
    if sr != root2:
        raise ProofInvalid(
            "consistency proof does not lead to the second root",
            expected_root=root2.hex(),
            calculated_root=sr.hex(),
        )
