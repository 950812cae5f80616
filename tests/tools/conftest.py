"""The running-service fixtures of tests/api, and that service on a real uvicorn, for the
command-line tests that need a server."""

import threading
from collections.abc import Iterator

import pytest
import uvicorn

from api.app import create_app
from api.service import Service
from tests.api.conftest import lender, service  # noqa: F401 - pytest fixtures


@pytest.fixture
def server_url(service: Service) -> Iterator[str]:  # noqa: F811
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()
