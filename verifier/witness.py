"""Witnesses (https://c2sp.org/tlog-witness, https://c2sp.org/tlog-cosignature): someone outside
the operator keeps the last checkpoint it saw of a log, cosigns a new one only if a consistency
proof shows it extends that one, and so makes a fork (two views of the log) evident.

A cosignature/v1 signs ``"cosignature/v1\\ntime <T>\\n" ‖ checkpoint body`` with Ed25519; its note
line is ``— <name> base64(key ID ‖ T as 8 bytes ‖ signature)``, the key ID being
``SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4]``. A verifier's policy asks for k of n witnesses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, split_note
from ledger.errors import Conflict, InvalidCheckpoint, ProofInvalid, SignatureInvalid

from .proof import verify_consistency

__all__ = ["ALG_COSIGNATURE", "CosignatureVerifier", "ForkDetected", "Witness", "require_cosigners"]

ALG_COSIGNATURE = 0x04
_EM_DASH = "\u2014"


class ForkDetected(Conflict):
    """The log showed this witness two checkpoints that cannot both be true."""

    code = "fork_detected"
    title_zh = "检测到日志分叉"


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes((ALG_COSIGNATURE,)) + public).digest()[:4]


def _message(body: bytes, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's public key, by name; ``vkey`` is ``name+keyid+base64(0x04 ‖ key)``."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    @property
    def vkey(self) -> str:
        raw = base64.b64encode(bytes((ALG_COSIGNATURE,)) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{raw}"

    @classmethod
    def parse(cls, vkey: str) -> CosignatureVerifier:
        parts = vkey.strip().split("+", 2)
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (IndexError, ValueError) as exc:
            raise InvalidCheckpoint("a witness vkey is name+<8 hex>+<base64 key>") from exc
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE:
            raise InvalidCheckpoint("a witness vkey holds a cosignature/v1 Ed25519 key (0x04)")
        verifier = cls(parts[0], raw[1:])
        if verifier.key_id.hex() != parts[1]:
            raise InvalidCheckpoint("witness vkey key ID does not match its name and key")
        return verifier

    def verify(self, note: bytes) -> int:
        """The timestamp of this witness's valid cosignature on ``note``."""
        body, signatures = split_note(note)
        for name, key_id, signature in signatures:
            if name == self.name and key_id == self.key_id and len(signature) == 72:
                timestamp = int.from_bytes(signature[:8], "big")
                try:
                    Ed25519PublicKey.from_public_bytes(self.public).verify(
                        signature[8:], _message(body, timestamp)
                    )
                except InvalidSignature as exc:
                    raise SignatureInvalid(
                        f"the cosignature of {self.name} does not verify"
                    ) from exc
                return timestamp
        raise SignatureInvalid(f"no cosignature by witness {self.name}")


def require_cosigners(note: bytes, witnesses: Sequence[CosignatureVerifier], k: int) -> list[str]:
    """A policy: at least ``k`` of ``witnesses`` cosigned ``note``; returns who did."""
    signed = []
    for witness in witnesses:
        try:
            witness.verify(note)
            signed.append(witness.name)
        except SignatureInvalid:
            continue
    if len(signed) < k:
        raise SignatureInvalid(
            f"{len(signed)} of the required {k} witnesses cosigned the checkpoint", signed=signed
        )
    return signed


class Witness:
    """A witness for one log: its key, the log's key, and the last checkpoint it cosigned
    (kept in ``state``, a small JSON file, replaced atomically)."""

    def __init__(
        self, *, name: str, key: Ed25519PrivateKey, log_key: NoteVerifier, state: Path
    ) -> None:
        self.name = name
        self._key = key
        self.log_key = log_key
        self.state = state
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, public)

    def last(self) -> Checkpoint | None:
        if not self.state.exists():
            return None
        return Checkpoint.parse(json.loads(self.state.read_text())["checkpoint"].encode())

    def cosign(self, note: bytes, proof: Sequence[bytes], *, now: int | None = None) -> bytes:
        """Check ``note`` against the log key and, with ``proof``, against the last checkpoint
        seen; then remember it and return the cosignature line (to append to the note)."""
        new = open_checkpoint(note, [self.log_key]).checkpoint
        old = self.last()
        if old is not None:
            if new.size < old.size:
                raise Conflict(f"the log went back from size {old.size} to {new.size}")
            if new.size == old.size and new.root_hash != old.root_hash:
                raise ForkDetected(
                    f"two checkpoints of size {new.size} with different roots",
                    seen=old.root_hash.hex(), shown=new.root_hash.hex(),
                )  # fmt: skip
            try:
                verify_consistency(size1=old.size, size2=new.size, root1=old.root_hash,
                                   root2=new.root_hash, path=proof)  # fmt: skip
            except ProofInvalid as exc:
                raise ForkDetected(
                    f"checkpoint {new.size} does not extend the {old.size} this witness saw",
                    reason=str(exc),
                ) from exc
        body, _ = split_note(note)
        timestamp = int(time.time()) if now is None else now
        signature = self._key.sign(_message(body, timestamp))
        raw = self.verifier.key_id + timestamp.to_bytes(8, "big") + signature
        tmp = self.state.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"checkpoint": body.decode()}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state)  # remembered durably before the cosignature leaves
        return f"{_EM_DASH} {self.name} {base64.b64encode(raw).decode()}\n".encode()
