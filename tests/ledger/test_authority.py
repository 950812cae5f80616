"""Our RFC 3161 TSA: certificate profile, the token structure of research §4 field by field,
rejections with the right PKIFailureInfo, serial numbers across threads, restarts and crashes,
and interop both ways with OpenSSL and rfc3161-client."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import cms, core, parser, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.authority import (
    DEFAULT_POLICY,
    MAX_REQUEST_BYTES,
    FileSerials,
    TimeStampAuthority,
    TsaCredentials,
    issue_tsa_certificates,
)
from ledger.errors import InvalidDigest, InvalidInput, InvalidKey, StorageError
from tests.tsa_fixtures import (
    TIME_STAMPING,
    Issued,
    authority,
    make_ca,
    make_request,
    make_tsa,
    openssl,
    openssl_verify,
    pem,
    response_status,
)
from verifier.timestamp import parse_token, token_from_response, verify_token

DIGEST = hashlib.sha256(b"example.com/log\n7\nroot\n").digest()
CLOCK = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def root() -> Issued:
    return make_ca(not_before=CLOCK - dt.timedelta(days=400))


@pytest.fixture(scope="module")
def tsa(root: Issued) -> Issued:
    return make_tsa(root, not_before=CLOCK - dt.timedelta(days=1))


def signed_data(token: bytes) -> cms.SignedData:
    return cms.ContentInfo.load(token)["content"]


def tst_info(token: bytes) -> tsp.TSTInfo:
    return tsp.TSTInfo.load(signed_data(token)["encap_content_info"]["content"].contents)


def member_tags(der: bytes) -> list[int]:
    """The tag numbers of a SEQUENCE's members, read with asn1crypto's bare parser."""
    contents = parser.parse(der)[4]
    tags = []
    while contents:
        _class, _method, tag, header, body, trailer = parser.parse(contents, strict=False)
        tags.append(tag)
        contents = contents[len(header) + len(body) + len(trailer) :]
    return tags


# --- certificates -------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_issued_certificates_follow_the_profile(key_type: str) -> None:
    creds = issue_tsa_certificates(name="Unit", key_type=key_type, valid_days=10, now=CLOCK)
    root, cert = creds.root, creds.certificate
    root.verify_directly_issued_by(root)
    cert.verify_directly_issued_by(root)
    ext = root.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ext = cert.extensions
    basic = ext.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [TIME_STAMPING]
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.subject.rfc4514_string() == "CN=Unit TSA"
    assert root.subject.rfc4514_string() == "CN=Unit Root CA"
    assert cert.not_valid_before_utc == CLOCK.replace(microsecond=0)
    assert cert.not_valid_after_utc == CLOCK.replace(microsecond=0) + dt.timedelta(days=10)
    if key_type == "ec":
        assert isinstance(creds.private_key, ec.EllipticCurvePrivateKey)
    else:
        assert isinstance(creds.private_key, rsa.RSAPrivateKey)
        assert creds.private_key.key_size == 3072
    tsa = TimeStampAuthority(
        certificate=cert,
        private_key=creds.private_key,
        serials=iter(range(1, 10)).__next__,
        clock=lambda: CLOCK + dt.timedelta(hours=1),
    )
    verify_token(tsa.stamp(DIGEST), digest=DIGEST, roots=[root])


@pytest.mark.parametrize(
    "kwargs",
    [{"name": ""}, {"name": "x" * 51}, {"valid_days": 0}, {"key_type": "dsa"}],
    ids=["empty-name", "long-name", "no-days", "dsa"],
)
def test_issue_refuses_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        issue_tsa_certificates(**{"name": "Unit", **kwargs})


def test_credentials_round_trip_through_pem_files(tmp_path: Path) -> None:
    creds = issue_tsa_certificates(name="Files")
    creds.write(tmp_path / "tsa")
    assert stat.S_IMODE((tmp_path / "tsa" / "tsa.key").stat().st_mode) == 0o600
    assert (tmp_path / "tsa" / "tsa-root.pem").read_bytes() == pem(creds.root)
    again = TsaCredentials.read(tmp_path / "tsa")
    assert (again.root, again.certificate) == (creds.root, creds.certificate)
    assert again.private_key.private_numbers() == creds.private_key.private_numbers()
    assert "private_key" not in repr(creds)
    assert "PRIVATE" not in repr(creds)


def test_write_refuses_to_replace_files(tmp_path: Path) -> None:
    issue_tsa_certificates(name="First").write(tmp_path)
    first = (tmp_path / "tsa.key").read_bytes()
    with pytest.raises(InvalidInput, match="already holds"):
        issue_tsa_certificates(name="Second").write(tmp_path)
    assert (tmp_path / "tsa.key").read_bytes() == first


def test_read_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    issue_tsa_certificates(name="Files").write(tmp_path)
    (tmp_path / "tsa.key").chmod(0o644)
    with pytest.raises(InvalidKey, match="chmod 600"):
        TsaCredentials.read(tmp_path)


@pytest.mark.parametrize("other_name", ["Other", "Files"], ids=["other-name", "same-name"])
def test_read_refuses_a_certificate_from_another_root(tmp_path: Path, other_name: str) -> None:
    issue_tsa_certificates(name="Files").write(tmp_path)
    (tmp_path / "tsa-root.pem").write_bytes(pem(issue_tsa_certificates(name=other_name).root))
    with pytest.raises(InvalidKey, match="not issued by"):
        TsaCredentials.read(tmp_path)


# --- what the constructor refuses ---------------------------------------------------------------


def test_ed25519_key_is_refused_with_the_reason(tsa: Issued) -> None:
    with pytest.raises(InvalidKey, match=r"OpenSSL 3\.0 cannot verify"):
        TimeStampAuthority(
            certificate=tsa.certificate,
            private_key=ed25519.Ed25519PrivateKey.generate(),
            serials=iter(range(1, 10)).__next__,
        )


@pytest.mark.parametrize(
    "key",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        lambda: ec.generate_private_key(ec.SECP256R1()),
    ],
    ids=["p384", "rsa1024", "not-the-certificates-key"],
)
def test_wrong_keys_are_refused(tsa: Issued, key: object) -> None:
    with pytest.raises(InvalidKey):
        TimeStampAuthority(
            certificate=tsa.certificate,
            private_key=key(),
            serials=iter(range(1, 10)).__next__,
        )


@pytest.mark.parametrize(
    ("eku", "critical", "match"),
    [
        (None, True, "no extended key usage"),
        ([TIME_STAMPING], False, "not critical"),
        ([ExtendedKeyUsageOID.SERVER_AUTH], True, "want only timeStamping"),
        ([TIME_STAMPING, ExtendedKeyUsageOID.CLIENT_AUTH], True, "want only timeStamping"),
    ],
    ids=["no-eku", "non-critical", "serverAuth", "two-purposes"],
)
def test_certificates_without_critical_time_stamping_are_refused(
    root: Issued, eku: list[x509.ObjectIdentifier] | None, critical: bool, match: str
) -> None:
    bad = make_tsa(root, eku=eku, eku_critical=critical)
    with pytest.raises(InvalidKey, match=match):
        authority(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "not-an-oid"},
        {"policy": "1"},
        {"policy": "1.50"},
        {"accuracy": dt.timedelta(0)},
    ],
    ids=["policy-text", "policy-one-arc", "policy-second-arc-too-big", "zero-accuracy"],
)
def test_bad_settings_are_refused(tsa: Issued, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        authority(tsa, **kwargs)


def test_repr_names_the_certificate_not_the_key(tsa: Issued) -> None:
    assert repr(authority(tsa)) == "TimeStampAuthority('CN=Test TSA')"


# --- the token, field by field (research §4) ----------------------------------------------------


def test_token_structure(tsa: Issued) -> None:
    token = authority(tsa, clock=lambda: CLOCK).stamp(DIGEST, nonce=2**70)
    content_info = cms.ContentInfo.load(token)
    assert content_info["content_type"].native == "signed_data"
    sd = signed_data(token)
    assert sd["version"].native == "v3"
    assert [a.dump() for a in sd["digest_algorithms"]] == [
        bytes.fromhex("300b0609608648016503040201")  # sha256, parameters absent (RFC 5754 §2)
    ]
    assert sd["encap_content_info"]["content_type"].native == "tst_info"
    assert [c.chosen.dump() for c in sd["certificates"]] == [
        tsa.certificate.public_bytes(Encoding.DER)
    ]

    tst = tst_info(token)
    assert tst["version"].native == "v1"
    assert tst["policy"].dotted == DEFAULT_POLICY
    assert tst["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert tst["message_imprint"]["hashed_message"].native == DIGEST
    assert tst["serial_number"].native == 1
    assert tst["gen_time"].contents == b"20260102030405Z"  # 1 s accuracy: no fraction
    assert tst["accuracy"].native == {"seconds": 1, "millis": None, "micros": None}
    assert tst["nonce"].native == 2**70
    assert tst["tsa"].name == "directory_name"
    subject = tsa.certificate.subject.public_bytes()
    assert tst["tsa"].chosen.dump() == b"\xa4" + bytes([len(subject)]) + subject  # [4] EXPLICIT
    # version, policy, imprint, serial, genTime, accuracy, nonce, [0] tsa: no BOOLEAN, since
    # ordering FALSE is the DEFAULT and DER leaves it out
    assert member_tags(tst.dump()) == [2, 6, 16, 2, 24, 16, 2, 0]

    (signer_info,) = sd["signer_infos"]
    assert signer_info["version"].native == "v1"
    sid = signer_info["sid"]
    assert sid.name == "issuer_and_serial_number"
    assert sid.chosen["serial_number"].native == tsa.certificate.serial_number
    assert sid.chosen["issuer"].dump() == tsa.certificate.issuer.public_bytes()
    assert signer_info["digest_algorithm"].dump() == bytes.fromhex("300b0609608648016503040201")
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"

    attrs = signer_info["signed_attrs"]
    encoded = [a.dump() for a in attrs]
    assert encoded == sorted(encoded), "SET OF sorted by DER (X.690 §11.6)"
    by_type = {a["type"].native: a["values"] for a in attrs}
    assert set(by_type) == {
        "content_type",
        "message_digest",
        "signing_time",
        "signing_certificate_v2",
    }
    e_content = sd["encap_content_info"]["content"].contents
    assert by_type["content_type"][0].native == "tst_info"
    assert by_type["message_digest"][0].native == hashlib.sha256(e_content).digest()
    assert by_type["signing_time"][0].native == CLOCK.replace(microsecond=0)
    (ess,) = by_type["signing_certificate_v2"][0]["certs"]
    assert ess.dump()[2] == 0x04, "ESSCertIDv2 hashAlgorithm DEFAULT sha256 is omitted"
    assert (
        ess["cert_hash"].native
        == hashlib.sha256(tsa.certificate.public_bytes(Encoding.DER)).digest()
    )
    assert ess["issuer_serial"]["serial_number"].native == tsa.certificate.serial_number

    signed = b"\x31" + attrs.dump()[1:]  # RFC 5652 §5.4: signed as a universal SET OF
    public_key = tsa.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signer_info["signature"].native, signed, ec.ECDSA(hashes.SHA256()))


def test_rsa_signature_is_pkcs1_v15_sha256(root: Issued) -> None:
    rsa_tsa = make_tsa(root, key_type="rsa", not_before=CLOCK - dt.timedelta(days=1))
    token = authority(rsa_tsa, clock=lambda: CLOCK).stamp(DIGEST)
    (signer_info,) = signed_data(token)["signer_infos"]
    assert signer_info["signature_algorithm"].dump() == bytes.fromhex(
        "300d06092a864886f70d01010b0500"  # sha256WithRSAEncryption, NULL (RFC 4055 §5)
    )
    public_key = rsa_tsa.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        signer_info["signature"].native,
        b"\x31" + signer_info["signed_attrs"].dump()[1:],
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


@pytest.mark.parametrize(
    ("accuracy", "gen_time", "fields"),
    [
        (dt.timedelta(seconds=1), b"20260102030405Z", {"seconds": 1}),
        (dt.timedelta(seconds=2), b"20260102030405Z", {"seconds": 2}),
        (dt.timedelta(milliseconds=500), b"20260102030405.1Z", {"millis": 500}),
        (dt.timedelta(milliseconds=10), b"20260102030405.12Z", {"millis": 10}),
        (dt.timedelta(milliseconds=1), b"20260102030405.123Z", {"millis": 1}),
        (dt.timedelta(microseconds=1500), b"20260102030405.123Z", {"millis": 1, "micros": 500}),
        (dt.timedelta(microseconds=1), b"20260102030405.123456Z", {"micros": 1}),
        (None, b"20260102030405Z", None),
    ],
)
def test_gen_time_carries_the_fraction_the_accuracy_makes_meaningful(
    tsa: Issued, accuracy: dt.timedelta | None, gen_time: bytes, fields: dict[str, int] | None
) -> None:
    token = authority(tsa, clock=lambda: CLOCK, accuracy=accuracy).stamp(DIGEST)
    tst = tst_info(token)
    assert tst["gen_time"].contents == gen_time
    if fields is None:
        assert tst["accuracy"].native is None
    else:
        assert {k: v for k, v in tst["accuracy"].native.items() if v} == fields


def test_trailing_zeros_are_dropped_from_the_fraction(tsa: Issued) -> None:
    clock = CLOCK.replace(microsecond=120000)
    accuracy = dt.timedelta(microseconds=1)
    token = authority(tsa, clock=lambda: clock, accuracy=accuracy).stamp(DIGEST)
    assert tst_info(token)["gen_time"].contents == b"20260102030405.12Z"  # RFC 3161 §2.4.2


def test_gen_time_is_utc_whatever_the_clock_zone(tsa: Issued) -> None:
    beijing = dt.timezone(dt.timedelta(hours=8))
    token = authority(tsa, clock=lambda: CLOCK.astimezone(beijing)).stamp(DIGEST)
    assert tst_info(token)["gen_time"].contents == b"20260102030405Z"


def test_chain_is_sent_sorted_and_only_on_request(root: Issued) -> None:
    middle = make_ca("Issuing CA", issuer=root)
    leaf = make_tsa(middle)
    tsa = authority(leaf, chain=[middle.certificate])
    with_certs = signed_data(tsa.stamp(DIGEST))["certificates"]
    encoded = [c.dump() for c in with_certs]
    assert encoded == sorted(encoded), "CertificateSet is a DER SET OF"
    assert len(encoded) == 2
    assert isinstance(signed_data(tsa.stamp(DIGEST, cert_req=False))["certificates"], core.Void)


def test_policy_is_configurable(tsa: Issued) -> None:
    token = authority(tsa, policy="1.2.156.112233.1").stamp(DIGEST)
    assert parse_token(token).policy == "1.2.156.112233.1"


def test_stamp_checks_the_digest(tsa: Issued) -> None:
    with pytest.raises(InvalidDigest, match="want 32"):
        authority(tsa).stamp(DIGEST[:20])
    with pytest.raises(InvalidDigest, match="unsupported hash algorithm"):
        authority(tsa).stamp(hashlib.sha1(DIGEST).digest(), hash_alg="sha1")


# --- respond() ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hash_alg", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("null_parameters", [False, True], ids=["absent", "NULL"])
def test_granted_response_echoes_the_request(
    tsa: Issued, hash_alg: str, null_parameters: bool
) -> None:
    digest = hashlib.new(hash_alg, b"x").digest()
    request = make_request(digest, hash_alg=hash_alg, nonce=99, null_parameters=null_parameters)
    response = authority(tsa).respond(request)
    assert response_status(response) == ("granted", set())
    token = token_from_response(response)
    sent = tsp.TimeStampReq.load(request)["message_imprint"].dump()
    assert tst_info(token)["message_imprint"].dump() == sent  # RFC 3161 §2.4.2
    assert parse_token(token).nonce == 99


def test_certificate_only_when_requested(tsa: Issued) -> None:
    tsa_ = authority(tsa)
    without = token_from_response(tsa_.respond(make_request(DIGEST, cert_req=False)))
    with_cert = token_from_response(tsa_.respond(make_request(DIGEST, cert_req=True)))
    assert parse_token(without).certificates == ()
    assert parse_token(with_cert).certificates == (tsa.certificate,)


def test_our_own_policy_may_be_requested(tsa: Issued) -> None:
    response = authority(tsa).respond(make_request(DIGEST, policy=DEFAULT_POLICY))
    assert response_status(response) == ("granted", set())


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (make_request(hashlib.md5(b"x").digest(), hash_alg="md5"), "bad_alg"),
        (make_request(hashlib.sha1(b"x").digest(), hash_alg="sha1"), "bad_alg"),
        (make_request(DIGEST, hash_alg="1.2.3.4"), "bad_alg"),
        (b"", "bad_data_format"),
        (b"garbage", "bad_data_format"),
        (make_request(DIGEST) + b"\x00", "bad_data_format"),
        (make_request(DIGEST)[:-1], "bad_data_format"),
        (make_request(DIGEST[:20]), "bad_data_format"),
        (make_request(DIGEST + b"\x00"), "bad_data_format"),
        (make_request(DIGEST, version=2), "bad_data_format"),
        (
            b"\x30\x82" + MAX_REQUEST_BYTES.to_bytes(2, "big") + bytes(MAX_REQUEST_BYTES),
            "bad_data_format",
        ),
        (make_request(DIGEST, policy="1.2.3.4"), "unaccepted_policy"),
        (make_request(DIGEST, extensions=True), "unaccepted_extensions"),
    ],
    ids=[
        "md5",
        "sha1",
        "unknown-oid",
        "empty",
        "garbage",
        "trailing-byte",
        "truncated",
        "short-imprint",
        "long-imprint",
        "version-2",
        "oversized",
        "other-policy",
        "extensions",
    ],
)
def test_rejections(tsa: Issued, request_der: bytes, failure: str) -> None:
    assert response_status(authority(tsa).respond(request_der)) == ("rejection", {failure})


def test_tsa_certificate_outside_its_validity_refuses_to_sign(tsa: Issued) -> None:
    late = authority(tsa, clock=lambda: tsa.certificate.not_valid_after_utc + dt.timedelta(1))
    early = authority(tsa, clock=lambda: tsa.certificate.not_valid_before_utc - dt.timedelta(1))
    for stale in (late, early):
        with pytest.raises(InvalidKey, match="renew it"):
            stale.stamp(DIGEST)
        assert response_status(stale.respond(make_request(DIGEST))) == (
            "rejection",
            {"system_failure"},
        )


def test_naive_clock_is_a_programming_error(tsa: Issued) -> None:
    with pytest.raises(InvalidInput, match="naive"):
        authority(tsa, clock=lambda: CLOCK.replace(tzinfo=None)).stamp(DIGEST)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_get_a_rejection(tsa: Issued, data: bytes) -> None:
    status, failures = response_status(authority(tsa).respond(data))
    assert status == "rejection"
    assert len(failures) == 1


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(1, 255))
def test_mutated_requests_get_an_answer(tsa: Issued, where: int, xor: int) -> None:
    request = make_request(DIGEST, nonce=12345)
    i = where % len(request)
    mutated = request[:i] + bytes([request[i] ^ xor]) + request[i + 1 :]
    status, failures = response_status(authority(tsa).respond(mutated))
    assert (status, failures) == ("granted", set()) or (status == "rejection" and failures)


# --- serial numbers -----------------------------------------------------------------------------


def test_serials_are_unique_across_threads(tmp_path: Path, tsa: Issued) -> None:
    with FileSerials(tmp_path / "serials", block=7) as serials:
        tsa_ = TimeStampAuthority(
            certificate=tsa.certificate,
            private_key=tsa.key,
            serials=serials,
        )
        seen: list[list[int]] = [[] for _ in range(8)]

        def work(mine: list[int]) -> None:
            for _ in range(40):
                mine.append(parse_token(tsa_.stamp(DIGEST)).serial)

        threads = [threading.Thread(target=work, args=(mine,)) for mine in seen]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    every = [s for mine in seen for s in mine]
    assert sorted(every) == list(range(1, 321))
    assert all(mine == sorted(mine) for mine in seen), "increasing within each thread"


def test_serials_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "serials"
    with FileSerials(path, block=10) as serials:
        first = [serials() for _ in range(3)]
        assert path.read_text() == "11\n", "the block is reserved before it is used"
    with FileSerials(path, block=10) as serials:
        second = [serials() for _ in range(12)]
        assert path.read_text() == "31\n"
    assert first == [1, 2, 3]
    assert second == list(range(11, 23))


def test_serials_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "serials"
    crash = (
        "import os, sys\n"
        "from ledger.authority import FileSerials\n"
        f"s = FileSerials({str(path)!r}, block=100)\n"
        "print(*(s() for _ in range(5)))\n"
        "sys.stdout.flush()\n"
        "os._exit(1)  # no close(), no clean-up: the lock dies with the process\n"
    )
    project = Path(__file__).resolve().parents[2]
    before = subprocess.run(
        [sys.executable, "-c", crash], cwd=project, capture_output=True, text=True, check=False
    )
    assert before.returncode == 1, before.stderr
    issued = [int(s) for s in before.stdout.split()]
    assert issued == [1, 2, 3, 4, 5]
    with FileSerials(path, block=100) as serials:
        after = serials()
    assert after > max(issued)


def test_second_user_of_a_serial_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "serials"
    first = FileSerials(path)
    assert first() == 1
    with pytest.raises(StorageError, match="in use by another FileSerials"):
        FileSerials(path)
    first.close()
    with FileSerials(path) as again:
        assert again() == 1001


def test_corrupt_serial_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "serials").write_text("12a\n")
    with pytest.raises(StorageError, match="refusing to guess"):
        FileSerials(tmp_path / "serials")
    with FileSerials(tmp_path / "other") as fine:
        assert fine() == 1  # the refused one released its lock file


def test_closed_serials_refuse(tmp_path: Path) -> None:
    serials = FileSerials(tmp_path / "serials")
    serials.close()
    serials.close()
    with pytest.raises(StorageError, match="closed"):
        serials()


def test_serial_block_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        FileSerials(tmp_path / "serials", block=0)


# --- interop ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_rfc3161_client_verifies_our_responses(key_type: str) -> None:
    ca = make_ca(key_type=key_type)
    middle = make_ca("Issuing CA", issuer=ca, key_type=key_type)
    leaf = make_tsa(middle, key_type=key_type)
    response = authority(leaf, chain=[middle.certificate]).respond(make_request(DIGEST, nonce=5))
    decoded = rfc3161_client.decode_timestamp_response(response)
    verifier = rfc3161_client.VerifierBuilder(roots=[ca.certificate], nonce=5).build()
    assert verifier.verify(decoded, DIGEST)


@pytest.mark.slow
@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_openssl_verifies_our_tokens(tmp_path: Path, key_type: str) -> None:
    data = b"example.com/log\n7\nroot\n"
    ca = make_ca(key_type=key_type)
    leaf = make_tsa(ca, key_type=key_type)
    tsa_ = authority(leaf)
    response = tsa_.respond(make_request(hashlib.sha256(data).digest(), nonce=1))
    by_digest = openssl_verify(tmp_path, response, ca.certificate, digest=DIGEST)
    assert "Verification: OK" in by_digest.stdout, by_digest.stderr
    by_data = openssl_verify(tmp_path, response, ca.certificate, data=data)
    assert "Verification: OK" in by_data.stdout, by_data.stderr
    tampered = openssl_verify(tmp_path, response, ca.certificate, data=data + b"!")
    assert "message imprint mismatch" in tampered.stderr
    bare = tsa_.respond(make_request(DIGEST, cert_req=False))
    unpinned = openssl_verify(tmp_path, bare, ca.certificate, digest=DIGEST)
    assert "Verification: OK" not in unpinned.stdout
    pinned = openssl_verify(
        tmp_path, bare, ca.certificate, digest=DIGEST, untrusted=leaf.certificate
    )
    assert "Verification: OK" in pinned.stdout, pinned.stderr


@pytest.mark.slow
@pytest.mark.parametrize("hash_alg", ["sha256", "sha384", "sha512"])
def test_openssl_requests_get_responses_openssl_accepts(tmp_path: Path, hash_alg: str) -> None:
    """``openssl ts -query`` → respond() → ``openssl ts -verify -queryfile`` (nonce, policy…)."""
    now_root = make_ca()
    leaf = make_tsa(now_root)
    (tmp_path / "data").write_bytes(b"evidence")
    (tmp_path / "root.pem").write_bytes(pem(now_root.certificate))
    openssl(
        "ts", "-query", "-data", "data", f"-{hash_alg}", "-cert", "-out", "req.tsq", cwd=tmp_path
    )
    response = authority(leaf).respond((tmp_path / "req.tsq").read_bytes())
    (tmp_path / "resp.tsr").write_bytes(response)
    result = openssl(
        "ts", "-verify", "-queryfile", "req.tsq", "-in", "resp.tsr", "-CAfile", "root.pem",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert "Verification: OK" in result.stdout, result.stderr
