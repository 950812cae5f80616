"""Proofs served by the ledger equal the RFC reference, cached tails included."""

from __future__ import annotations

import random

import pytest

from ledger.checkpoint import NoteSigner
from ledger.errors import InvalidProofRequest
from ledger.log import Ledger
from ledger.sequencer import Sequencer
from ledger.storage.memory import MemoryStore
from tests import reference
from tests.conftest import make_deposit
from tools.bench import synthetic_deposit
from verifier.proof import verify_consistency


def test_every_inclusion_and_consistency_proof_matches_reference(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        for start in range(0, 600, 97):
            seq.append([make_deposit(i) for i in range(start, min(start + 97, 600))])
    leaves = ledger.store.entries(0, 600)
    ref = reference.RangeReference(leaves)
    for size in (1, 2, 3, 255, 256, 257, 511, 512, 513, 599, 600):
        for _ in range(2):  # the second pass is served from cached proof tails
            for index in range(size):
                assert ledger.inclusion_proof(index, size) == ref.path(index, 0, size)
        for old in range(size + 1):
            proof = ledger.consistency_proof(old, size)
            assert proof == ref.proof(old, size)
            verify_consistency(
                size1=old, size2=size, root1=ref.mth(0, old), root2=ref.mth(0, size), path=proof
            )
        assert ledger.root(size) == ref.mth(0, size)


def test_consistency_proofs_before_any_tail_is_cached_match_reference(ledger: Ledger) -> None:
    """A consistency proof ends in the cached tail of its subtree's first leaf: made first,
    with nothing cached, and again from the cache, it is the reference's."""
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(700)])
    ref = reference.RangeReference(ledger.store.entries(0, 700))
    for size in (700, 513, 512, 300, 2):
        for _ in range(2):
            for old in range(size + 1):
                assert ledger.consistency_proof(old, size) == ref.proof(old, size), (old, size)


@pytest.mark.slow
def test_proofs_through_three_tile_levels_match_reference(signer: NoteSigner) -> None:
    """Past 131,072 leaves a proof's siblings can span three tile levels: complete tiles are
    sliced (expanded once), tiles not yet complete have their nodes made from their strata."""
    ledger = Ledger.open(MemoryStore(), signer)
    with Sequencer(ledger) as seq:
        for start in range(0, 140_000, 20_000):
            seq.append([synthetic_deposit(i) for i in range(start, start + 20_000)])
    ref = reference.RangeReference(ledger.store.entries(0, 140_000))
    rng = random.Random(7)
    for size in (140_000, 131_073, 131_072, 70_000, 65_536):
        indexes = [0, 65_535, 131_071 % size, size - 1, *rng.sample(range(size), 30)]
        for index in indexes:
            assert ledger.inclusion_proof(index, size) == ref.path(index, 0, size), (index, size)
        for old in [1, 65_536 % size or 1, size - 1, *rng.sample(range(1, size), 30)]:
            assert ledger.consistency_proof(old, size) == ref.proof(old, size), (old, size)


def test_receipt_proofs_as_the_log_grows_match_reference(ledger: Ledger) -> None:
    """The pattern of receipts: each block's new leaves proved at its new size, while the
    cached nodes and tails of earlier sizes are still about."""
    sizes = []
    with Sequencer(ledger) as seq:
        start = 0
        for block in (1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1, 1, 200):
            seq.append([make_deposit(i) for i in range(start, start + block)])
            start += block
            sizes.append(start)
            for index in range(max(0, start - block - 2), start):
                proof = ledger.inclusion_proof(index, start)
                leaves = ledger.store.entries(0, start)
                assert proof == reference.RangeReference(leaves).path(index, 0, start)
    leaves = ledger.store.entries(0, sizes[-1])
    ref = reference.RangeReference(leaves)
    for size in sizes:
        for index in range(0, size, 3):
            assert ledger.inclusion_proof(index, size) == ref.path(index, 0, size)


