"""RFC 3161 token verification: good tokens from us and from OpenSSL, one named vector per failure
reason, responses, and fuzzing (garbage and mutated tokens raise only our two errors)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidDigest, InvalidInput, TimestampInvalid, TimestampMalformed
from tests.tsa_fixtures import (
    NOW,
    TIME_STAMPING,
    Issued,
    OpenSSLTsa,
    authority,
    make_ca,
    make_request,
    make_tsa,
    new_key,
    resign,
)
from verifier.timestamp import parse_token, token_from_response, verify_token

DIGEST = hashlib.sha256(b"example.com/log\n42\nroot\n").digest()
NONCE = 0x1234_5678_9ABC_DEF0_1122


@pytest.fixture(scope="module")
def root() -> Issued:
    return make_ca()


@pytest.fixture(scope="module")
def tsa(root: Issued) -> Issued:
    return make_tsa(root)


@pytest.fixture(scope="module")
def token(tsa: Issued) -> bytes:
    return authority(tsa).stamp(DIGEST, nonce=NONCE)


def reason_of(token: bytes, *roots: x509.Certificate, **kwargs: Any) -> str:
    """The ``details["reason"]`` of the TimestampInvalid that verifying ``token`` raises."""
    with pytest.raises(TimestampInvalid) as caught:
        verify_token(token, roots=roots, **kwargs)
    return str(caught.value.details["reason"])


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# --- tokens that verify -------------------------------------------------------------------------


def test_verify_returns_what_the_token_says(root: Issued, tsa: Issued, token: bytes) -> None:
    info = verify_token(token, digest=DIGEST, roots=[root.certificate], nonce=NONCE)
    assert info == parse_token(token)
    assert (info.serial, info.hash_alg, info.imprint, info.nonce) == (1, "sha256", DIGEST, NONCE)
    assert info.accuracy == dt.timedelta(seconds=1)
    assert info.ordering is False
    assert info.tsa_subject == tsa.certificate.subject
    assert info.certificates == (tsa.certificate,)
    assert abs(info.gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


@pytest.mark.parametrize("hash_alg", ["sha256", "sha384", "sha512"])
def test_every_supported_imprint_algorithm_verifies(
    root: Issued, tsa: Issued, hash_alg: str
) -> None:
    digest = hashlib.new(hash_alg, b"evidence").digest()
    token = authority(tsa).stamp(digest, hash_alg=hash_alg)
    info = verify_token(token, digest=digest, hash_alg=hash_alg, roots=[root.certificate])
    assert info.hash_alg == hash_alg


def test_rsa_tsa_token_verifies() -> None:
    rsa_root = make_ca(key_type="rsa")
    rsa_tsa = make_tsa(rsa_root, key_type="rsa")
    token = authority(rsa_tsa).stamp(DIGEST)
    assert verify_token(token, digest=DIGEST, roots=[rsa_root.certificate]).serial == 1


def test_token_without_certificate_needs_the_tsa_certificate(root: Issued, tsa: Issued) -> None:
    token = authority(tsa).stamp(DIGEST, cert_req=False)
    assert parse_token(token).certificates == ()
    assert parse_token(token).tsa_subject is None
    with pytest.raises(TimestampInvalid, match="pass tsa_certificate=") as caught:
        verify_token(token, digest=DIGEST, roots=[root.certificate])
    assert caught.value.details["reason"] == "untrusted"
    info = verify_token(
        token, digest=DIGEST, roots=[root.certificate], tsa_certificate=tsa.certificate
    )
    assert info.tsa_subject == tsa.certificate.subject


def test_pinned_tsa_certificate_must_be_the_signer(root: Issued, token: bytes) -> None:
    other = make_tsa(root, name="Other TSA")
    with pytest.raises(TimestampInvalid, match="not by the pinned TSA certificate") as caught:
        verify_token(
            token, digest=DIGEST, roots=[root.certificate], tsa_certificate=other.certificate
        )
    assert caught.value.details["reason"] == "untrusted"


def test_intermediate_ca_embedded_or_given() -> None:
    top = make_ca("Top CA")
    middle = make_ca("Issuing CA", issuer=top)
    leaf = make_tsa(middle)
    embedded = authority(leaf, chain=[middle.certificate]).stamp(DIGEST)
    bare = authority(leaf).stamp(DIGEST)
    assert len(parse_token(embedded).certificates) == 2
    verify_token(embedded, digest=DIGEST, roots=[top.certificate])
    verify_token(bare, digest=DIGEST, roots=[top.certificate], intermediates=[middle.certificate])
    assert reason_of(bare, top.certificate, digest=DIGEST) == "untrusted"


@pytest.mark.parametrize(
    ("ca_eku", "ok"),
    [
        ([TIME_STAMPING], True),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], True),
        ([ExtendedKeyUsageOID.SERVER_AUTH], False),
    ],
    ids=["timeStamping", "anyExtendedKeyUsage", "serverAuth-only"],
)
def test_intermediate_extended_key_usage_must_allow_time_stamping(
    ca_eku: list[object], ok: bool
) -> None:
    top = make_ca("Top CA")
    middle = make_ca("Issuing CA", issuer=top, eku=ca_eku)
    token = authority(make_tsa(middle), chain=[middle.certificate]).stamp(DIGEST)
    if ok:
        verify_token(token, digest=DIGEST, roots=[top.certificate])
    else:
        assert reason_of(token, top.certificate, digest=DIGEST) == "untrusted"


def test_tsa_certificate_without_authority_key_identifier_verifies(
    root: Issued, token: bytes
) -> None:
    """RFC 5280 wants the AKI, but OpenSSL does not insist and neither do we."""
    plain = make_tsa(root, authority_key_id=False)
    forged = resign(token, key=plain.key, certificate=plain.certificate)
    verify_token(forged, digest=DIGEST, roots=[root.certificate])


def test_unknown_critical_extension_is_untrusted(root: Issued, token: bytes) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    odd = make_tsa(root, extra=[unknown])
    forged = resign(token, key=odd.key, certificate=odd.certificate)
    assert reason_of(forged, root.certificate, digest=DIGEST) == "untrusted"


def test_token_outlives_its_tsa_certificate(root: Issued) -> None:
    """Certificates are judged at genTime: evidence stays verifiable after the TSA cert expires."""
    old = make_tsa(root, not_before=NOW - dt.timedelta(days=10), not_after=NOW - dt.timedelta(1))
    token = authority(old, clock=lambda: NOW - dt.timedelta(days=5)).stamp(DIGEST)
    info = verify_token(token, digest=DIGEST, roots=[root.certificate])
    assert info.gen_time == NOW - dt.timedelta(days=5)


def test_resigned_token_verifies(root: Issued, tsa: Issued, token: bytes) -> None:
    """The forging helper makes valid tokens, so the vectors below fail for their stated reason."""
    for ess in ("v2", "v1"):
        forged = resign(token, key=tsa.key, certificate=tsa.certificate, ess=ess)
        verify_token(forged, digest=DIGEST, roots=[root.certificate], nonce=NONCE)


# --- one vector per failure reason --------------------------------------------------------------


def test_flipped_signature_byte(root: Issued, token: bytes) -> None:
    signer_info = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    signature = signer_info["signature"].native
    tampered = flip(token, token.rindex(signature) + len(signature) - 1)
    assert reason_of(tampered, root.certificate, digest=DIGEST) == "signature"


def test_flipped_tst_info_byte(root: Issued, token: bytes) -> None:
    tampered = flip(token, token.index(DIGEST) + len(DIGEST) - 1)
    assert reason_of(tampered, root.certificate, digest=DIGEST) == "signature"


def test_signed_by_another_key_than_the_certificates(
    root: Issued, tsa: Issued, token: bytes
) -> None:
    forged = resign(token, key=new_key(), certificate=tsa.certificate)
    assert reason_of(forged, root.certificate, digest=DIGEST) == "signature"


def test_wrong_imprint(root: Issued, token: bytes) -> None:
    other = hashlib.sha256(b"another checkpoint").digest()
    with pytest.raises(TimestampInvalid, match=f"want sha256:{other.hex()}") as caught:
        verify_token(token, digest=other, roots=[root.certificate])
    assert caught.value.details["reason"] == "imprint"
    assert caught.value.details["got"] == f"sha256:{DIGEST.hex()}"


def test_wrong_imprint_algorithm(root: Issued, tsa: Issued) -> None:
    digest384 = hashlib.sha384(b"x").digest()
    token = authority(tsa).stamp(digest384, hash_alg="sha384")
    assert reason_of(token, root.certificate, digest=digest384[:32]) == "imprint"


def test_wrong_nonce(root: Issued, token: bytes, tsa: Issued) -> None:
    assert reason_of(token, root.certificate, digest=DIGEST, nonce=NONCE + 1) == "nonce"
    without = authority(tsa).stamp(DIGEST)
    assert reason_of(without, root.certificate, digest=DIGEST, nonce=NONCE) == "nonce"


def test_untrusted_root(token: bytes) -> None:
    assert reason_of(token, make_ca("Test Root CA").certificate, digest=DIGEST) == "untrusted"


@pytest.mark.parametrize(
    ("eku", "critical"),
    [
        (None, True),
        ([TIME_STAMPING], False),
        ([ExtendedKeyUsageOID.SERVER_AUTH], True),
        ([TIME_STAMPING, ExtendedKeyUsageOID.SERVER_AUTH], True),
    ],
    ids=["no-eku", "non-critical-eku", "serverAuth-eku", "timeStamping-and-serverAuth"],
)
def test_wrong_purpose(
    root: Issued, tsa: Issued, token: bytes, eku: list[object] | None, critical: bool
) -> None:
    bad = make_tsa(root, eku=eku, eku_critical=critical)
    forged = resign(token, key=bad.key, certificate=bad.certificate)
    assert reason_of(forged, root.certificate, digest=DIGEST) == "eku"


@pytest.mark.parametrize(
    "usage",
    [("digital_signature", "key_cert_sign"), ("key_encipherment",)],
    ids=["also-keyCertSign", "keyEncipherment-only"],
)
def test_wrong_key_usage(root: Issued, token: bytes, usage: tuple[str, ...]) -> None:
    """OpenSSL's timestamp-signing purpose: digitalSignature and/or nonRepudiation, nothing else."""
    bad = make_tsa(root, usage=usage)
    forged = resign(token, key=bad.key, certificate=bad.certificate)
    assert reason_of(forged, root.certificate, digest=DIGEST) == "eku"


