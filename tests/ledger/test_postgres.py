"""What only the PostgreSQL backend has: migrations, append-only enforced by the database itself,
the commit's compare-and-swap under concurrency, the sequencer fence and the intake queue.
(The shared contract runs in test_store.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from ledger.checkpoint import NoteSigner
from ledger.errors import Conflict, InvalidInput, StorageError
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.postgres import (
    LOCK_NAMESPACE,
    SEQUENCER_LOCK,
    PostgresStore,
    migrations,
    redact,
)
from ledger.store import Block, open_store
from ledger.tiles import TILE_WIDTH, TileID, tile_width
from tests.conftest import make_deposit
from tests.pg import PgCluster


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url, pool_size=2)
    yield store
    store.close()


@pytest.fixture
def filled(pg: PostgresStore, signer: NoteSigner) -> PostgresStore:
    """A log of 300 entries (one complete tile, one edge tile), one token, one original."""
    ledger = Ledger.open(pg, signer)
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(300)])
    pg.put_timestamp(300, b"token")
    pg.put_original(b"\x01" + bytes(32), [b"chunk"])
    return pg


def test_open_store_url_opens_postgres(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        assert isinstance(store, PostgresStore) and store.head() is None
    finally:
        store.close()


def test_migrations_are_numbered_and_recorded(pg: PostgresStore) -> None:
    shipped = migrations()
    assert [v for v, _, _ in shipped] == list(range(1, len(shipped) + 1))
    assert pg.schema_version() == len(shipped)
    PostgresStore(pg.url, pool_size=1).close()  # applying again is a no-op
    assert pg.schema_version() == len(shipped)


def test_concurrent_starters_migrate_once(pg_cluster: PgCluster) -> None:
    pg_cluster.sql("CREATE DATABASE race")
    url = pg_cluster.url("race")
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore(url, pool_size=1).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [v for v, _, _ in migrations()]
    finally:
        pg_cluster.drop_database(url)


def test_newer_schema_is_refused(pg: PostgresStore) -> None:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (99, '0099_future.sql')")
    with pytest.raises(StorageError, match="newer than this cunzheng knows"):
        PostgresStore(pg.url, pool_size=1)


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("UPDATE entries SET leaf = 'x' WHERE idx = 0", "entries"),
        ("DELETE FROM entries WHERE idx = 299", "entries"),
        ("TRUNCATE entries", "entries"),
        ("UPDATE statements SET idx = 5 WHERE idx = 0", "statements"),
        ("DELETE FROM codes", "codes"),
        ("DELETE FROM cases", "cases"),
        ("UPDATE metas SET meta = 'x'", "metas"),
        ("DELETE FROM checkpoints WHERE size = 300", "checkpoints"),
        ("UPDATE checkpoints SET note = 'forged'", "checkpoints"),
        ("UPDATE timestamps SET token = 'other'", "timestamps"),
        ("DELETE FROM original_chunks", "original_chunks"),
        ("UPDATE log_config SET config = '{}'", "log_config"),
        ("DELETE FROM tiles WHERE level = 0 AND idx = 1", "tiles"),
        ("UPDATE head SET size = 0", "head"),
        ("DELETE FROM head", "head"),
    ],
)
def test_database_refuses_rewrites(filled: PostgresStore, statement: str, table: str) -> None:
    with (
        psycopg.connect(filled.url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match=table),
    ):
        conn.execute(statement.encode())


def test_complete_tiles_never_change_and_edge_tiles_only_grow(filled: PostgresStore) -> None:
    complete, edge = filled.read_tiles([TileID(0, 0), TileID(0, 1)])
    assert complete is not None and tile_width(complete) == TILE_WIDTH
    assert edge is not None and tile_width(edge) == 300 - TILE_WIDTH
    with psycopg.connect(filled.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="complete tile"):
            conn.execute("UPDATE tiles SET record = record WHERE level = 0 AND idx = 0")
        shrunk = edge[:32]  # a one-hash tile: narrower than the stored one
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may only grow"):
            conn.execute("UPDATE tiles SET record = %s WHERE level = 0 AND idx = 1", (shrunk,))
        changed = bytes(32) + edge[32:]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may only grow"):
            conn.execute("UPDATE tiles SET record = %s WHERE level = 0 AND idx = 1", (changed,))
    assert filled.read_tiles([TileID(0, 1)]) == [edge]


def test_concurrent_commits_at_one_head_let_exactly_one_win(
    pg: PostgresStore, signer: NoteSigner
) -> None:
    Ledger.open(pg, signer)
    other = PostgresStore(pg.url, pool_size=2)
    results: list[str] = []

    def commit(store: PostgresStore, n: int) -> None:
        block = Block(0, [b"leaf-%d" % n], [bytes([n]) * 32], [b"\x01" + bytes([n]) * 48], {},
                      b"note-%d" % n)  # fmt: skip
        try:
            store.commit(block)
            results.append("won")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=commit, args=(s, n)) for n, s in enumerate([pg, other])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sorted(results) == ["conflict", "won"]
    head = pg.head()
    assert head is not None and head.size == 1 and pg.entries(0, 5) == [pg.entry(0)]


def test_failed_commit_leaves_nothing(pg: PostgresStore, signer: NoteSigner) -> None:
    ledger = Ledger.open(pg, signer)
    with Sequencer(ledger) as seq:
        (receipt,) = seq.append([make_deposit(1)])
    key = pg.indexes_by_statement  # a block reusing an indexed statement key must roll back
    with psycopg.connect(pg.url) as conn:
        (statement_key,) = conn.execute("SELECT statement_key FROM statements").fetchone() or ()
    bad = Block(1, [b"leaf"], [bytes(32)], [bytes(statement_key)], {}, b"note")
    with pytest.raises(StorageError, match="commit of block at 1"):
        pg.commit(bad)
    head = pg.head()
    assert head is not None and head.size == 1 and pg.entry(1) is None
    assert key([bytes(statement_key)]) == [receipt.index]


def test_fence_refuses_a_deposed_sequencer(pg: PostgresStore, signer: NoteSigner) -> None:
    ledger = Ledger.open(pg, signer)
    holder = pg.connect()
    holder.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, SEQUENCER_LOCK))
    row = holder.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    pg.fence = int(row[0])
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(1)])  # the lock is held: the commit lands
        holder.close()  # the lock holder's session ends: the lock is released
        with pytest.raises(Conflict, match="no longer holds the sequencer lock"):
            seq.append([make_deposit(2)])
    head = pg.head()
    assert head is not None and head.size == 1


def test_intake_queue_dedupes_by_statement_key(pg: PostgresStore) -> None:
    rows = [(b"\x01" + bytes([i]) * 48, b'{"d":%d}' % i, 1000 + i) for i in range(3)]
    assert pg.enqueue(rows, "node-a") == [r[0] for r in rows]
    assert pg.enqueue(rows[1:], "node-b") == []  # a retry is queued once
    queued = pg.queued(10)
    assert [(k, d, r) for _, k, d, r in queued] == rows and pg.queue_length() == 3
    pg.dequeue([queued[0][0]])
    assert [k for _, k, _, _ in pg.queued(10)] == [rows[1][0], rows[2][0]]


def test_serials_are_shared_and_increasing(pg: PostgresStore) -> None:
    other = PostgresStore(pg.url, pool_size=1)
    try:
        got = [pg.next_serial(), other.next_serial(), pg.next_serial()]
    finally:
        other.close()
    assert got == sorted(set(got)) and len(got) == 3


def test_read_only_store_refuses_writes(pg: PostgresStore) -> None:
    ro = PostgresStore(pg.url, read_only=True, pool_size=1)
    try:
        with pytest.raises(StorageError, match="read-only"):
            ro.record_put("depositor", "x", b"v", None)
        with pytest.raises(StorageError, match="read-only"):
            ro.commit(Block(0, [], [], [], {}, b"note", config=b"{}"))
    finally:
        ro.close()


def test_read_only_store_needs_no_ddl(pg_cluster: PgCluster) -> None:
    """A read-only store (an auditor on a replica) only checks the schema version."""
    pg_cluster.sql("CREATE DATABASE bare")
    url = pg_cluster.url("bare")
    try:
        with pytest.raises(StorageError, match="lacks migrations"):
            PostgresStore(url, read_only=True, pool_size=1)
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT to_regclass('schema_version')").fetchone()
        assert found == (None,)  # nothing was created
    finally:
        pg_cluster.drop_database(url)


def test_connection_errors_name_no_password(pg_cluster: PgCluster) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{pg_cluster.port}/no_such_db"
    with pytest.raises(StorageError) as caught:
        PostgresStore(url, connect_timeout=1)
    assert "hunter2" not in str(caught.value) and "no_such_db" in str(caught.value)
    assert "hunter2" not in redact(url)
    with pytest.raises(InvalidInput):
        PostgresStore("postgresql://[broken")
