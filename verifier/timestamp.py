"""RFC 3161 time-stamp token checks, offline: trusts nothing but the TSA roots it is given.

A token is a CMS ``ContentInfo`` (RFC 5652 §3) holding ``SignedData`` (§5) whose encapsulated
content is a DER ``TSTInfo`` (RFC 3161 §2.4.2). :func:`verify_token` checks, in this order, and
raises :class:`~ledger.errors.TimestampInvalid` with ``details["reason"]`` naming the first failure:

``signature``  the content-type and message-digest signed attributes match the ``TSTInfo``, and the
               signature over the signed attributes verifies with the signer certificate
               (RFC 5652 §5.4, §5.6, §11.1–11.2; ECDSA or RSA PKCS#1 v1.5 with SHA-2)
``ess``        a signingCertificateV2 (RFC 5816 §2.2.1, RFC 5035 §3) or signingCertificate
               (RFC 2634 §5.4) attribute names the signer certificate: hash, and issuerSerial
``eku``        the signer certificate's only extended key usage is ``id-kp-timeStamping`` and the
               extension is critical (RFC 3161 §2.3); key usage, if present, is only
               digitalSignature and/or nonRepudiation
``expired``    genTime lies within the signer certificate's validity
``untrusted``  the signer certificate chains to one of ``roots``, every certificate valid at genTime
               (RFC 5280 path validation by cryptography's verifier); also a signer certificate
               that cannot be found, or is not the pinned ``tsa_certificate``
``imprint``    the message imprint is ``digest``, made with ``hash_alg`` (RFC 3161 §2.4.2)
``nonce``      the nonce is the one the request carried, when one is given
``status``     (:func:`token_from_response`) the TSA did not grant the request (RFC 3161 §2.4.2)

Why not rfc3161-client for the chain, signature and EKU part: it verifies a whole
``TimeStampResp``, while the ledger stores bare tokens; its strict DER parser rejects tokens whose
certificate SET is not sorted, which OpenSSL's own TSA writes whenever it includes a chain; and
every failure is one ``VerificationError`` carrying an OpenSSL string, so telling ``untrusted``
from ``expired`` or ``signature`` would mean matching message text. Here the CMS checks are a few
lines of asn1crypto and cryptography, and chain building uses cryptography's RFC 5280 verifier at
genTime — the same time rfc3161-client hands to OpenSSL. The tests check tokens both ways against
OpenSSL, and ours against rfc3161-client. Pure: no I/O, no server; imports only ``ledger.errors``
from the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from ledger.errors import InvalidDigest, InvalidInput, TimestampInvalid, TimestampMalformed

__all__ = [
    "HASH_ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "TimestampInfo",
    "make_request",
    "parse_token",
    "read_response",
    "token_from_response",
    "verify_token",
]

HASH_ALGORITHMS: Final[dict[str, int]] = {"sha256": 32, "sha384": 48, "sha512": 64}
"""Message imprint algorithms :func:`verify_token` accepts, with their digest sizes in bytes."""

MAX_TOKEN_BYTES: Final = 256 * 1024
"""Tokens with a few certificates are a few kilobytes; larger input is refused unparsed."""

_HASH_OIDS: Final = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_CMS_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# signatureAlgorithm → (key type, hash; None: the SignerInfo's digestAlgorithm), RFC 5754 §3.
_SIGNATURE_ALGORITHMS: Final[dict[str, tuple[str, str | None]]] = {
    "rsassa_pkcs1v15": ("rsa", None),
    "sha256_rsa": ("rsa", "sha256"),
    "sha384_rsa": ("rsa", "sha384"),
    "sha512_rsa": ("rsa", "sha512"),
    "sha256_ecdsa": ("ec", "sha256"),
    "sha384_ecdsa": ("ec", "sha384"),
    "sha512_ecdsa": ("ec", "sha512"),
}
_TIME_STAMPING: Final = ExtendedKeyUsageOID.TIME_STAMPING
_FAILURE_NAMES: Final = {  # asn1crypto's PKIFailureInfo names → RFC 3161 §2.4.2 spelling
    "bad_alg": "badAlg",
    "bad_request": "badRequest",
    "bad_data_format": "badDataFormat",
    "time_not_available": "timeNotAvailable",
    "unaccepted_policy": "unacceptedPolicy",
    "unaccepted_extensions": "unacceptedExtension",
    "add_info_not_available": "addInfoNotAvailable",
    "system_failure": "systemFailure",
}
# What asn1crypto and cryptography raise on bad input; parsing is the only code under these.
_PARSE_ERRORS: Final = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


class _TimeStampResp(tsp.TimeStampResp):  # type: ignore[misc]
    """RFC 3161 §2.4.2 ``TimeStampResp``; asn1crypto wrongly makes ``timeStampToken`` required."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    """What a token says (RFC 3161 §2.4.2 ``TSTInfo``), plus the certificates it carries.

    ``hash_alg`` is ``sha256``/``sha384``/``sha512``, or the dotted OID of any other algorithm.
    ``tsa_subject`` is the signer certificate's subject: from :func:`parse_token` when the token
    embeds that certificate, from :func:`verify_token` always (the certificate it verified).
    """

    gen_time: dt.datetime
    serial: int
    policy: str
    hash_alg: str
    imprint: bytes
    nonce: int | None
    accuracy: dt.timedelta | None
    ordering: bool
    tsa_subject: x509.Name | None
    certificates: tuple[x509.Certificate, ...]


@dataclass(frozen=True, slots=True)
class _Token:
    """A parsed token: the info, and the signed parts the checks need."""

    info: TimestampInfo
    e_content: bytes
    digest_alg: str
    signed_attrs_der: bytes
    content_types: list[str]  # values of the content-type attribute (RFC 5652 §11.1)
    message_digests: list[bytes]  # values of the message-digest attribute (§11.2)
    ess: dict[str, list[Any]]  # signing_certificate(_v2) → its asn1crypto values, parsed lazily
    signature_alg: str
    signature: bytes
    sid: Any  # asn1crypto cms.SignerIdentifier


def _malformed(message: str) -> TimestampMalformed:
    return TimestampMalformed(f"malformed time-stamp token: {message}")


def _invalid(reason: str, message: str, **details: Any) -> TimestampInvalid:
    return TimestampInvalid(message, reason=reason, **details)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _accuracy(accuracy: Any) -> dt.timedelta | None:
    if isinstance(accuracy, core.Void):
        return None
    parts = {name: accuracy[name].native or 0 for name in ("seconds", "millis", "micros")}
    if any(value < 0 for value in parts.values()):
        raise _malformed(f"negative accuracy {parts}")
    return dt.timedelta(
        seconds=parts["seconds"], milliseconds=parts["millis"], microseconds=parts["micros"]
    )


def _parse(token: bytes) -> _Token:
    if len(token) > MAX_TOKEN_BYTES:
        raise _malformed(f"{len(token)} bytes, at most {MAX_TOKEN_BYTES}")
    try:
        content_info = cms.ContentInfo.load(token, strict=True)
        if content_info["content_type"].native != "signed_data":
            raise _malformed(f"content type is {content_info['content_type'].native}")
        signed_data = content_info["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise _malformed(f"encapsulated content is {encap['content_type'].native}, not TSTInfo")
        if isinstance(encap["content"], core.Void):
            raise _malformed("no encapsulated TSTInfo")
        e_content = bytes(encap["content"])  # the value octets, BER chunks merged (§5.4)
        tst = tsp.TSTInfo.load(e_content, strict=True)
        if tst["version"].native != "v1":
            raise _malformed(f"TSTInfo version {tst['version'].native}, want v1")
        imprint_alg = str(tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted)
        gen_time = tst["gen_time"].native
        if not isinstance(gen_time, dt.datetime) or gen_time.tzinfo is None:
            raise _malformed(f"genTime {tst['gen_time'].contents!r} is not a UTC time")
        certificates: list[x509.Certificate] = []
        if not isinstance(signed_data["certificates"], core.Void):
            for choice in signed_data["certificates"]:
                if choice.name == "certificate":
                    certificate = x509.load_der_x509_certificate(choice.chosen.dump())
                    # cryptography decodes these lazily: make a broken certificate fail here.
                    _ = certificate.subject, certificate.issuer, certificate.extensions
                    certificates.append(certificate)
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:  # RFC 3161 §2.4.2: the TSA's signature and no other
            raise _malformed(f"{len(signer_infos)} SignerInfos, want exactly 1")
        signer_info = signer_infos[0]
        signed_attrs = signer_info["signed_attrs"]
        if isinstance(signed_attrs, core.Void):
            raise _malformed("no signed attributes (RFC 5652 §5.3 requires them for TSTInfo)")
        attributes: dict[str, list[Any]] = {}
        for attribute in signed_attrs:
            name = str(attribute["type"].native)
            if name in attributes:
                raise _malformed(f"signed attribute {name} appears twice")
            attributes[name] = list(attribute["values"])
        content_types = [str(v.native) for v in attributes.get("content_type", [])]
        message_digests = [bytes(v.native) for v in attributes.get("message_digest", [])]
        nonce = tst["nonce"].native
        info = TimestampInfo(
            gen_time=gen_time.astimezone(dt.UTC),
            serial=int(tst["serial_number"].native),
            policy=str(tst["policy"].dotted),
            hash_alg=_HASH_OIDS.get(imprint_alg, imprint_alg),
            imprint=bytes(tst["message_imprint"]["hashed_message"].native),
            nonce=None if nonce is None else int(nonce),
            accuracy=_accuracy(tst["accuracy"]),
            ordering=bool(tst["ordering"].native),
            tsa_subject=None,
            certificates=tuple(certificates),
        )
        parsed = _Token(
            info=info,
            e_content=e_content,
            digest_alg=str(signer_info["digest_algorithm"]["algorithm"].native),
            # RFC 5652 §5.4: the signature covers the attributes re-tagged as a universal SET OF.
            signed_attrs_der=b"\x31"
            + _der_length(len(signed_attrs.contents))
            + bytes(signed_attrs.contents),
            content_types=content_types,
            message_digests=message_digests,
            ess={
                name: values
                for name, values in attributes.items()
                if name in ("signing_certificate_v2", "signing_certificate")
            },
            signature_alg=str(signer_info["signature_algorithm"]["algorithm"].native),
            signature=bytes(signer_info["signature"].native),
            sid=signer_info["sid"],
        )
        signer = _find_signer(parsed, certificates)
    except TimestampMalformed:
        raise
    except _PARSE_ERRORS as exc:
        raise _malformed(_hint(token, exc)) from exc
    if signer is None:
        return parsed
    return replace(parsed, info=replace(info, tsa_subject=signer.subject))  # subject decoded above


def _hint(token: bytes, exc: BaseException) -> str:
    """Name the likely mix-up: a whole TimeStampResp handed in where a token belongs."""
    try:
        _TimeStampResp.load(token, strict=True)["status"]["status"].native  # noqa: B018
    except _PARSE_ERRORS:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"not a DER CMS ContentInfo holding a TSTInfo ({first_line})"
    return "this is a TimeStampResp (status and token), not a token: call token_from_response()"


def _matches(sid: Any, certificate: x509.Certificate) -> bool:
    """Does the SignerInfo's sid (RFC 5652 §5.3) name ``certificate``?"""
    asn1_cert = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    if sid.name == "issuer_and_serial_number":
        return bool(
            sid.chosen["serial_number"].native == asn1_cert.serial_number
            and sid.chosen["issuer"] == asn1_cert.issuer
        )
    return bool(sid.chosen.native == asn1_cert.key_identifier)


