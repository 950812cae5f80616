"""``cunzheng bench audit --quick`` builds a signed ledger, audits it clean and writes every
figure with its ceilings, measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tools.cli import main


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench-audit")
    out, work = tmp / "audit.json", tmp / "work"
    result = CliRunner().invoke(
        main, ["bench", "audit", "--quick", "--workers", "2", "--json", str(out),
               "--dir", str(work)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cunzheng bench audit" in result.output
    assert list(work.iterdir()) == [], "the temporary ledger is left behind"
    loaded: dict[str, Any] = json.loads(Path(out).read_text())
    return loaded


def test_the_audited_ledger_is_the_one_asked_for(document: dict[str, Any]) -> None:
    assert document["benchmark"] == "audit"
    assert document["parameters"]["size"] == 3000
    audit = document["sections"]["audit"]
    assert audit["entries"]["value"] == 3000
    assert audit["workers"]["value"] == 2
    assert audit["checkpoints"]["value"] >= 1 and audit["timestamps"]["value"] >= 1
    assert document["machine"]["cryptography"]


def test_ratios_divide_figures_of_the_same_run(document: dict[str, Any]) -> None:
    audit, ceiling, ratios = (document["sections"][s] for s in ("audit", "ceiling", "ratios"))
    hashlib_rate = ceiling["hashlib_2_hashes_per_leaf"]["value"]
    signatures = ceiling["ed25519_verify_all_cores"]["value"]
    combined = ceiling["hashlib_plus_signatures"]["value"]
    assert combined == pytest.approx(1 / (1 / hashlib_rate + 1 / signatures))
    assert ratios["audit_vs_hashlib"]["value"] == pytest.approx(
        audit["audit_rate"]["value"] / hashlib_rate
    )
    assert ratios["audit_vs_hashlib"]["target"] == ">= 0.45"
    assert isinstance(ratios["audit_vs_hashlib"]["met"], bool)
    assert ratios["audit_vs_hashlib_plus_signatures"]["value"] == pytest.approx(
        audit["audit_rate"]["value"] / combined
    )
    for section in (audit, ceiling, ratios):
        for name, figure in section.items():
            assert figure["value"] > 0 and figure["unit"], name
