"""Build a court package (证据包) for a case: one zip with the evidence catalog (证据目录, JSON
and PDF), every bundle and certificate, the originals the depository holds, and a manifest of
every member's SHA-256. The layout and the checks are :mod:`verifier.package`'s.

The builder is given verified deposits (:class:`CaseDeposit`), each bundle with its private
meta and salt (packages are only for judges and the owning depositor: the meta is what ties a
deposit to the case's contract number), and writes to any binary file object; originals are
streamed chunk by chunk and re-hashed on the way, so a package can never carry a file that does
not match its deposit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ledger.entry import Digest
from ledger.errors import InvalidInput, StorageError
from verifier.bundle import Bundle, Report
from verifier.package import (
    CASE_CERTIFICATE,
    CATALOG_FORMAT,
    CATALOG_JSON,
    CATALOG_PDF,
    MANIFEST,
    README,
    catalog_item,
    manifest,
    member_paths,
)

from .certificate import DepositFacts, case_certificate, catalog_pdf, deposit_certificate

__all__ = ["CaseDeposit", "build_package"]


@dataclass(frozen=True, slots=True)
class CaseDeposit:
    """One deposit of the case: its bundle with private meta and salt, as
    ``/v1/deposits/{code}/retrieve`` serves it, the report of verifying it, the file name from
    that meta and, if the depository holds the original, a function that yields its bytes."""

    bundle: Bundle
    report: Report
    file_name: str | None = None
    original: Callable[[], Iterable[bytes]] | None = None


def build_package(
    out: IO[bytes],
    *,
    contract_no: str,
    deposits: Sequence[CaseDeposit],
    page_url: Callable[[str], str],
    issued_at: dt.datetime,
    origin: str,
    depositor: str,
    completeness: Mapping[str, Any],
    log_vkey: str | None = None,
) -> dict[str, Any]:
    """Write the package of ``deposits`` (oldest first) to ``out``; return its catalog.
    ``completeness``: the case's :meth:`~ledger.cases.CaseReport.to_object` with
    ``depositor``, which :func:`~verifier.package.verify_package` recomputes from the bundles.

    Every deposit must verify (:class:`~ledger.errors.VerificationFailed` otherwise) and carry
    its private meta (:class:`~ledger.errors.InvalidInput`);
    :class:`~ledger.errors.StorageError` if an original does not match its deposit."""
    if not deposits:
        raise InvalidInput("a court package needs at least one deposit")
    for d in deposits:
        DepositFacts.of(d.bundle, d.report)  # refuses an unverified deposit before writing
        if d.bundle.meta is None:
            raise InvalidInput(
                "a court package's bundles carry their private meta: without it nothing ties "
                "a deposit to the case (build them with Service.bundle(index, with_meta=True))"
            )
    t = issued_at.astimezone(dt.UTC)
    date_time = (t.year, t.month, t.day, t.hour, t.minute, t.second)
    hashes: dict[str, tuple[str, int]] = {}
    items: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:

        def put(name: str, data: bytes) -> None:
            zf.writestr(zipfile.ZipInfo(name, date_time), data, zipfile.ZIP_DEFLATED)
            hashes[name] = (hashlib.sha256(data).hexdigest(), len(data))

        for no, d in enumerate(deposits, start=1):
            code = str(d.report.entry.code) if d.report.entry else ""
            bundle_path, certificate_path, file_path = member_paths(
                no, code, d.file_name or f"{code}.bin"
            )
            put(bundle_path, d.bundle.to_json())
            put(
                certificate_path,
                deposit_certificate(d.bundle, d.report, page_url=page_url(code),
                                    issued_at=issued_at),
            )  # fmt: skip
            held = False
            if d.original is not None and file_path is not None:
                _put_original(zf, hashes, file_path, d, date_time)
                held = True
            item = catalog_item(no=no, bundle=d.bundle, report=d.report, file_name=d.file_name,
                                file=file_path if held else None)  # fmt: skip
            items.append(item)
        catalog = {
            "v": 1,
            "format": CATALOG_FORMAT,
            "title_zh": "证据目录",
            "contract_no": contract_no,
            "depositor": depositor,
            "issued_at": issued_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "origin": origin,
            "completeness": dict(completeness),
            "items": items,
        }
        put(CATALOG_JSON, _json(catalog))
        put(CATALOG_PDF, catalog_pdf(catalog, issued_at=issued_at))
        put(
            CASE_CERTIFICATE,
            case_certificate(contract_no, [(d.bundle, d.report) for d in deposits],
                             page_url=page_url, issued_at=issued_at,
                             completeness=completeness),
        )  # fmt: skip
        put(README, _readme(contract_no, origin, log_vkey).encode())
        zf.writestr(zipfile.ZipInfo(MANIFEST, date_time), manifest(hashes), zipfile.ZIP_DEFLATED)
    return catalog


def _put_original(
    zf: zipfile.ZipFile,
    hashes: dict[str, tuple[str, int]],
    path: str,
    d: CaseDeposit,
    date_time: tuple[int, int, int, int, int, int],
) -> None:
    """Stream the original into the zip, hashing it with SHA-256 (for the manifest) and with
    the deposit's own algorithm (to refuse a file that is not the deposited one)."""
    assert d.original is not None
    assert d.report.entry is not None
    statement = d.report.entry.statement
    sha = hashlib.sha256()
    own = hashlib.new(statement.digest.alg)
    size = 0
    info = zipfile.ZipInfo(path, date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=statement.size >= zipfile.ZIP64_LIMIT) as f:
        for chunk in d.original():
            sha.update(chunk)
            own.update(chunk)
            size += len(chunk)
            f.write(chunk)
    found = Digest(statement.digest.alg, own.digest())
    if found != statement.digest or size != statement.size:
        raise StorageError(
            f"the original held for {d.report.entry.code} does not match its deposit",
            code=str(d.report.entry.code),
            expected=str(statement.digest),
            found=str(found),
        )
    hashes[path] = (sha.hexdigest(), size)


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()


