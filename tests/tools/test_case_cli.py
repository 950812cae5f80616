"""`cunzheng deposit` (a lender's batch deposit) and `cunzheng case check`, against a real server
over HTTP: kinds by layout and manifest, receipts, resume, retries without duplicates, Annex B
completeness on disk and deposited."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from api.service import Service
from ledger.entry import Digest, digest_file
from tests.api.conftest import Lender
from tests.cases.samples import COMPLETE_CASE, pdf_bytes, png_bytes, write_case, xlsx_bytes
from tools.batch import DepositClient, Planned, plan_directory, plan_manifest, receipt_path
from tools.cli import main
from tools.client import generate_key

CONTRACT = "HT-2026-0001"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def creds(service: Service, lender: Lender, tmp_path: Path) -> dict[str, str]:
    """A depositor key file registered for lender-1, its API key and a judge's."""
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="batch", not_before=0)
    key = tmp_path / "lender.key"
    key.write_bytes(private)
    key.chmod(0o600)
    return {
        "key": str(key),
        "api_key": service.api_keys.issue("depositor", depositor="lender-1", label="batch"),
        "judge": service.api_keys.issue("judge", label="法官"),
    }


def deposit_args(server_url: str, creds: dict[str, str], *extra: str) -> list[str]:
    return ["deposit", *extra, "--server", server_url, "--api-key", creds["api_key"],
            "--key", creds["key"], "--key-id", "batch", "--depositor", "lender-1"]  # fmt: skip


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_deposit_a_case_then_check_it(
    service: Service, server_url: str, creds: dict[str, str], tmp_path: Path
) -> None:
    case = tmp_path / "case"
    files = write_case(case)
    local = cli("case", "check", CONTRACT, "--dir", str(case), "--json")
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["cases"][0]["complete"] is True

    r = cli(*deposit_args(server_url, creds, str(case), "--case", CONTRACT, "--batch-size", "5"))
    assert r.exit_code == 0, r.output
    assert f"{len(COMPLETE_CASE)} deposited" in r.output and "证据要素齐全 COMPLETE" in r.output
    indexes = service.case_deposits(CONTRACT, "lender-1")
    assert len(indexes) == len(COMPLETE_CASE)
    for path, kind in files.items():
        receipt = json.loads(
            (case / ".cunzheng/receipts" / CONTRACT / f"{path.relative_to(case)}.json").read_text()
        )
        assert receipt["kind"] == kind and receipt["receipt"]["index"] in indexes
        assert receipt["digest"] == str(digest_file(str(path)))
        assert receipt["deposit"]["meta"]["contract_no"] == CONTRACT  # opens the commitment
        assert service.ledger.lookup_digest(Digest.parse(receipt["digest"])) == [
            receipt["receipt"]["index"]
        ]

    again = cli(*deposit_args(server_url, creds, str(case), "--case", CONTRACT))
    assert again.exit_code == 0 and f"{len(COMPLETE_CASE)} skipped" in again.output
    assert service.case_deposits(CONTRACT) == indexes

    judged = cli("case", "check", CONTRACT, "--server", server_url, "--api-key", creds["judge"])
    assert judged.exit_code == 0, judged.output
    assert "✓ 借款合同 (loan_contract)" in judged.output and "2 份" in judged.output


def test_incomplete_and_wrong_formats_on_disk(tmp_path: Path) -> None:
    case = tmp_path / "case"
    files = {k: v for k, v in COMPLETE_CASE.items() if v[0] != "evidence_catalog"}
    files["借款借据.xlsx"] = ("loan_voucher", xlsx_bytes())  # Excel is not listed for an IOU
    write_case(case, files)
    r = cli("case", "check", CONTRACT, "--dir", str(case))
    assert r.exit_code == 4, r.output
    assert "缺少必备证据要素：证据目录" in r.output and "INCOMPLETE" in r.output
    assert "借款借据：数据格式 XLSX 不在标准所列格式" in r.output
    assert "loan_voucher/借款借据.xlsx" in r.output


def test_kinds_from_names_and_mappings(tmp_path: Path) -> None:
    (tmp_path / "借款合同").mkdir()
    (tmp_path / "借款合同" / "scan.png").write_bytes(png_bytes())
    (tmp_path / "证据目录.pdf").write_bytes(pdf_bytes("catalog"))
    (tmp_path / "loan_voucher-1.pdf").write_bytes(pdf_bytes("iou"))
    (tmp_path / "借款人还款及欠款明细.xlsx").write_bytes(xlsx_bytes())
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "bank.pdf").write_bytes(pdf_bytes("bank"))
    (tmp_path / ".hidden").write_bytes(b"x")
    with pytest.raises(Exception, match="no evidence kind") as info:
        plan_directory(tmp_path, CONTRACT)
    assert info.value.details["files"] == ["misc/bank.pdf"]  # type: ignore[attr-defined]
    planned = plan_directory(tmp_path, CONTRACT, [("misc/*", "disbursement_voucher")])
    assert {p.rel: p.kind for p in planned} == {
        "借款合同/scan.png": "loan_contract",
        "证据目录.pdf": "evidence_catalog",
        "loan_voucher-1.pdf": "loan_voucher",
        "借款人还款及欠款明细.xlsx": "repayment_details",
        "misc/bank.pdf": "disbursement_voucher",
    }
    bad = cli("case", "check", CONTRACT, "--dir", str(tmp_path), "--kind", "x=nothing")
    assert bad.exit_code == 2 and "GLOB=KIND" in bad.output


