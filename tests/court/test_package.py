"""Court packages: built from a service holding a sample case, checked offline by
:func:`verifier.package.verify_package`; each tampering fails with the item it concerns named,
and a package that carries no real evidence of the case it names never verifies."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from api.documents import case_package_zip, verified
from api.service import Service
from court.package import CaseDeposit, build_package
from ledger.checkpoint import NoteSigner
from ledger.errors import InvalidInput, StorageError
from verifier.package import (
    CASE_CERTIFICATE,
    CATALOG_FORMAT,
    CATALOG_PDF,
    MANIFEST,
    PackageReport,
    manifest,
    verify_package,
)

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
        assert files[item["bundle"]] == service.bundle(item["index"], with_meta=True).to_json()
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
    passed = {(c.subject, c.check) for c in report.checks if c.status == "passed"}
    for code in sample_case.codes:
        assert {(code, "bundle"), (code, "catalog"), (code, "meta")} <= passed
        assert ((code, "file") in passed) == (code in sample_case.held)
    assert {("catalog.json", "catalog"), ("catalog.json", "completeness")} <= passed
    # The PDFs are renderings: said so, per item, and never claimed verified.
    renderings = {c.subject: c for c in report.checks if c.status == "not_proof"}
    assert set(renderings) == {*sample_case.codes, CATALOG_PDF, CASE_CERTIFICATE}
    assert all(c.message_zh.startswith("仅为展示，不作为证明") for c in renderings.values())
    assert all("rendering, not proof" in c.message for c in renderings.values())
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
    # Even with the manifest forged to match, the catalog still wants the bundle (and without
    # it the case's completeness cannot be recomputed).
    forged = check(service, tampered(package, lambda f: f.pop(item["bundle"]), remanifest=True))
    assert failures(forged) == {(item["code"], "bundle"), ("catalog.json", "completeness")}


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
        catalog["items"][1]["file_name"] = "另一份合同.pdf"  # the meta in the bundle proves it
        files["catalog.json"] = json.dumps(catalog, ensure_ascii=False).encode()

    kept = check(service, tampered(package, edit, remanifest=False))
    assert failures(kept) == {("catalog.json", "member"), (code, "catalog")}
    forged = check(service, tampered(package, edit, remanifest=True))
    assert failures(forged) == {(code, "catalog")}
    (bad,) = forged.failures
    assert set(bad.details["differ"]) == {"kind", "trusted_time", "file_name"}
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


def corrupt_deflate(data: bytes, names: set[str]) -> bytes:
    """The package with the deflate streams of ``names`` overwritten by 0xFF bytes (a reserved
    block type: zlib.error on reading), headers, sizes and CRCs left as they were."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members(data).items():
            zf.writestr(name, body)
    raw = bytearray(out.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        for info in zf.infolist():
            if info.filename in names:
                name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
                start = info.header_offset + 30 + name_len + extra_len
                raw[start : start + info.compress_size] = b"\xff" * info.compress_size
    return bytes(raw)


def hostile_packages(package: bytes) -> dict[str, tuple[bytes, set[tuple[str, str]]]]:
    """Packages that once made verify_package raise: name → (zip, failures it must report)."""
    files = members(package)
    catalog = json.loads(files["catalog.json"])
    item = next(i for i in catalog["items"] if i["file"])
    broken = {"catalog.json", item["bundle"], item["file"]}
    hostile = {
        "corrupt-deflate-catalog-bundle-file": (
            corrupt_deflate(package, broken),
            {(n, "member") for n in broken} | {("catalog.json", "catalog")},
        ),
        "corrupt-deflate-file": (
            corrupt_deflate(package, {item["file"]}),
            {(item["file"], "member"), (item["code"], "file"), ("catalog.json", "completeness")},
        ),
    }
    bundle = json.loads(files[item["bundle"]])
    bundle["depositor"]["key_window"] = [0, {"a": 1}, None]
    hostile["bundle-key-window-object"] = (
        rezip(files | {item["bundle"]: json.dumps(bundle).encode()}, remanifest=True),
        {(item["code"], "bundle"), ("catalog.json", "completeness")},
    )
    for field, value in [("code", [1]), ("no", True), ("file", {"a": 1}), ("bundle", None)]:
        edited = json.loads(files["catalog.json"])
        edited["items"][0][field] = value
        hostile[f"item-{field}-{json.dumps(value)}"] = (
            rezip(files | {"catalog.json": json.dumps(edited).encode()}, remanifest=True),
            {("item 1", "catalog"), ("catalog.json", "completeness")},
        )
    for field, value in [("contract_no", 7), ("depositor", ["x"]), ("completeness", None),
                         ("items", {"1": {}}), ("contract_no", "\u0000")]:  # fmt: skip
        edited = json.loads(files["catalog.json"])
        edited[field] = value
        hostile[f"catalog-{field}-{json.dumps(value)}"] = (
            rezip(files | {"catalog.json": json.dumps(edited).encode()}, remanifest=True),
            {("catalog.json", "catalog")},
        )
    return hostile


def test_hostile_zips_are_reported_never_raised(service: Service, package: bytes) -> None:
    for name, (data, want) in hostile_packages(package).items():
        report = check(service, data)
        assert report.verdict == "INVALID", name
        assert want <= failures(report), (name, failures(report))


def test_the_builder_refuses_an_original_that_is_not_the_deposited_file(
    service: Service, sample_case: SampleCase
) -> None:
    bundle, report = verified(service, sample_case.receipts[0].index, with_meta=True)
    deposit = CaseDeposit(bundle, report, "额度合同.pdf", original=lambda: [b"%PDF-1.7 other"])
    with pytest.raises(StorageError, match="does not match its deposit"):
        build_package(io.BytesIO(), contract_no="HT", deposits=[deposit], page_url=lambda c: c,
                      issued_at=ISSUED_AT, origin="o", depositor="lender-1",
                      completeness={})  # fmt: skip


def test_the_builder_refuses_bundles_without_meta_and_an_empty_case(
    service: Service, sample_case: SampleCase
) -> None:
    bundle, report = verified(service, sample_case.receipts[0].index)
    options: dict[str, Any] = {"contract_no": "HT", "page_url": lambda c: c, "origin": "o",
                               "issued_at": ISSUED_AT, "depositor": "lender-1",
                               "completeness": {}}  # fmt: skip
    with pytest.raises(InvalidInput, match="private meta"):
        build_package(io.BytesIO(), deposits=[CaseDeposit(bundle, report)], **options)
    with pytest.raises(InvalidInput, match="at least one deposit"):
        build_package(io.BytesIO(), deposits=[], **options)


# --- packages that name a case their bundles do not prove (review of issue 7) ----------------


def empty_package(*, contract_no: str = "HT-1") -> bytes:
    """The reviewer's package: a catalog with no items, junk PDFs, a matching manifest."""
    catalog = {"v": 1, "format": CATALOG_FORMAT, "contract_no": contract_no,
               "depositor": "lender-1", "completeness": {"complete": True},
               "items": []}  # fmt: skip
    return rezip({"catalog.json": json.dumps(catalog).encode(), CATALOG_PDF: b"%PDF- junk",
                  CASE_CERTIFICATE: b"%PDF- junk", "README.txt": b"x"},
                 remanifest=True)  # fmt: skip


def test_a_package_with_no_deposits_does_not_verify(service: Service) -> None:
    for log_keys in ([service.log_verifier], []):
        report = check(service, empty_package(), log_keys=log_keys)
        assert report.verdict == "INVALID"
        assert failures(report) == {("catalog.json", "catalog")}
        (bad,) = report.failures
        assert bad.message_zh == "证据目录未列出任何存证"


def edit_catalog(package: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The package with its catalog changed and the manifest rewritten to match, as a forger
    who knows the format would."""

    def edit(files: Members) -> None:
        catalog = json.loads(files["catalog.json"])
        change(catalog)
        files["catalog.json"] = json.dumps(catalog, ensure_ascii=False).encode()

    return tampered(package, edit, remanifest=True)


def test_a_catalog_naming_another_contract_fails_on_every_bundles_meta(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    def rename(catalog: dict[str, Any]) -> None:
        catalog["contract_no"] = "HT-2099-9999"
        catalog["completeness"]["contract_no"] = "HT-2099-9999"

    report = check(service, edit_catalog(package, rename))
    assert failures(report) == {(code, "meta") for code in sample_case.codes}
    assert {c.message_zh for c in report.failures} == {"该存证元数据中的合同编号与证据目录不一致"}
    named = {"catalog": "HT-2099-9999", "meta": sample_case.contract_no}
    assert all(c.details == named for c in report.failures)


def test_bundles_without_meta_do_not_tie_the_deposits_to_the_case(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    """A package as built before the review: bundles as /bundle serves them, no meta."""

    def strip(files: Members) -> None:
        for item in json.loads(files["catalog.json"])["items"]:
            files[item["bundle"]] = service.bundle(item["index"]).to_json()

    report = check(service, tampered(package, strip, remanifest=True))
    assert {(code, "meta") for code in sample_case.codes} <= failures(report)
    bad = next(c for c in report.failures if c.check == "meta")
    assert bad.message_zh == "离线验证包未附元数据，无法证明该存证属于本案"


def test_a_bundle_whose_meta_is_swapped_does_not_open_the_commitment(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    items = json.loads(members(package)["catalog.json"])["items"]

    def swap(files: Members) -> None:
        first, second = (json.loads(files[i["bundle"]]) for i in items[:2])
        first["meta"] = second["meta"]
        files[items[0]["bundle"]] = json.dumps(first).encode()

    report = check(service, tampered(package, swap, remanifest=True))
    code = items[0]["code"]
    assert {(code, "bundle"), (code, "meta")} <= failures(report)
    assert all(c.subject == code or c.check == "completeness" for c in report.failures)


def test_the_catalogs_depositor_and_completeness_are_recomputed(
    service: Service, sample_case: SampleCase, package: bytes
) -> None:
    def depositor(catalog: dict[str, Any]) -> None:
        catalog["depositor"] = "lender-2"
        catalog["completeness"]["depositor"] = "lender-2"

    report = check(service, edit_catalog(package, depositor))
    assert failures(report) == {("catalog.json", "catalog")}
    assert report.failures[0].details == {"catalog": "lender-2", "found": ["lender-1"]}

    def incomplete(catalog: dict[str, Any]) -> None:
        catalog["completeness"]["complete"] = False
        catalog["completeness"]["missing"] = ["loan_voucher"]

    report = check(service, edit_catalog(package, incomplete))
    assert failures(report) == {("catalog.json", "completeness")}
    assert report.failures[0].details["differ"] == ["complete", "missing"]


def test_a_package_of_part_of_a_case_cannot_claim_the_whole_cases_completeness(
    service: Service, sample_case: SampleCase
) -> None:
    """The deposits of a case but its loan voucher, with the completeness of the whole case:
    recomputed from the bundles, the voucher is missing, so the package fails."""
    case = service.check_case(sample_case.contract_no)
    kinds = list(sample_case.files.values())
    deposits = []
    for receipt, kind in zip(sample_case.receipts, kinds, strict=True):
        if kind != "loan_voucher":
            bundle, report = verified(service, receipt.index, with_meta=True)
            deposits.append(CaseDeposit(bundle, report, file_name=None))
    out = io.BytesIO()
    build_package(out, contract_no=case.contract_no, deposits=deposits, page_url=lambda c: c,
                  issued_at=ISSUED_AT, origin=service.config.origin, depositor="lender-1",
                  completeness=case.to_object() | {"depositor": "lender-1"})  # fmt: skip
    report = check(service, out.getvalue())
    assert ("catalog.json", "completeness") in failures(report)
    bad = next(c for c in report.failures if c.check == "completeness")
    assert bad.details["complete"] == {"catalog": True, "bundles": False}


def test_held_ofd_and_xlsx_originals_are_recognised_whole_as_the_depository_does(
    service: Service, sample_case: SampleCase
) -> None:
    """Every original held, the OFD and XLSX ones too (ZIP packages, told apart only by their
    parts): the recomputed completeness agrees with the depository's."""
    case = service.check_case(sample_case.contract_no)
    deposits = []
    for receipt, path in zip(sample_case.receipts, sample_case.files, strict=True):
        bundle, report = verified(service, receipt.index, with_meta=True)
        body = path.read_bytes()
        deposits.append(CaseDeposit(bundle, report, path.name, original=lambda b=body: [b]))
    out = io.BytesIO()
    catalog = build_package(out, contract_no=case.contract_no, deposits=deposits,
                            page_url=lambda c: c, issued_at=ISSUED_AT,
                            origin=service.config.origin, depositor="lender-1",
                            completeness=case.to_object() | {"depositor": "lender-1"})  # fmt: skip
    formats = {i["format"] for i in catalog["completeness"]["items"]}
    assert {"OFD", "XLSX"} <= formats
    assert all(i["file"] for i in catalog["items"])
    report = check(service, out.getvalue())
    assert report.verdict == "VERIFIED", [c.to_object() for c in report.failures]
