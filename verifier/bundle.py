"""Bundles and verdicts (DESIGN §7): everything needed to judge one deposit offline.

A :class:`Bundle` holds the entry (leaf), its inclusion proof into a checkpoint, that checkpoint's
signed note and RFC 3161 token, the depositor's key as registered (with its window), and — for
those allowed to see them — the private meta and salt. :func:`verify_bundle` walks the steps of
DESIGN §7 with nothing but the trust anchors it is given and returns a :class:`Report`:

- ``VERIFIED`` (核验通过): every step passed (the time-stamp may still be pending);
- ``MISMATCH`` (比对结果不一致): the record is sound but the file or digest presented differs;
- ``NOT_FOUND`` (尚未存证): no deposit answers the question (decided by whoever looked it up);
- ``INVALID``: a proof, signature, code or token does not check out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cryptography import x509

from ledger.canonical import jcs, loads
from ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, split_note
from ledger.code import DepositCode
from ledger.entry import EVIDENCE_KINDS, Digest, Entry, parse_entry
from ledger.errors import CunzhengError, InvalidInput
from ledger.merkle import leaf_hash
from ledger.registry import DepositorKey

from .proof import verify_inclusion
from .signature import load_public_key, verify_statement
from .timestamp import TimestampInfo, verify_token

__all__ = ["VERDICTS_ZH", "Bundle", "Report", "Step", "present", "verify_bundle"]

Verdict = Literal["VERIFIED", "MISMATCH", "NOT_FOUND", "INVALID"]
VERDICTS_ZH: dict[str, str] = {
    "VERIFIED": "核验通过",
    "MISMATCH": "比对结果不一致",
    "NOT_FOUND": "尚未存证",
    "INVALID": "验证无效",
}
Status = Literal["passed", "failed", "not_applicable", "pending"]


@dataclass(frozen=True, slots=True)
class Step:
    """One verification step: what was checked, how it went, and why."""

    name: str
    status: Status
    message: str
    message_zh: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_object(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "status": self.status,
            "message": self.message,
            "message_zh": self.message_zh,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Bundle:
    """One deposit, verifiable offline. Times are Unix ms."""

    leaf: bytes
    index: int
    tree_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    """The signed note the proof leads to: the first time-stamped one that includes the entry
    when there is one, else the latest."""
    timestamp: bytes | None
    """RFC 3161 token over SHA-256 of the checkpoint body."""
    depositor_key: str | None
    """PEM of the key (or certificate) the statement names, as registered."""
    key_window: tuple[int, int | None, int | None] | None = None
    """(not_before, not_after, revoked_at) of that key in the registry."""
    depositor_name: str | None = None
    meta: bytes | None = None
    """JCS of ``{"meta": …, "salt": hex}``: only for those allowed to see it."""

    def to_object(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {
            "v": 1,
            "entry": loads(self.leaf),
            "index": self.index,
            "inclusion_proof": {
                "tree_size": self.tree_size,
                "hashes": [b64(h).decode() for h in self.proof],
            },
            "checkpoint": self.checkpoint.decode(),
            "timestamp": None if self.timestamp is None else b64(self.timestamp).decode(),
            "depositor": {
                "name": self.depositor_name,
                "key": self.depositor_key,
                "key_window": None if self.key_window is None else list(self.key_window),
            },
            "meta": None if self.meta is None else loads(self.meta),
        }

    def to_json(self) -> bytes:
        return jcs(self.to_object())

    @classmethod
    def from_object(cls, obj: Any) -> Bundle:
        try:
            proof = obj["inclusion_proof"]
            depositor = obj["depositor"]
            window = depositor.get("key_window")
            for name in ("key", "name"):
                if not isinstance(depositor.get(name), str | None):
                    raise TypeError(f"depositor.{name} is not a string")
            if window is not None and not _is_window(window):
                raise TypeError(
                    "depositor.key_window must be [not_before, not_after, revoked_at], "
                    "Unix ms (the last two may be null)"
                )
            return cls(
                leaf=jcs(obj["entry"]),
                index=int(obj["index"]),
                tree_size=int(proof["tree_size"]),
                proof=tuple(base64.b64decode(h, validate=True) for h in proof["hashes"]),
                checkpoint=obj["checkpoint"].encode(),
                timestamp=None
                if obj["timestamp"] is None
                else base64.b64decode(obj["timestamp"], validate=True),
                depositor_key=depositor.get("key"),
                key_window=None if window is None else (window[0], window[1], window[2]),
                depositor_name=depositor.get("name"),
                meta=None if obj.get("meta") is None else jcs(obj["meta"]),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InvalidInput(f"not a cunzheng bundle: {exc}") from exc


def _is_window(window: Any) -> bool:
    """A key window as a bundle carries it: ``[int, int | None, int | None]``."""
    if not isinstance(window, list) or len(window) != 3:
        return False
    ms = [v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in window]
    return all(ms) and window[0] is not None


@dataclass(frozen=True, slots=True)
class Report:
    verdict: Verdict
    steps: tuple[Step, ...]
    entry: Entry | None
    checkpoint: Checkpoint | None
    trusted_time: dt.datetime | None
    tsa: str | None

    def to_object(self) -> dict[str, Any]:
        entry = self.entry
        statement = entry.statement if entry else None
        return {
            "verdict": self.verdict,
            "verdict_zh": VERDICTS_ZH[self.verdict],
            "code": str(entry.code) if entry else None,
            "depositor": statement.depositor if statement else None,
            "kind": statement.kind if statement else None,
            "kind_zh": EVIDENCE_KINDS.get(statement.kind) if statement else None,
            "evidence": None
            if statement is None
            else {
                "alg": statement.digest.alg,
                "digest": statement.digest.hex,
                "size": statement.size,
                "media_type": statement.media_type,
            },
            "captured_at": statement.captured_at if statement else None,
            "received_at": entry.received_at if entry else None,
            "trusted_time": None if self.trusted_time is None else self.trusted_time.isoformat(),
            "tsa": self.tsa,
            "checkpoint": None
            if self.checkpoint is None
            else {
                "origin": self.checkpoint.origin,
                "size": self.checkpoint.size,
                "root": base64.b64encode(self.checkpoint.root_hash).decode(),
                "time": self.checkpoint.time_ms,
            },
            "steps": [s.to_object() for s in self.steps],
        }


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def verify_bundle(
    bundle: Bundle,
    *,
    log_keys: Sequence[NoteVerifier],
    tsa_roots: Sequence[x509.Certificate],
    digest: Digest | None = None,
    code: DepositCode | None = None,
    check_token: Callable[[bytes, bytes], TimestampInfo] | None = None,
) -> Report:
    """Check ``bundle`` step by step (DESIGN §7). Never raises on bad bundle content: every
    problem becomes a failed step and the verdict says what it means.

    ``check_token(token, digest)`` replaces the RFC 3161 check against ``tsa_roots`` (a server
    passes a cached one: a token's verdict never changes).
    """
    steps: list[Step] = []

    def step(name: str, status: Status, en: str, zh: str, **details: Any) -> None:
        steps.append(Step(name, status, en, zh, details))

    try:
        entry: Entry | None = parse_entry(bundle.leaf)
    except CunzhengError as exc:
        entry = None
        step("entry", "failed", f"the entry is malformed: {exc.message}", "存证记录格式无效")
    cp: Checkpoint | None = None
    trusted: dt.datetime | None = None
    tsa: str | None = None
    if entry is not None:
        statement = entry.statement
        # 1. The presented file or digest; 2. code <-> entry.
        steps += _presented(entry, digest, code)
        lh = leaf_hash(bundle.leaf)
        # 3. Depositor signature with a key valid at receipt.
        try:
            if bundle.depositor_key is None:
                raise InvalidInput("the bundle carries no depositor key")
            key = load_public_key(bundle.depositor_key.encode())
            verify_statement(statement.signed_hash, entry.sig.alg, entry.sig.value, key)
            received = _ms(entry.received_at)
            if bundle.key_window is not None:
                start, end, revoked = bundle.key_window
                window = DepositorKey(entry.sig.key_id, "", 0, start, end, revoked)
                problem = window.problem_at(received)
                if problem is not None:
                    raise InvalidInput(
                        f"the key was {problem.replace('_', ' ')} when the deposit was received"
                    )
            step("signature", "passed",
                 f"signed by {statement.depositor} with {entry.sig.alg}, key valid at receipt",
                 "存证方签名有效，签名密钥在存证时有效", key_id=entry.sig.key_id)  # fmt: skip
        except CunzhengError as exc:
            step("signature", "failed", exc.message, "存证方签名无效", code=exc.code)
        # 5 (first: the proof needs its root). The checkpoint's signature.
        try:
            cp = open_checkpoint(bundle.checkpoint, log_keys).checkpoint
            step("checkpoint", "passed", f"checkpoint of size {cp.size} signed by the log",
                 "检查点签名有效", tree_size=cp.size)  # fmt: skip
        except CunzhengError as exc:
            step("checkpoint", "failed", exc.message, "检查点签名无效", code=exc.code)
        # 4. Inclusion.
        if cp is None:
            step("inclusion", "failed", "no trusted checkpoint to prove inclusion into",
                 "无可信检查点")  # fmt: skip
        else:
            try:
                if bundle.tree_size != cp.size:
                    raise InvalidInput(
                        f"the proof is for size {bundle.tree_size}, the checkpoint {cp.size}"
                    )
                verify_inclusion(index=bundle.index, size=cp.size, leaf_hash=lh,
                                 path=bundle.proof, root=cp.root_hash)  # fmt: skip
                step("inclusion", "passed",
                     f"entry {bundle.index} is in the append-only log of size {cp.size}",
                     "记录已收录于不可篡改的日志", index=bundle.index)  # fmt: skip
            except CunzhengError as exc:
                step("inclusion", "failed", exc.message, "默克尔包含证明无效", code=exc.code)
        # 6. Trusted time.
        if bundle.timestamp is None:
            step("timestamp", "pending", "no time-stamp covers this entry yet",
                 "可信时间戳尚未签发")  # fmt: skip
        elif cp is None:
            step("timestamp", "failed", "no trusted checkpoint to check the time-stamp against",
                 "无可信检查点")  # fmt: skip
        else:
            try:
                body, _ = split_note(bundle.checkpoint)
                body_hash = hashlib.sha256(body).digest()
                if check_token is None:
                    info = verify_token(bundle.timestamp, digest=body_hash, roots=tsa_roots)
                else:
                    info = check_token(bundle.timestamp, body_hash)
                trusted = info.gen_time
                tsa = None if info.tsa_subject is None else info.tsa_subject.rfc4514_string()
                step("timestamp", "passed", f"time-stamped at {info.gen_time.isoformat()}",
                     "可信时间戳有效", gen_time=info.gen_time.isoformat(), tsa=tsa)  # fmt: skip
            except CunzhengError as exc:
                step("timestamp", "failed", exc.message, "可信时间戳无效", code=exc.code,
                     reason=exc.details.get("reason"))  # fmt: skip
        # Private meta, when present, must open the commitment.
        if bundle.meta is not None:
            try:
                stored = loads(bundle.meta)
                salt = bytes.fromhex(stored["salt"])
                ok = (
                    hashlib.sha256(salt + jcs(stored["meta"])).hexdigest()
                    == statement.meta_commitment
                )
            except (CunzhengError, KeyError, TypeError, ValueError):
                ok = False
            if ok:
                step("meta", "passed", "the metadata opens the statement's commitment",
                     "元数据与承诺值一致")  # fmt: skip
            else:
                step("meta", "failed", "the metadata does not open the commitment",
                     "元数据与承诺值不一致")  # fmt: skip
    return Report(_verdict(steps), tuple(steps), entry, cp, trusted, tsa)


def _presented(entry: Entry, digest: Digest | None, code: DepositCode | None) -> list[Step]:
    """Steps 1 and 2: what the caller presented (a digest, a code) against the entry."""
    statement = entry.statement
    if digest is None:
        first = Step(
            "digest", "not_applicable", "no file or digest was presented", "未提供待比对文件"
        )
    elif digest == statement.digest:
        first = Step("digest", "passed", "the presented digest equals the deposited one",
                     "文件摘要与存证摘要一致", {"alg": digest.alg})  # fmt: skip
    else:
        first = Step("digest", "failed", "the presented file differs from the deposited one",
                     "文件摘要与存证摘要不一致",
                     {"expected": str(statement.digest), "found": str(digest)})  # fmt: skip
    if code is None:
        second = Step(
            "code", "passed", f"the entry's code is {entry.code}", "存证编码由记录计算得出"
        )
    elif code.matches(entry.leaf_hash):
        second = Step(
            "code", "passed", "the deposit code commits to this entry", "存证编码与记录一致"
        )
    else:
        found = {"expected": str(code), "found": str(entry.code)}
        second = Step("code", "failed", "the deposit code does not belong to this entry",
                      "存证编码与记录不符", found)  # fmt: skip
    return [first, second]


def _verdict(steps: Sequence[Step]) -> Verdict:
    failed = {s.name for s in steps if s.status == "failed"}
    if failed - {"digest"}:
        return "INVALID"
    if "digest" in failed:
        return "MISMATCH"
    return "VERIFIED"


def present(report: Report, *, digest: Digest | None, code: DepositCode | None) -> Report:
    """The same record checks with another presented digest or code: the record's own steps
    (signature, checkpoint, inclusion, time-stamp, meta) do not depend on what is presented,
    so a server can keep a report and answer each question with this."""
    if report.entry is None:
        return report
    kept = [s for s in report.steps if s.name not in ("digest", "code")]
    steps = [*_presented(report.entry, digest, code), *kept]
    return replace(report, verdict=_verdict(steps), steps=tuple(steps))
