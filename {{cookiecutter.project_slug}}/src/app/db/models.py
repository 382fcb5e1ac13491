"""Every feature's tables, imported so that `metadata` (for Alembic) is complete.

Add your feature's models module here when you add a table.
"""

from __future__ import annotations

from app.auth import session_models
from app.db.base import Base
from app.idempotency import models as idempotency_models
from app.notes import models as notes_models
from app.tenants import models as tenants_models
from app.tenants import user_models
from app.uploads import models as uploads_models
from app.webhooks import models as webhooks_models
from app.worker import models as worker_models

metadata = Base.metadata
__all__ = [
    "idempotency_models",
    "metadata",
    "notes_models",
    "session_models",
    "tenants_models",
    "uploads_models",
    "user_models",
    "webhooks_models",
    "worker_models",
]
