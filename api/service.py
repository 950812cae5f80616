"""The running depository: store, ledger, registry, sequencer, time-stamping and API keys, wired
from one data directory.

On first start the directory gets (all kept, none ever printed): the log's Ed25519 key
(``keys/log.key``, mode 0600), a built-in TSA (``tsa/``, unless external TSA URLs are configured)
and an admin API key (``admin-token``, mode 0600). Everything else lives in the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.authority import (
    TimeStampAuthority,
    TsaCredentials,
    issue_tsa_certificates,
    open_authority,
)
from ledger.canonical import jcs, loads
from ledger.cases import CaseItem, CaseReport, case_key, check_case, normalize_contract_no
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, split_note
from ledger.cluster import ClusterSequencer
from ledger.code import DepositCode
from ledger.entry import Statement, parse_entry
from ledger.errors import (
    CaseNotFound,
    Conflict,
    CunzhengError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    UnknownDepositor,
)
from ledger.kinds import format_of_media_type, sniff
from ledger.log import Ledger, now_ms
from ledger.merkle import leaf_hash
from ledger.registry import Registry
from ledger.sequencer import Sequencer
from ledger.storage.postgres import PostgresStore
from ledger.store import Store, open_store
from ledger.tsa import AuthorityClient, HttpTimestampClient, Stamper, TimestampClient
from verifier.admission import Admission
from verifier.bundle import Bundle, Report
from verifier.signature import StatementKeys
from verifier.timestamp import TimestampInfo, make_request, read_response, verify_token

from .operations import Metrics

__all__ = ["ROLES", "ApiKey", "ApiKeys", "Service", "ServiceConfig"]

Role = Literal["depositor", "judge", "auditor", "admin"]
ROLES: tuple[Role, ...] = ("depositor", "judge", "auditor", "admin")
_TOKEN_PREFIX = "czk_"  # noqa: S105 - the public prefix of API tokens, not a secret


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What the service needs to start; :mod:`api.settings` fills it from files and env."""

    data_dir: Path
    origin: str = "cunzheng.local/log"
    store_url: str | None = None
    tsa_urls: tuple[str, ...] = ()
    tsa_roots: tuple[Path, ...] = ()
    depositor_tsa_roots: tuple[Path, ...] = ()
    witnesses: tuple[str, ...] = ()
    """Witness vkeys whose cosignatures the service accepts and serves with its checkpoints."""


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_secret(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InvalidInput(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A caller, as an API key names it (the secret itself is never kept)."""

    id: str
    role: Role
    depositor: str | None
    label: str
    created_at: int
    revoked_at: int | None = None
    expires_at: int | None = None
    """Unix ms after which the key is refused; ``None``: until revoked."""


@dataclass(frozen=True, slots=True)
class _KnownKey:
    """A key's stored record as ``authenticate`` needs it, and when it was read."""

    read_at: float
    hash: str
    revoked: bool
    key: ApiKey


class ApiKeys:
    """API keys stored hashed (SHA-256 of a 256-bit random secret), compared in constant time.

    A key's record is kept in memory for ``cache_seconds`` after it is read, so a depositor's
    requests do not each read the store. A revocation through this process takes effect at once;
    one made through another node sharing the store (PostgreSQL), within ``cache_seconds``.
    """

    KIND = "apikey"
    CACHE_SIZE = 4096

    def __init__(self, store: Store, clock: Any = now_ms, *, cache_seconds: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._known: dict[str, _KnownKey] = {}

    def issue(
        self,
        role: str,
        *,
        depositor: str | None = None,
        label: str = "",
        expires_at: int | None = None,
    ) -> str:
        """A new key; the returned token is shown once and never stored. ``expires_at`` (Unix
        ms): refused from then on, as if revoked."""
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidInput("an API key's expiry must be in the future", expires_at=expires_at)
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}", want=list(ROLES))
        if (role == "depositor") != (depositor is not None):
            raise InvalidInput("a depositor key names its depositor; other roles name none")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = {
            "id": key_id,
            "role": role,
            "depositor": depositor,
            "label": label[:200],
            "created_at": self.clock(),
            "revoked_at": None,
            "hash": hashlib.sha256(secret.encode()).hexdigest(),
        }
        if expires_at is not None:
            record["expires_at"] = expires_at
        self.store.record_put(self.KIND, key_id, jcs(record), None)
        return f"{_TOKEN_PREFIX}{key_id}_{secret}"

    def authenticate(self, token: str) -> ApiKey | None:
        """The key a bearer token belongs to, or ``None`` (unknown, malformed, revoked or
        expired)."""
        if not token.startswith(_TOKEN_PREFIX) or len(token) > 200:
            return None
        key_id, _, secret = token[len(_TOKEN_PREFIX) :].partition("_")
        if len(key_id) != 16 or not secret:
            return None
        known = self._record(key_id)
        if known is None:
            return None
        given = hashlib.sha256(secret.encode()).hexdigest()
        if not hmac.compare_digest(given, known.hash) or known.revoked:
            return None
        expires_at = known.key.expires_at
        if expires_at is not None and self.clock() >= expires_at:
            return None
        return known.key

    def _record(self, key_id: str) -> _KnownKey | None:
        now = time.monotonic()
        known = self._known.get(key_id)
        if known is not None and now - known.read_at < self.cache_seconds:
            return known
        raw = self.store.record_get(self.KIND, key_id)
        if raw is None:
            self._known.pop(key_id, None)
            return None
        r = loads(raw)
        key = ApiKey(r["id"], r["role"], r["depositor"], r["label"], r["created_at"],
                     expires_at=r.get("expires_at"))  # fmt: skip
        known = _KnownKey(now, r["hash"], r["revoked_at"] is not None, key)
        if len(self._known) >= self.CACHE_SIZE:
            self._known.clear()
        self._known[key_id] = known
        return known

    def revoke(self, key_id: str) -> None:
        raw = self.store.record_get(self.KIND, key_id)
        if raw is None:
            raise NotFound(f"no API key {key_id!r}")
        record = loads(raw)
        if record["revoked_at"] is not None:
            raise Conflict(f"API key {key_id} is already revoked")
        record["revoked_at"] = self.clock()
        self.store.record_put(self.KIND, key_id, jcs(record), raw)
        self._known.pop(key_id, None)

    def list(self) -> list[ApiKey]:
        out = []
        for _, raw in self.store.record_list(self.KIND):
            r = loads(raw)
            key = ApiKey(r["id"], r["role"], r["depositor"], r["label"], r["created_at"],
                         r["revoked_at"], r.get("expires_at"))  # fmt: skip
            out.append(key)
        return out


class ReportCache:
    """Verification reports of sealed deposits (time-stamped, every record check passed), by
    index: such a report never changes, only what a caller presents does (``present``)."""

    def __init__(self, size: int = 65536, answers: int = 16384) -> None:
        self._items: OrderedDict[int, Report] = OrderedDict()
        self._answers: OrderedDict[Hashable, tuple[str, bytes]] = OrderedDict()
        self._size = size
        self._answers_size = answers
        """Encoded answers kept (about 1.7 kB each: some 28 MB at most)."""
        self._lock = threading.Lock()

    def get(self, index: int) -> Report | None:
        with self._lock:
            report = self._items.get(index)
            if report is not None:
                self._items.move_to_end(index)
            return report

    def put(self, index: int, report: Report) -> None:
        with self._lock:
            self._items[index] = report
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def answer(self, key: Hashable) -> tuple[str, bytes] | None:
        """An encoded public answer about a sealed deposit (``key`` names the deposit and what
        was asked: the index, and the digest and code presented)."""
        with self._lock:
            kept = self._answers.get(key)
            if kept is not None:
                self._answers.move_to_end(key)
            return kept

    def put_answer(
        self, key: Hashable, index: int, body: tuple[str, bytes], report: Report
    ) -> None:
        """Keep a public answer (its verdict, its bytes) presented from ``report``, if that is
        the kept (sealed) report of ``index`` — not an earlier, unsealed one that lost a race."""
        with self._lock:
            if self._items.get(index) is report:
                self._answers[key] = body
                while len(self._answers) > self._answers_size:
                    self._answers.popitem(last=False)


class Service:
    """Everything a running depository holds: :meth:`open`, then :meth:`start`, :meth:`close`."""

    def __init__(
        self,
        *,
        config: ServiceConfig,
        store: Store,
        ledger: Ledger,
        registry: Registry,
        sequencer: Sequencer,
        stamper: Stamper,
        tsa_roots: Sequence[x509.Certificate],
        api_keys: ApiKeys,
        closers: Sequence[Any] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._closers = list(closers)
        self._token_cache: OrderedDict[bytes, TimestampInfo] = OrderedDict()
        self._token_lock = threading.Lock()
        self.reports = ReportCache()
        self._code_cache: dict[bytes, int] = {}
        self.store = store
        self.ledger = ledger
        self.registry = registry
        self.sequencer = sequencer
        self.stamper = stamper
        self.tsa_roots = tuple(tsa_roots)
        self.api_keys = api_keys
        self.intake = ThreadPoolExecutor(
            max_workers=min(8, (os.cpu_count() or 1) + 2), thread_name_prefix="cunzheng-intake"
        )
        """Where deposits are parsed, admitted (signatures checked: cryptography releases the
        GIL, so they run beside the event loop) and queued for the sequencer."""

    def check_token(self, token: bytes, digest: bytes) -> TimestampInfo:
        """:func:`~verifier.timestamp.verify_token` against our TSA roots, remembered: the same
        token over the same digest always gets the same answer, and checking its chain is the
        slowest part of a verification."""
        key = hashlib.sha256(token + digest).digest()
        with self._token_lock:
            hit = self._token_cache.get(key)
            if hit is not None:
                self._token_cache.move_to_end(key)
                return hit
        info = verify_token(token, digest=digest, roots=self.tsa_roots)
        with self._token_lock:
            self._token_cache[key] = info
            while len(self._token_cache) > 4096:
                self._token_cache.popitem(last=False)
        return info

    def add_cosignature(self, size: int, line: bytes) -> str:
        """Keep a configured witness's cosignature of checkpoint ``size``; returns its name."""
        from verifier.witness import CosignatureVerifier

        note = self.ledger.checkpoint(size)
        if not line.endswith(b"\n") or line.count(b"\n") != 1 or len(line) > 512:
            raise InvalidInput("send one cosignature line, ending in a newline")
        for vkey in self.config.witnesses:
            witness = CosignatureVerifier.parse(vkey)
            try:
                witness.verify(note + line)
            except CunzhengError:
                continue
            existing = self.store.record_get("cosignature", f"{size:020d}:{witness.name}")
            if existing is None:
                self.store.record_put("cosignature", f"{size:020d}:{witness.name}", line, None)
            return witness.name
        raise SignatureInvalid("the line is not a valid cosignature by a configured witness")

    def cosigned(self, size: int, note: bytes) -> bytes:
        """``note`` with the cosignatures kept for checkpoint ``size``."""
        lines = self.store.record_list("cosignature", f"{size:020d}:")
        return note + b"".join(v for k, v in lines if k.startswith(f"{size:020d}:"))

    @property
    def log_verifier(self) -> NoteVerifier:
        return self.ledger.verifier

    @classmethod
    def open(cls, config: ServiceConfig) -> Service:
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path = data / "keys" / "log.key"
        if not key_path.exists():
            private = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_secret(key_path, private)
        key = serialization.load_pem_private_key(_read_secret(key_path), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInput(f"{key_path} is not an Ed25519 key")
        signer = NoteSigner(config.origin, key)
        store = open_store(config.store_url or f"rocksdb:{data / 'ledger'}")
        ledger = Ledger.open(store, signer)
        registry = Registry(store, StatementKeys(), clock=ledger.clock)
        depositor_roots = [_load_cert(p) for p in config.depositor_tsa_roots]
        client: TimestampClient
        closers: list[Any] = []
        if config.tsa_urls:
            roots = [_load_cert(p) for p in config.tsa_roots]
            if not roots:
                raise InvalidInput("external TSA URLs need their root certificates (tsa_roots)")
            client = HttpTimestampClient(
                config.tsa_urls,
                build_request=lambda digest, nonce: make_request(digest, nonce=nonce),
                read_response=read_response,
            )
        else:
            tsa_dir = data / "tsa"
            if not (tsa_dir / "tsa.key").exists():
                issue_tsa_certificates(name=f"cunzheng TSA ({config.origin})").write(tsa_dir)
            if isinstance(store, PostgresStore):
                # Every node of a cluster stamps with the same TSA credentials (a copy of the
                # data directory); a database sequence keeps their token serials unique.
                credentials = TsaCredentials.read(tsa_dir)
                authority = TimeStampAuthority(
                    certificate=credentials.certificate,
                    private_key=credentials.private_key,
                    serials=store.next_serial,
                )
            else:
                authority, credentials, serials = open_authority(tsa_dir)
                closers.append(serials)
            client = AuthorityClient(authority)
            roots = [credentials.root]
        stamper = Stamper(
            store,
            client,
            verify=lambda token, digest: verify_token(token, digest=digest, roots=roots),
        )
        metrics = Metrics()
        sequencer: Sequencer
        if isinstance(store, PostgresStore):
            # Many nodes on one database: the elected one sequences, the others queue.
            sequencer = ClusterSequencer(
                ledger,
                store=store,
                admit=Admission(registry, token_roots=depositor_roots),
                on_commit=[stamper.notify],
                observe=metrics.block,
            )
        else:
            sequencer = Sequencer(
                ledger,
                admit=Admission(registry, token_roots=depositor_roots),
                on_commit=[stamper.notify],
                observe=metrics.block,
            )
        api_keys = ApiKeys(store)
        admin_path = data / "admin-token"
        if not admin_path.exists():
            _write_secret(admin_path, api_keys.issue("admin", label="first admin").encode())
        return cls(
            config=config,
            store=store,
            ledger=ledger,
            registry=registry,
            sequencer=sequencer,
            stamper=stamper,
            tsa_roots=roots,
            api_keys=api_keys,
            closers=closers,
            metrics=metrics,
        )

    def start(self) -> Service:
        self.stamper.start()
        self.sequencer.start()
        self.stamper.notify()
        return self

    def close(self) -> None:
        self.intake.shutdown(cancel_futures=True)
        self.sequencer.close()
        self.stamper.close()
        self.store.close()
        for closer in self._closers:
            closer.close()

    def health(self) -> dict[str, Any]:
        """Tree size, time-stamping lag (entries and seconds) and the latest checkpoint's age.

        ``status`` is ``ok``, or ``degraded`` while the TSA fails or entries have waited more
        than a minute for a trusted time (deposits are still accepted: DESIGN §5)."""
        lag = self.stamper.lag()
        now = now_ms()
        head = self.store.head()
        age = None if head is None else (now - _note_time_ms(head.note)) / 1000
        lag_seconds = 0.0
        if lag.entries_waiting:
            oldest = self.store.checkpoint_at_or_after(lag.stamped_size + 1)
            if oldest is not None:
                lag_seconds = max(0.0, (now - _note_time_ms(oldest.note)) / 1000)
        degraded = lag.last_error is not None or lag_seconds > 60
        return {
            "status": "degraded" if degraded else "ok",
            "tree_size": lag.head_size,
            "stamped_size": lag.stamped_size,
            "entries_waiting_for_time_stamp": lag.entries_waiting,
            "tsa_lag_seconds": round(lag_seconds, 3),
            "tsa_error": lag.last_error,
            "checkpoint_age_seconds": None if age is None else round(max(age, 0.0), 3),
        }

    def backup(self, dest: Path) -> dict[str, Any]:
        """Copy what restores this depository into ``dest`` (a new directory): the store, taken
        live and consistent — a RocksDB checkpoint in ``ledger/``, or for PostgreSQL a
        ``pg_dump`` custom-format archive ``ledger.dump`` of the whole database — the log key
        and the built-in TSA's files, and ``backup.json`` naming the origin, the store kind and
        the tree size backed up. The admin token is not copied: a restored depository makes a
        new one (the API keys in the store stay). ``dest`` holds the log's private key: keep it
        as safe as the data directory."""
        from ledger.storage.rocksdb import RocksStore

        if not isinstance(self.store, RocksStore | PostgresStore):
            raise InvalidInput(
                "cunzheng backup copies a RocksDB or PostgreSQL store",
                store=type(self.store).__name__,
            )
        if dest.exists():
            raise InvalidInput(f"{dest} exists already; a backup goes to a new directory")
        dest.mkdir(parents=True, mode=0o700)
        head = self.store.head()
        if isinstance(self.store, PostgresStore):
            kind, part = "postgresql", "ledger.dump"
        else:
            kind, part = "rocksdb", "ledger"
        self.store.backup(dest / part)
        data = self.config.data_dir
        shutil.copytree(data / "keys", dest / "keys")
        if (data / "tsa").is_dir():
            shutil.copytree(data / "tsa", dest / "tsa")
        # The copy may hold more than `head` (deposits kept coming); it holds that much.
        manifest = {
            "origin": self.config.origin,
            "tree_size_at_least": 0 if head is None else head.size,
            "created_at": now_ms(),
            "store": kind,
        }
        (dest / "backup.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest

    # --- reads -------------------------------------------------------------------------------

    def index_of(self, code: DepositCode) -> int:
        """The index of the deposit with this code. A code, once in the log, always names the
        same (oldest) index, so hits are remembered; misses are not (it may come later)."""
        index = self._code_cache.get(code.bits)
        if index is not None:
            return index
        indexes = self.ledger.lookup_code(code)
        if not indexes:
            raise NotFound(f"no deposit has the code {code}", code=str(code))
        if len(self._code_cache) >= 65536:
            self._code_cache.clear()
        self._code_cache[code.bits] = indexes[0]
        return indexes[0]

    def case_deposits(self, contract_no: str, depositor: str | None = None) -> list[int]:
        """Ledger indexes of the deposits of a case, oldest first: every deposit whose private
        meta names ``contract_no`` (compared after :func:`~ledger.cases.normalize_contract_no`),
        only ``depositor``'s when given. Empty when there are none; a malformed contract number
        raises :class:`~ledger.errors.InvalidContractNo`."""
        return [item.index for item in self._case_entries(contract_no, depositor)]

    def _case_entries(self, contract_no: str, depositor: str | None) -> list[_CaseEntry]:
        contract = normalize_contract_no(contract_no)
        found = []
        for index in self.store.indexes_by_case(case_key(contract)):
            stored = self.ledger.meta(index)
            if stored is None:
                continue
            meta = loads(stored)["meta"]
            if normalize_contract_no(meta.get("contract_no", "")) != contract:
                continue  # a 128-bit case key collision: not this case
            statement = parse_entry(self.ledger.entry(index)).statement
            if depositor is None or statement.depositor == depositor:
                found.append(_CaseEntry(index, statement, meta))
        return found

    def case_items(self, contract_no: str, depositor: str | None = None) -> list[CaseItem]:
        """The deposits of a case as :class:`~ledger.cases.CaseItem`, oldest first. The format
        is recognised from the original's bytes when the depository holds it, else read from
        the media type the statement declares."""
        items = []
        for e in self._case_entries(contract_no, depositor):
            s = e.statement
            chunks = self.store.original(s.digest.index_key)
            if chunks is not None:
                head = next(chunks, b"")
                whole = len(head) >= s.size
                if not whole and sniff(head) in ("ZIP", "CFB"):
                    head, whole = head + b"".join(chunks), True
                fmt = sniff(head, whole=whole)
            else:
                fmt = format_of_media_type(s.media_type)
            file_name = e.meta.get("file_name")
            items.append(
                CaseItem(
                    kind=s.kind, format=fmt, digest=str(s.digest), size=s.size,
                    media_type=s.media_type,
                    file_name=file_name if isinstance(file_name, str) else None,
                    index=e.index, code=str(self._code_of(e.index)), depositor=s.depositor,
                )
            )  # fmt: skip
        return items

    def _code_of(self, index: int) -> DepositCode:
        return DepositCode.from_leaf_hash(leaf_hash(self.ledger.entry(index)))

    def check_case(self, contract_no: str, depositor: str | None = None) -> CaseReport:
        """The case's completeness against DB4401/T 310—2024 Annex B
        (:func:`ledger.cases.check_case`) over :meth:`case_items`;
        :class:`~ledger.errors.CaseNotFound` if it has none."""
        items = self.case_items(contract_no, depositor)
        if not items:
            raise CaseNotFound(
                "no deposit names this contract number" + (" for you" if depositor else ""),
                contract_no=contract_no,
            )
        return check_case(contract_no, items, depositor=depositor)

    def bundle(self, index: int, *, with_meta: bool = False) -> Bundle:
        """Everything needed to verify deposit ``index`` offline (DESIGN §7)."""
        leaf = self.ledger.entry(index)
        stamped = self.store.timestamp_at_or_after(index + 1)
        if stamped is not None:
            size, token = stamped
            note: bytes | None = self.ledger.checkpoint(size)
        else:
            head = self.ledger.head()
            size, note, token = head.size, head.note, None
        assert note is not None
        entry = parse_entry(leaf)
        key_pem = window = name = None
        try:
            depositor = self.registry.get(entry.statement.depositor)
            name = depositor.display_name
            key = depositor.key(entry.sig.key_id)
            if key is not None:
                key_pem = key.public_key
                window = (key.not_before, key.not_after, key.revoked_at)
        except UnknownDepositor:
            pass
        return Bundle(
            leaf=leaf,
            index=index,
            tree_size=size,
            proof=tuple(self.ledger.inclusion_proof(index, size)),
            checkpoint=note,
            timestamp=token,
            depositor_key=key_pem,
            key_window=window,
            depositor_name=name,
            meta=self.ledger.meta(index) if with_meta else None,
        )


def _note_time_ms(note: bytes) -> int:
    """The ``time`` extension line of a checkpoint note (DESIGN §5)."""
    body, _ = split_note(note)
    return Checkpoint.parse(body).time_ms or 0


@dataclass(frozen=True, slots=True)
class _CaseEntry:
    index: int
    statement: Statement
    meta: dict[str, Any]


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read a PEM certificate from {path}: {exc}") from exc
