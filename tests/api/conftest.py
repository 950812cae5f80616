"""A running service on a temporary data directory, with one registered lender."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Service, ServiceConfig
from ledger.entry import Deposit
from tools.client import SigningKey, build_statement, generate_key, load_private_key, sign_statement


@dataclass
class Lender:
    id: str
    key: SigningKey
    key_id: str

    def deposit(self, path: Path, *, kind: str = "loan_contract", **meta: str) -> Deposit:
        statement, full_meta, salt = build_statement(
            path, depositor=self.id, kind=kind, meta={"file_name": path.name, **meta}
        )
        sig = sign_statement(statement, self.key, key_id=self.key_id)
        return Deposit.create(statement, sig, meta=full_meta, salt=salt)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service.open(ServiceConfig(data_dir=tmp_path / "data", origin="test.cunzheng/log"))
    svc.stamper.interval = svc.stamper.min_interval = 0.05
    svc.start()
    yield svc
    svc.close()


@pytest.fixture
def lender(service: Service) -> Lender:
    service.registry.register("lender-1", "某某消费金融有限公司")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k1", not_before=0)
    return Lender("lender-1", load_private_key(private), "k1")


def wait_stamped(service: Service, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while service.stamper.lag().entries_waiting:
        assert time.monotonic() < deadline, "the stamper did not catch up"
        time.sleep(0.02)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    """The app over ``service``, in process."""
    with TestClient(create_app(service)) as c:
        yield c
