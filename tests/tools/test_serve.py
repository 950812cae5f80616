"""`cunzheng serve` end to end: a real uvicorn on loopback, first run, deposit, verify, restart."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ledger.entry import Deposit
from tools.client import build_statement, generate_key, load_private_key, sign_statement


@contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "serve", "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    url = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"API docs:\s+(http://\S+)/docs", line)
        if m:
            url = m.group(1)
            break
    assert url, "".join(lines)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.mark.slow
def test_serve_first_run_deposit_verify_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    evidence = tmp_path / "借款合同.pdf"
    evidence.write_bytes(b"%PDF-1.7 served")
    with serving(data) as url:
        admin = {"Authorization": "Bearer " + (data / "admin-token").read_text()}
        assert (data / "admin-token").stat().st_mode & 0o077 == 0
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/docs").status_code == 200
            assert http.get("/openapi.json").json()["info"]["title"].startswith("cunzheng")
            r = http.post(
                "/v1/admin/depositors", json={"id": "lender-1", "display_name": "L"}, headers=admin
            )
            assert r.status_code == 201, r.text
            private, public = generate_key("ecdsa-p256-sha256")
            r = http.post("/v1/admin/depositors/lender-1/keys",
                          json={"public_key": public.decode(), "key_id": "k1", "not_before": 0},
                          headers=admin)  # fmt: skip
            assert r.status_code == 201, r.text
            r = http.post("/v1/admin/api-keys", json={"role": "depositor", "depositor": "lender-1"},
                          headers=admin)  # fmt: skip
            token = r.json()["token"]
            statement, meta, salt = build_statement(
                evidence, depositor="lender-1", kind="loan_contract", meta={"contract_no": "HT7"}
            )
            sig = sign_statement(statement, load_private_key(private), key_id="k1")
            deposit = Deposit.create(statement, sig, meta=meta, salt=salt).to_object()
            r = http.post(
                "/v1/deposits", json=deposit, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 201, r.text
            code = r.json()["receipts"][0]["code"]
            digest = "sha256:" + hashlib.sha256(evidence.read_bytes()).hexdigest()
            verdict = http.post("/v1/verify", json={"code": code, "digest": digest}).json()
            assert verdict["verdict"] == "VERIFIED", verdict
    with serving(data) as url, httpx.Client(base_url=url, timeout=10) as http:
        again = http.post("/v1/verify", json={"code": code, "digest": digest}).json()
        assert again["verdict"] == "VERIFIED"
        assert http.get("/v1/checkpoint").text.split("\n")[1] == "1"


def test_serve_refuses_a_public_address_without_saying_so(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tools.cli", "serve", "--data-dir", str(tmp_path),
         "--host", "0.0.0.0"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "CUNZHENG_PORT": "0"},
    )  # fmt: skip
    assert r.returncode != 0
    assert "allow_remote" in r.stderr