def test_manifest_many_cases(
    service: Service, server_url: str, creds: dict[str, str], tmp_path: Path
) -> None:
    rows = []
    for n in range(3):
        paths = write_case(tmp_path / f"loan{n}")
        rows += [{"file": str(p.relative_to(tmp_path)), "kind": EVIDENCE_ZH[k], "case": f"HT-{n}"}
                 for p, k in paths.items()]  # fmt: skip
    rows = [r for r in rows if not (r["case"] == "HT-2" and r["kind"] == "证据目录")]
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "kind", "case"])
        writer.writeheader()
        writer.writerows(rows)
    json_manifest = tmp_path / "manifest.json"
    json_manifest.write_text(json.dumps({"files": rows}, ensure_ascii=False), encoding="utf-8")
    assert plan_manifest(json_manifest) == plan_manifest(manifest)

    r = cli(*deposit_args(server_url, creds, "--manifest", str(manifest), "--json"))
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["deposited"] == len(rows) and summary["failed"] == {}
    assert [c["complete"] for c in summary["cases"]] == [True, True, False]
    assert summary["cases"][2]["missing"] == ["evidence_catalog"]
    for n in range(3):
        assert len(service.case_deposits(f"HT-{n}")) == sum(r["case"] == f"HT-{n}" for r in rows)


def test_manifest_errors_send_nothing(
    service: Service, server_url: str, creds: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a.pdf").write_bytes(pdf_bytes("a"))
    size = service.ledger.head_size()
    for text, message in [
        ("file,kind\na.pdf,loan_contract\n", "lacks columns"),
        ("file,kind,case\na.pdf,contract,HT1\n", "unknown kind"),
        ("file,kind,case\n../etc/passwd,loan_contract,HT1\n", "is not a file under"),
        ("file,kind,case\na.pdf,loan_contract,\n", "contract_no must be"),
        ("file,kind,case\na.pdf,loan_contract,HT1\na.pdf,借款合同,HT1\n", "listed twice"),
    ]:
        manifest = tmp_path / "m.csv"
        manifest.write_text(text, encoding="utf-8")
        r = cli(*deposit_args(server_url, creds, "--manifest", str(manifest)))
        assert r.exit_code == 1 and message in r.output, (text, r.output)
    assert service.ledger.head_size() == size
    usage = cli(*deposit_args(server_url, creds, str(tmp_path)))
    assert usage.exit_code == 2 and "--case" in usage.output


def test_a_refused_file_does_not_stop_the_others(
    service: Service, server_url: str, creds: dict[str, str], tmp_path: Path
) -> None:
    """A file that cannot be deposited (here: a malformed borrower commitment, refused before
    sending) is reported; the rest go in."""
    case = tmp_path / "case"
    big = case / "other" / "其他证据材料-big.pdf"
    big.parent.mkdir(parents=True)
    big.write_bytes(pdf_bytes("x"))
    manifest = tmp_path / "m.json"
    rows = [{"file": f"case/{p.relative_to(case)}", "kind": k, "case": CONTRACT}
            for p, k in write_case(case).items()]  # fmt: skip
    rows.append({"file": "case/other/其他证据材料-big.pdf", "kind": "other", "case": CONTRACT,
                 "borrower_commitment": "not-a-commitment"})  # fmt: skip
    manifest.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    r = cli(*deposit_args(server_url, creds, "--manifest", str(manifest)))
    assert r.exit_code == 1
    assert "case/other/其他证据材料-big.pdf" in r.output and "borrower_commitment" in r.output
    assert len(service.case_deposits(CONTRACT)) == len(COMPLETE_CASE)


def test_a_deposit_the_server_refuses_is_left_out_of_the_batch(
    lender: Lender, creds: dict[str, str], tmp_path: Path
) -> None:
    """The server names the refused deposit's position; the batch is sent again without it."""
    import httpx

    from tools.batch import Planned, prepare, run_batches
    from tools.client import load_private_key

    key = load_private_key(Path(creds["key"]).read_bytes())
    planned = []
    for n in range(3):
        (tmp_path / f"{n}.pdf").write_bytes(pdf_bytes(str(n)))
        planned.append(Planned(tmp_path / f"{n}.pdf", f"{n}.pdf", "loan_contract", CONTRACT))
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        deposits = json.loads(request.content)["deposits"]
        sent.append(len(deposits))
        if len(deposits) == 3:
            return httpx.Response(403, json={"code": "key_not_valid", "detail": "revoked",
                                             "details": {"position": 1}})  # fmt: skip
        receipts = [{"index": i, "duplicate": False} for i in range(len(deposits))]
        return httpx.Response(201, json={"receipts": receipts})

    client = DepositClient("http://depository", "czk_x", sleep=lambda _s: None)
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    result = run_batches(
        tmp_path, planned, client,
        sign=lambda root, item, secret: prepare(
            root, item, key=key, key_id="batch", depositor="lender-1", secret=secret
        ),
    )  # fmt: skip
    assert sent == [3, 2]
    assert result.deposited == ["0.pdf", "2.pdf"] and list(result.failed) == ["1.pdf"]
    assert "key_not_valid" in result.failed["1.pdf"]


def test_client_retries_on_unavailable(tmp_path: Path) -> None:
    """503 with Retry-After and dropped connections are retried; 4xx are not."""
    import httpx

    answers = iter([httpx.ConnectError("down"), 503, 503, 201])
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, headers={"Retry-After": "2"}, json={"receipts": []})

    client = DepositClient("http://depository", "czk_x", sleep=calls.append)
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    assert client.post([]).status_code == 201
    assert calls == [0.25, 2.0, 2.0]


