"""Depositor signatures: the contract in verifier/signature.py, checked against OpenSSL.

OpenSSL is the independent reference: it signs exactly as the module docstring says and
:func:`verify_statement` must accept; everything else — other messages, other salt lengths, the
empty SM2 ID, damaged signatures, the wrong key or algorithm — must be refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import doctest
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

import verifier.signature as signature_module
from ledger.entry import SIGNATURE_ALGORITHMS, Digest, Statement
from ledger.errors import InvalidKey, InvalidSignatureField, SignatureInvalid
from tools.client import SigningKey, generate_key, load_private_key, sign_statement
from verifier.signature import (
    _SM2_N,
    _SM2_SPKI_PREFIX,
    KEY_FAMILIES,
    PublicKey,
    key_allows,
    load_public_key,
    verify_statement,
)

STATEMENT = Statement.build(
    depositor="lender-1",
    kind="loan_contract",
    digest=Digest("sha256", hashlib.sha256(b"loan contract 1").digest()),
    size=12345,
    media_type="application/pdf",
    captured_at="2026-11-24T08:00:00Z",
    meta_commitment=hashlib.sha256(b"salt and meta").hexdigest(),
)
H = STATEMENT.signed_hash
SM2_DISTID = "distid:1234567812345678"
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DER, PEM = serialization.Encoding.DER, serialization.Encoding.PEM


def spki(key: object, encoding: serialization.Encoding = DER) -> bytes:
    return key.public_bytes(encoding, SPKI)  # type: ignore[attr-defined, no-any-return]


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[index] ^= 1 << bit
    return bytes(b)


class OpenSSL:
    """The openssl command, run on files in a temporary directory."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.exe, self.dir = exe, workdir

    @classmethod
    def find(cls, workdir: Path) -> OpenSSL:
        exe = shutil.which("openssl")
        if exe is None:
            pytest.fail(
                "openssl not found on PATH: the signature interop tests need OpenSSL >= 3.0 "
                "(apt-get install openssl); CI must run them, so they fail rather than skip"
            )
        return cls(exe, workdir)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.exe, *args], cwd=self.dir, capture_output=True, check=check, timeout=60
        )

    def write(self, name: str, data: bytes) -> str:
        (self.dir / name).write_bytes(data)
        return name

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def genpkey(self, alg: str, name: str) -> tuple[bytes, bytes]:
        """An OpenSSL-generated key pair for ``alg``: (private PEM, public PEM)."""
        args = {
            "ed25519": ["-algorithm", "ed25519"],
            "ecdsa-p256-sha256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "rsa-pss-sha256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "rsa-pkcs1v15-sha256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "sm2-sm3": ["-algorithm", "SM2"],
        }[alg]
        self("genpkey", *args, "-out", f"{name}.pem")
        self("pkey", "-in", f"{name}.pem", "-pubout", "-out", f"{name}.pub.pem")
        return self.read(f"{name}.pem"), self.read(f"{name}.pub.pem")

    def sign(self, alg: str, key: str, *, statement: bytes, extra: tuple[str, ...] = ()) -> bytes:
        """OpenSSL's signature over ``statement`` exactly as the module docstring specifies."""
        self.write("statement.json", statement)
        self.write("h.bin", hashlib.sha256(statement).digest())
        if alg in ("ed25519", "sm2-sm3"):
            sm2 = ("-digest", "sm3", "-pkeyopt", SM2_DISTID) if alg == "sm2-sm3" else ()
            out = self("pkeyutl", "-sign", "-rawin", *sm2, *extra, "-inkey", key, "-in", "h.bin")
            return out.stdout
        pss = ("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32")
        opts = pss if alg == "rsa-pss-sha256" else ()
        return self("dgst", "-sha256", *opts, *extra, "-sign", key, "statement.json").stdout

    def verify(self, alg: str, pub: str, sig: bytes, *, statement: bytes) -> bool:
        """Whether OpenSSL accepts ``sig`` over ``statement`` as the module docstring specifies."""
        self.write("statement.json", statement)
        self.write("h.bin", hashlib.sha256(statement).digest())
        self.write("sig.bin", sig)
        if alg in ("ed25519", "sm2-sm3"):
            sm2 = ("-digest", "sm3", "-pkeyopt", SM2_DISTID) if alg == "sm2-sm3" else ()
            args = ("pkeyutl", "-verify", "-rawin", *sm2, "-pubin", "-inkey", pub, "-in", "h.bin")
            result = self(*args, "-sigfile", "sig.bin", check=False)
        else:
            pss = ("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32")
            opts = pss if alg == "rsa-pss-sha256" else ()
            args = ("dgst", "-sha256", *opts, "-verify", pub, "-signature", "sig.bin")
            result = self(*args, "statement.json", check=False)
        ok = (b"Verified OK", b"Signature Verified Successfully")
        return result.returncode == 0 and any(word in result.stdout for word in ok)


