"""``cunzheng bench ledger`` and ``cunzheng bench crypto``: what the ledger and its cryptography
cost, measured against their ceilings and a peer.

``bench ledger``
================

One run measures, each on a fresh RocksDB directory under a temporary root:

1. **append** — realistic deposits (built and validated up front, their rate reported apart)
   through the real path: :class:`~ledger.sequencer.Sequencer` group commit over
   :class:`~ledger.storage.rocksdb.RocksStore`, every block durable (``sync=True``).
2. **ceiling** — the same bytes, replayed block by block into a bare rocksdict database as raw
   ``sync=True`` WriteBatches: what RocksDB alone costs, with no tree, index or signature work.
3. **hashing** — raw ``hashlib.sha256`` at the two hashes a leaf costs (its leaf hash and,
   amortised, one node hash), the CPU ceiling of any RFC 9162 log in Python.
4. **proofs** — inclusion and consistency proofs per second on ledgers of each size, in steady state
   (after a warm-up pass of as many random proofs).
5. **tree** — bytes of stored tile records per leaf, and of the C2SP tiles alone (stratum 0).
6. **pymerkle** — pymerkle 7.0.0 ``SqliteTree`` (the ``bench`` extra; GPL, so imported only here,
   lazily) on the same leaves, warmed the same way.

``bench crypto``
================

One run measures, for each depositor signature algorithm (RSA at 2048 and 3072 bits):

1. **verify** — :func:`verifier.signature.verify_statement` on realistic statements signed with
   :func:`tools.client.sign_statement`, beside the raw ``cryptography`` verify call (for SM2, the
   raw gmssl-pyx ``sm2_verify``) on the same hashes and signatures, and their ratio.
2. **admission** — :meth:`ledger.registry.Registry.admit` over a
   :class:`~ledger.storage.memory.MemoryStore` with :class:`verifier.signature.StatementKeys`, one
   deposit per call and in batches, each against the raw verify rate as its ceiling.

and for the RFC 3161 TSA with EC P-256 and RSA-3072 credentials:

3. **stamp** — :meth:`ledger.authority.TimeStampAuthority.stamp` tokens/s beside the raw signature
   over the same signed attributes with the same key (ECDSA / PKCS#1 v1.5, SHA-256).
4. **token verify** — :func:`verifier.timestamp.verify_token` beside the raw verify of the same
   signatures.

The calls compared are timed side by side, in interleaved rounds after a warm-up pass.

Figures are values with units; some carry a target. Nothing here asserts a timing: this is a
benchmark, not a test.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import importlib.metadata
import itertools
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rocksdict import DBCompressionType, Options, Rdict, WriteBatch, WriteOptions

from ledger.authority import FileSerials, TimeStampAuthority, TsaPrivateKey, issue_tsa_certificates
from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit, Digest, Signature, Statement, format_time, meta_commitment
from ledger.errors import InvalidKey
from ledger.log import Ledger
from ledger.merkle import NODE_HASH_PREFIX, leaf_hash
from ledger.registry import Registry
from ledger.sequencer import Receipt, Sequencer
from ledger.storage.memory import MemoryStore
from ledger.storage.rocksdb import RocksStore
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TiledTree, TileID, tile_width
from verifier.signature import (
    _SM2_SPKI_PREFIX,
    RSA_PSS_SALT_LENGTH,
    SM2_DEFAULT_ID,
    PublicKey,
    StatementKeys,
    _gmssl,
    verify_statement,
)
from verifier.timestamp import verify_token

from .client import RSA_GENERATED_BITS, SigningKey, generate_key, load_private_key, sign_statement

__all__ = [
    "CRYPTO_SECTIONS",
    "SIGNERS",
    "TSA_KEYS",
    "BenchConfig",
    "CryptoConfig",
    "Figure",
    "Report",
    "SignerSpec",
    "Target",
    "render",
    "run_crypto_bench",
    "run_ledger_bench",
]

ORIGIN = "bench.cunzheng/log"
PYMERKLE_MAX_SIZE = 1_000_000
"""pymerkle is built and proved only at sizes up to this (its 10^7 build alone takes minutes)."""
HUGE_SIZE = 10_000_000
SECTIONS = ("deposits", "append", "ceiling", "hashing", "proofs", "tree", "pymerkle")
"""Every section of the report, in the order shown."""
SEED = 9162
DEPOSITOR = "lender-1"
DEFAULT_MAX_DELAY: float = (Sequencer.__init__.__kwdefaults__ or {})["max_delay"]
"""The Sequencer's own default: how long its writer waits for more deposits to join a block."""

_U64 = struct.Struct(">Q")
_CAPTURED_MS = 1_795_000_000_000  # 2026-11-18, when the first benchmark contract was "captured"

Log = Callable[[str], None]


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A goal a figure is held against: ``value >= bound`` or ``value <= bound``."""

    op: Literal[">=", "<="]
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured value, with its unit and, optionally, its target."""

    section: str
    name: str
    value: float
    unit: str
    target: Target | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "unit": self.unit}
        if self.target is not None:
            out["target"] = str(self.target)
            out["met"] = self.target.met(self.value)
        return out


