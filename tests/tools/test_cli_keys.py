"""`cunzheng keys generate` and `cunzheng sign`: a lender's whole path to an admitted deposit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.entry import Deposit
from ledger.registry import Registry
from ledger.storage.memory import MemoryStore
from tools.cli import main
from verifier.signature import StatementKeys


@pytest.mark.parametrize("alg", ["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha256", "sm2-sm3"])
def test_generate_sign_and_be_admitted(tmp_path: Path, alg: str) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "generate", "--alg", alg, "--out", str(tmp_path / "k")])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "k.key").stat().st_mode & 0o077 == 0
    evidence = tmp_path / "借款合同.pdf"
    evidence.write_bytes(b"%PDF-1.7 contract")
    signed = runner.invoke(
        main,
        ["sign", str(evidence), "--key", str(tmp_path / "k.key"), "--key-id", "k1",
         "--depositor", "lender-1", "--kind", "loan_contract", "--meta", "contract_no=HT9"],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    request = json.loads((tmp_path / "借款合同.pdf.deposit.json").read_text())
    assert request["meta"] == {"file_name": "借款合同.pdf", "contract_no": "HT9"}
    assert "HT9" not in json.dumps(request["statement"])  # private meta stays out of the leaf
    deposit = Deposit.from_object(request)
    registry = Registry(MemoryStore(), StatementKeys(), clock=lambda: 10**13)
    registry.register("lender-1", "Lender")
    registry.add_key("lender-1", (tmp_path / "k.pub").read_bytes(), key_id="k1", not_before=0)
    registry.admit([deposit], 10**13)


def test_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["keys", "generate", "--out", str(tmp_path / "k")])
    again = runner.invoke(main, ["keys", "generate", "--out", str(tmp_path / "k")])
    assert again.exit_code != 0 and "exists" in again.output
    evidence = tmp_path / "e.png"
    evidence.write_bytes(b"\x89PNG")
    bad_meta = runner.invoke(
        main,
        ["sign", str(evidence), "--key", str(tmp_path / "k.key"), "--key-id", "k1",
         "--depositor", "lender-1", "--kind", "other", "--meta", "oops"],
    )  # fmt: skip
    assert bad_meta.exit_code != 0 and "KEY=VALUE" in bad_meta.output
    wrong_key = runner.invoke(
        main,
        ["sign", str(evidence), "--key", str(tmp_path / "k.pub"), "--key-id", "k1",
         "--depositor", "lender-1", "--kind", "other"],
    )  # fmt: skip
    assert wrong_key.exit_code != 0 and "not a private key" in wrong_key.output
