"""The HTTP API in-process: deposits, lookups, verification, the public log, roles, problems."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Service
from ledger.code import parse_code
from ledger.merkle import leaf_hash
from tests.api.conftest import Lender, wait_stamped
from verifier.proof import verify_inclusion


@pytest.fixture
def tokens(service: Service, lender: Lender) -> dict[str, str]:
    keys = service.api_keys
    return {
        "admin": (service.config.data_dir / "admin-token").read_text(),
        "depositor": keys.issue("depositor", depositor="lender-1", label="lender-1 system"),
        "judge": keys.issue("judge", label="张法官 (test)"),
        "auditor": keys.issue("auditor", label="auditor"),
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def deposit_file(
    client: TestClient, lender: Lender, tokens: dict[str, str], tmp_path: Path, data: bytes
) -> dict[str, object]:
    path = tmp_path / f"{hashlib.sha256(data).hexdigest()[:8]}.pdf"
    path.write_bytes(data)
    r = client.post("/v1/deposits", json=lender.deposit(path, contract_no="HT1").to_object(),
                    headers=auth(tokens["depositor"]))  # fmt: skip
    assert r.status_code == 201, r.text
    receipt: dict[str, object] = r.json()["receipts"][0]
    return receipt


def test_a_sealed_lookup_is_answered_from_the_same_bytes(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    receipt = deposit_file(client, lender, tokens, tmp_path, b"%PDF-1.7 sealed once")
    code, index = str(receipt["code"]), int(str(receipt["index"]))
    wait_stamped(service)
    first = client.get(f"/v1/deposits/{code}")
    assert first.json()["verdict"] == "VERIFIED"
    kept = service.reports.answer((index, None, parse_code(code).bits))
    assert kept == ("VERIFIED", first.content)  # kept once sealed
    again = client.get(f"/v1/deposits/{code.lower()}")
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert client.get(f"/v1/deposits/{code[:-1]}").status_code == 400  # check char missing
    good = "sha256:" + hashlib.sha256(b"%PDF-1.7 sealed once").hexdigest()
    bad = "sha256:" + hashlib.sha256(b"another file").hexdigest()
    answers = {}
    for digest in (good, bad, good, bad):
        r = client.post("/v1/verify", json={"code": code, "digest": digest})
        assert answers.setdefault(digest, r.content) == r.content  # the same bytes again
    assert json.loads(answers[good])["verdict"] == "VERIFIED"
    assert json.loads(answers[bad])["verdict"] == "MISMATCH"
    verdicts = client.get("/metrics", headers=auth(tokens["auditor"])).text
    assert 'verdict="MISMATCH"} 2' in verdicts, verdicts


def test_deposit_then_verify(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    data = "%PDF-1.7 借款合同 HT1".encode()
    receipt = deposit_file(client, lender, tokens, tmp_path, data)
    wait_stamped(service)
    code = str(receipt["code"])
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    typed = code.lower().replace("-", " ")
    looked = client.get(f"/v1/deposits/{typed}").json()
    assert looked["verdict"] == "VERIFIED" and looked["kind_zh"] == "借款合同"
    assert looked["trusted_time"] and looked["depositor"] == "lender-1"
    ok = client.post("/v1/verify", json={"code": code, "digest": digest}).json()
    assert ok["verdict"] == "VERIFIED" and ok["verdict_zh"] == "核验通过"
    other = "sha256:" + hashlib.sha256(b"forged").hexdigest()
    bad = client.post("/v1/verify", json={"code": code, "digest": other}).json()
    assert bad["verdict"] == "MISMATCH" and bad["verdict_zh"] == "比对结果不一致"
    missing = client.post("/v1/verify", json={"digest": other}).json()
    assert missing["verdict"] == "NOT_FOUND" and missing["verdict_zh"] == "尚未存证"
    by_digest = client.get(f"/v1/digests/{digest}").json()["deposits"]
    assert [d["index"] for d in by_digest] == [receipt["index"]]
    # The receipt carries its proof; the public proof endpoint agrees with it.
    size = int(str(receipt["tree_size"]))
    proof = client.get("/v1/proofs/inclusion", params={"index": receipt["index"], "size": size})
    hashes = [base64.b64decode(h) for h in proof.json()["hashes"]]
    assert proof.json()["hashes"] == receipt["inclusion_proof"]
    root = base64.b64decode(str(receipt["checkpoint"]).split("\n")[2])
    leaf = base64.b64decode(str(receipt["leaf_hash"]))
    index = int(str(receipt["index"]))
    verify_inclusion(index=index, size=size, leaf_hash=leaf, path=hashes, root=root)


def test_retrieve_is_for_judges_and_logged(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    code = deposit_file(client, lender, tokens, tmp_path, b"%PDF x")["code"]
    r = client.get(f"/v1/deposits/{code}/retrieve", headers=auth(tokens["judge"]))
    assert r.status_code == 200
    assert r.json()["meta"]["meta"]["contract_no"] == "HT1"
    assert (
        client.get(f"/v1/deposits/{code}/retrieve", headers=auth(tokens["auditor"])).status_code
        == 403
    )
    log = client.get("/v1/admin/access-log", headers=auth(tokens["admin"])).json()["accesses"]
    assert [(a["code"], a["label"]) for a in log] == [(code, "张法官 (test)")]
    public = client.get(f"/v1/deposits/{code}").text
    assert "HT1" not in public  # no private meta in public answers


def test_public_log_endpoints(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    receipts = [deposit_file(client, lender, tokens, tmp_path, b"f%d" % i) for i in range(3)]
    wait_stamped(service)
    note = client.get("/v1/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    size = int(note.text.split("\n")[1])
    assert size == 3
    assert client.get(f"/v1/checkpoints/{size}/timestamp").status_code == 200
    tile = client.get("/tile/0/000.p/3").content
    assert tile == b"".join(base64.b64decode(str(r["leaf_hash"])) for r in receipts)
    bundle = client.get("/tile/entries/000.p/3").content
    leaves, at = [], 0
    while at < len(bundle):
        (n,) = struct.unpack(">H", bundle[at : at + 2])
        leaves.append(bundle[at + 2 : at + 2 + n])
        at += 2 + n
    assert [leaf_hash(x) for x in leaves] == [
        base64.b64decode(str(r["leaf_hash"])) for r in receipts
    ]
    assert client.get("/tile/0/000.p/4").status_code == 404
    assert client.get("/tile/0/000.p/300").status_code == 400
    c = client.get("/v1/proofs/consistency", params={"old": 1, "new": 3}).json()
    assert c["old_size"] == 1 and len(c["hashes"]) >= 1
    assert client.get("/healthz").json()["entries_waiting_for_time_stamp"] == 0


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (("GET", "/v1/deposits/CZ-0000-0000-0000-0000-8", None), 400, "invalid_deposit_code"),
        (("GET", "/v1/deposits/CZ-0000-0000-0000-0000-9", None), 404, "not_found"),
        (("GET", "/v1/digests/md5:00", None), 400, "invalid_digest"),
        (("POST", "/v1/verify", {}), 400, "invalid_input"),
        (("POST", "/v1/verify", {"code": 5}), 422, "invalid_request"),
        (("GET", "/v1/proofs/inclusion?index=5&size=2", None), 400, "invalid_proof_request"),
        (("GET", "/v1/proofs/inclusion?index=0&size=99", None), 400, "invalid_proof_request"),
        (("GET", "/nowhere", None), 404, "not_found"),
        (("GET", "/tile/0/../etc", None), 400, "invalid_input"),
    ],
)
def test_problems(
    client: TestClient, request_: tuple[str, str, object], status: int, code: str
) -> None:
    method, url, body = request_
    r = client.request(method, url, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == code and problem["status"] == status
    assert problem["title"] and problem["title_zh"]


def test_deposit_refusals_write_nothing(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(b"x")
    good = lender.deposit(path).to_object()
    h = auth(tokens["depositor"])
    forged = json.loads(json.dumps(good))
    forged["statement"]["depositor"] = "lender-2"
    bad_sig = {**good["sig"], "value": base64.b64encode(b"x" * 64).decode()}
    cases = [
        (b"{", 400, "invalid_input"),
        (json.dumps({"deposits": []}).encode(), 400, "invalid_input"),
        (json.dumps({"deposits": [good] * 5001}).encode(), 413, "too_large"),
        (json.dumps(forged).encode(), 403, "wrong_depositor"),
        (json.dumps({**good, "sig": bad_sig}).encode(), 422, "signature_invalid"),
    ]
    for body, status, code in cases:
        r = client.post(
            "/v1/deposits", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert service.ledger.head_size() == 0


def without_signature_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the signature process could not be started: the app checks signatures itself."""
    import api.app
    from api.signatures import SignatureProcessGone

    def gone() -> None:
        raise SignatureProcessGone("cannot start")

    monkeypatch.setattr(api.app, "signature_process", gone)


