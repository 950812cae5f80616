"""Statements, entries, deposits: canonical bytes, and every kind of bad input refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.entry import (
    EVIDENCE_KINDS,
    MAX_STATEMENT_BYTES,
    Deposit,
    Digest,
    Signature,
    Statement,
    build_entry,
    digest_file,
    format_time,
    meta_commitment,
    parse_entry,
)
from ledger.errors import (
    InvalidDigest,
    InvalidInput,
    InvalidMeta,
    InvalidSignatureField,
    InvalidStatement,
    TooLarge,
)

SALT = bytes(range(32))
META = {"file_name": "借款合同.pdf", "contract_no": "HT00000001"}


def statement_object(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "v": 1,
        "depositor": "lender-1",
        "kind": "loan_contract",
        "evidence": {
            "alg": "sha256",
            "digest": hashlib.sha256(b"contract").hexdigest(),
            "size": 8,
            "media_type": "application/pdf",
        },
        "captured_at": "2026-11-24T08:00:00+08:00",
        "meta_commitment": meta_commitment(SALT, META),
    }
    for key, value in changes.items():
        if key.startswith("evidence."):
            obj["evidence"][key.removeprefix("evidence.")] = value
        elif value is ...:
            del obj[key]
        else:
            obj[key] = value
    return obj


def test_statement_round_trip() -> None:
    raw = rfc8785.dumps(statement_object())
    s = Statement.from_bytes(raw)
    assert s.raw == raw
    assert s.digest == Digest("sha256", hashlib.sha256(b"contract").digest())
    assert s.signed_hash == hashlib.sha256(raw).digest()
    assert s.key[: 1 + 32] == s.digest.index_key


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"v": 2}, InvalidStatement),
        ({"v": True}, InvalidStatement),
        ({"depositor": "Lender One"}, InvalidStatement),
        ({"depositor": ""}, InvalidStatement),
        ({"kind": "selfie"}, InvalidStatement),
        ({"evidence.alg": "md5"}, InvalidDigest),
        ({"evidence.alg": "SHA256"}, InvalidDigest),
        ({"evidence.digest": "ab" * 31}, InvalidDigest),
        ({"evidence.digest": "AB" * 32}, InvalidDigest),
        ({"evidence.digest": "zz" * 32}, InvalidDigest),
        ({"evidence.alg": "sha512"}, InvalidDigest),  # 32-byte digest under sha512
        ({"evidence.size": -1}, InvalidStatement),
        ({"evidence.size": 1.5}, InvalidStatement),
        ({"evidence.size": 2**53}, InvalidStatement),
        ({"evidence.media_type": "PDF"}, InvalidStatement),
        ({"captured_at": "yesterday"}, InvalidStatement),
        ({"captured_at": "2026-13-45T99:00:00Z"}, InvalidStatement),
        ({"meta_commitment": "00"}, InvalidStatement),
        ({"borrower_name": "张三"}, InvalidStatement),  # no personal data can ride along
        ({"kind": ...}, InvalidStatement),
    ],
)
def test_bad_statements(changes: dict[str, Any], error: type[Exception]) -> None:
    raw = json.dumps(statement_object(**changes), sort_keys=True, separators=(",", ":"))
    with pytest.raises(error):
        Statement.from_bytes(raw.encode())


def test_statement_must_be_canonical() -> None:
    obj = statement_object()
    with pytest.raises(InvalidStatement, match="canonical"):
        Statement.from_bytes(rfc8785.dumps(obj).replace(b":", b": ", 1))
    with pytest.raises(InvalidStatement, match="canonical"):
        Statement.from_bytes(rfc8785.dumps(obj)[:-1] + b',"v":1}')  # duplicate key
    with pytest.raises(InvalidStatement, match="not valid JSON"):
        Statement.from_bytes(b"{")
    with pytest.raises(TooLarge):
        Statement.from_bytes(b" " * (MAX_STATEMENT_BYTES + 1))


@pytest.mark.parametrize(
    ("alg", "size"), [("sha256", 32), ("sha384", 48), ("sha512", 64), ("sm3", 32)]
)
def test_digests(alg: str, size: int, tmp_path: Any) -> None:
    d = Digest.parse(f"{alg.upper()}:" + "Ab" * size)
    assert d.alg == alg and len(d.value) == size and str(d) == f"{alg}:" + "ab" * size
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert digest_file(str(path), alg).value == hashlib.new(alg, b"abc").digest()


@pytest.mark.parametrize(
    "text", ["sha256", "sha256:", "md5:" + "00" * 16, "sha256:" + "00" * 33, "sha256:xyz"]
)
def test_bad_digests(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_sm3_matches_openssl_vector() -> None:
    # GB/T 32905-2016 example 1: SM3("abc").
    assert hashlib.new("sm3", b"abc").hexdigest() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_signature_fields() -> None:
    with pytest.raises(InvalidSignatureField):
        Signature("dsa", "k", b"x")
    with pytest.raises(InvalidSignatureField):
        Signature("ed25519", "has space", b"x")
    with pytest.raises(InvalidSignatureField):
        Signature("ed25519", "k", b"")
    with pytest.raises(InvalidSignatureField):
        Signature("ed25519", "k", b"x" * 1025)
    with pytest.raises(InvalidSignatureField, match="base64"):
        Signature.from_object({"alg": "ed25519", "key_id": "k", "value": "***"})


def test_meta_must_open_the_commitment() -> None:
    s = Statement.from_object(statement_object())
    sig = Signature("ed25519", "k1", b"s" * 64)
    d = Deposit.create(s, sig, meta=META, salt=SALT)
    assert d.meta == rfc8785.dumps({"meta": META, "salt": SALT.hex()})
    with pytest.raises(InvalidMeta, match="do not open"):
        Deposit.create(s, sig, meta={**META, "contract_no": "HT2"}, salt=SALT)
    with pytest.raises(InvalidMeta, match="do not open"):
        Deposit.create(s, sig, meta=META, salt=bytes(32))
    with pytest.raises(InvalidMeta, match="together"):
        Deposit.create(s, sig, meta=META)
    with pytest.raises(InvalidMeta, match="32 random bytes"):
        Deposit.create(s, sig, meta=META, salt=b"short")
    big = {"x": "y" * 20000}
    big_statement = Statement.from_object(
        statement_object(meta_commitment=meta_commitment(SALT, big))
    )
    with pytest.raises(TooLarge):
        Deposit.create(big_statement, sig, meta=big, salt=SALT)
    with pytest.raises(TooLarge):
        Deposit.create(s, sig, tst=b"t" * 20000)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
    st.from_regex(
        r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}", fullmatch=True
    ),
    st.integers(0, 2**53 - 1),
    st.builds(
        lambda moment, fraction, offset: moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + offset,
        st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from(["", ".1", ".123", ".123456789"]),
        st.sampled_from(["Z", "+08:00", "-05:30"]),
    ),
)  # fmt: skip
def test_a_valid_statement_is_written_as_rfc8785_has_it(
    depositor: str, media_type: str, size: int, captured_at: str
) -> None:
    """A validated statement is written by orjson without walking its shape again: the bytes
    are still those of the reference, whatever its (valid) strings and size."""
    obj = statement_object(
        depositor=depositor,
        captured_at=captured_at,
        **{"evidence.media_type": media_type, "evidence.size": size},
    )
    statement = Statement.from_object(obj)
    assert statement.raw == rfc8785.dumps(obj)
    assert Statement.from_bytes(statement.raw) == statement


deposits = st.builds(
    lambda kind, alg, size, key_id, sig, tst, captured: Deposit.create(
        Statement.from_object(
            statement_object(
                kind=kind,
                captured_at=captured,
                **{"evidence.alg": alg, "evidence.digest": os.urandom(
                    {"sha256": 32, "sha384": 48, "sha512": 64, "sm3": 32}[alg]).hex(),
                   "evidence.size": size},
            )
        ),
        Signature("ed25519", key_id, sig),
        tst=tst,
    ),
    st.sampled_from(sorted(EVIDENCE_KINDS)),
    st.sampled_from(["sha256", "sha384", "sha512", "sm3"]),
    st.integers(0, 2**53 - 1),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True),
    st.binary(min_size=1, max_size=512),
    st.none() | st.binary(min_size=1, max_size=64),
    st.sampled_from(["2026-11-24T08:00:00Z", "2026-01-01T00:00:00.123456+08:00"]),
)  # fmt: skip


@given(deposits, st.integers(0, 4_102_444_800_000))
def test_entry_is_jcs_and_parses_back(deposit: Deposit, ms: int) -> None:
    received_at = format_time(ms)
    leaf = build_entry(deposit, received_at)
    obj = {
        "received_at": received_at,
        "sig": deposit.sig.to_object(),
        "statement": json.loads(deposit.statement.raw),
    }
    if deposit.tst is not None:
        obj["tst"] = base64.b64encode(deposit.tst).decode()
    assert leaf == rfc8785.dumps(obj)
    entry = parse_entry(leaf)
    assert entry.statement == deposit.statement and entry.sig == deposit.sig
    assert entry.tst == deposit.tst and entry.received_at == received_at


def test_format_time() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1_795_510_662_474) == "2026-11-24T08:57:42.474Z"


@given(st.binary(max_size=300))
def test_garbage_entries_give_typed_errors(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_entry(data)


def test_non_canonical_entry_is_refused() -> None:
    s = Statement.from_object(statement_object())
    leaf = build_entry(Deposit.create(s, Signature("ed25519", "k", b"x")), format_time(0))
    with pytest.raises(InvalidInput, match="canonical"):
        parse_entry(leaf.replace(b'"received_at":', b'"received_at": '))


def test_deposit_requests_round_trip() -> None:
    s = Statement.from_object(statement_object())
    d = Deposit.create(s, Signature("ed25519", "k1", b"s" * 64), meta=META, salt=SALT, tst=b"tok")
    assert Deposit.from_object(json.loads(json.dumps(d.to_object()))) == d
    bare = Deposit.create(s, Signature("ed25519", "k1", b"s" * 64))
    assert Deposit.from_object(bare.to_object()) == bare


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"statement": ...}, InvalidInput),
        ({"extra": 1}, InvalidInput),
        ({"salt": "00"}, InvalidMeta),
        ({"salt": "AB" * 32}, InvalidMeta),
        ({"tst": 5}, InvalidInput),
        ({"tst": "***"}, InvalidInput),
        ({"sig": {"alg": "ed25519"}}, InvalidSignatureField),
        ({"meta": {"contract_no": "other"}}, InvalidMeta),
    ],
)
def test_bad_deposit_requests(change: dict[str, Any], error: type[Exception]) -> None:
    s = Statement.from_object(statement_object())
    obj = Deposit.create(s, Signature("ed25519", "k1", b"s" * 64), meta=META, salt=SALT).to_object()
    for key, value in change.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    with pytest.raises(error):
        Deposit.from_object(obj)
