"""The depositor registry: keys with validity windows, rotation, revocation, and admission."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit, Digest, Signature, Statement, meta_commitment
from ledger.errors import (
    Conflict,
    InvalidInput,
    KeyNotValid,
    NotFound,
    SignatureInvalid,
    UnknownDepositor,
)
from ledger.log import Ledger
from ledger.registry import Registry
from ledger.sequencer import Sequencer
from ledger.storage.memory import MemoryStore
from ledger.storage.rocksdb import RocksStore
from tools.client import SigningKey, generate_key, load_private_key, sign_statement
from verifier.signature import StatementKeys

T0 = 1_795_000_000_000
ALGS = ["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha256", "rsa-pkcs1v15-sha256", "sm2-sm3"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def statement(i: int, depositor: str = "lender-1") -> Statement:
    salt, meta = bytes(32), {"contract_no": f"HT{i}"}
    return Statement.build(
        depositor=depositor,
        kind="loan_voucher",
        digest=Digest("sha256", hashlib.sha256(str(i).encode()).digest()),
        size=i,
        media_type="application/pdf",
        captured_at="2026-11-24T08:00:00Z",
        meta_commitment=meta_commitment(salt, meta),
    )


def new_key(alg: str = "ed25519") -> tuple[SigningKey, bytes]:
    private, public = generate_key(alg)
    return load_private_key(private), public


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> Registry:
    r = Registry(MemoryStore(), StatementKeys(), clock=clock)
    r.register("lender-1", "某某消费金融有限公司")
    return r


def deposit(key: SigningKey, key_id: str, i: int = 1, depositor: str = "lender-1") -> Deposit:
    s = statement(i, depositor)
    return Deposit.create(s, sign_statement(s, key, key_id=key_id))


@pytest.mark.parametrize("alg", ALGS)
def test_each_algorithm_is_admitted(registry: Registry, alg: str) -> None:
    key, public = new_key(alg)
    registered = registry.add_key("lender-1", public)
    assert registered.key_id.startswith("sha256:")
    registry.admit([deposit(key, registered.key_id)], T0 + 1)


def test_register_refuses_duplicates_and_bad_ids(registry: Registry) -> None:
    with pytest.raises(Conflict, match="already registered"):
        registry.register("lender-1", "again")
    with pytest.raises(InvalidInput):
        registry.register("Lender One", "x")
    with pytest.raises(InvalidInput):
        registry.register("lender-2", "  ")
    with pytest.raises(UnknownDepositor):
        registry.get("nobody")
    assert [d.id for d in registry.all()] == ["lender-1"]


def test_rejections_name_reason_and_position(registry: Registry, clock: Clock) -> None:
    key, public = new_key()
    k = registry.add_key("lender-1", public, key_id="k1")
    good = deposit(key, "k1")
    with pytest.raises(UnknownDepositor) as err:
        registry.admit([good, deposit(key, "k1", depositor="lender-9")], T0)
    assert err.value.details["position"] == 1
    with pytest.raises(KeyNotValid) as err:
        registry.admit([deposit(key, "k2")], T0)
    assert err.value.details["reason"] == "unknown"
    with pytest.raises(KeyNotValid) as err:
        registry.admit([good], k.not_before - 1)
    assert err.value.details["reason"] == "not_yet_valid"
    other, _ = new_key()
    forged = Deposit.create(good.statement, sign_statement(good.statement, other, key_id="k1"))
    with pytest.raises(SignatureInvalid) as err:
        registry.admit([forged], T0)
    assert err.value.details["position"] == 0
    ec_key, ec_public = new_key("ecdsa-p256-sha256")
    registry.add_key("lender-1", ec_public, key_id="ec")
    s = good.statement
    wrong_alg = Signature("ed25519", "ec", sign_statement(s, ec_key, key_id="ec").value)
    with pytest.raises(KeyNotValid) as err:
        registry.admit([Deposit.create(s, wrong_alg)], T0)
    assert err.value.details["reason"] == "wrong_algorithm"


def test_rotation_and_revocation_keep_the_past_verifiable(registry: Registry, clock: Clock) -> None:
    old, old_public = new_key()
    registry.add_key("lender-1", old_public, key_id="2025")
    clock.now = T0 + 1000
    new, new_public = new_key("ecdsa-p256-sha256")
    registry.add_key("lender-1", new_public, key_id="2026")
    revoked = registry.revoke_key("lender-1", "2025", at=T0 + 5000)
    assert revoked.revoked_at == T0 + 5000
    registry.admit([deposit(old, "2025")], T0 + 4999)  # before the revocation: still good
    with pytest.raises(KeyNotValid) as err:
        registry.admit([deposit(old, "2025")], T0 + 5000)
    assert err.value.details["reason"] == "revoked"
    registry.admit([deposit(new, "2026")], T0 + 5000)
    with pytest.raises(Conflict, match="already revoked"):
        registry.revoke_key("lender-1", "2025", at=T0 + 6000)
    with pytest.raises(NotFound):
        registry.revoke_key("lender-1", "nope")
    with pytest.raises(Conflict, match="already has"):
        registry.add_key("lender-1", old_public, key_id="again")
    assert [k.key_id for k in registry.get("lender-1").keys] == ["2025", "2026"]


def test_windows(registry: Registry) -> None:
    key, public = new_key()
    registry.add_key("lender-1", public, key_id="w", not_before=T0 + 10, not_after=T0 + 20)
    registry.admit([deposit(key, "w")], T0 + 10)
    with pytest.raises(KeyNotValid, match="expired"):
        registry.admit([deposit(key, "w")], T0 + 20)
    with pytest.raises(InvalidInput, match="empty"):
        registry.add_key("lender-1", new_key()[1], not_before=T0 + 5, not_after=T0 + 5)


def test_a_certificate_narrows_the_window(registry: Registry) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lender-1 signing")])
    start = dt.datetime.fromtimestamp(T0 / 1000 + 3600, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    k = registry.add_key("lender-1", cert.public_bytes(serialization.Encoding.PEM), key_id="cert")
    assert k.not_before == T0 + 3_600_000
    assert k.not_after is not None and k.not_after > k.not_before


def test_sequencer_refuses_unadmitted_deposits_and_writes_nothing(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    ledger = Ledger.open(store, NoteSigner.generate("reg.test/log"))
    registry = Registry(store, StatementKeys(), clock=ledger.clock)
    registry.register("lender-1", "Lender One")
    key, public = new_key()
    registry.add_key("lender-1", public, key_id="k", not_before=0)
    with Sequencer(ledger, admit=registry.admit) as seq:
        (receipt,) = seq.append([deposit(key, "k")])
        bad = Deposit.create(statement(2), Signature("ed25519", "k", os.urandom(64)))
        with pytest.raises(SignatureInvalid):
            seq.append([deposit(key, "k", 3), bad])
    assert receipt.index == 0
    assert ledger.head_size() == 1
    store.close()
    reopened = Registry(RocksStore(tmp_path / "db"), StatementKeys(), clock=ledger.clock)
    assert reopened.get("lender-1").key("k") is not None
    reopened.store.close()


def test_large_batches_report_the_first_bad_signature(registry: Registry) -> None:
    key, public = new_key()
    registry.add_key("lender-1", public, key_id="k", not_before=0)
    batch = [deposit(key, "k", i) for i in range(200)]
    registry.admit(batch, T0)  # verified on several threads
    for bad in ([150], [30, 170], [199]):
        broken = list(batch)
        for i in bad:
            s = broken[i].statement
            broken[i] = Deposit.create(s, Signature("ed25519", "k", os.urandom(64)))
        with pytest.raises(SignatureInvalid) as err:
            registry.admit(broken, T0)
        assert err.value.details["position"] == bad[0]
