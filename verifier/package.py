"""Court packages (issue 7): one zip per case, checked offline with nothing but trust anchors.

A package holds, for the deposits of one case (one loan, by contract number)::

    manifest.json                 {"v": 1, "format": FORMAT, "members": {path: {"sha256", "size"}}}
    README.txt                    how to check the package, in Chinese and English
    catalog.json                  the evidence catalog (证据目录), below
    catalog.pdf                   the same catalog, printable
    certificates/case.pdf         the case's certificate (存证证书)
    bundles/NN-CODE.json          each deposit's bundle with its private meta and salt, as
                                  ``GET /v1/deposits/{code}/retrieve`` serves it
    certificates/NN-CODE.pdf      each deposit's certificate
    files/NN-CODE/NAME            the original file, when the depository holds it

``manifest.json`` lists every other member with its SHA-256 and size. ``catalog.json`` is::

    {"v": 1, "format": CATALOG_FORMAT, "contract_no", "depositor", "issued_at", "origin",
     "completeness": {…},
     "items": [{"no", "code", "index", "kind", "kind_zh", "depositor", "digest": "alg:hex",
                "size", "media_type", "file_name", "received_at", "trusted_time", "tsa",
                "tree_size", "bundle": path, "certificate": path, "file": path | null}]}

:func:`verify_package` checks that every member is listed in the manifest with its hash and
nothing is missing or extra; that the catalog lists at least one deposit; that every bundle
verifies (DESIGN §7) against the log keys and TSA roots given; that every bundle's private meta
opens its statement's ``meta_commitment`` and names the catalog's contract number; that every
deposit is the catalog depositor's; that every held file has its bundle's digest and size; that
the catalog says what the bundles say (file names included, from the meta); that the catalog's
``completeness`` is what :func:`ledger.cases.check_case` says of the bundles' statements (formats
sniffed from the held files, as the depository does, else read from the declared media type);
and that no member is there unreferenced.

What is proved, and what is not:

- the **bundles** are the proof: each is signed by its depositor, included in a log checkpoint
  signed by the log key and time-stamped, and its meta is bound by the signed commitment;
- the **catalog.json** is checked against the bundles, field by field, so a changed catalog
  fails even when the manifest is rewritten to match;
- the **manifest is not signed**: anyone can rewrite it, so it only catches damage (a truncated
  download, a flipped bit), never a deliberate substitution;
- the **PDFs** (catalog.pdf and the certificates) are renderings of the same facts for people;
  nothing in the package proves their content, and the report says so for each
  (``not_proof``: 仅为展示，不作为证明);
- a package cannot prove that the case has no *other* deposits: completeness is judged over
  the deposits the package carries.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from cryptography import x509

from ledger.canonical import loads
from ledger.cases import CaseItem, check_case, normalize_contract_no
from ledger.checkpoint import NoteVerifier
from ledger.code import parse_code
from ledger.entry import DIGEST_ALGORITHMS, Digest
from ledger.errors import CunzhengError
from ledger.kinds import CFB_READ_LIMIT, format_of_media_type, sniff

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

_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
)  # fmt: skip
"""What reading a member of a hostile zip can raise: a bad header or CRC (``BadZipFile``), a
corrupt deflate, bzip2 or LZMA stream (``zlib.error``, ``OSError``, ``LZMAError``), a truncated
one (``EOFError``), encryption or an unknown method (``RuntimeError``, ``NotImplementedError``)."""

Status = Literal["passed", "failed", "not_proof"]


@dataclass(frozen=True, slots=True)
class PackageCheck:
    """One verdict on one thing in the package. ``subject`` names it (a member path or a
    deposit code); ``check`` says what was checked (``package``, ``manifest``, ``member``,
    ``catalog``, ``bundle``, ``meta``, ``file``, ``certificate``, ``completeness``).

    ``status`` is ``passed``, ``failed``, or ``not_proof``: a rendering (a PDF) that is there
    but that nothing in the package proves (仅为展示，不作为证明); it does not fail the
    package, and it is never reported as verified."""

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
    """``VERIFIED`` (核验通过) when no check failed, else ``INVALID`` (验证无效)."""

    checks: tuple[PackageCheck, ...]
    contract_no: str | None
    deposits: int

    @property
    def verdict(self) -> Literal["VERIFIED", "INVALID"]:
        return "INVALID" if self.failures else "VERIFIED"

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

# The JSON type of each catalog field read before it is compared (a boolean is no integer).
_CATALOG_TYPES: dict[str, tuple[type, ...]] = {
    "contract_no": (str,), "depositor": (str,), "completeness": (dict,), "items": (list,),
}  # fmt: skip
_ITEM_TYPES: dict[str, tuple[type, ...]] = {
    "no": (int,), "code": (str,), "bundle": (str,), "certificate": (str,),
    "file": (str, type(None)), "file_name": (str, type(None)),
}  # fmt: skip
_JSON_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "an array",
               type(None): "null", bool: "a boolean", float: "a number"}  # fmt: skip

Check = Callable[..., None]
"""``check(subject, what, status, en, zh, **details)``: record one :class:`PackageCheck`;
``status`` is a :data:`Status` or a bool (passed / failed)."""


@dataclass(frozen=True, slots=True)
class _Item:
    """What checking one catalog item gave: the members it references and, when its entry
    could be read, the deposit as :func:`ledger.cases.check_case` sees it."""

    paths: frozenset[str]
    case_item: CaseItem | None


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

    def check(
        subject: str, what: str, status: bool | Status, en: str, zh: str, **details: Any
    ) -> None:
        if isinstance(status, bool):
            status = "passed" if status else "failed"
        checks.append(PackageCheck(subject, what, status, en, zh, details))

    try:
        zf = zipfile.ZipFile(source)
    except _READ_ERRORS as exc:
        check("package", "package", False, f"not a zip file: {exc}", "不是有效的压缩包")
        return PackageReport(tuple(checks), None, 0)
    with zf:
        return _verify_open(zf, checks, check, log_keys, tsa_roots, check_token)


def _verify_open(
    zf: zipfile.ZipFile,
    checks: list[PackageCheck],
    check: Check,
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
    # It is not signed, so this catches damage only; the bundles are the proof.
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

    # 2. The catalog and the renderings, then each deposit the catalog lists.
    catalog = _catalog(zf, members, check)
    _rendering(members, CATALOG_PDF, CATALOG_PDF, "catalog", check,
               "the printable catalog is missing", "缺少证据目录PDF")  # fmt: skip
    _rendering(members, CASE_CERTIFICATE, CASE_CERTIFICATE, "certificate", check,
               "the case certificate is missing", "缺少案件存证证书")  # fmt: skip
    referenced = {MANIFEST, README, CATALOG_JSON, CATALOG_PDF, CASE_CERTIFICATE}
    contract_no: str | None = None
    results: list[_Item] = []
    if catalog is not None:
        contract_no = catalog["contract_no"]
        items: list[Any] = catalog["items"]
        for position, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                check(f"item {position}", "catalog", False,
                      f"catalog item {position} is not an object",
                      "证据目录条目格式无效")  # fmt: skip
            elif (problem := _type_problem(item, _ITEM_TYPES)) is not None:
                check(f"item {position}", "catalog", False, f"catalog item {position}: {problem}",
                      "证据目录条目格式无效")  # fmt: skip
            else:
                result = _verify_item(zf, members, position, item, catalog["contract_no"],
                                      check, log_keys, tsa_roots, check_token)  # fmt: skip
                referenced |= result.paths
                results.append(result)
        if len(results) == len(items):
            numbers = [item["no"] for item in items]
            codes = [item["code"] for item in items]
            if numbers != list(range(1, len(items) + 1)) or len(set(codes)) != len(codes):
                check(CATALOG_JSON, "catalog", False,
                      "items must be numbered 1, 2, … with each deposit code once",
                      "证据目录序号或存证编码重复、不连续", numbers=numbers)  # fmt: skip
            else:
                check(CATALOG_JSON, "catalog", True, f"lists {len(items)} deposits",
                      f"列出 {len(items)} 项存证", contract_no=contract_no)  # fmt: skip
        _verify_case(catalog, results, check)

    # 3. Nothing unreferenced: a bundle, certificate or file no catalog entry names.
    for name in sorted(set(members) - referenced):
        check(name, "catalog", False, "no catalog entry names this member",
              "证据目录未列出该文件")  # fmt: skip
    deposits = len(catalog["items"]) if catalog is not None else 0
    return PackageReport(tuple(checks), contract_no, deposits)


def _catalog(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], check: Check
) -> dict[str, Any] | None:
    """``catalog.json`` when it is an evidence catalog whose fields have their types, names a
    valid contract number and lists at least one deposit; else ``None`` after saying why."""
    catalog = _json_member(zf, members, CATALOG_JSON, check)
    if catalog is None:
        return None
    if not isinstance(catalog, dict) or catalog.get("format") != CATALOG_FORMAT:
        check(CATALOG_JSON, "catalog", False, f"not a {CATALOG_FORMAT} document",
              "证据目录格式无效")  # fmt: skip
        return None
    problem = _type_problem(catalog, _CATALOG_TYPES)
    if problem is None:
        try:
            normalize_contract_no(catalog["contract_no"])
        except CunzhengError as exc:
            problem = exc.message
    if problem is not None:
        check(CATALOG_JSON, "catalog", False, f"not a valid evidence catalog: {problem}",
              "证据目录格式无效")  # fmt: skip
        return None
    if not catalog["items"]:
        check(CATALOG_JSON, "catalog", False,
              "the catalog lists no deposits: a package must carry the case's evidence",
              "证据目录未列出任何存证")  # fmt: skip
        return None
    return catalog


def _type_problem(obj: dict[str, Any], types: dict[str, tuple[type, ...]]) -> str | None:
    """The first field of ``obj`` whose JSON type is not one of ``types``', said plainly."""
    for name, allowed in types.items():
        value = obj.get(name)
        if isinstance(value, bool) or not isinstance(value, allowed):
            want = " or ".join(_JSON_NAMES[t] for t in allowed)
            got = _JSON_NAMES.get(type(value), type(value).__name__)
            return f"{name} must be {want}, got {got}"
    return None


