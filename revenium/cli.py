"""The ``revenium`` command (also ``python -m revenium``).

Stdlib ``argparse`` only, so the command works in a bare install. Exit codes follow the
conventions: 0 success, 1 failure, 2 usage error. A usage error, or a problem the user can fix
(a missing or corrupt ledger or spool, no API key), is one line on stderr, never a traceback.
Each command lives in its own module of :mod:`revenium._cli` and is imported only when run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from revenium._version import __version__

_COMMANDS = {
    "summary": "calls, tokens and estimated cost from the local ledger",
    "doctor": "show the effective configuration and check that it works",
    "spool": "records waiting for delivery: status, replay, quarantine",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (argparse prints the whole usage first), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="revenium", description="Meter every paid AI call, locally or to Revenium."
    )
    parser.add_argument("--version", action="version", version=f"revenium {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="meter real OpenAI and Anthropic SDK calls against a local stand-in, print them",
    )
    demo.add_argument(
        "--live", action="store_true", help="call the real APIs (OPENAI_API_KEY, ANTHROPIC_API_KEY)"
    )
    demo.add_argument("--ledger", type=Path, help="the ledger file (default: a temporary one)")
    for name, summary in _COMMANDS.items():
        module = importlib.import_module(f"revenium._cli.{name}")
        module.configure_parser(commands.add_parser(name, help=summary, description=summary))
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from revenium import demo  # noqa: PLC0415 - each command loads what it needs

        return demo.run(sys.stdout, live=args.live, ledger=args.ledger)
    module = importlib.import_module(f"revenium._cli.{args.command}")
    code: int = module.run(args, sys.stdout)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from revenium._cli.common import CliError  # noqa: PLC0415

    args = _parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()
    except CliError as exc:
        print(f"revenium {args.command}: {exc.message}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # `revenium summary | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return code
