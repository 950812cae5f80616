"""``cunzheng bench load``: many lenders and judges at once against a running server.

Each of ``clients`` concurrent clients loops for ``seconds``: with probability ``verify_share``
it verifies a deposit made earlier in the run (code + digest, expecting VERIFIED), otherwise it
deposits one freshly signed statement (expecting 201). Any other answer, or a transport error,
is an error. Latencies are reported per kind, with p50, p95 and p99.

The run registers its own depositor through the admin API, so it needs the admin token; it
leaves those deposits in the log (they are real entries: run it against a test instance).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.entry import Deposit, Digest, Statement, meta_commitment

from .client import SigningKey, generate_key, load_private_key, sign_statement

__all__ = ["LoadConfig", "LoadResult", "evidence_deposit", "run_load"]


@dataclass(frozen=True, slots=True)
class LoadConfig:
    clients: int = 64
    seconds: float = 60.0
    verify_share: float = 0.5
    timeout: float = 30.0


@dataclass
class LoadResult:
    config: LoadConfig
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"deposit": [], "verify": []})
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @staticmethod
    def _quantile(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def to_object(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clients": self.config.clients,
            "seconds": round(self.elapsed, 2),
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
        }
        every = [x for v in self.latencies.values() for x in v]
        for kind, values in {**self.latencies, "all": every}.items():
            out[kind] = {
                "requests": len(values),
                "per_second": round(len(values) / self.elapsed, 1) if self.elapsed else 0.0,
                "p50_ms": round(self._quantile(values, 0.50) * 1000, 2),
                "p95_ms": round(self._quantile(values, 0.95) * 1000, 2),
                "p99_ms": round(self._quantile(values, 0.99) * 1000, 2),
                "max_ms": round(max(values, default=0.0) * 1000, 2),
            }
        return out


async def _register(http: httpx.AsyncClient, admin_token: str) -> tuple[str, Any, str]:
    admin = {"Authorization": f"Bearer {admin_token}"}
    depositor = f"load-{secrets.token_hex(4)}"
    private, public = generate_key("ed25519")
    steps = [
        ("/v1/admin/depositors", {"id": depositor, "display_name": "load test"}),
        (f"/v1/admin/depositors/{depositor}/keys",
         {"public_key": public.decode(), "key_id": "k1", "not_before": 0}),
        ("/v1/admin/api-keys", {"role": "depositor", "depositor": depositor, "label": "load"}),
    ]  # fmt: skip
    r = None
    for path, body in steps:
        r = await http.post(path, json=body, headers=admin)
        if r.status_code != 201:
            raise RuntimeError(f"setting up the load depositor: {path}: {r.status_code} {r.text}")
    assert r is not None
    return depositor, load_private_key(private), r.json()["token"]


def evidence_deposit(
    depositor: str,
    key: SigningKey,
    key_id: str,
    evidence: bytes,
    *,
    file_name: str = "load.pdf",
    contract_no: str = "LOAD",
) -> Deposit:
    """A signed loan-contract deposit of ``evidence`` (distinct bytes give distinct digests),
    its private meta under a fresh salt."""
    salt = secrets.token_bytes(32)
    meta = {"file_name": file_name, "contract_no": contract_no}
    statement = Statement.build(
        depositor=depositor,
        kind="loan_contract",
        digest=Digest("sha256", hashlib.sha256(evidence).digest()),
        size=len(evidence),
        media_type="application/pdf",
        captured_at="2026-11-24T08:00:00Z",
        meta_commitment=meta_commitment(salt, meta),
    )
    sig = sign_statement(statement, key, key_id=key_id)
    return Deposit.create(statement, sig, meta=meta, salt=salt)


async def run_load(url: str, admin_token: str, config: LoadConfig) -> LoadResult:
    """Run the mixed load against ``url``; see the module docstring."""
    if config.clients < 1 or config.seconds <= 0 or not 0 <= config.verify_share <= 1:
        raise ValueError("clients ≥ 1, seconds > 0 and 0 ≤ verify_share ≤ 1")
    result = LoadResult(config)
    limits = httpx.Limits(max_connections=config.clients, max_keepalive_connections=config.clients)
    async with httpx.AsyncClient(base_url=url, timeout=config.timeout, limits=limits) as http:
        depositor, key, token = await _register(http, admin_token)
        headers = {"Authorization": f"Bearer {token}"}
        deposited: list[tuple[str, str]] = []  # (code, digest)
        started = time.perf_counter()
        deadline = started + config.seconds

        async def client(n: int) -> None:
            rng = random.Random(n)  # noqa: S311 - picks a mix, not a secret
            while time.perf_counter() < deadline:
                verify = bool(deposited) and rng.random() < config.verify_share
                t0 = time.perf_counter()
                try:
                    if verify:
                        code, digest = rng.choice(deposited)
                        r = await http.post("/v1/verify", json={"code": code, "digest": digest})
                        ok = r.status_code == 200 and r.json().get("verdict") == "VERIFIED"
                    else:
                        evidence = os.urandom(24)
                        body = evidence_deposit(depositor, key, "k1", evidence).to_object()
                        r = await http.post("/v1/deposits", json=body, headers=headers)
                        ok = r.status_code == 201
                        if ok:
                            digest = "sha256:" + hashlib.sha256(evidence).hexdigest()
                            deposited.append((r.json()["receipts"][0]["code"], digest))
                except httpx.HTTPError as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                kind = "verify" if verify else "deposit"
                if ok:
                    result.latencies[kind].append(time.perf_counter() - t0)
                else:
                    result.errors.append(f"{kind}: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(client(n) for n in range(config.clients)))
        result.elapsed = time.perf_counter() - started
    return result
