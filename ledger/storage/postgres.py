"""The multi-machine backend: PostgreSQL through psycopg 3 and a psycopg-pool connection pool.

Same contract as :class:`~ledger.storage.rocksdb.RocksStore` (the conformance tests in
``tests/ledger/test_store.py`` run on both): :meth:`PostgresStore.commit` is one transaction per
block — a compare-and-swap on the ``head`` row first, then ``COPY`` of entries, indexes and
metas, one upsert of the block's tile records and the checkpoint — durable when it returns
(``synchronous_commit`` is forced ``on`` for our sessions if the server has it off; a server with
``fsync = off`` is reported in a warning, since no client can make it durable).

The schema lives in versioned SQL files (``ledger/storage/migrations/NNNN_name.sql``), applied in
order at start-up inside one transaction under a transaction-level advisory lock, each recorded
in ``schema_version``: concurrent starters wait for each other and apply nothing twice. The
database itself refuses UPDATE, DELETE and TRUNCATE on the log's tables (triggers in
``0001_init.sql``): complete tiles never change, edge tiles only grow, the head only moves on.

Tables (see the migrations)::

    log_config(config)                  one row, written with the genesis block
    head(size)                          one row: the compare-and-swap point of every commit
    entries(idx → leaf)                 metas(idx → meta)
    codes(code(10), idx)                statements(statement_key → idx)   (by digest: a key range)
    cases(case_key(16), idx)            by contract number (0003_cases.sql)
    tiles(level, idx → record)          checkpoints(size → note)    timestamps(size → token)
    originals(digest_key → chunks)      original_chunks(digest_key, n → chunk)
    records(kind, key → value)          mutable, compare-and-swap
    intake(statement_key → deposit)     the multi-node intake queue (ledger/cluster.py)

A password in the URL is never logged nor put in an error message (:func:`redact`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import Conflict, CunzhengError, InvalidInput, StorageError
from ..store import Block, Head
from ..tiles import TileID

__all__ = [
    "APP_GRANTS",
    "LOCK_NAMESPACE",
    "MIGRATE_LOCK",
    "SEQUENCER_LOCK",
    "PostgresStore",
    "migrations",
    "redact",
]

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x637A_6C67  # "czlg": the first key of every advisory lock we take
MIGRATE_LOCK = 1
"""``pg_advisory_xact_lock(LOCK_NAMESPACE, MIGRATE_LOCK)`` serialises schema migrations."""
SEQUENCER_LOCK = 2
"""``pg_advisory_lock(LOCK_NAMESPACE, SEQUENCER_LOCK)``: held by the one sequencer (cluster.py)."""
HEAD_CHANNEL = "cunzheng_head"
"""NOTIFY channel: the payload is the new tree size, sent when a block commits."""
INTAKE_CHANNEL = "cunzheng_intake"
"""NOTIFY channel: deposits were queued for the sequencer."""

_PAGE = 1000

APP_GRANTS: dict[str, str] = {
    "schema_version": "SELECT",
    "log_config": "SELECT, INSERT",
    "head": "SELECT, INSERT, UPDATE (size)",  # the commit's compare-and-swap; forward only
    "entries": "SELECT, INSERT",
    "metas": "SELECT, INSERT",
    "codes": "SELECT, INSERT",
    "statements": "SELECT, INSERT",
    "cases": "SELECT, INSERT",
    "tiles": "SELECT, INSERT, UPDATE (record)",  # an edge tile grows (the trigger checks how)
    "checkpoints": "SELECT, INSERT",
    "timestamps": "SELECT, INSERT",
    "originals": "SELECT, INSERT",
    "original_chunks": "SELECT, INSERT",
    "records": "SELECT, INSERT, UPDATE (value)",  # compare-and-swap of mutable records
    "intake": "SELECT, INSERT, DELETE",  # the queue is drained
    "tsa_serials": "SELECT, USAGE",  # sequences: nextval (SELECT lets pg_dump read them)
    "intake_id_seq": "SELECT, USAGE",
}
"""Everything the application role may do, by table or sequence (every statement of this
module, :mod:`ledger.cluster` and :mod:`ledger.storage.pg_backup`'s ``pg_dump``). Advisory
locks, LISTEN/NOTIFY, ``pg_locks`` and ``pg_stat_activity`` need no grant. A migration that
adds a table adds it here (a test checks that every table is listed)."""

_MIGRATE_HINT = (
    "hint: migrate as the tables' owner, e.g. cunzheng db migrate --store OWNER_URL "
    "--app-role ROLE, then serve as the application role"
)


def redact(url: str) -> str:
    """The connection string without its password, for messages and logs.

    >>> redact("postgresql://app:s3cret@db.example/ledger")
    'user=app dbname=ledger host=db.example'
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://…"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items() if v is not None)


def migrations() -> list[tuple[int, str, str]]:
    """The shipped migrations as ``(version, name, sql)``, by version."""
    found = []
    for item in (resources.files("ledger.storage") / "migrations").iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError("migration files must be numbered 0001, 0002, … without gaps",
                           got=versions)  # fmt: skip
    return found


class PostgresStore:
    """A :class:`~ledger.store.Store` in a PostgreSQL database.

    ``url`` is a libpq connection string or ``postgresql://`` URL. ``pool_size`` connections at
    most are opened (reads run concurrently on them; a commit takes one for its transaction).
    ``migrate=False`` refuses to start on an old schema instead of upgrading it.
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        pool_size: int = 8,
        migrate: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        if pool_size < 1:
            raise InvalidInput(f"pool_size must be at least 1, got {pool_size}", got=pool_size)
        try:
            conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise InvalidInput(f"not a PostgreSQL connection string: {exc}") from exc
        self.url = url
        self.read_only = read_only
        self.fence: int | None = None
        """When set, the backend pid that must hold the sequencer lock for a commit to land
        (:mod:`ledger.cluster`): a deposed sequencer cannot append."""
        self.owns_schema = False
        """Whether this store's role owns the tables (single-URL mode): it could drop the
        append-only triggers, so they guard against the application's mistakes only."""
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
            name="cunzheng",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StorageError(
                f"cannot connect to PostgreSQL at {redact(url)} within {connect_timeout:g} s "
                "(hint: is the server running, and may this user connect to that database?)",
                url=redact(url),
            ) from exc
        try:
            self._prepare_schema(migrate)
        except BaseException:
            self._pool.close()
            raise

    # --- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        setting = conn.execute("SHOW synchronous_commit").fetchone()
        if setting is not None and setting[0] in ("off", "local"):
            conn.execute("SET synchronous_commit = on")

    @contextmanager
    def _conn(self, what: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection (autocommit); psycopg errors become :class:`StorageError`."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except CunzhengError:
            raise
        except PoolTimeout as exc:
            raise StorageError(f"{what}: no database connection available: {exc}") from exc
        except psycopg.Error as exc:
            raise StorageError(f"{what} failed: {_message(exc)}") from exc

    def _one(self, what: str, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._conn(what) as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, what: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn(what) as conn:
            return conn.execute(query, params).fetchall()

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        """A new dedicated connection outside the pool (autocommit), e.g. for LISTEN or for
        holding a session-level advisory lock. The caller closes it."""
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot connect to PostgreSQL at {redact(self.url)}: {_message(exc)}"
            ) from exc
        self._configure(conn)
        return conn

    def _prepare_schema(self, migrate: bool) -> None:
        """Check the schema version; apply missing migrations when allowed. A current schema
        is only read (no lock, no DDL): an application role without DDL rights starts."""
        wanted = migrations()
        changing = migrate and not self.read_only
        with self._conn("preparing the schema") as conn:
            missing = _missing(conn, wanted)
            if missing and not changing:
                raise StorageError(
                    f"the database schema lacks migrations {[n for _, n, _ in missing]} "
                    "(hint: is this a cunzheng database? migrate it as its owner: cunzheng db "
                    "migrate --store OWNER_URL)"
                )
            if missing:
                try:
                    with conn.transaction():
                        self._migrate(conn, wanted)
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise StorageError(
                        f"cannot migrate the schema as {conn.info.user}: {_message(exc)} "
                        f"({_MIGRATE_HINT})"
                    ) from exc
            fsync = conn.execute("SHOW fsync").fetchone()
            owner = conn.execute(
                "SELECT pg_has_role(current_user, tableowner, 'USAGE')"
                " FROM pg_tables WHERE tablename = 'entries' AND schemaname = current_schema()"
            ).fetchone()
        if fsync is not None and fsync[0] != "on":
            log.warning("PostgreSQL runs with fsync = %s: commits are not durable", fsync[0])
        self.owns_schema = bool(owner and owner[0])
        if self.owns_schema and not self.read_only:
            log.info(
                "connected to %s as the tables' owner: the append-only triggers bind this "
                "role, but it could drop them; in production serve as an application role "
                "(README: Several nodes on one PostgreSQL database)",
                redact(self.url),
            )

    @staticmethod
    def _migrate(conn: psycopg.Connection[Any], wanted: list[tuple[int, str, str]]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, text in _missing(conn, wanted):  # again, under the lock
            log.info("applying schema migration %s", name)
            conn.execute(text.encode())
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, name)
            )

    def grant_app_role(self, role: str) -> None:
        """Grant ``role`` — the role the service connects as — exactly :data:`APP_GRANTS` on
        our tables and sequences, revoking anything else it had there. Run by the tables'
        owner after migrating (``cunzheng db migrate --app-role``), again after every upgrade.

        Refuses a role that could undo the append-only guarantees: a superuser, or the owner
        of the tables or a member of it."""
        self._writable()
        with self._conn(f"granting to {role}") as conn, conn.transaction():
            row = conn.execute(
                "SELECT r.rolsuper, pg_has_role(r.oid, t.tableowner, 'USAGE'),"
                " pg_has_role(r.oid, t.tableowner, 'MEMBER')"
                " FROM pg_roles r, pg_tables t WHERE r.rolname = %s"
                " AND t.tablename = 'entries' AND t.schemaname = current_schema()",
                (role,),
            ).fetchone()
            if row is None:
                raise InvalidInput(
                    f"no role {role!r} in this cluster, or no ledger schema here "
                    f"(hint: CREATE ROLE {role} LOGIN; as a superuser, then migrate)",
                    role=role,
                )
            if row[0] or row[1] or row[2]:
                raise InvalidInput(
                    f"role {role!r} is a superuser or owns the ledger's tables (or is a member "
                    "of their owner): it could drop the append-only triggers. Use a role that "
                    "owns nothing",
                    role=role,
                )
            ident = sql.Identifier(role)
            for name, privileges in APP_GRANTS.items():
                kind = sql.SQL("SEQUENCE" if name.endswith(("_seq", "_serials")) else "TABLE")
                target = sql.Identifier(name)
                conn.execute(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(kind, target, ident))
                conn.execute(
                    sql.SQL("GRANT {} ON {} {} TO {}").format(
                        sql.SQL(privileges), kind, target, ident
                    )
                )
        log.info("granted the application role %s what the service needs", role)

    def schema_version(self) -> int:
        """The newest migration applied to the database."""
        row = self._one("reading the schema version", "SELECT max(version) FROM schema_version")
        return int(row[0]) if row is not None and row[0] is not None else 0

    # --- reads -------------------------------------------------------------------------------

    def config(self) -> bytes | None:
        row = self._one("reading the log config", "SELECT config FROM log_config")
        return None if row is None else bytes(row[0])

    def head(self) -> Head | None:
        row = self._one(
            "reading the head",
            "SELECT h.size, c.note FROM head h LEFT JOIN checkpoints c ON c.size = h.size",
        )
        if row is None:
            return None
        if row[1] is None:
            raise StorageError(f"head names checkpoint {row[0]}, which is missing")
        return Head(int(row[0]), bytes(row[1]))

    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
        if not ids:
            return []
        rows = self._all(
            "reading tiles",
            "SELECT t.level, t.idx, t.record FROM unnest(%b::smallint[], %b::bigint[])"
            " AS q(level, idx) JOIN tiles t USING (level, idx)",
            ([t.level for t in ids], [t.index for t in ids]),
        )
        found = {TileID(int(level), int(index)): bytes(record) for level, index, record in rows}
        return [found.get(t) for t in ids]

    def entry(self, index: int) -> bytes | None:
        if index < 0:
            return None
        row = self._one("reading an entry", "SELECT leaf FROM entries WHERE idx = %s", (index,))
        return None if row is None else bytes(row[0])

    def entries(self, start: int, end: int) -> list[bytes]:
        start, end = max(start, 0), max(end, 0)
        if start >= end:
            return []
        rows = self._all(
            "reading entries",
            "SELECT leaf FROM entries WHERE idx >= %s AND idx < %s ORDER BY idx",
            (start, end),
        )
        return [bytes(r[0]) for r in rows]

    def meta(self, index: int) -> bytes | None:
        if index < 0:
            return None
        row = self._one("reading meta", "SELECT meta FROM metas WHERE idx = %s", (index,))
        return None if row is None else bytes(row[0])

    def indexes_by_code(self, code: bytes) -> list[int]:
        rows = self._all(
            "looking up a deposit code",
            "SELECT idx FROM codes WHERE code = %s ORDER BY idx",
            (code,),
        )
        return [int(r[0]) for r in rows]

    def indexes_by_case(self, case_key: bytes) -> list[int]:
        rows = self._all(
            "looking up a case",
            "SELECT idx FROM cases WHERE case_key = %s ORDER BY idx",
            (case_key,),
        )
        return [int(r[0]) for r in rows]

    def indexes_by_digest(self, digest_key: bytes) -> list[int]:
        # statement keys are digest_key ‖ 16 bytes; one algorithm byte fixes the digest length
        rows = self._all(
            "looking up a digest",
            "SELECT idx FROM statements WHERE statement_key BETWEEN %s AND %s"
            " AND length(statement_key) = %s ORDER BY idx",
            (digest_key + bytes(16), digest_key + b"\xff" * 16, len(digest_key) + 16),
        )
        return [int(r[0]) for r in rows]

    def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
        if not keys:
            return []
        rows = self._all(
            "looking up statements",
            "SELECT statement_key, idx FROM statements WHERE statement_key = ANY(%b)",
            (list(keys),),
        )
        found = {bytes(k): int(i) for k, i in rows}
        return [found.get(k) for k in keys]

    def checkpoint(self, size: int) -> bytes | None:
        if size < 0:
            return None
        row = self._one(
            "reading a checkpoint", "SELECT note FROM checkpoints WHERE size = %s", (size,)
        )
        return None if row is None else bytes(row[0])

    def checkpoint_at_or_after(self, size: int) -> Head | None:
        row = self._one(
            "reading a checkpoint",
            "SELECT size, note FROM checkpoints WHERE size >= %s ORDER BY size LIMIT 1",
            (max(size, 0),),
        )
        return None if row is None else Head(int(row[0]), bytes(row[1]))

    def checkpoints(self, start: int = 0) -> Iterator[Head]:
        """Read in pages, so no connection is held while the caller iterates."""
        start = max(start, 0)
        while True:
            rows = self._all(
                "reading checkpoints",
                "SELECT size, note FROM checkpoints WHERE size >= %s ORDER BY size LIMIT %s",
                (start, _PAGE),
            )
            for size, note in rows:
                yield Head(int(size), bytes(note))
            if len(rows) < _PAGE:
                return
            start = int(rows[-1][0]) + 1

    # --- time-stamps, originals, records -----------------------------------------------------

    def put_timestamp(self, size: int, token: bytes) -> None:
        self._writable()
        try:
            with self._conn(f"storing the token of checkpoint {size}") as conn:
                cur = conn.execute(
                    "INSERT INTO timestamps (size, token) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (size, token),
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise StorageError(f"no checkpoint at size {size} to time-stamp") from exc
            raise
        if cur.rowcount == 0:
            raise Conflict(f"checkpoint {size} already has a token")

    def timestamp(self, size: int) -> bytes | None:
        if size < 0:
            return None
        row = self._one("reading a token", "SELECT token FROM timestamps WHERE size = %s", (size,))
        return None if row is None else bytes(row[0])

    def timestamp_at_or_after(self, size: int) -> tuple[int, bytes] | None:
        row = self._one(
            "reading a token",
            "SELECT size, token FROM timestamps WHERE size >= %s ORDER BY size LIMIT 1",
            (max(size, 0),),
        )
        return None if row is None else (int(row[0]), bytes(row[1]))

    def latest_timestamped(self) -> int | None:
        row = self._one("reading the latest token", "SELECT max(size) FROM timestamps")
        return None if row is None or row[0] is None else int(row[0])

    def put_original(self, digest_key: bytes, chunks: Sequence[bytes]) -> None:
        self._writable()
        with self._conn("storing an original") as conn, conn.transaction():
            new = conn.execute(
                "INSERT INTO originals (digest_key, chunks) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (digest_key, len(chunks)),
            ).rowcount
            if not new:
                return  # content-addressed: already held
            with conn.cursor().copy(
                "COPY original_chunks (digest_key, n, chunk) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["bytea", "int4", "bytea"])
                for n, chunk in enumerate(chunks):
                    copy.write_row((digest_key, n, chunk))

    def original(self, digest_key: bytes) -> Iterator[bytes] | None:
        row = self._one(
            "reading an original",
            "SELECT chunks FROM originals WHERE digest_key = %s",
            (digest_key,),
        )
        if row is None:
            return None
        count = int(row[0])

        def chunks() -> Iterator[bytes]:
            for n in range(count):
                got = self._one(
                    "reading an original",
                    "SELECT chunk FROM original_chunks WHERE digest_key = %s AND n = %s",
                    (digest_key, n),
                )
                if got is None:
                    raise StorageError(f"chunk {n} of an original is missing")
                yield bytes(got[0])

        return chunks()

    def record_get(self, kind: str, key: str) -> bytes | None:
        row = self._one(
            f"reading {kind} {key}",
            "SELECT value FROM records WHERE kind = %s AND key = %s",
            (kind, key),
        )
        return None if row is None else bytes(row[0])

    def record_put(self, kind: str, key: str, value: bytes, expected: bytes | None) -> None:
        self._writable()
        with self._conn(f"writing {kind} {key}") as conn:
            if expected is None:
                cur = conn.execute(
                    "INSERT INTO records (kind, key, value) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (kind, key, value),
                )
            else:
                cur = conn.execute(
                    "UPDATE records SET value = %s WHERE kind = %s AND key = %s AND value = %s",
                    (value, kind, key, expected),
                )
        if cur.rowcount != 1:
            raise Conflict(f"{kind} {key} changed meanwhile; read it again")

    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]:
        rows = self._all(
            f"listing {kind}",
            "SELECT key, value FROM records WHERE kind = %s AND key >= %s ORDER BY key",
            (kind, start),
        )
        return [(str(k), bytes(v)) for k, v in rows]

    def next_serial(self) -> int:
        """A new serial number for the built-in TSA, shared by every node (a sequence: unique,
        never reused, survives crashes)."""
        row = self._one("reserving a token serial", "SELECT nextval('tsa_serials')")
        assert row is not None
        return int(row[0])

    # --- the commit --------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StorageError("store is open read-only")

    def commit(self, block: Block) -> None:
        self._writable()
        base, new_size = block.old_size, block.new_size
        with self._conn(f"commit of block at {base}") as conn, conn.transaction():
            # Compare-and-swap first: the head row stays locked until this transaction ends, so
            # a second writer waits here and then finds the head moved.
            if block.config is not None:
                moved = (
                    base == 0
                    and conn.execute(
                        "INSERT INTO head (size) VALUES (%s) ON CONFLICT DO NOTHING", (new_size,)
                    ).rowcount
                    == 1
                )
            else:
                moved = (
                    conn.execute(
                        "UPDATE head SET size = %s WHERE size = %s", (new_size, base)
                    ).rowcount
                    == 1
                )
            if not moved:
                row = conn.execute("SELECT size FROM head").fetchone()
                if row is None:
                    raise Conflict("a new store starts with a genesis block carrying config")
                raise Conflict(
                    f"block starts at {base}, head is at {row[0]}"
                    + (" (a second genesis)" if block.config is not None else ""),
                    got=base,
                    want=int(row[0]),
                )
            if self.fence is not None:
                self._check_fence(conn, self.fence)
            cur = conn.cursor()
            if block.leaves:
                with cur.copy("COPY entries (idx, leaf) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "bytea"])
                    for offset, leaf in enumerate(block.leaves):
                        copy.write_row((base + offset, leaf))
                with cur.copy("COPY codes (code, idx) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["bytea", "int8"])
                    for offset, h in enumerate(block.leaf_hashes):
                        copy.write_row((h[:10], base + offset))
                with cur.copy(
                    "COPY statements (statement_key, idx) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["bytea", "int8"])
                    for offset, key in enumerate(block.statement_keys):
                        copy.write_row((key, base + offset))
            if block.metas:
                with cur.copy("COPY metas (idx, meta) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "bytea"])
                    for index, meta in block.metas.items():
                        copy.write_row((index, meta))
            if block.cases:
                with cur.copy("COPY cases (case_key, idx) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["bytea", "int8"])
                    for index, case in block.cases.items():
                        copy.write_row((case, index))
            if block.tiles:
                tiles = list(block.tiles.items())
                cur.execute(
                    "INSERT INTO tiles (level, idx, record)"
                    " SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])"
                    " ON CONFLICT (level, idx) DO UPDATE SET record = EXCLUDED.record"
                    " WHERE tiles.record <> EXCLUDED.record",
                    (
                        [t.level for t, _ in tiles],
                        [t.index for t, _ in tiles],
                        [r for _, r in tiles],
                    ),
                )
            if block.config is not None:
                cur.execute("INSERT INTO log_config (config) VALUES (%s)", (block.config,))
            cur.execute(
                "INSERT INTO checkpoints (size, note) VALUES (%s, %s)", (new_size, block.checkpoint)
            )
            cur.execute("SELECT pg_notify(%s, %s)", (HEAD_CHANNEL, str(new_size)))

    @staticmethod
    def _check_fence(conn: psycopg.Connection[Any], pid: int) -> None:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 2 AND pid = %s)",
            (LOCK_NAMESPACE, SEQUENCER_LOCK, pid),
        ).fetchone()
        if row is None or not row[0]:
            raise Conflict("this node no longer holds the sequencer lock; another node sequences")

    # --- the intake queue (ledger/cluster.py) ------------------------------------------------

    def enqueue(self, rows: Sequence[tuple[bytes, bytes, int]], node: str) -> list[bytes]:
        """Queue ``(statement_key, deposit, received_at_ms)`` rows durably for the sequencer;
        returns the keys that were not queued already (a retry is queued once)."""
        self._writable()
        if not rows:
            return []
        with self._conn("queueing deposits") as conn, conn.transaction():
            got = conn.execute(
                "INSERT INTO intake (statement_key, deposit, received_at, node)"
                " SELECT k, d, r, %s FROM unnest(%b::bytea[], %b::bytea[], %b::bigint[])"
                " AS q(k, d, r) ON CONFLICT (statement_key) DO NOTHING RETURNING statement_key",
                (node, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
            ).fetchall()
            conn.execute("SELECT pg_notify(%s, %s)", (INTAKE_CHANNEL, node))
        return [bytes(r[0]) for r in got]

    def queued(self, limit: int) -> list[tuple[int, bytes, bytes, int]]:
        """The oldest queued deposits: ``(id, statement_key, deposit, received_at_ms)``."""
        rows = self._all(
            "reading the intake queue",
            "SELECT id, statement_key, deposit, received_at FROM intake ORDER BY id LIMIT %s",
            (limit,),
        )
        return [(int(i), bytes(k), bytes(d), int(r)) for i, k, d, r in rows]

    def dequeue(self, ids: Sequence[int]) -> None:
        """Drop queued deposits that are in the log now."""
        if ids:
            with self._conn("clearing the intake queue") as conn:
                conn.execute("DELETE FROM intake WHERE id = ANY(%b)", (list(ids),))

    def queue_length(self) -> int:
        row = self._one("counting the intake queue", "SELECT count(*) FROM intake")
        return 0 if row is None else int(row[0])

    def backup(self, dest: str | Path) -> None:
        """A consistent copy of the whole database in ``dest`` (a new file), taken while the
        store is in use: a ``pg_dump`` custom-format archive (:mod:`ledger.storage.pg_backup`),
        restored with :func:`~ledger.storage.pg_backup.restore` into an empty database."""
        from .pg_backup import dump

        dump(self.url, dest)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()


def _missing(
    conn: psycopg.Connection[Any], wanted: list[tuple[int, str, str]]
) -> list[tuple[int, str, str]]:
    """The migrations of ``wanted`` not applied to the database; refuses a newer schema."""
    exists = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    applied: set[int] = set()
    if exists is not None and exists[0] is not None:
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
    newest = max((v for v, _, _ in wanted), default=0)
    if applied and max(applied) > newest:
        raise StorageError(
            f"the database schema is at version {max(applied)}, newer than this "
            f"cunzheng knows ({newest}); upgrade cunzheng",
            got=max(applied),
            want=newest,
        )
    return [(v, n, text) for v, n, text in wanted if v not in applied]


def _message(exc: psycopg.Error) -> str:
    """The server's message (never the connection string) of a psycopg error."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or exc).strip()
