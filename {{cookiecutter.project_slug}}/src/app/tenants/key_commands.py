"""The console script's `api-keys create|list|revoke|rotate` commands.

Each prints one JSON line on stdout on success. Every failure and warning is one line on stderr
(`app.commands.exits.say`: a JSON record when logs are JSON). Exit 1: the keys do not allow it
(unknown key or tenant, rotating a revoked key). Exit 2: bad configuration, or a database that is
unreachable or not migrated. Revoke and rotate then announce the change on Redis, so
running API processes drop the key from their caches at once (`app.auth.key_changes`).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.commands.exits import report_config_error, say
from app.settings import ConfigError, Settings, load_settings

EXIT_REFUSED = 1
EXIT_CONFIG = 2
MAX_LIFETIME_DAYS = 3650
MAX_OVERLAP_HOURS = 24 * 30
DEFAULT_OVERLAP_HOURS = 24.0


def _bounded(upper: float, allow_zero: bool) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a number") from None
        if not (0 <= value <= upper) or (value == 0 and not allow_zero):
            lowest = "0" if allow_zero else "more than 0"
            raise argparse.ArgumentTypeError(f"must be from {lowest} to {upper:g}")
        return value

    return parse


def add_api_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `api-keys` and its subcommands on the console script's parser."""
    api_keys = commands.add_parser("api-keys", help="create, list, revoke and rotate API keys")
    api_keys.set_defaults(handler=run_api_key_command)
    actions = api_keys.add_subparsers(dest="key_command", required=True)
    lifetime = _bounded(MAX_LIFETIME_DAYS, allow_zero=False)
    create = actions.add_parser("create", help="issue a key for a tenant; prints it once")
    create.add_argument("--tenant", type=uuid.UUID, required=True, help="the tenant's id")
    create.add_argument("--name", default="unnamed", help="a label shown by `list`")
    create.add_argument("--expires-in", type=lifetime, metavar="DAYS", help="default: never")
    listing = actions.add_parser("list", help="the tenant's keys and their state, no secrets")
    listing.add_argument("--tenant", type=uuid.UUID, required=True, help="the tenant's id")
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id", type=uuid.UUID, help="32 hex digits after `ak_`, or a UUID")
    rotate = actions.add_parser("rotate", help="a new key; the old one expires after an overlap")
    rotate.add_argument("key_id", type=uuid.UUID, help="32 hex digits after `ak_`, or a UUID")
    rotate.add_argument(
        "--overlap-hours",
        type=_bounded(MAX_OVERLAP_HOURS, allow_zero=True),
        default=DEFAULT_OVERLAP_HOURS,
        metavar="H",
        help=f"how long the old key keeps working (default {DEFAULT_OVERLAP_HOURS:g}; 0: now)",
    )
    rotate.add_argument("--expires-in", type=lifetime, metavar="DAYS", help="the new key's")


def run_api_key_command(args: argparse.Namespace) -> int:
    """Run one `api-keys` subcommand; returns the exit status."""
    from app.tenants.key_lifecycle import KeyLifecycleError

    try:
        settings = load_settings()
    except ConfigError as error:
        report_config_error(error)
        return EXIT_CONFIG
    if settings.database_owner_url is None:
        say("DATABASE_OWNER_URL is required")
        return EXIT_CONFIG
    try:
        printed = _COMMANDS[args.key_command](args, settings)
    except KeyLifecycleError as error:
        say(str(error), event="api_key_command_refused")
        return EXIT_REFUSED
    # An unreachable or unmigrated database propagates: app.commands.exits says it in one line.
    sys.stdout.write(json.dumps(printed) + "\n")
    return 0


def _owner(settings: Settings) -> str:
    assert settings.database_owner_url is not None  # noqa: S101 - checked by the caller
    return settings.database_owner_url.get_secret_value()


def _days(value: float | None) -> timedelta | None:
    return timedelta(days=value) if value is not None else None


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _create(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from app.tenants.admin import create_key_now

    key = create_key_now(_owner(settings), args.tenant, args.name, _days(args.expires_in))
    return {
        "key_id": str(key.key_id),
        "tenant_id": str(key.tenant_id),
        "api_key": key.api_key,
        "expires_at": _time(key.expires_at),
    }


def _list(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from app.tenants.admin import list_keys_now

    keys = [
        {
            "key_id": str(key.key_id),
            "name": key.name,
            "status": key.status,
            "created_at": _time(key.created_at),
            "expires_at": _time(key.expires_at),
            "revoked_at": _time(key.revoked_at),
        }
        for key in list_keys_now(_owner(settings), args.tenant)
    ]
    return {"tenant_id": str(args.tenant), "keys": keys}


def _revoke(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from app.tenants.admin import revoke_key_now

    revoke_key_now(_owner(settings), args.key_id)
    return {"revoked": str(args.key_id), "notice_sent": _announce(settings, args.key_id)}


def _rotate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from app.tenants.admin import rotate_key_now

    overlap = timedelta(hours=args.overlap_hours)
    rotation = rotate_key_now(_owner(settings), args.key_id, overlap, _days(args.expires_in))
    new_key = rotation.new_key
    return {
        "key_id": str(new_key.key_id),
        "tenant_id": str(new_key.tenant_id),
        "api_key": new_key.api_key,
        "expires_at": _time(new_key.expires_at),
        "replaced_key_id": str(rotation.replaced_key_id),
        "replaced_key_expires_at": _time(rotation.replaced_key_expires_at),
        "notice_sent": _announce(settings, rotation.replaced_key_id),
    }


def _announce(settings: Settings, key_id: uuid.UUID) -> bool:
    """Tell the running API processes; say on stderr what a missing notice means."""
    from app.auth.key_changes import announce_key_change
    from app.auth.principal import KEY_CACHE_SECONDS

    sent = settings.redis_url is not None and announce_key_change(
        settings.redis_url.get_secret_value(), settings.key_prefix, key_id
    )
    if not sent:
        say(
            "warning: no key-change notice sent (Redis unreachable or REDIS_URL unset); "
            f"running API processes apply the change within {KEY_CACHE_SECONDS:g} s",
            event="key_change_notice_not_sent",
            level="warning",
        )
    return sent


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], dict[str, Any]]] = {
    "create": _create,
    "list": _list,
    "revoke": _revoke,
    "rotate": _rotate,
}
