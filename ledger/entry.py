"""Statements, entries and evidence digests (DESIGN §2, §3).

A **statement** is what a depositor signs: canonical JSON (RFC 8785) of a fixed schema with no
personal data. An **entry** — the leaf — is the JCS of the statement, its signature, the server's
receipt time and, optionally, an RFC 3161 token the depositor brought. Everything here is pure and
validating: malformed input raises a typed :class:`~ledger.errors.InvalidInput` subclass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from binascii import b2a_base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .canonical import MAX_SAFE_INTEGER, jcs, jcs_of_checked, loads
from .cases import check_case_meta
from .code import DepositCode
from .errors import (
    InvalidDigest,
    InvalidInput,
    InvalidMeta,
    InvalidSignatureField,
    InvalidStatement,
    TooLarge,
)
from .merkle import leaf_hash

__all__ = [
    "DIGEST_ALGORITHMS",
    "EVIDENCE_KINDS",
    "MAX_ENTRY_BYTES",
    "MAX_META_BYTES",
    "MAX_STATEMENT_BYTES",
    "MAX_TOKEN_BYTES",
    "SALT_BYTES",
    "SIGNATURE_ALGORITHMS",
    "Deposit",
    "Digest",
    "Entry",
    "Signature",
    "Statement",
    "build_entry",
    "canonical_meta",
    "digest_file",
    "format_time",
    "meta_commitment",
    "parse_entry",
]

DIGEST_ALGORITHMS: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64, "sm3": 32}
"""Evidence digest algorithms and their digest sizes in bytes."""
DIGEST_ALGORITHM_IDS: dict[str, int] = {"sha256": 1, "sha384": 2, "sha512": 3, "sm3": 4}
"""Stable one-byte ids of the algorithms, for index keys."""

EVIDENCE_KINDS: dict[str, str] = {
    "credit_line_contract": "额度合同",
    "loan_contract": "借款合同",
    "loan_voucher": "借款借据",
    "disbursement_voucher": "放款凭证",
    "repayment_details": "借款人还款及欠款明细",
    "identity_verification": "借款人身份验证材料",
    "loan_process_record": "借款流程的展示材料",
    "other": "其他证据材料",
    "evidence_catalog": "证据目录",
}
"""DB4401/T 310—2024 Annex B evidence elements (DESIGN §8)."""

SIGNATURE_ALGORITHMS = (
    "ed25519",
    "ecdsa-p256-sha256",
    "rsa-pss-sha256",
    "rsa-pkcs1v15-sha256",
    "sm2-sm3",
)
"""Depositor signature algorithms a statement may be signed with (DESIGN §3)."""

MAX_STATEMENT_BYTES = 2048
MAX_META_BYTES = 16 * 1024
MAX_TOKEN_BYTES = 16 * 1024
MAX_SIGNATURE_BYTES = 1024
MAX_ENTRY_BYTES = 32 * 1024
SALT_BYTES = 32

_STATEMENT_KEYS = frozenset(
    {"v", "depositor", "kind", "evidence", "captured_at", "meta_commitment"}
)
_EVIDENCE_KEYS = frozenset({"alg", "digest", "size", "media_type"})
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True, slots=True)
class Digest:
    """An evidence digest: algorithm and value. Written ``alg:hex``.

    >>> Digest.parse("SHA256:" + "AB" * 32).alg
    'sha256'
    """

    alg: str
    value: bytes

    def __post_init__(self) -> None:
        size = DIGEST_ALGORITHMS.get(self.alg)
        if size is None:
            raise InvalidDigest(
                f"unknown digest algorithm {self.alg!r}",
                got=self.alg,
                want=sorted(DIGEST_ALGORITHMS),
            )
        if len(self.value) != size:
            raise InvalidDigest(
                f"a {self.alg} digest has {size} bytes, got {len(self.value)}",
                got=len(self.value),
                want=size,
            )

    @classmethod
    def from_hex(cls, alg: str, hex_digest: str) -> Digest:
        if not isinstance(alg, str) or not isinstance(hex_digest, str):
            raise InvalidDigest("digest algorithm and value must be strings")
        alg = alg.lower()
        if alg not in DIGEST_ALGORITHMS:
            raise InvalidDigest(
                f"unknown digest algorithm {alg!r}", got=alg, want=sorted(DIGEST_ALGORITHMS)
            )
        want = 2 * DIGEST_ALGORITHMS[alg]
        if len(hex_digest) != want:
            raise InvalidDigest(
                f"a {alg} digest has {want} hex characters, got {len(hex_digest)}",
                got=len(hex_digest),
                want=want,
            )
        try:
            value = bytes.fromhex(hex_digest)
        except ValueError as exc:
            raise InvalidDigest("digest is not hexadecimal") from exc
        return cls(alg, value)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Read ``alg:hex`` (any case)."""
        if not isinstance(text, str) or ":" not in text:
            raise InvalidDigest("a digest is written alg:hex, e.g. sha256:9f86d0…")
        alg, _, hex_digest = text.strip().partition(":")
        return cls.from_hex(alg, hex_digest.lower())

    @property
    def hex(self) -> str:
        return self.value.hex()

    @property
    def index_key(self) -> bytes:
        """Algorithm id byte ‖ digest: the key prefix of the by-digest index."""
        return bytes((DIGEST_ALGORITHM_IDS[self.alg],)) + self.value

    def __str__(self) -> str:
        return f"{self.alg}:{self.value.hex()}"