def _rendering(
    members: dict[str, zipfile.ZipInfo],
    subject: str,
    path: str,
    what: str,
    check: Check,
    missing_en: str,
    missing_zh: str,
) -> None:
    """A PDF rendering: required, but proof of nothing; said so rather than "verified"."""
    if path not in members:
        check(subject, what, False, missing_en, missing_zh, path=path)
    else:
        check(subject, what, "not_proof",
              "rendering, not proof: a PDF for people; its content is not checked, the bundles "
              "are the proof", "仅为展示，不作为证明（以离线验证包为准）", path=path)  # fmt: skip


def _verify_item(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    position: int,
    item: dict[str, Any],
    contract_no: str,
    check: Check,
    log_keys: Sequence[NoteVerifier],
    tsa_roots: Sequence[x509.Certificate],
    check_token: Callable[[bytes, bytes], TimestampInfo] | None,
) -> _Item:
    """Check catalog entry ``position`` (its fields already type-checked): its bundle, the
    bundle's meta against the case, its catalog fields, its file and certificate."""
    subject: str = item["code"]
    paths = frozenset(p for p in (item["bundle"], item["certificate"], item["file"]) if p)
    bundle_path: str = item["bundle"]
    case_item = None
    report = None
    if bundle_path not in members:
        check(subject, "bundle", False, f"the bundle {bundle_path} is missing",
              "缺少该存证的离线验证包", path=bundle_path)  # fmt: skip
    elif (raw := _json_member(zf, members, bundle_path, check)) is not None:
        try:
            bundle = Bundle.from_object(raw)
        except CunzhengError as exc:
            check(subject, "bundle", False, exc.message, "离线验证包格式无效", path=bundle_path)
        else:
            report = verify_bundle(bundle, log_keys=log_keys, tsa_roots=tsa_roots,
                                   check_token=check_token)  # fmt: skip
            _bundle_verdict(subject, bundle_path, report, check)
            if report.entry is not None:
                case_item = _agree(zf, members, position, item, contract_no, bundle, report,
                                   check)  # fmt: skip
    _rendering(members, subject, item["certificate"], "certificate", check,
               f"the certificate {item['certificate']} is missing",
               "缺少该存证的存证证书")  # fmt: skip
    return _Item(paths, case_item)


