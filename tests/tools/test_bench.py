"""``cunzheng bench ledger --quick``, ``cunzheng bench crypto --quick`` and ``cunzheng bench http
--quick`` run end to end and write every figure, with its unit.

Not a timing test: only that each section is there, positive, and carries its ratios.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.entry import SIGNATURE_ALGORITHMS
from tools import bench
from tools.bench import (
    CRYPTO_SECTIONS,
    HTTP_SECTIONS,
    SECTIONS,
    SIGNERS,
    TSA_KEYS,
    WrkResult,
    load_pymerkle,
    steady_seconds,
    wrk_script,
)
from tools.cli import _HTTP_ALGS, main

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
    assert document["parameters"]["rounds"] == 1


def test_passes_compared_are_timed_in_interleaved_rounds() -> None:
    """Every pass is warmed once, then timed once a round, the order reversed every other round:
    a drift of the machine's speed reaches all of them alike (the proof slowdowns and the
    pymerkle ratios are between such passes)."""
    calls: list[str] = []
    passes = [lambda name=name: calls.append(name) for name in "abc"]
    seconds = steady_seconds(passes, rounds=3)
    assert calls == list("abc" + "abc" + "cba" + "abc")
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)


def test_appends_and_their_ceiling_are_timed_in_interleaved_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the untimed warm-ups, one append run and one ceiling run a round, the order
    reversed every other round, each into a fresh store that is removed afterwards."""
    calls: list[str] = []

    def appends(path: Path, deposits: object, *, max_batch: int, chunk: int) -> bench.AppendRun:
        assert not path.exists() and path.parent.is_dir() and path.parent != tmp_path
        calls.append("append")
        return bench.AppendRun(len(calls), 1)

    def ceiling(path: Path, batches: object) -> float:
        assert not path.exists() and path.parent.is_dir() and path.parent != tmp_path
        calls.append("ceiling")
        return float(len(calls))

    monkeypatch.setattr(bench, "time_appends", appends)
    monkeypatch.setattr(bench, "time_raw_writes", ceiling)
    config = bench.BenchConfig(rounds=3)
    runs, raw = bench._append_rounds(config, tmp_path, [], [])
    warm_up, *rounds = calls
    assert warm_up == "ceiling"
    assert rounds == ["append", "ceiling", "ceiling", "append", "append", "ceiling"]
    assert [r.seconds for r in runs] == [2, 5, 6] and raw == [3, 4, 7]
    assert list(tmp_path.iterdir()) == []


def test_durable_appends_are_the_median_run_beside_the_cold_one(document: dict[str, Any]) -> None:
    append = document["sections"]["append"]
    assert append["durable_appends_cold"]["unit"] == "appends/s"
    assert "target" not in append["durable_appends_cold"]
    assert append["durable_appends"]["value"] == pytest.approx(5000 / append["seconds"]["value"])
    assert any("durable_appends_cold" in note for note in document["notes"])


def test_every_section_is_measured_or_skipped_with_a_reason(document: dict[str, Any]) -> None:
    measured = set(document["sections"])
    skipped = set(document["skipped"])
    assert measured | skipped == set(SECTIONS)
    assert not measured & skipped
    assert skipped <= {"pymerkle"}
    if load_pymerkle() is not None:
        assert "pymerkle" in measured


def test_an_unreachable_pymerkle_target_is_explained(document: dict[str, Any]) -> None:
    """Ten times pymerkle's bulk appends can exceed what SHA-256 alone allows: then the report
    says so, with both figures from the same run."""
    if "pymerkle" in document["skipped"]:
        pytest.skip(document["skipped"]["pymerkle"])
    bulk = document["sections"]["pymerkle"]["bulk_appends"]["value"]
    hashing = document["sections"]["hashing"]["sha256_two_per_leaf"]["value"]
    explained = [n for n in document["notes"] if n.startswith("ours_to_pymerkle_bulk_appends")]
    assert len(explained) == (1 if 10 * bulk > hashing else 0)
    if explained:
        assert f"{hashing:,.0f} leaves/s" in explained[0]


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
    assert sections["append"]["durable_appends"]["target"] == ">= 100000"
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


# --- bench http --------------------------------------------------------------------------------

