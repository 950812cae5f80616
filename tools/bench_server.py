"""The server ``cunzheng bench http`` loads: the real app over a :class:`~api.service.Service`,
plus one trivial endpoint, served by uvicorn (uvloop + httptools, one worker) on loopback.

Run as ``python -m tools.bench_server --data-dir DIR [--port 0]``. It binds the socket first,
prints ``listening on http://HOST:PORT`` on standard output once it is bound (connections wait in
the backlog until uvicorn accepts them), serves until SIGTERM or SIGINT, then closes the service.

``GET /bench/trivial`` returns :data:`TRIVIAL_BODY`, pre-encoded, as the app's hot routes answer
(:class:`api.app.EncodedJSON`): the same server stack doing no work, the reference the app's
endpoints are compared with. It is the app's first route, served like its request-only routes
(:class:`api.routing.DirectRoute`). It exists only in this process; the product's
:func:`api.app.create_app` has no such route.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response

from api.app import EncodedJSON, create_app
from api.operations import tune_gc
from api.routing import is_direct
from api.service import Service, ServiceConfig

__all__ = ["ORIGIN", "TRIVIAL_BODY", "TRIVIAL_PATH", "bench_app", "main"]

ORIGIN = "bench.cunzheng/log"
"""The log origin of the benchmark's service."""
TRIVIAL_PATH = "/bench/trivial"
TRIVIAL_BODY = b'{"status":"ok","service":"cunzheng","bench":"trivial","note":"pre-encoded"}'
"""A small JSON object, encoded once."""


def bench_app(service: Service) -> FastAPI:
    """:func:`api.app.create_app` over ``service``, with ``GET /bench/trivial`` added."""
    app = create_app(service)

    async def trivial() -> Response:
        return EncodedJSON(TRIVIAL_BODY)  # the app's own cheapest response

    app.add_api_route(TRIVIAL_PATH, trivial, methods=["GET"], include_in_schema=False)
    # The reference costs what the stack costs at the least: routed first, before the app's
    # own hot routes (as the last route, it was matched after all 40 and cost 2.5 times as
    # much, which made every ratio to it look better than it was).
    routes = app.router.routes
    routes.insert(0, routes.pop())
    if not is_direct(routes[0]):
        raise RuntimeError("the trivial route must be served as the app's request-only ones")
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_server", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    service = Service.open(ServiceConfig(data_dir=args.data_dir, origin=ORIGIN))
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(2048)
        host = f"[{args.host}]" if ":" in args.host else args.host
        service.start()
        print(f"listening on http://{host}:{sock.getsockname()[1]}", flush=True)
        config = uvicorn.Config(
            bench_app(service),
            loop="uvloop",
            http="httptools",
            workers=1,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        tune_gc()  # as `cunzheng serve` does
        server.run(sockets=[sock])
    finally:
        service.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
