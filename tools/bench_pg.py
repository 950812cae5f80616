"""``cunzheng bench ledger --store postgresql://…``: durable appends on the PostgreSQL backend
beside a raw PostgreSQL ceiling, measured in the same run on the same server.

1. **append** — realistic deposits through the real path: :class:`~ledger.sequencer.Sequencer`
   group commit over :class:`~ledger.storage.postgres.PostgresStore`, one transaction per block
   (durable when it returns: ``synchronous_commit = on``).
2. **ceiling** — the very blocks that commit handed the store (entries, code and statement
   index rows, metas, tile records, checkpoint) replayed into a second database with the same
   schema, one transaction per block: ``COPY`` for the rows, one multi-row upsert for the tiles,
   the checkpoint insert and the head update. What PostgreSQL alone costs for those bytes, with
   no tree, index, signature or entry-building work.

Both databases are created on the server the URL names (the user needs ``CREATEDB``) and dropped
afterwards, whatever happens; the database in the URL is only used to connect. Durability is the
server's: a server with ``fsync = off`` makes both figures meaningless, and the report says so.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.postgres import PostgresStore, redact
from ledger.store import Block

from .bench import (
    ORIGIN,
    SEED,
    BenchConfig,
    Log,
    Report,
    Target,
    _chunks,
    _rate,
    _Timer,
    realistic_deposit,
)

__all__ = ["PG_SECTIONS", "run_pg_ledger_bench"]

PG_SECTIONS = ("deposits", "append", "ceiling", "server")


class _Recording(PostgresStore):
    """The store, keeping every block it committed (the ceiling replays exactly those)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, pool_size=2)
        self.blocks: list[Block] = []

    def commit(self, block: Block) -> None:
        super().commit(block)
        self.blocks.append(block)


def _database_url(url: str, name: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None})


@contextmanager
def temporary_database(url: str, name: str) -> Iterator[str]:
    """Create database ``name`` on the server of ``url``; yield its URL; drop it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield _database_url(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@dataclass(frozen=True, slots=True)
class _Run:
    seconds: float
    blocks: list[Block]


def time_appends(url: str, deposits: Sequence[Deposit], config: BenchConfig) -> _Run:
    """Submit every chunk through the Sequencer, then wait for all: the timed window."""
    store = _Recording(url)
    try:
        ledger = Ledger.open(store, NoteSigner.generate(ORIGIN))
        store.blocks.clear()  # the genesis block is not timed, nor replayed
        pending = max(len(deposits), 1_000_000)
        seq = Sequencer(ledger, max_batch=config.max_batch, max_pending=pending)
        with seq, _Timer() as timer:
            futures = [seq.submit_many(c) for c in _chunks(deposits, config.chunk)]
            for f in futures:
                f.result()
        return _Run(timer.seconds, list(store.blocks))
    finally:
        store.close()


def time_single_appends(url: str, deposits: Sequence[Deposit]) -> float:
    """Seconds to append ``deposits`` one at a time, each waited for."""
    store = PostgresStore(url, pool_size=2)
    try:
        ledger = Ledger.open(store, NoteSigner.generate(ORIGIN))
        with Sequencer(ledger, max_delay=0.0) as seq, _Timer() as timer:
            for d in deposits:
                seq.append([d])
        return timer.seconds
    finally:
        store.close()


def raw_write(conn: psycopg.Connection[tuple[object, ...]], block: Block) -> None:
    """One block as bare SQL in one transaction: COPY rows, upsert tiles, checkpoint, head."""
    base = block.old_size
    with conn.transaction():
        cur = conn.cursor()
        with cur.copy("COPY entries (idx, leaf) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "bytea"])
            for offset, leaf in enumerate(block.leaves):
                copy.write_row((base + offset, leaf))
        with cur.copy("COPY codes (code, idx) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea", "int8"])
            for offset, h in enumerate(block.leaf_hashes):
                copy.write_row((h[:10], base + offset))
        with cur.copy("COPY statements (statement_key, idx) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea", "int8"])
            for offset, key in enumerate(block.statement_keys):
                copy.write_row((key, base + offset))
        with cur.copy("COPY metas (idx, meta) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "bytea"])
            for index, meta in block.metas.items():
                copy.write_row((index, meta))
        with cur.copy("COPY cases (case_key, idx) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea", "int8"])
            for index, case in block.cases.items():
                copy.write_row((case, index))
        tiles = list(block.tiles.items())
        cur.execute(
            "INSERT INTO tiles (level, idx, record)"
            " SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])"
            " ON CONFLICT (level, idx) DO UPDATE SET record = EXCLUDED.record",
            ([t.level for t, _ in tiles], [t.index for t, _ in tiles], [r for _, r in tiles]),
        )
        cur.execute(
            "INSERT INTO checkpoints (size, note) VALUES (%s, %s)",
            (block.new_size, block.checkpoint),
        )
        cur.execute("UPDATE head SET size = %s", (block.new_size,))


def time_raw_writes(url: str, blocks: Sequence[Block]) -> float:
    """Seconds to write ``blocks`` as bare SQL into a fresh database with the ledger's schema."""
    PostgresStore(url, pool_size=1).close()  # the same schema: tables, keys and triggers
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("INSERT INTO head (size) VALUES (0)")
        with _Timer() as timer:
            for block in blocks:
                raw_write(conn, block)
    return timer.seconds


