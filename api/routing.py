"""How requests reach their endpoints: directly, where FastAPI has nothing to add.

FastAPI 0.16x spends, on every request, about as much again as a trivial endpoint costs in all:
its request handler solves the endpoint's dependencies, extracts the endpoint's context for error
messages and opens two exit stacks, and an included router is matched route by route twice (once
to find it, once inside it). Measured in-process over ASGI with the app's middleware: a trivial
endpoint took 145 µs as the last route of the app, 57 µs as the first.

So here:

- :class:`DirectRoute` serves an endpoint that takes only the :class:`~starlette.requests.Request`
  (or nothing) and returns a :class:`~starlette.responses.Response` as Starlette does — one call —
  while FastAPI still documents it (path, tags, status, summary) in the OpenAPI schema. An endpoint
  with parameters, dependencies or a body model keeps FastAPI's handler.
- :func:`adopt` puts a router's routes in the app's own list, flat, instead of nesting it.
- :func:`hot_first` moves the routes most requests go to to the front of that list: a router
  tries its routes in order, about 2 µs each.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, request_response

__all__ = ["DirectRoute", "adopt", "hot_first", "is_direct"]


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    try:
        returns = inspect.signature(endpoint, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return False
    return inspect.isclass(returns) and issubclass(returns, Response)


def _takes_only_request(route: APIRoute) -> bool:
    """Whether FastAPI would pass ``route``'s endpoint nothing but the request."""
    d = route.dependant
    return not (
        d.path_params or d.query_params or d.header_params or d.cookie_params or d.body_params
        or d.dependencies or d.websocket_param_name or d.http_connection_param_name
        or d.response_param_name or d.background_tasks_param_name
        or d.security_scopes_param_name
    )  # fmt: skip


def _ignoring_request(endpoint: Callable[[], Awaitable[Response]]) -> Callable[..., Any]:
    """``endpoint``, of no arguments, as a function of the request."""

    async def call(_request: Request) -> Response:
        return await endpoint()

    return call


class DirectRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` served by Starlette's ``request_response`` when its
    endpoint is a coroutine function of the request alone (or of nothing) annotated to return a
    ``Response``; any other endpoint is served by FastAPI's handler as usual.

    What a direct endpoint gives up is what it does not use: dependency solving, body and
    parameter validation, ``response_model`` serialisation, background tasks and dependencies
    with ``yield``. Exceptions still go to the app's handlers (problem+json)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.direct = (
            inspect.iscoroutinefunction(endpoint)
            and _takes_only_request(self)
            and _returns_response(endpoint)
            and kwargs.get("max_body_size") is None
        )
        if self.direct:
            with_request = self.dependant.request_param_name is not None
            self.app = request_response(endpoint if with_request else _ignoring_request(endpoint))


def is_direct(route: BaseRoute) -> bool:
    """Whether ``route`` is served without FastAPI's per-request handler."""
    return isinstance(route, DirectRoute) and route.direct


def adopt(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes (paths already carrying its prefix) to ``app``'s own list, flat:
    matched once, not once to find the router and again inside it. Only for a router with no
    settings of its own to pass on (dependencies, tags, responses, callbacks)."""
    if router.dependencies or router.tags or router.responses or router.callbacks:
        raise ValueError("adopt() is for routers without router-wide settings: include it")
    app.router.routes.extend(router.routes)


def hot_first(app: FastAPI, hot: Sequence[tuple[str, str]]) -> None:
    """Move the routes of ``hot`` — (method, path) pairs of paths without parameters, in that
    order — to the front of ``app``'s routes; the others keep their order behind them. Refused
    if a route moved ahead of would also have matched that path: the move changes how soon each
    request finds its route, never which route it finds."""
    routes = app.router.routes
    rank = {pair: n for n, pair in enumerate(hot)}
    last = len(hot)

    def place(route: BaseRoute) -> int:
        methods: set[str] = getattr(route, "methods", None) or set()
        path: str = getattr(route, "path", "")
        return min((rank.get((m, path), last) for m in methods), default=last)

    for method, path in hot:
        found = [n for n, r in enumerate(routes) if place(r) == rank[(method, path)]]
        if not found or "{" in path:
            raise ValueError(f"{method} {path}: not a route of the app without path parameters")
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        for before in routes[: found[0]]:
            if place(before) == last and before.matches(scope)[0] != Match.NONE:
                raise ValueError(f"{method} {path} would be taken from {before!r}")
    routes.sort(key=place)
