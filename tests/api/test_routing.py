"""Routes served directly, flat and hot first (api.routing), and what the app keeps doing."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from api import problems
from api.app import MAX_VERIFY_BODY, EncodedJSON, create_app
from api.problems import Problem
from api.routing import DirectRoute, adopt, hot_first, is_direct
from api.service import Service


def _route(app: FastAPI, method: str, path: str) -> BaseRoute:
    (route,) = [
        r
        for r in app.router.routes
        if getattr(r, "path", None) == path and method in getattr(r, "methods", ())
    ]
    return route


def test_the_hot_routes_come_first_and_are_served_directly(service: Service) -> None:
    app = create_app(service)
    first = [(sorted(r.methods)[0], r.path) for r in app.router.routes[:3]]  # type: ignore[attr-defined]
    assert first == [("POST", "/v1/verify"), ("POST", "/v1/deposits"), ("GET", "/v1/checkpoint")]
    assert all(is_direct(r) for r in app.router.routes[:3])
    # Parameters and dependencies keep FastAPI's handler: it validates them.
    assert not is_direct(_route(app, "GET", "/v1/deposits/{code}"))
    assert not is_direct(_route(app, "GET", "/metrics"))
    # Flat: no router nested in the app, each route matched once.
    assert all(isinstance(getattr(r, "path", None), str) for r in app.router.routes)


@pytest.mark.parametrize("status", [200, 201, 404])
@pytest.mark.parametrize("body", [b"{}", '{"verdict_zh":"核验通过"}'.encode(), b""])
def test_encoded_json_is_what_starlette_would_send(body: bytes, status: int) -> None:
    ours, theirs = EncodedJSON(body, status), Response(body, status, media_type="application/json")
    assert ours.status_code == theirs.status_code and ours.body == theirs.body
    assert sorted(ours.raw_headers) == sorted(theirs.raw_headers)
    assert ours.background is None and ours.headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", [101, 204, 304])
def test_encoded_json_is_only_for_statuses_with_a_body(status: int) -> None:
    with pytest.raises(ValueError, match="no body"):
        EncodedJSON(b"", status)


def test_direct_routes_are_documented_like_the_others(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/deposits"]["post"]["tags"]) == {"deposits"}
    body = paths["/v1/verify"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"code", "digest"}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"{", ["body"]),  # not JSON
        (b'{"code": 5}', ["body", "code"]),
        (b'{"digest": ["sha256"]}', ["body", "digest"]),
        (b"[]", ["body"]),
    ],
)
def test_a_verify_body_of_the_wrong_shape_is_refused_as_before(
    client: TestClient, body: bytes, loc: list[str]
) -> None:
    r = client.post("/v1/verify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "invalid_request"
    assert problem["details"]["errors"][0]["loc"] == loc


def test_a_verify_body_is_size_limited(client: TestClient) -> None:
    too_big = b'{"code": "' + b"0" * MAX_VERIFY_BODY + b'"}'
    r = client.post("/v1/verify", content=too_big, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (413, "too_large"), r.text


def dependency() -> str:
    return "d"


def _app_with(*routes: tuple[str, str]) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.router.route_class = DirectRoute
    problems.install(app)
    for method, path in routes:

        async def endpoint(request: Request) -> Response:
            return Response(request.url.path.encode())

        app.add_api_route(path, endpoint, methods=[method])
    return app


def test_direct_endpoints_of_the_request_or_of_nothing() -> None:
    app = FastAPI()
    app.router.route_class = DirectRoute
    problems.install(app)

    @app.get("/nothing")
    async def nothing() -> Response:
        return Response(b"n")

    @app.get("/refused")
    async def refused(request: Request) -> Response:
        raise Problem(409, "busy", "not now", "稍后再试")

    @app.get("/depends")
    async def depends(value: Annotated[str, Depends(dependency)]) -> Response:
        return Response(value.encode())

    @app.get("/model")
    async def model() -> dict[str, int]:  # not a Response: FastAPI serialises it
        return {"a": 1}

    paths = ("/nothing", "/refused", "/depends", "/model")
    served = [is_direct(_route(app, "GET", p)) for p in paths]
    assert served == [True, True, False, False]
    with TestClient(app) as c:
        assert c.get("/nothing").content == b"n"
        r = c.get("/refused")  # exceptions still reach the app's handlers
        assert (r.status_code, r.json()["code"]) == (409, "busy")
        assert r.headers["content-type"] == "application/problem+json"
        assert c.get("/depends").content == b"d"
        assert c.get("/model").json() == {"a": 1}
        assert c.post("/nothing").status_code == 405


def test_hot_first_moves_only_what_it_cannot_change() -> None:
    app = _app_with(("GET", "/a"), ("GET", "/items/{id}"), ("POST", "/b"), ("GET", "/items/new"))
    hot_first(app, [("POST", "/b")])
    assert [r.path for r in app.router.routes] == ["/b", "/a", "/items/{id}", "/items/new"]  # type: ignore[attr-defined]
    with TestClient(app) as c:
        assert c.post("/b").content == b"/b"
        assert c.get("/items/new").content == b"/items/new"
    # /items/new is served by /items/{id} today: moving it ahead would change that.
    with pytest.raises(ValueError, match="would be taken"):
        hot_first(app, [("GET", "/items/new")])
    with pytest.raises(ValueError, match="without path parameters"):
        hot_first(app, [("GET", "/items/{id}")])
    with pytest.raises(ValueError, match="without path parameters"):
        hot_first(app, [("DELETE", "/a")])


def test_adopt_takes_only_a_router_with_nothing_to_pass_on() -> None:
    app = _app_with()
    plain = APIRouter(prefix="/v9", route_class=DirectRoute)

    @plain.get("/x")
    async def x() -> Response:
        return Response(b"x")

    adopt(app, plain)
    with TestClient(app) as c:
        assert c.get("/v9/x").content == b"x"
    with pytest.raises(ValueError, match="router-wide"):
        adopt(app, APIRouter(prefix="/v8", tags=["t"]))