def run_pg_ledger_bench(config: BenchConfig, *, url: str, log: Log) -> Report:
    """Appends through the ledger and the raw ceiling, on temporary databases of ``url``."""
    report = Report(benchmark="ledger (PostgreSQL)", order=PG_SECTIONS)
    rng = random.Random(SEED)  # noqa: S311 - benchmark sampling, not secrets
    n = config.appends
    log(f"building {n:,} realistic deposits")
    with _Timer() as timer:
        deposits = [realistic_deposit(i, rng) for i in range(n)]
    report.add("deposits", "build_and_validate", _rate(n, timer.seconds), "deposits/s")

    tag = secrets.token_hex(4)
    log(f"server: {redact(url)}")
    with psycopg.connect(url) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('fsync', 'synchronous_commit', 'wal_sync_method', 'server_version_num')"
            ).fetchall()
        )
    report.add("server", "version_num", float(settings.get("server_version_num", 0)), "")
    report.add("server", "fsync_on", float(settings.get("fsync") == "on"), "bool")

    with temporary_database(url, f"cunzheng_bench_{tag}_ledger") as ledger_url:
        log(f"appending {n:,} deposits through the Sequencer (max_batch {config.max_batch:,})")
        run = time_appends(ledger_url, deposits, config)
    blocks = run.blocks
    report.add("append", "durable_appends", _rate(n, run.seconds), "appends/s")
    report.add("append", "seconds", run.seconds, "s")
    report.add("append", "blocks", len(blocks), "blocks")
    report.add("append", "mean_block_size", n / max(len(blocks), 1), "entries")

    single = deposits[: config.single]
    with temporary_database(url, f"cunzheng_bench_{tag}_single") as single_url:
        log(f"appending {len(single):,} deposits one at a time")
        seconds = time_single_appends(single_url, single)
    report.add("append", "single_appends_no_delay", _rate(len(single), seconds), "appends/s")
    del deposits, single

    with temporary_database(url, f"cunzheng_bench_{tag}_raw") as raw_url:
        log("replaying the same blocks as bare SQL (the ceiling)")
        seconds = time_raw_writes(raw_url, blocks)
    written = sum(
        sum(map(len, b.leaves))
        + 18 * len(b.leaves)  # code (10) + index (8)
        + sum(len(k) + 8 for k in b.statement_keys)
        + sum(len(m) + 8 for m in b.metas.values())
        + 24 * len(b.cases)
        + sum(len(r) + 10 for r in b.tiles.values())
        + len(b.checkpoint)
        for b in blocks
    )
    report.add("ceiling", "raw_copy_entries", _rate(n, seconds), "entries/s")
    report.add("ceiling", "transactions", len(blocks), "blocks")
    report.add("ceiling", "bytes_written", written, "B")
    report.add("ceiling", "write_throughput", written / seconds / 1e6, "MB/s")
    report.add(
        "ceiling",
        "ledger_to_ceiling",
        report.value("append", "durable_appends") / report.value("ceiling", "raw_copy_entries"),
        "ratio",
        Target(">=", 0.5),
    )
    report.notes += [
        f"server {redact(url)}: fsync={settings.get('fsync')}, synchronous_commit forced on "
        f"for both runs (server default {settings.get('synchronous_commit')}), "
        f"wal_sync_method={settings.get('wal_sync_method')}.",
        "append: realistic loan_contract deposits submitted in chunks of "
        f"{config.chunk:,}, all submitted before any is awaited; each block is one transaction "
        "(head compare-and-swap, COPY entries/codes/statements/metas/cases, tile upsert, "
        "checkpoint).",
        "ceiling: the same Block objects the ledger committed, replayed as bare SQL into a fresh "
        "database with the same schema, one transaction per block, on one connection.",
        "single_appends_no_delay: one client appending and waiting for each (max_delay=0).",
    ]
    if settings.get("fsync") != "on":
        report.notes.append("fsync is off on this server: no figure here measures durability.")
    return report
