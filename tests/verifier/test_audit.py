"""The audit replay: a clean ledger passes; any single tampering is found and named exactly."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from rocksdict import Options, Rdict

from api.service import Service, ServiceConfig
from ledger.checkpoint import NoteVerifier
from ledger.storage.rocksdb import RocksStore
from tests.api.conftest import Lender, wait_stamped
from tools.client import generate_key, load_private_key
from verifier.audit import AuditReport, AuditState, audit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A closed ledger of 600 deposits over several blocks, time-stamped, with its trust anchors."""
    data = tmp_path_factory.mktemp("audit") / "data"
    service = Service.open(ServiceConfig(data_dir=data, origin="audit.test/log"))
    service.stamper.interval = service.stamper.min_interval = 0.01
    service.start()
    service.registry.register("lender-1", "Lender")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k1", not_before=0)
    lender = Lender("lender-1", load_private_key(private), "k1")
    files = data.parent / "files"
    files.mkdir()
    for block in range(6):
        deposits = []
        for i in range(100):
            path = files / f"{block}-{i}.pdf"
            path.write_bytes(b"%%PDF %d %d" % (block, i))
            deposits.append(lender.deposit(path))
        service.sequencer.append(deposits)
        wait_stamped(service)
    vkey = service.ledger.signer.vkey
    root = data.parent / "tsa-root.pem"
    root.write_bytes(service.tsa_roots[0].public_bytes(Encoding.PEM))
    service.close()
    return {"store": data / "ledger", "vkey": vkey, "root": root, "roots": service.tsa_roots}


def copy(ledger_dir: dict[str, Any], tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(str(ledger_dir["store"]), target)
    return target


def run_audit(
    path: Path, ledger_dir: dict[str, Any], collect: bool = False, workers: int = 1
) -> AuditReport:
    store = RocksStore(path, read_only=True)
    try:
        log_key = NoteVerifier.parse(ledger_dir["vkey"])
        return audit(store, log_key=log_key, tsa_roots=ledger_dir["roots"], collect=collect,
                     workers=workers)  # fmt: skip
    finally:
        store.close()


def tamper(path: Path, change: Callable[[Rdict], None]) -> None:
    db = Rdict(str(path), Options(raw_mode=True))
    try:
        change(db)
    finally:
        db.close()


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def test_a_clean_ledger_passes(ledger_dir: dict[str, Any], tmp_path: Path) -> None:
    report = run_audit(copy(ledger_dir, tmp_path), ledger_dir)
    assert report.clean, report.to_object()
    assert report.entries == 600 and report.checkpoints == 7 and report.timestamps >= 1


def _flip_entry(db: Rdict) -> None:
    leaf = db[b"e" + u64(250)]
    db[b"e" + u64(250)] = leaf.replace(b'"size":', b'"size":9', 1)


def _flip_tile(db: Rdict) -> None:
    key = b"t" + struct.pack(">BQ", 0, 1)
    record = db[key]
    db[key] = record[:40] + bytes([record[40] ^ 1]) + record[41:]


def _flip_checkpoint(db: Rdict) -> None:
    key = next(k for k in db.keys(from_key=b"k" + u64(300)) if k.startswith(b"k"))
    db[key] = db[key].replace(b"\ntime ", b"\ntime 1", 1)


def _flip_token(db: Rdict) -> None:
    key = next(k for k in db.keys(from_key=b"T") if k.startswith(b"T"))
    token = db[key]
    db[key] = token[:-3] + bytes([token[-3] ^ 1]) + token[-2:]


def _drop_code_index(db: Rdict) -> None:
    key = next(k for k in db.keys(from_key=b"c") if k.startswith(b"c"))
    del db[key]


def _drop_entry(db: Rdict) -> None:
    del db[b"e" + u64(599)]


def _swap_entries(db: Rdict) -> None:
    a, b = db[b"e" + u64(10)], db[b"e" + u64(11)]
    db[b"e" + u64(10)], db[b"e" + u64(11)] = b, a


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "what"),
    [
        (_flip_entry, {"root hash", "index by code", "index by digest", "depositor signature"}),
        (_flip_tile, {"tile record"}),
        (_flip_checkpoint, {"checkpoint signature"}),
        (_flip_token, {"RFC 3161 token"}),
        (_drop_code_index, {"index by code"}),
        (_drop_entry, {"entry"}),
        (_swap_entries, {"index by code", "index by digest", "root hash"}),
    ],
    ids=["entry-byte", "tile-byte", "checkpoint-byte", "token-byte", "code-index", "deleted-entry",
         "reordered-entries"],
)  # fmt: skip
def test_each_tampering_is_found_and_named(
    ledger_dir: dict[str, Any], tmp_path: Path, change: Callable[[Rdict], None], what: set[str]
) -> None:
    path = copy(ledger_dir, tmp_path)
    tamper(path, change)
    report = run_audit(path, ledger_dir)
    assert not report.clean
    first = report.divergences[0]
    assert first.what in what, first
    assert first.where.startswith(("index", "tile", "checkpoint")), first


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [_flip_entry, _drop_code_index, _drop_entry, _swap_entries, _flip_tile, None],
    ids=["entry-byte", "code-index", "deleted-entry", "reordered-entries", "tile-byte", "clean"],
)
def test_worker_processes_report_the_same_in_the_same_order(
    ledger_dir: dict[str, Any], tmp_path: Path, change: Callable[[Rdict], None] | None
) -> None:
    path = copy(ledger_dir, tmp_path)
    if change is not None:
        tamper(path, change)
    for collect in (False, True):
        alone = run_audit(path, ledger_dir, collect=collect)
        pooled = run_audit(path, ledger_dir, collect=collect, workers=2)
        assert pooled.divergences == alone.divergences
        assert (pooled.entries, pooled.checkpoints, pooled.timestamps, pooled.tree_size) == (
            alone.entries, alone.checkpoints, alone.timestamps, alone.tree_size)  # fmt: skip
        assert pooled.clean == (change is None)


