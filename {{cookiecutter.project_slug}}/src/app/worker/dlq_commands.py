"""The console script's `dlq list|replay|purge|drill` commands (app.worker.operations works).

`list` prints one line per dead letter (`--json`: one JSON object per line); the others print one
JSON line. Exit 1: no dead letter with that id. Exit 2: bad configuration.
"""

from __future__ import annotations

import argparse
import json

from app.commands.exits import report_config_error, say
from app.settings import ConfigError, load_settings

EXIT_NOT_FOUND = 1
EXIT_CONFIG = 2


def _dlq(args: argparse.Namespace) -> int:
    from app.worker import operations

    try:
        settings = load_settings()
    except ConfigError as error:
        report_config_error(error)
        return EXIT_CONFIG
    if args.dlq_command == "list":
        for line in operations.dlq_list(settings, args.json):
            print(line)
    elif args.dlq_command == "replay":
        task_id = operations.dlq_replay(settings, args.id)
        if task_id is None:
            say(f"no dead letter with id {args.id}")
            return EXIT_NOT_FOUND
        print(json.dumps({"replayed": args.id, "task_id": task_id}))
    elif args.dlq_command == "purge":
        print(json.dumps({"purged": operations.dlq_purge(settings)}))
    else:
        print(json.dumps({"drill_task_id": operations.dlq_drill(settings)}))
    return 0


def add_dlq_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `dlq` and its subcommands on the console script's parser."""
    dlq = commands.add_parser("dlq", help="inspect and replay dead-lettered tasks")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_commands.add_parser("list", help="list dead letters, newest first")
    dlq_list.add_argument("--json", action="store_true", help="one JSON object per line")
    dlq_commands.add_parser("replay", help="re-enqueue one dead letter").add_argument("id")
    dlq_commands.add_parser("purge", help="delete all dead letters")
    dlq_commands.add_parser("drill", help="enqueue a task that always fails")
    dlq.set_defaults(handler=_dlq)
