"""SIGKILL a real ``cunzheng serve`` while lenders deposit; nothing acknowledged is ever lost.

tests/ledger/test_crash.py kills a bare sequencer process; this harness kills the whole service
(HTTP, admission, sequencer, stamper) at random moments, with several lenders depositing at once,
restarts it on the same data, and after every restart checks that each acknowledged deposit is
in the log at the index its receipt named, with the leaf its receipt named. Deposits in flight
when the process died are sent again: each comes back either as a duplicate of what landed or
as a new entry, never twice. At the end every acknowledged deposit must verify offline
(VERIFIED, trusting only the log key and the TSA root) and ``cunzheng audit`` must be clean.

Size: ``CUNZHENG_CRASH_CYCLES`` kill/restart cycles (3 by default, as CI runs it; set 100 or
more for the full run), ``CUNZHENG_CRASH_SEED`` to replay a run (the seed is printed), and
``CUNZHENG_CRASH_CLIENTS`` concurrent lenders (4 by default)::

    CUNZHENG_CRASH_CYCLES=100 .venv/bin/python -m pytest tests/reliability/test_crash.py -s
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ledger.merkle import leaf_hash
from tests.reliability.conftest import (
    Lender,
    Server,
    audit_store,
    register_lender,
    verify_offline,
    wait_stamped,
)
from verifier.bundle import Bundle


@dataclass(frozen=True)
class Ack:
    index: int
    leaf_hash: bytes


class Depositors:
    """Lender threads that deposit small batches until the server goes away."""

    def __init__(self, server: Server, lender: Lender, clients: int, rng: random.Random) -> None:
        self.server = server
        self.lender = lender
        self.clients = clients
        self.seeds = [rng.getrandbits(64) for _ in range(clients)]
        self.lock = threading.Lock()
        self.acked: dict[str, Ack] = {}
        self.new_acks: list[str] = []
        self.in_flight: list[list[dict[str, Any]]] = []
        self.counter = 0
        self.errors: list[str] = []

    def next_evidence(self) -> bytes:
        with self.lock:
            self.counter += 1
            return b"%%PDF crash evidence %d %d" % (self.counter, os.getpid())

    def record(self, receipts: list[dict[str, Any]], *, resend_from: int | None = None) -> None:
        with self.lock:
            for r in receipts:
                ack = Ack(r["index"], base64.b64decode(r["leaf_hash"]))
                if resend_from is not None:
                    # A resent deposit landed before the crash (duplicate, old index) or now.
                    assert r["duplicate"] == (ack.index < resend_from), (r, resend_from)
                known = self.acked.get(r["code"])
                assert known is None or known == ack, f"{r['code']} moved: {known} → {ack}"
                if known is None:
                    self.acked[r["code"]] = ack
                    self.new_acks.append(r["code"])

    def run(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._loop, args=(random.Random(seed), stop), daemon=True)
            for seed in self.seeds
        ]
        for t in threads:
            t.start()
        return threads

    def _loop(self, rng: random.Random, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as http:
            while not stop.is_set():
                batch = [
                    self.lender.deposit(self.next_evidence()).to_object()
                    for _ in range(rng.randint(1, 8))
                ]
                try:
                    r = http.post(
                        "/v1/deposits", json={"deposits": batch}, headers=self.lender.headers
                    )
                except httpx.TransportError:
                    with self.lock:
                        self.in_flight.append(batch)  # unknown: maybe landed, maybe not
                    return
                if r.status_code != 201:
                    with self.lock:
                        self.errors.append(f"{r.status_code} {r.text[:300]}")
                    return
                self.record(r.json()["receipts"])


def check_present(server: Server, lender: Lender, acked: dict[str, Ack], codes: list[str]) -> None:
    """Each code's bundle holds the leaf its receipt named, at the index it named."""
    with server.client() as http:
        size = int(http.get("/v1/checkpoint").text.split("\n")[1])
        for code in codes:
            ack = acked[code]
            assert ack.index < size, f"{code} acknowledged at {ack.index}, tree is {size}"
            r = http.get(f"/v1/deposits/{code}/bundle", headers=lender.headers)
            assert r.status_code == 200, f"{code}: {r.status_code} {r.text}"
            bundle = Bundle.from_object(json.loads(r.content))
            assert bundle.index == ack.index
            assert leaf_hash(bundle.leaf) == ack.leaf_hash


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_deposit(server: Server) -> None:
    cycles = int(os.environ.get("CUNZHENG_CRASH_CYCLES", "3"))
    clients = int(os.environ.get("CUNZHENG_CRASH_CLIENTS", "4"))
    seed = int(os.environ.get("CUNZHENG_CRASH_SEED", str(random.randrange(1 << 32))))
    print(f"crash harness: {cycles} cycles, {clients} clients, CUNZHENG_CRASH_SEED={seed}")
    rng = random.Random(seed)
    server.start()
    lender = register_lender(server)
    depositors = Depositors(server, lender, clients, rng)
    resent = 0
    started = time.monotonic()
    for _cycle in range(cycles):
        stop = threading.Event()
        acked_before = len(depositors.acked)
        threads = depositors.run(stop)
        # Kill at a random moment once deposits flow (some cycles right after the first ack).
        deadline = time.monotonic() + 30
        while len(depositors.acked) == acked_before and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(depositors.acked) > acked_before, f"no deposit acknowledged: {server.log()}"
        time.sleep(rng.uniform(0.0, 0.6))
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not depositors.errors, depositors.errors

        server.start()
        with server.client() as http:
            try:
                restart_size = int(http.get("/v1/checkpoint").text.split("\n")[1])
            except httpx.TransportError as exc:
                log = server.log()[-5000:]
                raise AssertionError(f"restart {server.starts}: {exc!r}\n{log}") from exc
            for batch in depositors.in_flight:  # the lender retries what got no answer
                r = http.post("/v1/deposits", json={"deposits": batch}, headers=lender.headers)
                assert r.status_code == 201, r.text
                depositors.record(r.json()["receipts"], resend_from=restart_size)
                resent += len(batch)
        depositors.in_flight.clear()
        check_present(server, lender, depositors.acked, depositors.new_acks)
        depositors.new_acks.clear()

    acked = depositors.acked
    indexes = sorted(a.index for a in acked.values())
    assert len(set(indexes)) == len(indexes), "two acknowledged deposits share an index"
    with server.client() as http:
        wait_stamped(http, seconds=120)
        for code in acked:
            r = http.get(f"/v1/deposits/{code}/bundle", headers=lender.headers)
            report = verify_offline(server, r.content)
            assert report.verdict == "VERIFIED", (code, report.to_object())
    elapsed = time.monotonic() - started
    print(
        f"crash harness: {cycles} SIGKILLs, {len(acked)} acknowledged deposits "
        f"({resent} resent after a kill), all present and VERIFIED; {elapsed:.1f} s"
    )
    over_http = audit_store(server, via_server=True)  # what any outsider can check
    assert over_http.returncode == 0, over_http.stdout + over_http.stderr
    server.stop()
    done = audit_store(server)  # the store itself: the RocksDB directory or the database
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["entries"] >= len(acked)