LOAD_FIGURES = {
    "requests_per_second": "req/s",
    "latency_p50": "ms",
    "latency_p99": "ms",
    "non_2xx": "responses",
    "socket_errors": "errors",
    "requests": "requests",
}
CPU_FIGURES = {"loop_cpu_per_request": "µs", "server_cpu_per_request": "µs"}
BESIDE_TRIVIAL = CPU_FIGURES | {
    "trivial_before": "req/s",
    "trivial_after": "req/s",
    "trivial": "req/s",
    "to_trivial": "ratio",
    "trivial_loop_cpu_per_request": "µs",
    "loop_cpu_to_trivial": "ratio",
}
HTTP_FIGURES = {
    "trivial": LOAD_FIGURES | CPU_FIGURES,
    "single_deposits": LOAD_FIGURES | {"distinct_bodies": "bodies"} | BESIDE_TRIVIAL,
    "batch_deposits": LOAD_FIGURES
    | {
        "deposits_per_second": "deposits/s",
        "distinct_bodies": "bodies",
        "raw_verify_before": "verifications/s",
        "raw_verify_after": "verifications/s",
        "raw_verify": "verifications/s",
        "to_raw_verify": "ratio",
        "loop_cpu_per_deposit": "µs",
        "server_cpu_per_deposit": "µs",
    },
    "verify_by_code": LOAD_FIGURES | BESIDE_TRIVIAL,
}
# (section, ratio, numerator section and figure, denominator section and figure)
HTTP_RATIOS = [
    ("single_deposits", "to_trivial", "single_deposits", "requests_per_second", "single_deposits",
     "trivial"),
    ("batch_deposits", "to_raw_verify", "batch_deposits", "deposits_per_second",
     "batch_deposits", "raw_verify"),
    ("verify_by_code", "to_trivial", "verify_by_code", "requests_per_second", "verify_by_code",
     "trivial"),
]  # fmt: skip


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        if os.environ.get("CI"):  # CI must measure, never skip: ./run-tests installs wrk
            pytest.fail("wrk is not installed: apt-get install -y wrk")
        pytest.skip("wrk is not installed: apt-get install -y wrk")
    tmp = tmp_path_factory.mktemp("bench-http")
    out = tmp / "http.json"
    work = tmp / "work"
    result = CliRunner().invoke(
        main, ["bench", "http", "--quick", "--json", str(out), "--dir", str(work)]
    )
    assert result.exit_code == 0, result.output
    assert "cunzheng bench http" in result.output
    assert list(work.iterdir()) == [], "the server's data or the wrk scripts are left behind"
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def test_http_records_machine_and_parameters(http: dict[str, Any]) -> None:
    assert http["benchmark"] == "http"
    for package in ("fastapi", "uvicorn", "uvloop", "httptools", "cryptography"):
        assert http["machine"][package], package
    assert http["machine"]["wrk"].startswith("wrk")
    parameters = http["parameters"]
    assert (parameters["seconds"], parameters["batch"], parameters["codes"]) == (1, 50, 20)
    assert (parameters["alg"], parameters["connections"]) == ("ed25519", 64)
    assert http["notes"]


def test_http_measures_every_section(http: dict[str, Any]) -> None:
    assert list(http["sections"]) == list(HTTP_SECTIONS)
    assert http["skipped"] == {}


@pytest.mark.parametrize("section", HTTP_SECTIONS)
def test_http_figures_have_units_and_no_failed_request(http: dict[str, Any], section: str) -> None:
    figures = http["sections"][section]
    assert {name: f["unit"] for name, f in figures.items()} == HTTP_FIGURES[section]
    assert figures["non_2xx"]["value"] == 0
    assert figures["non_2xx"]["met"] is True
    assert figures["socket_errors"]["value"] >= 0
    for name, f in figures.items():
        if name not in ("non_2xx", "socket_errors"):
            assert f["value"] > 0, f"{section}.{name}"


@pytest.mark.parametrize(("section", "ratio", "top", "top_name", "bottom", "bottom_name"),
                         HTTP_RATIOS)  # fmt: skip
def test_http_ratios_divide_figures_of_the_same_run(
    http: dict[str, Any],
    section: str,
    ratio: str,
    top: str,
    top_name: str,
    bottom: str,
    bottom_name: str,
) -> None:
    sections = http["sections"]
    figure = sections[section][ratio]
    assert figure["unit"] == "ratio"
    assert figure["value"] > 0
    assert isinstance(figure["met"], bool)
    assert figure["value"] == pytest.approx(
        sections[top][top_name]["value"] / sections[bottom][bottom_name]["value"]
    )


@pytest.mark.parametrize("section", HTTP_SECTIONS)
def test_http_server_cpu_is_measured_beside_the_trivial_endpoint(
    http: dict[str, Any], section: str
) -> None:
    """The server's CPU per request (per deposit in a batch), read from /proc around each timed
    run: the loop's share is part of the whole server's, and the loop's cost beside the trivial
    endpoint's is the ratio of the two figures of the same run."""
    sections = http["sections"]
    per = "deposit" if section == "batch_deposits" else "request"
    figures = sections[section]
    loop, whole = figures[f"loop_cpu_per_{per}"], figures[f"server_cpu_per_{per}"]
    assert 0 < loop["value"] <= whole["value"] < 1e6
    assert "target" not in loop and "target" not in whole
    if section in ("single_deposits", "verify_by_code"):
        trivial = figures["trivial_loop_cpu_per_request"]["value"]
        ratio = figures["loop_cpu_to_trivial"]
        assert ratio["unit"] == "ratio" and "target" not in ratio
        assert ratio["value"] == pytest.approx(trivial / loop["value"])


