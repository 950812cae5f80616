"""Witnesses: cosign only consistent growth, detect forks, and k-of-n policies."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tlog_scales import signing as tlog_signing
from tlog_scales.tlog import Checkpoint as TlogCheckpoint

from ledger.checkpoint import Checkpoint, NoteSigner
from ledger.errors import Conflict, SignatureInvalid
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.memory import MemoryStore
from tests import reference
from tests.conftest import make_deposit
from verifier.witness import CosignatureVerifier, ForkDetected, Witness, require_cosigners

SIGNER = NoteSigner.from_seed("witnessed.test/log", bytes(range(32)))


def grow(ledger: Ledger, seq: Sequencer, start: int, n: int) -> bytes:
    seq.append([make_deposit(i) for i in range(start, start + n)])
    return ledger.head().note


def witness(tmp_path: Path, name: str = "witness.example/w1") -> Witness:
    return Witness(name=name, key=Ed25519PrivateKey.generate(), log_key=SIGNER.verifier,
                   state=tmp_path / f"{name.replace('/', '_')}.json")  # fmt: skip


def test_cosigns_consistent_growth_and_refuses_a_fork(tmp_path: Path) -> None:
    w = witness(tmp_path)
    ledger = Ledger.open(MemoryStore(), SIGNER)
    with Sequencer(ledger) as seq:
        note = grow(ledger, seq, 0, 5)
        line = w.cosign(note, [])
        assert w.verifier.verify(note + line) > 0
        size1 = ledger.head_size()
        note2 = grow(ledger, seq, 5, 7)
        proof = ledger.consistency_proof(size1, ledger.head_size())
        assert w.verifier.verify(note2 + w.cosign(note2, proof)) > 0
        with pytest.raises(Conflict, match="went back"):
            w.cosign(note, [])
    # A second ledger with the same log key, forked after the first 5 entries.
    forked = Ledger.open(MemoryStore(), SIGNER)
    with Sequencer(forked) as seq:
        grow(forked, seq, 0, 5)
        other = grow(forked, seq, 100, 7)  # same size as note2, different entries
        bigger = grow(forked, seq, 200, 3)
        proof = forked.consistency_proof(12, forked.head_size())
    with pytest.raises(ForkDetected, match="different roots"):
        w.cosign(other, [])
    with pytest.raises(ForkDetected, match="does not extend"):
        w.cosign(bigger, proof)


def test_cosignature_interoperates_with_tlog_scales(tmp_path: Path) -> None:
    w = witness(tmp_path)
    note = SIGNER.sign(Checkpoint(SIGNER.name, 3, reference.mth([b"a", b"b", b"c"])).body())
    cosigned = note + w.cosign(note, [], now=1_700_000_000)
    vkey = tlog_signing.Vkey.from_string(w.verifier.vkey)
    TlogCheckpoint.from_text(cosigned.decode()).verify(vkey)
    assert CosignatureVerifier.parse(w.verifier.vkey) == w.verifier
    assert w.verifier.verify(cosigned) == 1_700_000_000


def test_k_of_n_policy(tmp_path: Path) -> None:
    ws = [witness(tmp_path, f"witness.example/w{i}") for i in range(3)]
    note = SIGNER.sign(Checkpoint(SIGNER.name, 1, reference.mth([b"a"])).body())
    cosigned = note + ws[0].cosign(note, []) + ws[2].cosign(note, [])
    verifiers = [w.verifier for w in ws]
    assert require_cosigners(cosigned, verifiers, 2) == [ws[0].name, ws[2].name]
    with pytest.raises(SignatureInvalid, match="2 of the required 3"):
        require_cosigners(cosigned, verifiers, 3)
    tampered = cosigned.replace(b"\n1\n", b"\n2\n", 1)
    with pytest.raises(SignatureInvalid):
        require_cosigners(tampered, verifiers, 1)