@pytest.fixture(scope="module")
def openssl(tmp_path_factory: pytest.TempPathFactory) -> OpenSSL:
    return OpenSSL.find(tmp_path_factory.mktemp("openssl"))


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[SigningKey, PublicKey]]:
    """One key pair per algorithm, made by tools.client (the two RSA algorithms share one)."""
    out: dict[str, tuple[SigningKey, PublicKey]] = {}
    for alg in SIGNATURE_ALGORITHMS:
        if alg == "rsa-pkcs1v15-sha256":
            out[alg] = out["rsa-pss-sha256"]
            continue
        private_pem, public_pem = generate_key(alg)
        out[alg] = (load_private_key(private_pem), load_public_key(public_pem))
    return out


def sig_for(keys: dict[str, tuple[SigningKey, PublicKey]], alg: str) -> bytes:
    return sign_statement(STATEMENT, keys[alg][0], alg=alg, key_id="k").value


# --- the contract, against OpenSSL ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_openssl_signature_verifies(openssl: OpenSSL, alg: str) -> None:
    _, public_pem = openssl.genpkey(alg, alg)
    sig = openssl.sign(alg, f"{alg}.pem", statement=STATEMENT.raw)
    verify_statement(H, alg, sig, load_public_key(public_pem))


@pytest.mark.slow
@pytest.mark.parametrize("saltlen", ["0", "20", "31", "33", "64", "max"])
def test_openssl_pss_with_another_salt_length_refused(openssl: OpenSSL, saltlen: str) -> None:
    _, public_pem = openssl.genpkey("rsa-pss-sha256", "pss")
    extra = ("-sigopt", "rsa_padding_mode:pss", "-sigopt", f"rsa_pss_saltlen:{saltlen}")
    sig = openssl("dgst", "-sha256", *extra, "-sign", "pss.pem", openssl.write("s", STATEMENT.raw))
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "rsa-pss-sha256", sig.stdout, load_public_key(public_pem))


@pytest.mark.slow
def test_openssl_pss_salt_length_digest_is_32(openssl: OpenSSL) -> None:
    _, public_pem = openssl.genpkey("rsa-pss-sha256", "pss")
    extra = ("-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest")
    sig = openssl("dgst", "-sha256", *extra, "-sign", "pss.pem", openssl.write("s", STATEMENT.raw))
    verify_statement(H, "rsa-pss-sha256", sig.stdout, load_public_key(public_pem))


@pytest.mark.slow
def test_openssl_sm2_with_empty_id_refused(openssl: OpenSSL) -> None:
    """OpenSSL's SM2 default ID is empty; a lender who forgets ``distid`` is told so, not let in."""
    _, public_pem = openssl.genpkey("sm2-sm3", "sm2")
    openssl.write("h.bin", H)
    out = openssl(
        "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", "sm2.pem", "-in", "h.bin"
    )
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "sm2-sm3", out.stdout, load_public_key(public_pem))


