"""Certificates and court packages from the running service (issue 7).

Gathers what :mod:`court` needs — each deposit's bundle (for a certificate as ``/bundle``
serves it, no private meta; for a court package with its meta and salt, as ``/retrieve`` serves
it), the report of verifying it with the service's own trust anchors, the file name from the
private meta, the original if held, the case's completeness — and hands it over. Callers check
roles first (a package is for judges and the owning depositor only); these functions run
blocking work and belong in a thread pool.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import IO, Any

from court.certificate import case_certificate, deposit_certificate, judge_url
from court.package import CaseDeposit, build_package
from ledger.canonical import loads
from ledger.cases import CaseReport
from ledger.entry import parse_entry
from ledger.errors import NotFound
from verifier.bundle import Bundle, Report, verify_bundle

from .service import Service

__all__ = [
    "case_certificate_pdf",
    "case_package_zip",
    "deposit_certificate_pdf",
    "verified",
]


def verified(service: Service, index: int, *, with_meta: bool = False) -> tuple[Bundle, Report]:
    """Deposit ``index``'s bundle (with its private meta and salt if ``with_meta``) and the
    report of verifying it (DESIGN §7)."""
    bundle = service.bundle(index, with_meta=with_meta)
    report = verify_bundle(
        bundle,
        log_keys=[service.log_verifier],
        tsa_roots=service.tsa_roots,
        check_token=service.check_token,
    )
    return bundle, report


def deposit_certificate_pdf(
    service: Service, index: int, *, base_url: str, issued_at: dt.datetime
) -> bytes:
    """The certificate of deposit ``index``; its QR code opens ``base_url``'s judge's page."""
    bundle, report = verified(service, index)
    code = str(parse_entry(bundle.leaf).code)
    return deposit_certificate(
        bundle, report, page_url=judge_url(base_url, code), issued_at=issued_at
    )


def case_certificate_pdf(
    service: Service, case: CaseReport, *, depositor: str, base_url: str, issued_at: dt.datetime
) -> bytes:
    """The certificate of ``case`` (its deposits, as :meth:`Service.check_case` found them),
    with its completeness against Annex B."""
    return case_certificate(
        case.contract_no,
        [verified(service, i) for i in _indexes(case)],
        page_url=lambda code: judge_url(base_url, code),
        issued_at=issued_at,
        completeness=case.to_object() | {"depositor": depositor},
    )


def case_package_zip(
    service: Service,
    case: CaseReport,
    out: IO[bytes],
    *,
    depositor: str,
    base_url: str,
    issued_at: dt.datetime,
) -> dict[str, Any]:
    """Write the court package of ``case`` to ``out``; return its catalog
    (:mod:`verifier.package` describes both)."""
    deposits = []
    for index in _indexes(case):
        bundle, report = verified(service, index, with_meta=True)
        meta = loads(bundle.meta)["meta"] if bundle.meta is not None else {}
        name = meta.get("file_name") if isinstance(meta, dict) else None
        deposits.append(
            CaseDeposit(
                bundle=bundle,
                report=report,
                file_name=name if isinstance(name, str) else None,
                original=_original(service, bundle),
            )
        )
    return build_package(
        out,
        contract_no=case.contract_no,
        deposits=deposits,
        page_url=lambda code: judge_url(base_url, code),
        issued_at=issued_at,
        origin=service.config.origin,
        depositor=depositor,
        completeness=case.to_object() | {"depositor": depositor},
        log_vkey=service.log_verifier.vkey,
    )


def _indexes(case: CaseReport) -> list[int]:
    indexes = [i.index for i in case.items if i.index is not None]
    if not indexes:
        raise NotFound("the case has no deposits", contract_no=case.contract_no)
    return indexes


def _original(service: Service, bundle: Bundle) -> Callable[[], Iterable[bytes]] | None:
    key = parse_entry(bundle.leaf).statement.digest.index_key
    if service.store.original(key) is None:
        return None

    def chunks() -> Iterable[bytes]:
        held = service.store.original(key)
        if held is None:  # pragma: no cover - originals are never deleted
            raise NotFound("the original is no longer held")
        return held

    return chunks
