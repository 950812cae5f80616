"""Uploads are read as they arrive: hashed while received, refused as soon as they outgrow their
limit (not after the whole body came), in either order of fields, and never half-kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from api.app import Limits, create_app
from api.service import Service
from tests.api.conftest import Lender

BOUNDARY = "cunzheng-test-boundary"
CHUNK = 64 << 10


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n").encode() + value + b"\r\n"
    )


def post(
    service: Service, path: str, body: AsyncIterator[bytes], headers: dict[str, str] | None = None
) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(service, limits=Limits()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                path, content=body,
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                         **(headers or {})},
            )  # fmt: skip

    return asyncio.run(go())


def depositor_token(service: Service) -> dict[str, str]:
    token = service.api_keys.issue("depositor", depositor="lender-1", label="uploads")
    return {"Authorization": f"Bearer {token}"}


def test_an_original_larger_than_declared_is_refused_before_the_rest_arrives(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    path = tmp_path / "small.pdf"
    path.write_bytes(b"%PDF-1.7 ten bytes")
    deposit = json.dumps(lender.deposit(path).to_object()).encode()
    sent = [0]

    async def body() -> AsyncIterator[bytes]:
        yield part("deposit", deposit)
        yield part("file", b"", "a.pdf")[: -len(b"\r\n")]  # the file part's head; data follows
        for _ in range(200):  # 12.5 MiB, far more than the 18 bytes declared
            sent[0] += 1
            yield b"x" * CHUNK
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    r = post(service, "/v1/deposits", body(), depositor_token(service))
    assert (r.status_code, r.json()["code"]) == (422, "original_mismatch"), r.text
    assert sent[0] < 5, f"{sent[0]} chunks were read after the file outgrew its statement"
    assert service.ledger.head_size() == 0
    assert service.store.original(lender.deposit(path).statement.digest.index_key) is None


def test_the_file_may_come_before_the_deposit(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    data = b"%PDF-1.7 file first"
    path = tmp_path / "first.pdf"
    path.write_bytes(data)
    deposit = lender.deposit(path)

    async def body() -> AsyncIterator[bytes]:
        yield part("file", data, "first.pdf")
        yield part("deposit", json.dumps(deposit.to_object()).encode())
        yield f"--{BOUNDARY}--\r\n".encode()

    r = post(service, "/v1/deposits", body(), depositor_token(service))
    assert r.status_code == 201, r.text
    kept = service.store.original(deposit.statement.digest.index_key)
    assert kept is not None and b"".join(kept) == data


def test_verify_upload_is_hashed_as_received_in_either_order(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    data = b"%PDF-1.7 verify me"
    path = tmp_path / "v.pdf"
    path.write_bytes(data)
    (receipt,) = service.sequencer.append([lender.deposit(path)])
    code = str(receipt.code).encode()
    for order in ([("code", code, None), ("file", data, "v.pdf")],
                  [("file", data, "v.pdf"), ("code", code, None)]):  # fmt: skip

        async def body(parts: list[tuple[str, bytes, str | None]] = order) -> AsyncIterator[bytes]:
            for name, value, filename in parts:
                yield part(name, value, filename)
            yield f"--{BOUNDARY}--\r\n".encode()

        r = post(service, "/v1/verify/file", body())
        assert r.json()["verdict"] == "VERIFIED", r.text
        assert r.json()["index"] == receipt.index


def test_malformed_and_unexpected_multipart_is_a_clear_400(service: Service) -> None:
    async def unexpected() -> AsyncIterator[bytes]:
        yield part("colour", b"blue")
        yield f"--{BOUNDARY}--\r\n".encode()

    async def cut_off() -> AsyncIterator[bytes]:
        yield part("file", b"partial", "p.pdf")[:-10]

    async def two_files() -> AsyncIterator[bytes]:
        yield part("file", b"one", "1.pdf")
        yield part("file", b"two", "2.pdf")
        yield f"--{BOUNDARY}--\r\n".encode()

    for body in (unexpected(), cut_off(), two_files()):
        r = post(service, "/v1/verify/file", body)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid_input"
