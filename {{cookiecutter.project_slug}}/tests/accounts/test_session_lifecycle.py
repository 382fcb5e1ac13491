"""SEC-JWT and SEC-TENANT over real HTTP: logout, logout-all and a password change end sessions;
a removed member loses access; a session reads only its own tenant's notes (checked with raw SQL
as the runtime role too); a cross-origin write with the session cookie is refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.accounts.browser import Browser, browser, session_service
from tests.accounts.conftest import PASSWORD, Member
from tests.faults.traffic import ServiceRun

AUTH = "/api/v1/auth"
NOTES = "/api/v1/notes"


@pytest.fixture(scope="module")
def service(service_urls: ServiceUrls) -> Iterator[ServiceRun]:
    with session_service(service_urls) as run:
        yield run


@pytest.fixture
def member(new_tenant: Callable[[], NewTenant], add_member: Callable[..., Member]) -> Member:
    return add_member(new_tenant().tenant_id)


@pytest.fixture
def sign_in(service: ServiceRun) -> Iterator[Callable[[Member], Browser]]:
    opened: list[Browser] = []

    def open_session(who: Member) -> Browser:
        visitor = Browser(service.base_url)
        opened.append(visitor)
        assert visitor.login(who.email, PASSWORD).status_code == 200
        return visitor

    yield open_session
    for visitor in opened:
        visitor.close()


def _alive(visitor: Browser) -> tuple[int, int]:
    """(GET session with the access cookie, POST refresh with the refresh cookie) statuses."""
    return visitor.get(f"{AUTH}/session").status_code, visitor.post(f"{AUTH}/refresh").status_code


def _create_note(visitor: Browser, title: str, **headers: str) -> int:
    response = visitor.post(
        NOTES,
        json={"title": title, "body": "written through a session"},
        headers={"Idempotency-Key": f'"{uuid.uuid4()}"', **headers},
    )
    return response.status_code


def test_logout_ends_this_session_only_and_clears_the_cookies(
    sign_in: Callable[[Member], Browser], member: Member
) -> None:
    laptop, phone = sign_in(member), sign_in(member)
    kept_access = laptop.cookie("__Host-access")
    response = laptop.post(f"{AUTH}/logout")
    assert response.status_code == 204
    cleared = {c.name for c in laptop.seen if c.attributes.get("max-age") == "0"}
    assert cleared == {"__Host-access", "__Secure-refresh"}
    # The access token kept by someone who copied it stops working at once, not at its expiry.
    copied = laptop.get(f"{AUTH}/session", headers={"Cookie": f"__Host-access={kept_access}"})
    assert copied.status_code == 401
    assert _alive(phone) == (200, 200)


def test_logout_all_ends_every_session_of_the_user(
    sign_in: Callable[[Member], Browser], member: Member
) -> None:
    laptop, phone = sign_in(member), sign_in(member)
    assert laptop.post(f"{AUTH}/logout-all").status_code == 204
    assert _alive(phone) == (401, 401)
    assert laptop.get(f"{AUTH}/session").status_code == 401


def test_a_password_change_ends_every_session(
    sign_in: Callable[[Member], Browser], member: Member, service: ServiceRun
) -> None:
    laptop, phone = sign_in(member), sign_in(member)
    new_password = "quartz meadow violin harbour"
    wrong = laptop.post(
        f"{AUTH}/password",
        json={"current_password": "not it at all, sorry", "new_password": new_password},
    )
    assert wrong.status_code == 403
    changed = laptop.post(
        f"{AUTH}/password", json={"current_password": PASSWORD, "new_password": new_password}
    )
    assert changed.status_code == 204
    assert _alive(phone) == (401, 401)
    assert _alive(laptop) == (401, 401)
    with browser(service.base_url) as visitor:
        assert visitor.login(member.email, PASSWORD).status_code == 401
        assert visitor.login(member.email, new_password).status_code == 200


async def _as_owner_remove(urls: ServiceUrls, who: Member) -> None:
    engine = create_async_engine(urls.owner_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(who.tenant_id)}
            )
            await conn.execute(
                text("DELETE FROM memberships WHERE user_id = :u AND tenant_id = :t"),
                {"u": who.user_id, "t": who.tenant_id},
            )
    finally:
        await engine.dispose()


def test_a_removed_member_loses_access_at_the_next_request(
    sign_in: Callable[[Member], Browser], member: Member, service_urls: ServiceUrls
) -> None:
    visitor = sign_in(member)
    assert visitor.get(NOTES).status_code == 200
    asyncio.run(_as_owner_remove(service_urls, member))
    assert visitor.get(NOTES).status_code == 401
    assert _alive(visitor) == (401, 401)


async def _runtime_sees(urls: ServiceUrls, tenant_id: uuid.UUID, note_id: str) -> int:
    engine = create_async_engine(urls.runtime_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
            query = text("SELECT count(*) FROM notes WHERE id = :id")
            return int((await conn.execute(query, {"id": note_id})).scalar_one())
    finally:
        await engine.dispose()


def test_a_session_reads_only_its_own_tenants_notes(
    sign_in: Callable[[Member], Browser],
    new_tenant: Callable[[], NewTenant],
    add_member: Callable[..., Member],
    service_urls: ServiceUrls,
) -> None:
    alice = add_member(new_tenant().tenant_id)
    bob = add_member(new_tenant().tenant_id)
    alices, bobs = sign_in(alice), sign_in(bob)
    created = bobs.post(
        NOTES,
        json={"title": "bob's", "body": "private"},
        headers={"Idempotency-Key": f'"{uuid.uuid4()}"'},
    )
    assert created.status_code == 201, created.text
    note_id = created.json()["id"]
    assert bobs.get(f"{NOTES}/{note_id}").status_code == 200
    assert alices.get(f"{NOTES}/{note_id}").status_code == 404
    assert note_id not in alices.get(NOTES).text
    assert asyncio.run(_runtime_sees(service_urls, alice.tenant_id, note_id)) == 0
    assert asyncio.run(_runtime_sees(service_urls, bob.tenant_id, note_id)) == 1


def test_a_cross_origin_write_with_the_session_cookie_is_refused_and_writes_nothing(
    sign_in: Callable[[Member], Browser], member: Member
) -> None:
    visitor = sign_in(member)
    before = len(visitor.get(NOTES).json()["items"])
    refused = _create_note(visitor, "forged", Origin="https://evil.example")
    assert refused == 403
    foreign = {"Origin": "https://evil.example"}
    assert visitor.post(f"{AUTH}/logout-all", headers=foreign).status_code == 403
    assert len(visitor.get(NOTES).json()["items"]) == before
    assert _create_note(visitor, "mine") == 201