@dataclass(slots=True)
class Report:
    """Figures in the order measured, plus sections skipped (with why) and notes on method."""

    figures: list[Figure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    benchmark: str = "ledger"
    """Which benchmark: ``ledger`` or ``crypto`` (the JSON's ``benchmark``, the table's title)."""
    order: tuple[str, ...] = SECTIONS
    """Every section this benchmark can report, in the order shown."""

    def add(
        self, section: str, name: str, value: float, unit: str, target: Target | None = None
    ) -> float:
        """Record a figure; returns ``value`` so callers can derive ratios from it."""
        self.figures.append(Figure(section, name, value, unit, target))
        return value

    def value(self, section: str, name: str) -> float:
        for f in self.figures:
            if f.section == section and f.name == name:
                return f.value
        raise KeyError(f"no figure {section}.{name}")

    def by_section(self) -> dict[str, list[Figure]]:
        """Figures grouped by section, sections in :attr:`order`."""
        grouped: dict[str, list[Figure]] = {s: [] for s in self.order}
        for f in self.figures:
            grouped.setdefault(f.section, []).append(f)
        return {s: figures for s, figures in grouped.items() if figures}

    def to_json(self, *, machine: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        sections = {
            s: {f.name: f.to_json() for f in figures} for s, figures in self.by_section().items()
        }
        return {
            "benchmark": self.benchmark,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine,
            "parameters": parameters,
            "sections": sections,
            "skipped": self.skipped,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to measure. ``sizes`` are the proof-ledger sizes, smallest first."""

    appends: int = 200_000
    proofs: int = 20_000
    sizes: tuple[int, ...] = (10_000, 1_000_000)
    single: int = 1000
    """Deposits appended one at a time (one durable commit each), ours and pymerkle's."""
    max_batch: int = 8192
    chunk: int = 1000
    """Deposits per ``submit_many`` call."""
    work_dir: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "appends": self.appends,
            "proofs": self.proofs,
            "sizes": list(self.sizes),
            "single": self.single,
            "max_batch": self.max_batch,
            "chunk": self.chunk,
            "work_dir": str(self.work_dir) if self.work_dir else None,
        }


LEDGER_PACKAGES = ("rocksdict", "pymerkle")
CRYPTO_PACKAGES = ("cryptography", "gmssl-pyx", "asn1crypto")


def machine_info(packages: Sequence[str] = LEDGER_PACKAGES) -> dict[str, Any]:
    """Where the figures were measured, with the versions of ``packages`` (and, for
    ``cryptography``, of the OpenSSL it runs on)."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    info |= {package: _version(package) for package in packages}
    if "cryptography" in packages:
        from cryptography.hazmat.backends.openssl import backend

        info["openssl"] = backend.openssl_version_text()
    info["revision"] = source_revision()
    return info


def source_revision() -> str | None:
    """``git describe --always --dirty`` of this checkout, if it is one: figures are only
    comparable between known revisions."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- timing helpers ----------------------------------------------------------------------------


class _Timer:
    """Elapsed wall time of a ``with`` block, with the garbage collector quiet.

    Pre-built inputs (hundreds of thousands of deposits) are frozen out of the collector first, so
    its full passes over them — an artefact of the benchmark holding them — are not timed.
    """

    seconds: float = 0.0

    def __enter__(self) -> _Timer:
        gc.collect()
        gc.freeze()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        gc.unfreeze()


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def steady_seconds(passes: Sequence[Callable[[], object]], *, rounds: int) -> list[float]:
    """Seconds one call of each of ``passes`` takes in steady state, measured side by side.

    One untimed warm-up call of each, then ``rounds`` rounds timing one call of each in turn (the
    order reversed every other round, so that none always runs first); the median round of each.
    Interleaving exposes every pass to the same machine conditions, so ratios between them hold
    even when the machine's speed drifts during the run.
    """
    for run in passes:
        run()
    times: list[list[float]] = [[] for _ in passes]
    order = list(range(len(passes)))
    for r in range(rounds):
        for i in order if r % 2 == 0 else reversed(order):
            with _Timer() as timer:
                passes[i]()
            times[i].append(timer.seconds)
    return [statistics.median(t) for t in times]


# --- deposits ----------------------------------------------------------------------------------


def realistic_deposit(i: int, rng: random.Random) -> Deposit:
    """A loan-contract deposit as a lender sends it: private meta under a fresh salt."""
    statement, meta, salt = realistic_statement(i, rng)
    sig = Signature("ed25519", "lender-key-1", os.urandom(64))
    return Deposit.create(statement, sig, meta=meta, salt=salt)


def realistic_statement(i: int, rng: random.Random) -> tuple[Statement, dict[str, Any], bytes]:
    """A loan-contract statement by ``lender-1``, its private meta and the salt committing to it."""
    salt = os.urandom(32)
    meta = {"file_name": f"借款合同-{i:08d}.pdf", "contract_no": f"HT2026{i:010d}"}
    statement = Statement.build(
        depositor=DEPOSITOR,
        kind="loan_contract",
        digest=Digest("sha256", hashlib.sha256(os.urandom(32)).digest()),
        size=rng.randrange(50_000, 5_000_000),
        media_type="application/pdf",
        captured_at=format_time(_CAPTURED_MS + 1000 * i),
        meta_commitment=meta_commitment(salt, meta),
    )
    return statement, meta, salt


_SYNTHETIC_SIG = Signature("ed25519", "bench-key", bytes(64))
_SYNTHETIC_COMMITMENT = "0" * 64


def synthetic_deposit(i: int) -> Deposit:
    """A small valid deposit, distinct per ``i``, for filling proof ledgers fast."""
    statement = Statement.build(
        depositor="bench",
        kind="other",
        digest=Digest("sha256", hashlib.sha256(i.to_bytes(8, "big")).digest()),
        size=i,
        media_type="application/octet-stream",
        captured_at="2026-11-24T08:00:00Z",
        meta_commitment=_SYNTHETIC_COMMITMENT,
    )
    return Deposit.create(statement, _SYNTHETIC_SIG)


def _chunks(items: Sequence[Deposit], size: int) -> Iterator[Sequence[Deposit]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _open_ledger(path: Path) -> tuple[RocksStore, Ledger]:
    store = RocksStore(path)
    return store, Ledger.open(store, NoteSigner.generate(ORIGIN))


# --- 1. durable appends ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendRun:
    """One timed append run: its wall time and the blocks the Sequencer committed."""

    seconds: float
    blocks: int


def time_appends(
    path: Path, deposits: Sequence[Deposit], *, max_batch: int, chunk: int
) -> AppendRun:
    """Submit every chunk, then wait for every future: the timed window is the whole run."""
    store, ledger = _open_ledger(path)
    try:
        pending = max(len(deposits), 1_000_000)
        with Sequencer(ledger, max_batch=max_batch, max_pending=pending) as seq:
            with _Timer() as timer:
                futures = [seq.submit_many(c) for c in _chunks(deposits, chunk)]
                for f in futures:
                    f.result()
            blocks = seq.blocks
    finally:
        store.close()
    return AppendRun(timer.seconds, blocks)


def time_single_appends(path: Path, deposits: Sequence[Deposit], *, max_delay: float) -> float:
    """Seconds to append ``deposits`` one at a time, each waited for (one client, no overlap)."""
    store, ledger = _open_ledger(path)
    try:
        with Sequencer(ledger, max_delay=max_delay) as seq, _Timer() as timer:
            for d in deposits:
                seq.append([d])
    finally:
        store.close()
    return timer.seconds


# --- 2. the RocksDB ceiling --------------------------------------------------------------------

Batch = list[tuple[bytes, bytes]]


def read_back(path: Path) -> dict[bytes, dict[bytes, bytes]]:
    """Every key/value of a closed ledger directory, grouped by key prefix (see RocksStore)."""
    db = Rdict(str(path), options=Options(raw_mode=True))
    try:
        groups: dict[bytes, dict[bytes, bytes]] = {}
        # Raw mode: keys and values are bytes.
        for key, value in cast("Iterator[tuple[bytes, bytes]]", db.items()):
            groups.setdefault(key[:1], {})[key] = value
        return groups
    finally:
        db.close()


def replay_blocks(groups: dict[bytes, dict[bytes, bytes]]) -> tuple[list[Batch], list[bytes]]:
    """The WriteBatch of every appended block, rebuilt from what the ledger stored.

    Block boundaries are the checkpoint sizes. Per block, in ``RocksStore.commit``'s order:
    leaf, code-index and digest-index keys per entry, metas, the block's tile records (recomputed
    with :class:`~ledger.tiles.TiledTree` — edge tiles are rewritten as they grow, as the ledger
    does), then the checkpoint and the head. Returns the batches and every leaf, in order.
    """
    entries = groups[b"e"]
    leaves = [entries[k] for k in sorted(entries)]
    codes = {_U64.unpack(k[-8:])[0]: k for k in groups[b"c"]}
    digests = {_U64.unpack(v)[0]: k for k, v in groups[b"d"].items()}
    metas = {_U64.unpack(k[1:])[0]: v for k, v in groups.get(b"m", {}).items()}
    notes = {_U64.unpack(k[1:])[0]: v for k, v in groups[b"k"].items()}
    sizes = sorted(notes)
    tree = TiledTree.empty()
    final_tiles: dict[bytes, bytes] = {}
    batches: list[Batch] = []
    for old, new in itertools.pairwise(sizes):
        batch: Batch = []
        for i in range(old, new):
            index = _U64.pack(i)
            batch += [(b"e" + index, leaves[i]), (codes[i], b""), (digests[i], index)]
        batch += [(b"m" + _U64.pack(i), metas[i]) for i in range(old, new) if i in metas]
        tiles = tree.extend(leaf_hash(leaf) for leaf in leaves[old:new])
        for tile, record in tiles.items():
            key = b"t" + struct.pack(">BQ", tile.level, tile.index)
            final_tiles[key] = record
            batch.append((key, record))
        size = _U64.pack(new)
        batch += [(b"k" + size, notes[new]), (b"H", size)]
        batches.append(batch)
    if final_tiles != groups[b"t"]:
        raise RuntimeError("replayed tiles differ from the ledger's: the ceiling would not be fair")
    return batches, leaves


def time_raw_writes(path: Path, batches: Sequence[Batch]) -> float:
    """Seconds to write ``batches`` into a fresh raw-mode rocksdict DB, one synced batch each."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_compression_type(DBCompressionType.lz4())
    sync = WriteOptions()
    sync.sync = True
    db = Rdict(str(path), options=options)
    try:
        with _Timer() as timer:
            for items in batches:
                batch = WriteBatch(raw_mode=True)
                put = batch.put
                for key, value in items:
                    put(key, value)
                db.write(batch, sync)
    finally:
        db.close()
    return timer.seconds


# --- 3. hashing ceiling ------------------------------------------------------------------------


def time_hashing(leaves: Sequence[bytes]) -> float:
    """Seconds for one leaf hash per leaf plus one 65-byte node hash (amortised cost of a leaf)."""
    sha256 = hashlib.sha256
    node = NODE_HASH_PREFIX + bytes(64)
    with _Timer() as timer:
        for leaf in leaves:
            sha256(b"\x00" + leaf).digest()
            sha256(node).digest()
    return timer.seconds


# --- 4. proof ledgers --------------------------------------------------------------------------


def build_proof_ledger(
    path: Path, size: int, *, max_batch: int, log: Log
) -> tuple[RocksStore, Ledger, float]:
    """A ledger of ``size`` synthetic deposits, built through the Sequencer; also its build time.

    Deposits are made and submitted in chunks with a few futures in flight, so memory stays small
    at 10^7.
    """
    store, ledger = _open_ledger(path)
    chunk = 10_000
    in_flight: list[Future[list[Receipt]]] = []
    with Sequencer(ledger, max_batch=max_batch) as seq, _Timer() as timer:
        for start in range(0, size, chunk):
            deposits = [synthetic_deposit(i) for i in range(start, min(start + chunk, size))]
            in_flight.append(seq.submit_many(deposits))
            if len(in_flight) > 4:
                in_flight.pop(0).result()
            if start and start % 1_000_000 == 0:
                log(f"  … {start:,} of {size:,}")
        for f in in_flight:
            f.result()
    return store, ledger, timer.seconds


def _samples(size: int, count: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """Random leaf indexes in ``[0, size)`` and old tree sizes in ``[1, size)``."""
    indexes = [rng.randrange(size) for _ in range(count)]
    olds = [rng.randrange(1, size) if size > 1 else 1 for _ in range(count)]
    return indexes, olds


def time_calls(call: Callable[[int], object], args: Sequence[int]) -> float:
    """Seconds for ``call(a)`` over ``args``."""
    with _Timer() as timer:
        for a in args:
            call(a)
    return timer.seconds


def time_proofs(
    call: Callable[[int], object], *, warm: Sequence[int], timed: Sequence[int]
) -> float:
    """Proofs per second in steady state: one untimed pass over ``warm``, then ``timed``."""
    for a in warm:
        call(a)
    return _rate(len(timed), time_calls(call, timed))


# --- 5. tree bytes -----------------------------------------------------------------------------


def tile_ids(size: int) -> list[TileID]:
    """Every tile of the tree of ``size`` (full and partial), level by level."""
    ids = []
    level = 0
    while nodes := size >> (TILE_HEIGHT * level):
        ids += [TileID(level, i) for i in range(-(-nodes // TILE_WIDTH))]
        level += 1
    return ids


def tile_bytes(store: RocksStore, size: int) -> tuple[int, int]:
    """Bytes of the stored tile records of the tree of ``size``, and of their C2SP tiles."""
    stored = c2sp = 0
    ids = tile_ids(size)
    for start in range(0, len(ids), 4096):
        for tile, record in zip(
            ids[start : start + 4096], store.read_tiles(ids[start : start + 4096]), strict=True
        ):
            if record is None:
                raise RuntimeError(f"tile {tile.level}/{tile.index} is missing")
            stored += len(record)
            c2sp += 32 * tile_width(record)
    return stored, c2sp


# --- 6. pymerkle -------------------------------------------------------------------------------


def load_pymerkle() -> Any | None:
    """The pymerkle module, or ``None`` when the ``bench`` extra is not installed."""
    try:
        return importlib.import_module("pymerkle")
    except ImportError:
        return None


def pymerkle_tree(
    pymerkle: Any, path: Path, leaves: Iterator[Sequence[bytes]]
) -> tuple[Any, float]:
    """A pymerkle ``SqliteTree`` holding ``leaves`` (given in chunks), and the bulk-append time."""
    tree = pymerkle.SqliteTree(str(path))
    seconds = 0.0
    for chunk in leaves:
        with _Timer() as timer:
            tree.append_entries(chunk)
        seconds += timer.seconds
    return tree, seconds


def _stored_leaves(store: RocksStore, size: int, chunk: int = 100_000) -> Iterator[list[bytes]]:
    for start in range(0, size, chunk):
        yield store.entries(start, min(start + chunk, size))


# --- the run -----------------------------------------------------------------------------------


def run_ledger_bench(config: BenchConfig, *, log: Log) -> Report:
    """Measure everything in one run; temporary directories are removed before returning."""
    report = Report()
    rng = random.Random(SEED)  # noqa: S311 - benchmark sampling, not secrets
    pymerkle = load_pymerkle()
    if pymerkle is None:
        report.skipped["pymerkle"] = (
            "pymerkle is not installed; install the bench extra: pip install -e '.[bench]'"
        )
    with tempfile.TemporaryDirectory(prefix="cunzheng-bench-", dir=config.work_dir) as tmp:
        root = Path(tmp)
        leaves = _bench_appends(config, root, rng, report, log)
        if pymerkle is not None:
            _bench_pymerkle_appends(pymerkle, config, root, leaves, report, log)
        del leaves
        for size in config.sizes:
            _bench_size(size, config, root, rng, pymerkle, report, log)
    _ratios(config, report, pymerkle is not None)
    _method_notes(config, report)
    return report


def _bench_appends(
    config: BenchConfig, root: Path, rng: random.Random, report: Report, log: Log
) -> list[bytes]:
    """Sections deposits, append, ceiling and hashing; returns the leaves the ledger wrote."""
    n = config.appends
    log(f"building {n:,} realistic deposits")
    with _Timer() as timer:
        deposits = [realistic_deposit(i, rng) for i in range(n)]
    report.add("deposits", "build_and_validate", _rate(n, timer.seconds), "deposits/s")

    log(f"appending {n:,} deposits through the Sequencer (max_batch {config.max_batch:,})")
    run = time_appends(root / "append", deposits, max_batch=config.max_batch, chunk=config.chunk)
    report.add("append", "durable_appends", _rate(n, run.seconds), "appends/s")
    report.add("append", "seconds", run.seconds, "s")
    report.add("append", "blocks", run.blocks, "blocks")
    report.add("append", "mean_block_size", n / run.blocks, "entries")

    single = deposits[: config.single]
    log(f"appending {len(single):,} deposits one at a time")
    for name, delay in (("single_appends", DEFAULT_MAX_DELAY), ("single_appends_no_delay", 0.0)):
        seconds = time_single_appends(root / name, single, max_delay=delay)
        report.add("append", name, _rate(len(single), seconds), "appends/s")
    del deposits, single

    log("replaying the same bytes into a bare RocksDB (the ceiling)")
    batches, leaves = replay_blocks(read_back(root / "append"))
    seconds = time_raw_writes(root / "ceiling", batches)
    written = sum(len(k) + len(v) for b in batches for k, v in b)
    report.add("ceiling", "raw_writebatch_entries", _rate(n, seconds), "entries/s")
    report.add("ceiling", "batches", len(batches), "batches")
    report.add("ceiling", "bytes_written", written, "B")
    report.add("ceiling", "write_throughput", written / seconds / 1e6, "MB/s")
    report.add(
        "ceiling",
        "ledger_to_ceiling",
        report.value("append", "durable_appends")
        / report.value("ceiling", "raw_writebatch_entries"),
        "ratio",
        Target(">=", 0.15),
    )
    del batches

    log("hashing ceiling")
    seconds = time_hashing(leaves)
    report.add("hashing", "sha256_two_per_leaf", _rate(len(leaves), seconds), "leaves/s")
    report.add("hashing", "mean_leaf_bytes", sum(map(len, leaves)) / len(leaves), "B")
    report.add(
        "hashing",
        "ledger_to_hashing",
        report.value("append", "durable_appends") / report.value("hashing", "sha256_two_per_leaf"),
        "ratio",
    )
    return leaves


def _bench_pymerkle_appends(
    pymerkle: Any, config: BenchConfig, root: Path, leaves: list[bytes], report: Report, log: Log
) -> None:
    """pymerkle bulk ``append_entries`` of the same leaves, and single ``append_entry`` calls."""
    log(f"pymerkle: bulk append of the same {len(leaves):,} leaves")
    tree, seconds = pymerkle_tree(pymerkle, root / "pymerkle-append.db", iter([leaves]))
    tree.close()
    report.add("pymerkle", "bulk_appends", _rate(len(leaves), seconds), "appends/s")
    single = leaves[: config.single]
    tree = pymerkle.SqliteTree(str(root / "pymerkle-single.db"))
    try:
        seconds = time_calls(lambda i: tree.append_entry(single[i]), range(len(single)))
    finally:
        tree.close()
    report.add("pymerkle", "single_appends", _rate(len(single), seconds), "appends/s")


def _bench_size(
    size: int,
    config: BenchConfig,
    root: Path,
    rng: random.Random,
    pymerkle: Any | None,
    report: Report,
    log: Log,
) -> None:
    """Sections proofs and tree at one ledger size, and pymerkle's proofs at that size."""
    log(f"building a ledger of {size:,} leaves")
    store, ledger, seconds = build_proof_ledger(
        root / f"proofs-{size}", size, max_batch=config.max_batch, log=log
    )
    try:
        report.add("proofs", f"build_{size}", _rate(size, seconds), "appends/s")
        warm_index, warm_old = _samples(size, config.proofs, rng)
        index, old = _samples(size, config.proofs, rng)
        log(f"  {config.proofs:,} inclusion and consistency proofs (after as many to warm up)")
        inclusion = time_proofs(
            lambda i: ledger.inclusion_proof(i, size), warm=warm_index, timed=index
        )
        consistency = time_proofs(
            lambda m: ledger.consistency_proof(m, size), warm=warm_old, timed=old
        )
        report.add("proofs", f"inclusion_{size}", inclusion, "proofs/s")
        report.add("proofs", f"consistency_{size}", consistency, "proofs/s")

        stored, c2sp = tile_bytes(store, size)
        report.add(
            "tree", f"stored_bytes_per_leaf_{size}", stored / size, "B/leaf", Target("<=", 40)
        )
        report.add("tree", f"c2sp_bytes_per_leaf_{size}", c2sp / size, "B/leaf")

        if pymerkle is not None and size <= PYMERKLE_MAX_SIZE:
            _bench_pymerkle_proofs(
                pymerkle, size, store, ledger, root, (warm_index, index), report, log
            )
    finally:
        store.close()
        # Free the disk now: a 10^7 ledger is gigabytes.
        shutil.rmtree(root / f"proofs-{size}")
        (root / f"pymerkle-proofs-{size}.db").unlink(missing_ok=True)


def _bench_pymerkle_proofs(
    pymerkle: Any,
    size: int,
    store: RocksStore,
    ledger: Ledger,
    root: Path,
    samples: tuple[list[int], list[int]],
    report: Report,
    log: Log,
) -> None:
    """pymerkle ``prove_inclusion`` on a SqliteTree of the same leaves, warmed the same way."""
    log(f"  pymerkle: {size:,} leaves, then {len(samples[1]):,} inclusion proofs")
    tree, seconds = pymerkle_tree(
        pymerkle, root / f"pymerkle-proofs-{size}.db", _stored_leaves(store, size)
    )
    try:
        report.add("pymerkle", f"build_{size}", _rate(size, seconds), "appends/s")
        warm, timed = samples
        # pymerkle indexes leaves from 1.
        rate = time_proofs(
            lambda i: tree.prove_inclusion(i + 1, size),
            warm=warm,
            timed=timed,
        )
        report.add("pymerkle", f"inclusion_{size}", rate, "proofs/s")
        if tree.get_root(size) != ledger.root(size):
            raise RuntimeError(f"pymerkle and the ledger disagree on the root of size {size}")
    finally:
        tree.close()


def _ratios(config: BenchConfig, report: Report, with_pymerkle: bool) -> None:
    """How proof rates hold up as the tree grows; ours against pymerkle's."""
    small = config.sizes[0]
    for size in config.sizes[1:]:
        for kind in ("inclusion", "consistency"):
            slowdown = report.value("proofs", f"{kind}_{small}") / report.value(
                "proofs", f"{kind}_{size}"
            )
            target = Target("<=", 1.5) if size <= PYMERKLE_MAX_SIZE else None
            report.add("proofs", f"{kind}_slowdown_{small}_to_{size}", slowdown, "ratio", target)
    if not with_pymerkle:
        return
    # (figure name, ours, pymerkle's figure, target)
    pairs = [
        (
            "bulk_appends",
            report.value("append", "durable_appends"),
            "bulk_appends",
            Target(">=", 10),
        ),
        ("single_appends", report.value("append", "single_appends"), "single_appends", None),
        (
            "single_appends_no_delay",
            report.value("append", "single_appends_no_delay"),
            "single_appends",
            None,
        ),
    ]
    pairs += [
        (
            f"inclusion_{s}",
            report.value("proofs", f"inclusion_{s}"),
            f"inclusion_{s}",
            Target(">=", 10),
        )
        for s in config.sizes
        if s <= PYMERKLE_MAX_SIZE
    ]
    for name, ours, theirs, target in pairs:
        ratio = ours / report.value("pymerkle", theirs)
        report.add("pymerkle", f"ours_to_pymerkle_{name}", ratio, "ratio", target)


def _method_notes(config: BenchConfig, report: Report) -> None:
    report.notes += [
        "append: realistic loan_contract deposits (meta + 32-byte salt, ed25519-sized signature), "
        f"submitted in chunks of {config.chunk:,}, all submitted before any is awaited; every "
        "block is one sync=True WriteBatch.",
        "single_appends: one client appending and waiting for each, with the Sequencer's default "
        f"max_delay ({DEFAULT_MAX_DELAY * 1000:g} ms, which its writer waits for company before "
        "each block); single_appends_no_delay: the same with max_delay=0.",
        "ceiling: the append ledger's own blocks (same keys, values and block boundaries, tiles "
        "recomputed and checked equal to the stored ones) written as raw sync=True WriteBatches "
        "into a fresh rocksdict DB (raw mode, lz4).",
        "hashing: SHA-256 of 0x00||leaf plus one 65-byte node hash per leaf, over the same leaves.",
        "proofs: random index (inclusion) or old size (consistency) against the full tree; the "
        f"rate is steady state, timed over {config.proofs:,} calls after an untimed warm-up pass "
        "of as many other random calls. Ledgers are built through the Sequencer from small "
        "synthetic deposits.",
        "tree: stored = tile records (strata 0, 3, 6) of every tile level; c2sp = stratum 0 only.",
        "pymerkle 7.0.0 SqliteTree: same leaves; bulk = append_entries in one transaction, "
        "single = append_entry (one commit each); prove_inclusion(index + 1, size) warmed "
        "exactly as ours (same warm-up and timed indexes); its root is checked equal to ours. "
        f"Not built above {PYMERKLE_MAX_SIZE:,} leaves.",
        "The garbage collector is run and pre-built inputs frozen out of it before each timing.",
    ]


# --- crypto: depositor signatures and time-stamp tokens ---------------------------------------


@dataclass(frozen=True, slots=True)
class SignerSpec:
    """A depositor signature algorithm as measured: its section name, algorithm and key size."""

    section: str
    alg: str
    bits: int | None = None
    """RSA modulus size; ``None`` for the fixed-size curves."""


SIGNERS = (
    SignerSpec("ed25519", "ed25519"),
    SignerSpec("ecdsa-p256-sha256", "ecdsa-p256-sha256"),
    SignerSpec("rsa-pss-sha256-2048", "rsa-pss-sha256", 2048),
    SignerSpec("rsa-pss-sha256-3072", "rsa-pss-sha256", 3072),
    SignerSpec("rsa-pkcs1v15-sha256-2048", "rsa-pkcs1v15-sha256", 2048),
    SignerSpec("rsa-pkcs1v15-sha256-3072", "rsa-pkcs1v15-sha256", 3072),
    SignerSpec("sm2-sm3", "sm2-sm3"),
)
"""Every depositor algorithm ``bench crypto`` measures, in the order shown."""
TSA_KEYS: tuple[tuple[str, Literal["ec", "rsa"]], ...] = (
    ("tsa-ecdsa-p256", "ec"),
    ("tsa-rsa-3072", "rsa"),
)
"""The TSA credentials measured: section name and ``issue_tsa_certificates`` key type."""
CRYPTO_SECTIONS = tuple(s.section for s in SIGNERS) + tuple(name for name, _ in TSA_KEYS)
"""Every section of the ``bench crypto`` report, in the order shown."""
SERIALS = "FileSerials(block=1000) in the temporary directory"
"""Where ``bench crypto``'s TSA takes its token serial numbers from (reported with the figures)."""


@dataclass(frozen=True, slots=True)
class CryptoConfig:
    """What ``bench crypto`` measures; every timed pass goes over all ``statements`` (or
    ``tokens``)."""

    statements: int = 1000
    """Signed deposits per depositor algorithm."""
    batch: int = 1000
    """Deposits per ``Registry.admit`` call in the batch figure (at most ``statements``)."""
    tokens: int = 300
    """Time-stamp tokens per pass, per TSA key."""
    rounds: int = 5
    """Timed rounds after the warm-up pass; the median round is reported."""
    work_dir: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "batch": self.batch,
            "tokens": self.tokens,
            "rounds": self.rounds,
            "serials": SERIALS,
            "work_dir": str(self.work_dir) if self.work_dir else None,
        }


def depositor_key(spec: SignerSpec) -> tuple[SigningKey, bytes]:
    """A new private key for ``spec`` (through :func:`tools.client.load_private_key`, as a lender
    loads one) and its public key PEM."""
    if spec.bits is None or spec.bits == RSA_GENERATED_BITS:
        private_pem, public_pem = generate_key(spec.alg)
    else:
        native = rsa.generate_private_key(public_exponent=65537, key_size=spec.bits)
        private_pem = native.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = native.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return load_private_key(private_pem), public_pem


def raw_verify_pass(
    alg: str, key: PublicKey, signed: Sequence[tuple[bytes, bytes]]
) -> Callable[[], None]:
    """One pass of the bare library verify call over ``signed`` (statement hash, signature).

    What :func:`~verifier.signature.verify_statement` calls in the end — ``cryptography``'s
    ``verify`` with the hash prehashed (padding and algorithm objects made once, outside the loop)
    or gmssl-pyx ``sm2_verify`` with the default ID — and nothing else.
    """
    if alg == "sm2-sm3":
        sm2_verify = _gmssl().sm2_verify
        point = key.spki[len(_SM2_SPKI_PREFIX) :]

        def sm2() -> None:
            for h, value in signed:
                if not sm2_verify(point, h, value, SM2_DEFAULT_ID):
                    raise RuntimeError("an SM2 signature does not verify")

        return sm2
    native = serialization.load_der_public_key(key.spki)
    if isinstance(native, Ed25519PublicKey):
        ed_verify = native.verify

        def ed25519() -> None:
            for h, value in signed:
                ed_verify(value, h)

        return ed25519
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(native, ec.EllipticCurvePublicKey):
        ec_verify, ecdsa = native.verify, ec.ECDSA(prehashed)

        def ecdsa_p256() -> None:
            for h, value in signed:
                ec_verify(value, h, ecdsa)

        return ecdsa_p256
    if isinstance(native, rsa.RSAPublicKey):
        rsa_verify = native.verify
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=RSA_PSS_SALT_LENGTH)
            if alg == "rsa-pss-sha256"
            else padding.PKCS1v15()
        )

        def rsa_any() -> None:
            for h, value in signed:
                rsa_verify(value, h, pad, prehashed)

        return rsa_any
    raise TypeError(f"no raw verify for {alg} with a {type(native).__name__}")