@pytest.mark.slow
def test_collect_names_every_divergence_and_the_cli_agrees(
    ledger_dir: dict[str, Any], tmp_path: Path
) -> None:
    path = copy(ledger_dir, tmp_path)
    tamper(path, _flip_tile)
    tamper(path, _drop_code_index)
    report = run_audit(path, ledger_dir, collect=True)
    assert {d.what for d in report.divergences} >= {"tile record", "index by code"}
    trust = ["--log-key", str(ledger_dir["vkey"]), "--tsa-root", str(ledger_dir["root"])]
    args = [sys.executable, "-m", "tools.cli", "audit", "--store", str(path), *trust]
    divergent = subprocess.run(
        [*args, "--collect", "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert divergent.returncode == 6, divergent.stderr
    clean_path = copy(ledger_dir, tmp_path / "clean")
    args[args.index(str(path))] = str(clean_path)
    clean = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "审计通过" in clean.stdout


@pytest.mark.slow
def test_signed_audit_reports(ledger_dir: dict[str, Any], tmp_path: Path) -> None:
    keys = tmp_path / "auditor"
    cli = [sys.executable, "-m", "tools.cli"]
    made = subprocess.run([*cli, "keys", "generate", "--out", str(keys)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert made.returncode == 0, made.stderr
    trust = ["--log-key", str(ledger_dir["vkey"]), "--tsa-root", str(ledger_dir["root"])]
    report = tmp_path / "report.json"
    clean = copy(ledger_dir, tmp_path / "c")
    audited = subprocess.run(
        [*cli, "audit", "--store", str(clean), *trust, "--sign-key", str(keys.with_suffix(".key")),
         "--auditor", "某鉴定机构", "--out", str(report)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert audited.returncode == 0, audited.stderr
    check = [sys.executable, "-m", "tools.cli", "verify", "--audit-report", str(report)]
    ok = subprocess.run([*check, "--auditor-key", str(keys.with_suffix(".pub"))],
                        capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "签名有效" in ok.stdout and "tree size 600" in ok.stdout
    document = json.loads(report.read_text())
    document["report"]["entries"] = 601  # a forged figure
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert subprocess.run([*check[:-1], str(forged)], capture_output=True, cwd=ROOT).returncode == 5
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "tools.cli", "keys", "generate", "--out", str(other)],
                   capture_output=True, cwd=ROOT, check=True)  # fmt: skip
    wrong = subprocess.run([*check, "--auditor-key", str(other.with_suffix(".pub"))],
                           capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert wrong.returncode == 5 and "another key" in wrong.stdout


@pytest.mark.slow
def test_incremental_audit_checks_only_what_is_new(
    ledger_dir: dict[str, Any], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(Path(ledger_dir["store"]).parent, data)
    first = run_audit(data / "ledger", ledger_dir)
    assert first.clean and first.state is not None
    state = AuditState.from_object(json.loads(json.dumps(first.state.to_object())))

    service = Service.open(ServiceConfig(data_dir=data, origin="audit.test/log"))
    service.start()
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k2", not_before=0)
    lender = Lender("lender-1", load_private_key(private), "k2")
    paths = []
    for i in range(50):
        paths.append(tmp_path / f"new-{i}.pdf")
        paths[-1].write_bytes(b"%%PDF new %d" % i)
    service.sequencer.append([lender.deposit(p) for p in paths[:25]])
    service.sequencer.append([lender.deposit(p) for p in paths[25:]])
    service.close()

    store = RocksStore(data / "ledger", read_only=True)
    try:
        log_key = NoteVerifier.parse(ledger_dir["vkey"])
        again = audit(store, log_key=log_key, tsa_roots=ledger_dir["roots"], resume=state)
    finally:
        store.close()
    assert again.clean, again.to_object()
    assert (again.entries, again.checkpoints, again.tree_size) == (50, 2, 650)

    # A rewritten old subtree is caught by the consistency proof, without replaying old leaves.
    tamper(data / "ledger", _flip_level_one_tile)
    store = RocksStore(data / "ledger", read_only=True)
    try:
        bad = audit(store, log_key=log_key, tsa_roots=ledger_dir["roots"], resume=state)
    finally:
        store.close()
    assert [d.what for d in bad.divergences][:1] == ["consistency with the last audit"]


def _flip_level_one_tile(db: Rdict) -> None:
    key = b"t" + struct.pack(">BQ", 1, 0)
    record = db[key]
    db[key] = bytes([record[0] ^ 1]) + record[1:]


@pytest.mark.slow
def test_cli_remembers_its_state(ledger_dir: dict[str, Any], tmp_path: Path) -> None:
    path = copy(ledger_dir, tmp_path)
    state = tmp_path / "state.json"
    trust = ["--log-key", str(ledger_dir["vkey"]), "--tsa-root", str(ledger_dir["root"])]
    args = [sys.executable, "-m", "tools.cli", "audit", "--store", str(path), *trust,
            "--state", str(state), "--json"]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["entries"] == 600 and state.exists()
    second = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["entries"] == 0  # nothing new since the last audit


def test_workers_open_the_store_again_and_look_the_indexes_up_themselves(
    ledger_dir: dict[str, Any], tmp_path: Path
) -> None:
    import verifier.audit as audit_module

    path = copy(ledger_dir, tmp_path)
    tamper(path, _drop_code_index)
    store = RocksStore(path, read_only=True)
    try:
        leaves = store.entries(0, 1000)
        recipe = store.reader_recipe()
    finally:
        store.close()
    try:
        audit_module._init_worker({}, recipe)
        keys, problems, indexed = audit_module._check_in_worker(0, leaves)
        assert indexed and len(keys) == 600
        assert ("index by code", "absent") in {(p[1], p[3]) for p in problems}
        audit_module._WORKER_SOURCE.clear()
        audit_module._init_worker({}, ("ledger.storage.rocksdb:RocksStore", (str(tmp_path / "no"),),
                                       {"read_only": True}))  # fmt: skip
        assert audit_module._WORKER_SOURCE == []  # cannot open: the parent looks them up
        assert audit_module._check_in_worker(0, leaves)[2] is False
    finally:
        for source in audit_module._WORKER_SOURCE:
            source.close()  # type: ignore[attr-defined]
        audit_module._WORKER_SOURCE.clear()
