"""Certificates and court packages over HTTP: who may fetch them, what comes back, and that a
judge's fetch is recorded."""

from __future__ import annotations

import io
import json
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Service
from court.certificate import judge_url
from tests.api.conftest import Lender, wait_stamped
from tests.cases.samples import pdf_bytes, png_bytes
from tests.court.conftest import pdf_text, qr_codes
from verifier.package import verify_package

CONTRACT = "HT-2026-0042"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def case_codes(
    client: TestClient, service: Service, lender: Lender, tmp_path: Path
) -> dict[str, str]:
    """Three deposits of one case through the API, originals sent with two of them; name →
    code."""
    token = service.api_keys.issue("depositor", depositor="lender-1")
    codes = {}
    files = {"借款合同.pdf": ("loan_contract", pdf_bytes("HT-2026-0042"), True),
             "放款凭证.png": ("disbursement_voucher", png_bytes(3), True),
             "借款借据.pdf": ("loan_voucher", pdf_bytes("IOU 0042"), False)}  # fmt: skip
    for name, (kind, data, send) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        request = lender.deposit(path, kind=kind, contract_no=CONTRACT).to_object()
        if send:
            r = client.post("/v1/deposits", data={"deposit": json.dumps(request)},
                            files={"file": (name, data)}, headers=auth(token))  # fmt: skip
        else:
            r = client.post("/v1/deposits", json=request, headers=auth(token))
        assert r.status_code == 201, r.text
        codes[name] = r.json()["receipts"][0]["code"]
    wait_stamped(service)
    return codes


def test_a_deposit_certificate_for_its_depositor_a_judge_or_an_auditor(
    client: TestClient, service: Service, case_codes: dict[str, str]
) -> None:
    code = case_codes["借款合同.pdf"]
    for role in ("depositor", "judge", "auditor"):
        token = service.api_keys.issue(role, depositor="lender-1" if role == "depositor" else None)
        r = client.get(f"/v1/deposits/{code.lower()}/certificate.pdf", headers=auth(token))
        assert r.status_code == 200, (role, r.text)
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-")
        disposition = r.headers["content-disposition"]
        assert urllib.parse.quote(f"存证证书-{code}.pdf") in disposition
    missing = client.get("/v1/deposits/CZ-0000-0000-0000-0000-9/certificate.pdf",
                         headers=auth(service.api_keys.issue("judge")))  # fmt: skip
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    assert client.get(f"/v1/deposits/{code}/certificate.pdf").status_code == 401


def test_a_judge_fetches_the_case_certificate_and_package_and_is_recorded(
    client: TestClient, service: Service, case_codes: dict[str, str]
) -> None:
    judge_token = service.api_keys.issue("judge", label="李法官")
    judge = auth(judge_token)
    r = client.get(f"/v1/cases/{CONTRACT}/certificate.pdf", headers=judge)
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"%PDF-")

    r = client.get(f"/v1/cases/{CONTRACT}/package.zip", headers=judge)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == len(r.content)
    report = verify_package(io.BytesIO(r.content), log_keys=[service.log_verifier],
                            tsa_roots=service.tsa_roots)  # fmt: skip
    assert report.verdict == "VERIFIED", [c.to_object() for c in report.failures]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        catalog = json.loads(zf.read("catalog.json"))
    assert [i["code"] for i in catalog["items"]] == list(case_codes.values())
    assert [i["file"] is not None for i in catalog["items"]] == [True, True, False]

    admin = auth((service.config.data_dir / "admin-token").read_text())
    log = client.get("/v1/admin/access-log", headers=admin).json()["accesses"]
    judge_id = judge_token.removeprefix("czk_")[:16]
    mine = [a for a in log if a["key_id"] == judge_id]
    assert {a["what"] for a in mine} == {"case_certificate", "case_package"}
    per_deposit = sorted(a["code"] for a in mine if a.get("code"))
    assert per_deposit == sorted(case_codes.values())  # every deposit the package carries


def test_a_depositor_gets_its_own_case_only(
    client: TestClient, service: Service, case_codes: dict[str, str]
) -> None:
    own = auth(service.api_keys.issue("depositor", depositor="lender-1"))
    assert client.get(f"/v1/cases/{CONTRACT}/certificate.pdf", headers=own).status_code == 200
    service.registry.register("lender-2", "另一家")
    other = auth(service.api_keys.issue("depositor", depositor="lender-2"))
    for what in ("certificate.pdf", "package.zip"):
        r = client.get(f"/v1/cases/{CONTRACT}/{what}", headers=other)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
    auditor = auth(service.api_keys.issue("auditor"))
    assert client.get(f"/v1/cases/{CONTRACT}/package.zip", headers=auditor).status_code == 403
    judge = auth(service.api_keys.issue("judge"))
    assert client.get("/v1/cases/HT-none/package.zip", headers=judge).status_code == 404


def test_links_and_qr_codes_come_from_public_url_never_the_host_header(
    service: Service, case_codes: dict[str, str], tmp_path: Path
) -> None:
    """A depositor sending ``Host: evil.example`` still gets certificates whose QR codes and
    links open the depository's own judge's page."""
    public = "https://cunzheng.example.cn/"
    forged = {"Host": "evil.example"}
    own = auth(service.api_keys.issue("depositor", depositor="lender-1")) | forged
    code = case_codes["借款合同.pdf"]
    with TestClient(create_app(service, public_url=public)) as c:
        deposit = c.get(f"/v1/deposits/{code}/certificate.pdf", headers=own)
        case = c.get(f"/v1/cases/{CONTRACT}/certificate.pdf", headers=own)
        package = c.get(f"/v1/cases/{CONTRACT}/package.zip", headers=own)
    for r in (deposit, case, package):
        assert r.status_code == 200, r.text
    pdfs = {"deposit": deposit.content, "case": case.content}
    with zipfile.ZipFile(io.BytesIO(package.content)) as zf:
        catalog = json.loads(zf.read("catalog.json"))
        pdfs |= {"packaged": zf.read(catalog["items"][0]["certificate"]),
                 "packaged-case": zf.read("certificates/case.pdf")}  # fmt: skip
    for name, body in pdfs.items():
        pdf = tmp_path / f"{name}.pdf"
        pdf.write_bytes(body)
        urls = qr_codes(pdf)
        assert urls and all(u.startswith(public + "?code=") for u in urls), (name, urls)
        assert "evil.example" not in pdf_text(pdf), name
    (url,) = qr_codes(tmp_path / "deposit.pdf")
    assert url == judge_url(public, code)