def _find_signer(parsed: _Token, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for certificate in candidates:
        if _matches(parsed.sid, certificate):
            return certificate
    return None


def parse_token(token: bytes) -> TimestampInfo:
    """Read a DER token without checking anything but its shape.

    Raises :class:`~ledger.errors.TimestampMalformed` for anything that is not a CMS SignedData
    holding a v1 TSTInfo with exactly one SignerInfo and signed attributes — never another error.
    """
    return _parse(token).info


def token_from_response(response: bytes) -> bytes:
    """The token inside a DER ``TimeStampResp`` (RFC 3161 §2.4.2).

    Raises :class:`~ledger.errors.TimestampInvalid` (reason ``status``) when the TSA did not grant
    the request (status other than granted or grantedWithMods), with its failure info and text,
    and :class:`~ledger.errors.TimestampMalformed` for bytes that are not a response.
    """
    try:
        resp = _TimeStampResp.load(response, strict=True)
        status_info = resp["status"]
        status = status_info["status"].native
        fail_info = status_info["fail_info"]
        failures = [] if isinstance(fail_info, core.Void) else sorted(fail_info.native)
        text_field = status_info["status_string"]
        text = "" if isinstance(text_field, core.Void) else "; ".join(text_field.native)
        token = resp["time_stamp_token"]
        token_der = None if isinstance(token, core.Void) else bytes(token.dump())
    except _PARSE_ERRORS as exc:
        raise TimestampMalformed("not a DER TimeStampResp") from exc
    if status not in ("granted", "granted_with_mods"):
        names = [_FAILURE_NAMES.get(str(f), str(f)) for f in failures]
        raise _invalid(
            "status",
            f"the TSA refused the request: status {status}, failure {', '.join(names) or 'none'}"
            + (f" ({text})" if text else ""),
            status=str(status),
            failure_info=names,
            text=text,
        )
    if token_der is None:
        raise TimestampMalformed("the TimeStampResp grants the request but holds no token")
    return token_der


def _check_signature(parsed: _Token, signer: x509.Certificate) -> None:
    """RFC 5652 §5.4, §5.6: content-type and message-digest attributes, then the signature."""
    if parsed.content_types != ["tst_info"]:
        raise _invalid(
            "signature",
            f"the content-type attribute is {parsed.content_types}, want one id-ct-TSTInfo",
            got=parsed.content_types,
        )
    if parsed.digest_alg not in _CMS_HASHES:
        raise _invalid(
            "signature",
            f"unsupported SignerInfo digest algorithm {parsed.digest_alg}, want SHA-2",
            got=parsed.digest_alg,
        )
    want = hashlib.new(parsed.digest_alg, parsed.e_content).digest()
    if parsed.message_digests != [want]:
        raise _invalid(
            "signature",
            "the message-digest attribute does not match the TSTInfo: the token was altered",
            got=[d.hex() for d in parsed.message_digests],
            want=want.hex(),
        )
    key_type, hash_name = _SIGNATURE_ALGORITHMS.get(parsed.signature_alg, ("?", None))
    hash_algorithm = _CMS_HASHES[hash_name or parsed.digest_alg]()
    try:
        key = signer.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _invalid("signature", f"the TSA certificate's public key is unusable: {exc}") from exc
    try:
        if key_type == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(parsed.signature, parsed.signed_attrs_der, ec.ECDSA(hash_algorithm))
        elif key_type == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                parsed.signature, parsed.signed_attrs_der, padding.PKCS1v15(), hash_algorithm
            )
        else:
            raise _invalid(
                "signature",
                f"signature algorithm {parsed.signature_alg} with a {type(key).__name__} is not "
                "supported; want ECDSA or RSA PKCS#1 v1.5 with SHA-2",
                got=parsed.signature_alg,
            )
    except InvalidSignature as exc:
        raise _invalid(
            "signature", "the TSA signature does not verify: the token was altered"
        ) from exc


