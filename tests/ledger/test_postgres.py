"""What only the PostgreSQL backend has: migrations, append-only enforced by the database itself,
the commit's compare-and-swap under concurrency, the sequencer fence and the intake queue.
(The shared contract runs in test_store.py.)"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ledger.checkpoint import NoteSigner
from ledger.cluster import ClusterSequencer
from ledger.errors import Conflict, InvalidInput, StorageError
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.postgres import (
    APP_GRANTS,
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
from verifier.proof import verify_inclusion


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


# --- two roles: the owner migrates, the service runs as an application role -----------------

OWNER_ROLE, APP_ROLE = "cunzheng_owner", "cunzheng_app"


@dataclass(frozen=True)
class TwoRoles:
    owner_url: str
    app_url: str


def _two_roles(cluster: PgCluster) -> TwoRoles:
    """A database owned by OWNER_ROLE, migrated by it, APP_ROLE granted what it needs."""
    for role in (OWNER_ROLE, APP_ROLE):
        cluster.sql(
            f"DO $$ BEGIN CREATE ROLE {role} LOGIN;"
            " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
    name = cluster.new_owned_database(OWNER_ROLE)
    owner = PostgresStore(cluster.url(name, OWNER_ROLE), pool_size=1)
    try:
        assert owner.owns_schema
        owner.grant_app_role(APP_ROLE)
    finally:
        owner.close()
    return TwoRoles(cluster.url(name, OWNER_ROLE), cluster.url(name, APP_ROLE))


@pytest.fixture
def two_roles(pg_cluster: PgCluster) -> Iterator[TwoRoles]:
    roles = _two_roles(pg_cluster)
    yield roles
    pg_cluster.drop_database(roles.owner_url)


@pytest.fixture(scope="module")
def app_filled(pg_cluster: PgCluster) -> Iterator[TwoRoles]:
    """As the application role: a log of 300 entries, one token, one original."""
    roles = _two_roles(pg_cluster)
    store = PostgresStore(roles.app_url, pool_size=2)
    try:
        assert not store.owns_schema
        ledger = Ledger.open(store, NoteSigner.generate("test.cunzheng/log"))
        with Sequencer(ledger) as seq:
            seq.append([make_deposit(i) for i in range(300)])
        store.put_timestamp(300, b"token")
        store.put_original(b"\x01" + bytes(32), [b"chunk"])
    finally:
        store.close()
    yield roles
    pg_cluster.drop_database(roles.owner_url)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET leaf = 'x' WHERE idx = 0",
        "DELETE FROM entries WHERE idx = 299",
        "TRUNCATE entries",
        "DROP TRIGGER append_only ON entries",
        "ALTER TABLE entries DISABLE TRIGGER append_only",
        "ALTER TABLE entries DISABLE TRIGGER ALL",
        "DROP TABLE entries",
        "DROP TABLE entries CASCADE",
        "ALTER TABLE entries OWNER TO cunzheng_app",
        "UPDATE checkpoints SET note = 'forged'",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints, timestamps",
        "DROP TABLE checkpoints",
        "UPDATE timestamps SET token = 'other'",
        "DELETE FROM statements",
        "DELETE FROM codes",
        "DELETE FROM cases",
        "UPDATE metas SET meta = 'x'",
        "DELETE FROM original_chunks",
        "UPDATE log_config SET config = '{}'",
        "DELETE FROM tiles",
        "TRUNCATE tiles",
        "UPDATE tiles SET idx = idx + 1",
        "UPDATE tiles SET record = record WHERE level = 0 AND idx = 0",  # the trigger: complete
        "DROP TRIGGER tile_grows ON tiles",
        "ALTER TABLE tiles DISABLE TRIGGER tile_grows",
        "DROP TABLE tiles",
        "UPDATE head SET size = 0",  # the trigger: back
        "DELETE FROM head",
        "DROP TRIGGER head_forward ON head",
        "DROP FUNCTION cunzheng_refuse_change() CASCADE",
        "CREATE OR REPLACE FUNCTION cunzheng_refuse_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        "SET session_replication_role = replica",  # would skip every trigger
        "DELETE FROM schema_version",
    ],
)
def test_app_role_can_neither_rewrite_nor_unprotect_the_log(
    app_filled: TwoRoles, statement: str
) -> None:
    with (
        psycopg.connect(app_filled.app_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement.encode())
    store = PostgresStore(app_filled.app_url, pool_size=1, read_only=True)
    try:
        head = store.head()
        assert head is not None and head.size == 300 and len(store.entries(0, 400)) == 300
        assert store.timestamp(300) == b"token"
    finally:
        store.close()


def test_the_owner_could_drop_the_triggers(app_filled: TwoRoles) -> None:
    """Why the service must not run as the owner in production (README): the owner may drop or
    disable the triggers. Shown in a transaction that is rolled back."""
    with psycopg.connect(app_filled.owner_url) as conn:
        conn.execute("ALTER TABLE entries DISABLE TRIGGER append_only")
        conn.execute("DELETE FROM entries WHERE idx = 299")
        conn.rollback()


def test_every_table_and_sequence_has_its_grants(app_filled: TwoRoles) -> None:
    """A migration that adds a table must say what the application role may do with it."""
    with psycopg.connect(app_filled.owner_url) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind IN ('r', 'S', 'p')"
        ).fetchall()
    assert {r[0] for r in rows} == set(APP_GRANTS)


def test_app_role_must_own_nothing(app_filled: TwoRoles) -> None:
    owner = PostgresStore(app_filled.owner_url, pool_size=1)
    try:
        for role in ("postgres", OWNER_ROLE):
            with pytest.raises(InvalidInput, match="could drop the append-only triggers"):
                owner.grant_app_role(role)
        with pytest.raises(InvalidInput, match="no role"):
            owner.grant_app_role("nobody_here")
        owner.grant_app_role(APP_ROLE)  # again: idempotent
    finally:
        owner.close()


def test_app_role_cannot_migrate_and_says_how(pg_cluster: PgCluster) -> None:
    _two_roles(pg_cluster)  # the roles exist
    name = pg_cluster.new_owned_database(OWNER_ROLE)
    try:
        with pytest.raises(StorageError, match="cunzheng db migrate") as caught:
            PostgresStore(pg_cluster.url(name, APP_ROLE), pool_size=1)
        assert "permission denied" in str(caught.value)
    finally:
        pg_cluster.drop_database(pg_cluster.url(name))


def test_service_runs_fully_as_app_role(two_roles: TwoRoles, tmp_path: Path) -> None:
    """Election, a deposit, its proof, a time-stamp, depositors and keys (records CAS), intake
    through the queue from a second node, fail-over and a pg_dump backup: all as the app role."""
    from api.service import Service, ServiceConfig
    from tests.api.conftest import Lender, wait_stamped
    from tools.client import generate_key, load_private_key

    config = ServiceConfig(data_dir=tmp_path / "a", origin="test.cunzheng/log",
                           store_url=two_roles.app_url)  # fmt: skip
    a = Service.open(config)
    a.stamper.interval = a.stamper.min_interval = 0.05
    a.start()
    b: Service | None = None
    closed = False
    try:
        assert isinstance(a.store, PostgresStore) and not a.store.owns_schema
        assert isinstance(a.sequencer, ClusterSequencer) and a.sequencer.wait_until_leading(10)
        a.registry.register("lender-1", "某某消费金融有限公司")  # records: insert, then CAS
        private, public = generate_key("ed25519")
        a.registry.add_key("lender-1", public, key_id="k1", not_before=0)
        lender = Lender("lender-1", load_private_key(private), "k1")
        with pytest.raises(Conflict):
            a.store.record_put("depositor", "lender-1", b"x", b"not what is stored")
        evidence = tmp_path / "contract.pdf"
        evidence.write_bytes(b"%PDF-1.7 loan contract")
        (first,) = a.sequencer.append([lender.deposit(evidence, contract_no="HT1")])
        path = a.ledger.inclusion_proof(first.index, first.tree_size)
        verify_inclusion(index=first.index, size=first.tree_size, leaf_hash=first.leaf_hash,
                         path=path, root=a.ledger.root(first.tree_size))  # fmt: skip
        wait_stamped(a)
        assert a.store.timestamp_at_or_after(first.tree_size) is not None

        # a second node on the same database: not the sequencer, it queues for node a
        shutil.copytree(tmp_path / "a" / "keys", tmp_path / "b" / "keys")
        shutil.copytree(tmp_path / "a" / "tsa", tmp_path / "b" / "tsa")
        b = Service.open(ServiceConfig(data_dir=tmp_path / "b", origin="test.cunzheng/log",
                                       store_url=two_roles.app_url)).start()  # fmt: skip
        assert isinstance(b.sequencer, ClusterSequencer) and not b.sequencer.leading
        other = tmp_path / "other.pdf"
        other.write_bytes(b"%PDF-1.7 repayment schedule")
        (queued,) = b.sequencer.append([lender.deposit(other, contract_no="HT1")])
        assert queued.index == first.index + 1 and not b.sequencer.leading

        backup = a.backup(tmp_path / "backup")  # pg_dump as the app role
        assert backup["tree_size_at_least"] >= queued.index + 1

        closed = True
        a.close()  # node a goes: b takes over and sequences
        assert b.sequencer.wait_until_leading(10)
        third = tmp_path / "third.pdf"
        third.write_bytes(b"%PDF-1.7 notice")
        (after,) = b.sequencer.append([lender.deposit(third, contract_no="HT1")])
        assert after.index == queued.index + 1
    finally:
        if b is not None:
            b.close()
        if not closed:
            a.close()


def test_db_migrate_command_migrates_and_grants(pg_cluster: PgCluster) -> None:
    from click.testing import CliRunner

    from tools.cli import main

    _two_roles(pg_cluster)  # the roles exist
    name = pg_cluster.new_owned_database(OWNER_ROLE)
    try:
        args = ["db", "migrate", "--store", pg_cluster.url(name, OWNER_ROLE)]
        done = CliRunner().invoke(main, [*args, "--app-role", APP_ROLE])
        assert done.exit_code == 0, done.output
        assert f"granted {APP_ROLE}" in done.output
        app = PostgresStore(pg_cluster.url(name, APP_ROLE), pool_size=1)
        try:
            assert app.schema_version() == len(migrations()) and not app.owns_schema
        finally:
            app.close()
        refused = CliRunner().invoke(main, [*args, "--app-role", OWNER_ROLE])
        assert refused.exit_code == 1 and "owns the ledger's tables" in refused.output
    finally:
        pg_cluster.drop_database(pg_cluster.url(name))
