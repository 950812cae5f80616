"""`cunzheng verify`: one deposit checked offline from its bundle, trusting only given keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.service import Service
from ledger.checkpoint import Checkpoint, NoteSigner
from tests.api.conftest import Lender, wait_stamped

ROOT = Path(__file__).resolve().parents[2]
RUNNER = """
import sys
from tools.cli import main
try:
    main(sys.argv[1:], prog_name="cunzheng")
finally:
    loaded = [m for m in ("fastapi", "uvicorn", "rocksdict", "psycopg", "api", "ledger.storage",
                          "ledger.store") if m in sys.modules]
    print("LOADED=" + ",".join(loaded), file=sys.stderr)
"""


def run(*args: str, offline: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", RUNNER, *args]
    if offline:  # no network at all: a new, empty network namespace
        assert shutil.which("unshare"), "unshare (util-linux) is needed for the offline check"
        command = ["unshare", "--net", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ)


@pytest.fixture
def deposited(service: Service, lender: Lender, tmp_path: Path) -> dict[str, object]:
    evidence = tmp_path / "借款合同.pdf"
    evidence.write_bytes(b"%PDF-1.7 offline check")
    (receipt,) = service.sequencer.append([lender.deposit(evidence, contract_no="HT5")])
    wait_stamped(service)
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(service.bundle(receipt.index).to_json())
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in service.tsa_roots))
    return {
        "file": evidence, "bundle": bundle, "root": root, "code": str(receipt.code),
        "vkey": service.ledger.signer.vkey,
    }  # fmt: skip


def common(d: dict[str, object]) -> list[str]:
    return ["--log-key", str(d["vkey"]), "--tsa-root", str(d["root"])]


@pytest.mark.slow
def test_verified_offline_with_no_server_code_loaded(deposited: dict[str, object]) -> None:
    d = deposited
    code = str(d["code"]).lower()
    r = run("verify", str(d["file"]), "--bundle", str(d["bundle"]), "--code", code, *common(d))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "核验通过" in r.stdout and "VERIFIED" in r.stdout
    assert "LOADED=\n" in r.stderr  # no web framework, no storage engine, no api package


@pytest.mark.slow
def test_each_verdict_has_its_exit_status(deposited: dict[str, object], tmp_path: Path) -> None:
    d = deposited
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF-1.7 not the deposited file")
    mismatch = run("verify", str(other), "--bundle", str(d["bundle"]), "--json", *common(d))
    assert mismatch.returncode == 3
    assert json.loads(mismatch.stdout)["verdict"] == "MISMATCH"
    tampered = tmp_path / "tampered.json"
    obj = json.loads(Path(str(d["bundle"])).read_text())
    obj["index"] += 1
    tampered.write_text(json.dumps(obj))
    assert run("verify", "--bundle", str(tampered), *common(d)).returncode == 5
    wrong_key = NoteSigner.generate("test.cunzheng/log").vkey
    bad = run("verify", "--bundle", str(d["bundle"]), "--log-key", wrong_key, "--tsa-root",
              str(d["root"]))  # fmt: skip
    assert bad.returncode == 5
    assert (
        run("verify", "--bundle", str(d["bundle"]), "--code", "CZ-0000", *common(d)).returncode == 1
    )


@pytest.mark.slow
def test_fetch_from_a_server_then_check_here(
    service: Service,
    deposited: dict[str, object],
    server_url: str,
) -> None:
    d = deposited
    key = service.api_keys.issue("auditor", label="auditor")
    ok = run("verify", str(d["file"]), "--server", server_url, "--code", str(d["code"]),
             "--api-key", key, *common(d), offline=False)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = run("verify", "--server", server_url, "--code", "CZ-0000-0000-0000-0000-9",
                  "--api-key", key, *common(d), offline=False)  # fmt: skip
    assert missing.returncode == 4 and "尚未存证" in missing.stdout


@pytest.mark.slow
def test_the_log_still_extends_an_old_checkpoint(
    service: Service, lender: Lender, server_url: str, tmp_path: Path
) -> None:
    evidence = tmp_path / "e.pdf"
    evidence.write_bytes(b"%PDF-1.7 first")
    (receipt,) = service.sequencer.append([lender.deposit(evidence)])
    trusted = tmp_path / "trusted.note"
    trusted.write_bytes(receipt.checkpoint)  # as printed in an old receipt
    for i in range(5):
        more = tmp_path / f"m{i}.pdf"
        more.write_bytes(b"%%PDF-1.7 more %d" % i)
        service.sequencer.append([lender.deposit(more)])
    vkey = service.ledger.signer.vkey
    ok = run("verify", "--trusted-checkpoint", str(trusted), "--server", server_url,
             "--log-key", vkey, "--json", offline=False)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout) == {"verdict": "CONSISTENT", "old_size": 1, "new_size": 6}
    # A validly signed checkpoint of another history (a fork shown to this holder earlier).
    fork = Checkpoint(service.ledger.origin, 1, bytes(32), 1, None)
    other = tmp_path / "fork.note"
    other.write_bytes(service.ledger.signer.sign(fork.body()))
    bad = run("verify", "--trusted-checkpoint", str(other), "--server", server_url,
              "--log-key", vkey, offline=False)  # fmt: skip
    assert bad.returncode == 5, bad.stdout + bad.stderr
    assert "INVALID" in bad.stdout
