"""The ``revenium`` command (also ``python -m revenium``).

Stdlib ``argparse`` only, so the command works in a bare install. Exit codes follow the
conventions: 0 success, 1 failure, 2 usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from revenium._version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from revenium import demo  # noqa: PLC0415 - each command loads what it needs

        return demo.run(sys.stdout, live=args.live, ledger=args.ledger)
    return 2  # pragma: no cover - argparse rejects unknown commands first
