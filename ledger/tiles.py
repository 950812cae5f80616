"""C2SP tlog-tiles maths and paths, and how we store tiles (pure, no I/O).

A tile (https://c2sp.org/tlog-tiles) at tile level ``L`` and index ``N`` holds the hashes of tree
level ``8·L`` nodes ``[256·N, 256·N + width)``. That is what auditors fetch, at
``tile/<L>/<N>[.p/<width>]``.

We store each tile as a *record*: its C2SP hashes (stratum 0) followed by the complete nodes of
sub-levels 3 and 6 inside the tile (32 and 4 hashes when full). A node at any sub-level is then
at most three hashes away from a stored stratum, so a proof costs one read and a handful of
hashes per tile level, for 292 stored hashes per 256 leaves (36.5 bytes per leaf).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from hashlib import sha256
from typing import NamedTuple

from .errors import InvalidInput, StorageError
from .merkle import HASH_SIZE, NODE_HASH_PREFIX, CompactRange, NodeID, range_nodes

__all__ = [
    "ENTRY_BUNDLE_LEVEL",
    "STRATA",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileID",
    "TiledTree",
    "compact_range_from_tiles",
    "decode_record",
    "encode_record",
    "node_hashes",
    "parse_tile_path",
    "record_from_tile",
    "tile_path",
    "tile_width",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
STRATA = (0, 3, 6)
"""Sub-levels stored in a tile record. 0 is the C2SP tile itself."""
ENTRY_BUNDLE_LEVEL = -1
"""Tile level used for entry bundles (``tile/entries/...``) in :func:`tile_path`."""

_RECORD_WIDTH = {(w + (w >> 3) + (w >> 6)) * HASH_SIZE: w for w in range(TILE_WIDTH + 1)}


class TileID(NamedTuple):
    """Tile ``index`` at tile ``level`` (tree level ``8·level``)."""

    level: int
    index: int  # type: ignore[assignment]  # the spec's word; shadows tuple.index


def encode_record(strata: Sequence[bytes]) -> bytes:
    """Concatenate the hashes of sub-levels 0, 3 and 6 of one tile, checking their widths."""
    s0, s3, s6 = strata
    width = len(s0) // HASH_SIZE
    if (
        len(s0) % HASH_SIZE
        or width > TILE_WIDTH
        or len(s3) != (width >> 3) * HASH_SIZE
        or len(s6) != (width >> 6) * HASH_SIZE
    ):
        raise StorageError(
            "tile strata have inconsistent widths",
            widths=[len(s0) / HASH_SIZE, len(s3) / HASH_SIZE, len(s6) / HASH_SIZE],
        )
    return s0 + s3 + s6


def decode_record(record: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a tile record into its sub-level 0, 3 and 6 hashes."""
    width = _RECORD_WIDTH.get(len(record))
    if width is None:
        raise StorageError(f"tile record of {len(record)} bytes has no valid width")
    a = width * HASH_SIZE
    b = a + (width >> 3) * HASH_SIZE
    return record[:a], record[a:b], record[b:]


def tile_width(record: bytes) -> int:
    """The C2SP width (number of stratum-0 hashes) of a tile record."""
    width = _RECORD_WIDTH.get(len(record))
    if width is None:
        raise StorageError(f"tile record of {len(record)} bytes has no valid width")
    return width


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The C2SP tlog-tiles path of a tile (``level`` -1 for entry bundles).

    >>> tile_path(0, 1234067)
    'tile/0/x001/x234/067'
    >>> tile_path(1, 5, 17)
    'tile/1/005.p/17'
    >>> tile_path(ENTRY_BUNDLE_LEVEL, 0, 3)
    'tile/entries/000.p/3'
    """
    if level < ENTRY_BUNDLE_LEVEL or index < 0 or not 0 < width <= TILE_WIDTH:
        raise InvalidInput(f"no tile at level {level}, index {index}, width {width}")
    parts = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        parts.append(f"x{index % 1000:03d}")
        index //= 1000
    parts.reverse()
    name = "/".join(parts)
    if width < TILE_WIDTH:
        name += f".p/{width}"
    return f"tile/{'entries' if level == ENTRY_BUNDLE_LEVEL else level}/{name}"


_TILE_PATH = re.compile(
    r"tile/(entries|[0-9]|[1-5][0-9]|6[0-3])/((?:x[0-9]{3}/){0,6}[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """``(level, index, width)`` of a C2SP tile path; level -1 for entry bundles.

    >>> parse_tile_path("tile/0/x001/x234/067.p/8")
    (0, 1234067, 8)
    """
    m = _TILE_PATH.fullmatch(path)
    if m is None or (m.group(3) is not None and int(m.group(3)) >= TILE_WIDTH):
        raise InvalidInput(f"not a tile path: {path!r}", path=path)
    level = ENTRY_BUNDLE_LEVEL if m.group(1) == "entries" else int(m.group(1))
    index = int(m.group(2).replace("x", "").replace("/", ""))
    width = int(m.group(3)) if m.group(3) else TILE_WIDTH
    if tile_path(level, index, width) != path:
        raise InvalidInput(f"not a canonical tile path: {path!r}", path=path)
    return level, index, width


_tile = functools.partial(tuple.__new__, TileID)
_INDEX_MASK = (1 << 64) - 1
"""Tile indexes are below 2**64 (tree sizes are 64-bit): a tile's key is ``level << 64 | index``."""

