"""The lender's batch deposit (``cunzheng deposit``) and local case check (``cunzheng case check
--dir``): thousands of evidence files, hashed here, signed here, submitted in batches, receipted
beside the files, resumable.

**Which kind is each file** (DB4401/T 310—2024 Annex B, DESIGN §8), first rule that applies:

1. a manifest row (``--manifest``: CSV or JSON with ``file``, ``kind``, ``case`` and optionally
   ``borrower_commitment``; paths relative to the manifest);
2. ``--kind GLOB=KIND``: the first glob matching the path relative to the directory;
3. the first folder under the directory, named by a kind id or its 要素名
   (``loan_contract/…`` or ``借款合同/…``);
4. the file name beginning with a kind id or 要素名 (``借款合同-补充协议.pdf``), the longest.

A file none of these name is an error before anything is sent. KIND is an id (``loan_contract``)
or an element name (``借款合同``).

**Retries never deposit twice.** A file's statement is deterministic: ``captured_at`` is the
file's modification time and the metadata salt is ``HMAC-SHA256(secret, file, case, kind,
digest)`` with a per-directory secret (``.cunzheng/secret``, mode 0600). Sending the same file
again sends the very same statement, which the depository recognises by its statement key and
answers with the original receipt (``duplicate: true``) instead of appending it again. Network
errors, 429/502/503/504 are retried with backoff (``Retry-After`` honoured); a batch the server
refuses because of one deposit (its ``details.position``) is sent again without that one.

**Receipts** go to ``.cunzheng/receipts/<case>/<path>.json`` under the directory (or the
manifest's folder): the server's receipt (index, code, checkpoint, inclusion proof) and the
signed deposit with its private metadata and salt, which open the statement's commitment later.
A file with a receipt, unchanged since (size and modification time, else its digest), is skipped.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import hmac
import json
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.canonical import jcs
from ledger.cases import CaseItem, CaseReport, check_case, normalize_contract_no
from ledger.entry import (
    EVIDENCE_KINDS,
    SALT_BYTES,
    Deposit,
    Statement,
    digest_file,
    format_time,
    meta_commitment,
)
from ledger.errors import CunzhengError, InvalidInput
from ledger.kinds import media_type_of, sniff_file

from .client import SigningKey, sign_statement

__all__ = [
    "STATE_DIR",
    "BatchResult",
    "DepositClient",
    "Planned",
    "Prepared",
    "kind_named",
    "local_reports",
    "parse_kind_map",
    "plan_directory",
    "plan_manifest",
    "prepare",
    "receipt_path",
    "report_lines",
    "run_batches",
]

STATE_DIR = ".cunzheng"
MANIFEST_FIELDS = ("file", "kind", "case")
_NAMES = {**{k: k for k in EVIDENCE_KINDS}, **{zh: k for k, zh in EVIDENCE_KINDS.items()}}
_RETRY_STATUSES = (429, 500, 502, 503, 504)


def kind_named(name: str) -> str | None:
    """The kind an id or 要素名 names (``借款合同`` → ``loan_contract``), else ``None``."""
    return _NAMES.get(name.strip())


def parse_kind_map(pairs: Iterable[str]) -> list[tuple[str, str]]:
    """``GLOB=KIND`` options, checked."""
    out = []
    for pair in pairs:
        glob, sep, name = pair.rpartition("=")
        kind = kind_named(name)
        if not sep or not glob or kind is None:
            raise InvalidInput(
                f"want GLOB=KIND with KIND one of the Annex B kinds, got {pair!r}",
                want=sorted(EVIDENCE_KINDS),
            )
        out.append((glob, kind))
    return out


@dataclass(frozen=True, slots=True)
class Planned:
    """A file to deposit: where, as which kind, in which case."""

    path: Path
    rel: str
    kind: str
    contract_no: str
    borrower_commitment: str | None = None


def _kind_from_layout(rel: str, kind_map: Sequence[tuple[str, str]]) -> str | None:
    for glob, kind in kind_map:
        if fnmatch.fnmatchcase(rel, glob):
            return kind
    parts = rel.split("/")
    if len(parts) > 1 and (folder := kind_named(parts[0])) is not None:
        return folder
    stem = parts[-1]
    matches = [name for name in _NAMES if stem.startswith(name)]
    return _NAMES[max(matches, key=len)] if matches else None


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and not name.endswith((".deposit.json", ".receipt.json")):
                yield Path(dirpath, name)


def plan_directory(
    root: Path, contract_no: str, kind_map: Sequence[tuple[str, str]] = ()
) -> list[Planned]:
    """Every file under ``root`` (hidden files and folders, like ``.cunzheng``, left out) with
    its kind by the rules in the module docstring; :class:`InvalidInput` naming the files no
    rule names."""
    contract_no = normalize_contract_no(contract_no)
    planned, unknown = [], []
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        kind = _kind_from_layout(rel, kind_map)
        if kind is None:
            unknown.append(rel)
        else:
            planned.append(Planned(path, rel, kind, contract_no))
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} file(s) have no evidence kind: put them in a folder named by the "
            "kind (e.g. loan_contract/ or 借款合同/), start their names with it, or map them "
            "with --kind GLOB=KIND",
            files=unknown[:20],
        )
    if not planned:
        raise InvalidInput(f"no files under {root}")
    return planned


def plan_manifest(manifest: Path) -> list[Planned]:
    """Rows of a CSV (header ``file,kind,case[,borrower_commitment]``) or JSON manifest (a list
    of objects with those keys, or ``{"files": [...]}``); paths relative to the manifest's
    folder, which they may not leave."""
    root = manifest.parent.resolve()
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the manifest {manifest}: {exc}") from exc
    rows: list[Any]
    if manifest.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"manifest {manifest} is not JSON: {exc}") from exc
        listed = data.get("files") if isinstance(data, dict) else data
        if not isinstance(listed, list):
            raise InvalidInput('a JSON manifest is a list of rows, or {"files": [...]}')
        rows = listed
    else:
        reader = csv.DictReader(text.splitlines())
        missing = set(MANIFEST_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise InvalidInput("the manifest's header lacks columns", missing=sorted(missing))
        rows = list(reader)
    planned, seen = [], set()
    for line, row in enumerate(rows, 1):
        where = f"manifest row {line}"
        if not isinstance(row, dict) or not all(
            isinstance(row.get(f), str) for f in MANIFEST_FIELDS
        ):
            raise InvalidInput(f"{where}: needs text fields {', '.join(MANIFEST_FIELDS)}")
        kind = kind_named(row["kind"])
        if kind is None:
            raise InvalidInput(
                f"{where}: unknown kind {row['kind']!r}", want=sorted(EVIDENCE_KINDS)
            )
        path = (root / row["file"]).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise InvalidInput(f"{where}: {row['file']!r} is not a file under {root}")
        contract_no = normalize_contract_no(row["case"])
        rel = path.relative_to(root).as_posix()
        if (rel, contract_no) in seen:
            raise InvalidInput(f"{where}: {rel} is listed twice for case {contract_no}")
        seen.add((rel, contract_no))
        commitment = row.get("borrower_commitment") or None
        planned.append(Planned(path, rel, kind, contract_no, commitment))
    if not planned:
        raise InvalidInput(f"the manifest {manifest} lists no files")
    return planned


def receipt_path(root: Path, item: Planned) -> Path:
    """Where the receipt of ``item`` is kept: ``root/.cunzheng/receipts/<case>/<path>.json``,
    ``<case>`` the contract number percent-encoded (RFC 3986), dots too when it is nothing but
    dots, so that ``.`` and ``..`` name a folder of their own, not this one or its parent.

    >>> receipt_path(Path("/d"), Planned(Path("/d/a.pdf"), "a.pdf", "other", "..")).as_posix()
    '/d/.cunzheng/receipts/%2E%2E/a.pdf.json'
    """
    case = urllib.parse.quote(item.contract_no, safe="")
    if case.strip(".") == "":
        case = "%2E" * len(case)
    return root / STATE_DIR / "receipts" / case / (item.rel + ".json")


def _secret(root: Path) -> bytes:
    path = root / STATE_DIR / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A planned file, hashed and signed, ready to send."""

    item: Planned
    deposit: Deposit
    size: int
    mtime_ns: int
    format: str | None