def digest_file(path: str, alg: str = "sha256", *, chunk: int = 1 << 20) -> Digest:
    """Hash a file the way a depositor or a verifier does."""
    if alg not in DIGEST_ALGORITHMS:
        raise InvalidDigest(f"unknown digest algorithm {alg!r}", want=sorted(DIGEST_ALGORITHMS))
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return Digest(alg, h.digest())


@functools.lru_cache(maxsize=256)
def format_time(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, as written in entries: ``2026-11-24T08:42:24.123Z``.
    Kept for the last few values: every deposit admitted in one turn has the same."""
    t = datetime.fromtimestamp(ms / 1000, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _check_size(what: str, data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise TooLarge(
            f"{what} is {len(data)} bytes, at most {limit} allowed", got=len(data), limit=limit
        )


def _check_time(value: Any, field: str) -> str:
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise InvalidStatement(
            f"{field} must be an RFC 3339 date-time such as 2026-11-24T08:42:24Z", field=field
        )
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidStatement(f"{field} is not a valid date-time: {exc}", field=field) from exc
    return value


@dataclass(frozen=True, slots=True)
class Statement:
    """A validated depositor statement. ``raw`` is its canonical bytes, exactly as signed."""

    raw: bytes
    depositor: str
    kind: str
    digest: Digest
    size: int
    media_type: str
    captured_at: str
    meta_commitment: str
    key: bytes
    """Digest index key ‖ SHA-256(raw)[:16]: names this exact statement under its digest.
    A statement deposited again (a retry) has the same key and is not appended twice."""

    @classmethod
    def from_bytes(cls, raw: bytes) -> Statement:
        """Validate a statement given as bytes; they must be its RFC 8785 canonical form."""
        if not isinstance(raw, bytes | bytearray):
            raise InvalidStatement("a statement is given as its canonical JSON bytes")
        _check_size("statement", raw, MAX_STATEMENT_BYTES)
        try:
            obj = loads(raw)
        except InvalidInput as exc:
            raise InvalidStatement(f"statement is {exc.message}") from exc
        statement = cls.from_object(obj)
        if statement.raw != raw:
            raise InvalidStatement(
                "statement is not in RFC 8785 canonical form (sorted keys, no whitespace, "
                "no duplicate keys); sign and send JCS(statement)",
            )
        return statement

    @classmethod
    def from_object(cls, obj: Any) -> Statement:
        """Validate a statement given as a parsed JSON object; compute its canonical bytes."""
        if not isinstance(obj, dict):
            raise InvalidStatement("a statement is a JSON object")
        keys = obj.keys()
        if keys != _STATEMENT_KEYS:
            raise InvalidStatement(
                "statement fields are wrong",
                missing=sorted(_STATEMENT_KEYS - keys),
                unexpected=sorted(keys - _STATEMENT_KEYS),
            )
        if obj["v"] != 1 or type(obj["v"]) is not int:
            raise InvalidStatement(f"unsupported statement version {obj['v']!r}, want 1")
        depositor = obj["depositor"]
        if not isinstance(depositor, str) or _ID.fullmatch(depositor) is None:
            raise InvalidStatement(
                "depositor must be a registered id: lower-case letters, digits, '.', '_', '-'",
                field="depositor",
            )
        kind = obj["kind"]
        if not isinstance(kind, str) or kind not in EVIDENCE_KINDS:
            raise InvalidStatement(
                f"unknown evidence kind {kind!r}", field="kind", want=sorted(EVIDENCE_KINDS)
            )
        evidence = obj["evidence"]
        if not isinstance(evidence, dict) or evidence.keys() != _EVIDENCE_KEYS:
            raise InvalidStatement(
                "evidence must have exactly alg, digest, size and media_type", field="evidence"
            )
        alg, hex_digest = evidence["alg"], evidence["digest"]
        if not isinstance(hex_digest, str) or hex_digest != hex_digest.lower():
            raise InvalidDigest("evidence digest must be lower-case hexadecimal")
        digest = Digest.from_hex(alg, hex_digest)
        if alg != digest.alg:
            raise InvalidDigest("evidence alg must be lower-case", got=alg)
        size = evidence["size"]
        if type(size) is not int or not 0 <= size <= MAX_SAFE_INTEGER:
            raise InvalidStatement(
                "evidence size must be a whole number of bytes", field="evidence.size"
            )
        media_type = evidence["media_type"]
        if not isinstance(media_type, str) or _MEDIA_TYPE.fullmatch(media_type) is None:
            raise InvalidStatement(
                "evidence media_type must be a lower-case type/subtype such as application/pdf",
                field="evidence.media_type",
            )
        captured_at = _check_time(obj["captured_at"], "captured_at")
        commitment = obj["meta_commitment"]
        if not isinstance(commitment, str) or _HEX64.fullmatch(commitment) is None:
            raise InvalidStatement(
                "meta_commitment must be 64 lower-case hex characters (SHA-256)",
                field="meta_commitment",
            )
        # Every key and value was checked above: fixed ASCII keys, strings and safe integers.
        raw = jcs_of_checked(obj)
        _check_size("statement", raw, MAX_STATEMENT_BYTES)
        key = digest.index_key + hashlib.sha256(raw).digest()[:16]
        return cls(raw, depositor, kind, digest, size, media_type, captured_at, commitment, key)

    @classmethod
    def build(
        cls,
        *,
        depositor: str,
        kind: str,
        digest: Digest,
        size: int,
        media_type: str,
        captured_at: str,
        meta_commitment: str,
    ) -> Statement:
        """Assemble and validate a statement from its fields."""
        return cls.from_object(
            {
                "v": 1,
                "depositor": depositor,
                "kind": kind,
                "evidence": {
                    "alg": digest.alg,
                    "digest": digest.hex,
                    "size": size,
                    "media_type": media_type,
                },
                "captured_at": captured_at,
                "meta_commitment": meta_commitment,
            }
        )

    @property
    def signed_hash(self) -> bytes:
        """SHA-256(JCS(statement)): what the depositor's signature covers."""
        return hashlib.sha256(self.raw).digest()


@dataclass(frozen=True, slots=True)
class Signature:
    """A depositor's signature over :attr:`Statement.signed_hash`."""

    alg: str
    key_id: str
    value: bytes

    def __post_init__(self) -> None:
        if self.alg not in SIGNATURE_ALGORITHMS:
            raise InvalidSignatureField(
                f"unknown signature algorithm {self.alg!r}",
                got=self.alg,
                want=list(SIGNATURE_ALGORITHMS),
            )
        if not isinstance(self.key_id, str) or _KEY_ID.fullmatch(self.key_id) is None:
            raise InvalidSignatureField(
                "key_id must be 1–128 letters, digits, '.', '_', ':' or '-'"
            )
        if not 0 < len(self.value) <= MAX_SIGNATURE_BYTES:
            raise InvalidSignatureField(
                f"signature value must be 1–{MAX_SIGNATURE_BYTES} bytes, got {len(self.value)}"
            )

    @classmethod
    def from_object(cls, obj: Any) -> Signature:
        if not isinstance(obj, dict) or obj.keys() != {"alg", "key_id", "value"}:
            raise InvalidSignatureField("sig must have exactly alg, key_id and value")
        value = obj["value"]
        if not isinstance(value, str):
            raise InvalidSignatureField("sig value must be base64 text")
        return cls(obj["alg"], obj["key_id"], _b64decode(value, InvalidSignatureField, "sig value"))

    def to_object(self) -> dict[str, str]:
        return {
            "alg": self.alg,
            "key_id": self.key_id,
            "value": base64.b64encode(self.value).decode(),
        }


def _b64decode(text: str, error: type[InvalidInput], what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc


def canonical_meta(meta: Any) -> bytes:
    """JCS of private metadata, checked: a JSON object of at most ``MAX_META_BYTES``."""
    if not isinstance(meta, dict):
        raise InvalidMeta("meta must be a JSON object")
    try:
        canonical = jcs(meta)
    except InvalidInput as exc:
        raise InvalidMeta(f"meta {exc.message}") from exc
    _check_size("meta", canonical, MAX_META_BYTES)
    return canonical


def meta_commitment(salt: bytes, meta: dict[str, Any]) -> str:
    """hex(SHA-256(salt ‖ JCS(meta))): the statement's commitment to its private metadata."""
    return hashlib.sha256(salt + jcs(meta)).hexdigest()


@dataclass(frozen=True, slots=True)
class Deposit:
    """One validated deposit, ready for the sequencer.

    ``meta`` and ``salt`` are private (kept by the store, never in the log); when given they must
    open the statement's ``meta_commitment``, and their case fields pass
    :func:`~ledger.cases.check_case_meta` (a contract number; the borrower only as a commitment).
    ``tst`` is an RFC 3161 token the depositor brought for its own evidence digest (DER).
    """

    statement: Statement
    sig: Signature
    meta: bytes | None = None
    """JCS of ``{"meta": …, "salt": hex}``, as stored."""
    tst: bytes | None = None
    case: bytes | None = None
    """:func:`~ledger.cases.case_key` of the meta's ``contract_no``, if it names one: the store
    indexes the deposit under it, in the block's own write."""

    @classmethod
    def create(
        cls,
        statement: Statement | bytes,
        sig: Signature,
        *,
        meta: dict[str, Any] | None = None,
        salt: bytes | None = None,
        tst: bytes | None = None,
    ) -> Deposit:
        """Validate a deposit: statement, signature fields, metadata commitment, token size."""
        if not isinstance(statement, Statement):
            statement = Statement.from_bytes(statement)
        if not isinstance(sig, Signature):
            raise InvalidSignatureField("sig must be a Signature")
        stored_meta = case = None
        if (meta is None) != (salt is None):
            raise InvalidMeta("meta and salt are given together or not at all")
        if meta is not None and salt is not None:
            canonical = canonical_meta(meta)
            case = check_case_meta(meta)
            if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
                raise InvalidMeta(f"salt must be {SALT_BYTES} random bytes")
            if hashlib.sha256(salt + canonical).hexdigest() != statement.meta_commitment:
                raise InvalidMeta(
                    "meta and salt do not open the statement's meta_commitment",
                    want=statement.meta_commitment,
                )
            stored_meta = b'{"meta":' + canonical + b',"salt":"' + salt.hex().encode() + b'"}'
        if tst is not None:
            if not isinstance(tst, bytes) or not tst:
                raise InvalidInput("tst must be the DER bytes of an RFC 3161 token")
            _check_size("tst", tst, MAX_TOKEN_BYTES)
        return cls(statement, sig, stored_meta, tst, case)

    @classmethod
    def from_object(cls, obj: Any) -> Deposit:
        """Read a deposit request: ``{"statement": {…}, "sig": {…}, "meta"?: {…}, "salt"?: hex,
        "tst"?: base64}`` (what ``cunzheng sign`` writes and the API accepts)."""
        if not isinstance(obj, dict) or not {"statement", "sig"} <= obj.keys():
            raise InvalidInput("a deposit has a statement and a sig")
        unexpected = obj.keys() - {"statement", "sig", "meta", "salt", "tst"}
        if unexpected:
            raise InvalidInput("unexpected deposit fields", unexpected=sorted(unexpected))
        salt = obj.get("salt")
        if salt is not None:
            if not isinstance(salt, str) or re.fullmatch(r"[0-9a-f]{64}", salt) is None:
                raise InvalidMeta(f"salt must be {2 * SALT_BYTES} lower-case hex characters")
            salt = bytes.fromhex(salt)
        tst = obj.get("tst")
        if tst is not None:
            if not isinstance(tst, str):
                raise InvalidInput("tst must be base64 text")
            tst = _b64decode(tst, InvalidInput, "tst")
        return cls.create(
            Statement.from_object(obj["statement"]),
            Signature.from_object(obj["sig"]),
            meta=obj.get("meta"),
            salt=salt,
            tst=tst,
        )

    def to_object(self) -> dict[str, Any]:
        """The deposit request this deposit was read from (the inverse of :meth:`from_object`)."""
        obj: dict[str, Any] = {"statement": loads(self.statement.raw), "sig": self.sig.to_object()}
        if self.meta is not None:
            stored = loads(self.meta)
            obj["meta"], obj["salt"] = stored["meta"], stored["salt"]
        if self.tst is not None:
            obj["tst"] = base64.b64encode(self.tst).decode()
        return obj


def build_entry(deposit: Deposit, received_at: str) -> bytes:
    """The leaf: JCS of ``{"received_at", "sig", "statement", "tst"?}``.

    Built by concatenation — the keys are already in JCS order and every part is canonical —
    which ``tests/ledger/test_entry.py`` checks against ``rfc8785`` over generated deposits.
    """
    sig = deposit.sig
    tst = deposit.tst
    end = b"}" if tst is None else b',"tst":"' + b2a_base64(tst, newline=False) + b'"}'
    leaf = b"".join(
        (
            b'{"received_at":"',
            received_at.encode(),
            b'","sig":{"alg":"',
            sig.alg.encode(),
            b'","key_id":"',
            sig.key_id.encode(),
            b'","value":"',
            b2a_base64(sig.value, newline=False),
            b'"},"statement":',
            deposit.statement.raw,
            end,
        )
    )
    if len(leaf) > MAX_ENTRY_BYTES:
        _check_size("entry", leaf, MAX_ENTRY_BYTES)
    return leaf


@dataclass(frozen=True, slots=True)
class Entry:
    """A parsed leaf, as a verifier or auditor sees it."""

    leaf: bytes
    statement: Statement
    sig: Signature
    received_at: str
    tst: bytes | None

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf)

    @property
    def code(self) -> DepositCode:
        return DepositCode.from_leaf_hash(self.leaf_hash)


def parse_entry(leaf: bytes) -> Entry:
    """Parse and fully validate a leaf; it must be canonical too."""
    _check_size("entry", leaf, MAX_ENTRY_BYTES)
    obj = loads(leaf)
    if (
        not isinstance(obj, dict)
        or not {"received_at", "sig", "statement"} <= obj.keys()
        or (obj.keys() - {"received_at", "sig", "statement", "tst"})
    ):
        raise InvalidInput("entry must have received_at, sig, statement and optionally tst")
    statement = Statement.from_object(obj["statement"])
    sig = Signature.from_object(obj["sig"])
    received_at = _check_time(obj["received_at"], "received_at")
    tst = None
    if "tst" in obj:
        if not isinstance(obj["tst"], str):
            raise InvalidInput("tst must be base64 text")
        tst = _b64decode(obj["tst"], InvalidInput, "tst")
    entry = Entry(leaf, statement, sig, received_at, tst)
    if build_entry(Deposit(statement, sig, None, tst), received_at) != leaf:
        raise InvalidInput("entry is not in RFC 8785 canonical form")
    return entry
