"""A real ``cunzheng serve`` in a subprocess, and a lender that deposits into it over HTTP.

The reliability tests (crash, faults, load, backup) run against the server as an operator runs
it, not against an in-process app: a SIGKILL must hit a real process, and a full disk a real
filesystem. Every test is parametrized by store URL (``store_url``): RocksDB in the data
directory, and PostgreSQL — a fresh database of the session's throwaway cluster (``pg_url``,
tests/conftest.py), which runs in CI and never skips there.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import NoteSigner, NoteVerifier
from ledger.entry import Deposit
from tests.api.conftest import lender, service  # noqa: F401 - in-process fixtures
from tools.client import SigningKey, generate_key, load_private_key
from tools.load import evidence_deposit
from verifier.bundle import Bundle, Report, verify_bundle

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "reliability.cunzheng/log"


@pytest.fixture(params=["rocksdb", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """``None``: RocksDB in the data directory (the default); else the URL of a fresh,
    migrated PostgreSQL database of its own, dropped after the test."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return None


@dataclass
class Server:
    """One ``cunzheng serve`` process over ``data_dir``; :meth:`start` again after a kill."""

    data_dir: Path
    store_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    """Where the server's output goes (default: beside the data directory)."""
    url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    starts: int = 0

    def __post_init__(self) -> None:
        log_dir = self.log_dir or self.data_dir.parent
        self.log_path = log_dir / f"{self.data_dir.name}-server.log"

    def start(self, timeout: float = 60) -> str:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, "CUNZHENG_ORIGIN": ORIGIN, **self.env}
        if self.store_url is not None:
            env["CUNZHENG_STORE"] = self.store_url
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        mark = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "serve", "--data-dir", str(self.data_dir),
             "--port", "0", *self.args],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[mark:].decode(errors="replace")
            m = re.search(r"API docs:\s+(http://\S+)/docs", text)
            if m:
                self.url = m.group(1)
                self._wait_ready(deadline)
                return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"cunzheng serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"cunzheng serve did not start in {timeout} s:\n{self.log()}")

    def _wait_ready(self, deadline: float) -> None:
        """Ready = the banner (printed once uvicorn accepts) and then ``GET /healthz`` answered.
        A server that dies after its banner fails here with its log and exit status, not later
        as a reset request; a transport error while it lives is retried, and warned about."""
        assert self.proc is not None
        while True:
            try:
                with httpx.Client(base_url=self.url, timeout=10) as http:
                    r = http.get("/healthz")
                if r.status_code == 200:
                    return
                problem = f"GET /healthz: {r.status_code} {r.text[:300]}"
            except httpx.TransportError as exc:
                problem = f"GET /healthz: {exc!r}"
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"cunzheng serve exited {self.proc.returncode} after its banner "
                    f"({problem}):\n{self.log()[-5000:]}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"cunzheng serve never answered ({problem}):\n{self.log()}")
            warnings.warn(f"start {self.starts}: not ready after its banner: {problem}",
                          stacklevel=2)  # fmt: skip
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            # uvicorn shuts down cleanly, then re-raises the signal it caught.
            assert self.proc.returncode in (0, -signal.SIGTERM), self.log()[-3000:]

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text()

    def log_verifier(self) -> NoteVerifier:
        """The log's verifier key, read from the data directory as an operator would."""
        key = serialization.load_pem_private_key(
            (self.data_dir / "keys" / "log.key").read_bytes(), password=None
        )
        assert isinstance(key, Ed25519PrivateKey)
        return NoteSigner(ORIGIN, key).verifier

    def tsa_root_path(self) -> Path:
        return self.data_dir / "tsa" / "tsa-root.pem"

    def tsa_root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.tsa_root_path().read_bytes())

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@pytest.fixture
def server(tmp_path: Path, store_url: str | None) -> Iterator[Server]:
    srv = Server(tmp_path / "data", store_url)
    yield srv
    srv.kill()


@dataclass
class Lender:
    """A depositor registered over the admin API, with its signing key and API token."""

    id: str
    key: SigningKey
    key_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def deposit(self, evidence: bytes, *, contract_no: str = "HT1") -> Deposit:
        """A signed deposit request for ``evidence`` (distinct bytes → distinct digest)."""
        return evidence_deposit(self.id, self.key, self.key_id, evidence,
                                file_name="借款合同.pdf", contract_no=contract_no)  # fmt: skip


def register_lender(server: Server, depositor: str = "lender-1") -> Lender:
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    private, public = generate_key("ed25519")
    with server.client() as http:
        r = http.post("/v1/admin/depositors", json={"id": depositor, "display_name": "某消费金融"},
                      headers=admin)  # fmt: skip
        assert r.status_code == 201, r.text
        r = http.post(f"/v1/admin/depositors/{depositor}/keys",
                      json={"public_key": public.decode(), "key_id": "k1", "not_before": 0},
                      headers=admin)  # fmt: skip
        assert r.status_code == 201, r.text
        r = http.post("/v1/admin/api-keys", json={"role": "depositor", "depositor": depositor},
                      headers=admin)  # fmt: skip
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    return Lender(depositor, load_private_key(private), "k1", token)


def wait_stamped(http: httpx.Client, seconds: float = 30) -> dict[str, Any]:
    """Until every entry has a trusted time (the health endpoint says none waits)."""
    deadline = time.monotonic() + seconds
    while True:
        health: dict[str, Any] = http.get("/healthz").json()
        if health["entries_waiting_for_time_stamp"] == 0:
            return health
        assert time.monotonic() < deadline, f"time-stamping did not catch up: {health}"
        time.sleep(0.05)


def verify_offline(server: Server, bundle_json: bytes) -> Report:
    """The verifier's verdict on a bundle, trusting only the log key and the TSA root."""
    bundle = Bundle.from_object(json.loads(bundle_json))
    return verify_bundle(bundle, log_keys=[server.log_verifier()], tsa_roots=[server.tsa_root()])


def leaf_hash_b64(receipt: dict[str, Any]) -> bytes:
    return base64.b64decode(receipt["leaf_hash"])


def audit_store(server: Server, *, via_server: bool = False) -> subprocess.CompletedProcess[str]:
    """``cunzheng audit`` over the store itself — the RocksDB directory (server stopped) or the
    PostgreSQL database — or over the running server's public API (``via_server``)."""
    if via_server:
        where = ["--server", server.url]
    else:
        where = ["--store", server.store_url or str(server.data_dir / "ledger")]
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", *where,
         "--log-key", server.log_verifier().vkey, "--tsa-root", str(server.tsa_root_path()),
         "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
