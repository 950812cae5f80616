"""cunzheng's own RFC 3161 time-stamping authority (TSA): the signer behind the embedded default.

A request (RFC 3161 §2.4.1 ``TimeStampReq``) goes in, a response (§2.4.2 ``TimeStampResp``) comes
out; :meth:`TimeStampAuthority.stamp` skips the request for in-process use and returns the token
alone. The token is a CMS ``ContentInfo`` (RFC 5652 §3) holding ``SignedData`` version 3 (§5.1)
whose encapsulated content is the DER ``TSTInfo``::

    TSTInfo  version 1 · policy · messageImprint (as requested) · serialNumber · genTime (UTC)
             · accuracy · ordering FALSE (omitted, DEFAULT) · nonce (echoed) · tsa [0] directoryName
    SignerInfo  version 1, issuerAndSerialNumber, digest SHA-256, signed attributes (a DER SET OF,
                sorted): content-type id-ct-TSTInfo, message-digest, signing-time, and ESS
                signingCertificateV2 (RFC 5816 §2.2.1, RFC 5035 §3: SHA-256 of the TSA certificate
                and its issuerSerial); signature ECDSA P-256 with SHA-256, or RSA PKCS#1 v1.5 with
                SHA-256

The TSA certificate must carry the one critical extended key usage ``id-kp-timeStamping``
(RFC 3161 §2.3). Ed25519 keys are refused: OpenSSL 3.0, which many verifiers run, cannot check
them. Pure apart from what the caller passes in: ``serials`` and ``clock`` are functions, and the
only file I/O is :class:`FileSerials` and :class:`TsaCredentials` ``write``/``read``, on paths the
caller gives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import InvalidDigest, InvalidInput, InvalidKey, StorageError

__all__ = [
    "DEFAULT_POLICY",
    "HASH_ALGORITHMS",
    "MAX_REQUEST_BYTES",
    "SERIAL_FILE",
    "FileSerials",
    "TimeStampAuthority",
    "TsaCredentials",
    "TsaPrivateKey",
    "issue_tsa_certificates",
    "open_authority",
]

DEFAULT_POLICY: Final = "2.25.53334657786187022241621038476100087974"
"""The TSA policy OID (RFC 3161 §2.4.2 ``policy``) when none is configured: a UUID OID under the
ITU-T X.667 arc ``2.25`` (UUID 281fe1a6-bbdc-49b9-b3bc-057501afb0a6), which needs no registration.
An operator with its own enterprise arc should configure that instead."""

HASH_ALGORITHMS: Final[dict[str, int]] = {"sha256": 32, "sha384": 48, "sha512": 64}
"""The message imprint algorithms this TSA accepts, with their digest sizes in bytes. Anything else
(MD5, SHA-1, …) is answered with ``badAlg``."""

MAX_REQUEST_BYTES: Final = 16 * 1024
"""A TimeStampReq is a few hundred bytes; anything larger is refused with ``badDataFormat``."""

TsaPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The TSA key types: ECDSA P-256 or RSA (2048 bits or more)."""

_HASH_OIDS: Final = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_NULL_DER: Final = b"\x05\x00"
_MIN_RSA_BITS: Final = 2048
_ROOT_FILE: Final = "tsa-root.pem"
_CERT_FILE: Final = "tsa.pem"
_KEY_FILE: Final = "tsa.key"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


class _TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]
    """RFC 3161 §2.4.2 ``TimeStampResp``; asn1crypto wrongly makes ``timeStampToken`` required."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class _Rejection(Exception):
    """A request this TSA will not grant: ``failure`` is an asn1crypto PKIFailureInfo name."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


