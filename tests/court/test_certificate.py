"""Deposit and case certificates (存证证书) read back the way a person or a court clerk would:
text extracted with pdftotext, fonts listed with pdffonts, QR codes rendered with pdftoppm and
decoded with zbarimg."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from api.service import Service
from court.certificate import (
    FONT_ENV,
    FontMissing,
    case_certificate,
    catalog_pdf,
    deposit_certificate,
    find_cjk_font,
    judge_url,
)
from ledger.checkpoint import NoteSigner
from ledger.entry import parse_entry
from ledger.errors import VerificationFailed
from verifier.bundle import Bundle, Report, verify_bundle

from .conftest import BASE_URL, ISSUED_AT, SampleCase, pdf_fonts, pdf_text, qr_codes


def verified(service: Service, index: int) -> tuple[Bundle, Report]:
    bundle = service.bundle(index)
    return bundle, verify_bundle(bundle, log_keys=[service.log_verifier],
                                 tsa_roots=service.tsa_roots)  # fmt: skip


def squash(text: str) -> str:
    """pdftotext output without the line breaks and spaces layout puts in."""
    return "".join(text.split())


def test_a_deposit_certificate_says_what_was_verified_in_chinese(
    service: Service, sample_case: SampleCase, tmp_path: Path
) -> None:
    receipt = sample_case.receipts[1]  # 借款合同.pdf
    code = str(receipt.code)
    bundle, report = verified(service, receipt.index)
    url = judge_url(BASE_URL, code)
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(deposit_certificate(bundle, report, page_url=url, issued_at=ISSUED_AT))

    text = pdf_text(pdf)
    flat = squash(text)
    statement = parse_entry(bundle.leaf).statement
    assert report.trusted_time is not None and report.tsa is not None
    gen_time = report.trusted_time.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    for expected in (
        "存证证书", code, "借款合同", "loan_contract", "SHA256", statement.digest.hex,
        "可信时间", gen_time, "北京时间", "时间戳机构", report.tsa, "检查点",
        service.config.origin, "某某消费金融有限公司", "lender-1", "核验通过", "扫码核验",
        base64_root(report),
    ):  # fmt: skip
        assert squash(expected) in flat, (expected, text)
    assert f"规模{report.checkpoint.size if report.checkpoint else 0}" in flat
    # The CJK font is embedded (as a subset), not referenced.
    fonts = [line.split() for line in pdf_fonts(pdf).splitlines()[2:]]
    cjk = [f for f in fonts if "WenQuanYi" in f[0] or "Micro" in f[0]]
    assert cjk, fonts
    assert all(f[0].split("+")[0].isupper() and "yes" in f[-5:-2] for f in cjk), cjk
    # The QR code opens the judge's page with the code filled in.
    assert qr_codes(pdf) == [url]


BEIJING = dt.timezone(dt.timedelta(hours=8))


def base64_root(report: Report) -> str:
    assert report.checkpoint is not None
    return base64.b64encode(report.checkpoint.root_hash).decode()


def test_a_case_certificate_lists_every_deposit_each_with_its_qr_code(
    service: Service, sample_case: SampleCase, tmp_path: Path
) -> None:
    pairs = [verified(service, r.index) for r in sample_case.receipts]
    pdf = tmp_path / "case.pdf"
    completeness = service.check_case(sample_case.contract_no).to_object()
    rendered = case_certificate(sample_case.contract_no, pairs,
                                page_url=lambda code: judge_url(BASE_URL, code),
                                issued_at=ISSUED_AT, completeness=completeness)  # fmt: skip
    pdf.write_bytes(rendered)
    flat = squash(pdf_text(pdf))
    assert "案件存证证书" in flat and sample_case.contract_no in flat
    assert f"{len(pairs)}项，全部核验通过" in flat
    assert "证据要素齐全" in flat  # the sample case is complete
    for code in sample_case.codes:
        assert code in flat
    for zh in ("额度合同", "借款借据", "放款凭证", "借款人还款及欠款明细", "借款流程的展示材料"):
        assert zh in flat
    urls = qr_codes(pdf)
    assert sorted(urls) == sorted(judge_url(BASE_URL, c) for c in sample_case.codes)


def test_the_evidence_catalog_pdf_has_every_item(tmp_path: Path) -> None:
    catalog = {
        "contract_no": "HT-合同-7",
        "depositor": "lender-1",
        "origin": "test.cunzheng/log",
        "completeness": {"complete_zh": "证据要素不齐全或格式不符", "missing": ["loan_voucher"],
                         "issues": [], "elements": [{"kind": "loan_voucher",
                                                     "name_zh": "借款借据", "status": "missing",
                                                     "count": 0}]},
        "items": [
            {"no": 1, "code": "CZ-0000-0000-0000-0000-9", "kind": "loan_contract",
             "kind_zh": "借款合同", "digest": "sha256:" + "ab" * 32, "size": 12345,
             "file_name": "借款合同（主合同）.pdf", "trusted_time": None},
        ],
    }  # fmt: skip
    pdf = tmp_path / "catalog.pdf"
    pdf.write_bytes(catalog_pdf(catalog, issued_at=ISSUED_AT))
    flat = squash(pdf_text(pdf))
    for expected in (
        "证据目录",
        "HT-合同-7",
        "借款合同（主合同）.pdf",
        "CZ-0000-0000-0000-0000-9",
        "12,345",
        "尚待签发",
        "缺少：借款借据",
        "cunzhengverify--package",
    ):
        assert expected in flat, expected


def test_the_same_inputs_give_the_same_bytes(service: Service, sample_case: SampleCase) -> None:
    bundle, report = verified(service, sample_case.receipts[0].index)
    url = judge_url(BASE_URL, sample_case.codes[0])
    one = deposit_certificate(bundle, report, page_url=url, issued_at=ISSUED_AT)
    assert one.startswith(b"%PDF-")
    assert deposit_certificate(bundle, report, page_url=url, issued_at=ISSUED_AT) == one


def test_no_certificate_for_a_deposit_that_does_not_verify(
    service: Service, sample_case: SampleCase
) -> None:
    bundle = service.bundle(sample_case.receipts[0].index)
    stranger = NoteSigner.generate(service.config.origin).verifier
    report = verify_bundle(bundle, log_keys=[stranger], tsa_roots=service.tsa_roots)
    assert report.verdict == "INVALID"
    with pytest.raises(VerificationFailed, match="does not verify") as info:
        deposit_certificate(bundle, report, page_url=BASE_URL, issued_at=ISSUED_AT)
    assert "checkpoint" in info.value.details["failed"]
    tampered = dataclasses.replace(bundle, index=bundle.index + 1)
    bad = verify_bundle(tampered, log_keys=[service.log_verifier], tsa_roots=service.tsa_roots)
    with pytest.raises(VerificationFailed):
        case_certificate("HT", [(bundle, bad)], page_url=str, issued_at=ISSUED_AT)


def test_a_missing_font_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("court.certificate.FONT_PATHS", (str(tmp_path / "none.ttc"),))
    with pytest.raises(FontMissing, match="fonts-wqy-microhei") as info:
        find_cjk_font({})
    assert info.value.code == "cjk_font_missing"
    with pytest.raises(FontMissing, match=FONT_ENV):
        find_cjk_font({FONT_ENV: str(tmp_path / "absent.ttf")})
    assert find_cjk_font({FONT_ENV: __file__}) == Path(__file__)  # chosen as told
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_bytes(b"not a font")
    monkeypatch.setenv(FONT_ENV, str(not_a_font))
    with pytest.raises(FontMissing, match="cannot use the font"):
        catalog_pdf({"contract_no": "HT", "items": []}, issued_at=ISSUED_AT)
