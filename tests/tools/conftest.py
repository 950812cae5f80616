"""The running-service fixtures of tests/api, for the command-line tests that need a server."""

from tests.api.conftest import lender, service  # noqa: F401 - pytest fixtures
