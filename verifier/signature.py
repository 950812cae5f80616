"""Depositor signatures over statements (DESIGN §3) — the contract lenders implement.

What is signed
==============

The message is the statement's canonical bytes ``S = JCS(statement)`` (RFC 8785;
:attr:`ledger.entry.Statement.raw`) and ``h = SHA-256(S)`` (:attr:`Statement.signed_hash`).
Every algorithm commits to the same 32-byte ``h``; the table says exactly how, and which OpenSSL
3 command produces the same signature (``statement.json`` holds ``S``, ``h.bin`` holds ``h``):

``ecdsa-p256-sha256``
    ECDSA on P-256 over ``S`` with SHA-256 — that is, over the digest ``h`` — DER-encoded
    ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3).
    ``openssl dgst -sha256 -sign key.pem statement.json``
``rsa-pss-sha256``
    RSASSA-PSS (RFC 8017 §8.1), SHA-256, MGF1 with SHA-256, salt length 32, over ``S``.
    ``openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32
    -sign key.pem statement.json``. Only salt length 32 verifies: a PSS signature does not say
    its salt length, and other verifiers (WebCrypto, Java, JOSE ``PS256``) must be told one, so
    the contract fixes one spelling — the digest length, as RFC 8017 §9.1 and RFC 7518 §3.5 do.
``rsa-pkcs1v15-sha256``
    RSASSA-PKCS1-v1_5 (RFC 8017 §8.2), SHA-256, over ``S``.
    ``openssl dgst -sha256 -sign key.pem statement.json``
``ed25519``
    Pure Ed25519 (RFC 8032 §5.1) over the 32 bytes ``h`` — not over ``S``: Ed25519 hashes its
    message itself and cannot take a pre-hash, and signing ``h`` keeps every algorithm signing
    the same 32-byte commitment. ``openssl pkeyutl -sign -rawin -inkey key.pem -in h.bin``
``sm2-sm3``
    SM2 signature (GB/T 32918.2) with SM3 and the default distinguishing ID
    ``1234567812345678`` (GM/T 0009) over the message ``h``, DER-encoded.
    ``openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678
    -inkey key.pem -in h.bin`` (OpenSSL uses an empty ID unless ``distid`` is given).

Keys
====

A depositor registers a public key as a DER or PEM ``SubjectPublicKeyInfo`` (``BEGIN PUBLIC KEY``)
or an X.509 certificate (whose validity window is then kept on the key; this module does not
check the certificate's issuer). Accepted: Ed25519 (not one of the small-order points), EC P-256,
RSA of 2048 to 8192 bits (a signature must fit :data:`ledger.entry.MAX_SIGNATURE_BYTES`), SM2
with an uncompressed point. Its ``key_id`` fingerprint is ``"sha256:"`` and the hex of the first
16 bytes of SHA-256 over the key's DER ``SubjectPublicKeyInfo`` (the same for a key and for any
certificate holding it).

SM2 uses the optional ``gmssl-pyx`` package, imported only when an SM2 signature is verified.
Without it, verifying an SM2 signature raises :class:`~ledger.errors.InvalidKey`. GmSSL prints
a C trace (``…/sm2_sign.c:…:sm2_verify_finish():``) to the process's standard error whenever an
SM2 signature fails to verify; it is noise, not an error. It is not suppressed: redirecting file
descriptor 2 would hide other threads' output too.

Pure: no I/O, no storage or web imports.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ledger.entry import SIGNATURE_ALGORITHMS
from ledger.errors import InvalidKey, InvalidSignatureField, SignatureInvalid
from ledger.merkle import HASH_SIZE

__all__ = [
    "KEY_FAMILIES",
    "MAX_KEY_BYTES",
    "RSA_MAX_BITS",
    "RSA_MIN_BITS",
    "RSA_PSS_SALT_LENGTH",
    "SM2_DEFAULT_ID",
    "PublicKey",
    "StatementKeys",
    "key_allows",
    "load_public_key",
    "verify_batch",
    "verify_statement",
]

KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "ed25519": ("ed25519",),
    "ecdsa-p256": ("ecdsa-p256-sha256",),
    "rsa": ("rsa-pss-sha256", "rsa-pkcs1v15-sha256"),
    "sm2": ("sm2-sm3",),
}
"""Key family → the signature algorithms a key of that family may sign with."""

RSA_MIN_BITS = 2048
RSA_MAX_BITS = 8192
"""8192-bit signatures are 1024 bytes, the most an entry holds."""
RSA_PSS_SALT_LENGTH = 32
"""The one PSS salt length that verifies: the SHA-256 digest length."""
SM2_DEFAULT_ID = b"1234567812345678"
"""The default SM2 distinguishing ID (GM/T 0009), hashed into Z_A."""

MAX_KEY_BYTES = 64 * 1024
"""The largest key or certificate :func:`load_public_key` reads."""

# DER of AlgorithmIdentifier{id-ecPublicKey (1.2.840.10045.2.1), sm2 (1.2.156.10197.1.301)}.
_SM2_ALGORITHM_ID = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")
# DER SubjectPublicKeyInfo of an uncompressed SM2 point, up to the 64 bytes x ‖ y.
_SM2_SPKI_PREFIX = bytes.fromhex("3059") + _SM2_ALGORITHM_ID + bytes.fromhex("03420004")
# SM2 curve y² = x³ + ax + b over GF(p), group order n (GB/T 32918.5).
_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_SM2_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

# Ed25519: p = 2²⁵⁵ − 19; the y coordinates of the eight points of order 1, 2, 4 and 8 (the
# blocklist libsodium applies). A key among them verifies one signature for many messages,
# which would let its holder deny what it signed.
_ED25519_P = 2**255 - 19
_ED25519_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_ED25519_SMALL_ORDER_Y = frozenset({0, 1, _ED25519_P - 1, _ED25519_Y8, _ED25519_P - _ED25519_Y8})

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PRIVATE_LABELS = frozenset(
    {
        b"PRIVATE KEY",
        b"ENCRYPTED PRIVATE KEY",
        b"RSA PRIVATE KEY",
        b"EC PRIVATE KEY",
        b"DSA PRIVATE KEY",
        b"SM2 PRIVATE KEY",
        b"OPENSSH PRIVATE KEY",
    }
)

_SEQUENCE, _INTEGER, _BIT_STRING = 0x30, 0x02, 0x03

_Native = Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey | bytes
"""A cryptography public key, or for SM2 the 64 bytes x ‖ y."""


@dataclass(frozen=True, slots=True, repr=False)
class PublicKey:
    """A depositor's public key, validated. Made by :func:`load_public_key`.

    ``family`` is a key of :data:`KEY_FAMILIES`; ``spki`` the DER SubjectPublicKeyInfo;
    ``not_before``/``not_after`` the validity window (UTC) when the key came in a certificate.
    """

    family: str
    spki: bytes
    _native: _Native = field(repr=False, compare=False)
    not_before: datetime | None = None
    not_after: datetime | None = None

    def __repr__(self) -> str:
        window = f", not_before={self.not_before}, not_after={self.not_after}"
        return f"PublicKey({self.family}, {self.key_id}{window if self.not_before else ''})"

    @property
    def key_id(self) -> str:
        """``"sha256:"`` ‖ hex(SHA-256(spki)[:16]): a stable fingerprint of the key."""
        return "sha256:" + hashlib.sha256(self.spki).digest()[:16].hex()

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The signature algorithms this key may sign with."""
        return KEY_FAMILIES[self.family]

    @property
    def pem(self) -> bytes:
        """The key as a ``BEGIN PUBLIC KEY`` PEM."""
        return _pem(b"PUBLIC KEY", self.spki)

    def valid_at(self, when: datetime) -> bool:
        """Whether ``when`` (timezone-aware) is inside the certificate's validity window.

        A bare key (no certificate) has no window and is valid at any time; revocation is the
        key registry's business, not this value's.
        """
        if self.not_before is None or self.not_after is None:
            return True
        return self.not_before <= when <= self.not_after


