"""Case keys, case metadata and completeness against DB4401/T 310—2024 Annex B."""

from __future__ import annotations

import doctest
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import cases
from ledger.canonical import jcs
from ledger.cases import (
    ELEMENTS,
    CaseItem,
    borrower_commitment,
    case_key,
    check_case,
    check_case_meta,
)
from ledger.errors import InvalidContractNo, InvalidMeta

FORMAT_OF = {
    "credit_line_contract": "PDF",
    "loan_contract": "PDF",
    "loan_voucher": "OFD",
    "disbursement_voucher": "PNG",
    "repayment_details": "XLSX",
    "identity_verification": "JPEG",
    "loan_process_record": "MP4",
    "other": "PDF",
    "evidence_catalog": "PDF",
}
REQUIRED = [e.kind for e in ELEMENTS if e.requirement == "required"]


def item(kind: str, n: int = 0, fmt: str | None = "") -> CaseItem:
    f = FORMAT_OF[kind] if fmt == "" else fmt
    digest = "sha256:" + hashlib.sha256(f"{kind}{n}".encode()).hexdigest()
    return CaseItem(kind=kind, format=f, digest=digest, size=10, media_type="x/y")


def test_complete_case_needs_only_the_required_elements() -> None:
    report = check_case("HT-1", [item(k) for k in REQUIRED])
    assert report.complete and report.issues == () and report.missing == []
    statuses = {s.element.kind: s.status for s in report.elements}
    assert statuses["credit_line_contract"] == "not_provided"  # "如有则提供"
    assert statuses["other"] == "not_provided"
    obj = report.to_object()
    assert obj["complete"] is True and obj["complete_zh"] == "证据要素齐全"
    assert [e["kind"] for e in obj["elements"]] == [e.kind for e in ELEMENTS]


@pytest.mark.parametrize("absent", REQUIRED)
def test_each_missing_required_element_is_named(absent: str) -> None:
    report = check_case("HT-1", [item(k) for k in REQUIRED if k != absent])
    assert not report.complete and report.missing == [absent]
    (issue,) = report.issues
    assert issue.code == "missing" and issue.severity == "error" and issue.kind == absent
    assert "缺少必备证据要素" in issue.message_zh


def test_an_empty_case_misses_all_seven() -> None:
    assert check_case("HT-1", []).missing == REQUIRED
    assert len(REQUIRED) == 7


def test_unlisted_formats_are_errors() -> None:
    items = [item(k) for k in REQUIRED]
    items.append(item("loan_contract", 1, "XLSX"))  # Excel is for repayment details only
    items.append(item("loan_process_record", 1, "DOCX"))  # the table says DOC
    items.append(item("other", 1, None))  # unrecognised
    report = check_case("HT-1", items)
    wrong = [(i.kind, i.items) for i in report.issues if i.code == "unlisted_format"]
    assert wrong == [
        ("loan_contract", (len(REQUIRED),)),
        ("loan_process_record", (len(REQUIRED) + 1,)),
        ("other", (len(REQUIRED) + 2,)),
    ]
    assert not report.complete
    assert "unknown" in report.issues[-1].message


def test_duplicates_and_several_are_warnings() -> None:
    items = [item(k) for k in REQUIRED]
    items.append(item("loan_contract"))  # the same file twice
    items.append(item("evidence_catalog", 2))  # a second, different catalog
    items.append(item("loan_contract", 3))  # a supplement: several contracts are normal
    report = check_case("HT-1", items)
    assert report.complete
    found = {(i.code, i.kind): i.items for i in report.issues}
    contract = REQUIRED.index("loan_contract")
    catalog = REQUIRED.index("evidence_catalog")
    assert found == {
        ("duplicate", "loan_contract"): (contract, len(REQUIRED)),
        ("several", "evidence_catalog"): (catalog, len(REQUIRED) + 1),
    }
    assert all(i.severity == "warning" for i in report.issues)


def test_the_same_file_under_two_kinds_is_a_duplicate_in_both() -> None:
    twin = item("loan_contract")
    items = [*(item(k) for k in REQUIRED), CaseItem(**{**twin.to_object(), "kind": "other"})]
    kinds = {i.kind for i in check_case("HT-1", items).issues if i.code == "duplicate"}
    assert kinds == {"loan_contract", "other"}


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidMeta):
        check_case("HT-1", [CaseItem("contract", "PDF", "sha256:00", 1, "application/pdf")])


@pytest.mark.parametrize("bad", ["", " ", "x" * 129, "HT\n1", "HT\u200b1", 7, None])
def test_bad_contract_numbers_are_refused(bad: object) -> None:
    with pytest.raises(InvalidMeta):
        case_key(bad)  # type: ignore[arg-type]


def test_case_key_normalises() -> None:
    assert case_key("HT-1") == case_key(" HT-1\t") == case_key("HT-1")
    assert case_key("HT-1") != case_key("ht-1")  # contract numbers are case-sensitive
    composed, decomposed = "合同\u00e9", "合同e\u0301"
    assert case_key(composed) == case_key(decomposed)  # NFC
    assert case_key("HT/2026/1") != case_key("HT-2026-1")


def test_case_meta() -> None:
    assert check_case_meta({"file_name": "a.pdf"}) is None
    assert check_case_meta({"contract_no": "HT-1"}) == case_key("HT-1")
    commitment = borrower_commitment(b"s" * 16, id_type="身份证", id_number="1", name="张三")
    assert check_case_meta({"contract_no": "HT-1", "borrower_commitment": commitment})
    for personal in ("borrower_name", "id_number", "身份证号", "Phone"):
        with pytest.raises(InvalidMeta, match="in clear"):
            check_case_meta({"contract_no": "HT-1", personal: "x"})
    with pytest.raises(InvalidMeta, match="borrower_commitment"):
        check_case_meta({"borrower_commitment": "110101199003071234"})
    with pytest.raises(InvalidMeta):
        check_case_meta({"contract_no": ""})


def test_borrower_commitment_is_salted_jcs() -> None:
    salt = bytes(range(16))
    got = borrower_commitment(salt, id_type="身份证", id_number="110101199003071234", name="张三")
    want = hashlib.sha256(
        salt + jcs({"id_number": "110101199003071234", "id_type": "身份证", "name": "张三"})
    ).hexdigest()
    assert got == want
    other = borrower_commitment(bytes(16), id_type="身份证", id_number="110101199003071234",
                                name="张三")  # fmt: skip
    assert other != got
    with pytest.raises(InvalidMeta):
        borrower_commitment(b"short", id_type="x", id_number="1", name="n")


def test_doctests_pass() -> None:
    assert doctest.testmod(cases).failed == 0


@given(st.text(max_size=140) | st.text(st.characters(max_codepoint=127), max_size=140))
def test_contract_numbers_read_as_the_definition_says(text: str) -> None:
    """ASCII contract numbers take a short path; every text reads as the definition — NFC,
    blanks stripped, 1–128 characters, no control or format characters — or is refused."""
    import unicodedata

    want = unicodedata.normalize("NFC", text).strip()
    ok = 1 <= len(want) <= 128 and not any(
        unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in want
    )
    if ok:
        assert cases.normalize_contract_no(text) == want
    else:
        with pytest.raises(InvalidContractNo):
            cases.normalize_contract_no(text)
