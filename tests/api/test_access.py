"""Every route × every role (and none, a forged token, a revoked key): who may call what, as
DESIGN §9 says; a depositor keeps to its own deposits; judges' reads are recorded; a revoked or
expired signing key deposits nothing.

``ACCESS`` must name every operation of the OpenAPI document (the test fails on a new route
until someone decides who may call it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.service import Service
from tests.api.conftest import Lender
from tools.client import generate_key, load_private_key

PUBLIC = "public"
ACCESS: dict[tuple[str, str], str | frozenset[str]] = {
    ("POST", "/v1/deposits"): frozenset({"depositor"}),
    ("GET", "/v1/deposits/{code}/original"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/deposits/{code}/retrieve"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/deposits/{code}/bundle"): frozenset({"depositor", "judge", "auditor"}),
    ("GET", "/v1/cases/{contract_no}"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/cases/{contract_no}/check"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/cases/{contract_no}/certificate.pdf"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/cases/{contract_no}/package.zip"): frozenset({"depositor", "judge"}),
    ("GET", "/v1/deposits/{code}/certificate.pdf"): frozenset({"depositor", "judge", "auditor"}),
    ("POST", "/v1/admin/depositors"): frozenset({"admin"}),
    ("POST", "/v1/admin/depositors/{depositor}/keys"): frozenset({"admin"}),
    ("POST", "/v1/admin/depositors/{depositor}/keys/{key_id}/revoke"): frozenset({"admin"}),
    ("POST", "/v1/admin/api-keys"): frozenset({"admin"}),
    ("DELETE", "/v1/admin/api-keys/{key_id}"): frozenset({"admin"}),
    ("GET", "/v1/admin/access-log"): frozenset({"admin"}),
    ("POST", "/v1/admin/backup"): frozenset({"admin"}),
    ("GET", "/metrics"): frozenset({"admin", "auditor"}),
    ("GET", "/v1/deposits/{code}"): PUBLIC,
    ("GET", "/v1/digests/{digest}"): PUBLIC,
    ("GET", "/v1/indexes/code/{code}"): PUBLIC,
    ("GET", "/v1/indexes/digest/{digest}"): PUBLIC,
    ("POST", "/v1/indexes/lookup"): PUBLIC,
    ("GET", "/v1/checkpoints"): PUBLIC,
    ("GET", "/v1/depositors"): PUBLIC,
    ("POST", "/v1/verify"): PUBLIC,
    ("POST", "/v1/verify/file"): PUBLIC,
    ("GET", "/v1/checkpoint"): PUBLIC,
    ("GET", "/v1/checkpoints/{size}"): PUBLIC,
    ("POST", "/v1/checkpoints/{size}/cosignatures"): PUBLIC,
    ("GET", "/v1/checkpoints/{size}/timestamp"): PUBLIC,
    ("GET", "/v1/proofs/inclusion"): PUBLIC,
    ("GET", "/v1/proofs/consistency"): PUBLIC,
    ("GET", "/tile/{path}"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
}
CALLERS = ("none", "forged", "revoked", "depositor", "judge", "auditor", "admin")


@pytest.fixture
def tokens(service: Service, lender: Lender) -> dict[str, str]:
    keys = service.api_keys
    revoked = keys.issue("admin", label="former admin")
    keys.revoke(revoked.removeprefix("czk_")[:16])
    return {
        "admin": (service.config.data_dir / "admin-token").read_text(),
        "depositor": keys.issue("depositor", depositor="lender-1", label="lender-1 system"),
        "judge": keys.issue("judge", label="张法官"),
        "auditor": keys.issue("auditor", label="auditor"),
        "revoked": revoked,
        "forged": "czk_0123456789abcdef_" + "x" * 43,
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_table_names_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert routes == set(ACCESS), {"undecided": routes - set(ACCESS), "gone": set(ACCESS) - routes}


def test_every_route_by_every_caller(
    client: TestClient, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "matrix.pdf"
    path.write_bytes(b"%PDF matrix")
    r = client.post("/v1/deposits", json=lender.deposit(path, contract_no="HT9").to_object(),
                    headers=auth(tokens["depositor"]))  # fmt: skip
    code = r.json()["receipts"][0]["code"]
    values = {"code": code, "digest": "sha256:" + "00" * 32, "contract_no": "HT9",
              "depositor": "lender-1", "key_id": "k1", "size": "1", "path": "0/000"}  # fmt: skip
    checked = 0
    for (method, template), allowed in ACCESS.items():
        url = template.format(**values)
        for caller in CALLERS:
            headers = {} if caller == "none" else auth(tokens[caller])
            r = client.request(method, url, headers=headers, json={})
            where = (method, url, caller, r.status_code, r.text[:200])
            assert r.status_code < 500, where
            if allowed == PUBLIC or caller in allowed:
                assert r.status_code not in (401, 403), where
            elif caller in ("none", "forged", "revoked"):
                assert r.status_code == 401, where
                assert r.json()["code"] == "unauthenticated", where
            else:
                assert r.status_code == 403, where
                assert r.json()["code"] == "forbidden", where
            checked += 1
    assert checked == len(ACCESS) * len(CALLERS)


def test_a_depositor_keeps_to_its_own(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    service.registry.register("lender-2", "另一家")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-2", public, key_id="k2", not_before=0)
    other = Lender("lender-2", load_private_key(private), "k2")
    other_token = service.api_keys.issue("depositor", depositor="lender-2")
    path = tmp_path / "own.pdf"
    path.write_bytes(b"%PDF lender-1's own")
    # Depositing as another: refused, whichever key signed.
    for deposit in (lender.deposit(path), other.deposit(path)):
        r = client.post("/v1/deposits", json=deposit.to_object(), headers=auth(other_token))
        if deposit.statement.depositor == "lender-1":
            assert (r.status_code, r.json()["code"]) == (403, "wrong_depositor")
    assert service.ledger.head_size() == 1  # only lender-2's own
    r = client.post("/v1/deposits", json=lender.deposit(path).to_object(),
                    headers=auth(tokens["depositor"]))  # fmt: skip
    code = r.json()["receipts"][0]["code"]
    for what in ("bundle", "retrieve", "original", "certificate.pdf"):
        theirs = client.get(f"/v1/deposits/{code}/{what}", headers=auth(other_token))
        assert theirs.status_code == 404, (what, theirs.text)
    assert client.get(f"/v1/deposits/{code}/bundle", headers=auth(tokens["depositor"])).is_success


def test_judges_reads_are_recorded_with_who_and_what(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    data = b"%PDF judged"
    path = tmp_path / "judged.pdf"
    path.write_bytes(data)
    request = json.dumps(lender.deposit(path, contract_no="HT42").to_object())
    r = client.post("/v1/deposits", data={"deposit": request}, files={"file": ("j.pdf", data)},
                    headers=auth(tokens["depositor"]))  # fmt: skip
    code = r.json()["receipts"][0]["code"]
    judge = auth(tokens["judge"])
    assert client.get(f"/v1/deposits/{code}/retrieve", headers=judge).status_code == 200
    assert client.get(f"/v1/deposits/{code}/original", headers=judge).content == data
    # The depositor reading its own, and public lookups, are not judges' accesses.
    client.get(f"/v1/deposits/{code}/retrieve", headers=auth(tokens["depositor"]))
    client.get(f"/v1/deposits/{code}")
    log = client.get("/v1/admin/access-log", headers=auth(tokens["admin"])).json()["accesses"]
    judge_id = tokens["judge"].removeprefix("czk_")[:16]
    reads = [(a["what"], a["code"], a["key_id"], a["label"]) for a in log if a["code"] == code]
    assert reads == [("retrieve", code, judge_id, "张法官"), ("original", code, judge_id, "张法官")]
    assert all(a["at"] > 0 for a in log)


def test_expired_and_revoked_signing_keys_deposit_nothing(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    admin = auth(tokens["admin"])
    private, public = generate_key("ed25519")
    r = client.post("/v1/admin/depositors/lender-1/keys", headers=admin,
                    json={"public_key": public.decode(), "key_id": "old", "not_before": 0,
                          "not_after": 1_000})  # fmt: skip
    assert r.status_code == 201, r.text
    expired = Lender("lender-1", load_private_key(private), "old")
    path = tmp_path / "k.pdf"
    path.write_bytes(b"%PDF keys")
    r = client.post("/v1/deposits", json=expired.deposit(path).to_object(),
                    headers=auth(tokens["depositor"]))  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (403, "key_not_valid"), r.text
    r = client.post("/v1/admin/depositors/lender-1/keys/k1/revoke", headers=admin, json={})
    assert r.status_code == 200, r.text
    r = client.post("/v1/deposits", json=lender.deposit(path).to_object(),
                    headers=auth(tokens["depositor"]))  # fmt: skip
    assert (r.status_code, r.json()["code"]) == (403, "key_not_valid"), r.text
    assert service.ledger.head_size() == 0
    digest = "sha256:" + hashlib.sha256(b"%PDF keys").hexdigest()
    assert client.post("/v1/verify", json={"digest": digest}).json()["verdict"] == "NOT_FOUND"


def test_a_revoked_api_key_is_refused_at_once(
    client: TestClient, service: Service, tokens: dict[str, str]
) -> None:
    admin = auth(tokens["admin"])
    token = client.post("/v1/admin/api-keys", json={"role": "auditor"}, headers=admin).json()
    metrics = client.get("/metrics", headers=auth(token["token"]))
    assert metrics.status_code == 200
    key_id = token["token"].removeprefix("czk_")[:16]
    assert client.delete(f"/v1/admin/api-keys/{key_id}", headers=admin).status_code == 204
    again = client.get("/metrics", headers=auth(token["token"]))
    assert (again.status_code, again.json()["code"]) == (401, "unauthenticated")
    twice = client.delete(f"/v1/admin/api-keys/{key_id}", headers=admin)
    assert twice.status_code == 409


def test_an_expired_api_key_is_refused(
    client: TestClient, service: Service, tokens: dict[str, str]
) -> None:
    admin = auth(tokens["admin"])
    now = service.api_keys.clock()
    past = client.post("/v1/admin/api-keys", json={"role": "auditor", "expires_at": now - 1},
                       headers=admin)  # fmt: skip
    assert (past.status_code, past.json()["code"]) == (400, "invalid_input")
    soon = client.post("/v1/admin/api-keys", json={"role": "auditor", "expires_at": now + 60_000},
                       headers=admin).json()["token"]  # fmt: skip
    assert client.get("/metrics", headers=auth(soon)).status_code == 200
    clock = service.api_keys.clock
    service.api_keys.clock = lambda: clock() + 61_000  # a minute later
    try:
        late = client.get("/metrics", headers=auth(soon))
        assert (late.status_code, late.json()["code"]) == (401, "unauthenticated")
        assert client.get("/metrics", headers=admin).status_code == 200  # no expiry: still good
    finally:
        service.api_keys.clock = clock
    listed = {k.id: k for k in service.api_keys.list()}
    assert listed[soon.removeprefix("czk_")[:16]].expires_at == now + 60_000
