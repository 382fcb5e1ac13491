"""`ALLOWED_ORIGINS`: the browser origins, besides the service's own, that may send
cookie-authenticated unsafe requests (docs/security.md, "CSRF")."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from app.config.base import SettingsBase, is_production
from app.config.checks import split_list

DEFAULT_PORTS = {"http": 80, "https": 443}
ORIGIN_SHAPE = (
    "scheme://host[:port] with scheme http or https and no path, like https://app.example.com"
)


def url_origin(url: str) -> str | None:
    """The origin of an absolute http(s) URL, serialized as a browser sends it in `Origin`
    (RFC 6454 section 6.1: lower-case scheme and host, no default port), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unparseable authority or a port out of range
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origin(value: str) -> str | None:
    """`value` serialized as an origin, or None when it is not one: a URL with a path, a query
    or a fragment (even an empty one) is not an origin."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.path or parts.query or parts.fragment or value.endswith(("?", "#")):
        return None
    return url_origin(value)


class CsrfSettings(SettingsBase):
    """`ALLOWED_ORIGINS`, comma-separated; the service's own origin needs no entry."""

    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return split_list(value)

    @field_validator("allowed_origins", mode="after")
    @classmethod
    def _check_origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # Messages name the entry by position: like every setting, never echo a value.
        origins: list[str] = []
        for position, entry in enumerate(value, start=1):
            origin = parse_origin(entry)
            if origin is None:
                raise ValueError(f"entry {position} is not an origin: use {ORIGIN_SHAPE}")
            # A page served over plain HTTP can be rewritten by anyone on its network, who then
            # acts with the reader's session: production allows none, localhost included.
            if is_production(info) and origin.startswith("http://"):
                raise ValueError(f"entry {position} is an http:// origin; production needs https")
            origins.append(origin)
        return origins
