"""The one error tree of cunzheng.

Every error the product raises on purpose is a :class:`CunzhengError` and carries a stable
machine ``code`` (what the API puts in its RFC 9457 problem document), an English message, a short
Chinese title for people who read Chinese first, and structured ``details`` (got/want values).

::

    CunzhengError
    ├── InvalidInput          the caller sent something malformed; nothing was written
    │   ├── InvalidDigest
    │   ├── InvalidStatement
    │   ├── InvalidSignatureField
    │   ├── InvalidMeta
    │   │   └── InvalidContractNo
    │   ├── InvalidDepositCode
    │   ├── InvalidCheckpoint
    │   ├── InvalidProofRequest
    │   ├── InvalidKey
    │   ├── UnknownDepositor
    │   ├── KeyNotValid       unknown, not yet valid, expired or revoked at that time
    │   ├── TimestampMalformed
    │   └── TooLarge
    ├── VerificationFailed    a proof, signature or commitment does not check out
    │   ├── ProofInvalid
    │   ├── SignatureInvalid
    │   └── TimestampInvalid   details["reason"] says which check failed
    ├── NotFound
    │   └── CaseNotFound
    ├── StorageError          the store failed or disagrees with itself
    │   ├── StorageFull       no space left; nothing was written, retry once space is freed
    │   └── Conflict          someone else moved the log on (compare-and-swap lost)
    └── Unavailable           try again later (sequencer closed, back-pressure)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CaseNotFound",
    "Conflict",
    "CunzhengError",
    "InvalidCheckpoint",
    "InvalidContractNo",
    "InvalidDepositCode",
    "InvalidDigest",
    "InvalidInput",
    "InvalidKey",
    "InvalidMeta",
    "InvalidProofRequest",
    "InvalidSignatureField",
    "InvalidStatement",
    "KeyNotValid",
    "NotFound",
    "ProofInvalid",
    "SignatureInvalid",
    "StorageError",
    "StorageFull",
    "TimestampInvalid",
    "TimestampMalformed",
    "TooLarge",
    "Unavailable",
    "UnknownDepositor",
    "VerificationFailed",
]


class CunzhengError(Exception):
    """Root of every deliberate error. ``code`` is stable; messages may improve."""

    code: ClassVar[str] = "error"
    title_zh: ClassVar[str] = "错误"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: code, English message, Chinese title and details."""
        return {
            "code": self.code,
            "message": self.message,
            "title_zh": self.title_zh,
            "details": self.details,
        }


class InvalidInput(CunzhengError):
    code = "invalid_input"
    title_zh = "输入无效"


class InvalidDigest(InvalidInput):
    code = "invalid_digest"
    title_zh = "摘要格式无效"


class InvalidStatement(InvalidInput):
    code = "invalid_statement"
    title_zh = "存证声明无效"


class InvalidSignatureField(InvalidInput):
    code = "invalid_signature_field"
    title_zh = "签名字段无效"


class InvalidMeta(InvalidInput):
    code = "invalid_meta"
    title_zh = "元数据无效"


class InvalidContractNo(InvalidMeta):
    code = "invalid_contract_no"
    title_zh = "合同编号无效"


class InvalidDepositCode(InvalidInput):
    code = "invalid_deposit_code"
    title_zh = "存证编码无效"


class InvalidCheckpoint(InvalidInput):
    code = "invalid_checkpoint"
    title_zh = "检查点格式无效"


class InvalidProofRequest(InvalidInput):
    code = "invalid_proof_request"
    title_zh = "证明请求无效"


class InvalidKey(InvalidInput):
    code = "invalid_key"
    title_zh = "密钥或证书无效"


class UnknownDepositor(InvalidInput):
    code = "unknown_depositor"
    title_zh = "存证方未登记"


class KeyNotValid(InvalidInput):
    """``details["reason"]``: ``unknown``, ``not_yet_valid``, ``expired``, ``revoked``,
    ``wrong_algorithm``."""

    code = "key_not_valid"
    title_zh = "签名密钥无效或已吊销"


class TimestampMalformed(InvalidInput):
    code = "timestamp_malformed"
    title_zh = "时间戳格式无效"


class TooLarge(InvalidInput):
    code = "too_large"
    title_zh = "内容过大"


class VerificationFailed(CunzhengError):
    code = "verification_failed"
    title_zh = "验证失败"


class ProofInvalid(VerificationFailed):
    code = "proof_invalid"
    title_zh = "默克尔证明无效"


class SignatureInvalid(VerificationFailed):
    code = "signature_invalid"
    title_zh = "签名无效"


class TimestampInvalid(VerificationFailed):
    """An RFC 3161 token failed a check; ``details["reason"]`` is one of ``signature``,
    ``untrusted``, ``eku``, ``expired``, ``imprint``, ``nonce``, ``ess``, ``status``."""

    code = "timestamp_invalid"
    title_zh = "可信时间戳验证失败"


class NotFound(CunzhengError):
    code = "not_found"
    title_zh = "尚未存证"


class CaseNotFound(NotFound):
    code = "case_not_found"
    title_zh = "未找到该合同编号的存证"


class StorageError(CunzhengError):
    code = "storage_error"
    title_zh = "存储错误"


class StorageFull(StorageError):
    """The disk is full: nothing of the request was written. HTTP 507; retry once space is
    freed (the store recovers by itself on the next write)."""

    code = "storage_full"
    title_zh = "存储空间已满"


class Conflict(StorageError):
    code = "conflict"
    title_zh = "并发冲突"


class Unavailable(CunzhengError):
    code = "unavailable"
    title_zh = "服务暂不可用"
