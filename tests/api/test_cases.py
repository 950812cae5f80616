"""Cases over the running service and the API: lookup by contract number, completeness against
Annex B, roles (DESIGN §9), judges' accesses logged, problem+json errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.service import Service
from ledger.errors import InvalidMeta, NotFound
from tests.api.conftest import Lender
from tests.cases.samples import COMPLETE_CASE, write_case

CONTRACT = "HT-2026-0001"


def deposit_case(
    service: Service, lender: Lender, root: Path, contract_no: str = CONTRACT, **skip: bool
) -> list[int]:
    paths = write_case(root)
    deposits = [
        lender.deposit(path, kind=kind, contract_no=contract_no)
        for path, kind in paths.items()
        if not skip.get(kind)
    ]
    return [r.index for r in service.sequencer.append(deposits)]


def test_case_deposits_lists_the_case_oldest_first(
    service: Service, lender: Lender, tmp_path: Path
) -> None:
    indexes = deposit_case(service, lender, tmp_path / "a")
    other = deposit_case(service, lender, tmp_path / "b", contract_no="HT-2026-0002")
    assert service.case_deposits(CONTRACT) == indexes
    assert service.case_deposits(f"  {CONTRACT} ") == indexes  # normalised like the index
    assert service.case_deposits(CONTRACT, depositor="lender-1") == indexes
    assert service.case_deposits(CONTRACT, depositor="lender-2") == []
    assert service.case_deposits("HT-2026-0002") == other
    assert service.case_deposits("HT-none") == []
    with pytest.raises(InvalidMeta):
        service.case_deposits("bad\x00number")


def test_check_case_over_deposits(service: Service, lender: Lender, tmp_path: Path) -> None:
    deposit_case(service, lender, tmp_path / "a")
    report = service.check_case(CONTRACT)
    assert report.complete, report.to_object()["issues"]
    assert len(report.items) == len(COMPLETE_CASE)
    assert {i.format for i in report.items} == {"PDF", "OFD", "PNG", "XLSX", "JPEG", "MP4", "WAV"}
    with pytest.raises(NotFound):
        service.check_case("HT-none")
