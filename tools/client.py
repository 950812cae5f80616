"""The lender's signing helper: make keys, build statements, sign them (DESIGN §3).

What a signature covers is defined once, in :mod:`verifier.signature`; this module produces
exactly that, and checks every signature against the key's public half before returning it, so
a lender never sends a signature the depository would refuse.

Keys are PEM, as OpenSSL reads and writes them:

- private keys: PKCS#8 (``BEGIN PRIVATE KEY``, or ``BEGIN ENCRYPTED PRIVATE KEY`` with a
  password); traditional ``RSA PRIVATE KEY`` / ``EC PRIVATE KEY`` are read too;
- public keys: SubjectPublicKeyInfo (``BEGIN PUBLIC KEY``), what the depositor registers.

SM2 keys are the PKCS#8 that ``openssl genpkey -algorithm SM2`` writes — ``PrivateKeyInfo`` with
algorithm ``id-ecPublicKey`` / curve ``sm2`` around an RFC 5915 ``ECPrivateKey`` that carries the
public point (``[1]``). ``cryptography`` cannot read SM2, so this module takes the 32-byte scalar
``d`` and the 64-byte point ``x ‖ y`` out of that structure for ``gmssl-pyx`` (an optional
dependency), and writes the same structure for keys it generates. The bare ``ECPrivateKey``
that ``openssl ec`` writes (``BEGIN SM2 PRIVATE KEY``) is read too. Encrypted SM2 keys are not:
decrypt them first (``openssl pkey -in enc.pem -out key.pem``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ledger.entry import (
    SALT_BYTES,
    SIGNATURE_ALGORITHMS,
    Signature,
    Statement,
    canonical_meta,
    digest_file,
    format_time,
    meta_commitment,
)
from ledger.errors import (
    InvalidKey,
    InvalidSignatureField,
    SignatureInvalid,
)
from ledger.kinds import media_type_of, sniff_file
from verifier.signature import (
    _SM2_ALGORITHM_ID,
    _SM2_N,
    _SM2_SPKI_PREFIX,
    KEY_FAMILIES,
    RSA_PSS_SALT_LENGTH,
    SM2_DEFAULT_ID,
    PublicKey,
    _der_children,
    _der_read,
    _gmssl,
    _pem,
    _read_pem,
    key_allows,
    load_public_key,
    verify_statement,
)

__all__ = [
    "RSA_GENERATED_BITS",
    "SigningKey",
    "build_statement",
    "generate_key",
    "load_private_key",
    "sign_statement",
]

RSA_GENERATED_BITS = 3072
"""Size of the RSA keys :func:`generate_key` makes (NIST SP 800-57: 128-bit security)."""

_SM2_CURVE_OID = _SM2_ALGORITHM_ID[11:]
"""DER of the OID sm2 (1.2.156.10197.1.301), as in an ECPrivateKey's ``[0]`` parameters."""
_PRIVATE_LABELS = (
    b"PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"SM2 PRIVATE KEY",
)

_PrivateNative = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | bytes
"""A cryptography private key, or for SM2 the 32-byte scalar d."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A depositor's private key, loaded and checked. Its ``repr`` shows only the public half."""

    public_key: PublicKey
    _native: _PrivateNative = field(repr=False, compare=False)

    @property
    def default_alg(self) -> str:
        """The algorithm used when none is named: ``ed25519``, ``ecdsa-p256-sha256``,
        ``rsa-pss-sha256`` (for RSA) or ``sm2-sm3``."""
        return KEY_FAMILIES[self.public_key.family][0]