# Sub-level -> (position of the stratum below it in a record, its sub-level).
_STRATUM_BELOW = [
    (0 if sub < 3 else 1 if sub < 6 else 2, 0 if sub < 3 else 3 if sub < 6 else 6)
    for sub in range(TILE_HEIGHT)
]


Strata = tuple[bytes, ...]
"""A decoded tile: its stored sub-levels (0, 3, 6), or all eight once :func:`expand` ran."""
ReadTiles = Callable[[Sequence[TileID]], Sequence[bytes | None]]
ReadStrata = Callable[[Sequence[TileID], Sequence[int]], Sequence[Strata | None]]
"""Reads decoded tiles; the second argument is the width each tile must have at least (a reader
may serve any version of a growing edge tile that is that wide)."""


def strata_reader(read_tiles: ReadTiles) -> ReadStrata:
    """Adapt a reader of tile records into a reader of decoded strata."""

    def read(ids: Sequence[TileID], widths: Sequence[int]) -> list[Strata | None]:
        return [None if r is None else decode_record(r) for r in read_tiles(ids)]

    return read


def _pairs(level: bytes) -> bytes:
    """The parents of a row of hashes (an odd last hash has none yet)."""
    return b"".join(
        sha256(NODE_HASH_PREFIX + level[i : i + 2 * HASH_SIZE]).digest()
        for i in range(0, len(level) - HASH_SIZE, 2 * HASH_SIZE)
    )


def expand(strata: Strata) -> Strata:
    """All eight sub-levels of a tile from its stored three: 218 hashes for a full tile, paid
    once per cached tile so that every later proof node is a slice."""
    if len(strata) == TILE_HEIGHT:
        return strata
    s0, s3, s6 = strata
    s1 = _pairs(s0)
    s2 = _pairs(s1)
    s4 = _pairs(s3)
    s5 = _pairs(s4)
    return (s0, s1, s2, s3, s4, s5, s6, _pairs(s6))


def record_from_tile(hashes: bytes) -> bytes:
    """Our record of a C2SP tile: its hashes, plus sub-levels 3 and 6 computed from them."""
    level = hashes
    strata = [hashes]
    for sub in range(1, TILE_HEIGHT):
        level = _pairs(level)
        if sub in (3, 6):
            strata.append(level)
    return encode_record(strata)


def node_hashes(nodes: Sequence[NodeID], read_strata: ReadStrata) -> list[bytes]:
    """Hashes of complete ``nodes``, computed from tiles fetched (decoded) by ``read_strata``.

    Each tile is read once, whatever the number of nodes in it. Tiles are keyed by one integer
    while the nodes are located (a proof's nodes are a few per tile): a TileID is made only for
    each distinct tile.
    """
    located = []
    widths: dict[int, int] = {}  # tile key -> the stratum-0 width it must reach
    for level, index in nodes:
        sub = level & 7
        shift = TILE_HEIGHT - sub
        tile_index = index >> shift
        key = (level >> 3) << 64 | tile_index
        position = index - (tile_index << shift)
        located.append((key, sub, position))
        need = (position + 1) << sub
        if widths.get(key, 0) < need:
            widths[key] = need
    keys = list(widths)
    ids = [_tile((key >> 64, key & _INDEX_MASK)) for key in keys]
    strata: dict[int, Strata] = {}
    for key, tile, decoded in zip(keys, ids, read_strata(ids, list(widths.values())), strict=True):
        if decoded is None:
            raise StorageError(f"tile {tile[0]}/{tile[1]} is missing", tile=tile)
        strata[key] = decoded
    out = []
    for key, sub, position in located:
        decoded = strata[key]
        if len(decoded) == TILE_HEIGHT:
            chunk = decoded[sub][position * HASH_SIZE : (position + 1) * HASH_SIZE]
            if len(chunk) != HASH_SIZE:
                raise StorageError(
                    f"a node is beyond the end of tile {key >> 64}/{key & _INDEX_MASK}"
                )
            out.append(chunk)
            continue
        which, stratum = _STRATUM_BELOW[sub]
        size = HASH_SIZE << (sub - stratum)
        start = position * size
        chunk = decoded[which][start : start + size]
        n = len(chunk)
        if n == size == HASH_SIZE:
            out.append(chunk)
        elif n == size == 2 * HASH_SIZE:
            out.append(sha256(NODE_HASH_PREFIX + chunk).digest())
        elif n == size == 4 * HASH_SIZE:
            out.append(
                sha256(
                    NODE_HASH_PREFIX
                    + sha256(NODE_HASH_PREFIX + chunk[:64]).digest()
                    + sha256(NODE_HASH_PREFIX + chunk[64:]).digest()
                ).digest()
            )
        else:
            tile = _tile((key >> 64, key & _INDEX_MASK))
            raise StorageError(f"a node is beyond the end of tile {tile[0]}/{tile[1]}", tile=tile)
    return out