def test_a_blocks_receipts_are_proved_together(ledger: Ledger) -> None:
    """Single deposits' receipts ask one by one for proofs at their block's size: the first
    makes them all; each is the reference's, whatever the order, and the caller's copy is its
    own. Blocks of one request (a batch proves its receipts together anyway), blocks too big,
    and sizes no block ended at, are proved one by one."""
    with Sequencer(ledger, max_delay=0.5) as seq:  # the writer waits for company
        seq.append([make_deposit(i) for i in range(40)])  # one request
        futures = [seq.submit_many([make_deposit(i)]) for i in range(40, 77)]
        assert [f.result(10)[0].tree_size for f in futures] == [77] * 37
        futures = [seq.submit_many([make_deposit(i)]) for i in range(77, 100)]
        futures.append(seq.submit_many([make_deposit(i) for i in range(100, 377)]))
        assert {f.result(10)[0].tree_size for f in futures} == {377}  # more than _RECENT
    ref = reference.RangeReference(ledger.store.entries(0, 377))
    assert dict(ledger._blocks) == {77: 40}
    for index in (50, 76, 40, 63):
        proof = ledger.inclusion_proof(index, 77)
        assert proof == ref.path(index, 0, 77)
        proof.append(b"mine")
    assert list(ledger._block_proofs) == [77]
    assert ledger.inclusion_proof(76, 77) == ref.path(76, 0, 77)
    for index, size in ((39, 77), (0, 40), (5, 60), (100, 377), (376, 377)):
        assert ledger.inclusion_proof(index, size) == ref.path(index, 0, size)
    assert list(ledger._block_proofs) == [77]
    for block in range(5):  # only the last few blocks are kept
        ledger.committed(300 + block, 301 + block)
    assert list(ledger._blocks) == [302, 303, 304, 305]
    assert ledger._block_proofs == {}
    assert ledger.inclusion_proof(300, 301) == ref.path(300, 0, 301)


def test_proofs_stay_right_when_the_node_cache_overflows(ledger: Ledger) -> None:
    """A cache far too small for one proof's siblings: emptied in the middle of a proof, the
    nodes it had already found still serve."""
    ledger._node_cache_size = 3
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(300)])
    ref = reference.RangeReference(ledger.store.entries(0, 300))
    for size in (256, 299, 300):
        for _ in range(2):
            for index in range(size):
                assert ledger.inclusion_proof(index, size) == ref.path(index, 0, size)


def test_proofs_made_together_match_reference(ledger: Ledger) -> None:
    """A batch's receipts: the proofs of many leaves of one size, made together, are each the
    reference's — runs, scattered leaves, one leaf, repeats, any order."""
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(700)])
    ref = reference.RangeReference(ledger.store.entries(0, 700))
    cases = {
        700: [list(range(700)), list(range(600, 700)), [699, 0, 350, 350, 257, 1], [5]],
        513: [list(range(256, 513)), list(range(0, 513, 17))],
        256: [list(range(255, -1, -1))],
        1: [[0, 0]],
    }
    for size, batches in cases.items():
        for indexes in batches:
            made = ledger.inclusion_proofs(indexes, size)
            assert made == [ref.path(i, 0, size) for i in indexes], (size, indexes[:5])
    assert ledger.inclusion_proofs([], 700) == []
    for bad in ([3, 700], [701, 3], [-1, 3], [3, -700]):
        with pytest.raises(InvalidProofRequest):
            ledger.inclusion_proofs(bad, 700)
    with pytest.raises(InvalidProofRequest, match="beyond the log's size"):
        ledger.inclusion_proofs([1, 2], 701)


def test_proof_requests_beyond_the_log_are_refused(ledger: Ledger) -> None:
    with Sequencer(ledger) as seq:
        seq.append([make_deposit(i) for i in range(10)])
    with pytest.raises(InvalidProofRequest, match="beyond the log's size"):
        ledger.inclusion_proof(3, 11)
    with pytest.raises(InvalidProofRequest, match="index is beyond size"):
        ledger.inclusion_proof(10, 10)
    with pytest.raises(InvalidProofRequest):
        ledger.inclusion_proof(-1, 10)
    with pytest.raises(InvalidProofRequest, match="beyond the log's size"):
        ledger.consistency_proof(3, 12)
    with pytest.raises(InvalidProofRequest):
        ledger.consistency_proof(5, 4)
