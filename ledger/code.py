"""Deposit codes (存证编码), DESIGN §4.

``CZ`` + 16 Crockford base32 characters (the first 80 bits of the leaf hash, big-endian) + one
ISO/IEC 7064 MOD 37,36 check character over those 16, each valued by its position in ``0-9A-Z``.
Shown grouped by four: ``CZ-0000-0000-0000-0000-9`` is the code of a leaf hash of 32 zero bytes.

Input is forgiving: any case, dashes and spaces anywhere, the ``CZ`` prefix optional, ``O`` read
as ``0`` and ``I``/``L`` as ``1`` (in the check position too, comparing folded forms).

>>> str(DepositCode.from_leaf_hash(bytes(32)))
'CZ-0000-0000-0000-0000-9'
>>> parse_code("cz 0000 oooo 0000 0000 9") == DepositCode.from_leaf_hash(bytes(32))
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_36

from .errors import InvalidDepositCode

__all__ = ["CODE_BYTES", "CROCKFORD", "DepositCode", "parse_code"]

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_BYTES = 10
"""80 bits of the leaf hash."""
_PREFIX = "CZ"
_FOLDED_CHECK = {"O": "0", "I": "1", "L": "1"}
"""How letters read once folded: a typed code's, and a calculated check character."""
_FOLD = str.maketrans(_FOLDED_CHECK)
_DROP = str.maketrans("", "", "- \t\u00a0\u3000")
_ASCII_FOLD = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyzOIL", b"ABCDEFGH1JK1MN0PQRSTUVWXYZ011")
"""Upper case and folded (O as 0, I and L as 1) in one pass, for ASCII input: a bytes table is
applied in C, where ``str.translate`` with a mapping looks up every character in it."""
_ASCII_DROP = b"- \t"
_VALUE = {c: i for i, c in enumerate(CROCKFORD)}
_PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]
"""The two Crockford digits of every 10-bit value: a code's 80 bits are 8 of them."""
_BODY = re.compile(f"[{CROCKFORD}]{{16}}")
_AS_BASE32HEX = str.maketrans(CROCKFORD, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
"""Crockford's digits as the digits ``int(s, 32)`` reads."""


@dataclass(frozen=True, slots=True)
class DepositCode:
    """A deposit code; ``bits`` are the first 10 bytes of the entry's leaf hash."""

    bits: bytes

    def __post_init__(self) -> None:
        if len(self.bits) != CODE_BYTES:
            raise InvalidDepositCode(f"a deposit code has {CODE_BYTES} bytes, got {len(self.bits)}")

    @classmethod
    def from_leaf_hash(cls, leaf_hash: bytes) -> DepositCode:
        return cls(leaf_hash[:CODE_BYTES])

    @property
    def body(self) -> str:
        """The 16 Crockford characters."""
        # 80 bits are 16 base32 digits exactly: no padding. Two digits at a time from a table
        # (base64.b32encode, in Python, cost a receipt more than its proof).
        n = int.from_bytes(self.bits, "big")
        pairs = _PAIRS
        return "".join([pairs[(n >> shift) & 0x3FF] for shift in (70, 60, 50, 40, 30, 20, 10, 0)])

    @property
    def check(self) -> str:
        """The MOD 37,36 check character (one of ``0-9A-Z``)."""
        return str(mod_37_36.calc_check_digit(self.body))

    @property
    def compact(self) -> str:
        """``CZ`` + body + check, no dashes: for URLs and file names."""
        body = self.body
        return f"{_PREFIX}{body}{mod_37_36.calc_check_digit(body)}"

    def matches(self, leaf_hash: bytes) -> bool:
        """Whether this code belongs to the entry with ``leaf_hash`` (DESIGN §7 step 2)."""
        return leaf_hash[:CODE_BYTES] == self.bits

    def __str__(self) -> str:
        body = self.body
        groups = "-".join(body[i : i + 4] for i in range(0, 16, 4))
        return f"{_PREFIX}-{groups}-{mod_37_36.calc_check_digit(body)}"


def parse_code(text: str) -> DepositCode:
    """Read a deposit code typed by a person; :class:`InvalidDepositCode` says what is wrong."""
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidDepositCode("a deposit code looks like CZ-XXXX-XXXX-XXXX-XXXX-X")
    if text.isascii():
        s = text.encode().translate(_ASCII_FOLD, _ASCII_DROP).decode()
    else:
        s = text.translate(_DROP).upper().translate(_FOLD)
    if s.startswith(_PREFIX) and len(s) == 19:
        s = s[2:]
    if len(s) != 17:
        raise InvalidDepositCode(
            f"a deposit code has 16 characters and a check character after CZ, got {len(s)}",
            got=len(s),
            want=17,
        )
    body, check = s[:16], s[16]
    if _BODY.fullmatch(body) is None:
        for position, c in enumerate(body):
            if c not in _VALUE:
                raise InvalidDepositCode(
                    f"character {c!r} at position {position + 1} is not used in deposit codes",
                    position=position + 1,
                )
    if not ("0" <= check <= "9" or "A" <= check <= "Z"):
        raise InvalidDepositCode(f"check character {check!r} is not a letter or digit")
    calculated = str(mod_37_36.calc_check_digit(body))
    if _FOLDED_CHECK.get(calculated, calculated) != check:
        raise InvalidDepositCode(
            "the check character does not match: the code was probably mistyped",
        )
    n = int(body.translate(_AS_BASE32HEX), 32)
    return DepositCode(n.to_bytes(CODE_BYTES, "big"))
