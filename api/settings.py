"""Service settings from a TOML file and ``CUNZHENG_*`` environment variables (pydantic-settings).

Environment wins over the file; command-line options (``cunzheng serve --port …``) win over both.
Unsafe values are refused: binding beyond loopback needs ``allow_remote = true`` said explicitly,
because the built-in defaults (a TSA in-process, an admin token file) are for one machine.
"""

from __future__ import annotations

import ipaddress
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .app import Limits
from .service import ServiceConfig

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Everything ``cunzheng serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="CUNZHENG_", extra="forbid")

    data_dir: Path = Field(Path("cunzheng-data"), description="keys, built-in TSA, store")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    allow_remote: bool = Field(False, description="bind to a non-loopback address")
    origin: str = Field("cunzheng.local/log", description="the log's name in its checkpoints")
    public_url: str | None = Field(
        None,
        description="the depository's address as the public knows it (http or https): every "
        "link and QR code in certificates opens the judge's page there, never the request's "
        "Host header; default: http://<host>:<port>/, where it listens",
    )
    store: str | None = Field(None, description="store URL; default: RocksDB in data_dir")
    tsa_urls: list[str] = Field(default_factory=list, description="RFC 3161 TSAs; none: built-in")
    tsa_roots: list[Path] = Field(default_factory=list, description="PEM roots of those TSAs")
    depositor_tsa_roots: list[Path] = Field(
        default_factory=list, description="roots trusted for tokens depositors bring"
    )
    witnesses: list[str] = Field(
        default_factory=list, description="witness vkeys whose cosignatures are accepted"
    )
    max_body_bytes: int = Field(16 << 20, ge=1024, description="largest JSON request body")
    max_batch: int = Field(5000, ge=1, le=100_000, description="deposits in one request")
    max_original_bytes: int = Field(64 << 20, ge=0, description="largest original kept")
    max_verify_upload_bytes: int = Field(1 << 30, ge=0, description="largest file to verify")
    log_format: Literal["text", "json"] = Field("text", description="json: one object a line")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "+" in value:
            raise ValueError("the origin is one word without spaces or '+', e.g. example.cn/log")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = urllib.parse.urlsplit(value)
            url.port  # noqa: B018 - parses the port, ValueError when it is not one
        except ValueError as exc:
            raise ValueError(f"public_url {value!r} is not a URL: {exc}") from exc
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"public_url must be an http(s) URL with a host, got {value!r}")
        if url.query or url.fragment or url.username is not None or url.password is not None:
            raise ValueError(
                "public_url takes no query, fragment or user name, e.g. https://cz.example.cn/"
            )
        return urllib.parse.urlunsplit((url.scheme, url.netloc, url.path.rstrip("/") + "/", "", ""))

    def public_base(self, port: int) -> str:
        """Where certificates' links and QR codes point: ``public_url``, or else the address
        ``cunzheng serve`` listens on (``port``: the one it bound, when ``port`` was 0)."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    @model_validator(mode="after")
    def _safe(self) -> Settings:
        if not self.allow_remote:
            try:
                loopback = ipaddress.ip_address(self.host).is_loopback
            except ValueError:
                loopback = self.host == "localhost"
            if not loopback:
                raise ValueError(
                    f"host {self.host} is not loopback; set allow_remote = true to serve on it"
                )
        if self.tsa_urls and not self.tsa_roots:
            raise ValueError("tsa_urls need tsa_roots: the certificates that sign their tokens")
        return self

    def limits(self) -> Limits:
        return Limits(
            max_body_bytes=self.max_body_bytes,
            max_batch=self.max_batch,
            max_original_bytes=self.max_original_bytes,
            max_verify_upload_bytes=self.max_verify_upload_bytes,
        )

    def service_config(self) -> ServiceConfig:
        return ServiceConfig(
            data_dir=self.data_dir,
            origin=self.origin,
            store_url=self.store,
            tsa_urls=tuple(self.tsa_urls),
            tsa_roots=tuple(self.tsa_roots),
            depositor_tsa_roots=tuple(self.depositor_tsa_roots),
            witnesses=tuple(self.witnesses),
        )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (TOML), then the environment, then ``overrides``."""
    values: dict[str, Any] = {}
    if config_file is not None:
        with open(config_file, "rb") as f:
            values = tomllib.load(f)
    environment = Settings.model_validate({})  # defaults, and what CUNZHENG_* variables set
    from_env = {k: getattr(environment, k) for k in environment.model_fields_set}
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings.model_validate({**values, **from_env, **given})