@pytest.mark.parametrize("process", ["there", "gone"])
def test_a_batch_with_one_wrong_signature_is_refused_whole_and_says_where(
    client: TestClient,
    service: Service,
    lender: Lender,
    tokens: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    process: str,
) -> None:
    """A batch's signatures are checked in the signature process a chunk at a time (or in
    the batch's thread without it); the first wrong one is named by its position, and nothing
    of the batch is written."""
    import api.app

    monkeypatch.setattr(api.app, "BATCH_CHUNK", 2)  # three chunks
    if process == "gone":
        without_signature_process(monkeypatch)
    bodies = []
    for n in range(6):
        path = tmp_path / f"b{n}.pdf"
        path.write_bytes(b"batch %d" % n)
        bodies.append(lender.deposit(path).to_object())
    h = auth(tokens["depositor"])
    for wrong in (0, 4):
        batch = json.loads(json.dumps(bodies))
        value = bytearray(base64.b64decode(batch[wrong]["sig"]["value"]))
        value[10] ^= 0x01
        batch[wrong]["sig"]["value"] = base64.b64encode(bytes(value)).decode()
        r = client.post("/v1/deposits", json={"deposits": batch}, headers=h)
        assert (r.status_code, r.json()["code"]) == (422, "signature_invalid"), r.text
        assert r.json()["details"]["position"] == wrong, r.text
    assert service.ledger.head_size() == 0
    r = client.post("/v1/deposits", json={"deposits": bodies}, headers=h)
    assert r.status_code == 201, r.text
    receipts = r.json()["receipts"]
    assert [x["index"] for x in receipts] == list(range(6))
    for x in receipts:  # proofs made together for the batch, each one right
        verify_inclusion(
            index=x["index"],
            size=x["tree_size"],
            leaf_hash=base64.b64decode(x["leaf_hash"]),
            root=service.ledger.root(x["tree_size"]),
            path=[base64.b64decode(h) for h in x["inclusion_proof"]],
        )


