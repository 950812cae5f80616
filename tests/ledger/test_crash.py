"""Kill -9 while deposits flow: nothing acknowledged is lost; the tree matches its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.checkpoint import NoteSigner
from ledger.log import Ledger
from ledger.merkle import leaf_hash
from ledger.sequencer import Sequencer
from ledger.storage.rocksdb import RocksStore
from tests import reference
from tests.conftest import make_deposit

WRITER = """
import sys
from ledger.checkpoint import NoteSigner
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.rocksdb import RocksStore
from tests.conftest import make_deposit

path, seed, start = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
ledger = Ledger.open(RocksStore(path), NoteSigner.from_seed("crash.test/log", seed))
with Sequencer(ledger, max_delay=0.001) as seq:
    i = start
    while True:
        receipts = seq.append([make_deposit(i + k) for k in range(50)])
        # Acknowledged: durable before this line is printed.
        print(" ".join(f"{r.index}:{r.leaf_hash.hex()}" for r in receipts), flush=True)
        i += 50
"""


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_deposit(tmp_path: Path) -> None:
    seed = os.urandom(32)
    path = tmp_path / "db"
    acknowledged: dict[int, str] = {}
    root = Path(__file__).resolve().parents[2]
    for cycle in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), seed.hex(), str(cycle * 100_000)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 0.3 + 0.2 * cycle
        for line in proc.stdout:
            for item in line.split():
                index, h = item.split(":")
                acknowledged[int(index)] = h
            if time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Lines written before the kill but not read yet were acknowledged too.
        for line in proc.stdout.read().splitlines():
            for item in line.split():
                index, h = item.split(":")
                acknowledged[int(index)] = h

    assert acknowledged
    store = RocksStore(path)
    ledger = Ledger.open(store, NoteSigner.from_seed("crash.test/log", seed))
    head, checkpoint = ledger.checked_head()
    leaves = store.entries(0, head.size)
    assert len(leaves) == head.size
    for index, h in acknowledged.items():
        assert index < head.size
        assert leaf_hash(leaves[index]).hex() == h
    assert checkpoint.root_hash == reference.mth(leaves)
    with Sequencer(ledger) as seq:  # and it carries on
        (receipt,) = seq.append([make_deposit(10**7)])
    assert receipt.index == head.size
    store.close()