@dataclass(frozen=True, slots=True)
class _CertId:
    """The first ESSCertID(v2) of a signing-certificate attribute: it names the signer."""

    hash_alg: str
    cert_hash: bytes
    serial: int | None
    issuers: list[Any]  # asn1crypto x509.Name values of issuerSerial's directoryNames


def _first_cert_id(name: str, values: list[Any]) -> _CertId:
    if len(values) != 1:
        raise _invalid("ess", f"the {name} attribute has {len(values)} values, want 1")
    try:
        first = values[0]["certs"][0]
        hash_alg = "sha1"  # RFC 2634 §5.4.1: ESSCertID hashes with SHA-1
        if name == "signing_certificate_v2":  # RFC 5035 §4: DEFAULT SHA-256
            hash_alg = str(first["hash_algorithm"]["algorithm"].native)
        issuer_serial = first["issuer_serial"]
        if isinstance(issuer_serial, core.Void):
            return _CertId(hash_alg, bytes(first["cert_hash"].native), None, [])
        return _CertId(
            hash_alg,
            bytes(first["cert_hash"].native),
            int(issuer_serial["serial_number"].native),
            [g.chosen for g in issuer_serial["issuer"] if g.name == "directory_name"],
        )
    except _PARSE_ERRORS as exc:
        raise _invalid("ess", f"the {name} attribute cannot be read ({exc})") from exc


