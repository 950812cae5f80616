"""Service settings: where certificates' links and QR codes point (``public_url``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.settings import Settings, load_settings


def test_public_url_defaults_to_where_serve_listens() -> None:
    assert Settings().public_base(8000) == "http://127.0.0.1:8000/"
    assert Settings(port=0).public_base(41234) == "http://127.0.0.1:41234/"
    assert Settings(host="::1").public_base(8000) == "http://[::1]:8000/"


def test_public_url_from_toml_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cunzheng.toml"
    config.write_text('public_url = "https://cz.example.cn/depository"\n')
    assert load_settings(config).public_base(8000) == "https://cz.example.cn/depository/"
    monkeypatch.setenv("CUNZHENG_PUBLIC_URL", "https://court.example.cn")
    assert load_settings().public_base(8000) == "https://court.example.cn/"
    assert load_settings(config).public_base(8000) == "https://court.example.cn/"  # env wins
    assert load_settings(config, public_url="https://cli.example.cn").public_base(8000) == (
        "https://cli.example.cn/"
    )  # and a command-line option over both


@pytest.mark.parametrize(
    "url",
    ["cz.example.cn", "ftp://cz.example.cn/", "https://", "https://cz.example.cn/?x=1",
     "https://cz.example.cn/#top", "https://user@cz.example.cn/", "https://cz.example.cn:port/",
     "javascript:alert(1)"],
)  # fmt: skip
def test_public_url_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=url)
