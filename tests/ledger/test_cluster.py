"""Several ClusterSequencers on one database, in one process: election, intake through the
queue, dedupe of retries, fail-over with queued deposits, and a log that stays one chain."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ledger.checkpoint import NoteSigner, open_checkpoint
from ledger.cluster import ClusterSequencer
from ledger.errors import Unavailable
from ledger.log import Ledger
from ledger.merkle import leaf_hash
from ledger.storage.postgres import PostgresStore
from tests import reference
from tests.conftest import make_deposit

pytestmark = pytest.mark.slow


class Node:
    def __init__(self, url: str, signer: NoteSigner, name: str) -> None:
        self.store = PostgresStore(url, pool_size=4)
        self.ledger = Ledger.open(self.store, signer)
        self.seq = ClusterSequencer(
            self.ledger, store=self.store, node=name, retry=0.1, ack_timeout=20
        ).start()

    def close(self) -> None:
        self.seq.close()
        self.store.close()


@pytest.fixture
def nodes(pg_url: str, signer: NoteSigner) -> Iterator[list[Node]]:
    first = Node(pg_url, signer, "a")
    assert first.seq.wait_until_leading(10)
    made = [first, Node(pg_url, signer, "b")]
    yield made
    for n in made:
        n.close()


def _leaders(nodes: list[Node]) -> list[str]:
    return [n.seq.node for n in nodes if n.seq.leading]


def test_one_sequencer_and_intake_through_the_queue(nodes: list[Node]) -> None:
    a, b = nodes
    time.sleep(0.5)  # b has tried the lock several times by now
    assert _leaders(nodes) == ["a"]
    direct = a.seq.append([make_deposit(0)])
    queued = b.seq.append([make_deposit(i) for i in range(1, 6)])
    assert [r.index for r in direct + queued] == list(range(6))
    for r in queued:
        assert not r.duplicate and r.tree_size >= 6
        assert leaf_hash(b.store.entry(r.index) or b"") == r.leaf_hash
        assert open_checkpoint(r.checkpoint, [b.ledger.verifier]).checkpoint.size == r.tree_size
    deadline = time.monotonic() + 5
    while b.store.queue_length() and time.monotonic() < deadline:
        time.sleep(0.05)  # the sequencer clears the queue right after its commit
    assert b.store.queue_length() == 0
    assert b.ledger.head_size() == 6  # the follower sees the new head at once


def test_a_retried_deposit_is_logged_once(nodes: list[Node]) -> None:
    _, b = nodes
    d = make_deposit(7)
    (first,) = b.seq.append([d])
    again, other = b.seq.append([d, make_deposit(8)])
    assert again.index == first.index and again.duplicate and not other.duplicate
    assert b.ledger.head_size() == 2


def test_fail_over_keeps_queued_deposits_and_one_chain(nodes: list[Node]) -> None:
    a, b = nodes
    a.seq.append([make_deposit(i) for i in range(3)])
    # While nobody sequences, deposits wait in the queue, durably.
    a.close()
    nodes.remove(a)
    pending = b.seq.submit_many([make_deposit(i) for i in range(3, 8)])
    assert b.seq.wait_until_leading(5), "the follower did not take over within 5 s"
    receipts = pending.result(timeout=20)
    assert [r.index for r in receipts] == list(range(3, 8))
    more = b.seq.append([make_deposit(9)])  # the new sequencer takes the direct path
    assert more[0].index == 8 and b.seq.terms == 1
    ledger = b.ledger
    head, cp = ledger.checked_head()
    assert cp.root_hash == reference.mth(b.store.entries(0, head.size))
    previous = None
    for h in b.store.checkpoints():
        c = open_checkpoint(h.note, [ledger.verifier]).checkpoint
        assert c.prev == (previous.body_hash() if previous else None)
        previous = c


def test_a_closed_node_refuses_deposits(nodes: list[Node]) -> None:
    _, b = nodes
    b.seq.close()
    with pytest.raises(Unavailable):
        b.seq.submit_many([make_deposit(1)])