def _same_name(ours: Any, theirs: Any) -> bool:
    """RFC 5280 §7.1 name comparison (asn1crypto's), false for a name that cannot be decoded."""
    try:
        return bool(ours == theirs)
    except _PARSE_ERRORS:
        return False


def _check_ess(parsed: _Token, signer: x509.Certificate) -> None:
    """RFC 5816 §2.2.1, RFC 5035 §3, RFC 2634 §5.4: the first ESSCertID(v2) of each
    signing-certificate attribute present identifies the signer certificate."""
    if not parsed.ess:
        raise _invalid(
            "ess",
            "no ESS signingCertificate(V2) attribute: nothing binds the token to its TSA "
            "certificate (RFC 5816 §2.2.1)",
        )
    der = signer.public_bytes(Encoding.DER)
    asn1_cert = asn1_x509.Certificate.load(der)
    for name, values in parsed.ess.items():
        cert_id = _first_cert_id(name, values)
        if cert_id.hash_alg not in ("sha1", *_CMS_HASHES):
            raise _invalid("ess", f"the {name} attribute uses hash {cert_id.hash_alg}, want SHA")
        want = hashlib.new(cert_id.hash_alg, der).digest()
        if cert_id.cert_hash != want:
            raise _invalid(
                "ess",
                f"the {name} attribute names another certificate than the signer's",
                got=cert_id.cert_hash.hex(),
                want=want.hex(),
            )
        if cert_id.serial is not None and (
            cert_id.serial != asn1_cert.serial_number
            or not any(_same_name(asn1_cert.issuer, n) for n in cert_id.issuers)
        ):
            raise _invalid(
                "ess",
                f"the {name} issuerSerial does not name the signer certificate",
                got=str(cert_id.serial),
                want=str(asn1_cert.serial_number),
            )


