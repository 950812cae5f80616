"""Group commit: receipts only when durable, chained checkpoints, retries, faults, resumption."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, NoteSigner, open_checkpoint
from ledger.entry import Deposit
from ledger.errors import InvalidDigest, InvalidStatement, StorageError, TooLarge, Unavailable
from ledger.log import Ledger
from ledger.merkle import leaf_hash
from ledger.sequencer import Sequencer, _Gathered
from ledger.storage.memory import MemoryStore
from ledger.storage.rocksdb import RocksStore
from ledger.store import Store
from ledger.tiles import TileID
from tests import reference
from tests.conftest import ORIGIN, make_deposit
from verifier.proof import verify_consistency, verify_inclusion

FIXED_CLOCK = 1_795_510_000_000
SIGNER = NoteSigner.from_seed(ORIGIN, bytes(32))
DEPOSITS = [make_deposit(i) for i in range(64)]


def checkpoints(ledger: Ledger) -> list[Checkpoint]:
    return [
        open_checkpoint(h.note, [ledger.verifier]).checkpoint for h in ledger.store.checkpoints()
    ]


def test_receipts_verify_against_their_checkpoint(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        receipts = seq.append(DEPOSITS[:10]) + seq.append(DEPOSITS[10:25])
    for i, r in enumerate(receipts):
        assert r.index == i and not r.duplicate
        leaf = ledger.entry(i)
        assert r.leaf_hash == leaf_hash(leaf) and r.code.matches(leaf_hash(leaf))
        cp = open_checkpoint(r.checkpoint, [ledger.verifier]).checkpoint
        assert cp.size == r.tree_size > i
        verify_inclusion(
            index=i, size=cp.size, leaf_hash=r.leaf_hash,
            path=ledger.inclusion_proof(i, cp.size), root=cp.root_hash,
        )  # fmt: skip


def test_checkpoints_chain_and_extend_each_other(ledger: Ledger) -> None:
    with Sequencer(ledger, max_delay=0) as seq:
        for start in range(0, 64, 7):
            seq.append(DEPOSITS[start : start + 7])
    cps = checkpoints(ledger)
    assert [c.size for c in cps] == [0, *range(7, 64, 7), 64]
    for prev, cp in itertools.pairwise(cps):
        assert cp.prev == prev.body_hash()
        assert cp.time_ms is not None and prev.time_ms is not None and cp.time_ms >= prev.time_ms
        verify_consistency(
            size1=prev.size, size2=cp.size, root1=prev.root_hash, root2=cp.root_hash,
            path=ledger.consistency_proof(prev.size, cp.size),
        )  # fmt: skip
    assert cps[-1].root_hash == reference.mth(ledger.store.entries(0, 64))


def test_time_never_goes_backwards(store: Store) -> None:
    # The clock is read at genesis, then at each submit (received_at) and each checkpoint.
    times = iter([5_000, 4_000, 3_000, 2_000, 1_000, 9_000, 9_500])
    ledger = Ledger.open(store, SIGNER, clock=lambda: next(times))
    with Sequencer(ledger, max_delay=0) as seq:
        for d in DEPOSITS[:3]:
            seq.append([d])
    assert [c.time_ms for c in checkpoints(ledger)] == [5_000, 5_000, 5_000, 9_500]


def test_a_repeated_statement_is_not_appended_twice(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        first = seq.append(DEPOSITS[:3])
        again = seq.append([DEPOSITS[1], DEPOSITS[3], DEPOSITS[3]])
    assert [r.index for r in again] == [1, 3, 3]
    assert [r.duplicate for r in again] == [True, False, True]
    assert again[0].leaf_hash == first[1].leaf_hash and again[0].code == first[1].code
    assert ledger.head_size() == 4


def test_only_duplicates_writes_nothing(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:2])
        blocks = seq.blocks
        r = seq.append(DEPOSITS[:2])
        assert seq.blocks == blocks
    assert all(x.duplicate for x in r) and ledger.head_size() == 2


def test_concurrent_submitters_are_grouped(ledger: Ledger) -> None:
    results: list[int] = []
    lock = threading.Lock()
    with Sequencer(ledger, max_delay=0.01) as seq:

        def worker(k: int) -> None:
            for d in DEPOSITS[k::8]:
                r = seq.append([d])
                with lock:
                    results.append(r[0].index)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seq.blocks < 64  # group commit: fewer blocks than deposits
    assert sorted(results) == list(range(64))


def test_async_deposit(ledger: Ledger) -> None:
    async def main() -> list[int]:
        with Sequencer(ledger) as seq:
            one = await seq.deposit(DEPOSITS[0])
            many = await seq.deposit_many(DEPOSITS[1:4])
            return [one.index] + [r.index for r in many]

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_closed_sequencer_refuses(ledger: Ledger) -> None:
    seq = Sequencer(ledger)
    with pytest.raises(Unavailable):
        seq.submit_many(DEPOSITS[:1])
    seq.start()
    seq.close()
    with pytest.raises(Unavailable):
        seq.submit_many(DEPOSITS[:1])


def test_back_pressure(ledger: Ledger) -> None:
    with Sequencer(ledger, max_pending=3) as seq, pytest.raises(Unavailable, match="waiting"):
        seq.submit_many(DEPOSITS[:4])
    assert ledger.head_size() == 0


def test_lost_commit_acknowledges_nothing() -> None:
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:2])
        store.fail_next_commit = "lose"
        with pytest.raises(StorageError, match="lost"):
            seq.append(DEPOSITS[2:5])
        assert ledger.head_size() == 2
        after = seq.append(DEPOSITS[2:5])  # the retry lands where the lost block would have
    assert [r.index for r in after] == [2, 3, 4] and not any(r.duplicate for r in after)
    ledger.checked_head()


def test_persisted_but_unacknowledged_commit_dedupes_on_retry() -> None:
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)
    with Sequencer(ledger) as seq:
        store.fail_next_commit = "persist"
        with pytest.raises(StorageError):
            seq.append(DEPOSITS[:3])
        assert ledger.head_size() == 3
        retry = seq.append(DEPOSITS[:4])
    assert [r.index for r in retry] == [0, 1, 2, 3]
    assert [r.duplicate for r in retry] == [True, True, True, False]
    ledger.checked_head()


def test_tree_that_disagrees_with_its_checkpoint_is_refused() -> None:
    store = MemoryStore()
    with Sequencer(Ledger.open(store, SIGNER)) as seq:
        seq.append(DEPOSITS[:5])
    record = store._tiles[TileID(0, 0)]
    store._tiles[TileID(0, 0)] = record[:32] + bytes(32) + record[64:]
    with pytest.raises(StorageError, match="does not match its checkpoint"):
        Sequencer(Ledger.open(store, SIGNER)).start()


def _build(store: Store, splits: list[list[int]]) -> tuple[bytes, list[bytes]]:
    ledger = Ledger.open(store, SIGNER, clock=lambda: FIXED_CLOCK)
    codes = []
    with Sequencer(ledger, max_delay=0) as seq:
        for part in splits:
            codes += [r.code.bits for r in seq.append([DEPOSITS[i] for i in part])]
    return ledger.checked_head()[1].root_hash, codes


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_any_batch_split_gives_the_same_roots_and_codes(cuts: list[int]) -> None:
    order = list(range(64))
    splits, start = [], 0
    for c in cuts:
        splits.append(order[start : start + c])
        start += c
    splits.append(order[start:])
    splits = [s for s in splits if s]
    one_root, one_codes = _build(MemoryStore(), [order])
    store = MemoryStore()
    root, codes = _build(store, splits)
    assert root == one_root and codes == one_codes
    # The checkpoints chain: each names the body of the one before.
    chain = [Checkpoint.parse(SIGNER.verifier.verify(h.note)) for h in store.checkpoints()]
    assert [c.size for c in chain] == [0, *itertools.accumulate(len(s) for s in splits)]
    for prev, cp in itertools.pairwise(chain):
        assert cp.prev == prev.body_hash()


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
@settings(max_examples=12, deadline=None)
@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=6))
def test_reopen_after_any_number_of_commits_gives_identical_state(
    backend: str, sizes: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = MemoryStore()

        def reopen(previous: Store | None) -> Store:
            if backend == "memory":
                return memory
            if previous is not None:
                previous.close()
            return RocksStore(Path(tmp) / "db")

        store = reopen(None)
        position = 0
        for size in sizes:
            ledger = Ledger.open(store, SIGNER, clock=lambda: FIXED_CLOCK)
            with Sequencer(ledger) as seq:
                seq.append(DEPOSITS[position : position + size])
            before = ledger.checked_head()
            position = min(position + size, 64)
            store = reopen(store)
            after = Ledger.open(store, SIGNER).checked_head()
            assert after == before
            assert after[0].size == position
            assert after[1].root_hash == reference.mth(store.entries(0, position))
        store.close()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"v":1}', InvalidStatement),
        (DEPOSITS[0].statement.raw.replace(b'"sha256"', b'"md5"'), InvalidDigest),
        (DEPOSITS[0].statement.raw.replace(b'"digest":"', b'"digest":"ab'), InvalidDigest),
        (DEPOSITS[0].statement.raw.replace(b'"digest":"', b'"digest":"zz')[:-1], InvalidStatement),
        (DEPOSITS[0].statement.raw.replace(b'"sha256"', b'"sha512"'), InvalidDigest),
        (DEPOSITS[0].statement.raw[:-1] + b',"x":"' + b"y" * 3000 + b'"}', TooLarge),
    ],
)
def test_bad_input_writes_nothing(ledger: Ledger, raw: bytes, error: type[Exception]) -> None:
    with Sequencer(ledger) as seq:
        with pytest.raises(error):
            seq.append([Deposit.create(raw, DEPOSITS[0].sig)])
        assert seq.blocks == 0
    assert ledger.head_size() == 0
    assert ledger.store.entry(0) is None


def test_coroutine_submitters_get_their_receipts_with_one_wake_up_per_block(
    ledger: Ledger,
) -> None:
    """``submit_for``: each waiter gets its own receipts; the writer wakes the loop once for a
    block, whatever the number of requests in it."""
    wake_ups: list[int] = []

    async def main() -> list[list[int]]:
        loop = asyncio.get_running_loop()
        real = loop.call_soon_threadsafe

        def counted(callback, *args):  # type: ignore[no-untyped-def]
            wake_ups.append(len(args[0]) if args else 0)
            return real(callback, *args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        gate = threading.Event()
        with Sequencer(ledger) as seq:
            seq.submit_many(DEPOSITS[:1]).result()
            original = seq._integrate

            def held(*args, **options):  # type: ignore[no-untyped-def]
                gate.wait(5)  # let all eight requests queue up behind the first
                return original(*args, **options)

            seq._integrate = held  # type: ignore[method-assign]
            waiters = [loop.create_future() for _ in range(8)]
            for n, waiter in enumerate(waiters):
                seq.submit_for(DEPOSITS[1 + 2 * n : 3 + 2 * n], loop, waiter)
            gate.set()
            receipts = await asyncio.gather(*waiters)
            assert seq.blocks <= 3
        return [[r.index for r in rs] for rs in receipts]

    indexes = asyncio.run(main())
    assert indexes == [[1 + 2 * n, 2 + 2 * n] for n in range(8)]
    assert sum(wake_ups) == 8 and len(wake_ups) <= 2  # the held block, and perhaps one more


def test_coroutine_submitters_are_refused_and_failed_like_the_others() -> None:
    store = MemoryStore()
    ledger = Ledger.open(store, SIGNER)

    def no(deposits, at):  # type: ignore[no-untyped-def]
        raise InvalidStatement("refused by admission")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with Sequencer(ledger) as seq:
            store.fail_next_commit = "lose"
            waiter = loop.create_future()
            seq.submit_for(DEPOSITS[:2], loop, waiter)
            with pytest.raises(StorageError, match="lost"):
                await waiter  # the commit's error reaches the coroutine
            seq.admit = no
            with pytest.raises(InvalidStatement):  # admission refuses at once, in the caller
                seq.submit_for(DEPOSITS[:2], loop, loop.create_future())
        with pytest.raises(Unavailable):
            seq.submit_for(DEPOSITS[:2], loop, loop.create_future())

    asyncio.run(main())
    assert ledger.head_size() == 0


# --- a staging store: the next block is written while the last one's fsync runs -------------


class _HeldSyncs:
    """Wraps a RocksStore's database: each ``flush_wal`` waits for ``release`` (so a test can
    act while a block's fsync is under way), and fails while ``fail`` is set."""

    def __init__(self, db: object) -> None:
        self.db = db
        self.syncing = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)

    def __getitem__(self, keys: object) -> object:
        return self.db[keys]  # type: ignore[index]

    def flush_wal(self, sync: bool) -> None:
        self.syncing.set()
        self.release.wait(10)
        if self.fail:
            raise OSError("simulated: fsync failed (EIO)")
        self.db.flush_wal(sync)  # type: ignore[attr-defined]


