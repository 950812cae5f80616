"""The one storage interface (DESIGN §6): immutable records, reads, one atomic commit per block.

The ledger core never knows which backend it runs on. A backend stores exactly what a
:class:`Block` hands it — it computes nothing — and :meth:`Store.commit` is all-or-nothing and
durable when it returns, and refuses a block that does not start at the current head
(compare-and-swap), so two writers can never fork the log.

Keys a backend indexes by:

- entry (leaf) by index; private meta by index;
- tile record by :class:`~ledger.tiles.TileID` (complete tiles never change; the right-edge
  tile of each level only grows);
- deposit code (first 10 bytes of the leaf hash) → indexes;
- case key (:func:`~ledger.cases.case_key` of a contract number in the private meta) → indexes,
  written with the block that holds those deposits;
- statement key (evidence digest key ‖ statement hash) → index: one index serves both "every
  deposit of a digest, oldest first" (a prefix scan) and "was this exact statement deposited
  already" (a point read);
- checkpoint note by tree size; the head is the latest;
- originals (optional): evidence files by digest key, in chunks;
- RFC 3161 token by checkpoint tree size (written after the block, when the TSA answers);
- small records by kind and key (depositors, API keys, the judges' access log): rare writes,
  compare-and-swap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .errors import InvalidInput
from .tiles import TileID

__all__ = ["Block", "Head", "StagingStore", "Store", "open_store"]


@dataclass(frozen=True, slots=True)
class Head:
    """The latest checkpoint: tree size and signed note."""

    size: int
    note: bytes


@dataclass(frozen=True, slots=True)
class Block:
    """Everything one commit writes. Leaves are ``[old_size, old_size + len(leaves))``.

    The first block of a log (``old_size == 0`` and no head yet) carries ``config``: the log's
    identity (origin and verifier key), checked when the store is opened again.
    """

    old_size: int
    leaves: Sequence[bytes]
    leaf_hashes: Sequence[bytes]
    statement_keys: Sequence[bytes]
    tiles: Mapping[TileID, bytes]
    checkpoint: bytes
    metas: Mapping[int, bytes] = field(default_factory=dict)
    config: bytes | None = None
    cases: Mapping[int, bytes] = field(default_factory=dict)
    """Index → case key (16 bytes) of the deposits whose meta names a contract number."""

    @property
    def new_size(self) -> int:
        return self.old_size + len(self.leaves)


class Store(Protocol):
    """A ledger backend. Reads may run concurrently with the one writer."""

    def config(self) -> bytes | None:
        """The log identity written with the first block, or ``None`` for a new store."""
        ...

    def head(self) -> Head | None:
        """The latest checkpoint, or ``None`` for a new store."""
        ...

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        """Tile records, ``None`` where absent."""
        ...

    def entry(self, index: int) -> bytes | None: ...

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaves ``[start, end)`` that exist, in order."""
        ...

    def meta(self, index: int) -> bytes | None: ...

    def indexes_by_code(self, code: bytes) -> list[int]:
        """Indexes whose leaf hash starts with the 10 ``code`` bytes (one, barring a collision)."""
        ...

    def indexes_by_digest(self, digest_key: bytes) -> list[int]:
        """Indexes of every deposit of a digest, oldest first."""
        ...

    def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        """For each statement key, the index it was deposited at, if any."""
        ...

    def indexes_by_case(self, case_key: bytes) -> list[int]:
        """Indexes of every deposit filed under a case key (``Block.cases``), oldest first."""
        ...

    def checkpoint(self, size: int) -> bytes | None: ...

    def checkpoint_at_or_after(self, size: int) -> Head | None:
        """The first checkpoint whose tree size is ``>= size``."""
        ...

    def checkpoints(self, start: int = 0) -> Iterator[Head]:
        """Every checkpoint with tree size ``>= start``, in order."""
        ...

    def put_timestamp(self, size: int, token: bytes) -> None:
        """Store the token of checkpoint ``size`` durably; a token is never replaced."""
        ...

    def timestamp(self, size: int) -> bytes | None: ...

    def timestamp_at_or_after(self, size: int) -> tuple[int, bytes] | None:
        """The first time-stamped checkpoint with tree size ``>= size``, and its token."""
        ...

    def latest_timestamped(self) -> int | None:
        """Tree size of the latest checkpoint that has a token."""
        ...

    def put_original(self, digest_key: bytes, chunks: Sequence[bytes]) -> None:
        """Keep an evidence file, content-addressed by its digest key, durably and atomically.
        Storing the same content again is a no-op."""
        ...

    def original(self, digest_key: bytes) -> Iterator[bytes] | None:
        """The file's bytes in chunks, or ``None`` if it is not held."""
        ...

    def record_get(self, kind: str, key: str) -> bytes | None:
        """A small mutable record outside the log: depositors, API keys, access log lines."""
        ...

    def record_put(self, kind: str, key: str, value: bytes, expected: bytes | None) -> None:
        """Write a record if the stored one is still ``expected`` (None: absent);
        :class:`~ledger.errors.Conflict` otherwise. Durable when it returns."""
        ...

    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]:
        """Every record of ``kind`` with key ``>= start``, by key."""
        ...

    def commit(self, block: Block) -> None:
        """Write the block atomically and durably; :class:`~ledger.errors.Conflict` if the head
        is not ``block.old_size``; :class:`~ledger.errors.StorageError` on failure."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StagingStore(Protocol):
    """A store whose commit comes in two halves, which the sequencer overlaps: the fsync of
    one block (GIL released) with the next block's work. ``commit(block)`` is
    ``sync(stage(block))``.

    :meth:`stage` writes a block where later :meth:`stage` calls see it, but no read shows it;
    :meth:`sync` makes every block staged so far durable, and from then on reads show them up to
    ``head``. After either fails, :meth:`settle` makes what the store holds durable and takes it
    as the head (a staged block may be there, or not), and the writer reloads from that head.
    """

    def stage(self, block: Block) -> Head: ...

    def staged_indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        """``indexes_by_statement``, staged blocks included (the writer's duplicate check)."""
        ...

    def sync(self, head: Head) -> None: ...

    def settle(self) -> None: ...


def open_store(url: str, *, read_only: bool = False) -> Store:
    """Open a backend by URL: ``rocksdb:PATH`` or a plain path (RocksDB), ``memory:``, or
    ``postgresql://…`` (PostgreSQL; the schema is created or migrated on open)."""
    if url == "memory:":
        from .storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith(("postgresql://", "postgres://")):
        from .storage.postgres import PostgresStore

        return PostgresStore(url, read_only=read_only)
    path = url.removeprefix("rocksdb:")
    if not path:
        raise InvalidInput("store URL names no directory", url=url)
    from .storage.rocksdb import RocksStore

    return RocksStore(path, read_only=read_only)
