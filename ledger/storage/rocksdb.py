"""The embedded default backend: RocksDB through rocksdict (raw mode, one WriteBatch per block,
durable before it is acknowledged).

Pitfalls this module works around (shared/research/peers-and-libraries.md §3):
``ReadOptions.set_iterate_lower_bound`` sets the upper bound, so scans start with ``seek``;
``close`` is only real once every iterator is gone, so iterators never outlive a call; one process
may open the directory read-write; snapshots do not isolate their iterators, so they are not used.

Durability without stalling the interpreter: ``write(batch, sync=True)`` holds the GIL through
the fsync, which froze the event loop for the length of every block's fsync. So a batch is
written without sync and then ``flush_wal(True)`` (RocksDB ``SyncWAL``: every live WAL file and
the WAL directory) makes it durable with the GIL released — the same fsync, measured as fast.
In between, the batch is in the memtable and readable; what must not be seen before it is durable
is the log, so every log read (head, checkpoints, entries, metas, the indexes) is bounded by the
*durable head*, kept in memory and moved only once ``flush_wal`` has returned. A block's commit
is two calls (:meth:`RocksStore.stage`, then :meth:`RocksStore.sync`), so that the sequencer
stages the next block while this one's fsync runs. A reader can thus
never be shown a checkpoint, entry or code that a power failure could take back. (A kill -9 could
not take it back anyway: the WAL write is in the kernel's page cache.) Tokens, records and
originals are small writes made the same way; they may be readable for the length of one fsync
before they are durable, which only a power failure in that window could expose: a token then
lost is stamped again, and a record is one its writer was never told of.

A full disk: RocksDB refuses the write (the WAL append fails, nothing reaches the memtable) and
then refuses every later write ("Writer has previous error") until the database is opened again,
since rocksdict exposes no ``DB::Resume``. So a failed write raises
:class:`~ledger.errors.StorageFull`, and the next write, once space is back, reopens the
database first; the WAL's torn tail is dropped on open (point-in-time recovery), so what was
acknowledged is all there and nothing half-written is.

Key layout (one column family, one-byte prefixes, integers big-endian so order is numeric)::

    C                      → log config (origin, vkey), written once
    H                      → head tree size (u64)
    e ‖ index              → leaf
    m ‖ index              → private meta
    t ‖ level(u8) ‖ index  → tile record
    c ‖ code(10) ‖ index   → ""          (by deposit code)
    d ‖ alg(1) ‖ digest ‖ statement(16) → index   (by digest; and "deposited already?")
    x ‖ case(16) ‖ index   → ""          (by case: contract number in the private meta)
    k ‖ size               → checkpoint note
    T ‖ size               → RFC 3161 token of that checkpoint
    R ‖ kind ‖ 0x00 ‖ key  → small records: depositors, API keys, access log
    o ‖ digest key         → number of chunks of a held original (u32)
    O ‖ digest key ‖ chunk → one chunk (≤ 1 MiB) of that original
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from ..errors import Conflict, StorageError, StorageFull
from ..store import Block, Head
from ..tiles import TileID

__all__ = ["RocksStore"]

_U64 = struct.Struct(">Q")
_TILE = struct.Struct(">BQ")
_CONFIG = b"C"
_HEAD = b"H"
_REOPEN_FREE_BYTES = 1 << 20
"""Free space needed before a store that hit a full disk is opened again."""


_FEW_KEYS = 64
"""Up to this many keys are read one by one: rocksdict's multi-get releases the GIL, and taking
it back costs the reader up to a switch interval (5 ms) whenever another thread is busy — the
event loop's proof reads and the sequencer's duplicate check read a few keys each time."""


_RECORDS_KEPT = 4096
"""Records :class:`RocksStore` keeps read (it forgets them all when it has this many)."""


def _u64(n: int) -> bytes:
    return _U64.pack(n)


class RocksStore:
    """A :class:`~ledger.store.Store` in a RocksDB directory."""

    def __init__(self, path: str | Path, *, read_only: bool = False, cache_mb: int = 256) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._failed: str | None = None
        """Why the last write failed for lack of space; the next write reopens first."""
        self._options = options = Options(raw_mode=True)
        options.create_if_missing(not read_only)
        options.set_compression_type(DBCompressionType.lz4())
        options.set_bottommost_compression_type(DBCompressionType.zstd())
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        table.set_block_cache(Cache(cache_mb << 20))
        table.set_cache_index_and_filter_blocks(True)
        options.set_block_based_table_factory(table)
        options.increase_parallelism(2)
        options.set_max_background_jobs(2)
        try:
            if read_only:
                if not Path(self.path, "CURRENT").exists():
                    raise StorageError(f"no ledger store at {self.path}", path=self.path)
                self._db: Any = Rdict(
                    self.path, options=options, access_type=AccessType.read_only(False)
                )
            else:
                Path(self.path).mkdir(parents=True, exist_ok=True)
                self._db = Rdict(self.path, options=options)
        except StorageError:
            raise
        except Exception as exc:
            hint = " (is another cunzheng process using it?)" if "lock" in str(exc).lower() else ""
            raise StorageError(f"cannot open store at {self.path}{hint}: {exc}") from exc
        self._no_sync = WriteOptions()
        self._no_sync.sync = False
        self._lock = threading.Lock()
        """Held by every write: one writer at a time."""
        self._sync_lock = threading.Lock()
        """Held through every fsync and a reopen (no fsync of a database being closed); never
        taken before the write lock."""
        self._records: dict[bytes, bytes] = {}
        """Records read (depositors, API keys: read on every deposit), kept until written:
        this process is the store's only writer (RocksDB locks it), so the copy is exact."""
        self._records_lock = threading.Lock()
        self._records_written = 0
        self._durable: Head | None = None
        """The head as of the last durable write: every log read is bounded by it. A read-only
        store sees the database as it was when opened, so its head never moves."""
        if read_only:
            self._durable = self._stored_head()
        else:
            self._recover()

    def _recover(self) -> None:
        """Make what RocksDB replayed from its WAL on opening durable, then take it as the head
        (after a kill -9 the WAL's tail may be only in the page cache)."""
        try:
            self._db.flush_wal(True)
        except Exception as exc:  # after a failed fsync, only a reopen tells what is on disk
            self._failed = str(exc)
            raise StorageError(f"cannot sync the store's log at {self.path}: {exc}") from exc
        self._durable = self._stored_head()

    def _bound(self) -> int:
        """Entries below this index may be read: the durable head's size."""
        durable = self._durable
        return 0 if durable is None else durable.size

    def _scan(
        self, prefix: bytes, start: bytes, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys and values from ``start`` on (below ``end``) whose keys begin with ``prefix``, in
        one forward scan (a multi-get of the same keys decompresses block by block and was up
        to 10 times slower on a large ledger's bottom level)."""
        it = self._db.iter(ReadOptions())
        try:
            it.seek(start)
            while it.valid():
                key = it.key()
                if not key.startswith(prefix) or (end is not None and key >= end):
                    break
                yield key, it.value()
                it.next()
        finally:
            del it

    def _get(self, key: bytes) -> Any:
        try:
            return self._db.get(key)
        except Exception as exc:
            raise StorageError(f"read failed: {exc}") from exc

    def _get_many(self, keys: list[bytes]) -> list[Any]:
        """Values of ``keys`` (``None`` where missing): one multi-get when there are many."""
        if len(keys) <= _FEW_KEYS:
            get = self._db.get
            return [get(key) for key in keys]
        values: list[Any] = self._db[keys]
        return values

    def config(self) -> bytes | None:
        value: bytes | None = self._get(_CONFIG)
        return value

    def head(self) -> Head | None:
        return self._durable

    def _stored_head(self) -> Head | None:
        raw = self._get(_HEAD)
        if raw is None:
            return None
        size = _U64.unpack(raw)[0]
        note = self._get(b"k" + raw)
        if note is None:
            raise StorageError(f"head names checkpoint {size}, which is missing")
        return Head(size, note)

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        if not ids:
            return []
        return self._get_many([b"t" + _TILE.pack(t.level, t.index) for t in ids])

    def entry(self, index: int) -> bytes | None:
        if not 0 <= index < self._bound():
            return None
        value: bytes | None = self._get(b"e" + _u64(index))
        return value

    def entries(self, start: int, end: int) -> list[bytes]:
        start, end = max(start, 0), min(max(end, 0), self._bound())
        if start >= end:
            return []
        return [v for _, v in self._scan(b"e", b"e" + _u64(start), b"e" + _u64(end))]

    def meta(self, index: int) -> bytes | None:
        if not 0 <= index < self._bound():
            return None
        value: bytes | None = self._get(b"m" + _u64(index))
        return value

    def indexes_by_code(self, code: bytes) -> list[int]:
        prefix, bound = b"c" + code, self._bound()
        found = (_U64.unpack(k[-8:])[0] for k, _ in self._scan(prefix, prefix))
        return [i for i in found if i < bound]

    def indexes_by_digest(self, digest_key: bytes) -> list[int]:
        prefix, bound = b"d" + digest_key, self._bound()
        found = (_U64.unpack(v)[0] for _, v in self._scan(prefix, prefix))
        return sorted(i for i in found if i < bound)

    def reader_recipe(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """How another process opens this store for reading (an audit's workers)."""
        return "ledger.storage.rocksdb:RocksStore", (self.path,), {"read_only": True}

    def codes_indexed(self, pairs: Sequence[tuple[bytes, int]]) -> list[bool]:
        """For each (code, index), whether the by-code index holds it (one multi-get; the
        audit's batch check)."""
        if not pairs:
            return []
        values = self._db[[b"c" + code + _u64(index) for code, index in pairs]]
        bound = self._bound()
        held = zip(values, pairs, strict=True)
        return [v is not None and index < bound for v, (_, index) in held]

    def indexes_by_case(self, case_key: bytes) -> list[int]:
        prefix, bound = b"x" + case_key, self._bound()
        found = (_U64.unpack(k[-8:])[0] for k, _ in self._scan(prefix, prefix))
        return [i for i in found if i < bound]

    def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        bound = self._bound()
        found = self.staged_indexes_by_statement(keys)
        return [i if i is not None and i < bound else None for i in found]

    def staged_indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        """:meth:`indexes_by_statement`, blocks staged and not yet durable included: the
        writer's duplicate check, which must see the blocks it wrote before."""
        if not keys:
            return []
        values = self._get_many([b"d" + k for k in keys])
        return [None if v is None else _U64.unpack(v)[0] for v in values]

    def checkpoint(self, size: int) -> bytes | None:
        if not 0 <= size <= self._bound():
            return None
        value: bytes | None = self._get(b"k" + _u64(size))
        return value

    def checkpoint_at_or_after(self, size: int) -> Head | None:
        bound = self._bound()
        for key, note in self._scan(b"k", b"k" + _u64(max(size, 0)), b"k" + _u64(bound + 1)):
            return Head(_U64.unpack(key[1:])[0], note)
        return None

    def checkpoints(self, start: int = 0) -> Iterator[Head]:
        bound = self._bound()
        for key, note in self._scan(b"k", b"k" + _u64(max(start, 0)), b"k" + _u64(bound + 1)):
            yield Head(_U64.unpack(key[1:])[0], note)

    def _write(self, batch: WriteBatch, what: str) -> None:
        """Write ``batch`` and make it durable (call with the lock)."""
        self._put_batch(batch, what)
        with self._sync_lock:
            self._sync_wal(what)

    def _put_batch(self, batch: WriteBatch, what: str) -> None:
        """Write ``batch`` into the memtable and the WAL's buffer: not yet durable."""
        if self.read_only:
            raise StorageError("store is open read-only")
        try:
            self._db.write(batch, self._no_sync)
        except Exception as exc:
            self._fail(exc, what)

    def _sync_wal(self, what: str) -> None:
        """fsync the WAL, with the GIL released (call with the sync lock)."""
        if self._failed is not None:  # the writer is stopped: nothing written since is kept
            raise StorageError(f"{what} failed: an earlier write failed", error=self._failed)
        try:
            self._db.flush_wal(True)
        except Exception as exc:
            self._fail(exc, what)

    def _fail(self, exc: Exception, what: str) -> NoReturn:
        # RocksDB refuses writes after a failed one; the next write reopens it first.
        self._failed = str(exc)
        if "no space left" in str(exc).lower():
            raise StorageFull(f"{what} failed: the disk is full", path=self.path) from exc
        raise StorageError(f"{what} failed: {exc}") from exc

    def _writable(self) -> None:
        """After a failed write (a full disk, a failed fsync): reopen the database, once space is
        back, and take its durable head again (call with the lock)."""
        if self._failed is None:
            return
        stat = os.statvfs(self.path)
        if stat.f_bavail * stat.f_frsize < _REOPEN_FREE_BYTES:
            raise StorageFull("the disk is still full", path=self.path, error=self._failed)
        with self._sync_lock:  # no sync of the old database may be under way
            old = self._db
            with contextlib.suppress(Exception):  # "Writer has previous error": it closes anyway
                old.close()
            del old
            try:
                self._db = Rdict(self.path, options=self._options)
            except Exception as exc:
                raise StorageFull(f"cannot reopen the store yet: {exc}", path=self.path) from exc
            self._recover()
            self._failed = None
        self._forget_records()  # read from the memtable of a write that may not have lasted

    def _forget_records(self, key: bytes | None = None) -> None:
        """Read ``key`` (every record, without one) from the database again next time, and
        keep no read that was under way."""
        with self._records_lock:
            self._records_written += 1
            if key is None:
                self._records.clear()
            else:
                self._records.pop(key, None)

    def put_timestamp(self, size: int, token: bytes) -> None:
        with self._lock:
            self._writable()
            if self._get(b"k" + _u64(size)) is None:
                raise StorageError(f"no checkpoint at size {size} to time-stamp")
            if self._get(b"T" + _u64(size)) is not None:
                raise Conflict(f"checkpoint {size} already has a token")
            batch = WriteBatch(raw_mode=True)
            batch.put(b"T" + _u64(size), token)
            self._write(batch, f"storing the token of checkpoint {size}")

    def timestamp(self, size: int) -> bytes | None:
        value: bytes | None = self._get(b"T" + _u64(size)) if size >= 0 else None
        return value

    def timestamp_at_or_after(self, size: int) -> tuple[int, bytes] | None:
        for key, token in self._scan(b"T", b"T" + _u64(max(size, 0))):
            return _U64.unpack(key[1:])[0], token
        return None

    def latest_timestamped(self) -> int | None:
        it = self._db.iter(ReadOptions())
        try:
            it.seek_for_prev(b"T\xff")
            if it.valid() and it.key().startswith(b"T"):
                size: int = _U64.unpack(it.key()[1:])[0]
                return size
            return None
        finally:
            del it

    def put_original(self, digest_key: bytes, chunks: Sequence[bytes]) -> None:
        with self._lock:
            self._writable()
            if self._get(b"o" + digest_key) is not None:
                return
            batch = WriteBatch(raw_mode=True)
            for n, chunk in enumerate(chunks):
                batch.put(b"O" + digest_key + struct.pack(">I", n), chunk)
            batch.put(b"o" + digest_key, struct.pack(">I", len(chunks)))
            self._write(batch, "storing an original")

    def original(self, digest_key: bytes) -> Iterator[bytes] | None:
        head = self._get(b"o" + digest_key)
        if head is None:
            return None
        (count,) = struct.unpack(">I", head)

        def chunks() -> Iterator[bytes]:
            for n in range(count):
                chunk = self._get(b"O" + digest_key + struct.pack(">I", n))
                if chunk is None:
                    raise StorageError(f"chunk {n} of an original is missing")
                yield chunk

        return chunks()

    @staticmethod
    def _record_key(kind: str, key: str) -> bytes:
        return b"R" + kind.encode() + b"\x00" + key.encode()

    def record_get(self, kind: str, key: str) -> bytes | None:
        full = self._record_key(kind, key)
        value = self._records.get(full)
        if value is not None:
            return value
        written = self._records_written
        value = self._get(full)
        if value is not None and not self.read_only:  # misses are not kept: anyone can ask
            with self._records_lock:  # not if a write of any record came in between
                if written == self._records_written:
                    if len(self._records) >= _RECORDS_KEPT:
                        self._records.clear()
                    self._records[full] = value
        return value  # type: ignore[no-any-return]

    def record_put(self, kind: str, key: str, value: bytes, expected: bytes | None) -> None:
        full = self._record_key(kind, key)
        with self._lock:
            self._writable()
            try:
                if self._get(full) != expected:
                    raise Conflict(f"{kind} {key} changed meanwhile; read it again")
                batch = WriteBatch(raw_mode=True)
                batch.put(full, value)
                self._write(batch, f"writing {kind} {key}")
            finally:  # written or not, or changed unseen: read it again next time
                self._forget_records(full)

    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]:
        prefix = b"R" + kind.encode() + b"\x00"
        items = self._scan(prefix, prefix + start.encode())
        return [(k[len(prefix) :].decode(), v) for k, v in items]

    def commit(self, block: Block) -> None:
        self.sync(self.stage(block))

    def stage(self, block: Block) -> Head:
        """The first half of :meth:`commit`: write ``block`` where this store's own writes and
        :meth:`stage` see it (so the next block can follow it), but not yet durable, and so not
        shown by any log read. Returns the head that :meth:`sync` makes durable and shows."""
        if self.read_only:
            raise StorageError("store is open read-only")
        with self._lock:
            self._writable()
            raw = self._get(_HEAD)
            current = None if raw is None else _U64.unpack(raw)[0]
            if current is None:
                if block.old_size != 0 or block.config is None:
                    raise Conflict("a new store starts with a genesis block carrying config")
            elif block.old_size != current or block.config is not None:
                raise Conflict(
                    f"block starts at {block.old_size}, head is at {current}",
                    got=block.old_size,
                    want=current,
                )
            # Each key family goes in as one sorted run: RocksDB's memtable inserts a sorted run
            # from where the previous key went in, about twice as fast as the same keys in
            # entry order (the code, digest and case keys are scattered by their hashes).
            base = block.old_size
            metas, cases = block.metas, block.cases
            for named in (metas, cases):
                if named and not base <= min(named) <= max(named) < block.new_size:
                    raise StorageError("a block's metas and cases must name its own entries")
            batch = WriteBatch(raw_mode=True)
            put = batch.put
            indexes = [_u64(base + offset) for offset in range(len(block.leaves))]
            if block.config is not None:
                put(_CONFIG, block.config)
            size = _u64(block.new_size)
            put(_HEAD, size)
            for key in sorted(
                [
                    b"c" + leaf_hash[:10] + index
                    for leaf_hash, index in zip(block.leaf_hashes, indexes, strict=True)
                ]
            ):
                put(key, b"")
            digest_keys = [b"d" + key for key in block.statement_keys]
            for offset in sorted(range(len(digest_keys)), key=digest_keys.__getitem__):
                put(digest_keys[offset], indexes[offset])
            for index, leaf in zip(indexes, block.leaves, strict=True):
                put(b"e" + index, leaf)
            put(b"k" + size, block.checkpoint)
            for index_int in sorted(metas):
                put(b"m" + indexes[index_int - base], metas[index_int])
            for tile in sorted(block.tiles):
                put(b"t" + _TILE.pack(tile.level, tile.index), block.tiles[tile])
            for key in sorted([b"x" + cases[i] + indexes[i - base] for i in cases]):
                put(key, b"")
            self._put_batch(batch, f"commit of block at {base}")
            return Head(block.new_size, block.checkpoint)

    def sync(self, head: Head) -> None:
        """The second half of :meth:`commit`: make every block staged up to ``head`` durable
        (one fsync for all of them), then show them. It may run beside :meth:`stage` of the
        next block: the fsync releases the GIL, and the sequencer overlaps them."""
        with self._sync_lock:
            self._sync_wal(f"commit of the blocks up to {head.size}")
            # Another write may have reopened the database since the block was staged (after a
            # failed write of its own): the block must still be there (the WAL keeps a prefix).
            raw = self._get(_HEAD)
            if raw is None or _U64.unpack(raw)[0] < head.size:
                raise StorageError(
                    f"the block up to {head.size} is gone: the store was reopened since it was "
                    "written"
                )
            durable = self._durable
            if durable is None or head.size > durable.size:
                self._durable = head

    def settle(self) -> None:
        """After a failed :meth:`stage` or :meth:`sync`: reopen the database if it refuses
        writes, make whatever it holds durable and take its head as the truth (a staged block
        may be there, or not). The sequencer then reloads its tree from that head."""
        with self._lock:
            self._writable()
            with self._sync_lock:
                self._recover()

    def stored_bytes(self) -> int:
        """Bytes of the store's files on disk (after a flush)."""
        self._db.flush(True)
        return sum(f.stat().st_size for f in Path(self.path).iterdir() if f.is_file())

    def backup(self, dest: str | Path) -> None:
        """A consistent copy of the whole store in ``dest`` (a new directory), taken while the
        store is in use: a RocksDB checkpoint (hard links where ``dest`` is on the same
        filesystem, copies otherwise), openable as a store of its own."""
        from rocksdict import Checkpoint

        if Path(dest).exists():
            raise StorageError(f"{dest} exists already; a backup goes to a new directory")
        checkpoint = Checkpoint(self._db)
        try:
            checkpoint.create_checkpoint(str(dest))
        except Exception as exc:
            if "no space left" in str(exc).lower():
                raise StorageFull(f"backup to {dest} failed: the disk is full") from exc
            raise StorageError(f"backup to {dest} failed: {exc}") from exc
        finally:
            del checkpoint

    def compact(self) -> None:
        self._db.compact_range(None, None)

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            del self._db
