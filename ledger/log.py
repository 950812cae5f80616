"""The ledger over a :class:`~ledger.store.Store`: log identity, reads, lookups and proofs.

Writes go through :class:`~ledger.sequencer.Sequencer`. Proofs are computed from tiles with one
read per tile level (RFC 9162 §2.1.3.1, §2.1.4.1); complete tiles never change, so they are
cached.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .canonical import jcs, loads
from .checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from .code import DepositCode
from .entry import Digest
from .errors import InvalidProofRequest, NotFound, StorageError
from .merkle import EMPTY_ROOT, HASH_SIZE, NodeID, consistency_plan, inclusion_plan
from .store import Block, Head, Store
from .tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Strata,
    TiledTree,
    TileID,
    compact_range_from_tiles,
    decode_record,
    expand,
    node_hashes,
)

__all__ = ["Ledger", "LogConfig", "now_ms"]

_node = functools.partial(tuple.__new__, NodeID)
_RECENT = 256
"""Leaves this close to the end of the tree proved have their proof siblings cached: receipts."""
_BLOCKS_KEPT = 4
"""Recent blocks whose receipts' proofs are made together, the first time one is asked for."""


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """A log's identity, written with its first block and checked on every open."""

    origin: str
    vkey: str

    def to_bytes(self) -> bytes:
        return jcs({"origin": self.origin, "v": 1, "vkey": self.vkey})

    @classmethod
    def from_bytes(cls, raw: bytes) -> LogConfig:
        obj = loads(raw)
        return cls(obj["origin"], obj["vkey"])