def compact_range_from_tiles(size: int, read_tiles: ReadTiles) -> CompactRange:
    """The frontier of the tree of ``size``, read back from its tiles (O(log n) reads)."""
    return CompactRange(size, node_hashes(range_nodes(0, size), strata_reader(read_tiles)))


class TiledTree:
    """The growing tree as the sequencer sees it: frontier plus the right-edge tile records.

    Use :meth:`extend` with a block's leaf hashes; it returns every tile record the block
    created or grew, ready to be written in the block's one atomic commit. Memory is O(log n):
    one partial record per tile level.
    """

    def __init__(self, frontier: CompactRange, edges: Mapping[int, bytes]) -> None:
        self.frontier = frontier
        # Tile level -> record of the partial tile at the right edge (absent when aligned).
        self.edges = dict(edges)

    @classmethod
    def empty(cls) -> TiledTree:
        return cls(CompactRange(), {})

    @classmethod
    def load(cls, size: int, read_tiles: ReadTiles) -> TiledTree:
        """Resume the tree of ``size`` from stored tiles."""
        frontier = compact_range_from_tiles(size, read_tiles)
        partial = [
            TileID(level, (size >> (TILE_HEIGHT * level)) >> TILE_HEIGHT)
            for level in range(_tile_levels(size))
            if (size >> (TILE_HEIGHT * level)) % TILE_WIDTH
        ]
        records = read_tiles(partial)
        edges = {}
        for tile, record in zip(partial, records, strict=True):
            if record is None:
                raise StorageError(f"edge tile {tile.level}/{tile.index} is missing", tile=tile)
            want = (size >> (TILE_HEIGHT * tile.level)) % TILE_WIDTH
            if tile_width(record) != want:
                raise StorageError(
                    f"edge tile {tile.level}/{tile.index} has width {tile_width(record)}, "
                    f"want {want} for tree size {size}",
                    tile=tile,
                )
            edges[tile.level] = record
        return cls(frontier, edges)

    @property
    def size(self) -> int:
        return self.frontier.size

    def root(self) -> bytes:
        return self.frontier.root()

    def extend(self, leaf_hashes: Iterable[bytes]) -> dict[TileID, bytes]:
        """Append leaves; return the new or grown tile records."""
        old = self.frontier.size
        levels = self.frontier.extend(leaf_hashes)
        return self._tiles(old, self.frontier.size, levels)

    def _tiles(self, old: int, new: int, levels: list[list[bytes]]) -> dict[TileID, bytes]:
        out: dict[TileID, bytes] = {}
        for level in range(_tile_levels(new)):
            base = TILE_HEIGHT * level
            first, last = old >> base, new >> base
            if first == last:
                break
            edge = self.edges.pop(level, None)
            edge_strata = decode_record(edge) if edge is not None else (b"", b"", b"")
            edge_index = first >> TILE_HEIGHT
            for index in range(first >> TILE_HEIGHT, ((last - 1) >> TILE_HEIGHT) + 1):
                strata = []
                for which, sub in enumerate(STRATA):
                    shift = TILE_HEIGHT - sub
                    lo_new = old >> (base + sub)  # first new node index at this sub-level
                    hi = min((index + 1) << shift, new >> (base + sub))
                    lo = index << shift
                    kept = edge_strata[which] if index == edge_index else b""
                    fresh = levels[base + sub] if base + sub < len(levels) else []
                    start = max(lo, lo_new) - lo_new
                    strata.append(kept + b"".join(fresh[start : max(hi - lo_new, start)]))
                record = encode_record(strata)
                out[TileID(level, index)] = record
                if tile_width(record) < TILE_WIDTH:
                    self.edges[level] = record
        return out


def _tile_levels(size: int) -> int:
    """Number of tile levels holding at least one hash for a tree of ``size``."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels
