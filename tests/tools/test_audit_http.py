"""`cunzheng audit --server`: the same replay from a server's public API alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.service import Service
from ledger.checkpoint import NoteVerifier
from ledger.tiles import TileID
from tests.api.conftest import Lender, wait_stamped
from verifier.audit import audit
from verifier.sources import HttpSource

ROOT = Path(__file__).resolve().parents[2]


def deposit_files(service: Service, lender: Lender, tmp_path: Path, n: int, text: bytes) -> None:
    """Deposit ``n`` small files, ``text % i`` each, in one block."""
    files = []
    for i in range(n):
        files.append(tmp_path / f"{i}.pdf")
        files[-1].write_bytes(text % i)
    service.sequencer.append([lender.deposit(p) for p in files])


@pytest.mark.slow
def test_audit_over_http_matches_the_store(
    service: Service, lender: Lender, server_url: str, tmp_path: Path
) -> None:
    for block in range(3):
        files = []
        for i in range(120):
            files.append(tmp_path / f"{block}-{i}.pdf")
            files[-1].write_bytes(b"%%PDF %d %d" % (block, i))
        service.sequencer.append([lender.deposit(p) for p in files])
    wait_stamped(service)
    log_key = NoteVerifier.parse(service.ledger.signer.vkey)
    report = audit(HttpSource(server_url), log_key=log_key, tsa_roots=service.tsa_roots)
    assert report.clean, report.to_object()
    assert report.entries == 360 and report.checkpoints == 4 and report.timestamps >= 1
    root = tmp_path / "root.pem"
    root.write_bytes(service.tsa_roots[0].public_bytes(Encoding.PEM))
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "audit", "--server", server_url,
         "--log-key", service.ledger.signer.vkey, "--tsa-root", str(root), "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["entries"] == 360


@pytest.mark.slow
def test_a_server_serving_a_wrong_tile_is_caught(
    service: Service, lender: Lender, server_url: str, tmp_path: Path
) -> None:
    deposit_files(service, lender, tmp_path, 300, b"%%PDF %d")

    class Lying(HttpSource):
        def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
            records = super().read_tiles(ids)
            return [bytes(32) + r[32:] if r is not None else r for r in records]

    log_key = NoteVerifier.parse(service.ledger.signer.vkey)
    report = audit(Lying(server_url), log_key=log_key, tsa_roots=service.tsa_roots)
    assert not report.clean
    assert report.divergences[0].what == "tile record"


@pytest.mark.slow
def test_index_lookups_come_in_batches_and_a_lying_index_is_caught(
    service: Service, lender: Lender, server_url: str, tmp_path: Path
) -> None:
    deposit_files(service, lender, tmp_path, 50, b"%%PDF lookup %d")
    calls: list[str] = []

    class Counting(HttpSource):
        def _lookup(self, body: dict[str, list[str]]) -> Any:
            calls.append(next(iter(body)))
            return super()._lookup(body)

    log_key = NoteVerifier.parse(service.ledger.signer.vkey)
    report = audit(Counting(server_url), log_key=log_key, tsa_roots=service.tsa_roots)
    assert report.clean, report.to_object()
    assert sorted(calls) == ["codes", "statements"]  # one request each for the 50 entries

    class Lying(HttpSource):
        def indexes_by_statement(self, keys: Sequence[bytes]) -> list[int | None]:
            found = super().indexes_by_statement(keys)
            return [None if i == 7 else i for i in found]

    report = audit(Lying(server_url), log_key=log_key, tsa_roots=service.tsa_roots, collect=True)
    assert [(d.where, d.what) for d in report.divergences] == [("index 7", "index by digest")]


def test_index_lookup_refuses_malformed_keys(server_url: str) -> None:
    import httpx

    bad = httpx.post(f"{server_url}/v1/indexes/lookup", json={"statements": ["zz"]})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    many = httpx.post(f"{server_url}/v1/indexes/lookup", json={"codes": ["x"] * 5000})
    assert many.status_code == 422
    unknown = httpx.post(f"{server_url}/v1/indexes/lookup", json={"statements": ["01" * 49]})
    assert unknown.json() == {"codes": [], "statements": [None]}
