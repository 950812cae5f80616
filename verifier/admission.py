"""What the depository checks before it admits deposits: depositor, key, signature, and any
RFC 3161 token the depositor brought for its own evidence digest (DESIGN §3).

An :class:`Admission` is the ``admit`` hook of :class:`ledger.sequencer.Sequencer`: it raises
the first problem (with ``details["position"]``) and the whole submission is refused, nothing
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509

from ledger.entry import Deposit
from ledger.errors import CunzhengError, InvalidInput
from ledger.registry import Registry

from .timestamp import HASH_ALGORITHMS, verify_token

__all__ = ["Admission"]


class Admission:
    """Registry checks, then depositor tokens verified against ``token_roots``."""

    def __init__(self, registry: Registry, *, token_roots: Sequence[x509.Certificate] = ()) -> None:
        self.registry = registry
        self.token_roots = tuple(token_roots)

    def __call__(self, deposits: Sequence[Deposit], at: int) -> None:
        self.registry.admit(deposits, at)
        self._check_tokens(deposits)

    def prepare(self, deposits: Sequence[Deposit], at: int) -> list[tuple[int, Deposit, Any]]:
        """Every check but the depositors' signatures, which are returned for
        :meth:`verify_signatures` (here) or :func:`verifier.signature.verify_batch` (in another
        process): the same checks as calling this admission, in another order."""
        checks = self.registry.signature_checks(deposits, at)
        self._check_tokens(deposits)
        return checks

    def verify_signatures(self, checks: Sequence[tuple[int, Deposit, Any]]) -> None:
        """Raise the first signature of ``checks`` (from :meth:`prepare`) that does not verify."""
        failure = self.registry.verify_signatures(checks)
        if failure is not None:
            raise failure

    def _check_tokens(self, deposits: Sequence[Deposit]) -> None:
        for position, deposit in enumerate(deposits):
            if deposit.tst is None:
                continue
            try:
                self.check_token(deposit)
            except CunzhengError as exc:
                exc.details.setdefault("position", position)
                raise

    def check_token(self, deposit: Deposit) -> None:
        """The depositor's token must time-stamp the statement's evidence digest."""
        assert deposit.tst is not None
        digest = deposit.statement.digest
        if digest.alg not in HASH_ALGORITHMS:
            raise InvalidInput(
                f"a depositor's RFC 3161 token must cover a SHA-2 digest; this statement's "
                f"evidence digest is {digest.alg}",
                got=digest.alg,
                want=sorted(HASH_ALGORITHMS),
            )
        if not self.token_roots:
            raise InvalidInput(
                "this depository is configured to trust no depositor TSA; deposit without tst"
            )
        verify_token(deposit.tst, digest=digest.value, hash_alg=digest.alg, roots=self.token_roots)
