"""What an operator sees of a real server: JSON-lines logs with no secret in them, Prometheus
metrics for admins and auditors only, and a health endpoint that reports time-stamping lag and
the latest checkpoint's age."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.reliability.conftest import Server, register_lender, wait_stamped

CONTRACT_NO = "HT-LOGGED-NEVER-4417"
SAMPLE = re.compile(r'^cunzheng_[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+-]+(\.[0-9]+)?$')


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


@pytest.mark.slow
def test_logs_metrics_and_health_of_a_real_server(tmp_path: Path, store_url: str | None) -> None:
    server = Server(tmp_path / "data", store_url, args=["--log-format", "json"])
    try:
        server.start()
        lender = register_lender(server)
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        with server.client() as http:
            tokens = {}
            for role in ("judge", "auditor"):
                r = http.post("/v1/admin/api-keys", json={"role": role, "label": role},
                              headers=admin)  # fmt: skip
                tokens[role] = r.json()["token"]
            evidence = [b"%%PDF ops %d" % i for i in range(5)]
            batch = [lender.deposit(e).to_object() for e in evidence]
            r = http.post("/v1/deposits", json={"deposits": batch}, headers=lender.headers)
            assert r.status_code == 201, r.text
            again = http.post("/v1/deposits", json=batch[0], headers=lender.headers)
            assert again.json()["receipts"][0]["duplicate"] is True
            code = r.json()["receipts"][0]["code"]
            health = wait_stamped(http)
            assert health["status"] == "ok" and health["tsa_error"] is None
            assert health["tree_size"] == 5 and health["tsa_lag_seconds"] == 0
            assert 0 <= health["checkpoint_age_seconds"] < 60
            digest = "sha256:" + hashlib.sha256(evidence[0]).hexdigest()
            verdict = http.post("/v1/verify", json={"code": code, "digest": digest}).json()
            assert verdict["verdict"] == "VERIFIED"
            http.post("/v1/verify", json={"digest": "sha256:" + "00" * 32})
            judged = http.get(f"/v1/deposits/{code}/retrieve",
                              headers={"Authorization": f"Bearer {tokens['judge']}"})  # fmt: skip
            assert judged.status_code == 200
            bogus = "czk_0123456789abcdef_" + "s3cr3t" * 6
            refused = http.get("/v1/admin/access-log", headers={"Authorization": f"Bearer {bogus}"})
            assert refused.status_code == 401

            # /metrics: admins and auditors only (README, Operations).
            assert http.get("/metrics").status_code == 401
            for role_headers in (lender.headers, {"Authorization": f"Bearer {tokens['judge']}"}):
                denied = http.get("/metrics", headers=role_headers)
                assert denied.status_code == 403
                assert denied.headers["content-type"] == "application/problem+json"
            scrape = http.get("/metrics", headers={"Authorization": f"Bearer {tokens['auditor']}"})
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
            text = http.get("/metrics", headers=admin).text
            # A case's routes carry its contract number (private meta) in the path.
            private = lender.deposit(b"%PDF case", contract_no=CONTRACT_NO).to_object()
            r = http.post("/v1/deposits", json=private, headers=lender.headers)
            assert r.status_code == 201, r.text
            for path in (f"/v1/cases/{CONTRACT_NO}/check", f"/v1/cases/{CONTRACT_NO}",
                         f"/v1/cases/{CONTRACT_NO}-none/check"):  # fmt: skip
                for headers in (lender.headers, {"Authorization": f"Bearer {tokens['judge']}"}):
                    assert http.get(path, headers=headers).status_code in (200, 404)
        for line in text.splitlines():
            assert line.startswith("# ") or SAMPLE.match(line), line
        assert metric(text, 'cunzheng_deposits_total{outcome="new"}') == 5
        assert metric(text, 'cunzheng_deposits_total{outcome="duplicate"}') == 1
        assert metric(text, "cunzheng_block_entries_count") >= 1
        assert metric(text, "cunzheng_block_entries_sum") == 5
        assert metric(text, "cunzheng_commit_seconds_count") >= 1
        assert metric(text, 'cunzheng_verify_results_total{verdict="VERIFIED"}') == 1
        assert metric(text, 'cunzheng_verify_results_total{verdict="NOT_FOUND"}') == 1
        assert metric(text, "cunzheng_tree_size") == 5
        assert metric(text, "cunzheng_tsa_lag_entries") == 0
        assert metric(text, "cunzheng_tsa_up") == 1
        assert 'route="/v1/deposits/{code}/retrieve",status="200"' in text
    finally:
        server.stop()

    # Every log line after the start-up banner is a JSON object; requests are logged by route,
    # status and caller (role:key id), never with a token.
    lines = server.log().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    banner = ("cunzheng is serving", "  ")
    assert all(line.startswith(("{", *banner)) or not line.strip() for line in lines), lines
    access = [r for r in records if r["logger"] == "cunzheng.access"]
    assert {"method", "route", "status", "ms", "caller", "ts", "level"} <= set(access[0])
    retrieve = [r for r in access if r["route"] == "/v1/deposits/{code}/retrieve"]
    assert retrieve and retrieve[0]["caller"].startswith("judge:")
    cases = [r for r in access if r["route"] == "/v1/cases/{contract_no:path}/check"]
    assert len(cases) == 4 and "path" not in cases[0]
    assert any(r["status"] == 401 for r in access)

    # No secret in the logs: API tokens (and their secret halves), key material.
    log_text = server.log()
    secrets = [server.admin_token, lender.token, *tokens.values(), bogus]
    # czk_<16 hex key id>_<secret>; the secret itself may hold "_" (URL-safe base64).
    secrets += [t.split("_", 2)[2] for t in secrets]
    for pem in ("keys/log.key", "tsa/tsa.key"):
        body = (server.data_dir / pem).read_text().splitlines()[1:-1]
        secrets += [line for line in body if len(line) > 16]
        secrets.append(base64.b64decode("".join(body)).hex())
    for secret in secrets:
        assert secret not in log_text, "a secret appears in the server's log"
    # Nor private meta: a contract number, even from a path that named it.
    assert CONTRACT_NO not in log_text, "a contract number appears in the server's log"