EVIDENCE_ZH = {
    "credit_line_contract": "额度合同",
    "loan_contract": "借款合同",
    "loan_voucher": "借款借据",
    "disbursement_voucher": "放款凭证",
    "repayment_details": "借款人还款及欠款明细",
    "identity_verification": "借款人身份验证材料",
    "loan_process_record": "借款流程的展示材料",
    "other": "其他证据材料",
    "evidence_catalog": "证据目录",
}


RUNNER = "import sys; from tools.cli import main; main(sys.argv[1:], prog_name='cunzheng')"


@pytest.mark.slow
def test_five_thousand_files_killed_midway_and_resumed(
    service: Service, server_url: str, creds: dict[str, str], tmp_path: Path
) -> None:
    """5,000 files; the CLI is SIGKILLed after some batches, some receipts of acknowledged
    batches are lost too (as if killed before writing them); the rerun completes the case and
    every file is in the ledger exactly once (the server's digest index says so)."""
    total = 5000
    case = tmp_path / "case"
    write_case(case)
    process = case / "loan_process_record"
    for n in range(total - len(COMPLETE_CASE)):
        (process / f"screen-{n:05d}.png").write_bytes(png_bytes(n % 251) + n.to_bytes(4, "big"))
    args = deposit_args(server_url, creds, str(case), "--case", CONTRACT, "--batch-size", "100")
    receipts = case / ".cunzheng" / "receipts" / CONTRACT
    start = service.ledger.head_size()
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args], cwd=ROOT, env=os.environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while sum(1 for _ in receipts.rglob("*.json")) < 1000 if receipts.exists() else True:
        assert child.poll() is None, "the CLI ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = sorted(receipts.rglob("*.json"))
    assert 1000 <= len(kept) < total
    before = service.ledger.head_size()
    assert before >= len(kept)
    lost = kept[::10]  # acknowledged by the server, receipt never written
    for path in lost:
        path.unlink()

    r = cli(*args, "--json")
    assert r.exit_code == 0, r.output
    summary: dict[str, Any] = json.loads(r.stdout)
    assert summary["failed"] == {} and summary["changed_since_receipt"] == []
    assert summary["skipped_receipted"] == len(kept) - len(lost)
    assert summary["already_deposited"] >= len(lost)  # resent, answered with the original
    assert summary["deposited"] + summary["already_deposited"] + summary["skipped_receipted"] == (
        total
    )
    assert summary["cases"][0]["complete"] is True
    # Exactly once: every file's digest has one deposit, and the ledger grew by one entry a file.
    # (Not ``before + deposited``: a batch the killed CLI had sent may commit after ``before`` was
    # read, and the rerun then finds its files already deposited.)
    indexes = service.case_deposits(CONTRACT)
    assert len(indexes) == total == len(set(indexes))
    assert service.ledger.head_size() == start + total
    files = sorted(p for p in case.rglob("*") if p.is_file() and ".cunzheng" not in p.parts)
    assert len(files) == total
    for path in files:
        found = service.ledger.lookup_digest(digest_file(str(path)))
        assert len(found) == 1, path
    assert len(list(receipts.rglob("*.json"))) == total


@pytest.mark.parametrize("contract_no", [".", "..", "...", "a/..", "%2E%2E"])
def test_receipts_stay_in_their_own_case_folder(tmp_path: Path, contract_no: str) -> None:
    """A contract number of dots (or one that looks encoded) maps to a folder of its own
    under receipts/, never to receipts/ itself or above it."""
    receipts = tmp_path / ".cunzheng" / "receipts"
    item = Planned(tmp_path / "a.pdf", "a.pdf", "loan_contract", contract_no)
    path = receipt_path(tmp_path, item)
    assert path.parent.parent == receipts and path.name == "a.pdf.json"
    assert path.parent.name not in ("", ".", "..")
    others = {receipt_path(tmp_path, Planned(item.path, "a.pdf", "other", c)).parent
              for c in (".", "..", "...", "a/..", "%2E%2E", "HT-1")}  # fmt: skip
    assert len(others) == 6
