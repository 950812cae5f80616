"""`cunzheng tsa init` / `tsa serve`: real HTTP, checked by OpenSSL as the other side."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.errors import TimestampInvalid
from tools.cli import main
from tools.tsa_server import TsaServer, open_authority
from verifier.timestamp import token_from_response

OPENSSL = shutil.which("openssl")


@pytest.fixture
def tsa_dir(tmp_path: Path) -> Path:
    result = CliRunner().invoke(main, ["tsa", "init", str(tmp_path / "tsa"), "--name", "Test TSA"])
    assert result.exit_code == 0, result.output
    assert "tsa-root.pem" in result.output
    return tmp_path / "tsa"


@pytest.fixture
def server(tsa_dir: Path) -> Iterator[TsaServer]:
    authority, credentials, serials = open_authority(tsa_dir)
    srv = TsaServer(authority, credentials).start()
    yield srv
    srv.stop()
    serials.close()


def post(url: str, body: bytes, content_type: str = "application/timestamp-query") -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"] == "application/timestamp-reply"
        return bytes(response.read())


def test_init_refuses_to_overwrite_and_keeps_the_key_private(tsa_dir: Path) -> None:
    assert (tsa_dir / "tsa.key").stat().st_mode & 0o077 == 0
    again = CliRunner().invoke(main, ["tsa", "init", str(tsa_dir)])
    assert again.exit_code != 0
    assert "already holds" in again.output


@pytest.mark.slow
def test_openssl_verifies_tokens_over_http(
    server: TsaServer, tsa_dir: Path, tmp_path: Path
) -> None:
    assert OPENSSL, "openssl is needed for this test (Debian package openssl)"
    data = tmp_path / "evidence.pdf"
    data.write_bytes(b"%PDF-1.7 loan contract")
    query = tmp_path / "q.tsq"
    subprocess.run(
        [OPENSSL, "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)],
        check=True,
        capture_output=True,
    )
    reply = tmp_path / "r.tsr"
    reply.write_bytes(post(server.url, query.read_bytes()))
    verified = subprocess.run(
        [OPENSSL, "ts", "-verify", "-data", str(data), "-in", str(reply),
         "-CAfile", str(tsa_dir / "tsa-root.pem")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "Verification: OK" in verified.stdout
    # Serial numbers go up and survive a restart of the TSA.
    text = subprocess.run(
        [OPENSSL, "ts", "-reply", "-in", str(reply), "-text"], capture_output=True, text=True
    ).stdout
    assert "Serial number: 0x" in text


def test_bad_requests_get_http_errors_or_rejections(server: TsaServer) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        post(server.url, b"x", content_type="text/plain")
    assert err.value.code == 415
    with pytest.raises(urllib.error.HTTPError) as err:
        post(server.url, b"x" * (64 * 1024 + 1))
    assert err.value.code == 413
    # Garbage of the right type is answered with an RFC 3161 rejection, not an HTTP error.
    with pytest.raises(TimestampInvalid) as rejected:
        token_from_response(post(server.url, b"\x30\x03\x02\x01\x07"))
    assert rejected.value.details["reason"] == "status"
    with urllib.request.urlopen(server.url + "root.pem", timeout=5) as r:
        assert r.read().startswith(b"-----BEGIN CERTIFICATE-----")
