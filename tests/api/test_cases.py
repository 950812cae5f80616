"""Cases over the running service and the API: lookup by contract number, completeness against
Annex B, roles (DESIGN §9), judges' accesses logged, problem+json errors."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.service import Service
from ledger.entry import Deposit
from ledger.errors import InvalidMeta, NotFound
from tests.api.conftest import Lender
from tests.cases import samples
from tests.cases.samples import COMPLETE_CASE, write_case
from tools.client import build_statement, generate_key, load_private_key, sign_statement

CONTRACT = "HT-2026-0001"


def deposit_case(
    service: Service, lender: Lender, root: Path, contract_no: str = CONTRACT, **skip: bool
) -> list[int]:
    paths = write_case(root)
    deposits = [
        lender.deposit(path, kind=kind, contract_no=contract_no)
        for path, kind in paths.items()
        if not skip.get(kind)
    ]
    return [r.index for r in service.sequencer.append(deposits)]


def test_case_deposits_lists_the_case_oldest_first(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    indexes = deposit_case(service, lender, tmp_path / "a")
    other = deposit_case(service, lender, tmp_path / "b", contract_no="HT-2026-0002")
    assert service.case_deposits(CONTRACT) == indexes
    assert service.case_deposits(f"  {CONTRACT} ") == indexes  # normalised like the index
    assert service.case_deposits(CONTRACT, depositor="lender-1") == indexes
    assert service.case_deposits(CONTRACT, depositor="lender-2") == []
    assert service.case_deposits("HT-2026-0002") == other
    assert service.case_deposits("HT-none") == []
    with pytest.raises(InvalidMeta):
        service.case_deposits("bad\x00number")


def test_check_case_over_deposits(service: Service, lender: Lender, tmp_path: Path) -> None:
    deposit_case(service, lender, tmp_path / "a")
    report = service.check_case(CONTRACT)
    assert report.complete, report.to_object()["issues"]
    assert len(report.items) == len(COMPLETE_CASE)
    assert {i.format for i in report.items} == {"PDF", "OFD", "PNG", "XLSX", "JPEG", "MP4", "WAV"}
    with pytest.raises(NotFound):
        service.check_case("HT-none")


@pytest.fixture
def tokens(service: Service, lender: Lender) -> dict[str, str]:
    keys = service.api_keys
    service.registry.register("lender-2", "另一家小额贷款公司")
    return {
        "admin": (service.config.data_dir / "admin-token").read_text(),
        "depositor": keys.issue("depositor", depositor="lender-1", label="lender-1 system"),
        "other": keys.issue("depositor", depositor="lender-2", label="lender-2 system"),
        "judge": keys.issue("judge", label="张法官 (test)"),
        "auditor": keys.issue("auditor", label="auditor"),
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(r: Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["title_zh"], body
    return body


def test_complete_case_over_http(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    indexes = deposit_case(service, lender, tmp_path)
    for who in ("depositor", "judge"):
        case = client.get(f"/v1/cases/{CONTRACT}", headers=auth(tokens[who]))
        assert case.status_code == 200, case.text
        body = case.json()
        assert body["depositor"] == "lender-1" and body["complete"] is True
        assert [d["index"] for d in body["deposits"]] == indexes
        first = body["deposits"][0]
        assert first["kind_zh"] == "额度合同" and first["format"] == "PDF"
        assert first["file_name"] == "额度合同.pdf" and first["code"].startswith("CZ-")
        check = client.get(f"/v1/cases/{CONTRACT}/check", headers=auth(tokens[who])).json()
        assert check["complete"] is True and check["complete_zh"] == "证据要素齐全"
        assert check["missing"] == [] and check["errors"] == 0
        statuses = {e["kind"]: e["status"] for e in check["elements"]}
        assert set(statuses.values()) == {"present", "not_provided"}
        assert statuses["other"] == "not_provided"


def test_incomplete_case_names_what_is_missing(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    deposit_case(service, lender, tmp_path, evidence_catalog=True, loan_voucher=True)
    check = client.get(f"/v1/cases/{CONTRACT}/check", headers=auth(tokens["judge"])).json()
    assert check["complete"] is False and check["complete_zh"] == "证据要素不齐全或格式不符"
    assert check["missing"] == ["loan_voucher", "evidence_catalog"]
    assert {i["message_zh"] for i in check["issues"]} == {
        "缺少必备证据要素：借款借据",
        "缺少必备证据要素：证据目录",
    }


def test_a_wrong_format_is_found_from_the_original(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    """The original held by the depository is sniffed: a PNG declared as a PDF is caught."""
    deposit_case(service, lender, tmp_path / "case")
    path = tmp_path / "contract.pdf"
    path.write_bytes(samples.xlsx_bytes(rows=9))
    statement, meta, salt = build_statement(
        path, depositor="lender-1", kind="loan_contract", media_type="application/pdf",
        meta={"file_name": path.name, "contract_no": CONTRACT},
    )  # fmt: skip
    sig = sign_statement(statement, lender.key, key_id=lender.key_id)
    body = Deposit.create(statement, sig, meta=meta, salt=salt).to_object()
    r = client.post(
        "/v1/deposits", headers=auth(tokens["depositor"]),
        files={"deposit": (None, json.dumps(body)), "file": (path.name, path.read_bytes())},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    check = client.get(f"/v1/cases/{CONTRACT}/check", headers=auth(tokens["depositor"])).json()
    (issue,) = [i for i in check["issues"] if i["code"] == "unlisted_format"]
    assert issue["kind"] == "loan_contract" and "XLSX" in issue["message"]
    assert check["items"][issue["items"][0]]["media_type"] == "application/pdf"


def test_roles_and_access_log(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    deposit_case(service, lender, tmp_path)
    url = f"/v1/cases/{CONTRACT}"
    problem(client.get(url), 401, "unauthenticated")
    problem(client.get(url + "/check", headers=auth(tokens["auditor"])), 403, "forbidden")
    problem(client.get(url, headers=auth(tokens["admin"])), 403, "forbidden")
    # Another lender sees nothing of this case, not even that it exists.
    problem(client.get(url, headers=auth(tokens["other"])), 404, "case_not_found")
    problem(
        client.get(url, params={"depositor": "lender-1"}, headers=auth(tokens["other"])),
        404, "case_not_found",
    )  # fmt: skip
    before = len(service.store.record_list("access"))
    assert client.get(url, headers=auth(tokens["depositor"])).status_code == 200
    assert len(service.store.record_list("access")) == before  # depositors are not logged
    assert client.get(url + "/check", headers=auth(tokens["judge"])).status_code == 200
    assert client.get(url, headers=auth(tokens["judge"])).status_code == 200
    log = client.get("/v1/admin/access-log", headers=auth(tokens["admin"])).json()["accesses"]
    cases = [a for a in log if "contract_no" in a]
    assert [(a["what"], a["contract_no"], a["label"]) for a in cases] == [
        ("case_check", CONTRACT, "张法官 (test)"),
        ("case", CONTRACT, "张法官 (test)"),
    ]


def test_a_contract_number_used_by_two_lenders(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    deposit_case(service, lender, tmp_path / "1")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-2", public, key_id="k2", not_before=0)
    second = Lender("lender-2", load_private_key(private), "k2")
    path = tmp_path / "2.pdf"
    path.write_bytes(samples.pdf_bytes("lender 2 contract"))
    service.sequencer.append([second.deposit(path, contract_no=CONTRACT)])
    url = f"/v1/cases/{CONTRACT}"
    body = problem(client.get(url, headers=auth(tokens["judge"])), 409, "ambiguous_case")
    assert body["details"]["depositors"] == ["lender-1", "lender-2"]
    one = client.get(url, params={"depositor": "lender-2"}, headers=auth(tokens["judge"])).json()
    assert one["count"] == 1 and one["complete"] is False
    assert client.get(url, headers=auth(tokens["other"])).json()["count"] == 1
    assert client.get(url, headers=auth(tokens["depositor"])).json()["count"] == len(COMPLETE_CASE)


def test_contract_numbers_with_slashes_and_chinese(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    contract = "粤贷字〔2026〕第0001号/补"
    deposit_case(service, lender, tmp_path, contract_no=contract)
    quoted = urllib.parse.quote(contract, safe="")
    check = client.get(f"/v1/cases/{quoted}/check", headers=auth(tokens["judge"])).json()
    assert check["contract_no"] == contract and check["complete"] is True
    case = client.get(f"/v1/cases/{quoted}", headers=auth(tokens["judge"])).json()
    assert case["count"] == len(COMPLETE_CASE)


def test_bad_requests_are_problems_and_write_nothing(
    client: TestClient, service: Service, lender: Lender, tokens: dict[str, str], tmp_path: Path
) -> None:
    judge = auth(tokens["judge"])
    problem(client.get("/v1/cases/HT-none", headers=judge), 404, "case_not_found")
    problem(client.get("/v1/cases/" + "x" * 200, headers=judge), 400, "invalid_contract_no")
    problem(client.get("/v1/cases/HT%091/check", headers=judge), 400, "invalid_contract_no")
    problem(
        client.get("/v1/cases/HT1", params={"depositor": "x" * 65}, headers=judge),
        422, "invalid_request",
    )  # fmt: skip
    # A deposit naming the borrower in clear is refused whole; nothing is written.
    size = service.ledger.head_size()
    path = tmp_path / "id.png"
    path.write_bytes(samples.png_bytes(3))
    for meta, code in (
        ({"contract_no": "HT1", "身份证号": "110101199003071234"}, "invalid_meta"),
        ({"contract_no": ""}, "invalid_contract_no"),
    ):
        statement, meta, salt = build_statement(
            path, depositor="lender-1", kind="identity_verification", meta=meta
        )
        body = {
            "statement": json.loads(statement.raw),
            "sig": sign_statement(statement, lender.key, key_id=lender.key_id).to_object(),
            "meta": meta,
            "salt": salt.hex(),
        }
        r = client.post("/v1/deposits", json=body, headers=auth(tokens["depositor"]))
        problem(r, 400, code)
    assert service.ledger.head_size() == size
