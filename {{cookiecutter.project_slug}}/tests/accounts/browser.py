"""A browser's cookie handling over plain HTTP, for the session tests, and a served app to call.

Every session cookie is `Secure`, and HTTP clients (rightly) never send a Secure cookie over
`http://`; the test service speaks plain HTTP on 127.0.0.1. So `Browser` keeps its own jar: it
stores what `Set-Cookie` says (removing a cookie set with `Max-Age=0`), sends each cookie only
under its `Path`, and keeps every `Set-Cookie` it saw, so tests can check the flags.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2

from app.dev.services import ServiceUrls
from tests.faults.traffic import ServiceRun, running_service

# 32+ random-looking characters per secret (what `auth rotate-keys` prints); test keys only.
OLD_KEY = "k-old:Yq3vN8pL2xR7tW1zK5mB9cF4hJ6dS0aGeUiOoPlMnQ"
NEW_KEY = "k-new:Xw2bT7yH4kL9pQ1mZ6vC3nR8sD5fG0jAeUiOoPlMnQ"


@dataclass(frozen=True)
class SetCookie:
    """One `Set-Cookie` line: name, value and attributes (lower-cased names; flags map to "")."""

    name: str
    value: str
    attributes: dict[str, str]


def parse_set_cookie(line: str) -> SetCookie:
    first, *rest = (part.strip() for part in line.split(";"))
    name, _, value = first.partition("=")
    attributes = {}
    for part in rest:
        key, _, attribute = part.partition("=")
        attributes[key.lower()] = attribute
    return SetCookie(name, value.strip('"'), attributes)


@dataclass
class Browser:
    """Sends `Sec-Fetch-Site: same-origin` like a browser's own front end, and its cookies."""

    base_url: str
    jar: dict[str, SetCookie] = field(default_factory=dict)
    seen: list[SetCookie] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = httpx2.Client(base_url=self.base_url, timeout=15)

    def close(self) -> None:
        self.client.close()

    def cookie(self, name: str) -> str | None:
        stored = self.jar.get(name)
        return stored.value if stored is not None else None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        headers = {"Sec-Fetch-Site": "same-origin", **kwargs.pop("headers", {})}
        sent = [
            f"{name}={cookie.value}"
            for name, cookie in self.jar.items()
            if path.startswith(cookie.attributes.get("path", "/"))
        ]
        if sent and "Cookie" not in headers:
            headers["Cookie"] = "; ".join(sent)
        response = self.client.request(method, path, headers=headers, **kwargs)
        for line in response.headers.get_list("set-cookie"):
            cookie = parse_set_cookie(line)
            self.seen.append(cookie)
            if cookie.attributes.get("max-age") == "0" or not cookie.value:
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie
        return response

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", path, **kwargs)

    def login(
        self, email: str, password: str, tenant_id: uuid.UUID | None = None
    ) -> httpx2.Response:
        body: dict[str, str] = {"email": email, "password": password}
        if tenant_id is not None:
            body["tenant_id"] = str(tenant_id)
        return self.post("/api/v1/auth/login", json=body)


@contextmanager
def session_service(urls: ServiceUrls, keys: str = OLD_KEY, **env: str) -> Iterator[ServiceRun]:
    """`serve` with these signing keys, a Redis namespace of its own, and login limits that the
    many logins of one module from 127.0.0.1 do not reach (tests that want a 429 lower them)."""
    settings = {
        "SESSION_SIGNING_KEYS": keys,
        "REDIS_KEY_PREFIX": f"test-{uuid.uuid4().hex[:12]}:",
        "LOGIN_RATE_LIMIT_PER_IP": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": "1000/minute",
        "REFRESH_REUSE_GRACE_SECONDS": "1",
        **env,
    }
    with running_service(urls, **settings) as run:
        yield run


@contextmanager
def browser(base_url: str) -> Iterator[Browser]:
    opened = Browser(base_url)
    try:
        yield opened
    finally:
        opened.close()
