"""Full audit replay (DESIGN §7): rebuild the log from its leaves and check everything it claims.

From the first leaf on, the audit recomputes the tree and, at every checkpoint, its root; checks
each checkpoint's signature, its ``prev`` link and its RFC 3161 token (when it has one); checks
every entry (canonical form, deposit code, depositor signature by a key valid at receipt); and
checks that the stored tiles and the by-code and by-digest indexes agree with the entries. The
first divergence stops it (or all are collected), each named exactly: where, what, expected,
found.

The source is anything with the store's read methods (a store opened read-only, or later an HTTP
fetcher); this module imports no storage engine.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import functools
import hashlib
import importlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.canonical import jcs
from ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, split_note
from ledger.code import DepositCode
from ledger.entry import DIGEST_ALGORITHM_IDS, parse_entry
from ledger.errors import CunzhengError, InvalidInput, SignatureInvalid
from ledger.merkle import EMPTY_ROOT, CompactRange, consistency_plan, leaf_hash
from ledger.registry import Depositor, DepositorKey
from ledger.tiles import TiledTree, TileID, node_hashes, strata_reader

from .proof import verify_consistency
from .signature import PublicKey, load_public_key, verify_statement
from .timestamp import verify_token

__all__ = [
    "AuditReport",
    "AuditSource",
    "AuditState",
    "Divergence",
    "audit",
    "sign_report",
    "verify_report",
]

BATCH = 4096


class AuditSource(Protocol):
    def checkpoints(self, start: int = 0) -> Iterator[Any]: ...
    def entries(self, start: int, end: int) -> list[bytes]: ...
    def timestamp(self, size: int) -> bytes | None: ...
    def read_tiles(self, ids: Sequence[TileID]) -> list[bytes | None]: ...
    def indexes_by_code(self, code: bytes) -> list[int]: ...
    def indexes_by_digest(self, digest_key: bytes) -> list[int]: ...
    def record_list(self, kind: str, start: str = "") -> list[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Divergence:
    """One thing the log claims that the replay does not find."""

    where: str
    what: str
    expected: str
    found: str

    def to_object(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what, "expected": self.expected,
                "found": self.found}  # fmt: skip


@dataclass(slots=True)
class AuditReport:
    entries: int = 0
    """Entries replayed by this audit (only the new ones when it resumed)."""
    checkpoints: int = 0
    timestamps: int = 0
    tree_size: int = 0
    """Size of the last checkpoint replayed."""
    root_hash: bytes = EMPTY_ROOT
    divergences: list[Divergence] = field(default_factory=list)
    state: AuditState | None = None

    @property
    def clean(self) -> bool:
        return not self.divergences

    def to_object(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "timestamps": self.timestamps,
            "tree_size": self.tree_size,
            "root": base64.b64encode(self.root_hash).decode(),
            "divergences": [d.to_object() for d in self.divergences],
        }


class _Stop(Exception):
    pass


def audit(
    source: AuditSource,
    *,
    log_key: NoteVerifier,
    tsa_roots: Sequence[x509.Certificate],
    collect: bool = False,
    progress: Callable[[int, int], None] | None = None,
    resume: AuditState | None = None,
    workers: int = 1,
) -> AuditReport:
    """Replay the log in ``source``; see the module docstring for what is checked.

    With ``resume`` (the state a clean audit left), only what came after is replayed: the tree
    goes on from the remembered frontier, and a consistency proof from the remembered tree head
    to the new one shows that nothing before it was rewritten. ``report.state`` is the state to
    keep for next time (set when the audit is clean).

    With ``workers > 1`` the entries (canonical form, depositor signature, key window) are
    checked in that many worker processes while this one reads, hashes and rebuilds the tree;
    divergences are still reported in log order, the same as with one.
    """
    report = AuditReport()

    def diverge(where: str, what: str, expected: object, found: object) -> None:
        report.divergences.append(Divergence(where, what, str(expected), str(found)))
        if not collect:
            raise _Stop

    keys = _depositor_keys(source)
    heads = list(source.checkpoints(0 if resume is None else resume.checkpoint.size + 1))
    total = heads[-1].size if heads else 0
    tree = TiledTree.empty() if resume is None else resume.tree()
    tiles: dict[TileID, bytes] = {}
    previous: Checkpoint | None = None if resume is None else resume.checkpoint
    first = tree.size
    # Everything found is reported in log order: each batch's entry checks (which may still be
    # running in a worker) before the checkpoint that closes it.
    pending: deque[Callable[[], None]] = deque()

    def finish_batch(start: int, hashes: list[bytes], checked: Future[_Checked]) -> None:
        statement_keys, problems, indexed = checked.result()
        if not indexed:  # the worker could not open the source: look the indexes up here
            problems += _index_problems(source, start, hashes, statement_keys)
        for index, what, expected, found in problems:
            diverge(f"index {index}", what, expected, found)
        report.entries = start + len(hashes) - first
        if progress is not None:
            progress(start + len(hashes), total)

    def missing(index: int) -> None:
        diverge(f"index {index}", "entry", "present", "missing")
        raise _Stop

    checker = _EntryChecker(source, keys, workers)
    try:
        if resume is not None and heads:
            _check_consistency(source, resume, heads[-1].note, log_key, diverge)
        for head in heads:
            where = f"checkpoint {head.size}"
            found: list[tuple[str, object, object]] = []
            try:
                cp = open_checkpoint(head.note, [log_key]).checkpoint
            except CunzhengError as exc:
                found.append(("checkpoint signature", "a valid signature by the log key",
                              exc.message))  # fmt: skip
                pending.append(functools.partial(_report, diverge, where, found))
                continue
            if cp.size != head.size:
                found.append(("checkpoint size", head.size, cp.size))
            expected_prev = None if previous is None else previous.body_hash()
            if cp.prev != expected_prev:
                found.append(("prev link", _hex(expected_prev), _hex(cp.prev)))
            if previous is not None and (cp.time_ms or 0) < (previous.time_ms or 0):
                found.append(("time goes backwards", f">= {previous.time_ms}", cp.time_ms))
            pending.append(functools.partial(_report, diverge, where, found))
            found = []
            while tree.size < cp.size:
                start = tree.size
                leaves = source.entries(start, min(cp.size, start + BATCH))
                if not leaves:
                    pending.append(functools.partial(missing, start))
                    raise _Drain
                hashes = [leaf_hash(leaf) for leaf in leaves]
                pending.append(functools.partial(finish_batch, start, hashes,
                                                 checker.submit(start, leaves)))  # fmt: skip
                tiles.update(tree.extend(hashes))
                while len(pending) > checker.depth:
                    pending.popleft()()
            root = tree.root() if cp.size else EMPTY_ROOT
            if root != cp.root_hash:
                found.append(("root hash", root.hex(), cp.root_hash.hex()))
            token = source.timestamp(cp.size)
            stamped = False
            if token is not None:
                body, _ = split_note(head.note)
                try:
                    verify_token(token, digest=hashlib.sha256(body).digest(), roots=tsa_roots)
                    stamped = True
                except CunzhengError as exc:
                    found.append(("RFC 3161 token", "valid over the checkpoint body", exc.message))
            pending.append(functools.partial(_report, diverge, where, found))
            pending.append(functools.partial(_passed, report, cp, stamped))
            previous = cp
        while pending:
            pending.popleft()()
        ids = sorted(tiles)
        for tile, stored in zip(ids, source.read_tiles(ids), strict=True):
            if stored != tiles[tile]:
                shown = "missing" if stored is None else stored.hex()[:64] + "…"
                diverge(f"tile {tile.level}/{tile.index}", "tile record",
                        tiles[tile].hex()[:64] + "…", shown)  # fmt: skip
    except _Drain:
        try:
            while pending:
                pending.popleft()()
        except _Stop:
            pass
    except _Stop:
        pass
    finally:
        checker.close()
    if report.clean and previous is not None:
        report.state = AuditState(previous, tuple(tree.frontier.hashes), dict(tree.edges))
    return report


class _Drain(Exception):
    """The replay cannot go on: report what is pending, in order, then stop."""


def _report(
    diverge: Callable[[str, str, object, object], None],
    where: str,
    found: list[tuple[str, object, object]],
) -> None:
    for what, expected, got in found:
        diverge(where, what, expected, got)


def _passed(report: AuditReport, cp: Checkpoint, stamped: bool) -> None:
    report.checkpoints += 1
    report.timestamps += stamped
    report.tree_size, report.root_hash = cp.size, cp.root_hash


@dataclass(frozen=True, slots=True)
class AuditState:
    """What a clean audit remembers: the last checkpoint it checked, and the tree at it."""

    checkpoint: Checkpoint
    frontier: tuple[bytes, ...]
    edges: dict[int, bytes]

    def tree(self) -> TiledTree:
        return TiledTree(CompactRange(self.checkpoint.size, self.frontier), self.edges)

    def to_object(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {
            "v": 1,
            "checkpoint": self.checkpoint.body().decode(),
            "frontier": [b64(h).decode() for h in self.frontier],
            "edges": {str(k): b64(v).decode() for k, v in self.edges.items()},
        }

    @classmethod
    def from_object(cls, obj: Any) -> AuditState:
        try:
            state = cls(
                Checkpoint.parse(obj["checkpoint"].encode()),
                tuple(base64.b64decode(h, validate=True) for h in obj["frontier"]),
                {int(k): base64.b64decode(v, validate=True) for k, v in obj["edges"].items()},
            )
            if state.tree().root() != state.checkpoint.root_hash:
                raise InvalidInput("the audit state's frontier does not match its checkpoint")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"not an audit state: {exc}") from exc
        return state


def _check_consistency(
    source: AuditSource,
    resume: AuditState,
    note: bytes,
    log_key: NoteVerifier,
    diverge: Callable[[str, str, object, object], None],
) -> None:
    """The newest checkpoint must extend the one the last audit checked (RFC 9162 §2.1.4)."""
    old = resume.checkpoint
    try:
        new = open_checkpoint(note, [log_key]).checkpoint
        plan = consistency_plan(old.size, new.size)
        proof = plan.proof(node_hashes(plan.nodes, strata_reader(source.read_tiles)))
        verify_consistency(size1=old.size, size2=new.size, root1=old.root_hash,
                           root2=new.root_hash, path=proof)  # fmt: skip
    except CunzhengError as exc:
        diverge(f"checkpoint {old.size}", "consistency with the last audit", "a valid proof",
                exc.message)  # fmt: skip


def _hex(value: bytes | None) -> str:
    return "none" if value is None else value.hex()


def _depositor_keys(source: AuditSource) -> dict[tuple[str, str], DepositorKey]:
    keys = {}
    for _, raw in source.record_list("depositor"):
        depositor = Depositor.from_bytes(raw)
        for key in depositor.keys:
            keys[(depositor.id, key.key_id)] = key
    return keys


_Problem = tuple[int, str, str, str]
_Checked = tuple[list[bytes | None], list[_Problem], bool]
"""Per batch: each entry's statement key (``None`` if it does not parse), what failed, and
whether the indexes were looked up too."""


def check_entries(
    start: int, leaves: Sequence[bytes], keys: Mapping[tuple[str, str], DepositorKey]
) -> tuple[list[bytes | None], list[_Problem]]:
    """Check entries ``start, start + 1, …`` on their own: canonical form, depositor signature
    by a registered key, key valid at receipt. Pure, so it runs in a worker process too."""
    statement_keys: list[bytes | None] = []
    problems: list[_Problem] = []
    for index, leaf in enumerate(leaves, start):
        try:
            entry = parse_entry(leaf)
        except CunzhengError as exc:
            statement_keys.append(None)
            problems.append((index, "entry format", "a canonical entry", exc.message))
            continue
        statement = entry.statement
        statement_keys.append(statement.key)
        key = keys.get((statement.depositor, entry.sig.key_id))
        if key is None:
            problems.append((index, "depositor key", f"{statement.depositor}/{entry.sig.key_id}",
                             "unregistered"))  # fmt: skip
            continue
        try:
            verify_statement(statement.signed_hash, entry.sig.alg, entry.sig.value,
                             _public_key(key.public_key))  # fmt: skip
        except CunzhengError as exc:
            problems.append((index, "depositor signature", "valid", exc.message))
        received = int(dt.datetime.fromisoformat(entry.received_at).timestamp() * 1000)
        problem = key.problem_at(received)
        if problem is not None:
            window = f"[{key.not_before}, {key.not_after}) revoked at {key.revoked_at}"
            problems.append((index, "key valid at receipt", window, f"{problem} at {received}"))
    return statement_keys, problems


@functools.lru_cache(maxsize=1024)
def _public_key(pem: str) -> PublicKey:
    return load_public_key(pem.encode())


def _index_problems(
    source: AuditSource,
    start: int,
    hashes: Sequence[bytes],
    statement_keys: Sequence[bytes | None],
) -> list[_Problem]:
    """Each entry must be found under its deposit code and under its digest (its statement).

    A store answers for a whole batch at once (``indexes_by_statement``, ``codes_indexed``);
    any other source one lookup per entry.
    """
    codes_indexed = getattr(source, "codes_indexed", None)
    if codes_indexed is not None:
        present = codes_indexed([(h[:10], start + i) for i, h in enumerate(hashes)])
    else:
        present = [start + i in source.indexes_by_code(h[:10]) for i, h in enumerate(hashes)]
    by_statement = getattr(source, "indexes_by_statement", None)
    known = [k for k in statement_keys if k is not None]
    if by_statement is not None:
        found = iter(by_statement(known))
        digest_ok = [k is None or next(found) == start + i for i, k in enumerate(statement_keys)]
    else:
        digest_ok = [
            k is None or start + i in source.indexes_by_digest(k[:-16])
            for i, k in enumerate(statement_keys)
        ]
    problems: list[_Problem] = []
    for i, h in enumerate(hashes):
        index = start + i
        if not present[i]:
            problems.append((index, "index by code", f"{DepositCode(h[:10])} -> {index}",
                             "absent"))  # fmt: skip
        key = statement_keys[i]
        if not digest_ok[i] and key is not None:
            problems.append((index, "index by digest", f"{_digest_text(key)} -> {index}",
                             "absent"))  # fmt: skip
    return problems


def _digest_text(statement_key: bytes) -> str:
    alg = {v: k for k, v in DIGEST_ALGORITHM_IDS.items()}.get(statement_key[0], "?")
    return f"{alg}:{statement_key[1:-16].hex()}"


class _EntryChecker:
    """Runs :func:`check_entries` and the index lookups inline, or in worker processes
    (spawned: the parent holds a storage engine and its threads, which a fork would copy).

    A source that says how to open it again (``reader_recipe``: a read-only store directory, a
    server URL) is opened in each worker too, so the index lookups — random reads, the
    costliest part after the signatures — run there as well; otherwise they run here."""

    def __init__(
        self, source: AuditSource, keys: Mapping[tuple[str, str], DepositorKey], workers: int
    ) -> None:
        self.source = source
        self.keys = dict(keys)
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            recipe = getattr(source, "reader_recipe", None)
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.keys, recipe() if recipe is not None else None),
            )
        self.depth = 2 * workers + 1
        """Batches in flight before the oldest is waited for."""

    def submit(self, start: int, leaves: Sequence[bytes]) -> Future[_Checked]:
        if self.pool is not None:
            return self.pool.submit(_check_in_worker, start, list(leaves))
        done: Future[_Checked] = Future()
        statement_keys, problems = check_entries(start, leaves, self.keys)
        done.set_result((statement_keys, problems, False))
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


Recipe = tuple[str, tuple[Any, ...], dict[str, Any]]
"""How to open a source in another process: ``module:Class``, positional and keyword args."""

_WORKER_KEYS: dict[tuple[str, str], DepositorKey] = {}
_WORKER_SOURCE: list[AuditSource] = []


def _init_worker(keys: dict[tuple[str, str], DepositorKey], recipe: Recipe | None) -> None:
    _WORKER_KEYS.update(keys)
    if recipe is None:
        return
    where, args, kwargs = recipe
    module, _, name = where.partition(":")
    try:
        source = getattr(importlib.import_module(module), name)(*args, **kwargs)
    except Exception:
        return
    _WORKER_SOURCE.append(source)
    close = getattr(source, "close", None)
    if close is not None:
        atexit.register(close)


def _check_in_worker(start: int, leaves: list[bytes]) -> _Checked:
    statement_keys, problems = check_entries(start, leaves, _WORKER_KEYS)
    if not _WORKER_SOURCE:
        return statement_keys, problems, False
    hashes = [leaf_hash(leaf) for leaf in leaves]
    problems += _index_problems(_WORKER_SOURCE[0], start, hashes, statement_keys)
    return statement_keys, problems, True


def sign_report(
    report: AuditReport,
    *,
    auditor: str,
    key: Ed25519PrivateKey,
    log_vkey: str,
    audited_at: str,
) -> dict[str, Any]:
    """An audit report the auditor signs with its own Ed25519 key (over the JCS of the rest)."""
    body: dict[str, Any] = {
        "v": 1,
        "auditor": auditor,
        "audited_at": audited_at,
        "log": log_vkey,
        "report": report.to_object(),
    }  # fmt: skip
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body["signature"] = {
        "alg": "ed25519",
        "public_key": base64.b64encode(public).decode(),
        "value": base64.b64encode(key.sign(jcs(body))).decode(),
    }
    return body


def verify_report(document: Any, *, auditor_key: bytes | None = None) -> dict[str, Any]:
    """Check a signed audit report; ``auditor_key`` (raw Ed25519 public key) pins who signed.

    Returns the report; raises :class:`~ledger.errors.SignatureInvalid` (or ``InvalidInput``
    for a document that is not a signed audit report).
    """
    try:
        signature = document["signature"]
        body = {k: v for k, v in document.items() if k != "signature"}
        public = base64.b64decode(signature["public_key"], validate=True)
        value = base64.b64decode(signature["value"], validate=True)
        if signature["alg"] != "ed25519" or len(public) != 32:
            raise InvalidInput("an audit report is signed with Ed25519")
        report: dict[str, Any] = body["report"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not a signed audit report: {exc}") from exc
    if auditor_key is not None and auditor_key != public:
        raise SignatureInvalid("the report is signed by another key than the auditor's")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(value, jcs(body))
    except InvalidSignature as exc:
        raise SignatureInvalid("the audit report's signature does not verify") from exc
    return report
