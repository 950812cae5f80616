"""Schemathesis against our own OpenAPI document: requests generated from every operation's
schema (valid and invalid bodies, paths, queries), sent to the ASGI app with no key or a key of
each role. Not one may get a 5xx, and every error must be RFC 9457 problem+json.

At least 1,000 requests in all (``CUNZHENG_SCHEMA_EXAMPLES`` examples per operation, 60 by
default; the test fails if fewer than 1,000 were sent).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.service import Service
from tests.api.conftest import Lender

ROLES = (None, "depositor", "judge", "auditor", "admin")


@pytest.fixture
def tokens(service: Service, lender: Lender) -> dict[str | None, str]:
    keys = service.api_keys
    return {
        "admin": (service.config.data_dir / "admin-token").read_text(),
        "depositor": keys.issue("depositor", depositor="lender-1"),
        "judge": keys.issue("judge", label="fuzz judge"),
        "auditor": keys.issue("auditor", label="fuzz auditor"),
    }


@pytest.fixture
def seeded(service: Service, lender: Lender, tmp_path: Path) -> Service:
    """A log with a few deposits, so that generated codes and sizes sometimes hit something."""
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.pdf")
        files[-1].write_bytes(b"%%PDF fuzz %d" % i)
    service.sequencer.append([lender.deposit(p) for p in files])
    return service


@pytest.mark.slow
def test_generated_requests_get_no_5xx_and_every_error_is_problem_json(
    seeded: Service, tokens: dict[str | None, str]
) -> None:
    app = create_app(seeded)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    per_operation = int(os.environ.get("CUNZHENG_SCHEMA_EXAMPLES", "60"))
    sent: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]
    with TestClient(app):  # runs the app's lifespan once, as a server would
        for operation in operations:

            @given(case=operation.as_strategy(), role=st.sampled_from(ROLES))
            @settings(
                max_examples=per_operation,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case, role: str | None) -> None:
                headers = dict(case.headers or {})
                headers.pop("Authorization", None)
                if role is not None:
                    headers["Authorization"] = f"Bearer {tokens[role]}"
                case.headers = headers
                where = f"{case.operation.label} as {role}: {case.as_curl_command()}"
                sent[case.operation.label] += 1
                try:
                    response = case.call()
                except Exception as exc:  # the test client re-raises what would be a 500
                    failures.append(f"500 {where}\n{type(exc).__name__}: {exc}")
                    return
                status = response.status_code
                if status >= 500:
                    failures.append(f"{status} {where}\n{response.text[:500]}")
                elif status >= 400:
                    kind = (response.headers.get("content-type") or [""])[0]
                    body = response.json() if kind == "application/problem+json" else None
                    if not (body and body.get("status") == status and body.get("code")):
                        failures.append(f"{status} not problem+json ({kind}) {where}")

            run()
    total = sum(sent.values())
    print(f"schemathesis: {total} requests over {len(operations)} operations, "
          f"{len(failures)} failures")  # fmt: skip
    assert not failures, "\n\n".join(failures[:20])
    assert total >= 1000, sent
