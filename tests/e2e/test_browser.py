"""The judge's page in a real browser against a real server: 核验通过, 比对结果不一致, 尚未存证.

Screenshots of each verdict go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from playwright.sync_api import expect

from ledger.code import DepositCode

from .conftest import LiveServer, minimal_pdf, screenshot

pytestmark = pytest.mark.slow


def as_typed(code: str) -> str:
    """How a hurried clerk types it: lower case, spaces instead of dashes."""
    return code.lower().replace("-", " ")


def verify(page: Any, live: LiveServer, code: str = "", file: Any = None) -> None:
    page.goto(f"{live.url}/")
    expect(page.locator("html[data-ready=true]")).to_have_count(1)
    page.get_by_test_id("code-input").fill(code)
    if file is not None:
        page.get_by_test_id("file-input").set_input_files(str(file))
    page.get_by_test_id("verify-button").click()


def steps(page: Any) -> dict[str, str]:
    items = page.get_by_test_id("steps").locator("li")
    return {
        items.nth(i).get_attribute("data-step"): items.nth(i).get_attribute("data-status")
        for i in range(items.count())
    }


def test_same_file_is_verified_then_english(page: Any, live: LiveServer) -> None:
    path, code = live.deposit("借款合同-HT1.pdf", minimal_pdf("Loan contract HT-2026-0001"))
    verify(page, live, as_typed(code), path)
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_have_text("核验通过")
    assert steps(page) == {
        "digest": "passed", "code": "passed", "signature": "passed",
        "checkpoint": "passed", "inclusion": "passed", "timestamp": "passed",
    }  # fmt: skip
    # Hashed in the browser: the mode note says so, and the digest shown is the file's.
    expect(page.get_by_test_id("file-name")).to_contain_text("借款合同-HT1.pdf")
    expect(page.get_by_test_id("mode")).to_have_attribute("data-mode", "local")
    expect(page.get_by_test_id("mode")).to_contain_text("文件未离开本机")
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    expect(page.locator("[data-field=presented]")).to_have_text(digest)
    expect(page.locator("[data-field=code]")).to_have_text(code)
    expect(page.locator("[data-field=kind]")).to_contain_text("借款合同")
    expect(page.locator("[data-field=trusted_time]")).to_contain_text("北京时间")
    expect(page.locator("[data-field=tsa]")).to_contain_text("cunzheng TSA")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    screenshot(page, "verified-zh")

    page.get_by_test_id("lang-toggle").click()
    expect(verdict).to_have_text("VERIFIED")
    expect(page.get_by_test_id("verify-button")).to_have_text("Verify")
    expect(page.get_by_test_id("steps")).to_contain_text("the deposit code commits to this entry")
    expect(page.get_by_test_id("mode")).to_contain_text("did not leave this computer")
    screenshot(page, "verified-en")
    # The choice is remembered.
    page.reload()
    expect(page.get_by_test_id("verify-button")).to_have_text("Verify")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("verify-button")).to_have_text("核验")
    page.reload()
    expect(page.get_by_test_id("verify-button")).to_have_text("核验")


def test_other_file_is_a_mismatch(page: Any, live: LiveServer) -> None:
    _, code = live.deposit(
        "借据-HT2.pdf", minimal_pdf("Loan voucher HT-2026-0002"), kind="loan_voucher"
    )
    forged = live.file("借据-HT2-altered.pdf", minimal_pdf("Loan voucher HT-2026-0002 (altered)"))
    verify(page, live, as_typed(code), forged)
    expect(page.get_by_test_id("verdict")).to_have_text("比对结果不一致")
    assert steps(page)["digest"] == "failed"
    assert steps(page)["inclusion"] == "passed"
    found = "sha256:" + hashlib.sha256(forged.read_bytes()).hexdigest()
    expect(page.locator("[data-field=presented]")).to_have_text(found)
    expect(page.get_by_test_id("steps")).to_contain_text("文件摘要与存证摘要不一致")
    screenshot(page, "mismatch-zh")


def test_unknown_code_is_not_found(page: Any, live: LiveServer) -> None:
    code = str(DepositCode(os.urandom(10)))
    verify(page, live, as_typed(code))
    expect(page.get_by_test_id("verdict")).to_have_text("尚未存证")
    expect(page.get_by_test_id("verdict-explain")).to_contain_text("编码格式正确")
    expect(page.get_by_test_id("error")).to_be_hidden()
    screenshot(page, "not-found-zh")
    # With a file too: still 尚未存证 (the code is looked up first).
    other = live.file("unknown.pdf", minimal_pdf("never deposited"))
    verify(page, live, code, other)
    expect(page.get_by_test_id("verdict")).to_have_text("尚未存证")


def test_mistyped_code_shows_the_problem(page: Any, live: LiveServer) -> None:
    code = str(DepositCode(bytes(10)))  # CZ-0000-0000-0000-0000-9
    wrong = code[:-1] + "8"
    verify(page, live, wrong)
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(page.get_by_test_id("error-title")).to_have_text("存证编码无效")
    expect(error).to_contain_text("check character does not match")
    expect(page.get_by_test_id("error-hint")).to_have_text(
        "校验位不符：编码很可能输错了，请逐位核对。"
    )
    expect(page.get_by_test_id("result")).to_be_hidden()
    screenshot(page, "error-zh")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("error-title")).to_contain_text("the check character does not match")
    page.get_by_test_id("lang-toggle").click()  # back to Chinese for the tests after this one
    verify(page, live, "0000-0000")
    expect(page.get_by_test_id("error-hint")).to_contain_text("实际为 8 位")
    # Nothing at all: the page asks for a code or a file.
    page.get_by_test_id("code-input").fill("")
    page.get_by_test_id("verify-button").click()
    expect(page.get_by_test_id("error-title")).to_have_text("请输入存证编码，或选择一个文件。")


def test_qr_link_then_judge_retrieves_and_downloads(page: Any, live: LiveServer) -> None:
    path, code = live.deposit(
        "放款凭证-HT3.pdf",
        minimal_pdf("Disbursement HT-2026-0003"),
        kind="disbursement_voucher",
        contract_no="HT-2026-0003",
    )
    page.goto(f"{live.url}/?code={code}")
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    expect(page.get_by_test_id("code-input")).to_have_value(code)
    expect(page.get_by_test_id("mode")).to_have_attribute("data-mode", "nofile")
    assert steps(page)["digest"] == "not_applicable"
    retrieve = page.get_by_test_id("retrieve-button")
    download = page.get_by_test_id("download-bundle-button")
    expect(retrieve).to_be_disabled()
    page.locator("#judge summary").click()
    page.get_by_test_id("api-key-input").fill(live.judge_token)
    expect(retrieve).to_be_enabled()
    retrieve.click()
    meta = page.get_by_test_id("meta")
    expect(meta).to_contain_text("HT-2026-0003")
    expect(meta).to_contain_text("放款凭证-HT3.pdf")
    expect(meta).to_contain_text("某某消费金融有限公司")
    screenshot(page, "retrieved-zh")
    with page.expect_download() as info:
        download.click()
    saved = live.files / "bundle.json"
    info.value.save_as(saved)
    assert info.value.suggested_filename == code.replace("-", "") + ".bundle.json"
    bundle = json.loads(saved.read_text())
    assert bundle["entry"]["statement"]["evidence"]["digest"] == (
        hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert bundle["meta"] is None  # the offline bundle carries no private meta
    # A wrong key: the problem is shown in the judge's area.
    page.get_by_test_id("api-key-input").fill("czk_0000000000000000_nope")
    retrieve.click()
    expect(page.locator("#judge-status")).to_contain_text("API密钥无效")


def test_sm3_deposit_and_no_web_crypto_fall_back_to_upload(page: Any, live: LiveServer) -> None:
    path, code = live.deposit(
        "还款明细-HT4.pdf",
        minimal_pdf("Repayments HT4"),
        kind="repayment_details",
        digest_alg="sm3",
    )
    verify(page, live, as_typed(code), path)
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    mode = page.get_by_test_id("mode")
    expect(mode).to_have_attribute("data-mode", "upload")
    expect(mode).to_contain_text("SM3")
    expect(mode).to_contain_text("文件已发送至服务器")
    screenshot(page, "verified-sm3-upload-zh")

    # A browser without Web Crypto (e.g. plain http on a court intranet) uploads instead.
    page.add_init_script("Object.defineProperty(window.crypto, 'subtle', {value: undefined})")
    sha_path, sha_code = live.deposit("借款合同-HT5.pdf", minimal_pdf("Loan contract HT5"))
    verify(page, live, sha_code, sha_path)
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    expect(page.get_by_test_id("mode")).to_have_attribute("data-mode", "upload")
    expect(page.get_by_test_id("mode")).to_contain_text("非安全连接")


def test_file_without_code_finds_its_deposit(page: Any, live: LiveServer) -> None:
    path, code = live.deposit(
        "证据目录-HT6.pdf", minimal_pdf("Evidence catalogue HT6"), kind="evidence_catalog"
    )
    verify(page, live, "", path)
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    expect(page.locator("[data-field=code]")).to_have_text(code)
    expect(page.get_by_test_id("mode")).to_contain_text("SHA-256")
    other = live.file("nothing.pdf", minimal_pdf("nothing"))
    verify(page, live, "", other)
    expect(page.get_by_test_id("verdict")).to_have_text("尚未存证")
    expect(page.get_by_test_id("verdict-explain")).to_contain_text("文件摘要")


def test_page_is_self_contained(page: Any, live: LiveServer) -> None:
    """Every request the page makes goes to our own server (works offline, no CDN)."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(f"{live.url}/")
    expect(page.locator("html[data-ready=true]")).to_have_count(1)
    assert urls and all(u.startswith(live.url + "/") for u in urls), urls
    # A phone-sized screen: nothing overflows sideways, before or after a verdict.
    page.set_viewport_size({"width": 380, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    path, code = live.deposit(
        "额度合同-HT7.pdf", minimal_pdf("Credit line"), kind="credit_line_contract"
    )
    verify(page, live, code, path)
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    expect(page.locator("[data-field=kind]")).to_contain_text("额度合同")
    assert page.evaluate("document.documentElement.scrollWidth") <= 380
    screenshot(page, "verified-narrow-zh")


def test_judge_checks_the_case_of_a_deposit(page: Any, live: LiveServer) -> None:
    """After 一键调证, the case the deposit belongs to is checked against Annex B: here only
    the loan contract and the catalog were deposited, so five required elements are missing."""
    _, code = live.deposit("借款合同-HT9.pdf", minimal_pdf("Loan HT-2026-0009"),
                           contract_no="HT-2026-0009")  # fmt: skip
    live.deposit("证据目录-HT9.pdf", minimal_pdf("Catalog HT-2026-0009"),
                 kind="evidence_catalog", contract_no="HT-2026-0009")  # fmt: skip
    page.goto(f"{live.url}/?code={code}")
    expect(page.get_by_test_id("verdict")).to_have_text("核验通过")
    page.locator("#judge summary").click()
    page.get_by_test_id("api-key-input").fill(live.judge_token)
    page.get_by_test_id("retrieve-button").click()
    check = page.get_by_test_id("case-check-button")
    expect(check).to_be_visible()
    check.click()
    expect(page.get_by_test_id("case-verdict")).to_have_text("证据要素不齐全或格式不符")
    elements = page.get_by_test_id("case-elements").locator("li")
    expect(elements).to_have_count(9)
    expect(page.locator("[data-kind=loan_contract]")).to_have_class("s-passed")
    expect(page.locator("[data-kind=loan_contract]")).to_contain_text("1 份：PDF")
    expect(page.locator("[data-kind=loan_voucher]")).to_have_class("s-failed")
    expect(page.locator("[data-kind=credit_line_contract]")).to_have_class("s-not_applicable")
    expect(page.get_by_test_id("case-issues").locator("li.error")).to_have_count(5)
    expect(page.get_by_test_id("case-issues")).to_contain_text("缺少必备证据要素：借款借据")
    screenshot(page, "case-zh")
    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_test_id("case-verdict")).to_contain_text("Evidence elements missing")
    expect(page.get_by_test_id("case-issues")).to_contain_text("required element missing")