@pytest.mark.parametrize(
    "gen_time", [NOW + dt.timedelta(days=181), NOW - dt.timedelta(days=2)], ids=["after", "before"]
)
def test_gen_time_outside_tsa_certificate_validity(
    root: Issued, tsa: Issued, token: bytes, gen_time: dt.datetime
) -> None:
    """A TSA whose clock is outside its certificate's validity (make_tsa: NOW-1d … NOW+180d)."""
    forged = resign(
        token, key=tsa.key, certificate=tsa.certificate, tst_info={"gen_time": gen_time}
    )
    assert parse_token(forged).gen_time == gen_time
    assert reason_of(forged, root.certificate, digest=DIGEST) == "expired"


@pytest.mark.parametrize("ess", ["none", "wrong-hash", "wrong-serial"])
def test_ess_attribute_missing_or_wrong(root: Issued, tsa: Issued, token: bytes, ess: str) -> None:
    forged = resign(token, key=tsa.key, certificate=tsa.certificate, ess=ess)
    assert reason_of(forged, root.certificate, digest=DIGEST) == "ess"


# --- responses ----------------------------------------------------------------------------------


def test_token_from_granted_response(root: Issued, tsa: Issued) -> None:
    response = authority(tsa).respond(make_request(DIGEST, nonce=7))
    token = token_from_response(response)
    assert verify_token(token, digest=DIGEST, roots=[root.certificate], nonce=7).nonce == 7


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (make_request(hashlib.md5(b"x").digest(), hash_alg="md5"), "badAlg"),
        (make_request(hashlib.sha1(b"x").digest(), hash_alg="sha1"), "badAlg"),
        (b"not a request", "badDataFormat"),
        (make_request(DIGEST, policy="1.2.3.4"), "unacceptedPolicy"),
    ],
    ids=["md5", "sha1", "garbage", "other-policy"],
)
def test_rejection_response(tsa: Issued, request_der: bytes, failure: str) -> None:
    with pytest.raises(TimestampInvalid, match=failure) as caught:
        token_from_response(authority(tsa).respond(request_der))
    assert caught.value.details["reason"] == "status"
    assert caught.value.details["failure_info"] == [failure]
    assert caught.value.details["status"] == "rejection"


