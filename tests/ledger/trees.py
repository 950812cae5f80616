"""Helpers to build tiled trees straight from leaf data, without a store."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle import consistency_plan, inclusion_plan, leaf_hash
from ledger.tiles import TiledTree, TileID, node_hashes, strata_reader


class TileMap:
    """A tree's tile records in a dict, grown block by block like the sequencer does."""

    def __init__(self) -> None:
        self.records: dict[TileID, bytes] = {}
        self.tree = TiledTree.empty()

    def extend(self, leaves: Sequence[bytes]) -> None:
        self.records.update(self.tree.extend([leaf_hash(x) for x in leaves]))

    def read(self, ids: Sequence[TileID]) -> list[bytes | None]:
        return [self.records.get(i) for i in ids]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        plan = inclusion_plan(index, size)
        return plan.proof(node_hashes(plan.nodes, strata_reader(self.read)))

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        plan = consistency_plan(size1, size2)
        return plan.proof(node_hashes(plan.nodes, strata_reader(self.read)))


def build(leaves: Sequence[bytes], block: int = 1_000_000) -> TileMap:
    tiles = TileMap()
    for start in range(0, len(leaves), block):
        tiles.extend(leaves[start : start + block])
    return tiles
