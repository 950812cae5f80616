"""Group commit: pending deposits become one block per commit (DESIGN §5).

Callers :meth:`~Sequencer.submit` validated deposits from any thread (or ``await``
:meth:`~Sequencer.deposit`); the entry bytes are built and hashed there. One writer thread takes
whatever is pending — up to ``max_batch`` deposits, waiting at most ``max_delay`` for more — appends
them to the tree, signs the next checkpoint (``time`` never goes backwards, ``prev`` chains the
bodies) and hands entries, tiles, indexes, meta and checkpoint to the store as one atomic durable
write. Only then does a caller's future resolve with its :class:`Receipt`.

With a :class:`~ledger.store.StagingStore` (RocksDB) that write comes in two halves: the writer
*stages* the block (written, visible to its own next duplicate check, shown to no reader) and
hands it to a syncer thread, which fsyncs — with the GIL released, so the writer stages the next
block meanwhile — and only then shows the block and resolves its futures. Blocks that queued up
behind one fsync share the next. At most ``_IN_FLIGHT`` blocks are staged and not yet durable.
And when the next block is queued already, its duplicate check (a multi-get, GIL released) is read
in another thread while this block is written, then completed with this block's statements.

When given ``admit`` (the depositor registry's check), every deposit is checked — depositor
registered, key valid at the time of receipt, signature — before anything is queued.

A statement deposited again (a retry) is not appended twice: its receipt names the original
index, with ``duplicate=True``. If a commit fails, every deposit of that block gets the error (and
of every block staged behind it, when an fsync failed); before the next block the writer waits
until nothing is in flight, has the store settle (reopen if need be, make what it holds durable)
and reloads the tree from it, which is the truth whether or not the failed write landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

from .checkpoint import Checkpoint
from .code import DepositCode
from .entry import Deposit, build_entry, format_time
from .errors import CunzhengError, StorageError, Unavailable
from .log import Ledger
from .merkle import leaf_hash
from .store import Block, Head, StagingStore
from .tiles import TiledTree

__all__ = ["Receipt", "Sequencer"]

log = logging.getLogger(__name__)


class Receipt(NamedTuple):
    """What a depositor gets once its deposit is durable."""

    index: int  # type: ignore[assignment]  # the spec's word; shadows tuple.index
    leaf_hash: bytes
    tree_size: int
    checkpoint: bytes
    """The signed note of a checkpoint that includes the deposit."""
    duplicate: bool = False
    """True when this statement had been deposited before: ``index`` is the original."""

    @property
    def code(self) -> DepositCode:
        return DepositCode.from_leaf_hash(self.leaf_hash)


@dataclass(slots=True)
class _Pending:
    deposits: Sequence[Deposit]
    leaves: list[bytes]
    hashes: list[bytes]
    future: Future[list[Receipt]] | asyncio.Future[list[Receipt]]
    loop: asyncio.AbstractEventLoop | None = None
    """Set when ``future`` is an asyncio future of this loop (:meth:`Sequencer.submit_for`)."""


@dataclass(slots=True)
class _Staged:
    """A block the writer has written (or failed to), for the syncer to finish."""

    batch: list[_Pending]
    receipts: list[Receipt] = field(default_factory=list)
    head: Head | None = None
    """What the block makes durable; ``None`` when nothing was written (all duplicates)."""
    old_size: int = 0
    new_size: int = 0
    seconds: float = 0.0
    """How long writing it took (the fsync's time is added when it is done)."""
    error: Exception | None = None


@dataclass(slots=True)
class _Gathered:
    """Requests the writer makes one block of, and perhaps their duplicate check, read ahead."""

    batch: list[_Pending]
    count: int
    keys: list[bytes] | None = None
    """Their statement keys, in order, when read ahead."""
    seen: int = 0
    """How many blocks had been staged when the read ahead began: any later one may be
    missing from its answer."""
    epoch: int = 0
    """The writer's tree reloads when the read ahead began."""
    ahead: Future[list[int | None]] | None = None


_PREFETCH_MIN = 256
"""Deposits from which the next block's duplicate check is read ahead (below, a multi-get is
short, and under 64 keys it is single gets, which hold the GIL)."""

_IN_FLIGHT = 4
"""Blocks written and not yet durable, at most: the writer waits for the syncer beyond that."""

_Outcome = tuple["asyncio.Future[list[Receipt]]", list[Receipt] | None, BaseException | None]


def _attempt(step: Callable[..., object], *args: Any) -> Exception | None:
    """Call ``step(*args)``; the exception it raised, or ``None``."""
    try:
        step(*args)
    except Exception as exc:
        return exc
    return None


def _refuse(item: _Pending, error: Exception) -> None:
    """Fail a queued submission that will not be committed (from any thread)."""
    if item.loop is None:
        item.future.set_exception(error)
    else:
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            outcome: _Outcome = (item.future, None, error)  # type: ignore[assignment]
            item.loop.call_soon_threadsafe(_settle, [outcome])


def _settle(outcomes: list[_Outcome]) -> None:
    """In the event loop: resolve the futures of one block's coroutine submitters."""
    for future, receipts, error in outcomes:
        if future.done():  # the request was cancelled meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(receipts)  # type: ignore[arg-type]  # set when error is None


_STOP = object()


class Sequencer:
    """The single writer of a ledger. Use as a context manager, or :meth:`start` / :meth:`close`."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_batch: int = 8192,
        max_delay: float = 0.0,
        max_pending: int = 1_000_000,
        on_commit: Sequence[Callable[[int], None]] = (),
        admit: Callable[[Sequence[Deposit], int], None] | None = None,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_delay < 0 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be positive, max_delay not negative")
        self.ledger = ledger
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.admit = admit
        """Checks deposits before they are queued (``Registry.admit``: depositor, key, signature);
        raising refuses the whole submission, nothing written."""
        self.on_commit = list(on_commit)
        """Called with the new tree size after each durable block (e.g. Stamper.notify)."""
        self.observe = observe
        """Called with the entries and the seconds of each block's durable write (metrics)."""
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._tree: TiledTree
        self._last: Checkpoint
        self._note = b""
        """The note of the last block written: the receipts' checkpoint when a batch is all
        duplicates."""
        self.blocks = 0
        # With a staging store, a syncer thread makes blocks durable while the writer writes
        # the next one (the fsync releases the GIL): see _finish.
        self._syncs: queue.SimpleQueue[_Staged | object] = queue.SimpleQueue()
        self._syncer: threading.Thread | None = None
        self._flight = threading.Condition()
        self._in_flight = 0
        """Blocks handed to the syncer and not yet finished (guarded by ``_flight``)."""
        self._broken: Exception | None = None
        """Why a sync failed: every block in flight fails with it, until the writer recovers."""
        self._reload = False
        """A commit failed: before the next one, the writer reloads the tree from the store."""
        self._prefetcher: ThreadPoolExecutor | None = None
        """Reads the next block's duplicate check while the writer works (staging store)."""
        self._stages = 0
        """Blocks staged so far."""
        self._epoch = 0
        """Tree reloads so far: a duplicate check read ahead of one is not used after it."""
        self._reading: Future[list[int | None]] | None = None
        """The last read ahead submitted."""
        self._last_keys: dict[bytes, int] | None = None
        """Statement keys → indexes of the block staged last, when a read ahead needs them."""
        self._staged: deque[tuple[int, list[bytes]]] = deque()
        """(first index, leaf hashes) of the last blocks staged, which may not be durable yet
        (the store shows none of them then); the writer's alone."""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sequencer:
        if self._thread is not None:
            return self
        store = self.ledger.store
        if isinstance(store, StagingStore):
            store.settle()  # a block staged before a failed fsync may be there, or not
        self._load()
        if isinstance(store, StagingStore):
            self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="cunzheng-prefetch")
            self._syncer = threading.Thread(
                target=self._sync_run, name="cunzheng-syncer", daemon=True
            )
            self._syncer.start()
        self._thread = threading.Thread(target=self._run, name="cunzheng-sequencer", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Commit what is pending, then stop. Later submits raise :class:`Unavailable`."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._syncer is not None:  # after the writer: it finishes what was written
            self._syncs.put(_STOP)
            self._syncer.join()
            self._syncer = None
        if self._prefetcher is not None:
            self._prefetcher.shutdown()
            self._prefetcher = None
        while True:  # queued after the writer stopped (a submit racing close): refused
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Pending):
                _refuse(item, Unavailable("the sequencer stopped; retry"))
                with self._pending_lock:
                    self._pending -= len(item.deposits)

    def __enter__(self) -> Sequencer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> None:
        """(Re)build the in-memory tree from the store and check it against the head."""
        head, checkpoint = self.ledger.checked_head()
        self._tree = TiledTree.load(head.size, self.ledger.read_tiles)
        self._last = checkpoint
        self._note = head.note
        self._epoch += 1  # what was read ahead before is stale: the store may have lost blocks
        self._staged.clear()
        self._reload = False
        with self._flight:
            self._broken = None

    # --- intake (any thread) -----------------------------------------------------------------

    def submit_many(self, deposits: Sequence[Deposit]) -> Future[list[Receipt]]:
        """Queue deposits (received now); the future resolves, with one receipt per deposit in
        order, once they are durable. They may be spread over more than one block."""
        return self._enqueue(deposits, self._received(deposits))

    def _received(self, deposits: Sequence[Deposit], admitted_at: int | None = None) -> list[bytes]:
        """The entries of deposits received now, once admitted — or received at
        ``admitted_at`` (Unix ms), when the caller admitted them itself then."""
        if self._closed or self._thread is None:
            raise Unavailable("the sequencer is not running")
        if admitted_at is not None:
            now = admitted_at
        else:
            now = self.ledger.clock()
            if self.admit is not None:
                self.admit(deposits, now)
        received_at = format_time(now)
        return [build_entry(d, received_at) for d in deposits]

    def submit_received(
        self, deposits: Sequence[Deposit], received_at: Sequence[int]
    ) -> Future[list[Receipt]]:
        """Queue deposits that were admitted and received earlier, elsewhere — by a cluster
        node's intake (:mod:`ledger.cluster`) — each with its receipt time in Unix ms, which
        becomes its entry's ``received_at``. No admission check here: it was done at intake."""
        if self._closed or self._thread is None:
            raise Unavailable("the sequencer is not running")
        leaves = [
            build_entry(d, format_time(t)) for d, t in zip(deposits, received_at, strict=True)
        ]
        return self._enqueue(deposits, leaves)

    def submit_for(
        self,
        deposits: Sequence[Deposit],
        loop: asyncio.AbstractEventLoop,
        waiter: asyncio.Future[list[Receipt]],
    ) -> None:
        """:meth:`submit_many` for a coroutine (call it from any thread): the receipts, or the
        commit's error, are set on ``waiter``, a future of ``loop``. A block's submitters of one
        loop are all woken by one call into it, not one each: every cross-thread wake-up costs
        the writer the GIL back, up to a switch interval while the loop is busy."""
        self._enqueue(deposits, self._received(deposits), (loop, waiter))

    def submit_each_for(
        self,
        requests: Sequence[tuple[Sequence[Deposit], asyncio.Future[list[Receipt]]]],
        loop: asyncio.AbstractEventLoop,
        *,
        admitted_at: int | None = None,
    ) -> list[Exception | None]:
        """:meth:`submit_for` of many requests at once: each is admitted on its own (its
        refusal is returned in its place, nothing of it queued), then all are queued together,
        so that the writer, woken by the first, finds the others there and makes one block of
        them (the writer's cost is mostly per block). With ``admitted_at`` (Unix ms), the
        caller has admitted them itself then (signatures checked in another process), and that
        is their receipt time."""
        leaves: list[list[bytes]] = []
        outcomes = [
            _attempt(lambda d: leaves.append(self._received(d, admitted_at)), deposits)
            for deposits, _ in requests
        ]
        admitted = iter(leaves)
        for n, (deposits, waiter) in enumerate(requests):
            if outcomes[n] is None:  # queued only now, all together; back pressure may refuse
                outcomes[n] = _attempt(self._enqueue, deposits, next(admitted), (loop, waiter))
        return outcomes

    def _enqueue(
        self,
        deposits: Sequence[Deposit],
        leaves: list[bytes],
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[list[Receipt]]] | None = None,
    ) -> Future[list[Receipt]]:
        hashes = [leaf_hash(leaf) for leaf in leaves]
        with self._pending_lock:
            if self._pending + len(deposits) > self.max_pending:
                raise Unavailable(
                    f"{self._pending} deposits are waiting to be committed; retry shortly",
                    pending=self._pending,
                )
            self._pending += len(deposits)
        future: Future[list[Receipt]] = Future()
        if waiter is None:
            self._queue.put(_Pending(deposits, leaves, hashes, future))
        else:
            self._queue.put(_Pending(deposits, leaves, hashes, waiter[1], waiter[0]))
        return future

    def append(self, deposits: Sequence[Deposit]) -> list[Receipt]:
        """Deposit and wait until durable (for scripts and tools)."""
        return self.submit_many(deposits).result()

    async def deposit(self, deposit: Deposit) -> Receipt:
        (receipt,) = await asyncio.wrap_future(self.submit_many([deposit]))
        return receipt

    async def deposit_many(self, deposits: Sequence[Deposit]) -> list[Receipt]:
        return await asyncio.wrap_future(self.submit_many(deposits))

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        carried: _Gathered | None = None
        stopping = False
        while True:
            if carried is None:
                if stopping:
                    break
                item = self._queue.get()
                if item is _STOP:
                    break
                assert isinstance(item, _Pending)
                gathered, stopping = self._gather([item], wait=True)
            else:
                gathered, carried = carried, None
                if gathered.ahead is None and not stopping:  # taken without waiting: top it
                    gathered, stopping = self._gather(gathered.batch, wait=True)  # up as usual
            if self._prefetcher is not None and not stopping:
                # What is queued already becomes the next block: its duplicate check is read now,
                # beside this block's work (the multi-get releases the GIL), and completed with
                # this block's keys once it is staged (_found).
                carried, stopping = self._gather([], wait=False)
                if carried.count >= _PREFETCH_MIN:
                    self._read_ahead(carried)
                elif not carried.batch:
                    carried = None
            self._commit(gathered, remember=carried is not None and carried.ahead is not None)

    def _gather(self, batch: list[_Pending], *, wait: bool) -> tuple[_Gathered, bool]:
        """``batch`` and what is queued after it, up to ``max_batch`` deposits; with ``wait``,
        waiting at most ``max_delay`` for more. Also whether the stop came."""
        count = sum(len(p.deposits) for p in batch)
        deadline = time.monotonic() + self.max_delay
        while count < self.max_batch:
            try:
                remaining = deadline - time.monotonic() if wait else 0.0
                nxt = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if nxt is _STOP:
                return _Gathered(batch, count), True
            assert isinstance(nxt, _Pending)
            batch.append(nxt)
            count += len(nxt.deposits)
        return _Gathered(batch, count), False

    def _read_ahead(self, gathered: _Gathered) -> None:
        """Start reading ``gathered``'s duplicate check in the helper thread."""
        keys = [d.statement.key for p in gathered.batch for d in p.deposits]
        gathered.keys, gathered.seen, gathered.epoch = keys, self._stages, self._epoch
        try:
            gathered.ahead = self._reading = self._prefetcher.submit(  # type: ignore[union-attr]
                self._staged_lookup, keys
            )
        except RuntimeError:  # shutting down: it is read when its block is made
            gathered.ahead = None

    def _staged_lookup(self, keys: list[bytes]) -> list[int | None]:
        return self.ledger.store.staged_indexes_by_statement(keys)  # type: ignore[attr-defined, no-any-return]

    def _commit(self, gathered: _Gathered, *, remember: bool = False) -> None:
        batch = gathered.batch
        try:
            if self._reload or self._broken is not None:
                self._recover()
            staged = self._integrate(gathered, remember=remember)
        except Exception as exc:
            error = exc if isinstance(exc, CunzhengError) else StorageError(f"commit failed: {exc}")
            if not isinstance(exc, CunzhengError):
                log.exception("sequencer commit failed")
            staged = _Staged(batch, error=error)
            self._reload = True  # before the next block: the tree again from the store
        if self._syncer is None:
            self._finish([staged])
            return
        with self._flight:
            while self._in_flight >= _IN_FLIGHT:
                self._flight.wait()
            self._in_flight += 1
        self._syncs.put(staged)

    def _recover(self) -> None:
        """After a failed commit: once every block in flight is settled, take the store's head
        as the truth (a block that failed may have landed, or not) and reload the tree."""
        with self._flight:
            while self._in_flight:
                self._flight.wait()
        if self._reading is not None:  # no read may be under way while the store reopens
            futures_wait([self._reading])
        store = self.ledger.store
        if self._syncer is not None and isinstance(store, StagingStore):
            store.settle()
        self.ledger.forget()  # tiles read before a failed fsync may be of a lost block
        self._load()

    def _sync_run(self) -> None:
        """The syncer thread: makes staged blocks durable, several with one fsync when they
        queued up meanwhile, and only then hands out their receipts."""
        stopping = False
        while not stopping:
            item = self._syncs.get()
            if item is _STOP:
                break
            group = [item]
            while True:
                try:
                    nxt = self._syncs.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
            try:
                self._finish(group)  # type: ignore[arg-type]  # every item but _STOP is _Staged
            except Exception:  # a bug: keep syncing, the writer must not wait forever
                log.exception("finishing committed blocks failed")
            finally:
                with self._flight:
                    self._in_flight -= len(group)
                    self._flight.notify_all()

    def _finish(self, group: list[_Staged]) -> None:
        """Make ``group``'s staged blocks durable (with a staging store, in the syncer thread),
        then deliver their receipts, or every one's error when that fails."""
        failure = self._broken
        heads = [s.head for s in group if s.head is not None and s.error is None]
        synced = 0.0
        if heads and failure is None and self._syncer is not None:
            started = time.perf_counter()
            try:
                self.ledger.store.sync(heads[-1])  # type: ignore[attr-defined]  # StagingStore
            except Exception as exc:
                failure = (
                    exc if isinstance(exc, CunzhengError) else StorageError(f"commit failed: {exc}")
                )
                if not isinstance(exc, CunzhengError):
                    log.exception("sequencer sync failed")
                with self._flight:
                    self._broken = failure
            synced = time.perf_counter() - started

        outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        count = sum(len(p.deposits) for staged in group for p in staged.batch)
        try:
            for staged in group:
                error = staged.error or failure
                if error is None and staged.head is not None:
                    try:
                        self._committed(staged, synced)
                    except Exception:
                        log.exception("after a commit: a metric, proof memo or hook failed")
                start = 0
                for p in staged.batch:
                    end = start + len(p.deposits)
                    receipts = None if error is not None else staged.receipts[start:end]
                    start = end
                    if p.loop is not None:
                        outcome = (p.future, receipts, error)
                        outcomes.setdefault(p.loop, []).append(outcome)  # type: ignore[arg-type]
                    elif not p.future.done():  # a caller may have cancelled it meanwhile
                        with contextlib.suppress(InvalidStateError):
                            if error is not None:
                                p.future.set_exception(error)
                            else:
                                p.future.set_result(receipts)  # type: ignore[arg-type]
        finally:
            with self._pending_lock:
                self._pending -= count
            for loop, settled in outcomes.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)

    def _committed(self, staged: _Staged, synced: float) -> None:
        """A block is durable: metrics, the proof memo for its receipts, and the hooks."""
        if self.observe is not None:
            self.observe(staged.new_size - staged.old_size, staged.seconds + synced)
        if len(staged.batch) > 1:  # receipts of many requests: they will ask for proofs one by one
            self.ledger.committed(staged.old_size, staged.new_size)
        for hook in self.on_commit:
            try:
                hook(staged.new_size)
            except Exception:
                log.exception("an on_commit hook failed")

    def _integrate(self, gathered: _Gathered, *, remember: bool = False) -> _Staged:
        """Append the gathered requests to the tree and write them as one block: durable when
        this returns (a plain store), or staged, for the syncer to make durable (a staging
        store). With ``remember``, keep the block's statement keys for the next block's
        duplicate check, read ahead of this block's write (:meth:`_found`)."""
        store = self.ledger.store
        batch = gathered.batch
        deposits = [d for p in batch for d in p.deposits]
        hashes = [h for p in batch for h in p.hashes]
        keys = gathered.keys or [d.statement.key for d in deposits]
        staging = self._syncer is not None

        # A statement already in the log, or earlier in this block, is not appended again
        # (blocks staged and not yet durable included: the store does not show them to others).
        found = self._found(gathered, keys) if staging else store.indexes_by_statement(keys)
        known: dict[bytes, int] = {}
        for key, index in zip(keys, found, strict=True):
            if index is not None:
                known[key] = index
        old_size = self._tree.size
        fresh: list[int] = []  # positions in `deposits` that become new leaves
        if known or len(set(keys)) != len(keys):
            for i, key in enumerate(keys):
                if key not in known:
                    known[key] = old_size + len(fresh)
                    fresh.append(i)
        else:
            fresh = list(range(len(deposits)))

        head: Head | None = None
        seconds = 0.0
        if fresh:
            if len(fresh) == len(deposits):
                new_deposits, new_hashes, new_keys = deposits, hashes, keys
                new_leaves = [leaf for p in batch for leaf in p.leaves]
            else:
                leaves = [leaf for p in batch for leaf in p.leaves]
                new_deposits = [deposits[i] for i in fresh]
                new_hashes = [hashes[i] for i in fresh]
                new_leaves = [leaves[i] for i in fresh]
                new_keys = [keys[i] for i in fresh]
            tiles = self._tree.extend(new_hashes)
            checkpoint = Checkpoint(
                self.ledger.origin,
                self._tree.size,
                self._tree.root(),
                max(self.ledger.clock(), self._last.time_ms or 0),
                self._last.body_hash(),
            )
            note = self.ledger.signer.sign(checkpoint.body())
            metas = {old_size + n: d.meta for n, d in enumerate(new_deposits) if d.meta is not None}
            cases = {old_size + n: d.case for n, d in enumerate(new_deposits) if d.case is not None}
            block = Block(
                old_size, new_leaves, new_hashes, new_keys, tiles, note, metas, cases=cases
            )
            started = time.perf_counter()
            if staging:
                head = store.stage(block)  # type: ignore[attr-defined]  # StagingStore
                self._stages += 1
                self._last_keys = (
                    dict(zip(new_keys, range(old_size, self._tree.size), strict=True))
                    if remember
                    else None
                )
                staged = self._staged
                while len(staged) >= _IN_FLIGHT + 1:  # more than can be in flight: durable
                    staged.popleft()
                staged.append((old_size, new_hashes))
            else:
                store.commit(block)
                head = Head(self._tree.size, note)
            seconds = time.perf_counter() - started
            self._last = checkpoint
            self._note = note
            self.blocks += 1
        size, note = self._tree.size, self._note

        if len(fresh) == len(deposits):  # tuple.__new__ over zip: no bytecode per receipt
            fields = zip(range(old_size, size), hashes, repeat(size), repeat(note), repeat(False))
            receipts = list(map(tuple.__new__, repeat(Receipt), fields))
        else:
            receipts = []
            for i, key in enumerate(keys):
                index = known[key]
                if index >= old_size and fresh[index - old_size] == i:
                    receipts.append(Receipt(index, hashes[i], size, note))
                else:
                    h = (
                        new_hashes[index - old_size]
                        if index >= old_size
                        else self._leaf_hash(index)
                    )
                    receipts.append(Receipt(index, h, size, note, duplicate=True))
        return _Staged(batch, receipts, head, old_size, size, seconds)

    def _found(self, gathered: _Gathered, keys: list[bytes]) -> list[int | None]:
        """Where each statement is in the log already, staged blocks included. Read ahead
        (before the block staged last was written), the answer is completed with that block's
        keys; any other case is read now."""
        ahead, gathered.ahead = gathered.ahead, None
        if ahead is not None and gathered.epoch == self._epoch:  # not read before a recovery
            found = ahead.result()
            newer = self._stages - gathered.seen
            if newer == 0:
                return found
            last = self._last_keys
            if newer == 1 and last is not None:
                get = last.get
                return [get(key) if i is None else i for i, key in zip(found, keys, strict=True)]
        return self._staged_lookup(keys)

    def _leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``: of a block staged here, or read from the store."""
        for old_size, hashes in self._staged:
            if old_size <= index < old_size + len(hashes):
                return hashes[index - old_size]
        return leaf_hash(self.ledger.entry(index))
