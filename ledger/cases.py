"""Cases: the deposits of one loan, and their completeness against DB4401/T 310—2024 Annex B.

A **case** is named by the loan's contract number (合同编号 / 业务流水号), which a deposit carries
in its *private* metadata as ``contract_no`` — never in the public log, whose statement holds only
the salted commitment to the metadata (DESIGN §3). The borrower appears, if at all, as
``borrower_commitment``: ``hex(SHA-256(salt ‖ JCS({"id_number", "id_type", "name"})))``
(:func:`borrower_commitment`), which the lender can open in court and nobody else can invert.
Metadata that names the borrower in clear (:data:`PERSONAL_META_KEYS`) is refused.

The store indexes deposits by :func:`case_key` — 16 bytes of SHA-256 over the normalised
contract number — in the same atomic write as the block (``Block.cases``), so the index can never
disagree with the log.

:func:`check_case` is pure: given what a case holds (:class:`CaseItem`, from the ledger or from
files on a lender's disk), it says per Annex B element (DESIGN §8) whether it is present, which
required ones are missing, which files are deposited twice or in a format the standard does not
list (:class:`CaseReport`).

>>> case_key("HT-2026-0001") == case_key(" HT-2026-0001 ")
True
>>> len(case_key("HT-2026-0001"))
16
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .canonical import jcs
from .errors import InvalidContractNo, InvalidMeta
from .kinds import ANNEX_B_FORMATS

__all__ = [
    "CASE_KEY_BYTES",
    "ELEMENTS",
    "MAX_CONTRACT_NO_CHARS",
    "PERSONAL_META_KEYS",
    "CaseIssue",
    "CaseItem",
    "CaseReport",
    "Element",
    "ElementStatus",
    "borrower_commitment",
    "case_key",
    "check_case",
    "check_case_meta",
    "normalize_contract_no",
]

CASE_KEY_BYTES = 16
MAX_CONTRACT_NO_CHARS = 128
_CASE_KEY_DOMAIN = b"cunzheng/case/v1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}")

Requirement = Literal["required", "if_any", "optional"]


@dataclass(frozen=True, slots=True)
class Element:
    """One row of Annex B table B.1 (DESIGN §8)."""

    kind: str
    name_zh: str
    name_en: str
    requirement: Requirement
    """``required``; ``if_any`` (额度合同: only if the loan had one, §7.1/§7.2); ``optional``."""
    formats: frozenset[str]
    single: bool
    """The standard expects one such document per case; several distinct ones are flagged."""


ELEMENTS: tuple[Element, ...] = tuple(
    Element(kind, zh, en, req, ANNEX_B_FORMATS[kind], single)  # type: ignore[arg-type]
    for kind, zh, en, req, single in (
        ("credit_line_contract", "额度合同", "credit line contract", "if_any", True),
        ("loan_contract", "借款合同", "loan contract", "required", False),
        ("loan_voucher", "借款借据", "loan voucher (IOU)", "required", True),
        ("disbursement_voucher", "放款凭证", "disbursement voucher", "required", False),
        ("repayment_details", "借款人还款及欠款明细", "repayment and arrears details",
         "required", False),
        ("identity_verification", "借款人身份验证材料", "borrower identity verification",
         "required", False),
        ("loan_process_record", "借款流程的展示材料", "record of the loan process",
         "required", False),
        ("other", "其他证据材料", "other evidence", "optional", False),
        ("evidence_catalog", "证据目录", "evidence catalog", "required", True),
    )
)  # fmt: skip
"""Annex B's nine elements in the standard's order. Several loan contracts (supplements, §7.3),
vouchers, statements and process records are normal; a second catalog or IOU is not."""

_BY_KIND = {e.kind: e for e in ELEMENTS}

PERSONAL_META_KEYS = frozenset(
    {
        "borrower",
        "borrower_name",
        "borrower_id",
        "borrower_id_number",
        "borrower_phone",
        "id_number",
        "id_card",
        "id_no",
        "name",
        "phone",
        "mobile",
        "借款人",
        "借款人姓名",
        "姓名",
        "身份证号",
        "身份证号码",
        "手机号",
        "手机号码",
    }
)
"""Metadata keys that would name the borrower in clear; a deposit carrying one is refused."""


def normalize_contract_no(contract_no: Any) -> str:
    """The contract number as indexed: NFC, surrounding blanks removed; 1–128 characters, no
    control characters. Raises :class:`~ledger.errors.InvalidContractNo` otherwise."""
    if not isinstance(contract_no, str):
        raise InvalidContractNo("contract_no must be a string", field="contract_no")
    if contract_no.isascii() and contract_no.isprintable():  # the common case, cheaply
        text = contract_no.strip()
        if 1 <= len(text) <= MAX_CONTRACT_NO_CHARS:
            return text
    text = unicodedata.normalize("NFC", contract_no).strip()
    if not 1 <= len(text) <= MAX_CONTRACT_NO_CHARS:
        raise InvalidContractNo(
            f"contract_no must be 1–{MAX_CONTRACT_NO_CHARS} characters, got {len(text)}",
            field="contract_no",
            got=len(text),
            want=MAX_CONTRACT_NO_CHARS,
        )
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise InvalidContractNo(
            "contract_no must not contain control characters", field="contract_no"
        )
    return text


def case_key(contract_no: str) -> bytes:
    """The store's index key of a case: SHA-256(domain ‖ UTF-8 of the normalised contract
    number), first :data:`CASE_KEY_BYTES` bytes. Readers re-check the contract number in the
    metadata, so a truncation collision can never mix two cases."""
    text = normalize_contract_no(contract_no)
    return hashlib.sha256(_CASE_KEY_DOMAIN + text.encode()).digest()[:CASE_KEY_BYTES]


def borrower_commitment(salt: bytes, *, id_type: str, id_number: str, name: str) -> str:
    """``hex(SHA-256(salt ‖ JCS({"id_number", "id_type", "name"})))``: the borrower, committed.

    The lender keeps ``salt`` (at least 16 random bytes) and opens the commitment in court by
    showing the three values; without the salt, guessing ID numbers does not reveal them.
    """
    if not isinstance(salt, bytes) or len(salt) < 16:
        raise InvalidMeta("a borrower commitment needs a random salt of at least 16 bytes")
    return hashlib.sha256(
        salt + jcs({"id_number": id_number, "id_type": id_type, "name": name})
    ).hexdigest()


def check_case_meta(meta: Mapping[str, Any]) -> bytes | None:
    """Check the case fields of a deposit's private metadata; return its :func:`case_key`, or
    ``None`` when it names no contract.

    ``contract_no`` must be a valid contract number; ``borrower_commitment``, if present, 64
    lower-case hex characters; no key of :data:`PERSONAL_META_KEYS` may appear.
    """
    personal = sorted(k for k in meta if k.lower() in PERSONAL_META_KEYS)
    if personal:
        raise InvalidMeta(
            "metadata must not name the borrower in clear; send borrower_commitment instead "
            "(SHA-256 of a salt and the identity, kept by you)",
            unexpected=personal,
        )
    commitment = meta.get("borrower_commitment")
    if commitment is not None and (
        not isinstance(commitment, str) or _HEX64.fullmatch(commitment) is None
    ):
        raise InvalidMeta(
            "borrower_commitment must be 64 lower-case hex characters (SHA-256)",
            field="borrower_commitment",
        )
    if "contract_no" not in meta:
        return None
    return case_key(meta["contract_no"])


@dataclass(frozen=True, slots=True)
class CaseItem:
    """One piece of evidence of a case: deposited (``index``, ``code``) or a local file
    (``path``). ``format`` is what :mod:`ledger.kinds` recognised (``None``: unknown)."""

    kind: str
    format: str | None
    digest: str
    size: int
    media_type: str
    file_name: str | None = None
    index: int | None = None
    code: str | None = None
    path: str | None = None
    depositor: str | None = None
    received_at: str | None = None

    def to_object(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class CaseIssue:
    """One finding. ``code``: ``missing``, ``unlisted_format``, ``duplicate`` or ``several``.
    ``severity``: ``error`` (the case is not complete) or ``warning``."""

    code: str
    severity: Literal["error", "warning"]
    kind: str
    message: str
    message_zh: str
    items: tuple[int, ...] = ()
    """Positions in :attr:`CaseReport.items` concerned."""

    def to_object(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "message_zh": self.message_zh,
            "items": list(self.items),
        }


@dataclass(frozen=True, slots=True)
class ElementStatus:
    """One Annex B element in a case: ``present``, ``missing`` (required, none given) or
    ``not_provided`` (if-any or optional, none given)."""

    element: Element
    status: Literal["present", "missing", "not_provided"]
    items: tuple[int, ...]

    def to_object(self) -> dict[str, Any]:
        e = self.element
        return {
            "kind": e.kind,
            "name_zh": e.name_zh,
            "name_en": e.name_en,
            "requirement": e.requirement,
            "formats": sorted(e.formats),
            "status": self.status,
            "count": len(self.items),
            "items": list(self.items),
        }


@dataclass(frozen=True, slots=True)
class CaseReport:
    """The completeness of one case against Annex B. ``complete`` when no issue is an error."""

    contract_no: str
    depositor: str | None
    items: tuple[CaseItem, ...]
    elements: tuple[ElementStatus, ...]
    issues: tuple[CaseIssue, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def missing(self) -> list[str]:
        return [s.element.kind for s in self.elements if s.status == "missing"]

    def to_object(self) -> dict[str, Any]:
        """JSON form: ``complete``, ``complete_zh``, per-element status, issues, items."""
        errors = sum(i.severity == "error" for i in self.issues)
        return {
            "contract_no": self.contract_no,
            "depositor": self.depositor,
            "standard": "DB4401/T 310—2024 附录B",
            "complete": self.complete,
            "complete_zh": "证据要素齐全" if self.complete else "证据要素不齐全或格式不符",
            "errors": errors,
            "warnings": len(self.issues) - errors,
            "missing": self.missing,
            "elements": [s.to_object() for s in self.elements],
            "issues": [i.to_object() for i in self.issues],
            "items": [i.to_object() for i in self.items],
        }


def check_case(
    contract_no: str, items: Sequence[CaseItem], *, depositor: str | None = None
) -> CaseReport:
    """Check a case's evidence against Annex B (DB4401/T 310—2024 §7.1: every element but the
    credit line contract, "如有则提供", must be provided; "other" is the lender's choice).

    Findings, in this order per element: ``missing`` (error), ``unlisted_format`` (error: the
    file's format is not one table B.1 lists for its element), ``duplicate`` (warning: the same
    digest more than once in the case), ``several`` (warning: more than one distinct document
    for an element expected once).
    """
    contract_no = normalize_contract_no(contract_no)
    unknown = sorted({i.kind for i in items} - _BY_KIND.keys())
    if unknown:
        raise InvalidMeta("unknown evidence kinds in the case", unexpected=unknown)
    by_kind: dict[str, list[int]] = {e.kind: [] for e in ELEMENTS}
    for position, item in enumerate(items):
        by_kind[item.kind].append(position)
    digests = Counter(i.digest for i in items)
    statuses: list[ElementStatus] = []
    issues: list[CaseIssue] = []
    for e in ELEMENTS:
        positions = tuple(by_kind[e.kind])
        if positions:
            status: Literal["present", "missing", "not_provided"] = "present"
        elif e.requirement == "required":
            status = "missing"
            issues.append(
                CaseIssue(
                    "missing", "error", e.kind,
                    f"required element missing: {e.name_en}", f"缺少必备证据要素：{e.name_zh}",
                )
            )  # fmt: skip
        else:
            status = "not_provided"
        statuses.append(ElementStatus(e, status, positions))
        wrong = tuple(p for p in positions if items[p].format not in e.formats)
        if wrong:
            found = sorted({items[p].format or "unknown" for p in wrong})
            allowed = "/".join(sorted(e.formats))
            issues.append(
                CaseIssue(
                    "unlisted_format", "error", e.kind,
                    f"{e.name_en}: format {', '.join(found)} is not listed for this element "
                    f"(Annex B allows {allowed})",
                    f"{e.name_zh}：数据格式 {'、'.join(found)} 不在标准所列格式（{allowed}）之内",
                    wrong,
                )
            )  # fmt: skip
        twice = tuple(p for p in positions if digests[items[p].digest] > 1)
        if twice:
            issues.append(
                CaseIssue(
                    "duplicate", "warning", e.kind,
                    f"{e.name_en}: the same file appears more than once in the case",
                    f"{e.name_zh}：同一文件在本案中重复存证",
                    twice,
                )
            )  # fmt: skip
        distinct = {items[p].digest for p in positions}
        if e.single and len(distinct) > 1:
            issues.append(
                CaseIssue(
                    "several", "warning", e.kind,
                    f"{e.name_en}: {len(distinct)} different documents, one is expected",
                    f"{e.name_zh}：存在 {len(distinct)} 份不同文件，通常应只有一份",
                    positions,
                )
            )  # fmt: skip
    return CaseReport(contract_no, depositor, tuple(items), tuple(statuses), tuple(issues))