class Ledger:
    """Reads and proofs over one store, for one log (origin + signing key)."""

    def __init__(
        self,
        store: Store,
        signer: NoteSigner,
        *,
        clock: Callable[[], int] = now_ms,
        tile_cache: int = 4096,
    ) -> None:
        self.store = store
        self.signer = signer
        self.verifier: NoteVerifier = signer.verifier
        self.origin = signer.name
        self.clock = clock
        self._cache: OrderedDict[TileID, Strata] = OrderedDict()
        self._cache_size = tile_cache
        self._cache_lock = threading.Lock()
        self._known_size = 0
        self._tails: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._tail_cache_size = 1024
        self._nodes: dict[NodeID, bytes] = {}
        """Complete nodes met in inclusion proofs of recent leaves (they never change): the
        receipts of one block share most of their siblings. Older leaves' proofs read tiles
        (cached too), so that proofs cost the same on a small log and a large one."""
        self._node_cache_size = 1 << 16
        self._blocks: OrderedDict[int, int] = OrderedDict()
        """First index of each of the last blocks committed here (of at most :data:`_RECENT`
        entries), by tree size."""
        self._block_proofs: dict[int, list[list[bytes]]] = {}
        """The inclusion proofs of all of such a block's leaves, by tree size."""

    @classmethod
    def open(cls, store: Store, signer: NoteSigner, *, clock: Callable[[], int] = now_ms) -> Ledger:
        """Open the log in ``store``, creating it (genesis checkpoint at size 0) if new.

        A store created for another origin or key is refused, and so is one whose tiles do not
        lead to its head checkpoint's root.
        """
        ledger = cls(store, signer, clock=clock)
        config = LogConfig(signer.name, signer.vkey)
        stored = store.config()
        if stored is None:
            genesis = Checkpoint(signer.name, 0, EMPTY_ROOT, clock(), None)
            store.commit(
                Block(0, [], [], [], {}, signer.sign(genesis.body()), config=config.to_bytes())
            )
        elif LogConfig.from_bytes(stored) != config:
            have = LogConfig.from_bytes(stored)
            raise StorageError(
                f"this store belongs to log {have.vkey}, not {config.vkey} "
                "(hint: open it with the key it was created with)",
                got=config.vkey,
                want=have.vkey,
            )
        return ledger

    # --- tiles -------------------------------------------------------------------------------

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        """Tile records, straight from the store."""
        return self.store.read_tiles(ids)

    def read_strata(self, ids: Sequence[TileID], widths: Sequence[int]) -> list[Strata | None]:
        """Decoded tiles at least ``widths`` wide, from the cache when it has them.

        Complete tiles never change and edge tiles only grow, so any cached version that is wide
        enough is the truth; a narrower one is read again.
        """
        out: list[Strata | None] = [None] * len(ids)
        missing = []
        cache = self._cache
        with self._cache_lock:
            for i, tile in enumerate(ids):
                strata = cache.get(tile)
                if strata is None or len(strata[0]) < widths[i] * HASH_SIZE:
                    missing.append(i)
                else:
                    cache.move_to_end(tile)
                    out[i] = strata
        if missing:
            fetched = self.store.read_tiles([ids[i] for i in missing])
            with self._cache_lock:
                for i, record in zip(missing, fetched, strict=True):
                    if record is None:
                        continue
                    strata = decode_record(record)
                    if len(strata[0]) == TILE_WIDTH * HASH_SIZE:
                        strata = expand(strata)  # complete: never changes, expand once
                    cache[ids[i]] = out[i] = strata
                while len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return out

    def tile(self, level: int, index: int, width: int) -> bytes:
        """The C2SP tile bytes (``width`` hashes) at tree level ``8·level``."""
        available = 0
        if level >= 0 and index >= 0:
            available = (self.head_size() >> (TILE_HEIGHT * level)) - index * TILE_WIDTH
        if not 0 < width <= min(available, TILE_WIDTH):
            raise NotFound(f"tile {level}/{index} of width {width} does not exist yet")
        (strata,) = self.read_strata([TileID(level, index)], [width])
        if strata is None:
            raise StorageError(f"tile {level}/{index} is missing")
        return strata[0][: width * HASH_SIZE]

    # --- reads -------------------------------------------------------------------------------

    def head(self) -> Head:
        head = self.store.head()
        if head is None:
            raise StorageError("the log has no checkpoint yet; open it with Ledger.open")
        return head

    def head_size(self) -> int:
        return self.head().size

    def checked_head(self) -> tuple[Head, Checkpoint]:
        """The head, its signature checked with our key and its root recomputed from tiles."""
        head = self.head()
        checkpoint = open_checkpoint(head.note, [self.verifier]).checkpoint
        tree = TiledTree.load(head.size, self.read_tiles)
        if checkpoint.size != head.size or tree.root() != checkpoint.root_hash:
            raise StorageError(
                f"the tree of size {head.size} does not match its checkpoint",
                want=checkpoint.root_hash.hex(),
                got=tree.root().hex(),
            )
        return head, checkpoint

    def entry(self, index: int) -> bytes:
        leaf = self.store.entry(index)
        if leaf is None:
            raise NotFound(f"no entry at index {index}", index=index)
        return leaf

    def meta(self, index: int) -> bytes | None:
        return self.store.meta(index)

    def lookup_code(self, code: DepositCode) -> list[int]:
        """Indexes of the entries with this deposit code (one, barring an 80-bit collision)."""
        return self.store.indexes_by_code(code.bits)

    def lookup_digest(self, digest: Digest) -> list[int]:
        """Indexes of every deposit of ``digest``, oldest first."""
        return self.store.indexes_by_digest(digest.index_key)

    def checkpoint(self, size: int) -> bytes:
        note = self.store.checkpoint(size)
        if note is None:
            raise NotFound(f"no checkpoint at tree size {size}", tree_size=size)
        return note

    def checkpoint_covering(self, index: int) -> Head:
        """The first checkpoint that includes leaf ``index`` (the block it was committed in)."""
        head = self.store.checkpoint_at_or_after(index + 1)
        if head is None:
            raise NotFound(f"no checkpoint covers index {index}", index=index)
        return head

    # --- proofs ------------------------------------------------------------------------------

    def _within(self, size: int) -> None:
        if size <= self._known_size:  # the log only grows
            return
        head = self._known_size = self.head_size()
        if size > head:
            raise InvalidProofRequest(
                f"tree size {size} is beyond the log's size {head}", tree_size=size, head=head
            )

    def forget(self) -> None:
        """Drop every cached tile, node, proof tail and block memo. After a failed write, a tile
        read from the store before the fsync failed may hold hashes of a block that was then
        lost, and leaves appended since differ there: the store is the truth again."""
        with self._cache_lock:
            self._cache.clear()
            self._tails.clear()
            self._nodes.clear()
            self._blocks.clear()
            self._block_proofs.clear()

    def committed(self, old_size: int, new_size: int) -> None:
        """The sequencer made leaves ``old_size`` to ``new_size`` durable as one block: when the
        first of its receipts asks for a proof at ``new_size``, all of them are made at once
        (single deposits' receipts ask one by one, in the same turn of the event loop)."""
        if not 0 < new_size - old_size <= _RECENT:
            return
        with self._cache_lock:
            self._blocks[new_size] = old_size
            while len(self._blocks) > _BLOCKS_KEPT:
                gone, _ = self._blocks.popitem(last=False)
                self._block_proofs.pop(gone, None)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``; made with the
        proofs of every leaf of its block when ``size`` is that of a block just committed."""
        first = self._blocks.get(size)
        if first is None or not first <= index < size:
            return self._inclusion_proof(index, size)
        proofs = self._block_proofs.get(size)
        if proofs is None:
            proofs = self.inclusion_proofs(range(first, size), size)
            with self._cache_lock:
                if size in self._blocks:
                    self._block_proofs[size] = proofs
        return list(proofs[index - first])

    def _inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``.

        The proof is the siblings below the fork (where the path to ``index`` leaves the right
        border), then a tail — the folded right border and the left nodes above — that depends
        only on ``size`` and the fork's level, so it is cached and shared by every leaf under
        that fork.
        """
        if not 0 <= index < size:
            inclusion_plan(index, size)  # raises the precise error
        self._within(size)
        fork = (index ^ size).bit_length() - 1
        tail = self._tails.get((size, fork))
        if tail is None:
            plan = inclusion_plan(index, size)
            proof = plan.proof(node_hashes(plan.nodes, self.read_strata))
            with self._cache_lock:
                self._tails[(size, fork)] = proof[fork:]
                while len(self._tails) > self._tail_cache_size:
                    self._tails.popitem(last=False)
            if size - index <= _RECENT:
                if len(self._nodes) + fork > self._node_cache_size:
                    self._nodes.clear()
                for level in range(fork):  # the siblings below the fork
                    self._nodes[_node((level, (index >> level) ^ 1))] = proof[level]
            return proof
        siblings = [_node((level, (index >> level) ^ 1)) for level in range(fork)]
        if size - index <= _RECENT:
            return [*self._complete_nodes(siblings), *tail]
        return [*node_hashes(siblings, self.read_strata), *tail]

    def inclusion_proofs(self, indexes: Sequence[int], size: int) -> list[list[bytes]]:
        """:meth:`inclusion_proof` of each of ``indexes`` in the tree of ``size`` — a batch's
        receipts. Neighbouring leaves share most of their siblings: each is read once, and
        each tail (one per fork level) is made once."""
        if len(indexes) < 2:
            return [self._inclusion_proof(index, size) for index in indexes]
        tails: dict[int, list[bytes]] = {}
        forks = []
        for index in indexes:
            if not 0 <= index < size:
                inclusion_plan(index, size)  # raises the precise error
            fork = (index ^ size).bit_length() - 1
            if fork not in tails:
                tails[fork] = self._tail(index, size, fork)
            forks.append(fork)
        # The siblings below each leaf's fork, level by level: neighbouring leaves share most
        # of them, so each is read once (every level's in one read), then each proof is picked
        # out by integer look-ups.
        pairs = list(zip(indexes, forks, strict=True))
        wanted = [
            sorted({(i >> level) ^ 1 for i, fork in pairs if fork > level})
            for level in range(max(forks))
        ]
        nodes = [_node((level, j)) for level, js in enumerate(wanted) for j in js]
        hashes = iter(node_hashes(nodes, self.read_strata))
        levels = [dict(zip(js, itertools.islice(hashes, len(js)), strict=True)) for js in wanted]
        return [
            [levels[level][(i >> level) ^ 1] for level in range(fork)] + tails[fork]
            for i, fork in pairs
        ]

    def _tail(self, index: int, size: int, fork: int) -> list[bytes]:
        """The part above ``fork`` of leaf ``index``'s inclusion proof in the tree of ``size``
        (shared by every leaf with that fork): cached, or made with that proof, which keeps it."""
        tail = self._tails.get((size, fork))
        return self._inclusion_proof(index, size)[fork:] if tail is None else tail

    def _complete_nodes(self, nodes: list[NodeID]) -> list[bytes]:
        known = self._nodes
        out = [known.get(node) for node in nodes]
        missing = [node for node, h in zip(nodes, out, strict=True) if h is None]
        if missing:
            found = dict(zip(missing, node_hashes(missing, self.read_strata), strict=True))
            if len(known) + len(found) > self._node_cache_size:
                known.clear()
            known.update(found)
            out = [found[node] if h is None else h for node, h in zip(nodes, out, strict=True)]
        return out  # type: ignore[return-value]  # every None was filled

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of ``size1`` to that of ``size2``.

        The proof is the path of the largest complete subtree that ends at ``size1`` (that
        node first, unless it is the old root itself) into the tree of ``size2``: the path of
        the subtree's first leaf above the subtree's level. So it ends in that leaf's cached
        tail, as inclusion proofs do, and only the siblings below the fork are read.
        """
        if not 0 < size1 < size2:
            consistency_plan(size1, size2)  # raises the precise error, or none is needed
            self._within(size2)
            return []
        self._within(size2)
        level = (size1 & -size1).bit_length() - 1
        index = (size1 - 1) >> level
        first = index << level
        fork = (first ^ size2).bit_length() - 1
        tail = self._tail(first, size2, fork)
        nodes = [_node((k, (index >> (k - level)) ^ 1)) for k in range(level, fork)]
        if index:  # not the old root (which the verifier has): it comes first
            nodes.insert(0, _node((level, index)))
        return [*node_hashes(nodes, self.read_strata), *tail]

    def root(self, size: int) -> bytes:
        """The root of the tree of ``size`` (any size up to the head), from tiles."""
        self._within(size)
        return compact_range_from_tiles(size, self.read_tiles).root()
