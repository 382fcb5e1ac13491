"""Request and response schemas of the webhook-endpoints API. Secrets appear in one: Created."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints

EndpointUrl = Annotated[HttpUrl, UrlConstraints(max_length=2048)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl = Field(
        description="http(s) URL that receives the POSTed events. Its host must be, or resolve "
        "to, a public address when the endpoint is created (422 naming `url` otherwise); "
        "deliveries check again."
    )


class WebhookEndpointOut(BaseModel):
    """An endpoint as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    created_at: datetime
    disabled_at: datetime | None = Field(description="Set when the receiver answered 410 Gone")


class WebhookEndpointCreated(WebhookEndpointOut):
    """The answer to the create, the only time the secret is shown: store it now."""

    secret: str = Field(description="whsec_<base64>: verify our signatures with it")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]
