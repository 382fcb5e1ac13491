"""`auth rotate-keys` and `auth retire-key KID`: the session signing-key rotation, step by step.

Neither touches a database or a running process: each reads the current `SESSION_SIGNING_KEYS`
from the environment and prints one JSON line on stdout with the value to set next; a refusal is
one line on stderr (`app.commands.exits.say`: JSON when logs are JSON) and exit 2. The runbook
(docs/authentication.md, "Rotating the signing keys"):

1. `auth rotate-keys` prints a new `KID:SECRET` entry and the new value: the new key first (it
   signs), the current keys after it (they still verify). Set it in the secret store; deploy.
2. After ACCESS_TOKEN_MINUTES (every token the old key signed has expired), `auth retire-key
   OLD_KID` prints the value without the old key. Set it; deploy. A token naming a retired key
   is refused with 401, like an unknown one.

The development key is dropped by a rotation: production refuses it anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from app.auth.signing_keys import (
    DEV_SESSION_SIGNING_KEYS,
    DEV_SIGNING_KID,
    new_signing_entry,
    parse_signing_keys,
    rotated_value,
)
from app.commands.exits import say

EXIT_REFUSED = 2
VARIABLE = "SESSION_SIGNING_KEYS"


def add_auth_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `auth rotate-keys` and `auth retire-key KID` on the console script's parser."""
    auth = commands.add_parser("auth", help="browser-session signing keys")
    auth_commands = auth.add_subparsers(dest="auth_command", required=True)
    rotate = auth_commands.add_parser("rotate-keys", help="print a new signing key, first")
    rotate.set_defaults(handler=_rotate_keys)
    retire = auth_commands.add_parser("retire-key", help="print the keys without KID")
    retire.add_argument("kid")
    retire.set_defaults(handler=_retire_key)


def _current_entries() -> list[str] | None:
    """The configured entries (without the development key), or None after printing why."""
    raw = os.environ.get(VARIABLE, DEV_SESSION_SIGNING_KEYS)
    try:
        keys = parse_signing_keys(raw)
    except ValueError as error:
        _refuse(f"{VARIABLE}: {error}")
        return None
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    kids = list(keys.secrets_by_kid)
    return [entry for entry, kid in zip(entries, kids, strict=True) if kid != DEV_SIGNING_KID]


def _refuse(line: str) -> int:
    say(line, event="signing_key_change_refused")
    return EXIT_REFUSED


def _say(printed: dict[str, str]) -> int:
    sys.stdout.write(json.dumps(printed) + "\n")
    return 0


def _rotate_keys(_: argparse.Namespace) -> int:
    current = _current_entries()
    if current is None:
        return EXIT_REFUSED
    entry = new_signing_entry()
    kid = entry.partition(":")[0]
    value = rotated_value(",".join(current), entry)
    return _say({"kid": kid, "entry": entry, VARIABLE: value})


def _retire_key(args: argparse.Namespace) -> int:
    current = _current_entries()
    if current is None:
        return EXIT_REFUSED
    kept = [entry for entry in current if entry.partition(":")[0] != args.kid]
    if len(kept) == len(current):
        return _refuse(f"{VARIABLE} holds no key {args.kid!r}")
    if not kept:
        return _refuse(f"{args.kid!r} is the only key: rotate first (`auth rotate-keys`)")
    if current[0].partition(":")[0] == args.kid:
        return _refuse(f"{args.kid!r} signs new tokens: rotate first, then retire it")
    return _say({"retired": args.kid, VARIABLE: ",".join(kept)})