def _readme(contract_no: str, origin: str, log_vkey: str | None) -> str:
    key = (
        f"\n日志公钥（本库公布的；请与您从可信渠道独立获得的公钥比对）/ the log key as published "
        f"(compare it with one you obtained independently):\n  {log_vkey}\n"
        if log_vkey
        else ""
    )
    return f"""证据包 · Court package — cunzheng 存证

合同编号 Contract number: {contract_no}
日志 Log origin: {origin}
{key}
内容 Contents
  catalog.pdf / catalog.json   证据目录 evidence catalog
  certificates/case.pdf        案件存证证书 case certificate
  certificates/NN-CODE.pdf     存证证书 deposit certificates
  bundles/NN-CODE.json         离线验证包（含元数据）offline bundles, with meta (DESIGN §7)
  files/NN-CODE/…              证据原件（如有）originals, where the depository holds them
  manifest.json                每个文件的 SHA-256 the SHA-256 of every member

离线核验整个证据包（无需联网，无需信任存证服务器）：
Check the whole package offline, trusting only the keys you give:

  cunzheng verify --package <this.zip> --log-key '<log vkey>' --tsa-root <tsa-root.pem>

每项存证的离线验证包须通过核验，原件摘要须与存证一致，证据目录须与验证包一致，
清单哈希须全部相符，且不得有多余或缺失的文件；否则命令以非零状态退出并指明出错项。
Every bundle must verify, every original must have its deposited digest, the catalog must agree
with the bundles, the manifest hashes must match and nothing may be extra or missing; otherwise
the command exits non-zero and names each failing item.

证明以离线验证包为准。PDF（证据目录、存证证书）仅为展示，不作为证明；清单未经签名，只能发现
损坏，不能证明文件未被替换。
The bundles are the proof. The PDFs (catalog, certificates) are renderings, not proof; the
manifest is not signed: it catches damage, not substitution.
"""