ROUTES = [
    ("POST", "/v1/deposits", {"depositor"}),
    ("GET", "/v1/deposits/{code}/bundle", {"depositor", "judge", "auditor"}),
    ("GET", "/v1/deposits/{code}/retrieve", {"judge", "depositor"}),
    ("GET", "/v1/deposits/{code}/original", {"judge", "depositor"}),
    ("POST", "/v1/admin/depositors", {"admin"}),
    ("POST", "/v1/admin/depositors/lender-1/keys", {"admin"}),
    ("POST", "/v1/admin/depositors/lender-1/keys/k1/revoke", {"admin"}),
    ("POST", "/v1/admin/api-keys", {"admin"}),
    ("DELETE", "/v1/admin/api-keys/0000000000000000", {"admin"}),
    ("GET", "/v1/admin/access-log", {"admin"}),
    ("GET", "/v1/deposits/{code}", "public"),
    ("POST", "/v1/verify", "public"),
    ("GET", "/v1/checkpoint", "public"),
    ("POST", "/v1/indexes/lookup", "public"),
]


def test_role_matrix(
    client: TestClient, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    code = deposit_file(client, lender, tokens, tmp_path, b"matrix")["code"]
    for method, url, allowed in ROUTES:
        for role in (None, "depositor", "judge", "auditor", "admin", "bogus"):
            headers = {} if role is None else auth(tokens.get(role, "czk_0000000000000000_x"))
            r = client.request(method, url.format(code=code), headers=headers, json={})
            if allowed == "public" or role in allowed:
                assert r.status_code not in (401, 403), (method, url, role, r.text)
            elif role in (None, "bogus"):
                assert r.status_code == 401, (method, url)
            else:
                assert r.status_code == 403, (method, url, role, r.text)
            assert r.status_code < 500, (method, url, role, r.text)


def test_verify_an_uploaded_file(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    data = b"%PDF-1.7 uploaded"
    code = deposit_file(client, lender, tokens, tmp_path, data)["code"]
    same = client.post("/v1/verify/file", data={"code": code}, files={"file": ("a.pdf", data)})
    assert same.status_code == 200, same.text
    assert same.json()["verdict"] == "VERIFIED", same.text
    other = client.post("/v1/verify/file", data={"code": code}, files={"file": ("b.pdf", b"x")})
    assert other.json()["verdict"] == "MISMATCH"
    alone = client.post("/v1/verify/file", files={"file": ("c.pdf", data)})
    assert alone.json()["verdict"] == "VERIFIED"
    unknown = client.post("/v1/verify/file", files={"file": ("d.pdf", b"never deposited")})
    assert unknown.json()["verdict"] == "NOT_FOUND"
    no_file = client.post("/v1/verify/file", data={"code": code})
    assert no_file.status_code == 400 and no_file.json()["code"] == "invalid_input"


def test_deposit_with_its_original(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    data = b"%PDF-1.7 original kept"
    path = tmp_path / "kept.pdf"
    path.write_bytes(data)
    request = json.dumps(lender.deposit(path).to_object())
    h = auth(tokens["depositor"])
    forged_file = {"file": ("kept.pdf", b"%PDF-1.7 something else")}
    wrong = client.post("/v1/deposits", data={"deposit": request}, files=forged_file, headers=h)
    assert (wrong.status_code, wrong.json()["code"]) == (422, "original_mismatch")
    assert service.ledger.head_size() == 0
    r = client.post("/v1/deposits", data={"deposit": request}, files={"file": ("kept.pdf", data)},
                    headers=h)  # fmt: skip
    assert r.status_code == 201, r.text
    code = r.json()["receipts"][0]["code"]
    got = client.get(f"/v1/deposits/{code}/original", headers=auth(tokens["judge"]))
    assert got.content == data and got.headers["content-type"] == "application/pdf"
    assert (
        client.get(f"/v1/deposits/{code}/original", headers=auth(tokens["auditor"])).status_code
        == 403
    )
    log = client.get("/v1/admin/access-log", headers=auth(tokens["admin"])).json()["accesses"]
    assert [a["what"] for a in log] == ["original"]
    other = deposit_file(client, lender, tokens, tmp_path, b"no original")["code"]
    missing = client.get(f"/v1/deposits/{other}/original", headers=auth(tokens["judge"]))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_limits_are_settable(service: Service, lender: Lender, tmp_path: Path) -> None:
    from api.app import Limits

    app = create_app(service, limits=Limits(max_batch=2, max_body_bytes=4096))
    token = service.api_keys.issue("depositor", depositor="lender-1")
    path = tmp_path / "e.pdf"
    path.write_bytes(b"e")
    one = lender.deposit(path).to_object()
    with TestClient(app) as c:
        r = c.post("/v1/deposits", json={"deposits": [one] * 3}, headers=auth(token))
        assert (r.status_code, r.json()["code"]) == (413, "too_large")
        big = c.post("/v1/deposits", content=b"{" + b" " * 5000 + b"}", headers=auth(token))
        assert (big.status_code, big.json()["code"]) == (413, "too_large")
        # Undeclared lengths (chunked): read piece by piece, refused once past the limit.
        body = json.dumps(one).encode()
        pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
        assert len(pieces) > 2 and len(body) < 4096
        r = c.post("/v1/deposits", content=iter(pieces), headers=auth(token))
        assert r.status_code == 201 and r.json()["receipts"][0]["index"] == 0
        flood = iter([b"[" + b" " * 1000] * 5)
        r = c.post("/v1/deposits", content=flood, headers=auth(token))
        assert (r.status_code, r.json()["code"]) == (413, "too_large")


def test_a_body_cut_off_or_empty_is_refused_and_writes_nothing(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    """The body is read from the ASGI messages: a client gone before its body ended, and an
    empty body, get a problem (400), and nothing is deposited."""
    import asyncio

    app = create_app(service)
    token = service.api_keys.issue("depositor", depositor="lender-1")
    path = tmp_path / "e.pdf"
    path.write_bytes(b"e")
    body = json.dumps(lender.deposit(path).to_object()).encode()

    def post(messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/deposits",
            "raw_path": b"/v1/deposits", "query_string": b"", "root_path": "",
            "headers": [(b"authorization", f"Bearer {token}".encode()),
                        (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        asyncio.run(app(scope, receive, send))
        start, content = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], json.loads(content)

    cut = [{"type": "http.request", "body": body[:50], "more_body": True}]
    status, problem = post(cut)
    assert (status, problem["code"]) == (400, "invalid_input") and "cut off" in problem["detail"]
    status, problem = post([{"type": "http.request"}])  # no body at all
    assert (status, problem["code"]) == (400, "invalid_input")
    assert service.ledger.head_size() == 0
    status, _ = post([{"type": "http.request", "body": body[:50], "more_body": True},
                      {"type": "http.request", "body": body[50:]}])  # fmt: skip
    assert status == 201 and service.ledger.head_size() == 1


@pytest.mark.parametrize("process", ["there", "gone"])
def test_single_deposits_arriving_together_share_a_block_and_refusals_stay_their_own(
    service: Service,
    lender: Lender,
    tokens: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    process: str,
) -> None:
    """Single deposits parsed in one turn of the event loop are admitted one by one (their
    signatures sent to the signature process in chunks as they come) and committed as one
    block; a bad signature among them is refused alone. Without the signature process, the
    loop checks them itself, with the same outcome."""
    import asyncio

    import httpx

    import api.app

    if process == "gone":
        without_signature_process(monkeypatch)
    count = 2 * api.app.CHUNK + 8  # three chunks, the last one short
    wrong = {5, api.app.CHUNK, count - 1}
    bodies = []
    for n in range(count):
        path = tmp_path / f"c{n}.pdf"
        path.write_bytes(b"%%PDF together %d" % n)
        bodies.append(lender.deposit(path).to_object())
    for n in wrong:
        bodies[n]["sig"] = {**bodies[n]["sig"], "value": base64.b64encode(b"x" * 64).decode()}
    blocks = service.sequencer.blocks

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await asyncio.gather(
                *(http.post("/v1/deposits", json=b, headers=auth(tokens["depositor"]))
                  for b in bodies)
            )  # fmt: skip

    responses = asyncio.run(send_all())
    statuses = [r.status_code for r in responses]
    assert statuses == [422 if n in wrong else 201 for n in range(count)], [
        r.text for r in responses
    ]
    assert {responses[n].json()["code"] for n in wrong} == {"signature_invalid"}
    receipts = [r.json()["receipts"][0] for n, r in enumerate(responses) if n not in wrong]
    assert sorted(r["index"] for r in receipts) == list(range(count - len(wrong)))
    assert service.sequencer.blocks - blocks < 4  # grouped, not one block per request
    for r in receipts:
        proof = [base64.b64decode(h) for h in r["inclusion_proof"]]
        verify_inclusion(
            index=r["index"],
            size=r["tree_size"],
            leaf_hash=base64.b64decode(r["leaf_hash"]),
            root=service.ledger.root(r["tree_size"]),
            path=proof,
        )
