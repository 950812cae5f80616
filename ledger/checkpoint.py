"""Checkpoints as C2SP signed notes (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).

Body (each line ends in ``\\n``)::

    <origin>
    <tree size>
    <base64 root hash>
    time <unix ms>                       (extension line, cunzheng)
    prev <base64 SHA-256 of the previous checkpoint body>   (absent in the first checkpoint)

The note is the body, a blank line, then signature lines ``— <name> <base64(key ID ‖ sig)>``.
Ed25519 keys have the C2SP key ID ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`` and the
verifier key (vkey) ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import InvalidCheckpoint, SignatureInvalid
from .merkle import HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_NOTE_BYTES",
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "SignedCheckpoint",
    "open_checkpoint",
    "split_note",
]

ALG_ED25519 = 0x01
"""C2SP signed-note signature type of Ed25519."""
MAX_NOTE_BYTES = 16 * 1024
MAX_SIGNATURES = 32
_EM_DASH = "\u2014"
_NAME = re.compile(r"[^\s+\u2014]+")
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_ORIGIN = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]|[\x21-\x7e]")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    """Strict base64: padded, and canonical (unused bits zero), so one value has one spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCheckpoint(f"{what} is not valid base64") from exc
    if _b64(raw) != text:
        raise InvalidCheckpoint(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size, root hash, and cunzheng's ``time`` and ``prev`` lines."""

    origin: str
    size: int
    root_hash: bytes
    time_ms: int | None = None
    prev: bytes | None = None

    def __post_init__(self) -> None:
        if _ORIGIN.fullmatch(self.origin) is None:
            raise InvalidCheckpoint(f"bad origin {self.origin!r}")
        if self.size < 0:
            raise InvalidCheckpoint(f"tree size must not be negative, got {self.size}")
        if len(self.root_hash) != HASH_SIZE:
            raise InvalidCheckpoint(f"root hash is {len(self.root_hash)} bytes, want {HASH_SIZE}")
        if self.prev is not None and len(self.prev) != HASH_SIZE:
            raise InvalidCheckpoint(f"prev is {len(self.prev)} bytes, want {HASH_SIZE}")
        if self.time_ms is not None and self.time_ms < 0:
            raise InvalidCheckpoint(f"time must not be negative, got {self.time_ms}")

    def body(self) -> bytes:
        """The signed text, each line ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root_hash)]
        if self.time_ms is not None:
            lines.append(f"time {self.time_ms}")
        if self.prev is not None:
            lines.append(f"prev {_b64(self.prev)}")
        return ("\n".join(lines) + "\n").encode()

    def body_hash(self) -> bytes:
        """SHA-256 of the body: the next checkpoint's ``prev``, and what is time-stamped."""
        return hashlib.sha256(self.body()).digest()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint body (not a whole note). Unknown extension lines are refused."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCheckpoint("checkpoint is not UTF-8") from exc
        if not text.endswith("\n"):
            raise InvalidCheckpoint("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise InvalidCheckpoint(f"checkpoint has {len(lines)} lines, want at least 3")
        origin, size_text, root_text, *extensions = lines
        if _SIZE.fullmatch(size_text) is None:
            raise InvalidCheckpoint(f"bad tree size {size_text!r}")
        root = _unb64(root_text, "root hash")
        time_ms: int | None = None
        prev: bytes | None = None
        for i, line in enumerate(extensions):
            key, _, value = line.partition(" ")
            if key == "time" and i == 0 and _SIZE.fullmatch(value):
                time_ms = int(value)
            elif key == "prev" and prev is None and (i == 0 or time_ms is not None):
                prev = _unb64(value, "prev")
            else:
                raise InvalidCheckpoint(f"unexpected checkpoint line {line!r}")
        checkpoint = cls(origin, int(size_text), root, time_ms, prev)
        if checkpoint.body() != body:
            raise InvalidCheckpoint("checkpoint body is not in canonical form")
        return checkpoint


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes((ALG_ED25519,)) + public).digest()[:4]


class NoteSigner:
    """Signs notes with an Ed25519 key under a C2SP key name (usually the log origin)."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        if _NAME.fullmatch(name) is None:
            raise InvalidCheckpoint(f"bad key name {name!r}: no spaces, '+' or em dash")
        self.name = name
        self._key = key
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = _key_id(name, public)
        self.verifier = NoteVerifier(name, Ed25519PublicKey.from_public_bytes(public))

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def vkey(self) -> str:
        """The C2SP verifier key that checks this signer's notes."""
        return self.verifier.vkey

    def sign(self, body: bytes) -> bytes:
        """The whole signed note: body, blank line, one signature line."""
        signature = self._key.sign(body)
        line = f"{_EM_DASH} {self.name} {_b64(self.key_id + signature)}\n"
        return body + b"\n" + line.encode()

    def __repr__(self) -> str:  # never show the key
        return f"NoteSigner({self.vkey!r})"


class NoteVerifier:
    """Checks a note's signature by one Ed25519 key. Build it from a vkey with :meth:`parse`."""

    def __init__(self, name: str, key: Ed25519PublicKey) -> None:
        if _NAME.fullmatch(name) is None:
            raise InvalidCheckpoint(f"bad key name {name!r}")
        self.name = name
        self.key = key
        self.public = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = _key_id(name, self.public)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes((ALG_ED25519,)) + self.public)}"

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Read a C2SP vkey ``name+keyid+base64(type ‖ key)``; the key ID must match."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or re.fullmatch(r"[0-9a-f]{8}", parts[1]) is None:
            raise InvalidCheckpoint("a vkey is name+<8 hex>+<base64 key>")
        name, key_id, key_b64 = parts
        raw = _unb64(key_b64, "vkey key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise InvalidCheckpoint("only Ed25519 vkeys (type 0x01, 32-byte key) are supported")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))
        if verifier.key_id.hex() != key_id:
            raise InvalidCheckpoint(
                "vkey key ID does not match its name and key",
                got=key_id,
                want=verifier.key_id.hex(),
            )
        return verifier

    def verify(self, note: bytes) -> bytes:
        """Return the note's body if one of its signatures is ours and valid."""
        body, signatures = split_note(note)
        for name, key_id, signature in signatures:
            if name == self.name and key_id == self.key_id:
                try:
                    self.key.verify(signature, body)
                except InvalidSignature as exc:
                    raise SignatureInvalid(
                        f"the signature by {self.name} does not verify", key=self.vkey
                    ) from exc
                return body
        raise SignatureInvalid(f"the note has no signature by {self.vkey}", key=self.vkey)


def split_note(note: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its body and ``(name, key ID, signature)`` triples."""
    if len(note) > MAX_NOTE_BYTES:
        raise InvalidCheckpoint(f"note is {len(note)} bytes, at most {MAX_NOTE_BYTES} allowed")
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCheckpoint("note is not UTF-8") from exc
    if "\r" in text or not text.endswith("\n"):
        raise InvalidCheckpoint("note lines end with a single newline, and so does the note")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise InvalidCheckpoint("note has no blank line before its signatures")
    body = text[: cut + 1].encode()
    lines = text[cut + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidCheckpoint(f"note has {len(lines)} signatures, at most {MAX_SIGNATURES}")
    signatures = []
    for line in lines:
        dash, _, rest = line.partition(" ")
        name, _, sig_b64 = rest.partition(" ")
        if dash != _EM_DASH or _NAME.fullmatch(name) is None or not sig_b64:
            raise InvalidCheckpoint(f"bad signature line {line!r}")
        raw = _unb64(sig_b64, "signature")
        if len(raw) < 5:
            raise InvalidCheckpoint("signature is too short to hold a key ID")
        signatures.append((name, raw[:4], raw[4:]))
    return body, signatures


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with the note it came in."""

    checkpoint: Checkpoint
    note: bytes


def open_checkpoint(note: bytes, verifiers: Iterable[NoteVerifier]) -> SignedCheckpoint:
    """Verify ``note`` with the log's key (the first verifier; any others are also required)."""
    body = b""
    for verifier in verifiers:
        body = verifier.verify(note)
    if not body:
        raise SignatureInvalid("no verifier key given for the checkpoint")
    return SignedCheckpoint(Checkpoint.parse(body), note)