def _bundle_verdict(subject: str, path: str, report: Report, check: Check) -> None:
    failed = [s for s in report.steps if s.status == "failed"]
    if report.verdict != "VERIFIED":
        check(subject, "bundle", False,
              "the bundle does not verify: " + "; ".join(f"{s.name}: {s.message}" for s in failed),
              "离线验证包核验未通过：" + "；".join(s.message_zh for s in failed),
              path=path, verdict=report.verdict,
              failed_steps=[s.name for s in failed])  # fmt: skip
    else:
        pending = report.trusted_time is None
        check(subject, "bundle", True,
              "verified" + (" (time-stamp still pending)" if pending else
                            f", trusted time {report.trusted_time}"),
              "核验通过" + ("（可信时间戳尚待签发）" if pending else ""),
              path=path)  # fmt: skip


def _agree(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    position: int,
    item: dict[str, Any],
    contract_no: str,
    bundle: Bundle,
    report: Report,
    check: Check,
) -> CaseItem | None:
    """The bundle's meta names the case; the catalog entry says what the bundle says; the held
    file is the deposited one. Returns the deposit as the case check sees it (``None`` when the
    held file is not the deposited one: its format cannot be told)."""
    assert report.entry is not None
    subject: str = item["code"]
    statement = report.entry.statement
    meta = _verify_meta(subject, bundle, report, contract_no, check)
    name = None if meta is None else meta.get("file_name")
    file_name = name if isinstance(name, str) else None
    want = catalog_item(no=position, bundle=bundle, report=report, file_name=file_name,
                        file=None)  # fmt: skip
    try:
        code_ok = parse_code(subject).matches(report.entry.leaf_hash)
    except CunzhengError:
        code_ok = False
    differ = {k: {"catalog": item.get(k), "bundle": want[k]}
              for k in _AGREE if k != "code" and item.get(k) != want[k]}  # fmt: skip
    if not code_ok:
        differ["code"] = {"catalog": subject, "bundle": want["code"]}
    if meta is not None and item["file_name"] != file_name:
        differ["file_name"] = {"catalog": item["file_name"], "bundle": file_name}
    held = member_paths(position, want["code"], file_name or f"{want['code']}.bin")[2]
    if (
        item["bundle"] != want["bundle"]
        or item["certificate"] != want["certificate"]
        or item["file"] not in (None, held)
    ):
        differ["paths"] = {"catalog": [item["bundle"], item["certificate"], item["file"]],
                           "expected": [want["bundle"], want["certificate"], held]}  # fmt: skip
    if differ:
        check(subject, "catalog", False,
              "the catalog differs from the bundle in " + ", ".join(sorted(differ)),
              "证据目录与离线验证包不一致：" + "、".join(sorted(differ)),
              differ=differ)  # fmt: skip
    else:
        check(subject, "catalog", True, "the catalog entry agrees with the bundle",
              "证据目录与离线验证包一致")  # fmt: skip
    if item["file"] is None:
        fmt = format_of_media_type(statement.media_type)
    else:
        held_ok, fmt = _verify_file(zf, members, subject, item["file"], report, check)
        if not held_ok:
            return None  # the depository sniffed the deposited bytes, not these
    return CaseItem(
        kind=statement.kind, format=fmt, digest=str(statement.digest), size=statement.size,
        media_type=statement.media_type, file_name=file_name, index=bundle.index,
        code=str(report.entry.code), depositor=statement.depositor,
    )  # fmt: skip


