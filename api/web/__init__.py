"""The judge's page (一键调证): served at ``/``, with its own static files; no external CDN.

Everything the page needs (HTML, script, style, icon) is read from this package once, when the
router is made, and served from memory: the page works on a court network with no internet. The
script talks only to the public API (``/v1/deposits/{code}``, ``/v1/verify``, ``/v1/verify/file``)
and, with a judge's API key, to ``/bundle`` and ``/retrieve``. Files are hashed in the browser
(Web Crypto) whenever it can: the evidence then never leaves the court's machine.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..problems import problem_response
from ..routing import DirectRoute
from ..service import Service

__all__ = ["web_router"]

_HERE = Path(__file__).parent
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Same-origin only: no inline script, no third-party anything. blob: is for downloads.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _load_assets() -> dict[str, _Asset]:
    assets = {}
    for path in sorted((_HERE / "static").iterdir()):
        media_type = _MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = _Asset(body, media_type, etag)
    return assets


def web_router(service: Service) -> APIRouter:
    """``/`` (the page, ``?code=CZ-…`` prefills and looks up) and ``/static/{name}``."""
    router = APIRouter(route_class=DirectRoute)
    assets = _load_assets()
    version = hashlib.sha256(b"".join(a.etag.encode() for a in assets.values())).hexdigest()[:12]
    page = (
        (_HERE / "templates" / "index.html")
        .read_text(encoding="utf-8")
        .replace("__ASSET_VERSION__", version)
        .replace("__LOG_ORIGIN__", html.escape(service.config.origin))
    )

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        asset = assets.get(name)
        if asset is None:
            return problem_response(404, "not_found", f"no static file {name!r}", "未找到")
        # The page asks for ?v=<hash of all assets>, so a long cache is safe; ETag for the rest.
        headers = {
            "ETag": asset.etag,
            "Cache-Control": "public, max-age=86400",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return router
