"""Where an audit reads the log from. A store opened read-only already is a source; this module
adds a cunzheng server over HTTP: public checkpoints, C2SP tiles and entry bundles, indexes and the
depositor registry — nothing the operator could not be asked for by anyone.

Tiles come as C2SP tiles (one level each); the source rebuilds the records the audit compares
(sub-levels 3 and 6 computed from the tile), so a wrong hash in a served tile shows up as a tile
divergence exactly as in a store.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.canonical import jcs
from ledger.code import DepositCode
from ledger.entry import DIGEST_ALGORITHM_IDS
from ledger.errors import StorageError
from ledger.merkle import HASH_SIZE
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileID, record_from_tile, tile_path

__all__ = ["HttpSource"]

_ALG_BY_ID = {v: k for k, v in DIGEST_ALGORITHM_IDS.items()}
LOOKUPS = 4096
"""Index lookups per request (the server's limit)."""


@dataclass(frozen=True, slots=True)
class _Head:
    size: int
    note: bytes


class HttpSource:
    """The read side of :class:`verifier.audit.AuditSource` over a cunzheng server's public API."""

    def __init__(self, url: str, *, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._size: int | None = None
        self._bundle: tuple[int, list[bytes]] | None = None

    def reader_recipe(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """How another process opens this source (an audit's workers)."""
        return "verifier.sources:HttpSource", (self.url,), {"timeout": self.timeout}

    def _get(self, path: str, *, missing_ok: bool = False) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as r:  # noqa: S310
                body: bytes = r.read()
                return body
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise StorageError(f"{self.url}{path}: HTTP {exc.code}") from exc
        except OSError as exc:
            raise StorageError(f"{self.url}{path}: {exc}") from exc

    def _json(self, path: str) -> Any:
        body = self._get(path)
        assert body is not None
        return json.loads(body)

    def checkpoints(self, start: int = 0) -> Iterator[_Head]:
        while True:
            page = self._json(f"/v1/checkpoints?start={start}&limit=1000")["checkpoints"]
            for item in page:
                self._size = max(self._size or 0, item["size"])
                yield _Head(item["size"], item["note"].encode())
            if len(page) < 1000:
                return
            start = page[-1]["size"] + 1

    def _tree_size(self) -> int:
        if self._size is None:
            for _ in self.checkpoints(0):
                pass
        return self._size or 0

    def entries(self, start: int, end: int) -> list[bytes]:
        out: list[bytes] = []
        size = self._tree_size()
        index = start
        while index < min(end, size):
            number = index // TILE_WIDTH
            if self._bundle is None or self._bundle[0] != number:
                width = min(TILE_WIDTH, size - number * TILE_WIDTH)
                raw = self._get("/" + tile_path(-1, number, width)) or b""
                leaves, at = [], 0
                while at + 2 <= len(raw):
                    (n,) = struct.unpack(">H", raw[at : at + 2])
                    leaves.append(raw[at + 2 : at + 2 + n])
                    at += 2 + n
                self._bundle = (number, leaves)
            leaves = self._bundle[1]
            offset = index - number * TILE_WIDTH
            if offset >= len(leaves):
                break
            take = leaves[offset : offset + (end - index)]
            out.extend(take)
            index += len(take)
        return out

    def timestamp(self, size: int) -> bytes | None:
        return self._get(f"/v1/checkpoints/{size}/timestamp", missing_ok=True)

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        size = self._tree_size()
        out: list[bytes | None] = []
        for tile in ids:
            width = min(TILE_WIDTH, (size >> (TILE_HEIGHT * tile.level)) - tile.index * TILE_WIDTH)
            if width <= 0:
                out.append(None)
                continue
            hashes = self._get("/" + tile_path(tile.level, tile.index, width), missing_ok=True)
            if hashes is None or len(hashes) != width * HASH_SIZE:
                out.append(None)
                continue
            out.append(record_from_tile(hashes))
        return out

    def indexes_by_code(self, code: bytes) -> list[int]:
        indexes: list[int] = self._json(f"/v1/indexes/code/{DepositCode(code).compact}")["indexes"]
        return indexes

    def indexes_by_digest(self, digest_key: bytes) -> list[int]:
        alg = _ALG_BY_ID[digest_key[0]]
        indexes: list[int] = self._json(f"/v1/indexes/digest/{alg}:{digest_key[1:].hex()}")[
            "indexes"
        ]
        return indexes

    def _lookup(self, body: dict[str, list[str]]) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the auditor's own server URL)
            self.url + "/v1/indexes/lookup",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as r:  # noqa: S310
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise StorageError(f"{self.url}/v1/indexes/lookup: HTTP {exc.code}") from exc
        except OSError as exc:
            raise StorageError(f"{self.url}/v1/indexes/lookup: {exc}") from exc

    def codes_indexed(self, pairs: Sequence[tuple[bytes, int]]) -> list[bool]:
        """For each (code, index), whether the server's by-code index holds it; a batch at a
        time (``POST /v1/indexes/lookup``)."""
        out: list[bool] = []
        for at in range(0, len(pairs), LOOKUPS):
            part = pairs[at : at + LOOKUPS]
            found = self._lookup({"codes": [DepositCode(c).compact for c, _ in part]})["codes"]
            out += [index in indexes for (_, index), indexes in zip(part, found, strict=True)]
        return out

    def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        out: list[int | None] = []
        for at in range(0, len(keys), LOOKUPS):
            part = [k.hex() for k in keys[at : at + LOOKUPS]]
            out += self._lookup({"statements": part})["statements"]
        return out

    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]:
        if kind != "depositor":
            return []
        depositors = self._json("/v1/depositors")["depositors"]
        return [(d["id"], jcs(d)) for d in depositors if d["id"] >= start]
