"""Trusted time for checkpoints: in-process, over HTTP, from OpenSSL's TSA; down and back."""

from __future__ import annotations

import hashlib
import itertools
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from ledger.authority import TimeStampAuthority, TsaCredentials, issue_tsa_certificates
from ledger.checkpoint import NoteSigner, split_note
from ledger.errors import TimestampInvalid, Unavailable
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.memory import MemoryStore
from ledger.tsa import AuthorityClient, HttpTimestampClient, Stamper, TimestampClient
from tests.conftest import make_deposit
from tests.tsa_fixtures import OpenSSLTsa
from tools.tsa_server import TsaServer
from verifier.timestamp import make_request, read_response, verify_token

SIGNER = NoteSigner.from_seed("tsa.test/log", bytes(range(32)))


def credentials() -> tuple[TimeStampAuthority, x509.Certificate, TsaCredentials]:
    creds = issue_tsa_certificates(name="Stamper Test TSA")
    authority = TimeStampAuthority(
        certificate=creds.certificate,
        private_key=creds.private_key,
        serials=itertools.count(1).__next__,
    )
    return authority, creds.root, creds


def verifier_for(root: x509.Certificate) -> Callable[[bytes, bytes], object]:
    return lambda token, digest: verify_token(token, digest=digest, roots=[root])


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def http_client(url: str) -> HttpTimestampClient:
    return HttpTimestampClient(
        [url],
        build_request=lambda digest, nonce: make_request(digest, nonce=nonce),
        read_response=read_response,
        timeout=2,
    )


def test_every_deposit_gets_a_trusted_time_in_process() -> None:
    authority, root, _ = credentials()
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(
        store, AuthorityClient(authority), verify=verifier_for(root), interval=0.05, min_interval=0
    )
    with stamper, Sequencer(ledger, on_commit=[stamper.notify]) as seq:
        receipts = seq.append([make_deposit(i) for i in range(20)])
        wait_for(lambda: stamper.lag().entries_waiting == 0)
    for r in receipts:
        size, token = store.timestamp_at_or_after(r.index + 1) or (0, b"")
        body, _ = split_note(ledger.checkpoint(size))
        info = verify_token(token, digest=hashlib.sha256(body).digest(), roots=[root])
        assert info.gen_time.tzinfo is not None
    assert stamper.lag().last_error is None


def test_tsa_down_then_back_fills_the_gap(tmp_path: Path) -> None:
    authority, root, creds = credentials()
    with socket.socket() as s:  # a free port, then nobody listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(
        store, http_client(url), verify=verifier_for(root), interval=0.05, min_interval=0
    )
    stamper.max_backoff = 0.2
    with stamper, Sequencer(ledger, on_commit=[stamper.notify]) as seq:
        first = seq.append([make_deposit(i) for i in range(5)])  # accepted with the TSA down
        wait_for(lambda: stamper.lag().last_error is not None)
        lag = stamper.lag()
        assert lag.entries_waiting == 5 and lag.unstamped_checkpoints >= 1
        assert "no TSA answered" in (lag.last_error or "")
        server = TsaServer(authority, creds, port=port)
        server.start()
        try:
            seq.append([make_deposit(i) for i in range(5, 8)])
            wait_for(lambda: stamper.lag().entries_waiting == 0)
        finally:
            server.stop()
    size, _ = store.timestamp_at_or_after(first[0].index + 1) or (0, b"")
    assert size == 8  # the newest checkpoint was stamped; it covers the earlier deposits
    assert store.timestamp(5) is None  # the gap stays visible
    assert stamper.lag().last_error is None


def test_an_error_is_over_once_nothing_waits() -> None:
    """The stamper stores its token before it clears its last error: a health check between the
    two saw nothing waiting and still the old error (a 'degraded' service with no lag). With
    nothing waiting, an error is over, whoever stamped."""
    authority, root, _ = credentials()
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(store, AuthorityClient(authority), verify=verifier_for(root))
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(3)])
    stamper.last_error = "no TSA answered"  # the stamper's last attempt failed
    lag = stamper.lag()
    assert (lag.entries_waiting, lag.last_error) == (3, "no TSA answered")
    assert stamper.stamp_latest() == 3  # stored; the error not cleared yet
    assert stamper.last_error == "no TSA answered"
    lag = stamper.lag()
    assert (lag.entries_waiting, lag.last_error) == (0, None)


@pytest.mark.slow
def test_openssl_tsa_tokens_are_kept(tmp_path: Path) -> None:
    openssl_tsa = OpenSSLTsa(tmp_path / "openssl")

    class OpenSSLClient:
        def stamp(self, digest: bytes) -> bytes:
            return read_response(openssl_tsa.reply(make_request(digest, nonce=42)), 42)

    client: TimestampClient = OpenSSLClient()
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(store, client, verify=verifier_for(openssl_tsa.root))
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(1)])
    assert stamper.stamp_latest() == 1
    assert stamper.stamp_latest() is None  # already stamped


def test_a_token_from_an_untrusted_tsa_is_not_stored() -> None:
    authority, _, _ = credentials()
    _, other_root, _ = credentials()
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(store, AuthorityClient(authority), verify=verifier_for(other_root))
    with pytest.raises(TimestampInvalid) as err:
        stamper.stamp_latest()
    assert err.value.details["reason"] == "untrusted"
    assert store.latest_timestamped() is None
    assert ledger.head_size() == 0


def test_http_client_reports_every_url_it_tried() -> None:
    client = http_client("http://127.0.0.1:9/")
    with pytest.raises(Unavailable, match="no TSA answered"):
        client.stamp(bytes(32))


def test_a_busy_log_is_stamped_at_most_once_per_min_interval() -> None:
    authority, root, _ = credentials()
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    stamper = Stamper(
        store, AuthorityClient(authority), verify=verifier_for(root), interval=0.01,
        min_interval=0.5,
    )  # fmt: skip
    with stamper, Sequencer(ledger, on_commit=[stamper.notify]) as seq:
        started = time.monotonic()
        for i in range(20):
            seq.append([make_deposit(i)])
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        wait_for(lambda: stamper.lag().entries_waiting == 0)
    stamped = [h.size for h in store.checkpoints() if store.timestamp(h.size) is not None]
    assert len(stamped) <= 2 + int(elapsed / 0.5) + 1
    assert stamped[-1] == 20  # the newest is always stamped in the end
