"""Three ``cunzheng serve`` processes on one PostgreSQL database: deposits through all of them at
once, the sequencer SIGKILLed midway; afterwards every acknowledged deposit is in the log exactly
once, its bundle verifies offline, and the audit of the whole database is clean."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from ledger.cluster import sequencer_node
from ledger.merkle import leaf_hash
from tests.reliability.conftest import ROOT, Lender, Server, register_lender, verify_offline
from verifier.bundle import Bundle

pytestmark = pytest.mark.slow

WORKERS = 6
PER_WORKER = 20


@dataclass(frozen=True)
class Ack:
    code: str
    index: int
    leaf_hash: bytes


def leader_of(url: str, nodes: list[Server]) -> Server | None:
    with psycopg.connect(url, autocommit=True) as conn:
        name = sequencer_node(conn)
    if name is None:
        return None
    pid = int(name.rsplit(":", 1)[1])
    return next((n for n in nodes if n.proc is not None and n.proc.pid == pid), None)


def wait_leader(url: str, nodes: list[Server], seconds: float) -> Server:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leader = leader_of(url, nodes)
        if leader is not None:
            return leader
        time.sleep(0.05)
    raise AssertionError(f"no node became the sequencer within {seconds} s")


def deposit_until_acknowledged(
    lender: Lender, body: dict[str, object], nodes: list[Server], start: int
) -> tuple[Ack, int]:
    """POST one deposit, moving to the next node on any failure, until a receipt comes back.
    Returns the receipt and how many attempts failed."""
    failures = 0
    deadline = time.monotonic() + 90
    i = start
    while time.monotonic() < deadline:
        node = nodes[i % len(nodes)]
        i += 1
        try:
            with httpx.Client(base_url=node.url, timeout=40) as http:
                r = http.post("/v1/deposits", json=body, headers=lender.headers)
        except httpx.HTTPError:
            failures += 1
            continue
        if r.status_code == 201:
            (receipt,) = r.json()["receipts"]
            return Ack(
                receipt["code"], receipt["index"], base64.b64decode(receipt["leaf_hash"])
            ), failures
        assert r.status_code in (502, 503, 500), r.text  # never a 4xx for a valid deposit
        failures += 1
        time.sleep(0.1)
    raise AssertionError("a deposit was never acknowledged")


def test_three_nodes_survive_the_sequencer_being_killed(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    nodes = [Server(data, pg_url, log_dir=tmp_path / f"node{i}") for i in range(3)]
    for n in nodes:
        assert n.log_dir is not None
        n.log_dir.mkdir()
        n.__post_init__()
    try:
        nodes[0].start()  # the first start makes the keys and TSA every node then shares
        wait_leader(pg_url, nodes, 15)
        for n in nodes[1:]:
            n.start()
        lender = register_lender(nodes[0])
        bodies = [
            [lender.deposit(f"cluster evidence {w}-{i}".encode()).to_object()
             for i in range(PER_WORKER)]
            for w in range(WORKERS)
        ]  # fmt: skip
        acks: list[Ack] = []
        failed_attempts = [0]
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work(w: int) -> None:
            try:
                for i, body in enumerate(bodies[w]):
                    ack, failures = deposit_until_acknowledged(lender, body, nodes, w + i)
                    with lock:
                        acks.append(ack)
                        failed_attempts[0] += failures
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
        for t in threads:
            t.start()
        total = WORKERS * PER_WORKER
        while len(acks) < total // 3 and not errors:
            time.sleep(0.01)
        victim = leader_of(pg_url, nodes)
        assert victim is not None
        victim.kill()  # SIGKILL, midway through the deposits
        killed_at = time.monotonic()
        survivors = [n for n in nodes if n is not victim]
        successor = wait_leader(pg_url, survivors, 10)
        failover = time.monotonic() - killed_at
        for t in threads:
            t.join()
        assert errors == []
        print(f"fail-over {failover:.2f} s; {failed_attempts[0]} attempts retried on another node")
        assert failover < 5, f"fail-over took {failover:.1f} s"
        assert successor is not victim

        # Every acknowledged deposit, once each, at the index its receipt named.
        assert len(acks) == total
        assert sorted(a.index for a in acks) == list(range(total)), "lost or doubled entries"
        with successor.client() as http:
            assert http.get("/v1/checkpoint").text.split("\n")[1] == str(total)
            deadline = time.monotonic() + 30
            while http.get("/healthz").json()["entries_waiting_for_time_stamp"]:
                assert time.monotonic() < deadline, "time-stamping did not catch up"
                time.sleep(0.1)
        for i, ack in enumerate(acks):
            node = survivors[i % 2]
            with node.client() as http:
                r = http.get(f"/v1/deposits/{ack.code}/bundle", headers=lender.headers)
            assert r.status_code == 200, r.text
            bundle = Bundle.from_object(json.loads(r.content))
            assert bundle.index == ack.index and leaf_hash(bundle.leaf) == ack.leaf_hash
            if i % 10 == 0:  # the offline verifier on a sample (each takes a TSA chain check)
                report = verify_offline(successor, r.content)
                assert report.verdict == "VERIFIED", report

        # The whole database, audited from the store.
        audit = subprocess.run(
            [sys.executable, "-m", "tools.cli", "audit", "--store", pg_url,
             "--log-key", successor.log_verifier().vkey,
             "--tsa-root", str(successor.tsa_root_path()), "--json"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr
        report = json.loads(audit.stdout)
        assert report["clean"] and report["entries"] == total
    finally:
        for n in nodes:
            n.kill()
