"""One contract for every backend: the same tests run on the memory, RocksDB and PostgreSQL
stores."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest

from ledger.cases import case_key
from ledger.checkpoint import NoteSigner, open_checkpoint
from ledger.code import DepositCode
from ledger.entry import Deposit, Digest, Signature, Statement, meta_commitment
from ledger.errors import Conflict, InvalidInput, NotFound, StorageError
from ledger.log import Ledger
from ledger.merkle import EMPTY_ROOT, leaf_hash
from ledger.sequencer import Sequencer
from ledger.store import Block, Store, open_store
from tests.conftest import make_deposit


def test_new_store_is_empty(store: Store) -> None:
    assert store.config() is None and store.head() is None
    assert store.entry(0) is None and store.entries(0, 10) == []
    assert (
        store.indexes_by_code(bytes(10)) == []
        and store.indexes_by_digest(b"\x01" + bytes(32)) == []
    )
    assert store.checkpoint_at_or_after(0) is None and list(store.checkpoints()) == []


def test_open_writes_genesis(store: Store, signer: NoteSigner) -> None:
    ledger = Ledger.open(store, signer)
    head, cp = ledger.checked_head()
    assert head.size == 0 and cp.root_hash == EMPTY_ROOT and cp.prev is None and cp.time_ms
    assert open_checkpoint(head.note, [signer.verifier]).checkpoint == cp
    Ledger.open(store, signer)  # reopening with the same key is fine
    assert len(list(store.checkpoints())) == 1


def test_open_with_another_key_is_refused(store: Store, signer: NoteSigner) -> None:
    Ledger.open(store, signer)
    with pytest.raises(StorageError, match="belongs to log"):
        Ledger.open(store, NoteSigner.generate(signer.name))
    with pytest.raises(StorageError, match="belongs to log"):
        Ledger.open(store, NoteSigner.generate("other.origin/log"))


def test_commit_is_compare_and_swap(ledger: Ledger) -> None:
    store = ledger.store
    bad = Block(5, [b"x"], [bytes(32)], [b"\x01" + bytes(48)], {}, b"note")
    with pytest.raises(Conflict, match="head is at 0"):
        store.commit(bad)
    with pytest.raises(Conflict):
        store.commit(Block(0, [], [], [], {}, b"note", config=b"{}"))  # a second genesis
    assert store.entry(0) is None and store.head().size == 0  # type: ignore[union-attr]


def test_lookups(ledger: Ledger) -> None:
    store = ledger.store
    d1, d2 = make_deposit(1), make_deposit(2)
    again = make_deposit(1)  # same evidence digest, new salt: a new fact
    with Sequencer(ledger) as seq:
        r = seq.append([d1, d2])
        r3 = seq.append([again])
    assert [x.index for x in r + r3] == [0, 1, 2]
    assert store.entries(0, 5) == [store.entry(0), store.entry(1), store.entry(2)]
    assert store.entries(1, 2) == [store.entry(1)]
    assert ledger.lookup_code(r[1].code) == [1]
    assert ledger.lookup_code(DepositCode(bytes(10))) == []
    assert ledger.lookup_digest(d1.statement.digest) == [0, 2]
    assert ledger.lookup_digest(d2.statement.digest) == [1]
    assert store.meta(1) == d2.meta and store.meta(7) is None
    assert ledger.checkpoint_covering(0).size == 2 and ledger.checkpoint_covering(2).size == 3
    with pytest.raises(NotFound):
        ledger.checkpoint_covering(3)
    assert [h.size for h in store.checkpoints()] == [0, 2, 3]
    assert [h.size for h in store.checkpoints(3)] == [3]
    with pytest.raises(NotFound):
        ledger.entry(3)
    with pytest.raises(NotFound):
        ledger.checkpoint(1)


def test_reopen_resumes(store_factory: Callable[[], Store], signer: NoteSigner) -> None:
    ledger = Ledger.open(store_factory(), signer)
    with Sequencer(ledger) as seq:
        first = seq.append([make_deposit(i) for i in range(300)])
    ledger = Ledger.open(store_factory(), signer)  # RocksDB: closed and opened again
    head, cp = ledger.checked_head()
    assert head.size == 300
    with Sequencer(ledger) as seq:
        more = seq.append([make_deposit(i) for i in range(300, 600)])
    assert more[0].index == 300
    leaves = ledger.store.entries(0, 600)
    from tests import reference

    _, cp2 = ledger.checked_head()
    assert cp2.root_hash == reference.mth(leaves) and cp2.prev == cp.body_hash()
    from ledger.merkle import leaf_hash

    assert first[17].leaf_hash == leaf_hash(leaves[17])


def test_open_store_urls(tmp_path: object) -> None:
    assert open_store("memory:").head() is None
    with pytest.raises(InvalidInput):
        open_store("rocksdb:")


def test_read_only_rocksdb(tmp_path: object, signer: NoteSigner) -> None:
    from pathlib import Path

    from ledger.storage.rocksdb import RocksStore

    path = Path(str(tmp_path)) / "ro"
    with pytest.raises(StorageError, match="no ledger store"):
        RocksStore(path, read_only=True)
    rw = RocksStore(path)
    Ledger.open(rw, signer)
    rw.close()
    ro = RocksStore(path, read_only=True)
    assert ro.head() is not None
    with pytest.raises(StorageError, match="read-only"):
        ro.commit(Block(1, [], [], [], {}, b""))
    ro.close()


def test_rocksdb_shows_a_block_only_once_it_is_durable(
    tmp_path: object, signer: NoteSigner
) -> None:
    """A block is written, then synced with the GIL released; in between it is in RocksDB's
    memtable, and no log read may show it: a power failure could still take it back."""
    import threading
    from pathlib import Path
    from typing import Any

    from ledger.storage.rocksdb import RocksStore

    store = RocksStore(Path(str(tmp_path)) / "db")
    ledger = Ledger.open(store, signer)
    with Sequencer(ledger) as seq:
        (first,) = seq.append([make_deposit(0)])
        syncing, release = threading.Event(), threading.Event()

        class HeldSync:
            def __init__(self, db: Any) -> None:
                self.db = db

            def __getattr__(self, name: str) -> Any:
                return getattr(self.db, name)

            def __getitem__(self, keys: Any) -> Any:
                return self.db[keys]

            def flush_wal(self, sync: bool) -> None:
                syncing.set()
                release.wait(10)
                self.db.flush_wal(sync)

        real = store._db
        store._db = HeldSync(real)
        try:
            future = seq.submit_many([make_deposit(1)])
            assert syncing.wait(10)
            # The block is in the database but not yet durable: nothing of it is shown.
            assert real.get(b"e" + (1).to_bytes(8, "big")) is not None
            assert ledger.head_size() == 1 and store.entry(1) is None and store.meta(1) is None
            assert store.entries(0, 2) == [store.entry(0)]
            second = make_deposit(1)
            code = DepositCode.from_leaf_hash(leaf_hash(real.get(b"e" + (1).to_bytes(8, "big"))))
            assert store.indexes_by_code(code.bits) == []
            assert store.indexes_by_digest(second.statement.digest.index_key) == []
            assert store.indexes_by_statement([second.statement.key]) == [None]
            assert store.checkpoint(2) is None and store.checkpoint_at_or_after(2) is None
            assert [h.size for h in store.checkpoints()] == [0, 1]
            release.set()
            (receipt,) = future.result(10)
        finally:
            release.set()
            store._db = real
    assert ledger.head_size() == 2 and receipt.index == 1 and first.index == 0
    assert store.indexes_by_code(receipt.code.bits) == [1]
    assert [h.size for h in store.checkpoints()] == [0, 1, 2]
    store.close()


def test_second_writer_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from ledger.storage.rocksdb import RocksStore

    path = Path(str(tmp_path)) / "db"
    first = RocksStore(path)
    with pytest.raises(StorageError, match="another cunzheng process"):
        RocksStore(path)
    first.close()


def test_timestamps_are_immutable_and_found_by_size(ledger: Ledger) -> None:
    store = ledger.store
    with Sequencer(ledger, max_delay=0) as seq:
        for i in range(3):
            seq.append([make_deposit(i)])
    assert store.latest_timestamped() is None
    assert store.timestamp_at_or_after(0) is None
    with pytest.raises(StorageError, match="no checkpoint"):
        store.put_timestamp(7, b"token")
    store.put_timestamp(2, b"token-2")
    with pytest.raises(Conflict):
        store.put_timestamp(2, b"other")
    assert store.timestamp(2) == b"token-2" and store.timestamp(1) is None
    assert store.timestamp_at_or_after(1) == (2, b"token-2")
    assert store.timestamp_at_or_after(3) is None
    store.put_timestamp(0, b"token-0")
    assert store.latest_timestamped() == 2
    assert store.timestamp_at_or_after(0) == (0, b"token-0")


def test_records_compare_and_swap(store: Store) -> None:
    assert store.record_get("depositor", "lender-1") is None
    assert store.record_list("depositor") == []
    store.record_put("depositor", "lender-1", b"v1", None)
    with pytest.raises(Conflict):
        store.record_put("depositor", "lender-1", b"v1b", None)
    store.record_put("depositor", "lender-1", b"v2", b"v1")
    with pytest.raises(Conflict):
        store.record_put("depositor", "lender-1", b"v3", b"v1")
    store.record_put("depositor", "bank-2", b"b1", None)
    store.record_put("apikey", "lender-1", b"other kind", None)
    assert store.record_get("depositor", "lender-1") == b"v2"
    assert store.record_list("depositor") == [("bank-2", b"b1"), ("lender-1", b"v2")]
    assert store.record_list("depositor", "c") == [("lender-1", b"v2")]
    assert store.record_list("apikey") == [("lender-1", b"other kind")]


def test_rocksdb_keeps_no_record_a_write_overtook(tmp_path: object) -> None:
    """RocksStore keeps the records it read (a depositor's is read on every deposit). A read
    that a write of that record overtakes — the value read before the write, kept after it —
    must not be kept, or a revoked key would go on signing; nor a record whose write failed."""
    from pathlib import Path
    from typing import Any

    from ledger.storage.rocksdb import RocksStore

    class Overtaken(RocksStore):
        overtake: bytes | None = None

        def _get(self, key: bytes) -> Any:
            value = super()._get(key)
            if self.overtake is not None and key.startswith(b"R"):
                new, self.overtake = self.overtake, None
                self.record_put("depositor", "lender-1", new, value)  # lands after the read
            return value

    store = Overtaken(Path(str(tmp_path)) / "db")
    store.record_put("depositor", "lender-1", b"v1", None)
    store.overtake = b"v2"
    assert store.record_get("depositor", "lender-1") == b"v1"  # read before the write
    assert store.record_get("depositor", "lender-1") == b"v2"
    assert store.record_get("depositor", "lender-1") == b"v2"  # kept now

    def failing(batch: Any, what: str) -> None:
        raise StorageError("disk on fire")

    store._write = failing  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        store.record_put("depositor", "lender-1", b"v3", b"v2")
    del store._write
    assert store.record_get("depositor", "lender-1") == b"v2"

    # Should the kept copy ever differ from the database (a write that did not last), the
    # compare-and-swap that finds out forgets it: the caller's read again is the truth.
    store._records[store._record_key("depositor", "lender-1")] = b"stale"
    with pytest.raises(Conflict):
        store.record_put("depositor", "lender-1", b"v3", b"stale")
    assert store.record_get("depositor", "lender-1") == b"v2"
    store.record_put("depositor", "lender-1", b"v3", b"v2")
    assert store.record_get("depositor", "lender-1") == b"v3"

    # Misses are not kept (anyone can ask for a made-up API key), nor reads of a read-only store.
    assert store.record_get("apikey", "0123456789abcdef") is None
    assert list(store._records) == [store._record_key("depositor", "lender-1")]

    # Reopened after a failed write: whatever was read before may not have lasted.
    store._records[store._record_key("depositor", "lender-1")] = b"stale"
    store._failed = "simulated: fsync failed"
    store.record_put("apikey", "k", b"1", None)
    assert store.record_get("depositor", "lender-1") == b"v3"
    store.close()
    ro = RocksStore(Path(str(tmp_path)) / "db", read_only=True)
    assert ro.record_get("depositor", "lender-1") == b"v3" and ro._records == {}
    ro.close()


def test_originals_are_content_addressed(store: Store) -> None:
    key = b"\x01" + bytes(32)
    assert store.original(key) is None
    store.put_original(key, [b"a" * 10, b"b" * 3])
    store.put_original(key, [b"ignored"])  # same content address: kept as first stored
    got = store.original(key)
    assert got is not None and b"".join(got) == b"a" * 10 + b"b" * 3
    store.put_original(b"\x01" + b"\x01" * 32, [])
    empty = store.original(b"\x01" + b"\x01" * 32)
    assert empty is not None and list(empty) == []


def _case_deposit(i: int, contract_no: str) -> Deposit:
    salt = os.urandom(32)
    meta = {"file_name": f"借款合同-{i}.pdf", "contract_no": contract_no}
    statement = Statement.build(
        depositor="lender-1", kind="loan_contract",
        digest=Digest("sha256", hashlib.sha256(f"case evidence {i}".encode()).digest()),
        size=100 + i, media_type="application/pdf", captured_at="2026-11-24T08:00:00Z",
        meta_commitment=meta_commitment(salt, meta),
    )  # fmt: skip
    return Deposit.create(
        statement, Signature("ed25519", "k1", os.urandom(64)), meta=meta, salt=salt
    )


def test_case_index_is_written_with_the_block(
    store_factory: Callable[[], Store], signer: NoteSigner
) -> None:
    ledger = Ledger.open(store_factory(), signer)
    a1 = _case_deposit(1, "HT-A")
    with Sequencer(ledger) as sequencer:
        first = sequencer.append([a1, _case_deposit(2, "HT-B")])
        second = sequencer.append(
            [make_deposit(3, with_meta=False), _case_deposit(4, " HT-A "), a1]
        )
    assert second[2].duplicate  # a retried statement is not indexed twice
    store = store_factory()  # reopened: the index is durable
    assert store.indexes_by_case(case_key("HT-A")) == [first[0].index, second[1].index]
    assert store.indexes_by_case(case_key("HT-B")) == [first[1].index]
    assert store.indexes_by_case(case_key("HT-C")) == []
