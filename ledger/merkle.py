"""RFC 9162 Merkle tree hashing, the compact range (frontier), and which nodes a proof needs.

Pure: no I/O. The tree always uses SHA-256 (RFC 9162 §2.1.1)::

    MTH({})    = SHA-256()
    leaf hash  = SHA-256(0x00 ‖ leaf)
    node hash  = SHA-256(0x01 ‖ left ‖ right)

A node is named by ``(level, index)``: it covers leaves ``[index << level, (index + 1) << level)``.
Proof planning follows transparency-dev/merkle ``proof/proof.go``: a proof is a list of complete
nodes, some of which (the "ephemeral" right border) are folded into one hash before use.

>>> root = CompactRange()
>>> for leaf in (b"a", b"b", b"c"):
...     root.append(leaf_hash(leaf))
>>> root.root().hex()[:16]
'36642e73c2540ab1'
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import NamedTuple

from .errors import InvalidProofRequest

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_HASH_PREFIX",
    "NODE_HASH_PREFIX",
    "CompactRange",
    "NodeID",
    "ProofPlan",
    "consistency_plan",
    "inclusion_plan",
    "leaf_hash",
    "node_hash",
    "range_nodes",
]

HASH_SIZE = 32
LEAF_HASH_PREFIX = b"\x00"
"""RFC 9162 §2.1.1: the hashed structure of a leaf is LEAF_HASH_PREFIX ‖ leaf."""
NODE_HASH_PREFIX = b"\x01"
"""RFC 9162 §2.1.1: the hashed structure of a node is NODE_HASH_PREFIX ‖ left ‖ right."""
EMPTY_ROOT = sha256(b"").digest()
"""MTH({}): the root of the empty tree."""


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf)."""
    return sha256(LEAF_HASH_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return sha256(NODE_HASH_PREFIX + left + right).digest()


class NodeID(NamedTuple):
    """A complete subtree: ``level`` above the leaves, ``index`` from the left at that level."""

    level: int
    index: int  # type: ignore[assignment]  # the spec's word; shadows tuple.index

    @property
    def begin(self) -> int:
        """First leaf covered."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """One past the last leaf covered."""
        return (self.index + 1) << self.level


_node = functools.partial(tuple.__new__, NodeID)
"""Build a NodeID from a ``(level, index)`` pair without the NamedTuple constructor's overhead."""


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The maximal complete subtrees covering ``[begin, end)``, left to right.

    For ``begin == 0`` these are the nodes of the compact range of a tree of size ``end``.
    """
    if not 0 <= begin <= end:
        raise InvalidProofRequest(f"bad range [{begin}, {end})", begin=begin, end=end)
    nodes: list[NodeID] = []
    while begin < end:
        # The largest aligned subtree starting at `begin` that fits before `end`.
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(_node((level, begin >> level)))
        begin += 1 << level
    return nodes


class CompactRange:
    """The frontier of a tree ``[0, size)``: O(log n) hashes, enough to append and to get the root.

    ``hashes`` holds the roots of :func:`range_nodes(0, size) <range_nodes>`, left to right.
    When ``levels`` is given, every node completed by an append is recorded in
    ``levels[level]`` in index order, so a caller can store tiles without recomputing.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise InvalidProofRequest(
                f"a compact range of size {size} has {size.bit_count()} hashes, got {len(hashes)}",
                size=size,
                got=len(hashes),
            )
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf (by its leaf hash), merging completed subtrees: amortised 1 node hash."""
        index = self.size
        h = leaf_hash
        hashes = self.hashes
        while index & 1:
            h = sha256(NODE_HASH_PREFIX + hashes.pop() + h).digest()
            index >>= 1
        hashes.append(h)
        self.size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[list[bytes]]:
        """Add many leaves at once; return, level by level from the leaves up, the nodes they
        completed, in index order (``[0]`` is ``leaf_hashes``): what a caller stores as tiles.

        The same hashes as :meth:`append` one by one, made a level at a time: the new nodes at
        a level start at index ``size >> level``; when that is odd, the first one's left
        sibling is the frontier's lowest hash, and when the run ends on an even index, its
        last node waits in the frontier for its sibling (binary addition, carried level by
        level).
        """
        hashes = self.hashes
        prefix = NODE_HASH_PREFIX
        runs: list[list[bytes]] = []
        waiting: list[bytes] = []  # the new frontier's hashes below the old ones, lowest first
        nodes = list(leaf_hashes)
        start = self.size
        self.size += len(nodes)
        while nodes:
            runs.append(nodes)
            if start & 1:
                nodes = [hashes.pop(), *nodes]
            if len(nodes) & 1:
                waiting.append(nodes[-1])
            pairs = iter(nodes)  # zipped with itself: (0, 1), (2, 3)…; an odd last one waits
            nodes = [
                sha256(prefix + left + right).digest()
                for left, right in zip(pairs, pairs, strict=False)
            ]
            start >>= 1
        hashes.extend(reversed(waiting))
        return runs

    def root(self) -> bytes:
        """MTH of ``[0, size)``: the frontier folded from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The complete nodes a proof needs, and how to turn their hashes into the proof.

    ``nodes[fold_begin:fold_end]`` (when longer than one) are the complete subtrees of an
    ephemeral node on the right border; they come lowest (rightmost) first and are folded into
    one hash by :meth:`proof`.
    """

    nodes: tuple[NodeID, ...]
    fold_begin: int
    fold_end: int

    def proof(self, hashes: Sequence[bytes]) -> list[bytes]:
        """The RFC 9162 proof, given the hash of each node in ``nodes``, in the same order."""
        if len(hashes) != len(self.nodes):
            raise InvalidProofRequest(
                f"got {len(hashes)} hashes for {len(self.nodes)} nodes",
                got=len(hashes),
                want=len(self.nodes),
            )
        begin, end = self.fold_begin, self.fold_end
        if end - begin <= 1:
            return list(hashes)
        h = hashes[begin]
        for left in hashes[begin + 1 : end]:
            h = node_hash(left, h)
        return [*hashes[:begin], h, *hashes[end:]]


def _plan(index: int, level: int, size: int) -> tuple[list[NodeID], int, int]:
    """Nodes proving node ``(level, index)`` into the tree of ``size`` (seed node first)."""
    # The fork is where the path to (level, index) leaves the path to the right border;
    # its sibling is the ephemeral node.
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    fork_index = index >> inner
    right = range_nodes((fork_index + 1) << fork_level, size)
    left = range_nodes(0, fork_index << fork_level)

    nodes = [_node((level, index))]
    for lvl in range(level, fork_level):
        nodes.append(_node((lvl, (index >> (lvl - level)) ^ 1)))
    fold_begin = len(nodes)
    nodes.extend(reversed(right))
    fold_end = len(nodes)
    nodes.extend(reversed(left))
    return nodes, fold_begin, fold_end


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Nodes proving leaf ``index`` into the tree of ``size`` (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise InvalidProofRequest(
            f"index is beyond size: {index} >= {size}", index=index, tree_size=size
        )
    nodes, begin, end = _plan(index, 0, size)
    return ProofPlan(tuple(nodes[1:]), begin - 1, end - 1)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """Nodes of the consistency proof from ``size1`` to ``size2`` (RFC 9162 §2.1.4.1).

    Empty when ``size1`` is 0 or equals ``size2``: those need no proof.
    """
    if not 0 <= size1 <= size2:
        raise InvalidProofRequest(
            f"first size is beyond second: {size1} > {size2}", size1=size1, size2=size2
        )
    if size1 in (0, size2):
        return ProofPlan((), 0, 0)
    # The largest complete subtree that ends at size1.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    nodes, begin, end = _plan(index, level, size2)
    if index == 0:
        # size1 is a power of two: the verifier knows that node as the old root.
        return ProofPlan(tuple(nodes[1:]), begin - 1, end - 1)
    return ProofPlan(tuple(nodes), begin, end)
