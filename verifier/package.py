"""Court packages (issue 7): one zip per case, checked offline with nothing but trust anchors.

A package holds, for the deposits of one case (one loan, by contract number)::

    manifest.json                 {"v": 1, "format": FORMAT, "members": {path: {"sha256", "size"}}}
    README.txt                    how to check the package, in Chinese and English
    catalog.json                  the evidence catalog (证据目录), below
    catalog.pdf                   the same catalog, printable
    certificates/case.pdf         the case's certificate (存证证书)
    bundles/NN-CODE.json          each deposit's bundle, as ``GET /v1/deposits/{code}/bundle``
    certificates/NN-CODE.pdf      each deposit's certificate
    files/NN-CODE/NAME            the original file, when the depository holds it

``manifest.json`` lists every other member with its SHA-256 and size. ``catalog.json`` is::

    {"v": 1, "format": CATALOG_FORMAT, "contract_no", "depositor", "issued_at", "origin",
     "completeness": {…} | null,
     "items": [{"no", "code", "index", "kind", "kind_zh", "depositor", "digest": "alg:hex",
                "size", "media_type", "file_name", "received_at", "trusted_time", "tsa",
                "tree_size", "bundle": path, "certificate": path, "file": path | null}]}

:func:`verify_package` checks that every member is listed in the manifest with its hash and
nothing is missing or extra; that every bundle verifies (DESIGN §7) against the log keys and
TSA roots given; that every held file has its bundle's digest and size; that the catalog says
what the bundles say; and that no member is there unreferenced. The manifest is not signed:
the bundles are what carry the proof; the manifest catches damage and substitution of the
members the proofs do not cover (PDFs, catalog), and the catalog check ties it to the bundles.

The catalog's ``file_name`` comes from the deposit's private metadata, which the bundles in a
package do not carry; it is reported, not proved.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from cryptography import x509

from ledger.checkpoint import NoteVerifier
from ledger.code import parse_code
from ledger.entry import DIGEST_ALGORITHMS, Digest
from ledger.errors import CunzhengError

from .bundle import Bundle, Report, verify_bundle
from .timestamp import TimestampInfo

__all__ = [
    "CASE_CERTIFICATE",
    "CATALOG_FORMAT",
    "CATALOG_JSON",
    "CATALOG_PDF",
    "FORMAT",
    "MANIFEST",
    "MAX_JSON_BYTES",
    "README",
    "PackageCheck",
    "PackageReport",
    "catalog_item",
    "manifest",
    "member_paths",
    "verify_package",
]

FORMAT = "cunzheng/court-package/v1"
CATALOG_FORMAT = "cunzheng/evidence-catalog/v1"
MANIFEST = "manifest.json"
README = "README.txt"
CATALOG_JSON = "catalog.json"
CATALOG_PDF = "catalog.pdf"
CASE_CERTIFICATE = "certificates/case.pdf"
MAX_JSON_BYTES = 16 << 20
"""The largest JSON member (manifest, catalog, bundle) read."""
MAX_MEMBERS = 100_000

Status = Literal["passed", "failed"]


@dataclass(frozen=True, slots=True)
class PackageCheck:
    """One verdict on one thing in the package. ``subject`` names it (a member path or a
    deposit code); ``check`` says what was checked (``package``, ``manifest``, ``member``,
    ``catalog``, ``bundle``, ``file``, ``certificate``)."""

    subject: str
    check: str
    status: Status
    message: str
    message_zh: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_object(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "check": self.check,
            "status": self.status,
            "message": self.message,
            "message_zh": self.message_zh,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class PackageReport:
    """``VERIFIED`` (核验通过) when every check passed, else ``INVALID`` (验证无效)."""

    checks: tuple[PackageCheck, ...]
    contract_no: str | None
    deposits: int

    @property
    def verdict(self) -> Literal["VERIFIED", "INVALID"]:
        return "VERIFIED" if all(c.status == "passed" for c in self.checks) else "INVALID"

    @property
    def failures(self) -> list[PackageCheck]:
        return [c for c in self.checks if c.status == "failed"]

    def to_object(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "verdict_zh": "核验通过" if self.verdict == "VERIFIED" else "验证无效",
            "contract_no": self.contract_no,
            "deposits": self.deposits,
            "failures": len(self.failures),
            "checks": [c.to_object() for c in self.checks],
        }


def member_paths(no: int, code: str, file_name: str | None) -> tuple[str, str, str | None]:
    """The bundle, certificate and (with ``file_name``) original paths of catalog item ``no``.

    >>> member_paths(1, "CZ-0000-0000-0000-0000-9", "借款合同.pdf")[2]
    'files/01-CZ-0000-0000-0000-0000-9/借款合同.pdf'
    """
    stem = f"{no:02d}-{code}"
    file = None if file_name is None else f"files/{stem}/{_safe_name(file_name, code)}"
    return f"bundles/{stem}.json", f"certificates/{stem}.pdf", file


def _safe_name(name: str, code: str) -> str:
    """A file name fit for a zip member: the last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:120]
    return base if base not in ("", ".", "..") else f"{code}.bin"


