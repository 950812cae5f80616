"""Many API nodes on one PostgreSQL database: one sequencer, elected; deposit intake everywhere.

Every node runs a :class:`ClusterSequencer` in place of a plain
:class:`~ledger.sequencer.Sequencer`. It serves reads and verification from the shared store like
any node, and at any moment exactly one node is **the sequencer**:

- **Election.** Each node tries ``pg_try_advisory_lock`` on a dedicated connection every
  ``retry`` seconds. The holder is the sequencer for as long as that session lives: if its
  process dies or its connection breaks, PostgreSQL ends the session and releases the lock, and
  another node takes it within ``retry`` seconds. A session-level lock (not a lease with a clock)
  means no timing assumption decides who may write.
- **Fencing.** The elected node sets :attr:`PostgresStore.fence
  <ledger.storage.postgres.PostgresStore.fence>` to its lock session's pid: every commit checks,
  inside its transaction, that the session still holds the lock, so a deposed sequencer (a
  partitioned node that has not noticed yet) cannot append. Independently, every commit is a
  compare-and-swap on the head, so two writers can never fork the log.
- **Intake on the other nodes: a durable queue, not forwarding.** A node that is not the
  sequencer admits the deposit (depositor, key, signature — the same check the sequencer would
  do), writes it to the ``intake`` table in one transaction and ``NOTIFY``\\s; the sequencer
  drains the queue into blocks; the receiving node answers once the statement is in the log
  (``LISTEN`` on the head channel, with polling as a fallback), with a receipt read from the
  log. Why a queue in the database rather than forwarding HTTP to the sequencer: the queue is as
  durable as the log and survives a fail-over — a deposit queued when the sequencer dies is
  committed by the next one, with no node needing to know where the sequencer runs; deposits are
  deduplicated by statement key (a unique key in the queue, and the sequencer's own "already in
  the log?" check), so a client retrying after a timeout or a crash never gets two entries; and
  nodes need no addresses of one another, only the database. The cost is a round trip through
  the database and a wake-up (a few milliseconds) for deposits received off the sequencer.
- **Acknowledgement only when durable in the log**: a receipt is returned only once the entry
  is committed (the same rule as DESIGN §5); a queued deposit that is not in the log within
  ``ack_timeout`` gets :class:`~ledger.errors.Unavailable` — it stays queued and will be logged,
  and a retry of the same deposit returns its receipt.

Deposits received by the sequencer node itself take the direct path (its in-process queue), as
on a single machine. Everything a node shows — head, checkpoints, proofs — is read from the store
on each request, so non-sequencer nodes see every new checkpoint at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .canonical import jcs, loads
from .entry import Deposit
from .errors import CunzhengError, StorageError, Unavailable
from .log import Ledger
from .merkle import leaf_hash
from .sequencer import Receipt, Sequencer, _attempt, _settle
from .storage.postgres import (
    HEAD_CHANNEL,
    INTAKE_CHANNEL,
    LOCK_NAMESPACE,
    SEQUENCER_LOCK,
    PostgresStore,
)

__all__ = ["ClusterSequencer", "sequencer_node"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Waiter:
    """A submission queued for the sequencer, waiting for its statements to be in the log."""

    keys: list[bytes]
    fresh: set[bytes]
    """Keys this submission queued (others were in the log or the queue already: duplicates)."""
    deadline: float
    future: Future[list[Receipt]] = field(default_factory=Future)


class ClusterSequencer(Sequencer):
    """A :class:`~ledger.sequencer.Sequencer` that writes only while this node holds the
    sequencer lock, and otherwise queues deposits for the node that does (module docstring).

    ``node`` names this node in the intake queue (default ``host:pid``); ``retry`` is how often
    the lock is tried and the connection checked (fail-over time); ``ack_timeout`` bounds how
    long a deposit received here waits for the log.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        store: PostgresStore,
        node: str | None = None,
        retry: float = 0.5,
        ack_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(ledger, **options)
        if retry <= 0 or ack_timeout <= 0:
            raise ValueError("retry and ack_timeout must be positive")
        self.store = store
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self.retry = retry
        self.ack_timeout = ack_timeout
        self.terms = 0
        """How many times this node became the sequencer."""
        self._stop = threading.Event()
        self._leading = threading.Event()
        self._head_changed = threading.Event()
        self._intake_waiting = threading.Event()
        self._drain_stop = threading.Event()
        self._drainer: threading.Thread | None = None
        self._waiters: list[_Waiter] = []
        self._waiters_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = True  # the writer runs only while leading

    @property
    def leading(self) -> bool:
        """Whether this node is the sequencer now."""
        return self._leading.is_set()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ClusterSequencer:
        if self._workers:
            return self
        self._stop.clear()
        for target, name in (
            (self._elect, "election"),
            (self._listen, "listen"),
            (self._resolve, "receipts"),
        ):
            thread = threading.Thread(target=target, name=f"cunzheng-{name}", daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def close(self) -> None:
        """Step down (committing what is pending here), stop every thread, release the lock.
        Deposits queued from this node and not yet logged stay queued; their callers get
        :class:`~ledger.errors.Unavailable` and may retry."""
        self._stop.set()
        self._head_changed.set()
        self._intake_waiting.set()
        for thread in self._workers:
            thread.join()
        self._workers.clear()
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.future.set_exception(
                Unavailable("this node is shutting down; the deposit stays queued: retry it")
            )

    def wait_until_leading(self, timeout: float) -> bool:
        """Block until this node is the sequencer (tests, tools); ``False`` on timeout."""
        return self._leading.wait(timeout)

    # --- intake ------------------------------------------------------------------------------

    def submit_many(self, deposits: Sequence[Deposit]) -> Future[list[Receipt]]:
        if self._sequencing_here():
            return super().submit_many(deposits)
        return self._queue_for_sequencer(deposits)

    def _sequencing_here(self) -> bool:
        """Whether this node's writer takes deposits now (else they go through the intake)."""
        if self._stop.is_set() or not self._workers:
            raise Unavailable("the sequencer is not running")
        return self._leading.is_set() and not self._closed and self._thread is not None

    def submit_for(
        self,
        deposits: Sequence[Deposit],
        loop: asyncio.AbstractEventLoop,
        waiter: asyncio.Future[list[Receipt]],
    ) -> None:
        if self._sequencing_here():
            super().submit_for(deposits, loop, waiter)
            return
        queued = self._queue_for_sequencer(deposits)

        def settle(done: Future[list[Receipt]]) -> None:
            error = done.exception()
            outcome = (waiter, None if error else done.result(), error)
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, [outcome])

        queued.add_done_callback(settle)

    def submit_each_for(
        self,
        requests: Sequence[tuple[Sequence[Deposit], asyncio.Future[list[Receipt]]]],
        loop: asyncio.AbstractEventLoop,
        *,
        admitted_at: int | None = None,
    ) -> list[Exception | None]:
        if self._sequencing_here():
            return super().submit_each_for(requests, loop, admitted_at=admitted_at)
        # Through the intake queue, one by one (admitted again there: its checks are cheap
        # beside a round trip to the database).
        return [_attempt(self.submit_for, d, loop, w) for d, w in requests]

    def _queue_for_sequencer(self, deposits: Sequence[Deposit]) -> Future[list[Receipt]]:
        now = self.ledger.clock()
        if self.admit is not None:
            self.admit(deposits, now)
        keys = [d.statement.key for d in deposits]
        logged = dict(zip(keys, self.store.indexes_by_statement(keys), strict=True))
        rows, seen = [], set()
        for d, key in zip(deposits, keys, strict=True):
            if logged[key] is None and key not in seen:
                seen.add(key)
                rows.append((key, jcs(d.to_object()), now))
        fresh = set(self.store.enqueue(rows, self.node)) if rows else set()
        waiter = _Waiter(keys, fresh, time.monotonic() + self.ack_timeout)
        with self._waiters_lock:
            self._waiters.append(waiter)
        self._head_changed.set()  # resolve at once what is in the log already
        return waiter.future

    def _resolve(self) -> None:
        """Answer waiting submissions whose statements are all in the log (the receipts thread)."""
        while not self._stop.is_set():
            self._head_changed.wait(self.retry)
            self._head_changed.clear()
            with self._waiters_lock:
                waiters = list(self._waiters)
            if not waiters:
                continue
            try:
                self._resolve_once(waiters)
            except CunzhengError as exc:
                log.warning("cannot look up queued deposits yet: %s", exc.message)
                self._stop.wait(self.retry)

    def _resolve_once(self, waiters: list[_Waiter]) -> None:
        keys = list({k for w in waiters for k in w.keys})
        found = dict(zip(keys, self.store.indexes_by_statement(keys), strict=True))
        head = self.ledger.head()  # read after the lookup: it includes every index found
        now = time.monotonic()
        done: list[_Waiter] = []
        for w in waiters:
            indexes = [found[k] for k in w.keys]
            if all(i is not None for i in indexes):
                try:
                    receipts = self._receipts(w, [i for i in indexes if i is not None], head)
                except CunzhengError as exc:
                    w.future.set_exception(exc)
                else:
                    w.future.set_result(receipts)
                done.append(w)
            elif now > w.deadline:
                w.future.set_exception(
                    Unavailable(
                        f"the deposit is queued durably but not in the log after "
                        f"{self.ack_timeout:g} s; retry the same deposit to get its receipt "
                        "(it will not be logged twice)",
                        waiting=sum(i is None for i in indexes),
                    )
                )
                done.append(w)
        if done:
            with self._waiters_lock:
                self._waiters = [w for w in self._waiters if w not in done]

    def _receipts(self, w: _Waiter, indexes: list[int], head: Any) -> list[Receipt]:
        low, high = min(indexes), max(indexes)
        if high - low < 2 * len(indexes):
            leaves = dict(enumerate(self.store.entries(low, high + 1), start=low))
        else:
            leaves = {i: self.ledger.entry(i) for i in set(indexes)}
        receipts = []
        for key, index in zip(w.keys, indexes, strict=True):
            leaf = leaves.get(index)
            if leaf is None:
                raise StorageError(f"entry {index} is indexed but missing")
            receipts.append(
                Receipt(index, leaf_hash(leaf), head.size, head.note, duplicate=key not in w.fresh)
            )
        return receipts

    # --- notifications -----------------------------------------------------------------------

    def _listen(self) -> None:
        """LISTEN for new heads (wake the receipts thread) and queued deposits (wake the
        drain, when leading). Polling in the other threads covers a lost connection."""
        while not self._stop.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self.store.connect()
                conn.execute(f"LISTEN {HEAD_CHANNEL}")
                conn.execute(f"LISTEN {INTAKE_CHANNEL}")
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=self.retry):
                        if note.channel == HEAD_CHANNEL:
                            self._head_changed.set()
                        else:
                            self._intake_waiting.set()
            except (psycopg.Error, CunzhengError) as exc:
                log.warning("notification connection lost, reconnecting: %s", exc)
                self._stop.wait(self.retry)
            finally:
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()

    # --- election ----------------------------------------------------------------------------

    def _elect(self) -> None:
        while not self._stop.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self.store.connect()
                # Operators (and tests) see who holds the lock: pg_locks ⋈ pg_stat_activity.
                conn.execute(
                    "SELECT set_config('application_name', %s, false)",
                    (f"cunzheng election {self.node}"[:63],),
                )
                while not self._stop.is_set():
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, SEQUENCER_LOCK)
                    ).fetchone()
                    if row is not None and row[0]:
                        break
                    self._stop.wait(self.retry)
                else:
                    return
                self._step_up(conn.info.backend_pid)
                while not self._stop.wait(self.retry):
                    conn.execute("SELECT 1")  # a broken session has lost the lock
            except (psycopg.Error, CunzhengError) as exc:
                log.warning("sequencer election: %s", exc)
            finally:
                if self._leading.is_set():
                    self._step_down()
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()  # releases the lock
            self._stop.wait(self.retry)

    def _step_up(self, pid: int) -> None:
        self.store.fence = pid
        self._closed = False
        Sequencer.start(self)  # reloads the tree from the store: whatever the last one committed
        self._drain_stop.clear()
        self._drainer = threading.Thread(target=self._drain, name="cunzheng-drain", daemon=True)
        self._drainer.start()
        self.terms += 1
        self._leading.set()
        log.info("%s is the sequencer now (tree size %d)", self.node, self._tree.size)

    def _step_down(self) -> None:
        self._leading.clear()
        self._drain_stop.set()
        self._intake_waiting.set()
        if self._drainer is not None:
            self._drainer.join()
            self._drainer = None
        # Commits what is pending here, if the lock still allows it; anything queued after the
        # writer stopped is refused, not left hanging.
        Sequencer.close(self)
        log.info("%s stepped down as the sequencer", self.node)

    # --- the sequencer's drain of the intake queue -------------------------------------------

    def _drain(self) -> None:
        while not self._drain_stop.is_set():
            self._intake_waiting.wait(self.retry)
            self._intake_waiting.clear()
            while not self._drain_stop.is_set():
                try:
                    if not self._drain_once():
                        break
                except CunzhengError as exc:
                    log.warning("draining the intake queue failed, will retry: %s", exc.message)
                    self._drain_stop.wait(self.retry)
                    break

    def _drain_once(self) -> bool:
        """Commit one batch of queued deposits; ``False`` when the queue is empty."""
        rows = self.store.queued(self.max_batch)
        if not rows:
            return False
        deposits, times, ids, broken = [], [], [], []
        for row_id, _key, raw, received_at in rows:
            try:
                deposits.append(Deposit.from_object(loads(raw)))
            except (CunzhengError, ValueError) as exc:
                log.error("dropping unreadable queued deposit %d: %s", row_id, exc)
                broken.append(row_id)
                continue
            times.append(received_at)
            ids.append(row_id)
        if deposits:
            self.submit_received(deposits, times).result()  # durable in the log
        self.store.dequeue(ids + broken)
        return True


def sequencer_node(conn: psycopg.Connection[Any]) -> str | None:
    """The ``node`` name of the current sequencer (its election session's application name),
    or ``None`` while no node holds the lock."""
    row = conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
        " AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        (LOCK_NAMESPACE, SEQUENCER_LOCK),
    ).fetchone()
    if row is None:
        return None
    name = str(row[0])
    return name.removeprefix("cunzheng election ")