def _rocks(tmp_path: Path) -> tuple[RocksStore, Ledger]:
    store = RocksStore(tmp_path / "db")
    return store, Ledger.open(store, SIGNER)


def test_next_block_is_written_while_the_last_one_syncs(tmp_path: Path) -> None:
    """Block 2 is staged during block 1's fsync; neither is shown or acknowledged before its
    fsync; a statement of block 1 repeated in block 2 is a duplicate of it, with its hash."""
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:1])
        held = _HeldSyncs(store._db)
        store._db = held  # type: ignore[assignment]
        try:
            first = seq.submit_many(DEPOSITS[1:3])
            assert held.syncing.wait(10)
            second = seq.submit_many([DEPOSITS[2], DEPOSITS[3]])
            pause = threading.Event()
            for _ in range(500):  # staged: in the database, not shown, not acknowledged
                if held.db.get(b"e" + (3).to_bytes(8, "big")) is not None:  # type: ignore[attr-defined]
                    break
                pause.wait(0.01)
            else:
                pytest.fail("block 2 was not written during block 1's fsync")
            assert not first.done() and not second.done()
            assert ledger.head_size() == 1 and store.entry(1) is None
            assert store.indexes_by_statement([DEPOSITS[3].statement.key]) == [None]
            held.release.set()
            one, two = first.result(10), second.result(10)
        finally:
            held.release.set()
            store._db = held.db  # type: ignore[assignment]
    assert [r.index for r in one] == [1, 2] and [r.index for r in two] == [2, 3]
    assert [r.duplicate for r in two] == [True, False]
    assert two[0].leaf_hash == one[1].leaf_hash == leaf_hash(store.entry(2) or b"")
    head, _ = ledger.checked_head()
    assert head.size == 4
    for r in one + two:  # each against the checkpoint its receipt names
        cp = open_checkpoint(r.checkpoint, [ledger.verifier]).checkpoint
        assert cp.size == r.tree_size > r.index
        verify_inclusion(
            index=r.index, size=cp.size, leaf_hash=r.leaf_hash,
            path=ledger.inclusion_proof(r.index, cp.size), root=cp.root_hash,
        )  # fmt: skip
    store.close()


