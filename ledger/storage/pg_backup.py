"""Backing up and restoring a PostgreSQL store with the server's own tools: ``pg_dump`` and
``pg_restore`` (PostgreSQL documentation, "SQL Dump" and the two tools' reference pages).

A dump is one custom-format archive (``pg_dump -Fc``) of the whole database, taken in one
repeatable-read snapshot while the ledger keeps committing: every block is one transaction
(:meth:`~ledger.storage.postgres.PostgresStore.commit`), so the snapshot holds whole blocks only.
It is restored into an *empty* database in one transaction (``pg_restore --single-transaction``):
either the whole ledger lands or nothing does. Owners and grants are not restored
(``--no-owner --no-privileges``): the restoring user owns what it creates.

The tools are found on ``PATH``, else in the newest Debian ``/usr/lib/postgresql/*/bin``
(``$CUNZHENG_PG_BIN`` first, when set). A password in the URL is handed to them in the
``PGPASSWORD`` environment variable, never on the command line (where ``ps`` shows it) nor in a
message: the ``-d`` argument is the connection string without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import InvalidInput, StorageError, StorageFull
from .postgres import redact

__all__ = ["dump", "find_tool", "is_empty", "restore"]

_TIMEOUT = 24 * 3600.0


def find_tool(name: str) -> Path:
    """The path of the PostgreSQL client program ``name`` (``pg_dump``, ``pg_restore``).

    Raises :class:`~ledger.errors.StorageError` naming the package to install when absent."""
    env = os.environ.get("CUNZHENG_PG_BIN")
    if env and (Path(env) / name).is_file():
        return Path(env) / name
    found = shutil.which(name)
    if found:
        return Path(found)
    debian = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    raise StorageError(
        f"{name} not found on PATH nor in /usr/lib/postgresql/*/bin (hint: install the "
        "PostgreSQL client tools, Debian: apt-get install postgresql-client, of a version at "
        "least the server's; or set CUNZHENG_PG_BIN to their directory)"
    )


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """``(conninfo without the password, environment with PGPASSWORD set if there was one)``."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise InvalidInput(f"not a PostgreSQL connection string: {exc}") from exc
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(tool: str, args: list[str], url: str, what: str) -> None:
    conninfo, env = _connection(url)
    command = [str(find_tool(tool)), "--no-password", "--dbname", conninfo, *args]
    try:
        done = subprocess.run(  # noqa: S603 - a found tool, no shell; the URL is one argument
            command, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StorageError(f"{what} of {redact(url)} failed: {exc}") from exc
    if done.returncode != 0:
        stderr = done.stderr.strip()[-2000:]
        if "no space left" in stderr.lower():
            raise StorageFull(f"{what} of {redact(url)} failed: the disk is full")
        raise StorageError(
            f"{what} of {redact(url)} failed ({tool} exited {done.returncode}): {stderr}",
            url=redact(url),
        )


def dump(url: str, dest: str | Path) -> None:
    """Write a custom-format archive of the database at ``url`` to ``dest`` (a new file), in
    one consistent snapshot taken while the store is in use. ``dest`` appears only complete."""
    dest = Path(dest)
    if dest.exists():
        raise StorageError(f"{dest} exists already; a backup goes to a new file")
    partial = dest.with_name(dest.name + ".partial")
    try:
        _run("pg_dump", ["--format", "custom", "--file", str(partial)], url, "pg_dump")
        partial.rename(dest)
    finally:
        partial.unlink(missing_ok=True)


def is_empty(url: str) -> bool:
    """Whether the database at ``url`` holds no table, sequence, view or function of its own
    (only what PostgreSQL itself creates): a database :func:`restore` may fill."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                "        ON n.oid = c.relnamespace"
                "        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                "          AND n.nspname NOT LIKE 'pg\\_toast%%')"
                "     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
                "        ON n.oid = p.pronamespace"
                "        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))"
            ).fetchone()
    except psycopg.Error as exc:
        raise StorageError(f"cannot inspect {redact(url)}: {exc}") from exc
    return row is not None and row[0] == 0


def restore(url: str, archive: str | Path) -> None:
    """Load the archive :func:`dump` wrote into the empty database at ``url``, in one
    transaction. Refuses a database that holds anything (:func:`is_empty`)."""
    if not Path(archive).is_file():
        raise InvalidInput(f"{archive} is not a file")
    if not is_empty(url):
        raise InvalidInput(
            f"the database {redact(url)} is not empty; restore into a new one "
            "(hint: CREATE DATABASE … or createdb)",
            url=redact(url),
        )
    args = ["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
    _run("pg_restore", [*args, str(archive)], url, "pg_restore")
