"""Shared fixtures: test keys are generated here, never committed."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit, Digest, Signature, Statement, meta_commitment
from ledger.log import Ledger
from ledger.storage.memory import MemoryStore
from ledger.storage.rocksdb import RocksStore
from ledger.store import Store
from tests.pg import PgCluster, find_pg_bin, start_cluster

ORIGIN = "test.cunzheng/log"


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def make_deposit(i: int, *, depositor: str = "lender-1", with_meta: bool = True) -> Deposit:
    """A realistic deposit: distinct digest per ``i``, private meta with a fresh salt."""
    salt = os.urandom(32)
    meta = {"file_name": f"借款合同-{i}.pdf", "contract_no": f"HT{i:08d}"}
    statement = Statement.build(
        depositor=depositor,
        kind="loan_contract",
        digest=Digest("sha256", hashlib.sha256(f"evidence {i}".encode()).digest()),
        size=1000 + i,
        media_type="application/pdf",
        captured_at="2026-11-24T08:00:00Z",
        meta_commitment=meta_commitment(salt, meta),
    )
    sig = Signature("ed25519", "lender-key-1", os.urandom(64))
    if with_meta:
        return Deposit.create(statement, sig, meta=meta, salt=salt)
    return Deposit.create(statement, sig)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the whole session (tests/pg.py). Skipped outside CI
    when the server binaries are missing; in CI (``CI=true``) their absence fails."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        reason = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
            "postgresql package or set CUNZHENG_PG_BIN"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    # Not under pytest's root-only temporary directory: the postgres user must reach it.
    root = Path(tempfile.mkdtemp(prefix="cunzheng-pg-"))
    try:
        cluster = start_cluster(root, bin_dir)
        try:
            cluster.prepare_template()
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh database with the schema applied, dropped after the test."""
    url = pg_cluster.new_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=["memory", "rocksdb", "postgresql"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens (and reopens) one store of each backend; closes what it opened."""
    opened: list[Store] = []
    memory = MemoryStore()
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else ""

    def factory() -> Store:
        if request.param == "memory":
            return memory
        for s in opened:
            s.close()
        opened.clear()
        store: Store
        if request.param == "postgresql":
            from ledger.storage.postgres import PostgresStore

            store = PostgresStore(url, pool_size=2)
        else:
            store = RocksStore(tmp_path / "db")
        opened.append(store)
        return store

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    return store_factory()


@pytest.fixture
def ledger(store: Store, signer: NoteSigner) -> Ledger:
    return Ledger.open(store, signer)