def _check_purpose(signer: x509.Certificate) -> None:
    """RFC 3161 §2.3 (and OpenSSL's timestamp-signing purpose): critical, only timeStamping."""
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise _invalid(
            "eku",
            "the TSA certificate has no extended key usage, want critical timeStamping",
            got=None,
            want="critical timeStamping",
        ) from None
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise _invalid("eku", f"the TSA certificate's extensions cannot be read ({exc})") from exc
    purposes = [oid.dotted_string for oid in eku.value]
    if purposes != [_TIME_STAMPING.dotted_string]:
        raise _invalid(
            "eku",
            f"the TSA certificate's extended key usage is {purposes}, want only timeStamping "
            f"({_TIME_STAMPING.dotted_string})",
            got=purposes,
            want=[_TIME_STAMPING.dotted_string],
        )
    if not eku.critical:
        raise _invalid(
            "eku",
            "the TSA certificate's timeStamping extended key usage is not critical",
            got="non-critical",
            want="critical",
        )
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    others = (
        usage.key_encipherment,
        usage.data_encipherment,
        usage.key_agreement,
        usage.key_cert_sign,
        usage.crl_sign,
    )
    if any(others) or not (usage.digital_signature or usage.content_commitment):
        raise _invalid(
            "eku",
            f"the TSA certificate's key usage is {usage}, want digitalSignature and/or "
            "nonRepudiation only",
        )


def _check_validity(signer: x509.Certificate, gen_time: dt.datetime) -> None:
    not_before, not_after = signer.not_valid_before_utc, signer.not_valid_after_utc
    if not not_before <= gen_time <= not_after:
        when = "expired" if gen_time > not_after else "not yet valid"
        raise _invalid(
            "expired",
            f"the TSA certificate was {when} at genTime {gen_time.isoformat()}: valid "
            f"{not_before.isoformat()} to {not_after.isoformat()}",
            got=gen_time.isoformat(),
            want=f"{not_before.isoformat()}/{not_after.isoformat()}",
        )


def _ca_purpose(
    _policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    """Intermediates may restrict their purposes, but not so as to exclude time-stamping."""
    allowed = {_TIME_STAMPING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}
    if eku is not None and allowed.isdisjoint(eku):
        raise ValueError("a CA in the chain has an extended key usage without timeStamping")


def _check_chain(
    signer: x509.Certificate,
    others: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    gen_time: dt.datetime,
) -> None:
    """RFC 5280 §6 path validation at genTime, by cryptography's verifier with its WebPKI profile
    loosened for TSAs, so as to accept what ``openssl ts -verify`` accepts: no subjectAltName or
    authorityKeyIdentifier needed, and the end-entity's extended key usage left to
    :func:`_check_purpose` (the verifier's default would want clientAuth). Unknown critical
    extensions, CA basic constraints and key usage, signature algorithms and key sizes are still
    the verifier's."""
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    )
    ca_policy = (
        ExtensionPolicy.webpki_defaults_ca()
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _ca_purpose)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots)))
        .time(gen_time)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(signer, list(others))
    except VerificationError as exc:
        raise _invalid(
            "untrusted",
            f"the TSA certificate {signer.subject.rfc4514_string()} does not chain to a trusted "
            f"root at genTime {gen_time.isoformat()}: {exc}",
            subject=signer.subject.rfc4514_string(),
        ) from exc