def _check_policy(policy: str) -> None:
    """A policy OID has at least two arcs, and the second is below 40 under arcs 0 and 1."""
    try:
        if _OID.fullmatch(policy) is None:
            raise ValueError("not dotted decimal")
        core.ObjectIdentifier(policy).dump()
    except ValueError as exc:
        raise InvalidInput(
            f"policy must be a dotted OID such as {DEFAULT_POLICY}, got {policy!r}", got=policy
        ) from exc


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_tsa_certificate(certificate: x509.Certificate) -> None:
    """RFC 3161 §2.3: exactly the ``id-kp-timeStamping`` purpose, in a critical extension."""
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise InvalidKey(
            "the TSA certificate has no extended key usage; RFC 3161 §2.3 wants a critical "
            "extendedKeyUsage of exactly timeStamping",
            want="critical timeStamping",
        ) from None
    purposes = [oid.dotted_string for oid in eku.value]
    if purposes != [ExtendedKeyUsageOID.TIME_STAMPING.dotted_string]:
        raise InvalidKey(
            f"the TSA certificate's extended key usage is {purposes}, want only timeStamping "
            f"({ExtendedKeyUsageOID.TIME_STAMPING.dotted_string}), RFC 3161 §2.3",
            got=purposes,
            want=[ExtendedKeyUsageOID.TIME_STAMPING.dotted_string],
        )
    if not eku.critical:
        raise InvalidKey(
            "the TSA certificate's extendedKeyUsage is not critical; RFC 3161 §2.3 says it MUST "
            "be (OpenSSL refuses to sign or verify with it)",
            got="non-critical",
            want="critical",
        )


