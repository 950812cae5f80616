"""C2SP checkpoints and signed notes: Appendix A byte for byte, tlog-scales interop, tampering."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from tlog_scales import signing as tlog_signing
from tlog_scales.tlog import Checkpoint as TlogCheckpoint

from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint, split_note
from ledger.errors import InvalidCheckpoint, SignatureInvalid
from tests import reference

APPENDIX_A_VKEY = "example.com/log+d455c521+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
APPENDIX_A_NOTE = (
    "example.com/log\n3\nNmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=\n\n"
    "— example.com/log 1FXFIXbjy2maCv/qB1W+r5xbB25L6Sx8lPHbMuT8gO3bHNoqfRUmmtQSHZ2gqFg+"
    "2tvpWg7vi9qhq6D5c5uiQfTaPAU=\n"
).encode()


@pytest.fixture
def appendix_signer() -> NoteSigner:
    return NoteSigner.from_seed("example.com/log", bytes(range(32)))


def test_appendix_a_byte_for_byte(appendix_signer: NoteSigner) -> None:
    cp = Checkpoint("example.com/log", 3, reference.mth([b"a", b"b", b"c"]))
    assert appendix_signer.vkey == APPENDIX_A_VKEY
    assert appendix_signer.key_id.hex() == "d455c521"
    assert appendix_signer.sign(cp.body()) == APPENDIX_A_NOTE
    opened = open_checkpoint(APPENDIX_A_NOTE, [NoteVerifier.parse(APPENDIX_A_VKEY)])
    assert opened.checkpoint == cp


def test_tlog_scales_verifies_our_note_and_we_verify_theirs() -> None:
    key = Ed25519PrivateKey.generate()
    ours = NoteSigner("log.example/a", key)
    cp = Checkpoint("log.example/a", 42, reference.mth([b"x"] * 42))
    note = ours.sign(cp.body())
    vkey = tlog_signing.Vkey.from_string(ours.vkey)
    TlogCheckpoint.from_text(note.decode()).verify(vkey)
    theirs = TlogCheckpoint.make_signed(
        "log.example/a", 42, cp.root_hash, [tlog_signing.PlainEd25519Signer("log.example/a", key)]
    )
    assert theirs.serialize().encode() == note
    assert open_checkpoint(theirs.serialize().encode(), [ours.verifier]).checkpoint == cp


def test_extension_lines_round_trip(signer: NoteSigner) -> None:
    prev = Checkpoint(signer.name, 0, reference.mth([]), 1_700_000_000_000)
    cp = Checkpoint(signer.name, 7, reference.mth([b"a"] * 7), 1_700_000_000_123, prev.body_hash())
    body = cp.body()
    assert body.decode().splitlines()[3:] == [
        "time 1700000000123",
        "prev " + base64.b64encode(prev.body_hash()).decode(),
    ]
    assert open_checkpoint(signer.sign(body), [signer.verifier]).checkpoint == cp


def test_wrong_key_is_refused(signer: NoteSigner) -> None:
    note = signer.sign(Checkpoint(signer.name, 1, reference.mth([b"a"])).body())
    other = NoteSigner.generate(signer.name)
    with pytest.raises(SignatureInvalid, match="no signature by"):
        open_checkpoint(note, [other.verifier])


def test_every_flipped_byte_is_refused(signer: NoteSigner) -> None:
    cp = Checkpoint(signer.name, 5, reference.mth([b"a"] * 5), 1_700_000_000_000, bytes(32))
    note = signer.sign(cp.body())
    for i in range(len(note)):
        tampered = note[:i] + bytes([note[i] ^ 0x01]) + note[i + 1 :]
        with pytest.raises((InvalidCheckpoint, SignatureInvalid)):
            open_checkpoint(tampered, [signer.verifier])


@pytest.mark.parametrize(
    "body",
    [
        b"o\n1\n",
        b"o\n01\n" + base64.b64encode(bytes(32)) + b"\n",
        b"o\n-1\n" + base64.b64encode(bytes(32)) + b"\n",
        b"o\n1\n" + base64.b64encode(bytes(31)) + b"\n",
        b"o\n1\n" + base64.b64encode(bytes(32)) + b"\nunknown ext\n",
        b"o\n1\n" + base64.b64encode(bytes(32)) + b"\ntime 1\ntime 2\n",
        b"o\n1\n" + base64.b64encode(bytes(32)),
        b"o\n1\n!!!!\n",
        b"\xff\n1\n" + base64.b64encode(bytes(32)) + b"\n",
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(InvalidCheckpoint):
        Checkpoint.parse(body)


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/log+d455c522+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",  # wrong key ID
        "example.com/log+d455c521+AgOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",  # wrong type
        "example.com/log+d455c521",
        "example.com/log+zz+AQOh",
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(InvalidCheckpoint):
        NoteVerifier.parse(vkey)


def test_note_structure_errors(signer: NoteSigner) -> None:
    with pytest.raises(InvalidCheckpoint, match="blank line"):
        split_note(b"o\n1\nAAAA\n")
    with pytest.raises(InvalidCheckpoint, match="signature line"):
        split_note(b"o\n1\nAAAA\n\n- o AAAAAAA=\n")
    with pytest.raises(InvalidCheckpoint, match="at most"):
        split_note(b"x" * 20000)


@given(st.binary(max_size=600))
def test_garbage_notes_give_typed_errors(data: bytes) -> None:
    signer = NoteSigner.from_seed("example.com/log", bytes(range(32)))
    with pytest.raises((InvalidCheckpoint, SignatureInvalid)):
        open_checkpoint(data, [signer.verifier])
