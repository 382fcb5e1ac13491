"""Request and response bodies of /api/v1/auth. No response body ever carries a token."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

# Longer than any password the policy accepts (app.auth.passwords), short enough that a huge
# body cannot make one argon2 verification expensive.
MAX_PASSWORD_INPUT = 1024


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The email is looked up in PostgreSQL, whose text cannot hold U+0000: refused up front.
    email: str = Field(min_length=1, max_length=320, pattern=r"^[^\x00]*$")
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    # Needed only when the account belongs to several tenants.
    tenant_id: uuid.UUID | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str


class TenantOut(BaseModel):
    id: uuid.UUID


class SessionOut(BaseModel):
    """Who the session is: the user, the tenant it acts in, and the role held there."""

    user: UserOut
    tenant: TenantOut
    role: str


def session_out(user_id: uuid.UUID, email: str, tenant_id: uuid.UUID, role: str) -> SessionOut:
    return SessionOut(
        user=UserOut(id=user_id, email=email), tenant=TenantOut(id=tenant_id), role=role
    )