def test_failed_fsync_fails_every_block_in_flight_then_recovers(tmp_path: Path) -> None:
    """An fsync fails: its block and the one staged behind it get the error, nothing of them is
    acknowledged; the sequencer reopens the store, reloads its tree from what landed, and the
    retries are appended once (or found as duplicates): the tree agrees with its checkpoint."""
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        acked = seq.append(DEPOSITS[:2])
        held = _HeldSyncs(store._db)
        store._db = held  # type: ignore[assignment]
        held.fail = True
        first = seq.submit_many(DEPOSITS[2:4])
        assert held.syncing.wait(10)
        second = seq.submit_many(DEPOSITS[4:6])
        threading.Event().wait(0.2)  # let the writer stage the second block behind the first
        held.release.set()
        for future in (first, second):
            with pytest.raises(StorageError, match="fsync failed"):
                future.result(10)
        # The reopen replaces the wrapped database: later syncs are real.
        retry = seq.append(DEPOSITS[2:8])
    assert [r.index for r in acked] == [0, 1]
    assert [r.index for r in retry] == [2, 3, 4, 5, 6, 7]
    head, _ = ledger.checked_head()
    assert head.size == 8
    assert [leaf_hash(e) for e in store.entries(0, 8)] == [r.leaf_hash for r in acked + retry]
    store.close()
    reopened = RocksStore(tmp_path / "db")
    again = Ledger.open(reopened, SIGNER)
    assert again.checked_head()[0].size == 8
    reopened.close()