def load_public_key(pem_or_der: bytes) -> PublicKey:
    """Read a public key from a SubjectPublicKeyInfo or an X.509 certificate, PEM or DER.

    Raises :class:`~ledger.errors.InvalidKey` for anything else — private keys, other PEM
    blocks, unsupported key types or curves, RSA below :data:`RSA_MIN_BITS` or above
    :data:`RSA_MAX_BITS`, malformed bytes — with the fix where there is one.
    """
    if not isinstance(pem_or_der, bytes | bytearray):
        raise InvalidKey("give the public key or certificate as bytes (PEM or DER)")
    data = bytes(pem_or_der)
    if len(data) > MAX_KEY_BYTES:
        raise InvalidKey(
            f"key or certificate is {len(data)} bytes, at most {MAX_KEY_BYTES}",
            got=len(data),
            limit=MAX_KEY_BYTES,
        )
    if b"-----BEGIN" in data:
        label, der = _read_pem(data)
        if label == b"PUBLIC KEY":
            return _load_spki(der)
        if label == b"CERTIFICATE":
            return _load_certificate(der)
        if label in _PRIVATE_LABELS:
            raise InvalidKey(
                "this is a private key: keep it secret and register its public key "
                "(openssl pkey -in key.pem -pubout)"
            )
        if label == b"RSA PUBLIC KEY":
            raise InvalidKey(
                "PKCS#1 RSA public keys are not accepted; convert to SubjectPublicKeyInfo "
                "(openssl rsa -RSAPublicKey_in -in key.pem -pubout)"
            )
        raise InvalidKey(
            f"PEM block {label.decode()!r} is not a public key or certificate",
            got=label.decode(),
            want=["PUBLIC KEY", "CERTIFICATE"],
        )
    try:
        tag, contents, end = _der_read(data, 0)
        children = [c[0] for c in _der_children(contents)] if tag == _SEQUENCE else []
    except ValueError as exc:
        raise InvalidKey(f"not a PEM or DER key or certificate: {exc}") from exc
    if end != len(data):
        raise InvalidKey(f"{len(data) - end} bytes of trailing data after the DER structure")
    if children == [_SEQUENCE, _BIT_STRING]:
        return _load_spki(data)
    if children == [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
        return _load_certificate(data)
    raise InvalidKey(
        "DER is neither a SubjectPublicKeyInfo nor an X.509 certificate (a private key? "
        "register its public key: openssl pkey -in key.pem -pubout)"
    )


def key_allows(alg: str, key: PublicKey) -> bool:
    """Whether ``key`` may sign with the signature algorithm ``alg``.

    >>> key_allows("ed25519", load_public_key(bytes.fromhex(
    ...     "302a300506032b6570032100" + "d75a980182b10ab7d54bfed3c964073a"
    ...     "0ee172f3daa62325af021a68f707511a")))
    True
    """
    return alg in KEY_FAMILIES[key.family]


def verify_statement(statement_hash: bytes, sig_alg: str, signature: bytes, key: PublicKey) -> None:
    """Check a depositor's ``signature`` over ``statement_hash`` = SHA-256(JCS(statement)).

    See the module docstring for what each algorithm signs. Returns ``None`` or raises
    :class:`~ledger.errors.SignatureInvalid` (the signature does not verify, or ``sig_alg``
    is not one ``key`` may sign with), :class:`~ledger.errors.InvalidSignatureField` (unknown
    ``sig_alg``), or :class:`~ledger.errors.InvalidKey` (SM2 without ``gmssl-pyx``).
    A wrong-sized ``statement_hash`` is the caller's bug: ``ValueError``. A certificate's
    validity window is not checked here; see :meth:`PublicKey.valid_at`.
    """
    if len(statement_hash) != HASH_SIZE:
        raise ValueError(f"statement hash is {len(statement_hash)} bytes, want {HASH_SIZE}")
    if sig_alg not in SIGNATURE_ALGORITHMS:
        raise InvalidSignatureField(
            f"unknown signature algorithm {sig_alg!r}",
            got=sig_alg,
            want=list(SIGNATURE_ALGORITHMS),
        )
    if not key_allows(sig_alg, key):
        raise SignatureInvalid(
            f"a {sig_alg} signature cannot come from {key.family} key {key.key_id}, "
            f"which signs {', '.join(key.algorithms)}",
            got=sig_alg,
            want=list(key.algorithms),
            key_id=key.key_id,
        )
    if not _verifies(statement_hash, sig_alg, bytes(signature), key._native):
        raise SignatureInvalid(
            f"{sig_alg} signature does not verify with key {key.key_id}",
            alg=sig_alg,
            key_id=key.key_id,
        )


def _verifies(h: bytes, alg: str, signature: bytes, native: _Native) -> bool:
    """Whether ``signature`` verifies; ``alg`` is already known to suit the key's family."""
    if isinstance(native, bytes):
        return _sm2_verifies(h, signature, native)
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(native, Ed25519PublicKey):
            native.verify(signature, h)
        elif isinstance(native, ec.EllipticCurvePublicKey):
            native.verify(signature, h, ec.ECDSA(prehashed))
        elif alg == "rsa-pss-sha256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=RSA_PSS_SALT_LENGTH)
            native.verify(signature, h, pss, prehashed)
        else:
            native.verify(signature, h, padding.PKCS1v15(), prehashed)
    except InvalidSignature:
        return False
    return True


class _GmSSL(Protocol):
    """The part of ``gmssl_pyx`` (no type information of its own) that cunzheng uses."""

    GmsslInnerError: type[Exception]

    def sm2_key_generate(self) -> tuple[bytes, bytes]: ...

    def sm2_sign(
        self, private_key: bytes, public_key: bytes, message: bytes, signer_id: bytes | None
    ) -> bytes: ...

    def sm2_verify(
        self, public_key: bytes, message: bytes, signature: bytes, signer_id: bytes | None
    ) -> bool: ...


def _gmssl() -> _GmSSL:
    """Import the optional SM2 provider, or say how to install it."""
    try:
        return cast(_GmSSL, importlib.import_module("gmssl_pyx"))
    except ImportError as exc:
        raise InvalidKey(
            "SM2 needs the optional dependency gmssl-pyx (pip install 'gmssl-pyx>=2.1,<3')"
        ) from exc


def _sm2_verifies(h: bytes, signature: bytes, point: bytes) -> bool:
    if not _sm2_signature_is_der(signature):
        return False
    gmssl = _gmssl()
    try:
        return bool(gmssl.sm2_verify(point, h, signature, SM2_DEFAULT_ID))
    except gmssl.GmsslInnerError:
        return False


def _sm2_signature_is_der(signature: bytes) -> bool:
    """DER ``SEQUENCE {INTEGER r, INTEGER s}`` with minimal, positive 1 ≤ r, s < n.

    Checked here so that one SM2 signature has one spelling, as OpenSSL enforces for ECDSA.
    """
    try:
        tag, contents, end = _der_read(signature, 0)
        if tag != _SEQUENCE or end != len(signature):
            return False
        values = _der_children(contents)
    except ValueError:
        return False
    if [t for t, _, _ in values] != [_INTEGER, _INTEGER]:
        return False
    for _, v, _ in values:
        if not v or v[0] & 0x80 or (len(v) > 1 and v[0] == 0 and not v[1] & 0x80):
            return False
        if not 1 <= int.from_bytes(v, "big") < _SM2_N:
            return False
    return True


def _load_spki(der: bytes) -> PublicKey:
    try:
        tag, contents, end = _der_read(der, 0)
        parts = _der_children(contents) if tag == _SEQUENCE and end == len(der) else []
    except ValueError as exc:
        raise InvalidKey(f"public key is not DER: {exc}") from exc
    if len(parts) == 2 and parts[0][2] == _SM2_ALGORITHM_ID:
        return _load_sm2_spki(der, parts[1])
    try:
        native = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKey(f"public key is not a supported SubjectPublicKeyInfo: {exc}") from exc
    spki = native.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if isinstance(native, Ed25519PublicKey):
        raw = native.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        y = int.from_bytes(raw, "little") & (2**255 - 1)
        if y >= _ED25519_P or y in _ED25519_SMALL_ORDER_Y:
            raise InvalidKey("Ed25519 public key is a small-order or non-canonical point")
        return PublicKey("ed25519", spki, native)
    if isinstance(native, ec.EllipticCurvePublicKey):
        if not isinstance(native.curve, ec.SECP256R1):
            raise InvalidKey(
                f"EC curve {native.curve.name} is not supported; use P-256 (secp256r1) or SM2",
                got=native.curve.name,
                want=["secp256r1", "sm2"],
            )
        return PublicKey("ecdsa-p256", spki, native)
    if isinstance(native, rsa.RSAPublicKey):
        if not RSA_MIN_BITS <= native.key_size <= RSA_MAX_BITS:
            raise InvalidKey(
                f"RSA key has {native.key_size} bits, want {RSA_MIN_BITS} to {RSA_MAX_BITS}",
                got=native.key_size,
                want=[RSA_MIN_BITS, RSA_MAX_BITS],
            )
        return PublicKey("rsa", spki, native)
    raise InvalidKey(
        f"{type(native).__name__.removeprefix('_')} keys are not supported",
        want=sorted(KEY_FAMILIES),
    )


def _load_sm2_spki(der: bytes, bit_string: tuple[int, bytes, bytes]) -> PublicKey:
    tag, contents, _ = bit_string
    if tag != _BIT_STRING or contents[:2] != b"\x00\x04" or len(contents) != 66:
        raise InvalidKey(
            "SM2 public key must be an uncompressed point "
            "(openssl pkey -pubin -in pub.pem -pubout -ec_conv_form uncompressed)"
        )
    point = contents[2:]
    x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:], "big")
    if not (x < _SM2_P and y < _SM2_P and (y * y - x**3 - _SM2_A * x - _SM2_B) % _SM2_P == 0):
        raise InvalidKey("SM2 public key is not a point on the SM2 curve")
    assert der == _SM2_SPKI_PREFIX + point
    return PublicKey("sm2", der, point)