def _bench_signer(
    spec: SignerSpec,
    key: tuple[SigningKey, bytes],
    config: CryptoConfig,
    rng: random.Random,
    report: Report,
    log: Log,
) -> None:
    """One depositor algorithm: verify_statement and Registry.admit against the raw verify."""
    section, n = spec.section, config.statements
    private, public_pem = key
    registry = Registry(MemoryStore(), StatementKeys(), clock=lambda: _CAPTURED_MS)
    registry.register(DEPOSITOR, "Bench Lender")
    key_id = registry.add_key(DEPOSITOR, public_pem).key_id
    at = _CAPTURED_MS + 1

    log(f"{section}: signing {n:,} statements")
    statements = [realistic_statement(i, rng) for i in range(n)]
    with _Timer() as timer:
        sigs = [sign_statement(s, private, alg=spec.alg, key_id=key_id) for s, _, _ in statements]
    report.add(section, "sign_statement", _rate(n, timer.seconds), "signatures/s")
    deposits = [
        Deposit.create(s, sig, meta=meta, salt=salt)
        for (s, meta, salt), sig in zip(statements, sigs, strict=True)
    ]
    signed = [(d.statement.signed_hash, d.sig.value) for d in deposits]
    public, alg = private.public_key, spec.alg
    admit = registry.admit
    batch = min(config.batch, n)

    def ours() -> None:
        for h, value in signed:
            verify_statement(h, alg, value, public)

    def single() -> None:
        for d in deposits:
            admit([d], at)

    def batched() -> None:
        for chunk in _chunks(deposits, batch):
            admit(chunk, at)

    log(f"{section}: verify and admit, {_rounds(config.rounds)} of {n:,}")
    seconds = steady_seconds(
        [ours, raw_verify_pass(alg, public, signed), single, batched], rounds=config.rounds
    )
    verify, raw, one, many = (_rate(n, s) for s in seconds)
    report.add(section, "signature_bytes", sum(len(v) for _, v in signed) / n, "B")
    report.add(section, "verify_statement", verify, "verifications/s")
    report.add(section, "raw_verify", raw, "verifications/s")
    report.add(section, "verify_to_raw", verify / raw, "ratio")
    report.add(section, "admit_single", one, "deposits/s")
    report.add(section, "admit_batch", many, "deposits/s")
    report.add(section, "admit_single_to_raw", one / raw, "ratio")
    report.add(section, "admit_batch_to_raw", many / raw, "ratio")


