"""Court packages: built from a service holding a sample case, checked offline by
:func:`verifier.package.verify_package`; each tampering fails with the item it concerns named."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable

import pytest

from api.documents import case_package_zip, verified
from api.service import Service
from court.package import CaseDeposit, build_package
from ledger.checkpoint import NoteSigner
from ledger.errors import StorageError
from verifier.package import MANIFEST, PackageReport, manifest, verify_package

from .conftest import (
    BASE_URL,
    ISSUED_AT,
    SampleCase,
    deposit_sample_case,
    register_lender,
)

Members = dict[str, bytes]


@pytest.fixture(scope="module")
def service(shared_service: Service) -> Service:
    return shared_service


@pytest.fixture(scope="module")
def sample_case(shared_service: Service, tmp_path_factory: pytest.TempPathFactory) -> SampleCase:
    lender = register_lender(shared_service)
    return deposit_sample_case(shared_service, lender, tmp_path_factory.mktemp("case"))


@pytest.fixture(scope="module")
def package(service: Service, sample_case: SampleCase) -> bytes:
    out = io.BytesIO()
    case = service.check_case(sample_case.contract_no)
    case_package_zip(service, case, out, depositor="lender-1", base_url=BASE_URL,
                     issued_at=ISSUED_AT)  # fmt: skip
    return out.getvalue()


def check(service: Service, data: bytes, **kwargs: object) -> PackageReport:
    options: dict[str, object] = {"log_keys": [service.log_verifier],
                                  "tsa_roots": service.tsa_roots} | kwargs  # fmt: skip
    return verify_package(io.BytesIO(data), **options)  # type: ignore[arg-type]


def members(data: bytes) -> Members:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(files: Members, *, remanifest: bool = False) -> bytes:
    """The members zipped again; with ``remanifest`` the manifest is recomputed, as a forger
    who knows the format would."""
    if remanifest:
        files = dict(files)
        files[MANIFEST] = manifest({n: (hashlib.sha256(b).hexdigest(), len(b))
                                    for n, b in files.items() if n != MANIFEST})  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return out.getvalue()


def failures(report: PackageReport) -> set[tuple[str, str]]:
    return {(c.subject, c.check) for c in report.failures}


def tampered(data: bytes, change: Callable[[Members], None], *, remanifest: bool) -> bytes:
    files = members(data)
    change(files)
    return rezip(files, remanifest=remanifest)


def test_a_package_holds_everything_and_verifies_offline(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    files = members(package)
    catalog = json.loads(files["catalog.json"])
    assert catalog["contract_no"] == sample_case.contract_no
    assert catalog["completeness"]["complete"] is True
    assert [i["code"] for i in catalog["items"]] == sample_case.codes
    assert [i["file_name"] for i in catalog["items"]] == [p.name for p in sample_case.files]
    for item, path in zip(catalog["items"], sample_case.files, strict=True):
        assert files[item["bundle"]] == service.bundle(item["index"]).to_json()
        assert files[item["certificate"]].startswith(b"%PDF-")
        if item["code"] in sample_case.held:
            assert files[item["file"]] == path.read_bytes()
            assert item["file"].endswith("/" + path.name)
        else:
            assert item["file"] is None
        assert item["trusted_time"] is not None and item["tsa"]
    listed = json.loads(files[MANIFEST])["members"]
    assert set(listed) == set(files) - {MANIFEST}
    assert {"README.txt", "catalog.pdf", "certificates/case.pdf"} <= set(listed)
    assert "cunzheng verify --package" in files["README.txt"].decode()

    report = check(service, package)
    assert report.verdict == "VERIFIED", [c.to_object() for c in report.failures]
    assert report.deposits == len(sample_case.codes)
    passed = {(c.subject, c.check) for c in report.checks}
    for code in sample_case.codes:
        assert {(code, "bundle"), (code, "catalog")} <= passed
        assert ((code, "file") in passed) == (code in sample_case.held)
    # The catalog and the builder agree by construction: a second build is identical.
    again = io.BytesIO()
    case_package_zip(service, service.check_case(sample_case.contract_no), again,
                     depositor="lender-1", base_url=BASE_URL, issued_at=ISSUED_AT)  # fmt: skip
    assert again.getvalue() == package


@pytest.mark.parametrize("remanifest", [False, True], ids=["manifest-kept", "manifest-forged"])
def test_a_changed_byte_in_a_file_is_named(
    service: Service, sample_case: SampleCase, package: bytes, remanifest: bool
) -> None:
    item = next(i for i in json.loads(members(package)["catalog.json"])["items"] if i["file"])

    def flip(files: Members) -> None:
        body = bytearray(files[item["file"]])
        body[len(body) // 2] ^= 0x01
        files[item["file"]] = bytes(body)

    report = check(service, tampered(package, flip, remanifest=remanifest))
    assert report.verdict == "INVALID"
    assert (item["code"], "file") in failures(report)
    assert ((item["file"], "member") in failures(report)) == (not remanifest)
    (bad,) = [c for c in report.failures if c.check == "file"]
    assert bad.details["expected"] != bad.details["found"]
    assert bad.message_zh == "证据原件与存证摘要不一致"


def test_a_removed_bundle_is_named(service: Service, package: bytes) -> None:
    item = json.loads(members(package)["catalog.json"])["items"][2]
    report = check(service, tampered(package, lambda f: f.pop(item["bundle"]), remanifest=False))
    assert {(item["code"], "bundle"), (item["bundle"], "member")} <= failures(report)
    assert report.verdict == "INVALID"
    # Even with the manifest forged to match, the catalog still wants the bundle.
    forged = check(service, tampered(package, lambda f: f.pop(item["bundle"]), remanifest=True))
    assert failures(forged) == {(item["code"], "bundle")}


@pytest.mark.parametrize("remanifest", [False, True], ids=["manifest-kept", "manifest-forged"])
def test_an_extra_member_is_named(service: Service, package: bytes, remanifest: bool) -> None:
    def add(files: Members) -> None:
        files["bundles/99-CZ-0000-0000-0000-0000-9.json"] = files[
            json.loads(files["catalog.json"])["items"][0]["bundle"]
        ]

    report = check(service, tampered(package, add, remanifest=remanifest))
    extra = "bundles/99-CZ-0000-0000-0000-0000-9.json"
    want = {(extra, "catalog")} | (set() if remanifest else {(extra, "member")})
    assert failures(report) == want


def test_an_edited_catalog_is_named(service: Service, package: bytes) -> None:
    catalog = json.loads(members(package)["catalog.json"])
    code = catalog["items"][1]["code"]

    def edit(files: Members) -> None:
        catalog["items"][1]["kind"] = "other"
        catalog["items"][1]["trusted_time"] = "2020-01-01T00:00:00+00:00"
        files["catalog.json"] = json.dumps(catalog, ensure_ascii=False).encode()

    kept = check(service, tampered(package, edit, remanifest=False))
    assert failures(kept) == {("catalog.json", "member"), (code, "catalog")}
    forged = check(service, tampered(package, edit, remanifest=True))
    assert failures(forged) == {(code, "catalog")}
    (bad,) = forged.failures
    assert set(bad.details["differ"]) == {"kind", "trusted_time"}
    assert bad.details["differ"]["kind"] == {"catalog": "other", "bundle": "loan_contract"}


def test_a_wrong_log_key_fails_every_bundle(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    stranger = NoteSigner.generate(service.config.origin).verifier
    report = check(service, package, log_keys=[stranger])
    bundles = [c for c in report.failures if c.check == "bundle"]
    assert {c.subject for c in bundles} == set(sample_case.codes)
    assert all("checkpoint" in c.details["failed_steps"] for c in bundles)
    assert report.to_object()["verdict_zh"] == "验证无效"


def test_damaged_and_hostile_zips_are_refused(service: Service, package: bytes) -> None:
    assert failures(check(service, b"PK\x03\x04 not really")) == {("package", "package")}
    files = members(package)
    files["../outside.txt"] = b"x"
    assert ("../outside.txt", "member") in failures(check(service, rezip(files)))
    del files["../outside.txt"]
    files[MANIFEST] = b"{not json"
    assert (MANIFEST, "manifest") in failures(check(service, rezip(files)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in members(package).items():
            zf.writestr(name, body)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("catalog.json", b"{}")
    assert ("catalog.json", "member") in failures(check(service, out.getvalue()))


def test_the_builder_refuses_an_original_that_is_not_the_deposited_file(
    service: Service, sample_case: SampleCase
) -> None:
    bundle, report = verified(service, sample_case.receipts[0].index)
    deposit = CaseDeposit(bundle, report, "额度合同.pdf", original=lambda: [b"%PDF-1.7 other"])
    with pytest.raises(StorageError, match="does not match its deposit"):
        build_package(io.BytesIO(), contract_no="HT", deposits=[deposit],
                      page_url=lambda c: c, issued_at=ISSUED_AT, origin="o")  # fmt: skip