@pytest.mark.slow
def test_openssl_sm2_certificate_accepted_with_same_key_id(openssl: OpenSSL) -> None:
    _, public_pem = openssl.genpkey("sm2-sm3", "sm2c")
    openssl(
        "req", "-new", "-x509", "-key", "sm2c.pem", "-sm3", "-sigopt", SM2_DISTID,
        "-subj", "/CN=lender-1", "-days", "30", "-out", "sm2c.crt",
    )  # fmt: skip
    cert = load_public_key(openssl.read("sm2c.crt"))
    bare = load_public_key(public_pem)
    assert (cert.family, cert.key_id, cert.spki) == ("sm2", bare.key_id, bare.spki)
    assert cert.not_before is not None and cert.not_after is not None
    assert cert.not_after - cert.not_before == dt.timedelta(days=30)


# --- signing the wrong message ----------------------------------------------------------------


def test_ed25519_over_statement_bytes_instead_of_hash_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(SignatureInvalid):
        verify_statement(
            H, "ed25519", key.sign(STATEMENT.raw), load_public_key(spki(key.public_key()))
        )


def test_ecdsa_over_hash_as_message_refused() -> None:
    """Hashing ``h`` again (sign(h, ECDSA(SHA256()))) is not the contract."""
    key = ec.generate_private_key(ec.SECP256R1())
    sig = key.sign(H, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "ecdsa-p256-sha256", sig, load_public_key(spki(key.public_key())))
    sig = key.sign(STATEMENT.raw, ec.ECDSA(hashes.SHA256()))
    verify_statement(H, "ecdsa-p256-sha256", sig, load_public_key(spki(key.public_key())))


# --- round trip and adversarial signatures ----------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_round_trip(keys: dict[str, tuple[SigningKey, PublicKey]], alg: str) -> None:
    verify_statement(H, alg, sig_for(keys, alg), keys[alg][1])


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
@pytest.mark.parametrize("where", ["first-byte", "middle-byte", "last-byte"])
def test_flipped_bit_in_signature_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str, where: str
) -> None:
    sig = sig_for(keys, alg)
    index = {"first-byte": 0, "middle-byte": len(sig) // 2, "last-byte": len(sig) - 1}[where]
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_statement(H, alg, flip(sig, index, 3), keys[alg][1])


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
@pytest.mark.parametrize("index", [0, 17, 31])
def test_flipped_bit_in_hash_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str, index: int
) -> None:
    with pytest.raises(SignatureInvalid):
        verify_statement(flip(H, index), alg, sig_for(keys, alg), keys[alg][1])


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_another_key_of_the_same_family_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str
) -> None:
    other = load_public_key(generate_key(alg)[1])
    with pytest.raises(SignatureInvalid, match=other.key_id):
        verify_statement(H, alg, sig_for(keys, alg), other)


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
@pytest.mark.parametrize("change", ["truncated", "trailing-zero-byte", "empty"])
def test_resized_signature_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str, change: str
) -> None:
    sig = sig_for(keys, alg)
    sig = {"truncated": sig[:-1], "trailing-zero-byte": sig + b"\x00", "empty": b""}[change]
    with pytest.raises(SignatureInvalid):
        verify_statement(H, alg, sig, keys[alg][1])


@pytest.mark.parametrize(
    ("alg", "family"),
    [(a, f) for a in SIGNATURE_ALGORITHMS for f in KEY_FAMILIES if a not in KEY_FAMILIES[f]],
)
def test_algorithm_the_key_cannot_sign_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str, family: str
) -> None:
    key = next(pub for _, pub in keys.values() if pub.family == family)
    with pytest.raises(SignatureInvalid, match=f"a {alg} signature cannot come from") as info:
        verify_statement(H, alg, sig_for(keys, alg), key)
    assert info.value.details == {"got": alg, "want": list(key.algorithms), "key_id": key.key_id}


def test_pss_and_pkcs1v15_are_not_interchangeable(
    keys: dict[str, tuple[SigningKey, PublicKey]],
) -> None:
    key = keys["rsa-pss-sha256"][1]
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "rsa-pkcs1v15-sha256", sig_for(keys, "rsa-pss-sha256"), key)
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "rsa-pss-sha256", sig_for(keys, "rsa-pkcs1v15-sha256"), key)