def _load_certificate(der: bytes) -> PublicKey:
    try:
        cert = x509.load_der_x509_certificate(der)
        tbs = cert.tbs_certificate_bytes
        _, contents, _ = _der_read(tbs, 0)
        fields = _der_children(contents)
        # TBSCertificate (RFC 5280 §4.1): [0] version?, serial, signature, issuer, validity,
        # subject, subjectPublicKeyInfo, …
        spki = fields[(1 if fields[0][0] == 0xA0 else 0) + 5][2]
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except (ValueError, IndexError, x509.InvalidVersion) as exc:
        raise InvalidKey(f"not a valid X.509 certificate: {exc}") from exc
    key = _load_spki(spki)
    return replace(key, not_before=not_before, not_after=not_after)


def _read_pem(data: bytes) -> tuple[bytes, bytes]:
    """The label and DER of the one PEM block in ``data`` (RFC 7468)."""
    blocks = data.count(b"-----BEGIN ")
    if blocks != 1:
        raise InvalidKey(f"give exactly one PEM block, got {blocks}", got=blocks, want=1)
    match = _PEM.search(data)
    if match is None:
        raise InvalidKey("PEM block is not closed by a matching -----END …----- line")
    try:
        der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKey("PEM body is not base64 (encrypted legacy PEM is not accepted)") from exc
    return match.group(1), der


