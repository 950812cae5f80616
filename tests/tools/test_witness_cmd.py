"""`cunzheng witness` on a real server: cosign, hand in, see the checkpoint served cosigned."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from api.app import create_app
from api.service import Service, ServiceConfig
from tests.api.conftest import Lender
from tools.client import generate_key, load_private_key
from verifier.witness import CosignatureVerifier, require_cosigners

ROOT = Path(__file__).resolve().parents[2]
NAME = "witness.example.cn/w1"


@pytest.fixture
def witnessed(tmp_path: Path) -> Iterator[tuple[Service, str, Path, CosignatureVerifier]]:
    key = Ed25519PrivateKey.generate()
    key_path = tmp_path / "witness.key"
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    verifier = CosignatureVerifier(NAME, public)
    service = Service.open(
        ServiceConfig(data_dir=tmp_path / "data", origin="w.test/log", witnesses=(verifier.vkey,))
    )
    service.start()
    server = uvicorn.Server(uvicorn.Config(create_app(service), port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    yield service, url, key_path, verifier
    server.should_exit = True
    thread.join()
    service.close()


@pytest.mark.slow
def test_witness_cosigns_growth_and_the_server_serves_it(
    witnessed: tuple[Service, str, Path, CosignatureVerifier], tmp_path: Path
) -> None:
    service, url, key_path, verifier = witnessed
    service.registry.register("lender-1", "Lender")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k", not_before=0)
    lender = Lender("lender-1", load_private_key(private), "k")
    args = [sys.executable, "-m", "tools.cli", "witness", "--server", url,
            "--log-key", service.ledger.signer.vkey, "--key", str(key_path), "--name", NAME,
            "--state", str(tmp_path / "w-state.json")]  # fmt: skip
    for round_ in range(3):
        files = []
        for i in range(4):
            files.append(tmp_path / f"{round_}-{i}.pdf")
            files[-1].write_bytes(b"%%PDF %d %d" % (round_, i))
        service.sequencer.append([lender.deposit(p) for p in files])
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        note = httpx.get(f"{url}/v1/checkpoint").content
        assert require_cosigners(note, [verifier], 1) == [NAME]
    # A line by a witness the service does not know is refused.
    stranger = CosignatureVerifier("someone.else/w", bytes(32))
    r = httpx.post(f"{url}/v1/checkpoints/12/cosignatures",
                   content=b"\xe2\x80\x94 " + stranger.name.encode() + b" AAAA\n")  # fmt: skip
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
