"""A real server on loopback and Debian's Chromium, driven by Playwright (research §7).

The browser is found at ``$CUNZHENG_CHROMIUM``, else ``chromium`` on PATH, else
``/usr/bin/chromium``. A missing browser (or Playwright) fails these tests with the command to run:
they are never skipped, so CI cannot pass without them. ``./run-tests`` installs Chromium and a
CJK font on Debian when they are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.service import Service, ServiceConfig
from ledger.entry import Deposit
from tests.api.conftest import wait_stamped
from tests.cases.samples import pdf_bytes
from tools.client import build_statement, generate_key, load_private_key, sign_statement

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
INSTALL_HINT = (
    "run ./run-tests (it installs them), or as root: "
    "apt-get update && apt-get install -y --no-install-recommends chromium fonts-wqy-microhei"
)


def chromium_path() -> str:
    path = os.environ.get("CUNZHENG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(f"the browser tests need Chromium, and {path} is not there: {INSTALL_HINT}")
    return path


minimal_pdf = pdf_bytes
"""A small, valid one-page PDF showing the text given (ASCII)."""


@dataclass
class LiveServer:
    """The depository behind a real uvicorn on 127.0.0.1, with one lender and a judge."""

    url: str
    service: Service
    files: Path
    depositor_token: str
    judge_token: str
    lender_id: str
    signing_key: Any
    key_id: str

    def deposit(
        self,
        name: str,
        data: bytes,
        *,
        kind: str = "loan_contract",
        digest_alg: str = "sha256",
        **meta: str,
    ) -> tuple[Path, str]:
        """Write ``data`` to ``name``, deposit it through the HTTP API; (path, code)."""
        path = self.files / name
        path.write_bytes(data)
        statement, full_meta, salt = build_statement(
            path,
            depositor=self.lender_id,
            kind=kind,
            meta={"file_name": name, **meta},
            digest_alg=digest_alg,
        )
        sig = sign_statement(statement, self.signing_key, key_id=self.key_id)
        body = Deposit.create(statement, sig, meta=full_meta, salt=salt).to_object()
        r = httpx.post(
            f"{self.url}/v1/deposits",
            json=body,
            headers={"Authorization": f"Bearer {self.depositor_token}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        wait_stamped(self.service)
        return path, str(r.json()["receipts"][0]["code"])

    def file(self, name: str, data: bytes) -> Path:
        """A file that is not deposited."""
        path = self.files / name
        path.write_bytes(data)
        return path


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("e2e")
    service = Service.open(ServiceConfig(data_dir=base / "data", origin="e2e.cunzheng/log"))
    service.stamper.interval = service.stamper.min_interval = 0.05
    service.start()
    service.registry.register("lender-1", "某某消费金融有限公司")
    private, public = generate_key("ed25519")
    service.registry.add_key("lender-1", public, key_id="k1", not_before=0)
    depositor_token = service.api_keys.issue("depositor", depositor="lender-1", label="lender")
    judge_token = service.api_keys.issue("judge", label="张法官 (e2e)")

    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in 15 s"
        time.sleep(0.02)
    files = base / "files"
    files.mkdir()
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{port}",
            service=service,
            files=files,
            depositor_token=depositor_token,
            judge_token=judge_token,
            lender_id="lender-1",
            signing_key=load_private_key(private),
            key_id="k1",
        )
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this
    # thread while it is open, which would break every later test that calls asyncio.run.
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.fail("the browser tests need Playwright: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1100, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    pg = context.new_page()
    # Script errors and CSP violations fail the test; HTTP 404s the page expects do not.
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    try:
        yield pg
    finally:
        context.close()
    assert not problems, problems


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
