"""`dev`'s first minutes: a demo tenant and API key, and the three next steps (development only).

Once the server answers, `dev` checks the key kept in `.devservices/demo.json` the way the API
does (`verify_api_key`) and creates a tenant named "demo" only when there is no working key, so
restarts reuse the same key. The key is printed on the console for the developer to paste, never
written to a log.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.commands.exits import announce, output_format, say

DEMO_FILE = "demo.json"
DEMO_TENANT = "demo"
_WAIT_FOR_SERVER_S = 60.0
_VERIFY = text("SELECT tenant_id FROM verify_api_key(:key_id, :secret_hash)")
_NOTE_BODY = '{"title": "Hello", "body": "My first note"}'


def _stored_key(root: Path) -> str | None:
    try:
        key = json.loads((root / DEMO_FILE).read_text()).get("api_key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def _store_key(root: Path, tenant_id: str, api_key: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    draft = root / f"{DEMO_FILE}.tmp"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as sink:
        json.dump({"tenant_id": tenant_id, "api_key": api_key}, sink)
    draft.replace(root / DEMO_FILE)


def key_works(owner_url: str, api_key: str) -> bool:
    """Whether `api_key` is a live key of some tenant (the check the API makes on each call)."""
    from app.auth.api_keys import parse_key
    from app.tenants.admin import as_owner

    parsed = parse_key(api_key)
    if parsed is None:
        return False
    key_id, secret_hash = parsed

    async def lookup(session: AsyncSession) -> bool:
        found = await session.execute(_VERIFY, {"key_id": key_id, "secret_hash": secret_hash})
        return found.first() is not None

    return as_owner(owner_url, lookup)


def demo_key(root: Path, owner_url: str) -> str:
    """The working demo key: the stored one, else a new "demo" tenant's first key."""
    stored = _stored_key(root)
    if stored is not None and key_works(owner_url, stored):
        return stored
    from app.tenants.admin import create_tenant_now

    created = create_tenant_now(owner_url, DEMO_TENANT)
    _store_key(root, str(created.tenant_id), created.api_key)
    return created.api_key


def next_steps(base_url: str, api_key: str) -> str:
    """What a newcomer does next, with a key that works: docs, a first note, logs and metrics."""
    return "\n".join(
        (
            "",
            "Ready. Demo tenant's API key (kept in .devservices/demo.json): " + api_key,
            f"  1. Open {base_url}/docs, press Authorize and paste the key; try GET /api/v1/notes.",
            "  2. Create a note (run it twice: the same Idempotency-Key replays the first answer):",
            f"     curl -i -X POST {base_url}/api/v1/notes \\",
            f"       -H 'Authorization: Bearer {api_key}' -H 'Idempotency-Key: demo-note-1' \\",
            f"       -H 'Content-Type: application/json' -d '{_NOTE_BODY}'",
            "  3. Logs: this console, one line per request (LOG_FORMAT=json for JSON lines);"
            f" metrics: {base_url}/metrics; liveness and readiness: {base_url}/health/ready",
            "Stop with Ctrl-C.",
            "",
        )
    )


def _wait_for_port(host: str, port: int) -> bool:
    deadline = time.monotonic() + _WAIT_FOR_SERVER_S
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def welcome_when_ready(root: Path, owner_url: str, host: str, port: int) -> None:
    """In the background: once the server listens, print the next steps with a demo key."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (compared, not bound)
    base_url = f"http://{shown}:{port}"

    def welcome() -> None:
        if not _wait_for_port(shown, port):
            return
        try:
            api_key = demo_key(root, owner_url)
        except Exception as error:  # noqa: BLE001 - the server runs on; the demo is a convenience
            say(f"no demo key: {type(error).__name__}: `create-tenant demo` makes one")
            return
        if output_format() == "json":  # a key is a secret: never inside a log record
            announce(f"ready on {base_url}; demo key in {root / DEMO_FILE}", "dev_ready")
        else:
            sys.stdout.write(next_steps(base_url, api_key) + "\n")
            sys.stdout.flush()

    threading.Thread(target=welcome, name="dev-welcome", daemon=True).start()