def catalog_item(
    *,
    no: int,
    bundle: Bundle,
    report: Report,
    file_name: str | None,
    file: str | None,
) -> dict[str, Any]:
    """Catalog entry ``no`` for a deposit, from its bundle and its verification report (the
    builder and :func:`verify_package` both derive it this way, so they agree by
    construction when nothing was changed). ``file``: the original's member path, if held."""
    r = report.to_object()
    bundle_path, certificate_path, _ = member_paths(no, r["code"], None)
    evidence = r["evidence"] or {}
    return {
        "no": no,
        "code": r["code"],
        "index": bundle.index,
        "kind": r["kind"],
        "kind_zh": r["kind_zh"],
        "depositor": r["depositor"],
        "digest": f"{evidence.get('alg')}:{evidence.get('digest')}",
        "size": evidence.get("size"),
        "media_type": evidence.get("media_type"),
        "file_name": file_name,
        "received_at": r["received_at"],
        "trusted_time": r["trusted_time"],
        "tsa": r["tsa"],
        "tree_size": bundle.tree_size,
        "bundle": bundle_path,
        "certificate": certificate_path,
        "file": file,
    }


def manifest(members: dict[str, tuple[str, int]]) -> bytes:
    """``manifest.json`` for ``{path: (sha256 hex, size)}``: sorted, UTF-8, one trailing newline."""
    body = {
        "v": 1,
        "format": FORMAT,
        "members": {p: {"sha256": h, "size": n} for p, (h, n) in sorted(members.items())},
    }
    return (json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode()


# Fields of a catalog item that must equal what the bundle's verification says.
_AGREE = ("code", "index", "kind", "kind_zh", "depositor", "digest", "size", "media_type",
          "received_at", "trusted_time", "tsa", "tree_size")  # fmt: skip


def verify_package(
    source: str | Path | IO[bytes],
    *,
    log_keys: Sequence[NoteVerifier],
    tsa_roots: Sequence[x509.Certificate],
    check_token: Callable[[bytes, bytes], TimestampInfo] | None = None,
) -> PackageReport:
    """Check a court package (a path or a binary file object) offline. Never raises on bad
    package content: each problem is a failed :class:`PackageCheck` naming what it concerns."""
    checks: list[PackageCheck] = []

    def check(subject: str, what: str, ok: bool, en: str, zh: str, **details: Any) -> None:
        checks.append(PackageCheck(subject, what, "passed" if ok else "failed", en, zh, details))

    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        check("package", "package", False, f"not a zip file: {exc}", "不是有效的压缩包")
        return PackageReport(tuple(checks), None, 0)
    with zf:
        return _verify_open(zf, checks, check, log_keys, tsa_roots, check_token)


def _verify_open(
    zf: zipfile.ZipFile,
    checks: list[PackageCheck],
    check: Callable[..., None],
    log_keys: Sequence[NoteVerifier],
    tsa_roots: Sequence[x509.Certificate],
    check_token: Callable[[bytes, bytes], TimestampInfo] | None,
) -> PackageReport:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        check("package", "package", False, f"{len(infos)} members, at most {MAX_MEMBERS}",
              "压缩包成员过多")  # fmt: skip
        return PackageReport(tuple(checks), None, 0)
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if name in members:
            check(name, "member", False, "the package holds this path twice", "同一路径出现两次")
        elif not _safe_path(name):
            check(name, "member", False, "an unsafe or directory path", "成员路径不安全")
        else:
            members[name] = info

    # 1. The manifest: every member listed, hashes and sizes equal, nothing missing or extra.
    listed = _manifest(zf, members, check)
    for name in sorted(members):
        if name == MANIFEST or listed is None:
            continue
        want = listed.get(name)
        if want is None:
            check(name, "member", False, "extra member: not in the manifest",
                  "多余的文件：清单中没有列出")  # fmt: skip
            continue
        found = _sha256(zf, members[name])
        if found is None:
            check(name, "member", False, "cannot be read (damaged or too large)", "无法读取")
        elif found != want:
            check(name, "member", False, "its SHA-256 or size differs from the manifest",
                  "哈希值或大小与清单不一致",
                  expected={"sha256": want[0], "size": want[1]},
                  found={"sha256": found[0], "size": found[1]})  # fmt: skip
        else:
            check(name, "member", True, "matches the manifest", "与清单一致")
    for name in sorted(set(listed or ()) - set(members)):
        check(name, "member", False, "missing: listed in the manifest, not in the package",
              "缺少文件：清单中列出但压缩包中没有")  # fmt: skip

    # 2. The catalog, then each deposit it lists.
    catalog = _json_member(zf, members, CATALOG_JSON, check)
    if CATALOG_PDF not in members:
        check(CATALOG_PDF, "catalog", False, "the printable catalog is missing", "缺少证据目录PDF")
    if CASE_CERTIFICATE not in members:
        check(CASE_CERTIFICATE, "certificate", False, "the case certificate is missing",
              "缺少案件存证证书")  # fmt: skip
    referenced = {MANIFEST, README, CATALOG_JSON, CATALOG_PDF, CASE_CERTIFICATE}
    contract_no: str | None = None
    items: list[Any] = []
    if catalog is not None:
        if (
            not isinstance(catalog, dict)
            or catalog.get("format") != CATALOG_FORMAT
            or not (isinstance(catalog.get("items"), list))
        ):
            check(CATALOG_JSON, "catalog", False, f"not a {CATALOG_FORMAT} document",
                  "证据目录格式无效")  # fmt: skip
        else:
            contract_no = catalog.get("contract_no")
            items = catalog["items"]
            numbers = [i.get("no") if isinstance(i, dict) else None for i in items]
            codes = [i.get("code") if isinstance(i, dict) else None for i in items]
            if numbers != list(range(1, len(items) + 1)) or len(set(codes)) != len(codes):
                check(CATALOG_JSON, "catalog", False,
                      "items must be numbered 1, 2, … with each deposit code once",
                      "证据目录序号或存证编码重复、不连续", numbers=numbers)  # fmt: skip
            else:
                check(CATALOG_JSON, "catalog", True, f"lists {len(items)} deposits",
                      f"列出 {len(items)} 项存证", contract_no=contract_no)  # fmt: skip
    for position, item in enumerate(items, start=1):
        referenced |= _verify_item(zf, members, position, item, check, log_keys, tsa_roots,
                                   check_token)  # fmt: skip

    # 3. Nothing unreferenced: a bundle, certificate or file no catalog entry names.
    for name in sorted(set(members) - referenced):
        check(name, "catalog", False, "no catalog entry names this member",
              "证据目录未列出该文件")  # fmt: skip
    return PackageReport(tuple(checks), contract_no if isinstance(contract_no, str) else None,
                         len(items))  # fmt: skip


def _verify_item(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    position: int,
    item: Any,
    check: Callable[..., None],
    log_keys: Sequence[NoteVerifier],
    tsa_roots: Sequence[x509.Certificate],
    check_token: Callable[[bytes, bytes], TimestampInfo] | None,
) -> set[str]:
    """Check catalog entry ``position``: its bundle, its catalog fields, its file and
    certificate. Returns the member paths it references."""
    if not isinstance(item, dict):
        check(f"item {position}", "catalog", False, "a catalog item is not an object",
              "证据目录条目无效")  # fmt: skip
        return set()
    subject = str(item.get("code") or f"item {position}")
    paths = {p for p in (item.get("bundle"), item.get("certificate"), item.get("file"))
             if isinstance(p, str)}  # fmt: skip
    bundle_path = item.get("bundle")
    if not isinstance(bundle_path, str) or bundle_path not in members:
        check(subject, "bundle", False, f"the bundle {bundle_path} is missing",
              "缺少该存证的离线验证包", path=bundle_path)  # fmt: skip
        return paths
    raw = _json_member(zf, members, bundle_path, check)
    if raw is None:
        return paths
    try:
        bundle = Bundle.from_object(raw)
    except CunzhengError as exc:
        check(subject, "bundle", False, exc.message, "离线验证包格式无效", path=bundle_path)
        return paths
    report = verify_bundle(bundle, log_keys=log_keys, tsa_roots=tsa_roots,
                           check_token=check_token)  # fmt: skip
    failed = [s for s in report.steps if s.status == "failed"]
    if report.verdict != "VERIFIED":
        check(subject, "bundle", False,
              "the bundle does not verify: " + "; ".join(f"{s.name}: {s.message}" for s in failed),
              "离线验证包核验未通过：" + "；".join(s.message_zh for s in failed),
              path=bundle_path, verdict=report.verdict,
              failed_steps=[s.name for s in failed])  # fmt: skip
    else:
        pending = report.trusted_time is None
        check(subject, "bundle", True,
              "verified" + (" (time-stamp still pending)" if pending else
                            f", trusted time {report.trusted_time}"),
              "核验通过" + ("（可信时间戳尚待签发）" if pending else ""),
              path=bundle_path)  # fmt: skip
    # The catalog says what the bundle says.
    if report.entry is not None:
        want = catalog_item(no=position, bundle=bundle, report=report,
                            file_name=None, file=None)  # fmt: skip
        try:
            code_ok = parse_code(str(item.get("code"))).matches(report.entry.leaf_hash)
        except CunzhengError:
            code_ok = False
        differ = {k: {"catalog": item.get(k), "bundle": want[k]}
                  for k in _AGREE if k != "code" and item.get(k) != want[k]}  # fmt: skip
        if not code_ok:
            differ["code"] = {"catalog": item.get("code"), "bundle": want["code"]}
        if bundle_path != want["bundle"] or item.get("certificate") != want["certificate"]:
            differ["paths"] = {"catalog": [bundle_path, item.get("certificate")],
                               "expected": [want["bundle"], want["certificate"]]}  # fmt: skip
        if differ:
            check(subject, "catalog", False,
                  "the catalog differs from the bundle in " + ", ".join(sorted(differ)),
                  "证据目录与离线验证包不一致：" + "、".join(sorted(differ)),
                  differ=differ)  # fmt: skip
        else:
            check(subject, "catalog", True, "the catalog entry agrees with the bundle",
                  "证据目录与离线验证包一致")  # fmt: skip
        _verify_file(zf, members, subject, item, report, check)
    certificate = item.get("certificate")
    if not isinstance(certificate, str) or certificate not in members:
        check(subject, "certificate", False, f"the certificate {certificate} is missing",
              "缺少该存证的存证证书")  # fmt: skip
    return paths


def _verify_file(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    subject: str,
    item: dict[str, Any],
    report: Report,
    check: Callable[..., None],
) -> None:
    """The original, when the catalog says the package holds it: its digest (the deposit's own
    algorithm) and size equal the statement's."""
    path = item.get("file")
    if path is None:
        return
    if not isinstance(path, str) or path not in members:
        check(subject, "file", False, f"the original {path} is missing", "缺少证据原件",
              path=path)  # fmt: skip
        return
    assert report.entry is not None
    statement = report.entry.statement
    alg = statement.digest.alg
    if alg not in DIGEST_ALGORITHMS:  # pragma: no cover - parse_entry admits only these
        return
    h = hashlib.new(alg)
    size = 0
    with zf.open(members[path]) as f:
        for chunk in _chunks(f):
            h.update(chunk)
            size += len(chunk)
    found = Digest(alg, h.digest())
    if found != statement.digest or size != statement.size:
        check(subject, "file", False, "the original differs from the deposited file",
              "证据原件与存证摘要不一致", path=path, expected=str(statement.digest),
              found=str(found), expected_size=statement.size, found_size=size)  # fmt: skip
    else:
        check(subject, "file", True, f"the original has the deposited {alg} digest",
              "证据原件与存证摘要一致", path=path)  # fmt: skip


def _manifest(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], check: Callable[..., None]
) -> dict[str, tuple[str, int]] | None:
    raw = _json_member(zf, members, MANIFEST, check)
    if raw is None:
        return None
    try:
        if raw["format"] != FORMAT:
            raise ValueError(f"format is {raw['format']!r}, want {FORMAT!r}")
        listed: dict[str, tuple[str, int]] = {}
        for path, entry in raw["members"].items():
            sha, size = entry["sha256"], entry["size"]
            if not isinstance(sha, str) or not isinstance(size, int) or isinstance(size, bool):
                raise TypeError(f"{path}: sha256 must be a string and size an integer")
            listed[path] = (sha, size)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        check(MANIFEST, "manifest", False, f"not a {FORMAT} manifest: {exc}", "文件清单格式无效")
        return None
    if MANIFEST in listed:
        check(MANIFEST, "manifest", False, "the manifest lists itself", "文件清单格式无效")
        return None
    check(MANIFEST, "manifest", True, f"lists {len(listed)} members", f"列出 {len(listed)} 个文件")
    return listed


def _json_member(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str,
    check: Callable[..., None],
) -> Any:  # fmt: skip
    """A JSON member, or ``None`` after recording why it could not be had."""
    info = members.get(name)
    what = "manifest" if name == MANIFEST else "catalog" if name == CATALOG_JSON else "bundle"
    if info is None:
        check(name, what, False, "missing", "缺少该文件")
        return None
    try:
        with zf.open(info) as f:
            data = f.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            raise ValueError(f"larger than {MAX_JSON_BYTES} bytes")
        return json.loads(data)
    except (OSError, ValueError, zipfile.BadZipFile, RuntimeError) as exc:
        check(name, what, False, f"not readable JSON: {exc}", "无法读取JSON")
        return None


def _sha256(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int] | None:
    h = hashlib.sha256()
    size = 0
    try:
        with zf.open(info) as f:
            for chunk in _chunks(f):
                h.update(chunk)
                size += len(chunk)
    except (OSError, zipfile.BadZipFile, RuntimeError, EOFError):
        return None
    return h.hexdigest(), size


def _chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


def _safe_path(name: str) -> bool:
    """A relative path of plain parts: no absolute path, ``..``, backslash or directory entry."""
    if not name or name.startswith("/") or name.endswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))