def _unchanged(receipt: Path, path: Path) -> bool | None:
    """Whether a receipted file is unchanged: ``None`` when it has no (readable) receipt."""
    try:
        kept = json.loads(receipt.read_text(encoding="utf-8"))
        st = path.stat()
        if kept["size"] == st.st_size and kept["mtime_ns"] == st.st_mtime_ns:
            return True
        digest = digest_file(str(path), kept["digest"].split(":")[0])
        return bool(str(digest) == kept["digest"])
    except (OSError, ValueError, KeyError, TypeError, CunzhengError):
        return None


def prepare(
    root: Path,
    item: Planned,
    *,
    key: SigningKey,
    key_id: str,
    depositor: str,
    secret: bytes,
    alg: str | None = None,
    digest_alg: str = "sha256",
) -> Prepared:
    """Hash, recognise and sign one file, deterministically (see the module docstring)."""
    st = item.path.stat()
    digest = digest_file(str(item.path), digest_alg)
    fmt = sniff_file(item.path)
    meta: dict[str, Any] = {"file_name": item.path.name, "contract_no": item.contract_no}
    if item.borrower_commitment is not None:
        meta["borrower_commitment"] = item.borrower_commitment
    label = jcs(
        {"case": item.contract_no, "digest": str(digest), "file": item.rel, "kind": item.kind}
    )
    salt = hmac.new(secret, b"cunzheng salt v1\x00" + label, hashlib.sha256).digest()[:SALT_BYTES]
    statement = Statement.build(
        depositor=depositor,
        kind=item.kind,
        digest=digest,
        size=st.st_size,
        media_type=media_type_of(fmt),
        captured_at=format_time(st.st_mtime_ns // 1_000_000),
        meta_commitment=meta_commitment(salt, meta),
    )
    deposit = Deposit.create(
        statement, sign_statement(statement, key, alg=alg, key_id=key_id), meta=meta, salt=salt
    )
    return Prepared(item, deposit, st.st_size, st.st_mtime_ns, fmt)


class DepositClient:
    """POST ``/v1/deposits`` batches with retries. ``sleep`` is injectable for tests."""

    def __init__(
        self,
        server: str,
        api_key: str,
        *,
        retries: int = 8,
        timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server = server.rstrip("/")
        self.retries = retries
        self.sleep = sleep
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout, trust_env=False
        )

    def close(self) -> None:
        self.http.close()

    def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(0.25 * 2**attempt, 10.0)
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                delay = min(float(after), 60.0)
        self.sleep(delay)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on transport errors and 429/5xx; the final answer."""
        for attempt in range(self.retries + 1):
            try:
                r = self.http.request(method, f"{self.server}{path}", **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise InvalidInput(f"cannot reach {self.server}: {exc}") from exc
                self._wait(attempt, None)
                continue
            if r.status_code in _RETRY_STATUSES and attempt < self.retries:
                self._wait(attempt, r)
                continue
            return r
        raise AssertionError("unreachable")

    def post(self, deposits: Sequence[Deposit]) -> httpx.Response:
        """Send one batch; retried on transport errors and 429/5xx. Returns the final answer."""
        body = jcs({"deposits": [d.to_object() for d in deposits]})
        headers = {"Content-Type": "application/json"}
        return self._send("POST", "/v1/deposits", content=body, headers=headers)

    def get_json(self, path: str, **params: str) -> tuple[int, Any]:
        r = self._send("GET", path, params=params)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, {"detail": r.text[:300]}


@dataclass
class BatchResult:
    """What a run did, per file."""

    deposited: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    """Receipted files whose content changed since: not deposited again (evidence must not
    silently change); move the old receipt away to deposit the new content."""


def _write_receipt(path: Path, prepared: Prepared, receipt: Any, server: str) -> None:
    record = {
        "file": prepared.item.rel,
        "contract_no": prepared.item.contract_no,
        "kind": prepared.item.kind,
        "format": prepared.format,
        "size": prepared.size,
        "mtime_ns": prepared.mtime_ns,
        "digest": str(prepared.deposit.statement.digest),
        "server": server,
        "receipt": receipt,
        "deposit": prepared.deposit.to_object(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_batches(
    root: Path,
    planned: Sequence[Planned],
    client: DepositClient,
    *,
    sign: Callable[[Path, Planned, bytes], Prepared],
    batch_size: int = 500,
    on_hashed: Callable[[int], None] = lambda _n: None,
    on_sent: Callable[[int], None] = lambda _n: None,
) -> BatchResult:
    """Deposit ``planned`` files: skip receipted ones, sign the rest (``sign``), send them
    ``batch_size`` at a time, write each receipt as soon as its batch is acknowledged.
    ``on_hashed`` gets bytes hashed, ``on_sent`` files settled, for a progress bar."""
    result = BatchResult()
    secret = _secret(root)
    todo: list[Planned] = []
    for item in planned:
        state = _unchanged(receipt_path(root, item), item.path)
        if state is None:
            todo.append(item)
            continue
        (result.skipped if state else result.changed).append(item.rel)
        on_sent(1)

    def prepared_batches() -> Iterator[list[Prepared]]:
        batch: list[Prepared] = []
        for item in todo:
            try:
                p = sign(root, item, secret)
            except (OSError, CunzhengError) as exc:
                result.failed[item.rel] = (
                    exc.message if isinstance(exc, CunzhengError) else str(exc)
                )
                on_sent(1)
                continue
            on_hashed(p.size)
            batch.append(p)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    for batch in prepared_batches():
        _send(root, batch, client, result, on_sent)
    return result


def _send(
    root: Path,
    batch: list[Prepared],
    client: DepositClient,
    result: BatchResult,
    on_sent: Callable[[int], None],
) -> None:
    pending = list(batch)
    while pending:
        r = client.post([p.deposit for p in pending])
        if r.status_code == 201:
            receipts = r.json()["receipts"]
            for p, receipt in zip(pending, receipts, strict=True):
                _write_receipt(receipt_path(root, p.item), p, receipt, client.server)
                (result.duplicate if receipt["duplicate"] else result.deposited).append(p.item.rel)
            on_sent(len(pending))
            return
        try:
            problem = r.json()
        except ValueError:
            problem = {"detail": r.text[:300]}
        detail = f"HTTP {r.status_code} {problem.get('code', '')}: {problem.get('detail', '')}"
        position = (problem.get("details") or {}).get("position")
        if r.status_code == 413 and len(pending) > 1:
            half = len(pending) // 2
            _send(root, pending[:half], client, result, on_sent)
            pending = pending[half:]
            continue
        if (
            400 <= r.status_code < 500
            and isinstance(position, int)
            and 0 <= position < len(pending)
        ):
            bad = pending.pop(position)
            result.failed[bad.item.rel] = f"{detail} {problem.get('title_zh', '')}".strip()
            on_sent(1)
            continue
        raise InvalidInput(f"the depository refused the batch: {detail}", status=r.status_code)


def local_reports(root: Path, planned: Sequence[Planned]) -> list[CaseReport]:
    """The completeness of each case among ``planned`` files on disk, before depositing: every
    file hashed (for duplicates) and its format recognised from its bytes."""
    by_case: dict[str, list[CaseItem]] = {}
    for item in planned:
        fmt = sniff_file(item.path)
        by_case.setdefault(item.contract_no, []).append(
            CaseItem(
                kind=item.kind,
                format=fmt,
                digest=str(digest_file(str(item.path))),
                size=item.path.stat().st_size,
                media_type=media_type_of(fmt),
                file_name=item.path.name,
                path=item.rel,
            )
        )
    return [check_case(case, items) for case, items in sorted(by_case.items())]


_STATUS_MARKS = {"present": "✓", "missing": "✗", "not_provided": "–"}
_STATUS_ZH = {"present": "已提供", "missing": "缺少", "not_provided": "未提供（非必备）"}


def report_lines(report: dict[str, Any]) -> list[str]:
    """A case report (:meth:`CaseReport.to_object`, from the server or local) as text lines,
    Chinese first."""
    who = f"  存证方 depositor: {report['depositor']}" if report.get("depositor") else ""
    lines = [f"案件 case {report['contract_no']}{who}  ({report.get('standard', '')})"]
    for e in report["elements"]:
        formats = sorted({report["items"][i].get("format") or "?" for i in e["items"]})
        found = f"{e['count']} 份 file(s) {'/'.join(formats)}" if e["count"] else ""
        lines.append(
            f"  {_STATUS_MARKS[e['status']]} {e['name_zh']} ({e['kind']}): "
            f"{_STATUS_ZH[e['status']]} {e['status']}  {found}".rstrip()
        )
    for issue in report["issues"]:
        mark = "错误 error" if issue["severity"] == "error" else "提示 warning"
        names = [
            report["items"][i].get("path") or report["items"][i].get("file_name") or ""
            for i in issue["items"]
        ]
        where = f"  [{', '.join(n for n in names if n)}]" if any(names) else ""
        lines.append(f"  {mark}: {issue['message_zh']} / {issue['message']}{where}")
    verdict = "COMPLETE" if report["complete"] else "INCOMPLETE"
    lines.append(f"  {report['complete_zh']} {verdict}")
    return lines