def test_unknown_algorithm_is_a_field_error(keys: dict[str, tuple[SigningKey, PublicKey]]) -> None:
    with pytest.raises(InvalidSignatureField, match="unknown signature algorithm 'ed448'"):
        verify_statement(H, "ed448", b"x" * 114, keys["ed25519"][1])


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_hash_of_wrong_size_is_a_caller_bug(
    keys: dict[str, tuple[SigningKey, PublicKey]], size: int
) -> None:
    with pytest.raises(ValueError, match=f"statement hash is {size} bytes, want 32"):
        verify_statement(bytes(size), "ed25519", sig_for(keys, "ed25519"), keys["ed25519"][1])


def test_ecdsa_ber_signature_refused(keys: dict[str, tuple[SigningKey, PublicKey]]) -> None:
    """One spelling: the same (r, s) with a long-form length is not DER."""
    sig = sig_for(keys, "ecdsa-p256-sha256")
    assert sig[0] == 0x30 and sig[1] < 0x80
    ber = b"\x30\x81" + sig[1:]
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "ecdsa-p256-sha256", ber, keys["ecdsa-p256-sha256"][1])


def _der_int(value: int, pad: int = 0) -> bytes:
    body = b"\x00" * pad + value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes((0x02, len(body))) + body


def _sm2_parts(sig: bytes) -> tuple[int, int]:
    rlen = sig[3]
    r = int.from_bytes(sig[4 : 4 + rlen], "big")
    s = int.from_bytes(sig[6 + rlen :], "big")
    return r, s