def test_http_ratios_are_to_the_trivial_endpoint_measured_beside_each_phase(
    http: dict[str, Any],
) -> None:
    """Each ratio phase has the trivial endpoint measured just before and just after it, and
    divides by their mean; the singles' run before is the trivial section's own."""
    sections = http["sections"]
    for section in ("single_deposits", "verify_by_code"):
        figures = sections[section]
        before, after = figures["trivial_before"]["value"], figures["trivial_after"]["value"]
        assert figures["trivial"]["value"] == pytest.approx((before + after) / 2)
    singles = sections["single_deposits"]
    assert singles["trivial_before"]["value"] == sections["trivial"]["requests_per_second"]["value"]


def _samples(pid: int, ticks: list[int]) -> Any:
    """A stand-in for cpu_sample: the server's task ``pid`` at each of ``ticks`` in turn."""
    it = iter(ticks)
    return lambda asked: {pid: next(it)} if asked == pid else None


def test_wait_quiet_waits_until_a_window_without_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy for two windows, then none used in the third: quiet. (A window of 1 ms: the
    threshold is then below one tick, so only a window with no tick is quiet.)"""
    monkeypatch.setattr(bench, "cpu_sample", _samples(7, [0, 5, 10, 10]))
    assert bench._wait_quiet(7, window=0.001) is True


def test_wait_quiet_gives_up_on_a_server_that_stays_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "cpu_sample", _samples(7, [0, 5, 10]))
    assert bench._wait_quiet(7, seconds=-1, window=0.001) is False


def test_wait_quiet_without_proc_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "cpu_sample", lambda pid: None)
    assert bench._wait_quiet(7) is True


def test_http_targets(http: dict[str, Any]) -> None:
    sections = http["sections"]
    assert sections["single_deposits"]["to_trivial"]["target"] == ">= 0.4"
    assert sections["single_deposits"]["latency_p99"]["target"] == "<= 50"
    assert sections["batch_deposits"]["to_raw_verify"]["target"] == ">= 0.7"
    assert sections["verify_by_code"]["to_trivial"]["target"] == ">= 0.6"
    batch = sections["batch_deposits"]
    assert batch["deposits_per_second"]["value"] == pytest.approx(
        batch["requests_per_second"]["value"] * 50
    )
    # The ceiling is measured on both sides of the batch phase; the ratio divides by their mean.
    assert batch["raw_verify"]["value"] == pytest.approx(
        (batch["raw_verify_before"]["value"] + batch["raw_verify_after"]["value"]) / 2
    )


def test_http_without_wrk_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["bench", "http", "--quick", "--json", str(tmp_path / "j")])
    assert result.exit_code == 1
    assert "wrk" in result.output
    assert "apt-get install -y wrk" in result.output
    assert not (tmp_path / "j").exists()


def test_http_takes_every_signature_algorithm() -> None:
    assert set(_HTTP_ALGS) == set(SIGNATURE_ALGORITHMS)


def test_wrk_script_and_result_line(tmp_path: Path) -> None:
    script = wrk_script(method="POST", bodies=tmp_path / "b", token="czk_t", threads=2)
    assert 'wrk.headers["Authorization"] = "Bearer czk_t"' in script
    assert f'io.lines("{tmp_path / "b"}")' in script
    assert "position = position + 2" in script
    get = wrk_script(method="GET", bodies=None, token=None, threads=1)
    assert "function request" not in get
    assert "Authorization" not in get
    result = WrkResult.parse("Running 1s test\nWRK_RESULT 500 2000000 9 1 1 0 0 0 0 1500.0 9000.0 "
                             "1800.5 12000.0\n")  # fmt: skip
    assert result.rate == 250
    assert (result.non_2xx, result.socket_errors, result.p99_us) == (1, 0, 9000.0)
    with pytest.raises(RuntimeError, match="WRK_RESULT"):
        WrkResult.parse("wrk: connection refused")


# --- bench ledger --store postgresql://… ------------------------------------------------------


def test_bench_ledger_on_postgresql(pg_cluster: Any, tmp_path: Path) -> None:
    """Tiny and untimed: every figure is there with its unit, the ratio divides figures of the
    same run, and the temporary databases are dropped."""
    import psycopg

    from tools.bench_pg import PG_SECTIONS

    out = tmp_path / "pg.json"
    url = pg_cluster.url()
    args = ["bench", "ledger", "--store", url, "--appends", "600", "--single", "5",
            "--json", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document["sections"]) == set(PG_SECTIONS)
    append, ceiling = document["sections"]["append"], document["sections"]["ceiling"]
    assert append["durable_appends"]["value"] > 0 and append["blocks"]["value"] >= 1
    assert ceiling["transactions"]["value"] == append["blocks"]["value"]
    ratio = ceiling["ledger_to_ceiling"]
    assert ratio["target"] == ">= 0.5" and ratio["value"] == pytest.approx(
        append["durable_appends"]["value"] / ceiling["raw_copy_entries"]["value"]
    )
    assert "psycopg" in document["machine"]
    with psycopg.connect(url) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'cunzheng_bench_%'"
        ).fetchall()
    assert left == []


def test_bench_ledger_store_wants_postgresql() -> None:
    result = CliRunner().invoke(main, ["bench", "ledger", "--store", "rocksdb:/tmp/x"])
    assert result.exit_code == 2 and "postgresql" in result.output
