"""The depositor registry (DESIGN §3, §9): who may deposit, with which keys, when.

A depositor has an id, a display name and keys. Each key has a validity window; keys are added
(rotation) and revoked from a given time on, never deleted, so a statement signed years ago
still verifies with the key that was valid when it was received. Records are canonical JSON in
the store, replaced by compare-and-swap.

Parsing keys and checking signatures is the verifier's business; the registry takes a
:class:`KeyScheme` that does it, so the ledger core imports no verification code.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .canonical import jcs, loads
from .entry import Deposit
from .errors import (
    Conflict,
    InvalidInput,
    KeyNotValid,
    NotFound,
    SignatureInvalid,
    UnknownDepositor,
)

__all__ = ["Depositor", "DepositorKey", "KeyScheme", "Registry"]

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_KEYS = 64
MAX_READ = 1024
"""Depositor records a :class:`Registry` keeps parsed (it forgets them all beyond that)."""
KIND = "depositor"
"""Store record kind of depositor records."""


class KeyScheme(Protocol):
    """How to read a public key (PEM key or certificate) and check a statement signature."""

    def load(self, pem: bytes) -> Any:
        """A parsed key; :class:`~ledger.errors.InvalidKey` if unusable."""
        ...

    def fingerprint(self, key: Any) -> str:
        """A stable id for the key (used as ``key_id`` when none is chosen)."""
        ...

    def validity(self, key: Any) -> tuple[int | None, int | None]:
        """Certificate validity in Unix ms (``None`` for a bare key)."""
        ...

    def allows(self, alg: str, key: Any) -> bool: ...

    def verify(self, statement_hash: bytes, alg: str, signature: bytes, key: Any) -> None:
        """Raise :class:`~ledger.errors.SignatureInvalid` unless the signature verifies."""
        ...


@dataclass(frozen=True, slots=True)
class DepositorKey:
    """One registered key. Times are Unix milliseconds; ``None`` means unbounded."""

    key_id: str
    public_key: str
    """PEM of the public key or X.509 certificate."""
    added_at: int
    not_before: int
    not_after: int | None = None
    revoked_at: int | None = None

    def problem_at(self, ms: int) -> str | None:
        """Why the key cannot sign at ``ms`` (a ``KeyNotValid`` reason), or ``None``."""
        if ms < self.not_before:
            return "not_yet_valid"
        if self.revoked_at is not None and ms >= self.revoked_at:
            return "revoked"
        if self.not_after is not None and ms >= self.not_after:
            return "expired"
        return None

    def to_object(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "added_at": self.added_at,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class Depositor:
    id: str
    display_name: str
    created_at: int
    keys: tuple[DepositorKey, ...] = ()

    def key(self, key_id: str) -> DepositorKey | None:
        for k in self.keys:
            if k.key_id == key_id:
                return k
        return None

    def to_bytes(self) -> bytes:
        return jcs(
            {
                "v": 1,
                "id": self.id,
                "display_name": self.display_name,
                "created_at": self.created_at,
                "keys": [k.to_object() for k in self.keys],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Depositor:
        obj = loads(raw)
        return cls(
            obj["id"],
            obj["display_name"],
            obj["created_at"],
            tuple(DepositorKey(**k) for k in obj["keys"]),
        )


class Registry:
    """Depositors and their keys over a store; checks deposits against them."""

    def __init__(self, store: Any, scheme: KeyScheme, *, clock: Callable[[], int]) -> None:
        self.store = store
        self.scheme = scheme
        self.clock = clock
        self._parsed: dict[str, Any] = {}  # PEM -> parsed key
        self._read: dict[str, tuple[bytes, Depositor]] = {}
        """Each depositor's record as last read, and what it says: read again on every
        deposit (a key may have been revoked meanwhile, by any node), parsed only when it
        changed."""

    # --- reading -----------------------------------------------------------------------------

    def get(self, depositor_id: str) -> Depositor:
        raw = self.store.record_get(KIND, depositor_id)
        if raw is None:
            raise UnknownDepositor(
                f"depositor {depositor_id!r} is not registered", depositor=depositor_id
            )
        read = self._read.get(depositor_id)
        if read is not None and read[0] == raw:
            return read[1]
        depositor = Depositor.from_bytes(raw)
        if len(self._read) >= MAX_READ:
            self._read.clear()
        self._read[depositor_id] = (raw, depositor)
        return depositor

    def all(self) -> list[Depositor]:
        return [Depositor.from_bytes(r) for _, r in self.store.record_list(KIND)]

    def _key(self, pem: str) -> Any:
        parsed = self._parsed.get(pem)
        if parsed is None:
            parsed = self._parsed[pem] = self.scheme.load(pem.encode())
        return parsed

    # --- admin -------------------------------------------------------------------------------

    def register(self, depositor_id: str, display_name: str) -> Depositor:
        """Add a depositor (an institution: no personal data)."""
        if not isinstance(depositor_id, str) or _ID.fullmatch(depositor_id) is None:
            raise InvalidInput(
                "a depositor id is 1–64 lower-case letters, digits, '.', '_' or '-'",
                depositor=depositor_id,
            )
        if not isinstance(display_name, str) or not 0 < len(display_name.strip()) <= 200:
            raise InvalidInput("a display name has 1–200 characters")
        depositor = Depositor(depositor_id, display_name.strip(), self.clock())
        try:
            self.store.record_put(KIND, depositor_id, depositor.to_bytes(), None)
        except Conflict as exc:
            raise Conflict(f"depositor {depositor_id!r} is already registered") from exc
        return depositor

    def _update(self, depositor_id: str, change: Callable[[Depositor], Depositor]) -> Depositor:
        raw = self.store.record_get(KIND, depositor_id)
        if raw is None:
            raise UnknownDepositor(f"depositor {depositor_id!r} is not registered")
        updated = change(Depositor.from_bytes(raw))
        self.store.record_put(KIND, depositor_id, updated.to_bytes(), raw)
        return updated

    def add_key(
        self,
        depositor_id: str,
        public_key: bytes,
        *,
        key_id: str | None = None,
        not_before: int | None = None,
        not_after: int | None = None,
    ) -> DepositorKey:
        """Register a key (rotation adds one; old ones stay verifiable).

        The window defaults to "from now on", narrowed to the certificate's validity if the key
        is a certificate.
        """
        try:
            pem = public_key.decode("ascii")
        except UnicodeDecodeError as exc:
            raise InvalidInput("a public key is given as PEM text") from exc
        parsed = self._key(pem)
        key_id = key_id or self.scheme.fingerprint(parsed)
        if _KEY_ID.fullmatch(key_id) is None:
            raise InvalidInput("key_id must be 1–128 letters, digits, '.', '_', ':' or '-'")
        now = self.clock()
        cert_from, cert_until = self.scheme.validity(parsed)
        start = max(
            x for x in (now if not_before is None else not_before, cert_from) if x is not None
        )
        ends = [x for x in (not_after, cert_until) if x is not None]
        end = min(ends) if ends else None
        if end is not None and end <= start:
            raise InvalidInput(
                "the key's validity window is empty", not_before=start, not_after=end
            )
        key = DepositorKey(key_id, pem, now, start, end)

        def change(d: Depositor) -> Depositor:
            if d.key(key_id) is not None:
                raise Conflict(f"{d.id} already has a key {key_id!r}")
            if any(k.public_key == pem for k in d.keys):
                raise Conflict(f"{d.id} already has this public key")
            if len(d.keys) >= MAX_KEYS:
                raise InvalidInput(f"a depositor has at most {MAX_KEYS} keys")
            return replace(d, keys=(*d.keys, key))

        self._update(depositor_id, change)
        return key

    def revoke_key(self, depositor_id: str, key_id: str, *, at: int | None = None) -> DepositorKey:
        """Stop a key from signing from ``at`` (default now) on; earlier deposits stay valid."""
        when = self.clock() if at is None else at
        revoked: list[DepositorKey] = []

        def change(d: Depositor) -> Depositor:
            key = d.key(key_id)
            if key is None:
                raise NotFound(f"{d.id} has no key {key_id!r}")
            if key.revoked_at is not None and key.revoked_at <= when:
                raise Conflict(f"key {key_id!r} is already revoked from {key.revoked_at}")
            revoked.append(replace(key, revoked_at=when))
            return replace(d, keys=tuple(revoked[0] if k is key else k for k in d.keys))

        self._update(depositor_id, change)
        return revoked[0]

    # --- admission ---------------------------------------------------------------------------

    def admit(self, deposits: Sequence[Deposit], at: int) -> None:
        """Check every deposit's depositor, key (valid at ``at``) and signature.

        Raises the first problem, with ``details["position"]`` naming the deposit. Large batches
        verify their signatures on all cores (the signature libraries release the GIL).
        """
        checks = self.signature_checks(deposits, at)
        if len(checks) < PARALLEL_FROM:
            failure = self.verify_signatures(checks)
        else:
            size = -(-len(checks) // WORKERS)
            parts = [checks[i : i + size] for i in range(0, len(checks), size)]
            failures = [f for f in _pool().map(self.verify_signatures, parts) if f is not None]
            failure = min(failures, key=lambda f: f.details["position"], default=None)
        if failure is not None:
            raise failure

    def signature_checks(
        self, deposits: Sequence[Deposit], at: int
    ) -> list[tuple[int, Deposit, Any]]:
        """Every check of :meth:`admit` but the signatures themselves, which are returned —
        (position, deposit, parsed key) — for :meth:`verify_signatures`, or another process."""
        records: dict[str, Depositor] = {}
        checks: list[tuple[int, Deposit, Any]] = []
        for position, deposit in enumerate(deposits):
            statement, sig = deposit.statement, deposit.sig
            try:
                depositor = records.get(statement.depositor)
                if depositor is None:
                    depositor = records[statement.depositor] = self.get(statement.depositor)
                key = depositor.key(sig.key_id)
                if key is None:
                    raise KeyNotValid(f"{depositor.id} has no key {sig.key_id!r}", reason="unknown")
                problem = key.problem_at(at)
                if problem is not None:
                    raise KeyNotValid(
                        f"key {sig.key_id!r} of {depositor.id} is {problem.replace('_', ' ')}"
                        " at the time of deposit",
                        reason=problem,
                    )
                parsed = self._key(key.public_key)
                if not self.scheme.allows(sig.alg, parsed):
                    raise KeyNotValid(
                        f"key {sig.key_id!r} cannot make {sig.alg} signatures",
                        reason="wrong_algorithm",
                    )
            except (UnknownDepositor, KeyNotValid) as exc:
                exc.details.setdefault("position", position)
                raise
            checks.append((position, deposit, parsed))
        return checks

    def verify_signatures(
        self, checks: Sequence[tuple[int, Deposit, Any]]
    ) -> SignatureInvalid | None:
        """The first signature that does not verify, as an error naming its position."""
        for position, deposit, parsed in checks:
            statement, sig = deposit.statement, deposit.sig
            try:
                self.scheme.verify(statement.signed_hash, sig.alg, sig.value, parsed)
            except SignatureInvalid as exc:
                exc.details.setdefault("position", position)
                return exc
        return None


PARALLEL_FROM = 64
"""Batches at least this large verify signatures on a thread per core."""
WORKERS = max(2, os.cpu_count() or 2)
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cunzheng-verify")
        return _POOL