def _pem(label: bytes, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join(
        [b"-----BEGIN " + label + b"-----", *lines, b"-----END " + label + b"-----\n"]
    )


def _der_read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER TLV at ``pos``: (tag, contents, end). Low tag numbers and minimal lengths only."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not expected here")
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:end], end


def _der_children(contents: bytes) -> list[tuple[int, bytes, bytes]]:
    """The (tag, contents, encoding) of each TLV in a constructed value's ``contents``."""
    children = []
    pos = 0
    while pos < len(contents):
        tag, value, end = _der_read(contents, pos)
        children.append((tag, value, contents[pos:end]))
        pos = end
    return children


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


class StatementKeys:
    """Keys and statement signatures as this module defines them, in the shape the depositor
    registry asks for (``ledger.registry.KeyScheme``)."""

    def load(self, pem: bytes) -> PublicKey:
        return load_public_key(pem)

    def fingerprint(self, key: PublicKey) -> str:
        return key.key_id

    def validity(self, key: PublicKey) -> tuple[int | None, int | None]:
        """The certificate's window in Unix ms; ``notAfter`` is inclusive, the registry's end
        exclusive, hence the millisecond added."""
        end = _ms(key.not_after)
        return _ms(key.not_before), None if end is None else end + 1

    def allows(self, alg: str, key: PublicKey) -> bool:
        return key_allows(alg, key)

    def verify(self, statement_hash: bytes, alg: str, signature: bytes, key: PublicKey) -> None:
        verify_statement(statement_hash, alg, signature, key)


_BATCH_KEYS: dict[bytes, PublicKey] = {}
"""Keys :func:`verify_batch` has loaded, by SubjectPublicKeyInfo (a worker process's own)."""


def verify_batch(items: Sequence[tuple[bytes, bytes, str, bytes]]) -> list[bool]:
    """Whether each ``(spki, statement_hash, sig_alg, signature)`` verifies: for a process of
    its own, so that signatures are checked on another core than the event loop's. It says no
    more than yes or no; whoever asked checks a ``False`` again itself for the precise error.
    """
    out = []
    for spki, statement_hash, alg, signature in items:
        try:
            key = _BATCH_KEYS.get(spki)
            if key is None:
                if len(_BATCH_KEYS) >= 4096:
                    _BATCH_KEYS.clear()
                key = _BATCH_KEYS[spki] = load_public_key(spki)
            verify_statement(statement_hash, alg, signature, key)
        except Exception:  # any failure is a no, checked again by the caller
            out.append(False)
        else:
            out.append(True)
    return out
