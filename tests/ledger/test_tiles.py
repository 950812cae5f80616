"""C2SP tlog-tiles paths and contents, and our tile records."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tlog_scales.tiles import tile_path as tlog_tile_path

from ledger.errors import InvalidInput, NotFound, StorageError
from ledger.log import Ledger
from ledger.merkle import HASH_SIZE
from ledger.sequencer import Sequencer
from ledger.tiles import (
    ENTRY_BUNDLE_LEVEL,
    TILE_WIDTH,
    TileID,
    decode_record,
    encode_record,
    parse_tile_path,
    tile_path,
    tile_width,
)
from tests import reference
from tests.conftest import make_deposit
from tests.ledger.trees import build


@given(st.integers(-1, 5), st.integers(0, 10**15), st.integers(1, TILE_WIDTH))
def test_paths_agree_with_tlog_scales_and_parse_back(level: int, index: int, width: int) -> None:
    path = tile_path(level, index, width)
    partial = 0 if width == TILE_WIDTH else width
    assert path == "/".join(tlog_tile_path(level, index, partial))
    assert parse_tile_path(path) == (level, index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/x1/001",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/007",
        "tile/0/x000/001",  # not canonical: no leading zero group
        "tile/64/000",
        "tile/-1/000",
        "tile/entries/000/",
        "../tile/0/000",
    ],
)
def test_bad_tile_paths(path: str) -> None:
    with pytest.raises(InvalidInput):
        parse_tile_path(path)


def test_record_widths() -> None:
    for w in range(TILE_WIDTH + 1):
        strata = (b"a" * 32 * w, b"b" * 32 * (w >> 3), b"c" * 32 * (w >> 6))
        record = encode_record(strata)
        assert len(record) == 32 * (w + (w >> 3) + (w >> 6))
        assert decode_record(record) == strata and tile_width(record) == w
    with pytest.raises(StorageError):
        encode_record((b"a" * 32 * 8, b"", b""))
    with pytest.raises(StorageError):
        decode_record(b"x" * 33)


def test_storage_per_leaf_is_under_40_bytes() -> None:
    leaves = [i.to_bytes(4, "big") for i in range(70_000)]
    tiles = build(leaves, block=5_000)
    total = sum(len(r) for r in tiles.records.values())
    assert total / len(leaves) <= 40


def test_tile_contents_are_c2sp_level_hashes() -> None:
    rng = random.Random(8)
    n = 256 * 256 + 300
    leaves = [rng.randbytes(8) for _ in range(n)]
    tiles = build(leaves, block=4099)
    ref = reference.RangeReference(leaves)
    level0 = decode_record(tiles.records[TileID(0, 3)])[0]
    assert level0[:32] == reference.leaf_hash(leaves[3 * 256])
    level1 = decode_record(tiles.records[TileID(1, 0)])[0]
    assert len(level1) == TILE_WIDTH * HASH_SIZE
    for k in (0, 1, 255):
        assert level1[32 * k : 32 * (k + 1)] == ref.mth(256 * k, 256 * (k + 1))
    edge1 = decode_record(tiles.records[TileID(1, 1)])[0]
    assert len(edge1) == 32  # one complete level-8 node past the first 65,536 leaves
    assert decode_record(tiles.records[TileID(2, 0)])[0] == ref.mth(0, 65536)
    assert len(decode_record(tiles.records[TileID(0, 257)])[0]) == 32 * (300 - 256)


def test_ledger_serves_tiles(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        receipts = seq.append([make_deposit(i) for i in range(300)])
    full = ledger.tile(0, 0, 256)
    assert full[32:64] == receipts[1].leaf_hash
    assert ledger.tile(0, 1, 44) == b"".join(r.leaf_hash for r in receipts[256:300])
    assert ledger.tile(0, 1, 10) == b"".join(r.leaf_hash for r in receipts[256:266])
    assert ledger.tile(1, 0, 1) == reference.mth(ledger.store.entries(0, 256))
    for level, index, width in [(0, 1, 45), (0, 2, 1), (1, 0, 2), (2, 0, 1), (-1, 0, 1)]:
        with pytest.raises(NotFound):
            ledger.tile(level, index, width)
    assert tile_path(ENTRY_BUNDLE_LEVEL, 1, 44) == "tile/entries/001.p/44"


def test_verifier_loads_no_backend() -> None:
    """verifier/ and the pure ledger core import no storage or web framework (STYLE.md)."""
    code = (
        "import sys, verifier.proof, ledger.checkpoint, ledger.entry, ledger.tiles, ledger.code\n"
        "bad = [m for m in ('rocksdict', 'psycopg', 'fastapi', 'ledger.store', 'ledger.storage',"
        " 'api') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
