"""``cunzheng backup`` of a running server and ``cunzheng restore``: the restored depository
audits clean and every receipt given before the backup still verifies, offline and served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    server: Server, tmp_path: Path
) -> None:
    if server.store_url is not None:
        pytest.skip("cunzheng backup copies RocksDB; PostgreSQL is backed up with pg_dump")
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
        assert not (backup / "admin-token").exists()
        after = http.post("/v1/deposits", json=lender.deposit(b"after the backup").to_object(),
                          headers=lender.headers)  # fmt: skip
        assert after.status_code == 201
    server.stop()

    restored = Server(tmp_path / "restored", None)
    done = cli("restore", str(backup), "--data-dir", str(restored.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored 200 entries" in done.stdout
    again = cli("restore", str(backup), "--data-dir", str(restored.data_dir))
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