def test_failed_stage_fails_its_block_and_the_writer_recovers(tmp_path: Path) -> None:
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:1])
        real = store.stage
        calls = itertools.count()

        def failing(block):  # type: ignore[no-untyped-def]
            if next(calls) == 0:
                raise OSError("simulated: write failed")
            return real(block)

        store.stage = failing  # type: ignore[method-assign]
        with pytest.raises(StorageError, match="write failed"):
            seq.append(DEPOSITS[1:3])
        receipts = seq.append(DEPOSITS[1:3])
    assert [r.index for r in receipts] == [1, 2] and not any(r.duplicate for r in receipts)
    assert ledger.checked_head()[0].size == 3
    store.close()


def test_a_cancelled_future_does_not_hold_up_the_others(tmp_path: Path) -> None:
    """A caller gives up on its future while its block syncs: the others of the group still get
    their receipts, and nothing stays counted as pending."""
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        held = _HeldSyncs(store._db)
        store._db = held  # type: ignore[assignment]
        try:
            gone = seq.submit_many(DEPOSITS[:2])
            assert held.syncing.wait(10)
            kept = seq.submit_many(DEPOSITS[2:4])
            assert gone.cancel()
            held.release.set()
            assert [r.index for r in kept.result(10)] == [2, 3]
        finally:
            held.release.set()
            store._db = held.db  # type: ignore[assignment]
        assert seq._pending == 0
        assert [r.index for r in seq.append(DEPOSITS[:2])] == [0, 1]  # in the log all the same
    store.close()


