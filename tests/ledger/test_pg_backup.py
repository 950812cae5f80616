"""pg_dump and pg_restore of a PostgreSQL store (ledger/storage/pg_backup.py), on the session's
throwaway cluster: the restored database is the same log, still append-only; a database that is
not empty is refused; a broken archive leaves nothing; a password never reaches a command line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.checkpoint import NoteSigner
from ledger.errors import InvalidInput, StorageError
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage import pg_backup
from ledger.storage.pg_backup import dump, find_tool, is_empty, restore
from ledger.storage.postgres import PostgresStore
from tests.conftest import make_deposit
from tests.pg import PgCluster


@pytest.fixture
def filled(pg_url: str, signer: NoteSigner) -> Iterator[PostgresStore]:
    """300 entries (a complete tile and an edge tile), a token, an original, a record."""
    store = PostgresStore(pg_url, pool_size=2)
    with Sequencer(Ledger.open(store, signer)) as seq:
        seq.append([make_deposit(i) for i in range(300)])
    store.put_timestamp(300, b"token")
    store.put_original(b"\x01" + bytes(32), [b"chunk 1", b"chunk 2"])
    store.record_put("api-key", "k1", b"v1", None)
    yield store
    store.close()


@pytest.fixture
def empty_url(pg_cluster: PgCluster) -> Iterator[str]:
    url = pg_cluster.new_database(migrated=False)
    yield url
    pg_cluster.drop_database(url)


def test_dump_then_restore_into_an_empty_database_is_the_same_log(
    filled: PostgresStore, empty_url: str, signer: NoteSigner, tmp_path: Path
) -> None:
    serial = filled.next_serial()
    filled.backup(tmp_path / "ledger.dump")
    assert is_empty(empty_url)
    restore(empty_url, tmp_path / "ledger.dump")
    assert not is_empty(empty_url)
    copy = PostgresStore(empty_url, pool_size=1, migrate=False)
    try:
        assert copy.head() == filled.head()
        assert copy.entries(0, 300) == filled.entries(0, 300)
        assert copy.timestamp(300) == b"token"
        original = copy.original(b"\x01" + bytes(32))
        assert original is not None and list(original) == [b"chunk 1", b"chunk 2"]
        assert copy.record_get("api-key", "k1") == b"v1"
        assert copy.next_serial() > serial  # the token serials go on, never repeat
        head, _ = Ledger.open(copy, signer).checked_head()
        assert head.size == 300
    finally:
        copy.close()
    with (
        psycopg.connect(empty_url, autocommit=True) as conn,
        pytest.raises(psycopg.Error, match="append-only"),  # still append-only
    ):
        conn.execute("DELETE FROM entries WHERE idx = 0")


def test_restore_refuses_a_database_that_is_not_empty(
    filled: PostgresStore, pg_url: str, tmp_path: Path
) -> None:
    filled.backup(tmp_path / "ledger.dump")
    with pytest.raises(InvalidInput, match="not empty"):
        restore(pg_url, tmp_path / "ledger.dump")  # the database it came from


def test_a_broken_archive_restores_nothing(
    filled: PostgresStore, empty_url: str, tmp_path: Path
) -> None:
    filled.backup(tmp_path / "ledger.dump")
    whole = (tmp_path / "ledger.dump").read_bytes()
    (tmp_path / "cut.dump").write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(StorageError, match="pg_restore"):
        restore(empty_url, tmp_path / "cut.dump")
    assert is_empty(empty_url)  # one transaction: all or nothing


def test_dump_refuses_to_overwrite_and_leaves_no_partial_file(
    filled: PostgresStore, pg_cluster: PgCluster, tmp_path: Path
) -> None:
    (tmp_path / "there").write_bytes(b"kept")
    with pytest.raises(StorageError, match="exists already"):
        filled.backup(tmp_path / "there")
    assert (tmp_path / "there").read_bytes() == b"kept"
    with pytest.raises(StorageError, match="pg_dump"):
        dump(pg_cluster.url("no_such_db"), tmp_path / "missing.dump")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]


def test_a_password_goes_in_the_environment_never_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    def run(command: list[str], *, env: dict[str, str], **_: Any) -> Any:
        seen.append((command, env))
        return subprocess.CompletedProcess(command, 1, "", "FATAL: password authentication failed")

    monkeypatch.setattr(pg_backup.subprocess, "run", run)
    url = "postgresql://app:hunter2@db.example:5433/ledger?sslmode=require"
    with pytest.raises(StorageError) as caught:
        dump(url, tmp_path / "x.dump")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(InvalidInput):  # a missing archive is refused before any connection
        restore(url, tmp_path / "missing.dump")
    ((command, env),) = seen
    assert not any("hunter2" in arg for arg in command)
    assert env["PGPASSWORD"] == "hunter2"
    conninfo = command[command.index("--dbname") + 1]
    assert all(part in conninfo for part in ("host=db.example", "port=5433", "dbname=ledger",
                                             "user=app", "sslmode=require"))  # fmt: skip


def test_the_tools_are_found_off_the_path_in_debian_directories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_restore")):
        pytest.skip("no Debian PostgreSQL client in /usr/lib/postgresql")
    monkeypatch.delenv("CUNZHENG_PG_BIN", raising=False)
    monkeypatch.setenv("PATH", "")
    assert find_tool("pg_restore").parent.match("/usr/lib/postgresql/*/bin")
    with pytest.raises(StorageError, match="postgresql-client"):
        find_tool("pg_nonexistent_tool")
