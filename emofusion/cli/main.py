"""`emofusion` entry point: discovers sub-commands and turns user errors into one clear line."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from emofusion import __version__
from emofusion.cli import commands
from emofusion.errors import EmofusionError
from emofusion.runtime import tune_allocator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emofusion", description="Emotion recognition from speech and its transcript."
    )
    parser.add_argument("--version", action="version", version=f"emofusion {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # so reports can record the exact command that produced them
    tune_allocator()
    try:
        return int(args.func(args) or 0)
    except EmofusionError as exc:
        print(f"emofusion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emofusion {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
