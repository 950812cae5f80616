"""`cunzheng verify --package`: a whole court package checked offline, with no server code
loaded; each item's verdict printed in Chinese and English; non-zero exit on any failure."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from api.documents import case_package_zip
from api.service import Service
from ledger.checkpoint import NoteSigner
from tests.court.conftest import BASE_URL, ISSUED_AT, SampleCase, sample_case  # noqa: F401
from tests.court.test_package import hostile_packages
from tests.tools.test_verify_cmd import run


@pytest.mark.slow
def test_a_package_verifies_offline_and_a_tampered_one_names_the_item(
    service: Service,
    sample_case: SampleCase,  # noqa: F811
    tmp_path: Path,
) -> None:
    package = tmp_path / "证据包.zip"
    with package.open("wb") as out:
        case_package_zip(service, service.check_case(sample_case.contract_no), out,
                         depositor="lender-1", base_url=BASE_URL, issued_at=ISSUED_AT)  # fmt: skip
    root = tmp_path / "tsa-root.pem"
    root.write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in service.tsa_roots))
    trust = ["--log-key", service.ledger.signer.vkey, "--tsa-root", str(root)]

    ok = run("verify", "--package", str(package), *trust)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("核验通过  VERIFIED")
    assert "LOADED=\n" in ok.stderr  # no web framework, no storage engine, no api package
    for code in sample_case.codes:
        assert f"✓ bundle      {code}  核验通过 / verified" in ok.stdout
        assert f"✓ meta        {code}  元数据与承诺值一致，合同编号与证据目录一致" in ok.stdout
        rendering = "仅为展示，不作为证明（以离线验证包为准） / rendering, not proof"
        assert f"– certificate {code}  {rendering}" in ok.stdout
    assert "– catalog     catalog.pdf  仅为展示，不作为证明" in ok.stdout
    assert "✓ completeness catalog.json  证据目录中的证据要素完整性与离线验证包一致" in ok.stdout
    assert "✗" not in ok.stdout

    # One byte of one held original changed: exit 5, the deposit and the member named.
    with zipfile.ZipFile(package) as zf:
        files = {i.filename: zf.read(i) for i in zf.infolist()}
    item = next(i for i in json.loads(files["catalog.json"])["items"] if i["file"])
    files[item["file"]] = b"\x00" + files[item["file"]][1:]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    bad = run("verify", "--package", str(tampered), *trust, "--json")
    assert bad.returncode == 5, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["verdict"] == "INVALID"
    failed = {(c["subject"], c["check"]) for c in report["checks"] if c["status"] == "failed"}
    assert failed == {(item["code"], "file"), (item["file"], "member"),
                      ("catalog.json", "completeness")}  # fmt: skip
    text = run("verify", "--package", str(tampered), *trust)
    assert f"✗ file        {item['code']}  证据原件与存证摘要不一致 / " in text.stdout

    # A log key the package was not signed with: every bundle fails.
    stranger = NoteSigner.generate(service.config.origin).vkey
    wrong = run("verify", "--package", str(package), "--log-key", stranger, "--tsa-root",
                str(root))  # fmt: skip
    assert wrong.returncode == 5
    assert wrong.stdout.count("✗ bundle") == len(sample_case.codes)

    # Not a zip at all; and --package with a deposit's options is a usage error.
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"junk")
    assert run("verify", "--package", str(junk), *trust).returncode == 5
    # Hostile zips (a corrupt deflate stream, a catalog field of the wrong type): exit 5 with
    # the failures named, never a traceback.
    for name, (data, _) in hostile_packages(package.read_bytes()).items():
        hostile = tmp_path / f"{name}.zip"
        hostile.write_bytes(data)
        result = run("verify", "--package", str(hostile), *trust)
        assert result.returncode == 5, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "✗" in result.stdout, name
    usage = run("verify", "--package", str(package), "--code", sample_case.codes[0], *trust)
    assert usage.returncode == 2