@pytest.mark.parametrize(
    "vector",
    ["long-form-length", "r-zero-padded", "r-zero", "s-plus-n", "negative-s", "three-integers"],
)
def test_sm2_non_der_or_out_of_range_signature_refused(
    keys: dict[str, tuple[SigningKey, PublicKey]], vector: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Refused by our DER check, before GmSSL sees it (so GmSSL prints no trace)."""
    sig = sig_for(keys, "sm2-sm3")
    r, s = _sm2_parts(sig)
    assert sig == b"\x30" + bytes((len(sig) - 2,)) + _der_int(r) + _der_int(s)

    def seq(body: bytes) -> bytes:
        return b"\x30" + bytes((len(body),)) + body

    bad = {
        "long-form-length": b"\x30\x81" + sig[1:],
        "r-zero-padded": seq(_der_int(r, pad=1) + _der_int(s)),
        "r-zero": seq(_der_int(0) + _der_int(s)),
        "s-plus-n": seq(_der_int(r) + _der_int(s + _SM2_N)),
        "negative-s": seq(_der_int(r) + b"\x02\x01\xff"),
        "three-integers": seq(_der_int(r) + _der_int(s) + _der_int(1)),
    }[vector]
    capfd.readouterr()
    with pytest.raises(SignatureInvalid):
        verify_statement(H, "sm2-sm3", bad, keys["sm2-sm3"][1])
    assert capfd.readouterr().err == ""


def test_sm2_failed_verify_leaves_gmssl_trace_on_stderr(
    keys: dict[str, tuple[SigningKey, PublicKey]], capfd: pytest.CaptureFixture[str]
) -> None:
    """Documents the gmssl-pyx quirk named in the module docstring: noise on fd 2, no error."""
    sig = sig_for(keys, "sm2-sm3")
    capfd.readouterr()
    with pytest.raises(SignatureInvalid):
        verify_statement(flip(H, 0), "sm2-sm3", sig, keys["sm2-sm3"][1])
    out, err = capfd.readouterr()
    assert out == ""
    assert "sm2_verify" in err


def test_sm2_without_gmssl_is_an_invalid_key(
    keys: dict[str, tuple[SigningKey, PublicKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = sig_for(keys, "sm2-sm3")
    public_pem = keys["sm2-sm3"][1].pem
    monkeypatch.setitem(sys.modules, "gmssl_pyx", None)
    key = load_public_key(public_pem)  # reading an SM2 key needs no provider
    with pytest.raises(InvalidKey, match="optional dependency gmssl-pyx"):
        verify_statement(H, "sm2-sm3", sig, key)


# --- keys -------------------------------------------------------------------------------------


CertKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _cert(private: CertKey, *, days: int = 365) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lender-1")])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    algorithm = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private, algorithm)


@pytest.mark.parametrize("kind", ["ed25519", "p256", "rsa"])
@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_certificate_accepted_with_validity_window(kind: str, encoding: str) -> None:
    makers: dict[str, Callable[[], CertKey]] = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "rsa": lambda: rsa.generate_private_key(65537, 2048),
    }
    private = makers[kind]()
    public = private.public_key()
    cert = _cert(private)
    data = cert.public_bytes(PEM if encoding == "pem" else DER)
    key = load_public_key(data)
    assert key.spki == spki(public)
    assert key.key_id == load_public_key(spki(public)).key_id
    assert key.not_before == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert key.not_after == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert key.valid_at(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    assert not key.valid_at(dt.datetime(2025, 12, 31, tzinfo=dt.UTC))
    assert not key.valid_at(dt.datetime(2027, 1, 2, tzinfo=dt.UTC))
    assert "not_after=2027-01-01" in repr(key)


def test_bare_key_has_no_window_and_is_valid_any_time() -> None:
    key = load_public_key(spki(ed25519.Ed25519PrivateKey.generate().public_key()))
    assert key.not_before is None and key.not_after is None
    assert key.valid_at(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))


def test_key_id_is_sha256_of_spki_and_independent_of_spelling() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = spki(public)
    want = "sha256:" + hashlib.sha256(der).digest()[:16].hex()
    compressed = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    compressed_spki = b"\x30\x39" + der[2:23] + b"\x03\x22\x00" + compressed
    for data in (der, spki(public, PEM), compressed_spki, b"junk before\n" + spki(public, PEM)):
        key = load_public_key(data)
        assert key.key_id == want
        assert key.spki == der
    assert len(want) == 39
    assert load_public_key(load_public_key(der).pem) == load_public_key(der)


def test_key_families_cover_every_signature_algorithm() -> None:
    algs = [a for family in KEY_FAMILIES.values() for a in family]
    assert sorted(algs) == sorted(SIGNATURE_ALGORITHMS)
    assert len(algs) == len(set(algs))


def test_key_allows(keys: dict[str, tuple[SigningKey, PublicKey]]) -> None:
    rsa_key = keys["rsa-pss-sha256"][1]
    assert key_allows("rsa-pss-sha256", rsa_key)
    assert key_allows("rsa-pkcs1v15-sha256", rsa_key)
    assert not key_allows("ed25519", rsa_key)
    assert not key_allows("no-such-alg", rsa_key)


def _rsa_public(bits: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key()


REFUSED_KEYS: dict[str, Callable[[], bytes]] = {
    "p384": lambda: spki(ec.generate_private_key(ec.SECP384R1()).public_key()),
    "secp256k1": lambda: spki(ec.generate_private_key(ec.SECP256K1()).public_key()),
    "brainpool-p256": lambda: spki(ec.generate_private_key(ec.BrainpoolP256R1()).public_key()),
    "rsa-1024": lambda: spki(rsa.generate_private_key(65537, 1024).public_key()),
    "rsa-2047": lambda: spki(_rsa_public(2047)),
    "rsa-8200": lambda: spki(_rsa_public(8200)),
    "ed448": lambda: spki(ed448.Ed448PrivateKey.generate().public_key()),
    "x25519": lambda: spki(x25519.X25519PrivateKey.generate().public_key()),
    "dsa-2048": lambda: spki(
        dsa.DSAPublicNumbers(
            y=3, parameter_numbers=dsa.DSAParameterNumbers(p=(1 << 2047) | 1, q=(1 << 255) | 1, g=2)
        ).public_key()
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED_KEYS))
def test_unsupported_key_refused(name: str) -> None:
    with pytest.raises(InvalidKey) as info:
        load_public_key(REFUSED_KEYS[name]())
    if name.startswith("rsa"):
        assert info.value.details["want"] == [2048, 8192]


def test_rsa_bounds_accepted() -> None:
    for bits in (2048, 8192):
        assert load_public_key(spki(_rsa_public(bits))).family == "rsa"


def _ed25519_spki(y: int, sign: int = 0) -> bytes:
    return bytes.fromhex("302a300506032b6570032100") + (y | sign << 255).to_bytes(32, "little")


P25519 = 2**255 - 19
Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


@pytest.mark.parametrize(
    "vector",
    ["identity", "order-2", "order-4", "order-4-neg", "order-8", "order-8-neg", "y-equals-p"],
)
def test_ed25519_small_order_or_non_canonical_key_refused(vector: str) -> None:
    """A small-order key verifies one signature for many messages: its holder could deny."""
    y, sign = {
        "identity": (1, 0),
        "order-2": (P25519 - 1, 0),
        "order-4": (0, 0),
        "order-4-neg": (0, 1),
        "order-8": (Y8, 0),
        "order-8-neg": (P25519 - Y8, 1),
        "y-equals-p": (P25519, 0),
    }[vector]
    with pytest.raises(InvalidKey):
        load_public_key(_ed25519_spki(y, sign))


def test_doctests_pass() -> None:
    """The key_allows example loads the RFC 8032 §7.1 TEST 1 public key."""
    results = doctest.testmod(signature_module)
    assert results.failed == 0 and results.attempted >= 1


def test_sm2_compressed_point_refused_with_hint(
    keys: dict[str, tuple[SigningKey, PublicKey]],
) -> None:
    point = keys["sm2-sm3"][1].spki[len(_SM2_SPKI_PREFIX) :]
    prefix = bytes((2 + point[-1] % 2,))
    der = b"\x30\x39" + _SM2_SPKI_PREFIX[2:23] + b"\x03\x22\x00" + prefix + point[:32]
    with pytest.raises(InvalidKey, match="uncompressed"):
        load_public_key(der)


def test_sm2_point_off_curve_refused(keys: dict[str, tuple[SigningKey, PublicKey]]) -> None:
    der = keys["sm2-sm3"][1].spki
    with pytest.raises(InvalidKey, match="not a point on the SM2 curve"):
        load_public_key(flip(der, len(der) - 1))


def _pem_block(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def test_private_key_refused_with_hint() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = private.private_bytes(PEM, fmt, serialization.NoEncryption())
        with pytest.raises(InvalidKey, match=r"private key.*-pubout"):
            load_public_key(pem)
    der = private.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidKey, match="-pubout"):
        load_public_key(der)


def test_pkcs1_rsa_public_key_refused_with_hint() -> None:
    public = rsa.generate_private_key(65537, 2048).public_key()
    pem = public.public_bytes(PEM, serialization.PublicFormat.PKCS1)
    with pytest.raises(InvalidKey, match="RSAPublicKey_in"):
        load_public_key(pem)
    with pytest.raises(InvalidKey):
        load_public_key(public.public_bytes(DER, serialization.PublicFormat.PKCS1))


GOOD_DER = spki(ed25519.Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty", b"", "not a PEM or DER"),
        ("garbage", b"not a key at all", "not a PEM or DER"),
        ("two-pem-blocks", _pem_block("PUBLIC KEY", GOOD_DER) * 2, "exactly one PEM block, got 2"),
        ("unclosed-pem", _pem_block("PUBLIC KEY", GOOD_DER)[:-20], "not closed"),
        (
            "mismatched-end",
            b"-----BEGIN PUBLIC KEY-----\nAA==\n-----END CERTIFICATE-----\n",
            "closed",
        ),
        (
            "pem-not-base64",
            b"-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n",
            "base64",
        ),
        ("pem-other-label", _pem_block("X509 CRL", GOOD_DER), "not a public key or certificate"),
        ("pem-garbage-der", _pem_block("PUBLIC KEY", b"\x30\x03abc"), "not DER: truncated"),
        ("certificate-garbage", _pem_block("CERTIFICATE", b"\x30\x00"), "X.509 certificate"),
        ("trailing-data", GOOD_DER + b"\x00", "1 bytes of trailing data"),
        ("truncated-der", GOOD_DER[:-1], "truncated"),
        ("long-form-length", b"\x30\x81\x2a" + GOOD_DER[2:], "non-minimal"),
        ("der-integer", b"\x02\x01\x01", "neither"),
        ("oversized", b"\x30" * (64 * 1024 + 1), "at most 65536"),
        ("text-not-bytes", GOOD_DER.hex(), "as bytes"),
    ],
)
def test_malformed_key_refused(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        load_public_key(data)


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(alg=st.sampled_from(SIGNATURE_ALGORITHMS), sig=st.binary(max_size=600))
def test_random_signatures_only_ever_signature_invalid(
    keys: dict[str, tuple[SigningKey, PublicKey]], alg: str, sig: bytes
) -> None:
    with pytest.raises(SignatureInvalid):
        verify_statement(H, alg, sig, keys[alg][1])


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=600))
def test_random_bytes_as_keys_only_ever_invalid_key(data: bytes) -> None:
    with pytest.raises(InvalidKey):
        load_public_key(data)


CERT_DER = _cert(ed25519.Ed25519PrivateKey.generate()).public_bytes(DER)


@settings(max_examples=500, deadline=None)
@given(
    alg=st.sampled_from([*SIGNATURE_ALGORITHMS, "certificate"]),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4),
    armor=st.booleans(),
)
def test_damaged_keys_load_or_raise_invalid_key(
    keys: dict[str, tuple[SigningKey, PublicKey]],
    alg: str,
    edits: list[tuple[int, int]],
    armor: bool,
) -> None:
    data = bytearray(CERT_DER if alg == "certificate" else keys[alg][1].spki)
    for pos, value in edits:
        data[pos % len(data)] = value
    label = "CERTIFICATE" if alg == "certificate" else "PUBLIC KEY"
    blob = _pem_block(label, bytes(data)) if armor else bytes(data)
    try:
        key = load_public_key(blob)
    except InvalidKey:
        return
    assert key.family in KEY_FAMILIES  # a damaged RSA modulus can still be a valid key


def test_a_certificate_of_an_unknown_version_is_an_invalid_key() -> None:
    """Hypothesis found it: cryptography raises InvalidVersion, not ValueError, for v4+."""
    at = CERT_DER.index(bytes.fromhex("a003020102"))
    data = CERT_DER[:at] + bytes.fromhex("a003020107") + CERT_DER[at + 5 :]
    with pytest.raises(InvalidKey, match=r"not a valid X\.509 certificate"):
        load_public_key(data)


# --- module boundaries ------------------------------------------------------------------------


def test_exports_exist_and_every_public_name_is_exported() -> None:
    exported = set(signature_module.__all__)
    assert len(exported) == len(signature_module.__all__)
    assert all(hasattr(signature_module, name) for name in exported)
    public = {
        name
        for name, value in vars(signature_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == "verifier.signature"
    }
    assert public <= exported


def test_import_loads_no_backend_and_no_sm2_provider() -> None:
    code = (
        "import sys, verifier.signature\n"
        "print([m for m in ('fastapi', 'rocksdict', 'psycopg', 'api', 'ledger.storage',"
        " 'gmssl_pyx') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_openssl_missing_fails_loudly(tmp_path: Path) -> None:
    """CI must run the interop tests: without openssl they fail, they are not skipped."""
    code = (
        "import shutil, pytest, sys\n"
        "shutil.which = lambda name: None\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
        "'tests/verifier/test_signature.py::test_openssl_signature_verifies']))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "openssl not found on PATH" in out.stdout
