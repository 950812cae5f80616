"""``cunzheng bench ledger``: what the ledger costs, measured against its ceilings and a peer.

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

from rich.console import Console
from rich.table import Table
from rocksdict import DBCompressionType, Options, Rdict, WriteBatch, WriteOptions

from ledger.checkpoint import NoteSigner
from ledger.entry import Deposit, Digest, Signature, Statement, format_time, meta_commitment
from ledger.log import Ledger
from ledger.merkle import NODE_HASH_PREFIX, leaf_hash
from ledger.sequencer import Receipt, Sequencer
from ledger.storage.rocksdb import RocksStore
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TiledTree, TileID, tile_width

__all__ = [
    "BenchConfig",
    "Figure",
    "Report",
    "Target",
    "render",
    "run_ledger_bench",
]

ORIGIN = "bench.cunzheng/log"
PYMERKLE_MAX_SIZE = 1_000_000
"""pymerkle is built and proved only at sizes up to this (its 10^7 build alone takes minutes)."""
HUGE_SIZE = 10_000_000
SECTIONS = ("deposits", "append", "ceiling", "hashing", "proofs", "tree", "pymerkle")
"""Every section of the report, in the order shown."""
SEED = 9162
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
        """Figures grouped by section, sections in :data:`SECTIONS` order."""
        grouped: dict[str, list[Figure]] = {s: [] for s in SECTIONS}
        for f in self.figures:
            grouped.setdefault(f.section, []).append(f)
        return {s: figures for s, figures in grouped.items() if figures}

    def to_json(self, *, machine: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        sections = {
            s: {f.name: f.to_json() for f in figures} for s, figures in self.by_section().items()
        }
        return {
            "benchmark": "ledger",
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


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "rocksdict": _version("rocksdict"),
        "pymerkle": _version("pymerkle"),
        "revision": source_revision(),
    }


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


# --- deposits ----------------------------------------------------------------------------------


def realistic_deposit(i: int, rng: random.Random) -> Deposit:
    """A loan-contract deposit as a lender sends it: private meta under a fresh salt."""
    salt = os.urandom(32)
    meta = {"file_name": f"借款合同-{i:08d}.pdf", "contract_no": f"HT2026{i:010d}"}
    statement = Statement.build(
        depositor="lender-1",
        kind="loan_contract",
        digest=Digest("sha256", hashlib.sha256(os.urandom(32)).digest()),
        size=rng.randrange(50_000, 5_000_000),
        media_type="application/pdf",
        captured_at=format_time(_CAPTURED_MS + 1000 * i),
        meta_commitment=meta_commitment(salt, meta),
    )
    sig = Signature("ed25519", "lender-key-1", os.urandom(64))
    return Deposit.create(statement, sig, meta=meta, salt=salt)


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


# --- output ------------------------------------------------------------------------------------


def _format(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2f}"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def render(report: Report, console: Console) -> None:
    """The figures as one table, section by section, then skipped sections and notes."""
    table = Table(title="cunzheng bench ledger")
    for column in ("figure", "value", "unit", "target"):
        table.add_column(column, justify="right" if column == "value" else "left", no_wrap=True)
    for section, figures in report.by_section().items():
        table.add_row(f"[bold]{section}[/]")
        for f in figures:
            target = ""
            if f.target is not None:
                ok = f.target.met(f.value)
                target = f"{f.target} [{'green' if ok else 'red'}]{'met' if ok else 'missed'}[/]"
            table.add_row(f"  {f.name}", _format(f.value, f.unit), f.unit, target)
        table.add_section()
    console.print(table)
    for name, reason in report.skipped.items():
        console.print(f"[yellow]skipped {name}:[/] {reason}")
    for note in report.notes:
        console.print(f"[dim]· {note}[/]")