def _verify_meta(
    subject: str, bundle: Bundle, report: Report, contract_no: str, check: Check
) -> dict[str, Any] | None:
    """The bundle's private meta, when it opens the statement's ``meta_commitment`` (DESIGN §3;
    :func:`~verifier.bundle.verify_bundle` checks the opening); it must name the catalog's
    contract number, or nothing ties the deposit to this case."""
    if bundle.meta is None:
        check(subject, "meta", False,
              "the bundle carries no private meta: nothing ties the deposit to this case",
              "离线验证包未附元数据，无法证明该存证属于本案")  # fmt: skip
        return None
    if not any(s.name == "meta" and s.status == "passed" for s in report.steps):
        check(subject, "meta", False,
              "the bundle's meta does not open its statement's meta_commitment",
              "元数据与承诺值不一致")  # fmt: skip
        return None
    meta = loads(bundle.meta)["meta"]
    if not isinstance(meta, dict):
        check(subject, "meta", False, "the bundle's meta is not an object", "元数据格式无效")
        return None
    named = meta.get("contract_no")
    try:
        same = normalize_contract_no(named) == normalize_contract_no(contract_no)
    except CunzhengError:
        same = False
    if same:
        check(subject, "meta", True,
              "the meta opens the statement's commitment and names the catalog's contract",
              "元数据与承诺值一致，合同编号与证据目录一致")  # fmt: skip
    else:
        check(subject, "meta", False,
              "the deposit's meta names another contract number than the catalog",
              "该存证元数据中的合同编号与证据目录不一致",
              catalog=contract_no, meta=named if isinstance(named, str) else None)  # fmt: skip
    return meta


