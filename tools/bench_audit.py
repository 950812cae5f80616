"""``cunzheng bench audit``: the full audit replay's rate beside its ceilings, measured in one run.

A ledger of ``size`` realistic, really signed deposits is built through the service (registry,
admission, sequencer, the built-in TSA stamping checkpoints as it goes), closed, then audited
from the store opened read-only — everything :func:`verifier.audit.audit` checks, exactly as
``cunzheng audit --store`` does.

Ceilings over the same leaves, in the same run:

- **hashlib** — one leaf hash plus one 65-byte node hash per leaf on one core (the tree work an
  audit cannot avoid), as issue 6 states the target against;
- **signatures** — raw Ed25519 verification of the same signatures on every core (the
  ``cryptography`` call releases the GIL), the work a full audit cannot avoid either;
- **both** — the two combined (``1 / (1/hashlib + 1/signatures)``): the rate of an audit that did
  nothing but these two things, perfectly parallel.

The tree-only replay (roots of every checkpoint, tiles compared, no entry checks) is timed too,
so the report shows which part costs what.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import NoteVerifier
from ledger.entry import Deposit, Signature, parse_entry
from ledger.merkle import NODE_HASH_PREFIX
from ledger.storage.rocksdb import RocksStore
from ledger.tiles import TiledTree

from .bench import Report, Target, realistic_statement

__all__ = ["HUGE_SIZE", "AuditConfig", "run_audit_bench"]

Log = Callable[[str], None]

SECTIONS = ("audit", "ceiling", "ratios")
HUGE_SIZE = 10_000_000
DEPOSITOR = "lender-1"
KEY_ID = "lender-key-1"


@dataclass(frozen=True, slots=True)
class AuditConfig:
    size: int = 1_000_000
    block: int = 4096
    """Deposits per submitted chunk (the sequencer commits up to its max batch per block)."""
    workers: int = 0
    """Audit worker processes; 0: one per core."""
    seed: int = 6
    keep: Path | None = None
    """Keep the built ledger here, and audit it again without building when it is there."""
    work_dir: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "block": self.block, "workers": self.workers,
                "seed": self.seed, "keep": str(self.keep) if self.keep else None,
                "work_dir": str(self.work_dir) if self.work_dir else None}  # fmt: skip


def build_ledger(data: Path, config: AuditConfig, *, log: Log) -> tuple[Path, str, list[Any]]:
    """Deposit ``config.size`` signed statements through a service in ``data``.

    Returns the store directory, the log's vkey and the TSA roots.
    """
    from api.service import Service, ServiceConfig

    service = Service.open(ServiceConfig(data_dir=data, origin="bench.audit/log"))
    service.start()
    try:
        if not service.registry.all():
            service.registry.register(DEPOSITOR, "Bench Lender")
            key = Ed25519PrivateKey.generate()
            public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            service.registry.add_key(DEPOSITOR, public, key_id=KEY_ID, not_before=0)
            rng = random.Random(config.seed)  # noqa: S311 (sizes of fake files)
            started, done = time.perf_counter(), 0
            futures = []
            for start in range(0, config.size, config.block):
                chunk = []
                for i in range(start, min(config.size, start + config.block)):
                    statement, meta, salt = realistic_statement(i, rng)
                    sig = Signature("ed25519", KEY_ID, key.sign(statement.signed_hash))
                    chunk.append(Deposit.create(statement, sig, meta=meta, salt=salt))
                futures.append(service.sequencer.submit_many(chunk))
                while len(futures) > 8:
                    done += len(futures.pop(0).result())
            for f in futures:
                done += len(f.result())
            log(f"  built {done:,} deposits in {time.perf_counter() - started:.1f} s")
        deadline = time.monotonic() + 60
        while service.store.latest_timestamped() != service.ledger.head_size() and (
            time.monotonic() < deadline
        ):
            service.stamper.notify()
            time.sleep(0.05)
        vkey = service.ledger.signer.vkey
        roots = list(service.tsa_roots)
    finally:
        service.close()
    return data / "ledger", vkey, roots


def time_hashing(leaves: Sequence[bytes]) -> float:
    """Seconds for one leaf hash per leaf plus one 65-byte node hash, on one core."""
    sha256 = hashlib.sha256
    node = NODE_HASH_PREFIX + bytes(64)
    started = time.perf_counter()
    for leaf in leaves:
        sha256(b"\x00" + leaf).digest()
        sha256(node).digest()
    return time.perf_counter() - started


def time_signatures(checks: Sequence[tuple[bytes, bytes]], key: bytes, workers: int) -> float:
    """Seconds to verify every (message, signature) with raw Ed25519, on ``workers`` threads."""
    public = Ed25519PublicKey.from_public_bytes(key)

    def part(items: Sequence[tuple[bytes, bytes]]) -> None:
        verify = public.verify
        for message, signature in items:
            verify(signature, message)

    step = -(-len(checks) // workers)
    parts = [checks[i : i + step] for i in range(0, len(checks), step)]
    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        list(pool.map(part, parts))
        return time.perf_counter() - started


def time_tree_replay(store: RocksStore, size: int) -> float:
    """Seconds to read every leaf, rebuild the tree and tiles, and compare every root."""
    from ledger.merkle import leaf_hash

    started = time.perf_counter()
    tree = TiledTree.empty()
    for head in store.checkpoints(1):
        while tree.size < head.size:
            leaves = store.entries(tree.size, min(head.size, tree.size + 4096))
            tree.extend([leaf_hash(leaf) for leaf in leaves])
        tree.root()
    assert tree.size == size
    return time.perf_counter() - started


def run_audit_bench(config: AuditConfig, *, log: Log) -> Report:
    from verifier.audit import audit

    report = Report(benchmark="audit", order=SECTIONS)
    if config.work_dir is not None:
        config.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="cunzheng-bench-audit-", dir=config.work_dir))
    try:
        data = config.keep or root / "data"
        log(f"building a ledger of {config.size:,} signed deposits in {data}")
        path, vkey, roots = build_ledger(data, config, log=log)
        store = RocksStore(path, read_only=True)
        try:
            size = store.head().size  # type: ignore[union-attr]
            log("auditing")
            workers = config.workers or os.cpu_count() or 1
            started = time.perf_counter()
            result = audit(
                store, log_key=NoteVerifier.parse(vkey), tsa_roots=roots, workers=workers
            )
            audit_s = time.perf_counter() - started
            if not result.clean:
                raise RuntimeError(
                    f"the benchmark ledger does not audit clean: {result.divergences[:3]}"
                )
            log("tree-only replay")
            tree_s = time_tree_replay(store, size)
            leaves = store.entries(0, size)
        finally:
            store.close()
        log("ceilings")
        hash_s = min(time_hashing(leaves) for _ in range(3))
        entries = [parse_entry(leaf) for leaf in leaves[:100_000]]
        checks = [(e.statement.signed_hash, e.sig.value) for e in entries]
        key = _depositor_public_key(path)
        sig_s = min(time_signatures(checks, key, workers) for _ in range(2)) * size / len(checks)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rates = {
        "audit": size / audit_s,
        "tree_replay": size / tree_s,
        "hashlib": size / hash_s,
        "signatures": size / sig_s,
    }
    rates["combined"] = 1 / (1 / rates["hashlib"] + 1 / rates["signatures"])
    report.add("audit", "entries", size, "entries")
    report.add("audit", "checkpoints", result.checkpoints, "checkpoints")
    report.add("audit", "timestamps", result.timestamps, "tokens")
    report.add("audit", "workers", workers, "processes")
    report.add("audit", "audit_rate", rates["audit"], "entries/s")
    report.add("audit", "tree_replay_rate", rates["tree_replay"], "entries/s")
    report.add("ceiling", "hashlib_2_hashes_per_leaf", rates["hashlib"], "leaves/s")
    report.add("ceiling", "ed25519_verify_all_cores", rates["signatures"], "verifies/s")
    report.add("ceiling", "hashlib_plus_signatures", rates["combined"], "leaves/s")
    report.add("ratios", "audit_vs_hashlib", rates["audit"] / rates["hashlib"], "ratio",
               Target(">=", 0.45))  # fmt: skip
    report.add(
        "ratios", "audit_vs_hashlib_plus_signatures", rates["audit"] / rates["combined"], "ratio"
    )
    report.add("ratios", "tree_replay_vs_hashlib", rates["tree_replay"] / rates["hashlib"], "ratio")
    report.notes.append(
        "audit: everything `cunzheng audit --store` checks (roots, prev links, log signatures, "
        "RFC 3161 tokens, every entry's form, code, indexes and depositor signature and key "
        "window, every tile record). hashlib: one leaf hash and one node hash per leaf on one "
        "core; ed25519: raw cryptography verify of the same signatures (first 100,000, scaled) "
        "on every core; hashlib_plus_signatures: 1/(1/hashlib + 1/ed25519), what an audit doing "
        "nothing else could reach."
    )
    return report


def _depositor_public_key(path: Path) -> bytes:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from ledger.registry import Depositor

    store = RocksStore(path, read_only=True)
    try:
        ((_, raw),) = store.record_list("depositor")
    finally:
        store.close()
    pem = Depositor.from_bytes(raw).keys[0].public_key.encode()
    key = load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