def verify_token(
    token: bytes,
    *,
    digest: bytes,
    roots: Sequence[x509.Certificate],
    hash_alg: str = "sha256",
    nonce: int | None = None,
    tsa_certificate: x509.Certificate | None = None,
    intermediates: Sequence[x509.Certificate] = (),
) -> TimestampInfo:
    """Check that ``token`` time-stamps ``digest`` and was signed by a TSA under one of ``roots``.

    The checks and their ``details["reason"]`` are listed in the module docstring; certificates
    are judged at the token's genTime, so a token stays valid after its TSA certificate expires.
    ``tsa_certificate`` pins the signer (and supplies it when the token was requested without
    ``certReq``); ``intermediates`` add CA certificates to those the token carries. Raises
    :class:`~ledger.errors.TimestampMalformed` for bytes that are not a token and
    :class:`~ledger.errors.InvalidDigest` / :class:`~ledger.errors.InvalidInput` for bad arguments.
    """
    size = HASH_ALGORITHMS.get(hash_alg)
    if size is None:
        raise InvalidDigest(
            f"unsupported hash algorithm {hash_alg!r}, want one of {sorted(HASH_ALGORITHMS)}",
            got=hash_alg,
        )
    if len(digest) != size:
        raise InvalidDigest(
            f"{hash_alg} digest is {len(digest)} bytes, want {size}", got=len(digest), want=size
        )
    if not roots:
        raise InvalidInput("no TSA root certificates given: pass the roots you trust")
    parsed = _parse(token)
    info = parsed.info
    embedded = list(info.certificates)
    signer = _find_signer(parsed, [*embedded, *([tsa_certificate] if tsa_certificate else [])])
    if signer is None:
        raise _invalid(
            "untrusted",
            "the token's signer certificate is neither embedded nor given: pass tsa_certificate= "
            "(the request did not set certReq)",
        )
    if tsa_certificate is not None and signer != tsa_certificate:
        raise _invalid(
            "untrusted",
            f"the token is signed by {signer.subject.rfc4514_string()} "
            f"(serial {signer.serial_number:x}), not by the pinned TSA certificate "
            f"{tsa_certificate.subject.rfc4514_string()} "
            f"(serial {tsa_certificate.serial_number:x})",
        )
    _check_signature(parsed, signer)
    _check_ess(parsed, signer)
    _check_purpose(signer)
    _check_validity(signer, info.gen_time)
    _check_chain(
        signer, [*intermediates, *(c for c in embedded if c != signer)], roots, info.gen_time
    )
    if info.hash_alg != hash_alg or info.imprint != digest:
        raise _invalid(
            "imprint",
            f"the token time-stamps {info.hash_alg}:{info.imprint.hex()}, "
            f"want {hash_alg}:{digest.hex()}",
            got=f"{info.hash_alg}:{info.imprint.hex()}",
            want=f"{hash_alg}:{digest.hex()}",
        )
    if nonce is not None and info.nonce != nonce:
        raise _invalid(
            "nonce",
            f"the token's nonce is {info.nonce}, want {nonce} (a replayed or mixed-up response)",
            got=info.nonce,
            want=nonce,
        )
    return replace(info, tsa_subject=signer.subject)


def make_request(
    digest: bytes, *, hash_alg: str = "sha256", nonce: int | None = None, cert_req: bool = True
) -> bytes:
    """A DER ``TimeStampReq`` (RFC 3161 §2.4.1) for ``digest``, SHA-2 parameters absent."""
    size = HASH_ALGORITHMS.get(hash_alg)
    if size is None or len(digest) != size:
        raise InvalidDigest(
            f"a time-stamp request takes a SHA-256/384/512 digest, got {hash_alg} "
            f"of {len(digest)} bytes",
            got=hash_alg,
            want=sorted(HASH_ALGORITHMS),
        )
    request: dict[str, Any] = {
        "version": 1,
        "message_imprint": {
            "hash_algorithm": {"algorithm": hash_alg, "parameters": None},
            "hashed_message": digest,
        },
        "cert_req": cert_req,
    }
    if nonce is not None:
        request["nonce"] = nonce
    return bytes(tsp.TimeStampReq(request).dump())


def read_response(response: bytes, nonce: int) -> bytes:
    """The token of a granted response whose nonce is ``nonce`` (what an RFC 3161 client checks
    before it keeps a token)."""
    token = token_from_response(response)
    found = parse_token(token).nonce
    if found != nonce:
        raise TimestampInvalid(
            "the TSA answered with another nonce", reason="nonce", got=found, want=nonce
        )
    return token
