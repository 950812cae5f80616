"""A sample case deposited in a running service, and the command-line tools the certificate
tests read PDFs with (poppler-utils, zbar-tools: ``./run-tests`` installs them)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.service import Service, ServiceConfig
from ledger.sequencer import Receipt
from tests.api.conftest import Lender, lender, service, wait_stamped  # noqa: F401 - fixtures
from tests.cases.samples import COMPLETE_CASE, write_case
from tools.client import generate_key, load_private_key

CONTRACT = "HT-2026-0001"
BASE_URL = "https://cunzheng.example.cn"
ISSUED_AT = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)


@dataclass
class SampleCase:
    contract_no: str
    files: dict[Path, str]
    """path → evidence kind, in deposit order."""
    receipts: list[Receipt]
    held: set[str]
    """Codes whose originals the depository holds."""

    @property
    def codes(self) -> list[str]:
        return [str(r.code) for r in self.receipts]


@pytest.fixture
def sample_case(service: Service, lender: Lender, tmp_path: Path) -> SampleCase:  # noqa: F811
    """tests/cases/samples.py's complete case, deposited; every original but each third held."""
    return deposit_sample_case(service, lender, tmp_path)


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A running service for a whole module (rendering a package's PDFs takes seconds)."""
    root = tmp_path_factory.mktemp("service")
    svc = Service.open(ServiceConfig(data_dir=root / "data", origin="test.cunzheng/log"))
    svc.stamper.interval = svc.stamper.min_interval = 0.05
    svc.start()
    yield svc
    svc.close()


def register_lender(service: Service) -> Lender:  # noqa: F811
    service.registry.register("lender-1", "某某消费金融有限公司")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k1", not_before=0)
    return Lender("lender-1", load_private_key(private), "k1")


def deposit_sample_case(service: Service, lender: Lender, root: Path) -> SampleCase:  # noqa: F811
    files = write_case(root / "case", COMPLETE_CASE)
    deposits = [lender.deposit(p, kind=k, contract_no=CONTRACT) for p, k in files.items()]
    receipts = service.sequencer.append(deposits)
    held = set()
    for n, (path, d, r) in enumerate(zip(files, deposits, receipts, strict=True)):
        if n % 3 != 2:
            service.store.put_original(d.statement.digest.index_key, [path.read_bytes()])
            held.add(str(r.code))
    wait_stamped(service)
    return SampleCase(CONTRACT, files, receipts, held)


def tool(name: str, package: str) -> str:
    """The path of a command-line tool; a missing one fails under CI=true, else skips."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found: install Debian's {package} (./run-tests does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def pdf_text(pdf: Path) -> str:
    out = subprocess.run([tool("pdftotext", "poppler-utils"), "-enc", "UTF-8", str(pdf), "-"],
                         capture_output=True, check=True)  # fmt: skip
    return out.stdout.decode()


def pdf_fonts(pdf: Path) -> str:
    out = subprocess.run([tool("pdffonts", "poppler-utils"), str(pdf)], capture_output=True,
                         check=True, text=True)  # fmt: skip
    return out.stdout


def qr_codes(pdf: Path) -> list[str]:
    """Every QR code on every page, decoded: rendered at 150 dpi with pdftoppm, read by zbarimg."""
    prefix = pdf.with_suffix("")
    subprocess.run([tool("pdftoppm", "poppler-utils"), "-png", "-r", "150", str(pdf),
                    str(prefix)], check=True)  # fmt: skip
    pages = sorted(pdf.parent.glob(f"{prefix.name}-*.png"))
    assert pages, "pdftoppm rendered no page"
    zbar = tool("zbarimg", "zbar-tools")
    found: list[str] = []
    for page in pages:
        out = subprocess.run([zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                              str(page)], capture_output=True, text=True)  # fmt: skip
        assert out.returncode in (0, 4), out.stderr  # 4: no symbol on this page
        found += [line for line in out.stdout.splitlines() if line]
    return found