def signed_attributes(token: bytes) -> tuple[bytes, bytes]:
    """What a token's signature covers — its signed attributes as a DER ``SET OF`` (RFC 5652
    §5.4: the ``[0] IMPLICIT`` tag swapped for ``SET``) — and the signature."""
    from asn1crypto import cms  # no type information: kept to this function

    signer_info = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    attributes = bytes(signer_info["signed_attrs"].dump())
    if attributes[0] != 0xA0:
        raise RuntimeError(f"signed attributes start with tag {attributes[0]:#x}, want [0]")
    return b"\x31" + attributes[1:], bytes(signer_info["signature"].native)


def raw_tsa_passes(
    private_key: TsaPrivateKey, signed: Sequence[tuple[bytes, bytes]]
) -> tuple[Callable[[], None], Callable[[], None]]:
    """The bare ``cryptography`` sign and verify calls a token costs, each over every (signed
    attributes, signature) of ``signed``: ECDSA with SHA-256 or RSA PKCS#1 v1.5 with SHA-256."""
    sha256 = hashes.SHA256()
    public_key = private_key.public_key()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        ec_sign, ec_verify, ecdsa = private_key.sign, public_key.verify, ec.ECDSA(sha256)

        def ec_signs() -> None:
            for attributes, _ in signed:
                ec_sign(attributes, ecdsa)

        def ec_verifies() -> None:
            for attributes, signature in signed:
                ec_verify(signature, attributes, ecdsa)

        return ec_signs, ec_verifies
    assert isinstance(public_key, rsa.RSAPublicKey)
    rsa_sign, rsa_verify, pkcs1 = private_key.sign, public_key.verify, padding.PKCS1v15()

    def rsa_signs() -> None:
        for attributes, _ in signed:
            rsa_sign(attributes, pkcs1, sha256)

    def rsa_verifies() -> None:
        for attributes, signature in signed:
            rsa_verify(signature, attributes, pkcs1, sha256)

    return rsa_signs, rsa_verifies


