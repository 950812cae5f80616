"""``cunzheng backup`` of a running server and ``cunzheng restore``, on RocksDB (a checkpoint) and
on PostgreSQL (``pg_dump -Fc``, restored with ``pg_restore`` into a new, empty database): the
restored depository audits clean, every receipt given before the backup still verifies, offline
and served, and a deposit made after the backup is not in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import PgCluster
from tests.reliability.conftest import (
    ROOT,
    Server,
    audit_store,
    register_lender,
    verify_offline,
    wait_stamped,
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_backup_while_serving_then_restore_audits_clean_and_every_receipt_verifies(
    server: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    on_postgres = server.store_url is not None
    server.start()
    lender = register_lender(server)
    receipts = []
    with server.client() as http:
        for block in range(4):
            batch = [lender.deposit(b"%%PDF backup %d %d" % (block, i)).to_object()
                     for i in range(50)]  # fmt: skip
            r = http.post("/v1/deposits", json={"deposits": batch}, headers=lender.headers)
            assert r.status_code == 201, r.text
            receipts += r.json()["receipts"]
        refused = cli("backup", "--server", server.url, "--admin-token-file",
                      str(tmp_path / "nothing"))  # fmt: skip
        assert refused.returncode != 0
        done = cli("backup", "--server", server.url,
                   "--admin-token-file", str(server.data_dir / "admin-token"))  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        (backup,) = (server.data_dir / "backups").iterdir()
        manifest = json.loads((backup / "backup.json").read_text())
        assert manifest["tree_size_at_least"] == 200
        assert manifest["store"] == ("postgresql" if on_postgres else "rocksdb")
        assert (backup / ("ledger.dump" if on_postgres else "ledger")).exists()
        assert not (backup / "admin-token").exists()
        after = http.post("/v1/deposits", json=lender.deposit(b"after the backup").to_object(),
                          headers=lender.headers)  # fmt: skip
        assert after.status_code == 201
    server.stop()

    target: list[str] = []
    restored_url = None
    if on_postgres:
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        restored_url = cluster.new_database(migrated=False)
        request.addfinalizer(lambda: cluster.drop_database(restored_url))
        target = ["--store", restored_url]
        no_store = cli("restore", str(backup), "--data-dir", str(tmp_path / "elsewhere"))
        assert no_store.returncode != 0 and "--store postgresql://" in no_store.stderr
        assert server.store_url is not None
        in_use = cli("restore", str(backup), "--data-dir", str(tmp_path / "elsewhere"),
                     "--store", server.store_url)  # fmt: skip
        assert in_use.returncode != 0 and "is not empty" in in_use.stderr
        assert not (tmp_path / "elsewhere").exists()
    restored = Server(tmp_path / "restored", restored_url)
    done = cli("restore", str(backup), "--data-dir", str(restored.data_dir), *target)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored 200 entries" in done.stdout
    if on_postgres:  # the database is filled now
        again = cli("restore", str(backup), "--data-dir", str(tmp_path / "again"), *target)
        assert again.returncode != 0 and "database" in again.stderr and "not empty" in again.stderr
    again = cli("restore", str(backup), "--data-dir", str(restored.data_dir), *target)
    assert again.returncode != 0 and "not empty" in again.stderr
    audited = audit_store(restored)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert json.loads(audited.stdout)["entries"] == 200
    try:
        restored.start()
        assert restored.log_verifier().vkey == server.log_verifier().vkey
        with restored.client() as http:
            wait_stamped(http)
            for receipt in receipts:
                bundle = http.get(f"/v1/deposits/{receipt['code']}/bundle", headers=lender.headers)
                assert bundle.status_code == 200, bundle.text  # the old API keys still work
                assert verify_offline(restored, bundle.content).verdict == "VERIFIED"
            lost = http.get(f"/v1/deposits/{after.json()['receipts'][0]['code']}")
            assert lost.status_code == 404  # made after the backup: not in it
    finally:
        restored.kill()
