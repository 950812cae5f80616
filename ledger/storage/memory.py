"""An in-memory store for tests: it polices immutability and has fault hooks.

Every rule a real backend must keep is checked here, loudly: an entry, index key, meta or
checkpoint is never rewritten; a complete tile never changes; an edge tile only grows (each of
its strata extends the old one). ``fail_next_commit`` makes the next commit fail either before
anything is persisted (``"lose"``) or after everything is (``"persist"``), as a crash between the
write and its acknowledgement would.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import Literal

from ..errors import Conflict, StorageError
from ..store import Block, Head
from ..tiles import TILE_WIDTH, TileID, decode_record, tile_width

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`~ledger.store.Store` in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: bytes | None = None
        self._entries: list[bytes] = []
        self._metas: dict[int, bytes] = {}
        self._tiles: dict[TileID, bytes] = {}
        self._codes: dict[bytes, list[int]] = {}
        self._digests: dict[bytes, list[int]] = {}
        self._statements: dict[bytes, int] = {}
        self._cases: dict[bytes, list[int]] = {}
        self._checkpoints: dict[int, bytes] = {}
        self._sizes: list[int] = []
        self._tokens: dict[int, bytes] = {}
        self._originals: dict[bytes, list[bytes]] = {}
        self._records: dict[tuple[str, str], bytes] = {}
        self.fail_next_commit: Literal["lose", "persist"] | None = None
        self.commits = 0

    def config(self) -> bytes | None:
        return self._config

    def head(self) -> Head | None:
        if not self._sizes:
            return None
        size = self._sizes[-1]
        return Head(size, self._checkpoints[size])

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        return [self._tiles.get(i) for i in ids]

    def entry(self, index: int) -> bytes | None:
        return self._entries[index] if 0 <= index < len(self._entries) else None

    def entries(self, start: int, end: int) -> list[bytes]:
        return self._entries[max(start, 0) : max(end, 0)]

    def meta(self, index: int) -> bytes | None:
        return self._metas.get(index)

    def indexes_by_code(self, code: bytes) -> list[int]:
        return list(self._codes.get(code, ()))

    def indexes_by_digest(self, digest_key: bytes) -> list[int]:
        return list(self._digests.get(digest_key, ()))

    def codes_indexed(self, pairs: Sequence[tuple[bytes, int]]) -> list[bool]:
        return [index in self._codes.get(code, ()) for code, index in pairs]

    def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        return [self._statements.get(k) for k in keys]

    def indexes_by_case(self, case_key: bytes) -> list[int]:
        return list(self._cases.get(case_key, ()))

    def checkpoint(self, size: int) -> bytes | None:
        return self._checkpoints.get(size)

    def checkpoint_at_or_after(self, size: int) -> Head | None:
        i = bisect.bisect_left(self._sizes, size)
        if i == len(self._sizes):
            return None
        s = self._sizes[i]
        return Head(s, self._checkpoints[s])

    def checkpoints(self, start: int = 0) -> Iterator[Head]:
        for s in self._sizes[bisect.bisect_left(self._sizes, start) :]:
            yield Head(s, self._checkpoints[s])

    def put_timestamp(self, size: int, token: bytes) -> None:
        with self._lock:
            if size not in self._checkpoints:
                raise StorageError(f"no checkpoint at size {size} to time-stamp")
            if size in self._tokens:
                raise Conflict(f"checkpoint {size} already has a token")
            self._tokens[size] = token

    def timestamp(self, size: int) -> bytes | None:
        return self._tokens.get(size)

    def timestamp_at_or_after(self, size: int) -> tuple[int, bytes] | None:
        sizes = sorted(s for s in self._tokens if s >= size)
        return (sizes[0], self._tokens[sizes[0]]) if sizes else None

    def latest_timestamped(self) -> int | None:
        return max(self._tokens, default=None)

    def put_original(self, digest_key: bytes, chunks: Sequence[bytes]) -> None:
        with self._lock:
            self._originals.setdefault(digest_key, list(chunks))

    def original(self, digest_key: bytes) -> Iterator[bytes] | None:
        chunks = self._originals.get(digest_key)
        return None if chunks is None else iter(chunks)

    def record_get(self, kind: str, key: str) -> bytes | None:
        return self._records.get((kind, key))

    def record_put(self, kind: str, key: str, value: bytes, expected: bytes | None) -> None:
        with self._lock:
            if self._records.get((kind, key)) != expected:
                raise Conflict(f"{kind} {key} changed meanwhile; read it again")
            self._records[(kind, key)] = value

    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]:
        return sorted((k, v) for (t, k), v in self._records.items() if t == kind and k >= start)

    def commit(self, block: Block) -> None:
        with self._lock:
            current = self._sizes[-1] if self._sizes else None
            if current is None:
                if block.old_size != 0 or block.config is None:
                    raise Conflict("a new store starts with a genesis block carrying config")
            elif block.old_size != current or block.config is not None:
                raise Conflict(
                    f"block starts at {block.old_size}, head is at {current}",
                    got=block.old_size,
                    want=current,
                )
            if block.new_size in self._checkpoints:
                raise AssertionError(f"checkpoint {block.new_size} rewritten")
            fault, self.fail_next_commit = self.fail_next_commit, None
            if fault == "lose":
                raise StorageError("injected fault: commit lost")
            self._apply(block)
            self.commits += 1
            if fault == "persist":
                raise StorageError("injected fault: commit persisted, acknowledgement lost")

    def _apply(self, block: Block) -> None:
        for tile, record in block.tiles.items():
            old = self._tiles.get(tile)
            if old is not None:
                if tile_width(old) == TILE_WIDTH:
                    raise AssertionError(f"complete tile {tile} rewritten")
                for before, after in zip(decode_record(old), decode_record(record), strict=True):
                    if not after.startswith(before):
                        raise AssertionError(f"edge tile {tile} changed instead of growing")
            self._tiles[tile] = record
        for offset, leaf in enumerate(block.leaves):
            index = block.old_size + offset
            self._entries.append(leaf)
            self._codes.setdefault(block.leaf_hashes[offset][:10], []).append(index)
            key = block.statement_keys[offset]
            if key in self._statements:
                raise AssertionError(f"statement {key.hex()} deposited twice")
            self._statements[key] = index
            self._digests.setdefault(key[:-16], []).append(index)
        for index, meta in block.metas.items():
            if index in self._metas:
                raise AssertionError(f"meta {index} rewritten")
            self._metas[index] = meta
        for index, case in sorted(block.cases.items()):
            if not block.old_size <= index < block.new_size:
                raise AssertionError(f"case index {index} outside the block")
            self._cases.setdefault(case, []).append(index)
        if block.config is not None:
            self._config = block.config
        self._checkpoints[block.new_size] = block.checkpoint
        self._sizes.append(block.new_size)

    def close(self) -> None:
        pass