def _bench_tsa(
    section: str,
    key_type: Literal["ec", "rsa"],
    config: CryptoConfig,
    root: Path,
    rng: random.Random,
    report: Report,
    log: Log,
) -> None:
    """One TSA credential: stamp and verify_token against the raw sign and verify."""
    n = config.tokens
    log(f"{section}: issuing credentials, then {_rounds(config.rounds)} of {n:,} tokens")
    credentials = issue_tsa_certificates(name="cunzheng bench", key_type=key_type)
    roots = [credentials.root]
    requests = [(os.urandom(32), rng.getrandbits(64)) for _ in range(n)]
    with FileSerials(root / f"{section}.serials") as serials:
        tsa = TimeStampAuthority(
            certificate=credentials.certificate,
            private_key=credentials.private_key,
            serials=serials,
        )
        stamp = tsa.stamp
        # The tokens verified, and whose signed attributes the raw calls sign and verify.
        tokens = [stamp(d, nonce=nonce, cert_req=True) for d, nonce in requests]
        signed = [signed_attributes(t) for t in tokens]
        raw_sign, raw_verify = raw_tsa_passes(credentials.private_key, signed)
        checks = [(t, d, nonce) for t, (d, nonce) in zip(tokens, requests, strict=True)]

        def stamps() -> None:
            for d, nonce in requests:
                stamp(d, nonce=nonce, cert_req=True)

        def verifies() -> None:
            for token, d, nonce in checks:
                verify_token(token, digest=d, roots=roots, nonce=nonce)

        seconds = steady_seconds([stamps, raw_sign, verifies, raw_verify], rounds=config.rounds)
    made, sign, checked, verify = (_rate(n, s) for s in seconds)
    report.add(section, "token_bytes", sum(map(len, tokens)) / n, "B")
    report.add(section, "stamp", made, "tokens/s")
    report.add(section, "raw_sign", sign, "signatures/s")
    report.add(section, "stamp_to_raw", made / sign, "ratio")
    report.add(section, "verify_token", checked, "tokens/s")
    report.add(section, "raw_verify", verify, "verifications/s")
    report.add(section, "verify_token_to_raw", checked / verify, "ratio")