def test_restart_after_a_failed_fsync_takes_the_store_as_it_is(tmp_path: Path) -> None:
    """Closed right after an fsync failed (no block came to make the writer recover): a new
    start settles the store first, and appends follow whatever landed."""
    store, ledger = _rocks(tmp_path)
    seq = Sequencer(ledger).start()
    seq.append(DEPOSITS[:1])
    held = _HeldSyncs(store._db)
    store._db = held  # type: ignore[assignment]
    held.fail = True
    held.release.set()
    with pytest.raises(StorageError, match="fsync failed"):
        seq.append(DEPOSITS[1:3])
    seq.close()
    with Sequencer(ledger) as again:
        receipts = again.append(DEPOSITS[1:4])
    assert [r.index for r in receipts] == [1, 2, 3]
    assert ledger.checked_head()[0].size == 4
    store.close()


def test_next_blocks_duplicate_check_read_ahead_sees_the_block_written_meanwhile(
    tmp_path: Path,
) -> None:
    """The next block's duplicate check is read while this block is written, so it cannot see
    this block's statements: it is completed with them. Here the read is made to finish before
    the write begins; a statement of block A repeated in block B is still found in A."""
    store, ledger = _rocks(tmp_path)
    a = [make_deposit(1000 + i) for i in range(300)]
    b = [make_deposit(2000 + i) for i in range(299)] + [a[7]]
    with Sequencer(ledger, max_batch=300) as seq:
        seq.append(DEPOSITS[:1])
        gate, inside, read = threading.Event(), threading.Event(), threading.Event()
        original_integrate, original_lookup, original_stage = (
            seq._integrate,
            seq._staged_lookup,
            store.stage,
        )
        lookups: list[int] = []

        def held(*args, **options):  # type: ignore[no-untyped-def]
            inside.set()
            gate.wait(10)  # A and B queue up meanwhile, each a block (max_batch)
            return original_integrate(*args, **options)

        def lookup(keys):  # type: ignore[no-untyped-def]
            found = original_lookup(keys)
            lookups.append(len(keys))
            if len(keys) == len(b):
                read.set()
            return found

        def stage(block):  # type: ignore[no-untyped-def]
            if block.statement_keys[0] == a[0].statement.key:  # A: written once B's read is done
                assert read.wait(10)
            return original_stage(block)

        seq._integrate = held  # type: ignore[method-assign]
        seq._staged_lookup = lookup  # type: ignore[method-assign]
        store.stage = stage  # type: ignore[method-assign]
        held_block = seq.submit_many(DEPOSITS[1:2])
        assert inside.wait(10)  # the writer holds that block: A and B come after it
        first, second = seq.submit_many(a), seq.submit_many(b)
        gate.set()
        held_block.result(10)
        ra, rb = first.result(10), second.result(10)
    assert len(b) in lookups  # B's check was read ahead, and A's was not read again for it
    assert [r.index for r in ra] == list(range(2, 302))
    assert rb[-1].duplicate and rb[-1].index == ra[7].index == 9
    assert rb[-1].leaf_hash == ra[7].leaf_hash
    assert [r.index for r in rb[:-1]] == list(range(302, 601))
    assert ledger.checked_head()[0].size == 601
    store.close()


