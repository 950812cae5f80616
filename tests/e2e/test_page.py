"""The judge's page as HTTP (no browser): served, self-contained, cached, out of the schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Service, ServiceConfig


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("page") / "data"
    service = Service.open(ServiceConfig(data_dir=Path(data), origin="page.cunzheng/log"))
    try:
        with TestClient(create_app(service)) as c:
            yield c
    finally:
        service.close()


def test_page_and_its_assets(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    page = r.text
    assert '<html lang="zh-CN">' in page and "存证核验" in page
    assert "page.cunzheng/log" in page  # the log origin, escaped into the footer
    for testid in ("code-input", "file-input", "verify-button", "verdict", "steps"):
        assert f'data-testid="{testid}"' in page
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{12})"', page)
    assert {a for a, _ in assets} == {"/static/app.js", "/static/app.css", "/static/favicon.svg"}
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing from elsewhere
    for path, _ in assets:
        asset = client.get(path)
        assert asset.status_code == 200, path
        text = asset.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, path
        again = client.get(path, headers={"If-None-Match": asset.headers["etag"]})
        assert again.status_code == 304
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_unknown_asset_is_a_problem_and_routes_stay_out_of_the_schema(client: TestClient) -> None:
    r = client.get("/static/../app.py")
    assert r.status_code == 404
    r = client.get("/static/nope.js")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title_zh"]
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)
