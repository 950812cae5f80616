"""`cunzheng audit --server`: the same replay from a server's public API alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.service import Service
from ledger.checkpoint import NoteVerifier
from ledger.tiles import TileID
from tests.api.conftest import Lender, wait_stamped
from verifier.audit import audit
from verifier.sources import HttpSource

ROOT = Path(__file__).resolve().parents[2]


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
    files = []
    for i in range(300):
        files.append(tmp_path / f"{i}.pdf")
        files[-1].write_bytes(b"%%PDF %d" % i)
    service.sequencer.append([lender.deposit(p) for p in files])

    class Lying(HttpSource):
        def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]:
            records = super().read_tiles(ids)
            return [bytes(32) + r[32:] if r is not None else r for r in records]

    log_key = NoteVerifier.parse(service.ledger.signer.vkey)
    report = audit(Lying(server_url), log_key=log_key, tsa_roots=service.tsa_roots)
    assert not report.clean
    assert report.divergences[0].what == "tile record"
