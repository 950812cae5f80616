"""The package verifier, like the bundle verifier, loads no server, storage, web or PDF code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_package_verifier_loads_no_server_storage_or_pdf_code() -> None:
    code = (
        "import sys, verifier.package; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('api', 'court', 'tools', 'fastapi', 'starlette', 'uvicorn', 'rocksdict', 'psycopg', "
        "'fpdf', 'segno')) + sorted(m for m in sys.modules if m.startswith('ledger.stor')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
