"""Trusted time for checkpoints (DESIGN §5): RFC 3161 clients and the back-filling stamper.

Every checkpoint body's SHA-256 may be time-stamped; an entry's trusted time is the genTime of the
first time-stamped checkpoint that includes it. The :class:`Stamper` therefore stamps the newest
checkpoint that is not yet covered — never the backlog one by one, since a TSA cannot stamp the
past — so a slow or absent TSA costs no deposits, only time-stamping lag, which
:meth:`Stamper.lag` reports and the store shows (checkpoints after the latest stamped one).

Tokens are checked before they are stored with a ``verify`` function given by the caller (the
verifier's token check with the configured TSA roots), so a misconfigured TSA cannot fill the
store with tokens no court would accept.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .authority import TimeStampAuthority
from .checkpoint import split_note
from .errors import Conflict, CunzhengError, Unavailable
from .store import Store

__all__ = ["AuthorityClient", "HttpTimestampClient", "Lag", "Stamper", "TimestampClient"]

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024


class TimestampClient(Protocol):
    """Something that returns an RFC 3161 token (DER ContentInfo) over a SHA-256 digest."""

    def stamp(self, digest: bytes) -> bytes:
        """Raise :class:`~ledger.errors.Unavailable` when no TSA answered."""
        ...


class HttpTimestampClient:
    """RFC 3161 over HTTP (RFC 3161 §3.4): tries each URL in turn.

    ``build_request(digest, nonce) -> DER`` and ``read_response(DER, nonce) -> token`` are
    given by the caller (see ``verifier.timestamp``), keeping ASN.1 out of the ledger core.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        build_request: Callable[[bytes, int], bytes],
        read_response: Callable[[bytes, int], bytes],
        timeout: float = 5.0,
    ) -> None:
        if not urls:
            raise ValueError("at least one TSA URL is needed")
        self.urls = list(urls)
        self._build = build_request
        self._read = read_response
        self.timeout = timeout

    def stamp(self, digest: bytes) -> bytes:
        nonce = secrets.randbits(63)
        request = self._build(digest, nonce)
        failures = []
        for url in self.urls:
            try:
                http = urllib.request.Request(  # noqa: S310 - URLs come from the operator's config
                    url, data=request, headers={"Content-Type": "application/timestamp-query"}
                )
                with urllib.request.urlopen(http, timeout=self.timeout) as response:  # noqa: S310
                    body = response.read(MAX_RESPONSE_BYTES + 1)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise Unavailable(f"TSA {url} answered more than {MAX_RESPONSE_BYTES} bytes")
                return self._read(body, nonce)
            except (OSError, urllib.error.URLError, CunzhengError) as exc:
                failures.append(f"{url}: {exc}")
        raise Unavailable("no TSA answered: " + "; ".join(failures), failures=failures)


@dataclass(frozen=True, slots=True)
class Lag:
    """How far time-stamping is behind the log."""

    head_size: int
    stamped_size: int
    """Tree size of the latest time-stamped checkpoint (0 if none)."""
    unstamped_checkpoints: int
    """Checkpoints after the latest stamped one (their entries wait for trusted time)."""
    last_error: str | None

    @property
    def entries_waiting(self) -> int:
        return self.head_size - self.stamped_size


class Stamper:
    """A background thread that keeps the newest checkpoint time-stamped.

    Call :meth:`notify` after a commit (the sequencer's ``on_commit`` does); it also wakes every
    ``interval`` seconds, stamps at most once per ``min_interval``, and backs off up to
    ``max_backoff`` while the TSA is down.
    """

    def __init__(
        self,
        store: Store,
        client: TimestampClient,
        *,
        verify: Callable[[bytes, bytes], object],
        interval: float = 1.0,
        min_interval: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.store = store
        self.client = client
        self.verify = verify
        self.interval = interval
        self.min_interval = min_interval
        """Seconds between two stamps at least: a busy log commits many blocks a second, and one
        token a second gives every deposit a trusted time within about a second, at a bounded
        cost to the TSA and to this process."""
        self.max_backoff = max_backoff
        self._last_stamp = 0.0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Stamper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cunzheng-stamper", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Stamper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def notify(self, size: int = 0) -> None:
        """A new checkpoint exists: stamp soon."""
        self._wake.set()

    def stamp_latest(self) -> int | None:
        """Stamp the head checkpoint if it has no token yet; return its size if stamped now."""
        head = self.store.head()
        if head is None or self.store.timestamp(head.size) is not None:
            return None
        body, _ = split_note(head.note)
        digest = hashlib.sha256(body).digest()
        token = self.client.stamp(digest)
        self.verify(token, digest)
        try:
            self.store.put_timestamp(head.size, token)
        except Conflict:
            return None  # another stamper got there first
        return head.size

    def lag(self) -> Lag:
        head = self.store.head()
        head_size = head.size if head is not None else 0
        stamped = self.store.latest_timestamped()
        unstamped = sum(1 for _ in self.store.checkpoints(0 if stamped is None else stamped + 1))
        # With nothing waiting, an error is from before the token that just caught up (stored
        # before the stamper clears it), or another node's stamper caught up: it is over.
        return Lag(head_size, stamped or 0, unstamped, self.last_error if unstamped else None)

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            self._wake.wait(backoff)
            self._wake.clear()
            if self._stop.is_set():
                break
            wait = self._last_stamp + self.min_interval - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            try:
                if self.stamp_latest() is not None:
                    self._last_stamp = time.monotonic()
            except CunzhengError as exc:
                self.last_error = exc.message
                log.warning("time-stamping failed, will retry: %s", exc.message)
                backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                continue
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("time-stamping failed unexpectedly, will retry")
                backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                continue
            self.last_error = None
            backoff = self.interval


class AuthorityClient:
    """The built-in TSA called in-process: the embedded default, no HTTP hop."""

    def __init__(self, authority: TimeStampAuthority) -> None:
        self.authority = authority

    def stamp(self, digest: bytes) -> bytes:
        return self.authority.stamp(digest, nonce=secrets.randbits(63), cert_req=True)
