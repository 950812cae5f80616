"""Deposits carrying the depositor's own RFC 3161 token: verified at deposit, kept in the entry."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest

from ledger.authority import TimeStampAuthority, TsaCredentials, issue_tsa_certificates
from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit, Digest, Statement, meta_commitment, parse_entry
from ledger.errors import InvalidInput, TimestampInvalid, TimestampMalformed
from ledger.log import Ledger
from ledger.registry import Registry
from ledger.sequencer import Sequencer
from ledger.storage.memory import MemoryStore
from tools.client import SigningKey, generate_key, load_private_key, sign_statement
from verifier.admission import Admission
from verifier.signature import StatementKeys

Setup = tuple[Ledger, Admission, SigningKey, TimeStampAuthority]


def tsa() -> tuple[TimeStampAuthority, TsaCredentials]:
    creds = issue_tsa_certificates(name="National Time Service (test)")
    return (
        TimeStampAuthority(
            certificate=creds.certificate,
            private_key=creds.private_key,
            serials=itertools.count(1).__next__,
        ),
        creds,
    )


@pytest.fixture
def setup() -> Setup:
    store = MemoryStore()
    ledger = Ledger.open(store, NoteSigner.generate("adm.test/log"))
    registry = Registry(store, StatementKeys(), clock=ledger.clock)
    registry.register("lender-1", "Lender")
    private, public = generate_key("ed25519")
    registry.add_key("lender-1", public, key_id="k", not_before=0)
    authority, creds = tsa()
    return (
        ledger,
        Admission(registry, token_roots=[creds.root]),
        load_private_key(private),
        authority,
    )


def deposit(key: SigningKey, alg: str, evidence: bytes, tst: bytes | None) -> Deposit:
    h = hashlib.new(alg, evidence).digest()
    s = Statement.build(
        depositor="lender-1", kind="loan_contract", digest=Digest(alg, h), size=len(evidence),
        media_type="application/pdf", captured_at="2026-11-24T08:00:00Z",
        meta_commitment=meta_commitment(bytes(32), {}),
    )  # fmt: skip
    return Deposit.create(s, sign_statement(s, key, key_id="k"), tst=tst)


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
def test_a_valid_token_is_admitted_and_kept(setup: Setup, alg: str) -> None:
    ledger, admission, key, authority = setup
    evidence = b"%PDF-1.7 loan contract"
    token = authority.stamp(hashlib.new(alg, evidence).digest(), hash_alg=alg)
    with Sequencer(ledger, admit=admission) as seq:
        (receipt,) = seq.append([deposit(key, alg, evidence, token)])
    entry = parse_entry(ledger.entry(receipt.index))
    assert entry.tst == token
    assert base64.b64encode(token) in ledger.entry(receipt.index)


def test_bad_tokens_are_refused_and_nothing_written(setup: Setup) -> None:
    ledger, admission, key, authority = setup
    evidence = b"%PDF-1.7 loan contract"
    other, _ = tsa()
    cases = [
        (authority.stamp(hashlib.sha256(b"other file").digest()), TimestampInvalid, "imprint"),
        (other.stamp(hashlib.sha256(evidence).digest()), TimestampInvalid, "untrusted"),
        (b"\x30\x03\x02\x01\x01", TimestampMalformed, None),
    ]
    with Sequencer(ledger, admit=admission) as seq:
        for token, error, reason in cases:
            with pytest.raises(error) as err:
                seq.append(
                    [deposit(key, "sha256", b"x", None), deposit(key, "sha256", evidence, token)]
                )
            assert err.value.details["position"] == 1
            if reason:
                assert err.value.details["reason"] == reason
        with pytest.raises(InvalidInput, match="SHA-2"):
            seq.append([deposit(key, "sm3", evidence, authority.stamp(bytes(32)))])
    assert ledger.head_size() == 0


def test_no_roots_no_tokens(setup: Setup) -> None:
    ledger, admission, key, authority = setup
    strict = Admission(admission.registry)
    token = authority.stamp(hashlib.sha256(b"e").digest())
    with pytest.raises(InvalidInput, match="trust no depositor TSA"):
        strict([deposit(key, "sha256", b"e", token)], ledger.clock())
    strict([deposit(key, "sha256", b"e", None)], ledger.clock())


def test_verify_batch_says_which_signatures_verify() -> None:
    """The other process's check: yes for a good signature, no for a flipped bit, a wrong key,
    an unknown algorithm or a malformed key — never an exception."""
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from verifier.signature import verify_batch

    def spki(key: Ed25519PrivateKey) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    one, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    h = hashlib.sha256(b"statement").digest()
    sig = one.sign(h)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    items = [
        (spki(one), h, "ed25519", sig),
        (spki(one), h, "ed25519", flipped),
        (spki(other), h, "ed25519", sig),
        (spki(one), h, "no-such-alg", sig),
        (b"not a key", h, "ed25519", sig),
        (spki(one), h, "ed25519", sig),
    ]
    assert verify_batch(items) == [True, False, False, False, False, True]
