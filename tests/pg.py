"""A throwaway PostgreSQL cluster for tests (shared/research/libraries-checked.md §8).

``initdb`` into a temporary directory — as the ``postgres`` OS user when we run as root, since
initdb refuses root — then ``pg_ctl start`` on a private loopback port with its socket in that
directory. Durability is switched off (``--no-sync``, ``fsync=off``): these tests check
behaviour, not crash safety; the product itself never turns it off.

Every test gets a fresh database cloned from a template that already has the schema migrated.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgCluster", "find_pg_bin", "start_cluster"]

TEMPLATE = "cunzheng_template"


def find_pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``$CUNZHENG_PG_BIN``, the newest Debian
    ``/usr/lib/postgresql/*/bin``, or the ``PATH``."""
    env = os.environ.get("CUNZHENG_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgCluster:
    """A running cluster: ``url(dbname)`` connects as the superuser ``postgres`` (trust auth:
    ``url(dbname, user)`` as any role with LOGIN)."""

    bin_dir: Path
    root: Path
    port: int
    as_postgres: bool
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement.encode())

    def prepare_template(self) -> None:
        """A template database with the schema applied, so new databases start migrated."""
        from ledger.storage.postgres import PostgresStore

        self.sql(f"CREATE DATABASE {TEMPLATE}")
        PostgresStore(self.url(TEMPLATE), pool_size=1).close()

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database, with the schema applied and no rows (or, ``migrated=False``, with
        nothing at all, as ``pg_restore`` wants it); returns its URL."""
        name = f"test_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return self.url(name)

    def new_owned_database(self, owner: str) -> str:
        """A fresh, empty database owned by the role ``owner``; returns its name."""
        name = f"test_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} OWNER {owner} TEMPLATE template0")
        return name

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


def start_cluster(root: Path, bin_dir: Path) -> PgCluster:
    """initdb into ``root/data`` and start the server on a free loopback port."""
    as_postgres = os.geteuid() == 0
    root.mkdir(parents=True, exist_ok=True)
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    cluster = PgCluster(bin_dir, root, _free_port(), as_postgres)
    cluster._run(
        str(bin_dir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    options = (
        f"-h 127.0.0.1 -p {cluster.port} -k {root} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300"
    )
    cluster._run(
        str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-w", "-t", "60",
        "-l", str(root / "server.log"), "-o", options, "start",
    )  # fmt: skip
    return cluster
