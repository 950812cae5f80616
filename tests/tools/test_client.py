"""The lender's signing helper: keys OpenSSL reads and writes, signatures OpenSSL accepts."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import tools.client as client_module
from ledger.entry import SIGNATURE_ALGORITHMS, Deposit, Digest, Statement
from ledger.errors import InvalidKey, InvalidMeta, InvalidSignatureField, TooLarge
from tests.verifier.test_signature import STATEMENT, OpenSSL
from tools.client import (
    RSA_GENERATED_BITS,
    SigningKey,
    build_statement,
    generate_key,
    load_private_key,
    sign_statement,
)
from verifier.signature import (
    _SM2_ALGORITHM_ID,
    _SM2_N,
    _SM2_SPKI_PREFIX,
    _pem,
    _read_pem,
    load_public_key,
    verify_statement,
)

H = STATEMENT.signed_hash
NONE = serialization.NoEncryption()
PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="module")
def openssl(tmp_path_factory: pytest.TempPathFactory) -> OpenSSL:
    return OpenSSL.find(tmp_path_factory.mktemp("openssl"))


@pytest.fixture(scope="module")
def generated() -> dict[str, tuple[bytes, bytes]]:
    """One (private PEM, public PEM) per algorithm from generate_key."""
    return {alg: generate_key(alg) for alg in SIGNATURE_ALGORITHMS}


# --- generate, load, sign -------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_round_trip(generated: dict[str, tuple[bytes, bytes]], alg: str) -> None:
    private_pem, public_pem = generated[alg]
    key = load_private_key(private_pem)
    public = load_public_key(public_pem)
    assert key.public_key == public
    sig = sign_statement(STATEMENT, key, alg=alg, key_id=public.key_id)
    assert (sig.alg, sig.key_id) == (alg, public.key_id)
    verify_statement(H, alg, sig.value, public)


@pytest.mark.parametrize(
    ("alg", "want"),
    [
        ("ed25519", "ed25519"),
        ("ecdsa-p256-sha256", "ecdsa-p256-sha256"),
        ("rsa-pkcs1v15-sha256", "rsa-pss-sha256"),
        ("sm2-sm3", "sm2-sm3"),
    ],
)
def test_algorithm_inferred_from_key(
    generated: dict[str, tuple[bytes, bytes]], alg: str, want: str
) -> None:
    key = load_private_key(generated[alg][0])
    assert key.default_alg == want
    sig = sign_statement(STATEMENT, key, key_id="lender-key-1")
    assert sig.alg == want
    verify_statement(H, want, sig.value, key.public_key)


def test_generated_rsa_size(generated: dict[str, tuple[bytes, bytes]]) -> None:
    public = serialization.load_pem_public_key(generated["rsa-pss-sha256"][1])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == RSA_GENERATED_BITS


def test_algorithm_the_key_cannot_sign_refused(generated: dict[str, tuple[bytes, bytes]]) -> None:
    key = load_private_key(generated["ed25519"][0])
    with pytest.raises(InvalidKey, match="a ed25519 key cannot sign rsa-pss-sha256") as info:
        sign_statement(STATEMENT, key, alg="rsa-pss-sha256", key_id="k")
    assert info.value.details == {"got": "rsa-pss-sha256", "want": ["ed25519"]}


def test_unknown_algorithm_refused(generated: dict[str, tuple[bytes, bytes]]) -> None:
    key = load_private_key(generated["ed25519"][0])
    with pytest.raises(InvalidSignatureField, match="unknown signature algorithm"):
        sign_statement(STATEMENT, key, alg="ed448", key_id="k")
    with pytest.raises(InvalidSignatureField, match="unknown signature algorithm"):
        generate_key("dsa-sha256")


def test_bad_key_id_refused(generated: dict[str, tuple[bytes, bytes]]) -> None:
    key = load_private_key(generated["ed25519"][0])
    with pytest.raises(InvalidSignatureField, match="key_id"):
        sign_statement(STATEMENT, key, key_id="no spaces allowed")


def test_signature_checked_before_it_is_returned(
    generated: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = load_private_key(generated["ecdsa-p256-sha256"][0])
    monkeypatch.setattr(client_module, "_sign", lambda h, alg, key: b"\x30\x00")
    with pytest.raises(InvalidKey, match="signature its own public key rejects"):
        sign_statement(STATEMENT, key, key_id="k")


def test_repr_shows_no_secret(generated: dict[str, tuple[bytes, bytes]]) -> None:
    for alg in ("ed25519", "sm2-sm3"):
        private_pem, _ = generated[alg]
        key = load_private_key(private_pem)
        assert isinstance(key._native, bytes | ed25519.Ed25519PrivateKey)
        secret = key._native if isinstance(key._native, bytes) else _ed25519_raw(key)
        assert secret.hex() not in repr(key) and repr(secret) not in repr(key)
        assert key.public_key.key_id in repr(key)


def _ed25519_raw(key: SigningKey) -> bytes:
    native = key._native
    assert isinstance(native, ed25519.Ed25519PrivateKey)
    return native.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, NONE)


# --- private keys: formats and refusals ---------------------------------------------------------


def test_encrypted_pkcs8_needs_the_right_password() -> None:
    native = ec.generate_private_key(ec.SECP256R1())
    pem = native.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"s3cret"))
    assert load_private_key(pem, b"s3cret").public_key.family == "ecdsa-p256"
    with pytest.raises(InvalidKey, match="wrong password"):
        load_private_key(pem, b"guess")
    with pytest.raises(InvalidKey, match="encrypted"):
        load_private_key(pem)


def test_password_for_an_unencrypted_key_refused(
    generated: dict[str, tuple[bytes, bytes]],
) -> None:
    for alg in ("ed25519", "sm2-sm3"):
        with pytest.raises(InvalidKey, match="not encrypted"):
            load_private_key(generated[alg][0], b"pw")


def test_traditional_pem_read() -> None:
    trad = serialization.PrivateFormat.TraditionalOpenSSL
    for native in (ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)):
        key = load_private_key(native.private_bytes(PEM, trad, NONE))
        verify_statement(
            H, key.default_alg, sign_statement(STATEMENT, key, key_id="k").value, key.public_key
        )


@pytest.mark.parametrize(
    ("name", "native"),
    [
        ("p384", lambda: ec.generate_private_key(ec.SECP384R1())),
        ("rsa-1024", lambda: rsa.generate_private_key(65537, 1024)),
    ],
)
def test_unsupported_private_key_refused(name: str, native: object) -> None:
    pem = native().private_bytes(PEM, PKCS8, NONE)  # type: ignore[operator]
    with pytest.raises(InvalidKey):
        load_private_key(pem)


def test_public_key_or_garbage_given_as_private_key_refused(
    generated: dict[str, tuple[bytes, bytes]],
) -> None:
    with pytest.raises(InvalidKey, match="'PUBLIC KEY' is not a private key"):
        load_private_key(generated["ed25519"][1])
    with pytest.raises(InvalidKey, match="exactly one PEM block"):
        load_private_key(b"garbage")
    with pytest.raises(InvalidKey, match="PEM bytes"):
        load_private_key("-----BEGIN PRIVATE KEY-----")  # type: ignore[arg-type]
    damaged = b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidKey, match="cannot read the private key"):
        load_private_key(damaged)


def test_generate_key_without_gmssl_names_the_dependency(
    generated: dict[str, tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gmssl_pyx", None)
    with pytest.raises(InvalidKey, match="gmssl-pyx"):
        generate_key("sm2-sm3")
    with pytest.raises(InvalidKey, match="gmssl-pyx"):
        load_private_key(generated["sm2-sm3"][0])


# --- SM2 private keys, structure by structure -----------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    return client_module._der(tag, body)


def armor(label: str, der: bytes) -> bytes:
    return _pem(label.encode(), der)


def _sm2_material(generated: dict[str, tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """(d, x ‖ y) of the generated SM2 key."""
    key = load_private_key(generated["sm2-sm3"][0])
    assert isinstance(key._native, bytes)
    return key._native, key.public_key.spki[len(_SM2_SPKI_PREFIX) :]


SM2_OID = _SM2_ALGORITHM_ID[11:]


def _ec_private_key(d: bytes, point: bytes | None, *, params: bytes | None = None) -> bytes:
    body = b"\x02\x01\x01" + _der(0x04, d)
    if params is not None:
        body += _der(0xA0, params)
    if point is not None:
        body += _der(0xA1, _der(0x03, b"\x00\x04" + point))
    return _der(0x30, body)


def _pkcs8(ec_private_key: bytes) -> bytes:
    return _der(0x30, b"\x02\x01\x00" + _SM2_ALGORITHM_ID + _der(0x04, ec_private_key))


def test_sm2_generated_key_is_what_openssl_genpkey_writes(
    generated: dict[str, tuple[bytes, bytes]],
) -> None:
    d, point = _sm2_material(generated)
    label, der = _read_pem(generated["sm2-sm3"][0])
    assert label == b"PRIVATE KEY"
    assert der == _pkcs8(_ec_private_key(d, point))
    assert len(der) == 138  # 30 81 87 …, as in `openssl asn1parse` of a genpkey SM2 key


def test_sm2_with_curve_parameters_and_sec1_accepted(
    generated: dict[str, tuple[bytes, bytes]],
) -> None:
    d, point = _sm2_material(generated)
    with_params = _ec_private_key(d, point, params=SM2_OID)
    for pem in (
        armor("PRIVATE KEY", _pkcs8(with_params)),
        armor("SM2 PRIVATE KEY", with_params),
        armor("EC PRIVATE KEY", with_params),
    ):
        key = load_private_key(pem)
        assert key.public_key.family == "sm2" and key._native == d


def test_sm2_key_signs_after_loading(generated: dict[str, tuple[bytes, bytes]]) -> None:
    d, point = _sm2_material(generated)
    key = load_private_key(armor("SM2 PRIVATE KEY", _ec_private_key(d, point, params=SM2_OID)))
    verify_statement(H, "sm2-sm3", sign_statement(STATEMENT, key, key_id="k").value, key.public_key)


@pytest.mark.parametrize(
    "vector",
    [
        "no-public-key",
        "other-curve-parameters",
        "mismatched-public-key",
        "d-zero",
        "d-equals-n-minus-1",
        "d-31-bytes",
        "version-2",
        "trailing-data",
        "unexpected-field",
        "public-key-not-bit-string",
        "public-key-compressed",
        "pkcs8-version-5",
    ],
)
def test_sm2_private_key_vectors_refused(
    generated: dict[str, tuple[bytes, bytes]], vector: str
) -> None:
    d, point = _sm2_material(generated)
    other_point = load_public_key(generate_key("sm2-sm3")[1]).spki[len(_SM2_SPKI_PREFIX) :]
    p256_oid = bytes.fromhex("06082a8648ce3d030107")
    good = _ec_private_key(d, point)

    def replace_point_field(field: bytes) -> bytes:
        return _der(0x30, b"\x02\x01\x01" + _der(0x04, d) + _der(0xA1, field))

    ec_key, outer = {
        "no-public-key": (_ec_private_key(d, None), None),
        "other-curve-parameters": (_ec_private_key(d, point, params=p256_oid), None),
        "mismatched-public-key": (_ec_private_key(d, other_point), None),
        "d-zero": (_ec_private_key(bytes(32), point), None),
        "d-equals-n-minus-1": (_ec_private_key((_SM2_N - 1).to_bytes(32, "big"), point), None),
        "d-31-bytes": (_ec_private_key(d[1:], point), None),
        "version-2": (b"\x30" + good[1:2] + b"\x02\x01\x02" + good[5:], None),
        "trailing-data": (good, _pkcs8(good) + b"\x00"),
        "unexpected-field": (_der(0x30, good[2:] + _der(0xA2, b"")), None),
        "public-key-not-bit-string": (replace_point_field(_der(0x04, b"\x00\x04" + point)), None),
        "public-key-compressed": (replace_point_field(_der(0x03, b"\x00\x02" + point[:32])), None),
        "pkcs8-version-5": (
            good,
            _der(0x30, b"\x02\x01\x05" + _SM2_ALGORITHM_ID + _der(0x04, good)),
        ),
    }[vector]
    der = outer if outer is not None else _pkcs8(ec_key)
    with pytest.raises(InvalidKey):
        load_private_key(armor("PRIVATE KEY", der))


def test_sm2_without_public_key_names_the_fix(generated: dict[str, tuple[bytes, bytes]]) -> None:
    d, _ = _sm2_material(generated)
    with pytest.raises(InvalidKey, match=r"openssl pkey -in key\.pem"):
        load_private_key(armor("PRIVATE KEY", _pkcs8(_ec_private_key(d, None))))


# --- against OpenSSL ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_openssl_verifies_our_signature(
    openssl: OpenSSL, generated: dict[str, tuple[bytes, bytes]], alg: str
) -> None:
    private_pem, public_pem = generated[alg]
    sig = sign_statement(STATEMENT, load_private_key(private_pem), alg=alg, key_id="k").value
    pub = openssl.write(f"ours-{alg}.pub.pem", public_pem)
    assert openssl.verify(alg, pub, sig, statement=STATEMENT.raw)
    assert not openssl.verify(alg, pub, sig, statement=STATEMENT.raw + b" ")


@pytest.mark.slow
@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_openssl_reads_our_private_key(
    openssl: OpenSSL, generated: dict[str, tuple[bytes, bytes]], alg: str
) -> None:
    private_pem, public_pem = generated[alg]
    key = openssl.write(f"ours-{alg}.pem", private_pem)
    assert openssl("pkey", "-in", key, "-pubout").stdout == public_pem
    assert openssl("pkey", "-in", key, "-check", "-noout").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("alg", SIGNATURE_ALGORITHMS)
def test_we_sign_with_openssl_generated_key(openssl: OpenSSL, alg: str) -> None:
    private_pem, public_pem = openssl.genpkey(alg, f"theirs-{alg}")
    key = load_private_key(private_pem)
    assert key.public_key == load_public_key(public_pem)
    sig = sign_statement(STATEMENT, key, alg=alg, key_id="k").value
    assert openssl.verify(alg, f"theirs-{alg}.pub.pem", sig, statement=STATEMENT.raw)


@pytest.mark.slow
def test_openssl_sec1_sm2_key_read(openssl: OpenSSL) -> None:
    openssl.genpkey("sm2-sm3", "sec1")
    openssl("ec", "-in", "sec1.pem", "-out", "sec1-trad.pem")
    pem = openssl.read("sec1-trad.pem")
    assert pem.startswith(b"-----BEGIN SM2 PRIVATE KEY-----")
    assert load_private_key(pem).public_key == load_public_key(openssl.read("sec1.pub.pem"))


@pytest.mark.slow
def test_encrypted_sm2_key_refused_with_hint(openssl: OpenSSL) -> None:
    openssl.genpkey("sm2-sm3", "enc")
    openssl("pkey", "-in", "enc.pem", "-aes256", "-passout", "pass:pw", "-out", "enc-aes.pem")
    with pytest.raises(InvalidKey, match="unencrypted PKCS#8: openssl pkey"):
        load_private_key(openssl.read("enc-aes.pem"), b"pw")


# --- build_statement ----------------------------------------------------------------------------


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    path = tmp_path / "借款合同.pdf"
    path.write_bytes(b"%PDF-1.7 loan contract\n" * 1000)
    return path


META = {"file_name": "借款合同.pdf", "contract_no": "HT00000001"}


def test_build_statement_hashes_and_commits(evidence: Path) -> None:
    statement, meta, salt = build_statement(
        evidence, depositor="lender-1", kind="loan_contract", meta=META
    )
    data = evidence.read_bytes()
    assert statement.digest == Digest("sha256", hashlib.sha256(data).digest())
    assert statement.size == len(data)
    assert statement.media_type == "application/pdf"
    assert statement.depositor == "lender-1" and statement.kind == "loan_contract"
    assert meta == META and len(salt) == 32
    assert statement.captured_at.endswith("Z")
    assert Statement.from_bytes(statement.raw) == statement
    key = load_private_key(generate_key("ed25519")[0])
    deposit = Deposit.create(
        statement, sign_statement(statement, key, key_id="k"), meta=meta, salt=salt
    )
    assert deposit.meta is not None and salt.hex().encode() in deposit.meta


def test_build_statement_fresh_salt_each_time(evidence: Path) -> None:
    first = build_statement(evidence, depositor="lender-1", kind="other", meta=META)
    second = build_statement(evidence, depositor="lender-1", kind="other", meta=META)
    assert first[2] != second[2]
    assert first[0].meta_commitment != second[0].meta_commitment


def test_build_statement_options(evidence: Path, tmp_path: Path) -> None:
    statement, _, _ = build_statement(
        str(evidence),
        depositor="lender-1",
        kind="loan_voucher",
        meta={},
        media_type="application/x-custom",
        captured_at="2026-11-24T08:42:24.123+08:00",
        digest_alg="sm3",
    )
    assert statement.digest.alg == "sm3"
    assert statement.media_type == "application/x-custom"
    assert statement.captured_at == "2026-11-24T08:42:24.123+08:00"
    unknown = tmp_path / "evidence.zzz-unknown"
    unknown.write_bytes(b"")
    statement, _, _ = build_statement(unknown, depositor="lender-1", kind="other", meta={})
    assert statement.media_type == "application/octet-stream"
    assert statement.size == 0


@pytest.mark.parametrize(
    ("meta", "error"),
    [
        (["not", "an", "object"], InvalidMeta),
        ({"ratio": float("nan")}, InvalidMeta),
        ({"blob": "x" * (16 * 1024)}, TooLarge),
    ],
)
def test_build_statement_bad_meta_refused(evidence: Path, meta: object, error: type) -> None:
    with pytest.raises(error):
        build_statement(evidence, depositor="lender-1", kind="other", meta=meta)  # type: ignore[arg-type]


def test_exports_exist_and_every_public_name_is_exported() -> None:
    exported = set(client_module.__all__)
    assert len(exported) == len(client_module.__all__)
    assert all(hasattr(client_module, name) for name in exported)
    public = {
        name
        for name, value in vars(client_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == "tools.client"
    }
    assert public <= exported
