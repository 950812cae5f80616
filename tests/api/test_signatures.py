"""The signature process the event loop talks to directly (api.signatures)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import signal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import api.signatures
from api.signatures import SignatureProcess, SignatureProcessGone, signature_process
from verifier.signature import verify_batch

Item = tuple[bytes, bytes, str, bytes]


def _spki(private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signed(n: int) -> list[Item]:
    """``n`` good Ed25519 items, each over its own statement hash."""
    key = Ed25519PrivateKey.generate()
    spki = _spki(key)
    hashes = [hashlib.sha256(b"statement %d" % i).digest() for i in range(n)]
    return [(spki, h, "ed25519", key.sign(h)) for h in hashes]


def _flip(b: bytes, bit: int = 0) -> bytes:
    return bytes([b[0] ^ (1 << bit)]) + b[1:]


def _bad_items() -> list[Item]:
    """One good item, then one wrong each way a verifier must refuse."""
    good = _signed(1)[0]
    spki, h, alg, sig = good
    other = _spki(Ed25519PrivateKey.generate())
    p256 = ec.generate_private_key(ec.SECP256R1())
    return [
        good,
        (spki, h, alg, _flip(sig)),  # flipped bit in the signature
        (spki, _flip(h, 7), alg, sig),  # another statement
        (other, h, alg, sig),  # wrong key
        (spki, h, alg, sig[:-1]),  # truncated signature
        (spki, h, "ecdsa-p256-sha256", sig),  # wrong algorithm for the key
        (b"\x30\x00", h, alg, sig),  # not a key
        (_spki(p256), h, "ecdsa-p256-sha256", b"\x30\x06\x02\x01\x01\x02\x01\x01"),  # r=s=1
    ]


def test_the_process_says_what_verify_batch_says() -> None:
    items = _bad_items()
    want = verify_batch(items)
    assert want == [True] + [False] * 7

    async def check() -> list[bool]:
        process = SignatureProcess(asyncio.get_running_loop())
        try:
            return await process.verify(items)
        finally:
            process.close()

    assert asyncio.run(check()) == want


def test_requests_in_flight_together_each_get_their_own_answer() -> None:
    good = _signed(40)
    bad = [(s, h, a, _flip(sig)) for s, h, a, sig in good]
    requests = [good[:1], bad[:3], good[1:40], [], bad[3:4] + good[:2], bad]

    async def check() -> list[list[bool]]:
        process = signature_process()
        try:
            return await asyncio.gather(*(process.verify(r) for r in requests))
        finally:
            process.close()

    answers = asyncio.run(check())
    assert answers == [[True], [False] * 3, [True] * 39, [], [False, True, True], [False] * 40]


def test_one_process_per_loop_started_again_when_it_dies(caplog: pytest.LogCaptureFixture) -> None:
    items = _signed(3)

    async def check() -> None:
        first = signature_process()
        assert signature_process() is first
        assert await first.verify(items) == [True] * 3
        assert first.process.pid is not None
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.join(10)
        for _ in range(100):  # until the loop has read the end of the socket
            if first.gone:
                break
            await asyncio.sleep(0.02)
        assert first.gone
        assert "the signature process ended" in caplog.text  # said once, for the operator
        with pytest.raises(SignatureProcessGone):
            await first.verify(items)
        second = signature_process()
        assert second is not first
        assert await second.verify(items) == [True] * 3
        second.close()

    asyncio.run(check())


def test_a_request_held_when_the_process_dies_fails_rather_than_hangs() -> None:
    many = _signed(1) * 3000  # long enough to be under way when the kill arrives

    async def check() -> None:
        process = SignatureProcess(asyncio.get_running_loop())
        assert await process.verify(many[:1]) == [True]  # it has started
        pending = asyncio.ensure_future(process.verify(many))
        await asyncio.sleep(0.01)
        assert process.process.pid is not None
        os.kill(process.process.pid, signal.SIGKILL)
        with pytest.raises(SignatureProcessGone):
            await asyncio.wait_for(pending, 30)

    asyncio.run(check())


def test_the_process_ends_when_its_loop_lets_it_go() -> None:
    async def start() -> SignatureProcess:
        process = SignatureProcess(asyncio.get_running_loop())
        assert await process.verify(_signed(1)) == [True]
        process.close()
        return process

    process = asyncio.run(start())
    process.process.join(30)
    assert process.process.exitcode == 0


def test_a_stuck_process_is_let_go_and_its_requests_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alive but not answering (stopped): its requests fail after the deadline, not never."""
    monkeypatch.setattr(api.signatures, "ANSWER_SECONDS", 0.5)

    async def check() -> None:
        process = SignatureProcess(asyncio.get_running_loop())
        assert await process.verify(_signed(1)) == [True]
        assert process.process.pid is not None
        os.kill(process.process.pid, signal.SIGSTOP)
        with pytest.raises(SignatureProcessGone, match="no answer"):
            await asyncio.wait_for(process.verify(_signed(2)), 30)
        assert process.gone
        process.process.join(10)
        assert process.process.exitcode is not None  # killed, not left stopped

    asyncio.run(check())


def test_each_loop_has_its_own_process() -> None:
    async def pid() -> int | None:
        process = signature_process()
        try:
            assert await process.verify(_signed(1)) == [True]
            return process.process.pid
        finally:
            process.close()

    assert asyncio.run(pid()) != asyncio.run(pid())
    gc.collect()
    assert len(api.signatures._PROCESSES) == 0  # closed loops are let go
