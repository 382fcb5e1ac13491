"""The `CurrentPrincipal` dependency: who is calling, and for which tenant.

Machine clients send `Authorization: Bearer <api key>`. The key is checked through the
`authenticate_api_key` database function, the only way the runtime role can touch the key table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.api_keys import parse_key
from app.db.session import DatabaseDep
from app.errors import UnauthorizedError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `subject` identifies it within the tenant (here: the key id)."""

    tenant_id: uuid.UUID
    subject: str
    kind: str = "api_key"


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthorizedError("Send an API key as `Authorization: Bearer <key>`.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("The Authorization header must use the Bearer scheme.")
    return token.strip()


async def authenticate(request: Request, database: DatabaseDep) -> Principal:
    """Resolve the bearer API key to its tenant, or answer 401."""
    parsed = parse_key(_bearer_token(request))
    if parsed is None:
        raise UnauthorizedError("The API key is malformed.")
    key_id, secret_hash = parsed

    async def lookup(session: AsyncSession) -> uuid.UUID | None:
        tenant: uuid.UUID | None = await session.scalar(
            text("SELECT authenticate_api_key(:key_id, :secret_hash)"),
            {"key_id": key_id, "secret_hash": secret_hash},
        )
        return tenant

    tenant_id = await database.run(lookup, tenant_id=None)
    if tenant_id is None:
        raise UnauthorizedError("The API key is unknown or revoked.")
    principal = Principal(tenant_id=tenant_id, subject=str(key_id))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