def _verify_case(catalog: dict[str, Any], results: list[_Item], check: Check) -> None:
    """The case as a whole: one depositor, the catalog's; and the catalog's completeness is
    what :func:`ledger.cases.check_case` says of the deposits the bundles prove."""
    items = [r.case_item for r in results if r.case_item is not None]
    depositor: str = catalog["depositor"]
    others = sorted({i.depositor or "" for i in items if i.depositor != depositor})
    if others:
        check(CATALOG_JSON, "catalog", False,
              "deposits of another depositor than the catalog's are in the package",
              "证据包中有非证据目录所列存证方的存证", catalog=depositor, found=others)  # fmt: skip
    elif items:
        check(CATALOG_JSON, "catalog", True, f"every deposit is {depositor}'s",
              "所有存证均属证据目录所列存证方", depositor=depositor)  # fmt: skip
    if len(items) != len(catalog["items"]):
        check(CATALOG_JSON, "completeness", False,
              "the case's completeness cannot be recomputed: not every deposit (or the held "
              "original) checked out",
              "无法重新计算证据要素完整性：部分存证或原件未通过核验")  # fmt: skip
        return
    try:
        case = check_case(catalog["contract_no"], items, depositor=depositor)
    except CunzhengError as exc:
        check(CATALOG_JSON, "completeness", False,
              f"the case's completeness cannot be recomputed: {exc.message}",
              "无法重新计算证据要素完整性")  # fmt: skip
        return
    want = json.loads(json.dumps(case.to_object() | {"depositor": depositor}))
    stated: dict[str, Any] = catalog["completeness"]
    differ = sorted(k for k in want.keys() | stated.keys() if want.get(k) != stated.get(k))
    if differ:
        check(CATALOG_JSON, "completeness", False,
              "the catalog's completeness differs from what the bundles show in "
              + ", ".join(differ),
              "证据目录中的证据要素完整性与离线验证包不一致：" + "、".join(differ),
              differ=differ, complete={"catalog": stated.get("complete"),
                                       "bundles": want["complete"]})  # fmt: skip
    else:
        check(CATALOG_JSON, "completeness", True,
              "the catalog's completeness is what the bundles show: "
              + ("complete" if case.complete else f"incomplete, missing {case.missing}"),
              "证据目录中的证据要素完整性与离线验证包一致：" + want["complete_zh"],
              complete=case.complete)  # fmt: skip


def _verify_file(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    subject: str,
    path: str,
    report: Report,
    check: Check,
) -> tuple[bool, str | None]:
    """The original the catalog says the package holds: its digest (the deposit's own
    algorithm) and size equal the statement's. Returns whether they do and its format,
    recognised from its bytes as the depository does (:func:`ledger.kinds.sniff`; ZIP and OLE
    containers read whole)."""
    if path not in members:
        check(subject, "file", False, f"the original {path} is missing", "缺少证据原件",
              path=path)  # fmt: skip
        return False, None
    assert report.entry is not None
    statement = report.entry.statement
    alg = statement.digest.alg
    if alg not in DIGEST_ALGORITHMS:  # pragma: no cover - parse_entry admits only these
        return False, None
    h = hashlib.new(alg)
    size = 0
    head = b""
    parts: list[bytes] | None = None
    try:
        with zf.open(members[path]) as f:
            for chunk in _chunks(f):
                if size == 0:
                    head = chunk
                    keep = statement.size <= CFB_READ_LIMIT and sniff(head) in ("ZIP", "CFB")
                    parts = [] if keep else None
                h.update(chunk)
                size += len(chunk)
                if parts is not None and size <= statement.size:
                    parts.append(chunk)
                else:
                    parts = None
    except _READ_ERRORS as exc:
        check(subject, "file", False, f"the original {path} cannot be read: {exc}",
              "证据原件无法读取", path=path)  # fmt: skip
        return False, None
    found = Digest(alg, h.digest())
    if found != statement.digest or size != statement.size:
        check(subject, "file", False, "the original differs from the deposited file",
              "证据原件与存证摘要不一致", path=path, expected=str(statement.digest),
              found=str(found), expected_size=statement.size, found_size=size)  # fmt: skip
        return False, None
    check(subject, "file", True, f"the original has the deposited {alg} digest",
          "证据原件与存证摘要一致", path=path)  # fmt: skip
    if parts is not None:
        return True, sniff(b"".join(parts), whole=True)
    return True, sniff(head, whole=size <= len(head))


def _manifest(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], check: Check
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
    check: Check,
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
    except _READ_ERRORS as exc:  # json's errors are ValueErrors
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
    except _READ_ERRORS:
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
