"""``cunzheng bench load`` against a real server: many clients depositing and verifying at once,
zero errors, p99 reported. CI runs 16 clients for 5 s; the full run is 64 clients for 60 s::

    CUNZHENG_LOAD_CLIENTS=64 CUNZHENG_LOAD_SECONDS=60 \\
        .venv/bin/python -m pytest tests/reliability/test_load.py -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import ROOT, Server, audit_store


@pytest.mark.slow
def test_mixed_load_has_no_errors_and_reports_p99(server: Server, tmp_path: Path) -> None:
    clients = os.environ.get("CUNZHENG_LOAD_CLIENTS", "16")
    seconds = os.environ.get("CUNZHENG_LOAD_SECONDS", "5")
    server.start()
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "bench", "load", "--server", server.url,
         "--admin-token-file", str(server.data_dir / "admin-token"), "--clients", clients,
         "--seconds", seconds, "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=float(seconds) + 120,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["errors"] == 0 and figures["clients"] == int(clients)
    assert figures["deposit"]["requests"] > 0 and figures["verify"]["requests"] > 0
    assert 0 < figures["all"]["p50_ms"] <= figures["all"]["p99_ms"] <= figures["all"]["max_ms"]
    assert "p99" in done.stdout
    server.stop()
    audited = audit_store(server)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert json.loads(audited.stdout)["entries"] == figures["deposit"]["requests"]
