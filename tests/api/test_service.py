"""The service wired from a data directory: first run, restart, bundles that verify offline."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from api.service import Service, ServiceConfig
from ledger.checkpoint import NoteSigner
from ledger.code import DepositCode
from ledger.entry import Digest
from tests.api.conftest import Lender, wait_stamped
from tests.tsa_fixtures import make_ca, make_tsa
from verifier.bundle import Bundle, verify_bundle


def test_first_run_makes_keys_and_an_admin_token(service: Service) -> None:
    data = service.config.data_dir
    for secret in ("keys/log.key", "admin-token", "tsa/tsa.key"):
        assert (data / secret).stat().st_mode & 0o077 == 0, secret
    token = (data / "admin-token").read_text()
    key = service.api_keys.authenticate(token)
    assert key is not None and key.role == "admin"
    assert service.api_keys.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert service.api_keys.authenticate("czk_nonsense") is None


def test_restart_keeps_the_log_and_its_key(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data")
    first = Service.open(config).start()
    try:
        first.registry.register("lender-1", "Lender")
        vkey, root = first.ledger.signer.vkey, first.tsa_roots
    finally:
        first.close()
    again = Service.open(config).start()
    try:
        assert again.ledger.signer.vkey == vkey
        assert again.tsa_roots == root
        assert again.registry.get("lender-1").display_name == "Lender"
        assert again.api_keys.authenticate((config.data_dir / "admin-token").read_text())
    finally:
        again.close()


def make_bundle(service: Service, lender: Lender, tmp_path: Path) -> tuple[Bundle, Digest]:
    evidence = tmp_path / "借款合同.pdf"
    evidence.write_bytes(b"%PDF-1.7 loan contract HT1")
    (receipt,) = service.sequencer.append([lender.deposit(evidence, contract_no="HT1")])
    wait_stamped(service)
    bundle = service.bundle(receipt.index, with_meta=True)
    return bundle, Digest("sha256", hashlib.sha256(evidence.read_bytes()).digest())


def check(service: Service, bundle: Bundle, **kwargs: object) -> str:
    report = verify_bundle(
        bundle, log_keys=[service.log_verifier], tsa_roots=service.tsa_roots, **kwargs
    )  # type: ignore[arg-type]
    return report.verdict


def test_bundle_verifies_offline_and_round_trips(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    bundle, digest = make_bundle(service, lender, tmp_path)
    report = verify_bundle(
        Bundle.from_object(bundle.to_object()),
        log_keys=[service.log_verifier],
        tsa_roots=service.tsa_roots,
        digest=digest,
        code=DepositCode.from_leaf_hash(hashlib.sha256(b"\x00" + bundle.leaf).digest()),
    )
    assert report.verdict == "VERIFIED", report.to_object()
    assert {s.name: s.status for s in report.steps} == {
        "digest": "passed", "code": "passed", "signature": "passed", "checkpoint": "passed",
        "inclusion": "passed", "timestamp": "passed", "meta": "passed",
    }  # fmt: skip
    assert report.trusted_time is not None
    assert report.to_object()["kind_zh"] == "借款合同"


def test_a_different_file_is_a_mismatch(service: Service, lender: Lender, tmp_path: Path) -> None:
    bundle, _ = make_bundle(service, lender, tmp_path)
    other = Digest("sha256", hashlib.sha256(b"another file").digest())
    assert check(service, bundle, digest=other) == "MISMATCH"


def test_every_tampering_is_invalid(service: Service, lender: Lender, tmp_path: Path) -> None:
    bundle, digest = make_bundle(service, lender, tmp_path)
    replace = dataclasses.replace
    flipped_leaf = bundle.leaf.replace(b'"size":', b'"size":1', 1)
    token = bundle.timestamp
    assert token is not None
    tampered = {
        "leaf": replace(bundle, leaf=flipped_leaf),
        "proof": replace(bundle, proof=(bytes(32), *bundle.proof[1:])) if bundle.proof else None,
        "tree_size": replace(bundle, tree_size=bundle.tree_size + 1),
        "index": replace(bundle, index=bundle.index + 1),
        "checkpoint": replace(bundle, checkpoint=bundle.checkpoint.replace(b"\n1\n", b"\n2\n", 1)),
        "timestamp": replace(bundle, timestamp=token[:-1] + bytes([token[-1] ^ 1])),
        "key": replace(bundle, depositor_key=lender_other_key()),
        "revoked": replace(bundle, key_window=(0, None, 1)),
        "meta": replace(bundle, meta=bundle.meta.replace(b"HT1", b"HT2")),  # type: ignore[union-attr]
    }
    for name, variant in tampered.items():
        if variant is None:
            continue
        assert check(service, variant, digest=digest) == "INVALID", name
    wrong_log = NoteSigner.generate(service.ledger.origin).verifier
    report = verify_bundle(bundle, log_keys=[wrong_log], tsa_roots=service.tsa_roots)
    assert report.verdict == "INVALID"
    other_root = make_tsa(make_ca("Other Root"), name="Other TSA")
    report = verify_bundle(
        bundle, log_keys=[service.log_verifier], tsa_roots=[other_root.certificate]
    )
    assert report.verdict == "INVALID"
    wrong_code = DepositCode(bytes(10))
    assert check(service, bundle, code=wrong_code) == "INVALID"


def lender_other_key() -> str:
    from tools.client import generate_key

    return generate_key("ed25519")[1].decode()


def test_not_yet_stamped_is_pending_not_invalid(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    service.stamper.close()
    evidence = tmp_path / "late.pdf"
    evidence.write_bytes(b"%PDF late")
    (receipt,) = service.sequencer.append([lender.deposit(evidence)])
    bundle = service.bundle(receipt.index)
    report = verify_bundle(bundle, log_keys=[service.log_verifier], tsa_roots=service.tsa_roots)
    assert report.verdict == "VERIFIED"
    assert {s.name: s.status for s in report.steps}["timestamp"] == "pending"


def test_a_kept_report_answers_like_a_fresh_one(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    from verifier.bundle import present

    bundle, digest = make_bundle(service, lender, tmp_path)
    base = verify_bundle(bundle, log_keys=[service.log_verifier], tsa_roots=service.tsa_roots)
    code = DepositCode.from_leaf_hash(hashlib.sha256(b"\x00" + bundle.leaf).digest())
    other = Digest("sha256", bytes(32))
    for d, c in [(digest, code), (other, code), (None, None), (digest, DepositCode(bytes(10)))]:
        fresh = verify_bundle(
            bundle, log_keys=[service.log_verifier], tsa_roots=service.tsa_roots, digest=d, code=c
        )
        kept = present(base, digest=d, code=c)
        assert kept.verdict == fresh.verdict
        assert kept.to_object() == fresh.to_object()


def test_kept_answers_are_bounded_oldest_first() -> None:
    from api.service import ReportCache

    cache = ReportCache(size=4, answers=2)
    reports = [object() for _ in range(3)]
    for index, report in enumerate(reports):
        cache.put(index, report)  # type: ignore[arg-type]
    for index, report in enumerate(reports):
        cache.put_answer(("q", index), index, ("VERIFIED", b"%d" % index), report)  # type: ignore[arg-type]
    assert cache.answer(("q", 0)) is None
    assert cache.answer(("q", 1)) == ("VERIFIED", b"1")
    cache.put_answer(("q", 9), 0, ("VERIFIED", b"stale"), object())  # type: ignore[arg-type]
    assert cache.answer(("q", 9)) is None  # not the kept report: not kept


def test_api_keys_are_read_from_the_store_again_after_their_cache_time() -> None:
    """Another node revoking a key (same store, another process): refused here once the key's
    cached record is ``cache_seconds`` old; a revocation through this node, at once."""
    import time

    from api.service import ApiKeys
    from ledger.storage.memory import MemoryStore

    store = MemoryStore()
    here, there = ApiKeys(store, cache_seconds=0.2), ApiKeys(store)
    first, second = here.issue("auditor"), here.issue("auditor")
    assert here.authenticate(first) is not None and here.authenticate(second) is not None
    there.revoke(first.removeprefix("czk_")[:16])
    assert there.authenticate(first) is None
    time.sleep(0.25)
    assert here.authenticate(first) is None
    here.revoke(second.removeprefix("czk_")[:16])
    assert here.authenticate(second) is None
    assert here.authenticate(second.replace(second[-4:], "AAAA")) is None  # wrong secret


def test_the_serving_process_freezes_its_start_up_heap() -> None:
    import gc

    from api.operations import GC_THRESHOLD, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLD and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