def test_granted_response_without_token_is_malformed() -> None:
    class Resp(tsp.TimeStampResp):  # type: ignore[misc]
        _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012

    with pytest.raises(TimestampMalformed, match="holds no token"):
        token_from_response(Resp({"status": {"status": "granted"}}).dump())


@pytest.mark.parametrize("garbage", [b"", b"\x30\x00", b"\x30\x03\x02\x01\x00", b"\xff" * 40])
def test_garbage_response_is_malformed(garbage: bytes) -> None:
    with pytest.raises(TimestampMalformed):
        token_from_response(garbage)


# --- malformed tokens ---------------------------------------------------------------------------


def test_response_given_as_token_gets_a_hint(tsa: Issued) -> None:
    response = authority(tsa).respond(make_request(DIGEST))
    with pytest.raises(TimestampMalformed, match=r"call token_from_response\(\)"):
        parse_token(response)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + b"\x00",
        lambda t: t[: len(t) // 2],
        lambda t: b"",
        lambda t: cms.ContentInfo({"content_type": "data", "content": b"x"}).dump(),
    ],
    ids=["truncated-by-1", "trailing-byte", "half", "empty", "data-content-info"],
)
def test_malformed_tokens(token: bytes, mangle: object) -> None:
    with pytest.raises(TimestampMalformed):
        parse_token(mangle(token))