def _check_private_key(private_key: object, certificate: x509.Certificate) -> None:
    if isinstance(private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        raise InvalidKey(
            "the TSA key is an EdDSA key: OpenSSL 3.0 cannot verify CMS signatures made with it "
            "(`operation not supported for this keytype`), so courts and auditors using "
            "`openssl ts -verify` could not check the tokens; use an EC P-256 or RSA key"
        )
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise InvalidKey(
                f"the TSA EC key is on {private_key.curve.name}, want secp256r1 (P-256)",
                got=private_key.curve.name,
                want="secp256r1",
            )
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < _MIN_RSA_BITS:
            raise InvalidKey(
                f"the TSA RSA key has {private_key.key_size} bits, want at least {_MIN_RSA_BITS}",
                got=private_key.key_size,
                want=_MIN_RSA_BITS,
            )
    else:
        raise InvalidKey(
            f"unsupported TSA key type {type(private_key).__name__}; use EC P-256 or RSA"
        )
    mine = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if mine != theirs:
        raise InvalidKey("the TSA private key does not belong to the TSA certificate")


def _fraction_digits(accuracy: dt.timedelta | None) -> int:
    """How many decimal places of a second genTime carries: as many as ``accuracy`` makes
    meaningful (1 s → none, 10 ms → 2, 1 µs → 6), so truncating never moves it by more than the
    stated accuracy (RFC 3161 §2.4.2: no trailing zeros, which asn1crypto already drops)."""
    if accuracy is None:
        return 0
    digits = 0
    while digits < 6 and accuracy < dt.timedelta(seconds=10**-digits):
        digits += 1
    return digits


def _accuracy(accuracy: dt.timedelta) -> tsp.Accuracy:
    """RFC 3161 §2.4.2 ``Accuracy``: seconds, millis and micros (1..999); zero parts left out."""
    micros_total = accuracy // dt.timedelta(microseconds=1)
    parts = {
        "seconds": micros_total // 1_000_000,
        "millis": micros_total // 1000 % 1000,
        "micros": micros_total % 1000,
    }
    return tsp.Accuracy({name: value for name, value in parts.items() if value})


def _digest_algorithm(name: str) -> dict[str, Any]:
    """A SHA-2 AlgorithmIdentifier with parameters absent, as RFC 5754 §2 says to generate them
    (asn1crypto would otherwise write NULL)."""
    return {"algorithm": name, "parameters": None}


def _cms_time(when: dt.datetime) -> cms.Time:
    """RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds."""
    when = when.replace(microsecond=0)
    if 1950 <= when.year <= 2049:
        return cms.Time({"utc_time": when})
    return cms.Time({"generalized_time": when})


class TimeStampAuthority:
    """An RFC 3161 TSA signing with one certificate and key.

    ``serials`` returns a new, never repeated serial number per call (RFC 3161 §2.4.2: unique
    for each token; use :class:`FileSerials` to survive restarts). ``clock`` returns the current
    time as an aware datetime; ``accuracy`` is the bound the operator claims on its error (``None``
    leaves the field out). ``chain`` lists intermediate certificates to send along with the TSA
    certificate when a request sets ``certReq``. Thread-safe if ``serials`` and ``clock`` are.
    """

    def __init__(
        self,
        *,
        certificate: x509.Certificate,
        private_key: TsaPrivateKey,
        serials: Callable[[], int],
        chain: Sequence[x509.Certificate] = (),
        policy: str = DEFAULT_POLICY,
        clock: Callable[[], dt.datetime] = _utc_now,
        accuracy: dt.timedelta | None = dt.timedelta(seconds=1),
    ) -> None:
        _check_private_key(private_key, certificate)
        _check_tsa_certificate(certificate)
        _check_policy(policy)
        if accuracy is not None and accuracy < dt.timedelta(microseconds=1):
            raise InvalidInput(f"accuracy must be at least 1 µs, got {accuracy}", got=str(accuracy))
        self.certificate = certificate
        self.chain = tuple(chain)
        self.policy = policy
        self.accuracy = accuracy
        self._key = private_key
        self._serials = serials
        self._clock = clock
        self._digits = _fraction_digits(accuracy)
        # Only immutable bytes are kept: asn1crypto values are mutable and cache their encodings,
        # so each token is built from fresh objects (safe when several threads stamp at once).
        der = certificate.public_bytes(serialization.Encoding.DER)
        asn1_cert = asn1_x509.Certificate.load(der)
        self._issuer_der = bytes(asn1_cert.issuer.dump())
        self._subject_der = bytes(asn1_cert.subject.dump())
        self._serial_number = certificate.serial_number
        self._certificate_ders = tuple(
            c.public_bytes(serialization.Encoding.DER) for c in (certificate, *self.chain)
        )
        # RFC 5035 §3 ESSCertIDv2: hashAlgorithm DEFAULT id-sha256 is left out of the DER.
        self._ess_der = bytes(
            tsp.SigningCertificateV2(
                {
                    "certs": [
                        {
                            "cert_hash": hashlib.sha256(der).digest(),
                            "issuer_serial": {
                                "issuer": [
                                    asn1_x509.GeneralName({"directory_name": asn1_cert.issuer})
                                ],
                                "serial_number": self._serial_number,
                            },
                        }
                    ]
                }
            ).dump()
        )
        self._signature_algorithm = (
            "sha256_ecdsa" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "sha256_rsa"
        )

    def __repr__(self) -> str:  # never show the key
        return f"TimeStampAuthority({self.certificate.subject.rfc4514_string()!r})"

    def respond(self, request_der: bytes) -> bytes:
        """Answer a DER ``TimeStampReq`` with a DER ``TimeStampResp`` (RFC 3161 §2.4.1–2.4.2).

        Granted: status 0 and the token. Otherwise status 2 (rejection) and one PKIFailureInfo bit:
        ``badDataFormat`` for bytes that are not a v1 request or an imprint of the wrong length,
        ``badAlg`` for a hash other than SHA-256/384/512, ``unacceptedPolicy`` for a ``reqPolicy``
        that is not ours, ``unacceptedExtension`` for any request extension, ``systemFailure``
        when the TSA certificate is not valid now. Bad input never raises; a failing ``serials``
        or ``clock`` does (a server should answer that with HTTP 500 or ``systemFailure``).
        """
        try:
            imprint, nonce, cert_req = self._parse_request(request_der)
            token = self._issue(imprint, nonce=nonce, cert_req=cert_req)
        except _Rejection as rejection:
            return _rejection(rejection.failure, rejection.text)
        except InvalidKey as exc:
            return _rejection("system_failure", exc.message)
        return bytes(
            _TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
        )

    def stamp(
        self,
        digest: bytes,
        *,
        hash_alg: str = "sha256",
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """The DER token (a CMS ``ContentInfo``) time-stamping ``digest``, made with ``hash_alg``.

        Raises :class:`InvalidDigest` for an unsupported algorithm or a digest of the wrong size,
        :class:`InvalidKey` when the TSA certificate is not valid at the clock's time.
        """
        size = HASH_ALGORITHMS.get(hash_alg)
        if size is None:
            raise InvalidDigest(
                f"unsupported hash algorithm {hash_alg!r}, want one of {sorted(HASH_ALGORITHMS)}",
                got=hash_alg,
                want=sorted(HASH_ALGORITHMS),
            )
        if len(digest) != size:
            raise InvalidDigest(
                f"{hash_alg} digest is {len(digest)} bytes, want {size}", got=len(digest), want=size
            )
        imprint = tsp.MessageImprint(
            {"hash_algorithm": _digest_algorithm(hash_alg), "hashed_message": digest}
        )
        return bytes(self._issue(imprint, nonce=nonce, cert_req=cert_req).dump())

    def _parse_request(self, request_der: bytes) -> tuple[tsp.MessageImprint, int | None, bool]:
        """Check a TimeStampReq (RFC 3161 §2.4.1); return (imprint to copy, nonce, certReq)."""
        if len(request_der) > MAX_REQUEST_BYTES:
            raise _Rejection(
                "bad_data_format",
                f"request is {len(request_der)} bytes, at most {MAX_REQUEST_BYTES} allowed",
            )
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            version = request["version"].native
            algorithm = request["message_imprint"]["hash_algorithm"]
            oid = str(algorithm["algorithm"].dotted)
            parameters = bytes(algorithm["parameters"].dump())
            hashed = bytes(request["message_imprint"]["hashed_message"].native)
            req_policy = request["req_policy"]
            policy = None if isinstance(req_policy, core.Void) else str(req_policy.dotted)
            nonce = request["nonce"].native
            cert_req = bool(request["cert_req"].native)
            has_extensions = not isinstance(request["extensions"], core.Void)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            raise _Rejection("bad_data_format", "not a DER TimeStampReq") from exc
        if version != "v1":
            raise _Rejection("bad_data_format", f"request version is {version}, want v1")
        if not isinstance(nonce, int | None):
            raise _Rejection("bad_data_format", "the nonce is not an INTEGER")
        hash_alg = _HASH_OIDS.get(oid)
        if hash_alg is None or parameters not in (b"", _NULL_DER):
            raise _Rejection(
                "bad_alg", f"hash algorithm {oid} is not accepted; use SHA-256, SHA-384 or SHA-512"
            )
        if len(hashed) != HASH_ALGORITHMS[hash_alg]:
            raise _Rejection(
                "bad_data_format",
                f"{hash_alg} imprint is {len(hashed)} bytes, want {HASH_ALGORITHMS[hash_alg]}",
            )
        if policy is not None and policy != self.policy:
            raise _Rejection(
                "unaccepted_policy", f"policy {policy} is not offered; this TSA uses {self.policy}"
            )
        if has_extensions:
            raise _Rejection("unaccepted_extensions", "this TSA accepts no request extensions")
        # Copy the imprint as sent (RFC 3161 §2.4.2), re-encoded as DER, NULL parameters kept.
        algorithm_id: dict[str, Any] = {"algorithm": oid}
        if parameters:
            algorithm_id["parameters"] = core.Null()
        imprint = tsp.MessageImprint({"hash_algorithm": algorithm_id, "hashed_message": hashed})
        return imprint, nonce, cert_req

    def _now(self) -> dt.datetime:
        """The clock's time in UTC, truncated to the meaningful fraction digits."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidInput("the TSA clock returned a naive datetime; return an aware one")
        now = now.astimezone(dt.UTC)
        unit = 10 ** (6 - self._digits)
        now = now.replace(microsecond=now.microsecond - now.microsecond % unit)
        if not self.certificate.not_valid_before_utc <= now <= self.certificate.not_valid_after_utc:
            raise InvalidKey(
                f"the TSA certificate is not valid at {now.isoformat()}: it is valid from "
                f"{self.certificate.not_valid_before_utc.isoformat()} to "
                f"{self.certificate.not_valid_after_utc.isoformat()}; renew it (or fix the clock)",
                now=now.isoformat(),
                not_before=self.certificate.not_valid_before_utc.isoformat(),
                not_after=self.certificate.not_valid_after_utc.isoformat(),
            )
        return now

    def _issue(
        self, imprint: tsp.MessageImprint, *, nonce: int | None, cert_req: bool
    ) -> cms.ContentInfo:
        gen_time = self._now()
        tst: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": imprint,
            "serial_number": self._serials(),
            "gen_time": gen_time,
            "tsa": asn1_x509.GeneralName(
                {"directory_name": asn1_x509.Name.load(self._subject_der)}
            ),
        }
        if self.accuracy is not None:
            tst["accuracy"] = _accuracy(self.accuracy)
        if nonce is not None:
            tst["nonce"] = nonce
        tst_der = bytes(tsp.TSTInfo(tst).dump())
        # RFC 5652 §5.4: the signature covers the DER SET OF the attributes; asn1crypto's SetOf
        # sorts the encoded members on dump, as DER requires.
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
                {"type": "signing_time", "values": [_cms_time(gen_time)]},
                {
                    "type": "signing_certificate_v2",
                    "values": [tsp.SigningCertificateV2.load(self._ess_der)],
                },
            ]
        )
        signature = self._sign(bytes(signed_attrs.dump()))
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": {
                            "issuer": asn1_x509.Name.load(self._issuer_der),
                            "serial_number": self._serial_number,
                        }
                    }
                ),
                "digest_algorithm": _digest_algorithm("sha256"),
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": self._signature_algorithm},
                "signature": signature,
            }
        )
        signed_data: dict[str, Any] = {
            "version": "v3",
            "digest_algorithms": [_digest_algorithm("sha256")],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": cms.ParsableOctetString(tst_der),
            },
            "signer_infos": [signer_info],
        }
        if cert_req:
            signed_data["certificates"] = [
                cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(der)})
                for der in self._certificate_ders
            ]
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _rejection(failure: str, text: str) -> bytes:
    status = {"status": "rejection", "status_string": [text], "fail_info": {failure}}
    return bytes(_TimeStampResp({"status": status}).dump())


@dataclass(frozen=True)
class TsaCredentials:
    """A TSA certificate, its private key, and the root certificate that issued it.

    Verifiers trust ``root``; the TSA signs with ``private_key``. The key never appears in
    ``repr``. Files: ``tsa-root.pem``, ``tsa.pem``, ``tsa.key`` (PKCS#8, unencrypted, mode 0600).
    """

    root: x509.Certificate
    certificate: x509.Certificate
    private_key: TsaPrivateKey = field(repr=False)

    def write(self, directory: str | os.PathLike[str]) -> None:
        """Write the three PEM files into ``directory`` (created if missing), each fsynced.

        Refuses to replace existing files: losing a TSA key or its root by accident is worse than
        asking the operator to move the old ones away first.
        """
        target = Path(directory)
        files = {
            _ROOT_FILE: (self.root.public_bytes(serialization.Encoding.PEM), 0o644),
            _CERT_FILE: (self.certificate.public_bytes(serialization.Encoding.PEM), 0o644),
            _KEY_FILE: (
                self.private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                0o600,
            ),
        }
        existing = sorted(name for name in files if (target / name).exists())
        if existing:
            raise InvalidInput(
                f"{target} already holds {', '.join(existing)}; move them away or write elsewhere",
                path=str(target),
                existing=existing,
            )
        target.mkdir(parents=True, exist_ok=True)
        for name, (data, mode) in files.items():
            _write_new(target / name, data, mode)
        _fsync_directory(target)

    @classmethod
    def read(cls, directory: str | os.PathLike[str]) -> TsaCredentials:
        """Read what :meth:`write` wrote; the key file must not be readable by group or others."""
        source = Path(directory)
        key_path = source / _KEY_FILE
        try:
            mode = key_path.stat().st_mode & 0o777
            if mode & 0o077:
                raise InvalidKey(
                    f"{key_path} is readable by others (mode {mode:o}); run: chmod 600 {key_path}",
                    path=str(key_path),
                    got=f"{mode:o}",
                    want="600",
                )
            root = x509.load_pem_x509_certificate((source / _ROOT_FILE).read_bytes())
            certificate = x509.load_pem_x509_certificate((source / _CERT_FILE).read_bytes())
            private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKey(f"cannot read TSA credentials from {source}: {exc}") from exc
        if not isinstance(private_key, TsaPrivateKey):
            raise InvalidKey(f"{key_path} holds a {type(private_key).__name__}, want EC or RSA")
        _check_private_key(private_key, certificate)
        try:
            certificate.verify_directly_issued_by(root)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise InvalidKey(f"{_CERT_FILE} was not issued by {_ROOT_FILE}: {exc!r}") from exc
        return cls(root=root, certificate=certificate, private_key=private_key)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_key(key_type: Literal["ec", "rsa"]) -> TsaPrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def issue_tsa_certificates(
    *,
    name: str,
    key_type: Literal["ec", "rsa"] = "ec",
    valid_days: int = 1825,
    now: dt.datetime | None = None,
) -> TsaCredentials:
    """A new root CA and a TSA certificate it issued, both valid for ``valid_days`` from ``now``.

    Root ``CN=<name> Root CA``: basicConstraints CA (critical, pathLen 0), keyUsage keyCertSign and
    cRLSign (critical), subjectKeyIdentifier. TSA ``CN=<name> TSA``: basicConstraints CA:FALSE
    (critical), keyUsage digitalSignature and nonRepudiation (critical), extendedKeyUsage
    timeStamping (critical, RFC 3161 §2.3), subject and authority key identifiers. Keys are EC
    P-256, or RSA 3072 (NIST SP 800-57 strength for evidence kept past 2030). The root key is
    discarded: nobody, not even the operator, can issue a second certificate under this root.
    """
    if not 1 <= len(name) <= 50:
        raise InvalidInput(f"name must be 1 to 50 characters, got {len(name)}", got=len(name))
    if valid_days < 1:
        raise InvalidInput(f"valid_days must be at least 1, got {valid_days}", got=valid_days)
    if key_type not in ("ec", "rsa"):
        raise InvalidInput(f"key_type must be 'ec' or 'rsa', got {key_type!r}", got=key_type)
    start = (now or _utc_now()).astimezone(dt.UTC).replace(microsecond=0)
    end = start + dt.timedelta(days=valid_days)
    root_key, tsa_key = _new_key(key_type), _new_key(key_type)
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA")])
    tsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} TSA")])
    no_usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(**{**no_usage, "key_cert_sign": True, "crl_sign": True}), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(tsa_name)
        .issuer_name(root_name)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(**{**no_usage, "digital_signature": True, "content_commitment": True}),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    return TsaCredentials(root=root, certificate=certificate, private_key=tsa_key)


class FileSerials:
    """Unique, increasing token serial numbers (RFC 3161 §2.4.2) that survive restarts and crashes.

    The file holds one decimal number: the first serial not yet reserved. Serials are handed out
    from blocks of ``block``; before the first serial of a block is used, the end of the block is
    written to a temporary file, fsynced, and renamed over the old one (then the directory is
    fsynced). A crash therefore loses at most the rest of a block and never reuses a serial.
    Serials start at 1. Thread-safe; one process at a time: an exclusive ``flock`` on
    ``<path>.lock`` is held until :meth:`close` (or process exit), so a second TSA process on the
    same file fails loudly instead of repeating serials.
    """

    def __init__(self, path: str | os.PathLike[str], *, block: int = 1000) -> None:
        if block < 1:
            raise InvalidInput(f"block must be at least 1, got {block}", got=block)
        self.path = Path(path)
        self.block = block
        self._mutex = threading.Lock()
        try:
            self._lock_fd: int | None = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open {self.path}.lock: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._next = self._limit = self._read()
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise StorageError(
                f"{self.path} is in use by another FileSerials; one TSA process owns a serial file",
                path=str(self.path),
            ) from exc
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 1
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"cannot read serial file {self.path}: {exc}") from exc
        if re.fullmatch(r"[1-9][0-9]*\n", text) is None:
            raise StorageError(
                f"serial file {self.path} is corrupt ({text[:40]!r}); refusing to guess, which "
                "could reuse a serial: write a number above every serial ever issued into it",
                path=str(self.path),
            )
        return int(text)

    def _reserve(self, limit: int) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, f"{limit}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
        except OSError as exc:
            raise StorageError(f"cannot reserve serials in {self.path}: {exc}") from exc
        self._limit = limit

    def __call__(self) -> int:
        """The next serial number."""
        with self._mutex:
            if self._lock_fd is None:
                raise StorageError(f"FileSerials({str(self.path)!r}) is closed")
            if self._next >= self._limit:
                self._reserve(self._next + self.block)
            serial = self._next
            self._next += 1
            return serial

    def close(self) -> None:
        """Release the file; the unused rest of the current block is skipped, never reused."""
        with self._mutex:
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> FileSerials:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileSerials({str(self.path)!r}, block={self.block})"


SERIAL_FILE = "serial"
"""Where :func:`open_authority` keeps serial numbers, beside the credentials."""


def open_authority(
    directory: str | os.PathLike[str], *, policy: str = DEFAULT_POLICY
) -> tuple[TimeStampAuthority, TsaCredentials, FileSerials]:
    """The TSA whose credentials :meth:`TsaCredentials.write` put into ``directory``, with its
    persistent serial numbers. Close the :class:`FileSerials` when done."""
    credentials = TsaCredentials.read(directory)
    serials = FileSerials(Path(directory) / SERIAL_FILE)
    authority = TimeStampAuthority(
        certificate=credentials.certificate,
        private_key=credentials.private_key,
        serials=serials,
        policy=policy,
    )
    return authority, credentials, serials
