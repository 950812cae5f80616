"""Hypothesis against every parser that reads what a caller sends: each input either parses or
is refused with a typed :class:`~ledger.errors.InvalidInput` (a 4xx), never anything else.

Fuzzed elsewhere already, and not repeated here: deposit codes (tests/ledger/test_code.py),
checkpoint notes as bytes (tests/ledger/test_checkpoint.py), stored entries
(tests/ledger/test_entry.py), RFC 3161 tokens as bytes and by mutation
(tests/verifier/test_timestamp.py), time-stamp requests (tests/ledger/test_authority.py) and
signatures (tests/verifier/test_signature.py). Here: deposit requests and statements (as JSON
values and by mutating a valid one), digests, tile paths, checkpoint bodies as text, log and
witness keys, and offline bundles (parsed, and verified after mutation).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.canonical import jcs
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier
from ledger.entry import Deposit, Digest, Statement
from ledger.errors import CunzhengError, InvalidInput
from ledger.tiles import parse_tile_path
from tests.conftest import make_deposit
from verifier.bundle import Bundle, verify_bundle
from verifier.witness import CosignatureVerifier

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)

VALID = make_deposit(7).to_object()
FIELDS = [
    ("statement",),
    ("statement", "v"),
    ("statement", "depositor"),
    ("statement", "kind"),
    ("statement", "evidence"),
    ("statement", "evidence", "alg"),
    ("statement", "evidence", "digest"),
    ("statement", "evidence", "size"),
    ("statement", "evidence", "media_type"),
    ("statement", "captured_at"),
    ("statement", "meta_commitment"),
    ("sig",),
    ("sig", "alg"),
    ("sig", "key_id"),
    ("sig", "value"),
    ("meta",),
    ("salt",),
    ("tst",),
]


def _set(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@given(json_values)
def test_any_json_value_as_a_deposit_request(value: Any) -> None:
    with pytest.raises(InvalidInput):
        Deposit.from_object(value)


@settings(max_examples=300)
@given(st.sampled_from(FIELDS), json_values | st.text(max_size=200))
def test_a_valid_deposit_request_with_one_field_replaced(path: tuple[str, ...], value: Any) -> None:
    with contextlib.suppress(InvalidInput):
        Deposit.from_object(_set(VALID, path, value))


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_a_signed_statement(data: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        Statement.from_bytes(data)


@given(st.text(max_size=200))
def test_any_text_as_a_digest(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except InvalidInput:
        return
    assert Digest.parse(str(digest)) == digest


tile_parts = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["tile", "entries", "0", "x001", "x000", "067", "067.p", "8", "256", ".p", ".."]
    ),
    st.integers(-5, 10**6).map(str),
)


@given(st.text(max_size=120) | st.lists(tile_parts, max_size=7).map("/".join))
def test_any_text_as_a_tile_path(path: str) -> None:
    try:
        level, index, width = parse_tile_path(path)
    except InvalidInput:
        return
    assert level >= -1 and index >= 0 and 1 <= width <= 256


note_lines = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["example.com/log", "0", "18446744073709551616", "time 1", "prev AAAA", ""]),
    st.binary(min_size=32, max_size=32).map(lambda b: __import__("base64").b64encode(b).decode()),
)


@given(st.lists(note_lines, max_size=6))
def test_any_lines_as_a_checkpoint_body(lines: list[str]) -> None:
    body = ("\n".join(lines) + "\n").encode()
    try:
        checkpoint = Checkpoint.parse(body)
    except InvalidInput:
        return
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


@given(st.text(max_size=150))
def test_any_text_as_a_log_or_witness_key(text: str) -> None:
    for parse in (NoteVerifier.parse, CosignatureVerifier.parse):
        with contextlib.suppress(InvalidInput):
            parse(text)


@given(json_values)
def test_any_json_value_as_a_bundle(value: Any) -> None:
    with pytest.raises(InvalidInput):
        Bundle.from_object(value)


@pytest.fixture(scope="module")
def signed_bundle() -> tuple[dict[str, Any], NoteVerifier]:
    """A real bundle of a one-leaf log (no token: verify_bundle says what is missing)."""
    signer = NoteSigner.from_seed("fuzz.cunzheng/log", os.urandom(32))
    deposit = make_deposit(1)
    leaf = jcs({"statement": deposit.to_object()["statement"], "sig": VALID["sig"],
                "received_at": "2026-11-24T08:00:01Z"})  # fmt: skip
    root = hashlib.sha256(b"\x00" + leaf).digest()
    note = signer.sign(Checkpoint("fuzz.cunzheng/log", 1, root, 1, None).body())
    bundle = Bundle(leaf=leaf, index=0, tree_size=1, proof=(), checkpoint=note, timestamp=None,
                    depositor_key=None, key_window=None, depositor_name=None,
                    meta=None)  # fmt: skip
    return json.loads(bundle.to_json()), signer.verifier


BUNDLE_FIELDS = [("entry",), ("index",), ("inclusion_proof",), ("inclusion_proof", "tree_size"),
                 ("inclusion_proof", "hashes"), ("checkpoint",), ("timestamp",), ("depositor",),
                 ("depositor", "key"), ("depositor", "key_window"), ("meta",)]  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(BUNDLE_FIELDS), json_values | st.text(max_size=300))
def test_a_bundle_with_one_field_replaced_is_refused_or_judged(
    signed_bundle: tuple[dict[str, Any], NoteVerifier], path: tuple[str, ...], value: Any
) -> None:
    obj, verifier = signed_bundle
    try:
        bundle = Bundle.from_object(_set(obj, path, value))
    except InvalidInput:
        return
    try:
        report = verify_bundle(bundle, log_keys=[verifier], tsa_roots=[])
    except CunzhengError as exc:
        pytest.fail(f"verify_bundle raised instead of judging: {exc!r}")
    assert report.verdict in {"VERIFIED", "MISMATCH", "NOT_FOUND", "INVALID"}
