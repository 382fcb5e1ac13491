"""The console script's `create-user EMAIL --tenant ID [--role owner|member]` command.

The password is read from stdin, never from the command line (argv is visible to every user of
the machine in `ps` and lands in shell history): with getpass when stdin is a terminal, else one
line of it. Prints one JSON line: `user_id`, `tenant_id`, `role` and `new_user` (False when the
email already had an account: the membership is added and its password left as it was).

Exit 2 with one line on stderr (`app.commands.exits.say`: JSON when logs are JSON): a weak
password (naming the rule), a malformed email, an unknown tenant, an existing membership, bad
configuration, or a database that is unreachable or not migrated (the last through
`app.commands.exits.run_command`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid

from app.commands.exits import report_config_error, say
from app.settings import ConfigError, load_settings

EXIT_REFUSED = 2


def add_user_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `create-user` on the console script's parser."""
    create = commands.add_parser(
        "create-user", help="add a user (password on stdin) to a tenant; prints its id"
    )
    create.add_argument("email")
    create.add_argument("--tenant", type=uuid.UUID, required=True, help="the tenant's id")
    create.add_argument("--role", choices=["owner", "member"], default="member")
    create.set_defaults(handler=run_create_user)


def read_password() -> str:
    """The password from a terminal prompt (not echoed) or the first line of piped stdin."""
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _refuse(line: str) -> int:
    say(f"create-user: {line}", event="create_user_refused")
    return EXIT_REFUSED


def run_create_user(args: argparse.Namespace) -> int:
    """Validate, hash and store; returns the exit status."""
    from app.auth.passwords import hash_password, password_problem
    from app.tenants.admin import as_owner
    from app.tenants.memberships import MembershipRefusedError, add_membership, email_problem

    try:
        settings = load_settings()
    except ConfigError as error:
        report_config_error(error)
        return EXIT_REFUSED
    if settings.database_owner_url is None:
        return _refuse("DATABASE_OWNER_URL is required")
    email: str = args.email.strip()
    problem = email_problem(email)
    if problem is not None:
        return _refuse(problem)
    password = read_password()
    problem = password_problem(password, email)
    if problem is not None:
        return _refuse(f"password refused: {problem}")
    password_hash = hash_password(password)
    try:
        added = as_owner(
            settings.database_owner_url.get_secret_value(),
            lambda session: add_membership(session, email, password_hash, args.tenant, args.role),
        )
    except MembershipRefusedError as error:
        return _refuse(str(error))
    line = {
        "user_id": str(added.user_id),
        "tenant_id": str(added.tenant_id),
        "role": added.role,
        "new_user": added.new_user,
    }
    sys.stdout.write(json.dumps(line) + "\n")
    return 0
