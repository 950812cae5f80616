"""``cunzheng tsa serve``: RFC 3161 over HTTP (RFC 3161 §3.4) around :mod:`ledger.authority`.

``POST`` any path with ``Content-Type: application/timestamp-query`` and a DER ``TimeStampReq``
(at most 64 KiB) → ``200 application/timestamp-reply`` with a DER ``TimeStampResp`` (granted, or a
rejection with its PKIFailureInfo). ``GET /`` says what this is; ``GET /root.pem`` and
``GET /tsa.pem`` give the certificates a verifier needs. Serial numbers persist in ``serial``
beside the credentials (:class:`~ledger.authority.FileSerials`).
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization

from ledger.authority import TimeStampAuthority, TsaCredentials, open_authority

__all__ = ["MAX_REQUEST_BYTES", "TsaServer", "open_authority"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: TsaServer
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        pem = serialization.Encoding.PEM
        if self.path == "/root.pem":
            self._send(
                200, "application/x-pem-file", self.server.credentials.root.public_bytes(pem)
            )
        elif self.path == "/tsa.pem":
            body = self.server.credentials.certificate.public_bytes(pem)
            self._send(200, "application/x-pem-file", body)
        elif self.path == "/":
            subject = self.server.credentials.certificate.subject.rfc4514_string()
            text = (
                f"cunzheng RFC 3161 time-stamping authority ({subject}).\n"
                "POST application/timestamp-query here; trust /root.pem to verify.\n"
            )
            self._send(200, "text/plain; charset=utf-8", text.encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_POST(self) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/timestamp-query":
            self._send(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "text/plain; charset=utf-8",
                b"send Content-Type: application/timestamp-query\n",
            )
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(HTTPStatus.LENGTH_REQUIRED, "text/plain; charset=utf-8", b"length?\n")
            return
        if not 0 < length <= MAX_REQUEST_BYTES:
            self.close_connection = True
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "text/plain; charset=utf-8",
                f"a time-stamp request has 1 to {MAX_REQUEST_BYTES} bytes\n".encode(),
            )
            return
        request = self.rfile.read(length)
        try:
            reply = self.server.authority.respond(request)
        except Exception:
            log.exception("the TSA failed to answer")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"TSA failure\n")
            return
        self._send(200, "application/timestamp-reply", reply)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


class TsaServer(ThreadingHTTPServer):
    """A threaded HTTP server for one TSA. ``url`` is where it listens."""

    daemon_threads = True

    def __init__(
        self,
        authority: TimeStampAuthority,
        credentials: TsaCredentials,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.authority = authority
        self.credentials = credentials
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> TsaServer:
        """Serve in a background thread (for tests and the embedded default)."""
        self._thread = threading.Thread(target=self.serve_forever, name="cunzheng-tsa", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()