def test_a_duplicate_check_read_ahead_of_a_recovery_is_not_used_after_it(tmp_path: Path) -> None:
    """A recovery may drop a staged block whose fsync failed: a check read before it could name
    that block's indexes, so after a reload it is read again; and the recovery waits for a read
    under way before the store reopens."""
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:1])
        key = DEPOSITS[5].statement.key
        stale: Future[list[int | None]] = Future()
        stale.set_result([3])  # as if read while a block that was then lost held it at 3
        gathered = _Gathered([], 0, keys=[key], seen=seq._stages, epoch=seq._epoch, ahead=stale)
        seq._load()  # what the writer's recovery does
        assert seq._found(gathered, [key]) == [None]
        fresh: Future[list[int | None]] = Future()
        fresh.set_result([None])
        current = _Gathered([], 0, keys=[key], seen=seq._stages, epoch=seq._epoch, ahead=fresh)
        assert seq._found(current, [key]) == [None]
        reading: Future[list[int | None]] = Future()
        seq._reading = reading
        recovered = threading.Event()

        def recover() -> None:
            seq._recover()
            recovered.set()

        thread = threading.Thread(target=recover)
        thread.start()
        assert not recovered.wait(0.2)  # waits for the read under way
        reading.set_result([None])
        thread.join(10)
        assert recovered.is_set()
        assert [r.index for r in seq.append(DEPOSITS[5:6])] == [1]
    store.close()


def test_a_recovery_forgets_the_tiles_and_proofs_the_ledger_kept(tmp_path: Path) -> None:
    """A tile read before a failed fsync may hold a lost block's hashes, where the next leaves
    will differ: the recovery drops what the ledger kept, and proofs are made from the store."""
    store, ledger = _rocks(tmp_path)
    with Sequencer(ledger) as seq:
        seq.append(DEPOSITS[:3])
        ledger.inclusion_proof(0, 3)
        assert ledger._cache and ledger._tails
        seq._reload = True  # as after a failed commit: the next block recovers first
        (receipt,) = seq.append(DEPOSITS[3:4])
        assert not ledger._cache and not ledger._tails and not ledger._nodes
    cp = open_checkpoint(receipt.checkpoint, [ledger.verifier]).checkpoint
    verify_inclusion(
        index=3, size=cp.size, leaf_hash=receipt.leaf_hash,
        path=ledger.inclusion_proof(3, cp.size), root=cp.root_hash,
    )  # fmt: skip
    store.close()
