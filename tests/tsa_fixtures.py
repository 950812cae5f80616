"""Test helpers for RFC 3161: CA and TSA certificates, requests, forged tokens, OpenSSL's TSA.

Keys are generated per test run, never committed. ``openssl`` must be installed: the interop tests
fail (never skip) without it, so CI cannot pass them by accident.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.authority import TimeStampAuthority

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TIME_STAMPING = ExtendedKeyUsageOID.TIME_STAMPING
HASH_OIDS = {
    "md5": "1.2.840.113549.2.5",
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
_NO_USAGE = dict.fromkeys(
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


def new_key(key_type: KeyType = "ec") -> PrivateKey:
    """EC P-256 or RSA-2048 (small enough to keep tests fast)."""
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Issued:
    """A certificate with its key."""

    certificate: x509.Certificate
    key: PrivateKey


def make_ca(
    name: str = "Test Root CA",
    *,
    key_type: KeyType = "ec",
    issuer: Issued | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    not_before: dt.datetime = NOW - dt.timedelta(days=30),
    not_after: dt.datetime = NOW + dt.timedelta(days=365),
) -> Issued:
    """A root CA (``issuer=None``) or an intermediate CA issued by ``issuer``."""
    key = new_key(key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.certificate.subject if issuer else _name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(**{**_NO_USAGE, "key_cert_sign": True, "crl_sign": True}), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def make_tsa(
    issuer: Issued,
    *,
    name: str = "Test TSA",
    key_type: KeyType = "ec",
    eku: Sequence[x509.ObjectIdentifier] | None = (TIME_STAMPING,),
    eku_critical: bool = True,
    usage: Sequence[str] = ("digital_signature", "content_commitment"),
    authority_key_id: bool = True,
    extra: Sequence[x509.ExtensionType] = (),
    not_before: dt.datetime = NOW - dt.timedelta(days=1),
    not_after: dt.datetime = NOW + dt.timedelta(days=180),
) -> Issued:
    """A TSA certificate; ``eku=None`` leaves the extended key usage out, ``usage`` names the
    KeyUsage bits, ``extra`` adds critical extensions."""
    key = new_key(key_type)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{**_NO_USAGE, **dict.fromkeys(usage, True)}), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if authority_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    for extension in extra:
        builder = builder.add_extension(extension, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def authority(
    tsa: Issued,
    *,
    chain: Sequence[x509.Certificate] = (),
    clock: Callable[[], dt.datetime] | None = None,
    **kwargs: Any,
) -> TimeStampAuthority:
    """A TimeStampAuthority for ``tsa`` with serials 1, 2, 3…"""
    assert isinstance(tsa.key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    if clock is not None:
        kwargs["clock"] = clock
    return TimeStampAuthority(
        certificate=tsa.certificate,
        private_key=tsa.key,
        chain=chain,
        serials=itertools.count(1).__next__,
        **kwargs,
    )


def make_request(
    digest: bytes,
    *,
    hash_alg: str = "sha256",
    nonce: int | None = None,
    cert_req: bool = True,
    policy: str | None = None,
    null_parameters: bool = False,
    version: int = 1,
    extensions: bool = False,
) -> bytes:
    """A DER TimeStampReq (RFC 3161 §2.4.1), including ones a TSA must refuse."""
    algorithm: dict[str, Any] = {"algorithm": HASH_OIDS.get(hash_alg, hash_alg)}
    if null_parameters:
        algorithm["parameters"] = core.Null()
    request: dict[str, Any] = {
        "version": version,
        "message_imprint": {"hash_algorithm": algorithm, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if policy is not None:
        request["req_policy"] = policy
    if nonce is not None:
        request["nonce"] = nonce
    if extensions:
        request["extensions"] = [{"extn_id": "1.2.3.4", "extn_value": b"x"}]
    return bytes(tsp.TimeStampReq(request).dump())


def response_status(response: bytes) -> tuple[str, set[str]]:
    """(status, failure-info names) of a DER TimeStampResp, parsed without our verifier."""
    status = core.Sequence.load(response)[0]
    info = tsp.PKIStatusInfo.load(status.dump())
    fail = info["fail_info"]
    return str(info["status"].native), set() if isinstance(fail, core.Void) else set(fail.native)


def resign(
    token: bytes,
    *,
    key: PrivateKey,
    certificate: x509.Certificate,
    tst_info: dict[str, Any] | None = None,
    ess: Literal["v2", "v1", "none", "wrong-hash", "wrong-serial"] = "v2",
) -> bytes:
    """Re-sign ``token`` as if ``certificate``/``key`` had issued it: the TSTInfo (with the fields
    in ``tst_info`` replaced, or removed where the value is None), the embedded certificate, the
    sid, the ESS attribute (v2, v1, left out, another certificate's hash, or the right hash with
    another serial in issuerSerial) and the signature are all rebuilt: a correctly signed token
    that only a check of its content can refuse."""
    content_info = cms.ContentInfo.load(token)
    signed_data = content_info["content"]
    tst = tsp.TSTInfo.load(signed_data["encap_content_info"]["content"].contents)
    fields = {name: tst[name] for name in tst if not isinstance(tst[name], core.Void)}
    for name, value in (tst_info or {}).items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    tst_der = bytes(tsp.TSTInfo(fields).dump())
    der = certificate.public_bytes(serialization.Encoding.DER)
    asn1_cert = asn1_x509.Certificate.load(der)
    issuer_serial = {
        "issuer": [asn1_x509.GeneralName({"directory_name": asn1_cert.issuer})],
        "serial_number": asn1_cert.serial_number,
    }
    attrs: list[dict[str, Any]] = [
        {"type": "content_type", "values": ["tst_info"]},
        {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
    ]
    if ess == "v2":
        v2 = {
            "certs": [{"cert_hash": hashlib.sha256(der).digest(), "issuer_serial": issuer_serial}]
        }
        attrs.append({"type": "signing_certificate_v2", "values": [v2]})
    elif ess == "v1":
        v1 = {"certs": [{"cert_hash": hashlib.sha1(der).digest(), "issuer_serial": issuer_serial}]}
        attrs.append({"type": "signing_certificate", "values": [v1]})
    elif ess == "wrong-hash":
        v2 = {"certs": [{"cert_hash": hashlib.sha256(b"another").digest()}]}
        attrs.append({"type": "signing_certificate_v2", "values": [v2]})
    elif ess == "wrong-serial":
        wrong = {**issuer_serial, "serial_number": asn1_cert.serial_number + 1}
        v2 = {"certs": [{"cert_hash": hashlib.sha256(der).digest(), "issuer_serial": wrong}]}
        attrs.append({"type": "signing_certificate_v2", "values": [v2]})
    signed_attrs = cms.CMSAttributes(attrs)
    data = bytes(signed_attrs.dump())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature, algorithm = key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    else:
        signature, algorithm = key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"
    signer_info = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": asn1_cert.issuer,
                    "serial_number": asn1_cert.serial_number,
                }
            }
        ),
        "digest_algorithm": {"algorithm": "sha256"},
        "signed_attrs": signed_attrs,
        "signature_algorithm": {"algorithm": algorithm},
        "signature": signature,
    }
    return bytes(
        cms.ContentInfo(
            {
                "content_type": "signed_data",
                "content": {
                    "version": "v3",
                    "digest_algorithms": [{"algorithm": "sha256"}],
                    "encap_content_info": {
                        "content_type": "tst_info",
                        "content": cms.ParsableOctetString(tst_der),
                    },
                    "certificates": [cms.CertificateChoices({"certificate": asn1_cert})],
                    "signer_infos": [signer_info],
                },
            }
        ).dump()
    )


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def openssl(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``openssl``; fails the test with a hint when it is missing."""
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail(
            "openssl is not installed: the RFC 3161 interop tests need it and never skip "
            "(Debian: apt-get install openssl)"
        )
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def openssl_verify(
    directory: Path,
    response: bytes,
    root: x509.Certificate,
    *,
    digest: bytes | None = None,
    data: bytes | None = None,
    untrusted: x509.Certificate | None = None,
) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify`` of a TimeStampResp, by ``-digest`` or ``-data``; does not fail."""
    (directory / "verify.tsr").write_bytes(response)
    (directory / "verify-root.pem").write_bytes(pem(root))
    args = ["ts", "-verify", "-in", "verify.tsr", "-CAfile", "verify-root.pem"]
    if digest is not None:
        args += ["-digest", digest.hex()]
    if data is not None:
        (directory / "verify.data").write_bytes(data)
        args += ["-data", "verify.data"]
    if untrusted is not None:
        (directory / "verify-untrusted.pem").write_bytes(pem(untrusted))
        args += ["-untrusted", "verify-untrusted.pem"]
    return openssl(*args, cwd=directory, check=False)


class OpenSSLTsa:
    """OpenSSL's own TSA (``openssl ts -reply``), its CA and certificate made by ``openssl`` too
    (shared/research/libraries-checked.md §1): an implementation we did not write."""

    def __init__(
        self,
        directory: Path,
        *,
        key_type: KeyType = "ec",
        ess_cert_id_alg: str = "sha256",
        include_chain: bool = False,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        new_key = (
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            if key_type == "ec"
            else ["-newkey", "rsa:2048"]
        )
        run = self._run
        run(
            "req", "-x509", *new_key, "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "30", "-subj", "/CN=OpenSSL Test Root CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        run(
            "req", "-new", *new_key, "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
            "-subj", "/CN=OpenSSL Test TSA",
        )  # fmt: skip
        (directory / "tsa_ext.cnf").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,nonRepudiation\n"
            "extendedKeyUsage=critical,timeStamping\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
        )
        run(
            "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "tsa.pem", "-days", "20", "-extfile", "tsa_ext.cnf",
        )  # fmt: skip
        (directory / "tsaserial").write_text("01\n")
        (directory / "ts.cnf").write_text(
            "[ tsa ]\n"
            "default_tsa = tsa_config1\n"
            "[ tsa_config1 ]\n"
            "serial = ./tsaserial\n"
            "crypto_device = builtin\n"
            "signer_cert = ./tsa.pem\n"
            + ("certs = ./ca.pem\n" if include_chain else "")
            + "signer_key = ./tsa.key\n"
            "signer_digest = sha256\n"
            "default_policy = 1.3.6.1.4.1.99999.1.1\n"
            "digests = sha256, sha384, sha512\n"
            "accuracy = secs:1\n"
            "ordering = no\n"
            "tsa_name = yes\n"
            "ess_cert_id_chain = no\n"
            f"ess_cert_id_alg = {ess_cert_id_alg}\n"
        )
        self.root = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        self.certificate = x509.load_pem_x509_certificate((directory / "tsa.pem").read_bytes())

    def _run(self, *args: str) -> None:
        openssl(*args, cwd=self.directory)

    def reply(self, request: bytes) -> bytes:
        """The DER TimeStampResp OpenSSL's TSA gives for ``request``."""
        (self.directory / "req.tsq").write_bytes(request)
        self._run("ts", "-reply", "-config", "ts.cnf", "-queryfile", "req.tsq", "-out", "resp.tsr")
        return (self.directory / "resp.tsr").read_bytes()