def test_verify_checks_its_arguments(root: Issued, token: bytes) -> None:
    with pytest.raises(InvalidDigest):
        verify_token(token, digest=DIGEST[:20], roots=[root.certificate])
    with pytest.raises(InvalidDigest):
        verify_token(token, digest=DIGEST, hash_alg="md5", roots=[root.certificate])
    with pytest.raises(InvalidInput, match="no TSA root"):
        verify_token(token, digest=DIGEST, roots=[])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_malformed(data: bytes) -> None:
    with pytest.raises(TimestampMalformed):
        parse_token(data)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.integers(1, 8)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(0, 255)),
)


def mutate(token: bytes, mutation: tuple[str, int, int]) -> bytes:
    kind, where, value = mutation
    i = where % len(token)
    if kind == "flip":
        return token[:i] + bytes([token[i] ^ value]) + token[i + 1 :]
    if kind == "delete":
        return token[:i] + token[i + value :]
    return token[:i] + bytes([value]) + token[i:]


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(mutations, min_size=1, max_size=3))
@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
def test_mutated_tokens_raise_only_our_errors(
    root: Issued, token: bytes, mutation_list: list[tuple[str, int, int]]
) -> None:
    mutated = token
    for mutation in mutation_list:
        mutated = mutate(mutated, mutation)
    with contextlib.suppress(TimestampMalformed):
        parse_token(mutated)
    with contextlib.suppress(TimestampMalformed, TimestampInvalid):
        verify_token(mutated, digest=DIGEST, roots=[root.certificate], nonce=NONCE)


def test_verifier_loads_no_signer_storage_or_web_code() -> None:
    code = (
        "import sys, verifier.timestamp; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ledger', 'api', 'tools', 'rocksdict', 'fastapi', 'psycopg', 'rfc3161_client')))"
    )
    root_dir = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root_dir, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['ledger', 'ledger.errors']"


# --- OpenSSL's TSA ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key_type", "ess_cert_id_alg", "include_chain"),
    [
        ("ec", "sha256", False),
        ("ec", "sha1", True),
        ("rsa", "sha256", True),
        ("rsa", "sha1", False),
    ],
    ids=["ec-essv2", "ec-essv1-with-chain", "rsa-essv2-with-chain", "rsa-essv1"],
)
def test_openssl_tsa_tokens_verify(
    tmp_path: Path, key_type: str, ess_cert_id_alg: str, include_chain: bool
) -> None:
    theirs = OpenSSLTsa(
        tmp_path,
        key_type=key_type,
        ess_cert_id_alg=ess_cert_id_alg,
        include_chain=include_chain,
    )
    for hash_alg in ("sha256", "sha384", "sha512"):
        digest = hashlib.new(hash_alg, b"checkpoint").digest()
        token = token_from_response(
            theirs.reply(make_request(digest, hash_alg=hash_alg, nonce=NONCE))
        )
        info = verify_token(
            token, digest=digest, hash_alg=hash_alg, roots=[theirs.root], nonce=NONCE
        )
        assert info.tsa_subject == theirs.certificate.subject
        assert info.policy == "1.3.6.1.4.1.99999.1.1"
        assert len(info.certificates) == (2 if include_chain else 1)
    other = hashlib.sha512(b"another").digest()
    assert reason_of(token, theirs.root, digest=other, hash_alg="sha512") == "imprint"
    assert reason_of(token, make_ca().certificate, digest=digest, hash_alg="sha512") == "untrusted"
