"""``cunzheng bench ledger --quick`` and ``cunzheng bench crypto --quick`` run end to end and
write every figure, with its unit.

Not a timing test: only that each section is there, positive, and carries its ratios.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from tools.bench import CRYPTO_SECTIONS, SECTIONS, SIGNERS, TSA_KEYS, load_pymerkle
from tools.cli import main

pytestmark = pytest.mark.slow

RATIOS = {
    "ceiling": ["ledger_to_ceiling"],
    "hashing": ["ledger_to_hashing"],
    "proofs": ["inclusion_slowdown_1000_to_20000", "consistency_slowdown_1000_to_20000"],
    "pymerkle": [
        "ours_to_pymerkle_bulk_appends",
        "ours_to_pymerkle_single_appends",
        "ours_to_pymerkle_inclusion_1000",
        "ours_to_pymerkle_inclusion_20000",
    ],
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "ledger.json"
    work = tmp / "work"
    result = CliRunner().invoke(
        main, ["bench", "ledger", "--quick", "--json", str(out), "--dir", str(work)]
    )
    assert result.exit_code == 0, result.output
    assert "cunzheng bench ledger" in result.output
    assert list(work.iterdir()) == [], "temporary stores are left behind"
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def test_machine_and_parameters_are_recorded(document: dict[str, Any]) -> None:
    assert document["machine"]["cpu_count"] >= 1
    assert document["machine"]["python"]
    assert document["parameters"]["sizes"] == [1000, 20000]
    assert document["parameters"]["appends"] == 5000


def test_every_section_is_measured_or_skipped_with_a_reason(document: dict[str, Any]) -> None:
    measured = set(document["sections"])
    skipped = set(document["skipped"])
    assert measured | skipped == set(SECTIONS)
    assert not measured & skipped
    assert skipped <= {"pymerkle"}
    if load_pymerkle() is not None:
        assert "pymerkle" in measured


def test_every_figure_is_positive_with_a_unit(document: dict[str, Any]) -> None:
    for section, figures in document["sections"].items():
        assert figures, section
        for name, figure in figures.items():
            assert figure["value"] > 0, f"{section}.{name}"
            assert figure["unit"], f"{section}.{name}"
            if "target" in figure:
                assert isinstance(figure["met"], bool)


@pytest.mark.parametrize("section", sorted(RATIOS))
def test_ratios_are_present(document: dict[str, Any], section: str) -> None:
    if section in document["skipped"]:
        pytest.skip(document["skipped"][section])
    for name in RATIOS[section]:
        assert document["sections"][section][name]["unit"] == "ratio"


def test_headline_figures_are_present(document: dict[str, Any]) -> None:
    sections = document["sections"]
    assert sections["deposits"]["build_and_validate"]["unit"] == "deposits/s"
    assert sections["append"]["durable_appends"]["unit"] == "appends/s"
    assert sections["append"]["mean_block_size"]["value"] <= 5000
    assert sections["ceiling"]["raw_writebatch_entries"]["unit"] == "entries/s"
    assert sections["hashing"]["sha256_two_per_leaf"]["unit"] == "leaves/s"
    for size in (1000, 20000):
        assert sections["proofs"][f"inclusion_{size}"]["unit"] == "proofs/s"
        assert sections["proofs"][f"consistency_{size}"]["unit"] == "proofs/s"
        assert sections["tree"][f"stored_bytes_per_leaf_{size}"]["unit"] == "B/leaf"
        assert sections["tree"][f"c2sp_bytes_per_leaf_{size}"]["unit"] == "B/leaf"


# --- bench crypto ------------------------------------------------------------------------------

SIGNER_FIGURES = {
    "sign_statement": "signatures/s",
    "signature_bytes": "B",
    "verify_statement": "verifications/s",
    "raw_verify": "verifications/s",
    "verify_to_raw": "ratio",
    "admit_single": "deposits/s",
    "admit_batch": "deposits/s",
    "admit_single_to_raw": "ratio",
    "admit_batch_to_raw": "ratio",
}
TSA_FIGURES = {
    "token_bytes": "B",
    "stamp": "tokens/s",
    "raw_sign": "signatures/s",
    "stamp_to_raw": "ratio",
    "verify_token": "tokens/s",
    "raw_verify": "verifications/s",
    "verify_token_to_raw": "ratio",
}


@pytest.fixture(scope="module")
def crypto(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench-crypto")
    out = tmp / "crypto.json"
    work = tmp / "work"
    result = CliRunner().invoke(
        main, ["bench", "crypto", "--quick", "--json", str(out), "--dir", str(work)]
    )
    assert result.exit_code == 0, result.output
    assert "cunzheng bench crypto" in result.output
    assert list(work.iterdir()) == [], "temporary serial files are left behind"
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def test_crypto_records_machine_and_parameters(crypto: dict[str, Any]) -> None:
    assert crypto["benchmark"] == "crypto"
    assert crypto["machine"]["cryptography"]
    assert crypto["machine"]["openssl"]
    assert crypto["parameters"] | {"work_dir": None} == {
        "statements": 50,
        "batch": 50,
        "tokens": 20,
        "rounds": 1,
        "serials": "FileSerials(block=1000) in the temporary directory",
        "work_dir": None,
    }
    assert crypto["notes"]


def test_crypto_measures_every_section(crypto: dict[str, Any]) -> None:
    measured, skipped = set(crypto["sections"]), set(crypto["skipped"])
    assert measured | skipped == set(CRYPTO_SECTIONS)
    assert not measured & skipped
    assert skipped <= {"sm2-sm3"}, crypto["skipped"]  # only without gmssl-pyx


@pytest.mark.parametrize("section", [s.section for s in SIGNERS])
def test_crypto_signer_figures_and_ratios(crypto: dict[str, Any], section: str) -> None:
    if section in crypto["skipped"]:
        pytest.skip(crypto["skipped"][section])
    figures = crypto["sections"][section]
    assert {name: f["unit"] for name, f in figures.items()} == SIGNER_FIGURES
    assert all(f["value"] > 0 for f in figures.values()), figures
    raw = figures["raw_verify"]["value"]
    assert figures["verify_to_raw"]["value"] == pytest.approx(
        figures["verify_statement"]["value"] / raw
    )
    assert figures["admit_batch_to_raw"]["value"] == pytest.approx(
        figures["admit_batch"]["value"] / raw
    )


@pytest.mark.parametrize("section", [name for name, _ in TSA_KEYS])
def test_crypto_tsa_figures_and_ratios(crypto: dict[str, Any], section: str) -> None:
    figures = crypto["sections"][section]
    assert {name: f["unit"] for name, f in figures.items()} == TSA_FIGURES
    assert all(f["value"] > 0 for f in figures.values()), figures
    assert figures["stamp_to_raw"]["value"] == pytest.approx(
        figures["stamp"]["value"] / figures["raw_sign"]["value"]
    )
    assert figures["verify_token_to_raw"]["value"] == pytest.approx(
        figures["verify_token"]["value"] / figures["raw_verify"]["value"]
    )