def generate_key(alg: str) -> tuple[bytes, bytes]:
    """A new key pair for signature algorithm ``alg``: (private PKCS#8 PEM, public SPKI PEM).

    The private PEM is not encrypted: store it with care (mode 0600, or encrypt it with
    ``openssl pkey -aes256``). RSA keys have :data:`RSA_GENERATED_BITS` bits.
    """
    _check_alg(alg)
    native: Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg == "sm2-sm3":
        point, d = _gmssl().sm2_key_generate()
        public = load_public_key(_SM2_SPKI_PREFIX + point)
        return _pem(b"PRIVATE KEY", _sm2_pkcs8(d, point)), public.pem
    if alg == "ed25519":
        native = Ed25519PrivateKey.generate()
    elif alg == "ecdsa-p256-sha256":
        native = ec.generate_private_key(ec.SECP256R1())
    else:
        native = rsa.generate_private_key(public_exponent=65537, key_size=RSA_GENERATED_BITS)
    private_pem = native.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = native.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def load_private_key(pem: bytes, password: bytes | None = None) -> SigningKey:
    """Read a private key PEM (see the module docstring) and check it is one we accept.

    The same rules as for registered public keys apply (P-256, RSA 2048–8192 bits, Ed25519,
    SM2). Raises :class:`~ledger.errors.InvalidKey` with the fix where there is one.
    """
    if not isinstance(pem, bytes | bytearray):
        raise InvalidKey("give the private key as PEM bytes")
    label, der = _read_pem(bytes(pem))
    if label not in _PRIVATE_LABELS:
        raise InvalidKey(
            f"PEM block {label.decode()!r} is not a private key",
            got=label.decode(),
            want=[x.decode() for x in _PRIVATE_LABELS],
        )
    sm2 = _sm2_private_key(label, der)
    if sm2 is not None:
        if password is not None:
            raise InvalidKey("a password was given but the private key is not encrypted")
        return _load_sm2(sm2)
    try:
        native = serialization.load_der_private_key(der, password)
    except UnsupportedAlgorithm as exc:
        raise InvalidKey(
            f"unsupported private key: {exc} (an SM2 key must be unencrypted PKCS#8: "
            "openssl pkey -in key.pem -out key-pkcs8.pem)"
        ) from exc
    except TypeError as exc:  # password missing, or given for an unencrypted key
        raise InvalidKey(f"{exc}") from exc
    except ValueError as exc:
        raise InvalidKey(f"cannot read the private key (wrong password?): {exc}") from exc
    if not isinstance(native, Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidKey(
            f"{type(native).__name__.removeprefix('_')} keys are not supported",
            want=sorted(KEY_FAMILIES),
        )
    spki = native.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(load_public_key(spki), native)


def sign_statement(
    statement: Statement, private_key: SigningKey, *, alg: str | None = None, key_id: str
) -> Signature:
    """Sign ``statement`` as :mod:`verifier.signature` defines, under the registered ``key_id``.

    ``alg`` defaults to :attr:`SigningKey.default_alg`. The signature is verified with the
    key's public half before it is returned; a key whose halves disagree raises
    :class:`~ledger.errors.InvalidKey`.
    """
    alg = private_key.default_alg if alg is None else alg
    _check_alg(alg)
    public = private_key.public_key
    if not key_allows(alg, public):
        raise InvalidKey(
            f"a {public.family} key cannot sign {alg}; it signs {', '.join(public.algorithms)}",
            got=alg,
            want=list(public.algorithms),
        )
    h = statement.signed_hash
    value = _sign(h, alg, private_key)
    try:
        verify_statement(h, alg, value, public)
    except SignatureInvalid as exc:
        raise InvalidKey(
            "the private key made a signature its own public key rejects: "
            "the key file is damaged or its two halves do not belong together"
        ) from exc
    return Signature(alg, key_id, value)


def build_statement(
    path: str | os.PathLike[str],
    *,
    depositor: str,
    kind: str,
    meta: dict[str, Any],
    media_type: str | None = None,
    captured_at: str | None = None,
    digest_alg: str = "sha256",
) -> tuple[Statement, dict[str, Any], bytes]:
    """Hash the evidence file at ``path`` and build its statement: (statement, meta, salt).

    ``meta`` is the private metadata (file name, contract number…); the statement holds only
    ``SHA-256(salt ‖ JCS(meta))`` with a fresh random 32-byte ``salt``. Keep ``meta`` and
    ``salt`` and send them with the deposit. ``media_type`` defaults to the format recognised
    from the file's content (:func:`ledger.kinds.sniff_file`), else a guess from its name
    (``application/octet-stream`` if none); ``captured_at`` to now, from this clock.
    """
    canonical_meta(meta)  # refuse bad metadata before reading the file
    path = os.fspath(path)
    size = os.stat(path).st_size
    digest = digest_file(path, digest_alg)
    if media_type is None:
        recognised = sniff_file(path)
        media_type = (
            media_type_of(recognised)
            if recognised is not None
            else mimetypes.guess_type(path)[0] or "application/octet-stream"
        )
    if captured_at is None:
        captured_at = format_time(time.time_ns() // 1_000_000)
    salt = secrets.token_bytes(SALT_BYTES)
    statement = Statement.build(
        depositor=depositor,
        kind=kind,
        digest=digest,
        size=size,
        media_type=media_type,
        captured_at=captured_at,
        meta_commitment=meta_commitment(salt, meta),
    )
    return statement, meta, salt


def _check_alg(alg: str) -> None:
    if alg not in SIGNATURE_ALGORITHMS:
        raise InvalidSignatureField(
            f"unknown signature algorithm {alg!r}", got=alg, want=list(SIGNATURE_ALGORITHMS)
        )


def _sign(h: bytes, alg: str, key: SigningKey) -> bytes:
    native = key._native
    if isinstance(native, bytes):
        point = key.public_key.spki[len(_SM2_SPKI_PREFIX) :]
        return _gmssl().sm2_sign(native, point, h, SM2_DEFAULT_ID)
    if isinstance(native, Ed25519PrivateKey):
        return native.sign(h)
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(native, ec.EllipticCurvePrivateKey):
        return native.sign(h, ec.ECDSA(prehashed))
    if alg == "rsa-pss-sha256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=RSA_PSS_SALT_LENGTH)
        return native.sign(h, pss, prehashed)
    return native.sign(h, padding.PKCS1v15(), prehashed)


def _sm2_private_key(label: bytes, der: bytes) -> bytes | None:
    """The SM2 ``ECPrivateKey`` (RFC 5915) in ``der``, or ``None`` if it holds no SM2 key.

    Found in PKCS#8 (``PRIVATE KEY``: algorithm ``id-ecPublicKey``/``sm2``) or bare, as
    ``openssl ec`` writes it (``SM2 PRIVATE KEY`` or ``EC PRIVATE KEY``, curve in ``[0]``).
    """
    try:
        tag, contents, end = _der_read(der, 0)
        parts = _der_children(contents) if tag == 0x30 and end == len(der) else []
    except ValueError:
        return None
    if label == b"PRIVATE KEY":
        if len(parts) < 3 or parts[1][2] != _SM2_ALGORITHM_ID:
            return None
        if parts[0][2] not in (b"\x02\x01\x00", b"\x02\x01\x01") or parts[2][0] != 0x04:
            raise InvalidKey("not a valid PKCS#8 PrivateKeyInfo")
        return parts[2][1]
    sec1_params = [v for t, v, _ in parts if t == 0xA0]
    if label in (b"SM2 PRIVATE KEY", b"EC PRIVATE KEY") and sec1_params == [_SM2_CURVE_OID]:
        return der
    return None


def _load_sm2(ec_private_key: bytes) -> SigningKey:
    """Check an SM2 ECPrivateKey: version 1, 32-byte scalar d, curve sm2, public point present."""
    try:
        tag, contents, end = _der_read(ec_private_key, 0)
        fields = _der_children(contents) if tag == 0x30 and end == len(ec_private_key) else []
        if len(fields) < 2 or fields[0][2] != b"\x02\x01\x01" or fields[1][0] != 0x04:
            raise ValueError("not an RFC 5915 ECPrivateKey")
        d = fields[1][1]
        optional = {t: v for t, v, _ in fields[2:]}
        if len(optional) != len(fields) - 2 or not optional.keys() <= {0xA0, 0xA1}:
            raise ValueError("unexpected ECPrivateKey fields")
        if optional.get(0xA0, _SM2_CURVE_OID) != _SM2_CURVE_OID:
            raise ValueError("ECPrivateKey parameters name another curve than SM2")
        if 0xA1 not in optional:
            raise InvalidKey(
                "SM2 private key does not carry its public key; rewrite it with "
                "openssl pkey -in key.pem -out key-with-public.pem"
            )
        tag, bits, end = _der_read(optional[0xA1], 0)
        if tag != 0x03 or end != len(optional[0xA1]):
            raise ValueError("ECPrivateKey public key is not a BIT STRING")
    except ValueError as exc:
        raise InvalidKey(f"not a valid SM2 private key: {exc}") from exc
    if len(d) != 32 or not 1 <= int.from_bytes(d, "big") <= _SM2_N - 2:
        raise InvalidKey("SM2 private scalar must be 32 bytes in [1, n − 2]")
    public = load_public_key(_der(0x30, _SM2_ALGORITHM_ID + _der(0x03, bits)))
    point = public.spki[len(_SM2_SPKI_PREFIX) :]
    # The file states the public point beside d; check that they belong together now rather than
    # at the first signature. (A mismatch makes GmSSL print a trace to stderr, see verifier.)
    gmssl = _gmssl()
    probe = hashlib.sha256(b"cunzheng SM2 key check").digest()
    if not gmssl.sm2_verify(
        point, probe, gmssl.sm2_sign(d, point, probe, SM2_DEFAULT_ID), SM2_DEFAULT_ID
    ):
        raise InvalidKey("SM2 private key's public point does not match its private scalar")
    return SigningKey(public, d)


def _sm2_pkcs8(d: bytes, point: bytes) -> bytes:
    """The PKCS#8 DER ``openssl genpkey -algorithm SM2`` writes for scalar ``d``, point x ‖ y."""
    public = _der(0xA1, _der(0x03, b"\x00\x04" + point))
    ec_private_key = _der(0x30, b"\x02\x01\x01" + _der(0x04, d) + public)
    return _der(0x30, b"\x02\x01\x00" + _SM2_ALGORITHM_ID + _der(0x04, ec_private_key))


def _der(tag: int, contents: bytes) -> bytes:
    n = len(contents)
    if n < 0x80:
        return bytes((tag, n)) + contents
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + contents