def run_crypto_bench(config: CryptoConfig, *, log: Log) -> Report:
    """Measure every depositor algorithm and both TSA keys; the serial file is removed after."""
    report = Report(benchmark="crypto", order=CRYPTO_SECTIONS)
    rng = random.Random(SEED)  # noqa: S311 - benchmark sampling, not secrets
    keys: dict[tuple[str, int | None], tuple[SigningKey, bytes]] = {}
    for spec in SIGNERS:
        family = "rsa" if spec.bits is not None else spec.alg
        try:
            if (family, spec.bits) not in keys:  # both RSA paddings sign with one key of a size
                keys[family, spec.bits] = depositor_key(spec)
        except InvalidKey as exc:  # SM2 without gmssl-pyx
            report.skipped[spec.section] = exc.message
            continue
        _bench_signer(spec, keys[family, spec.bits], config, rng, report, log)
    with tempfile.TemporaryDirectory(prefix="cunzheng-bench-", dir=config.work_dir) as tmp:
        for section, key_type in TSA_KEYS:
            _bench_tsa(section, key_type, config, Path(tmp), rng, report, log)
    _crypto_notes(config, report)
    return report


def _rounds(count: int) -> str:
    return f"{count} round{'s' if count != 1 else ''}"


def _crypto_notes(config: CryptoConfig, report: Report) -> None:
    batch = min(config.batch, config.statements)
    report.notes += [
        f"Rates: {config.statements:,} statements (or {config.tokens:,} tokens) per pass; one "
        f"untimed warm-up pass of each call, then {_rounds(config.rounds)} timing one pass of "
        "each in turn (order reversed every other round); the median round. Each ratio divides "
        "two figures of those same rounds.",
        "Statements: realistic loan_contract statements by one depositor, signed with "
        "tools.client.sign_statement; the sign_statement rate is one pass without warm-up and "
        "includes the check of each signature against the public key that sign_statement makes. "
        "RSA keys: one key per size, shared by both paddings.",
        "verify_statement(h, alg, signature, key) with h = the statement's SHA-256, precomputed; "
        "raw_verify: the same h and signatures through cryptography's key.verify (Prehashed "
        "SHA-256; PSS salt 32; padding objects made once), or gmssl_pyx.sm2_verify(point, h, "
        "signature, default ID) for SM2.",
        "admit: ledger.registry.Registry(MemoryStore(), StatementKeys()) holding the one depositor "
        "and its key; admit_single = admit([deposit], at) per deposit (reads and parses the "
        f"depositor record every call), admit_batch = admit() on {batch:,} deposits at a time; "
        "both hash each statement. Their ceiling is raw_verify.",
        "TSA: issue_tsa_certificates (root and TSA certificate, EC P-256 or RSA-3072); "
        "stamp(sha256 digest, nonce=random 64-bit, cert_req=True) with the default clock and "
        f"accuracy; serials from {SERIALS} (one fsynced reservation per 1,000 tokens, timed "
        "with the rest). raw_sign: the TSA key signing the signed attributes of tokens made in "
        "this run (ECDSA SHA-256 / RSA PKCS#1 v1.5 SHA-256).",
        "verify_token(token, digest, roots=[root], nonce): every check, chain building included, "
        "on tokens carrying the TSA certificate; raw_verify: the TSA certificate's key verifying "
        "the same signatures over the same signed attributes.",
        "The garbage collector is run and inputs frozen out of it before each timed pass.",
    ]


# --- output ------------------------------------------------------------------------------------


def _format(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2f}"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def render(report: Report, console: Console) -> None:
    """The figures as one table, section by section, then skipped sections and notes."""
    table = Table(title=f"cunzheng bench {report.benchmark}")
    targets = any(f.target is not None for f in report.figures)
    for column in ("figure", "value", "unit", "target")[: 4 if targets else 3]:
        table.add_column(column, justify="right" if column == "value" else "left", no_wrap=True)
    for section, figures in report.by_section().items():
        table.add_row(f"[bold]{section}[/]")
        for f in figures:
            cells = [f"  {f.name}", _format(f.value, f.unit), f.unit]
            if f.target is not None:  # cells left off are blank
                ok = f.target.met(f.value)
                mark = f"[{'green' if ok else 'red'}]{'met' if ok else 'missed'}[/]"
                cells.append(f"{f.target} {mark}")
            table.add_row(*cells)
        table.add_section()
    console.print(table)
    for name, reason in report.skipped.items():
        console.print(f"[yellow]skipped {name}:[/] {escape(reason)}")
    for note in report.notes:
        console.print(f"[dim]· {escape(note)}[/]")
