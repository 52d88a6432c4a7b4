"""``sirt``: the SlicerSIRT command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import SIRTInputError
from SIRTDosiomicsLib import cli as features_command
from SIRTResponseLib.cli import predict_command, stats_command, train_command

from . import demo_command, dose_command, dvh_command, plan_command

EXIT_BAD_INPUT = 2

SUBCOMMANDS = (
    dose_command, dvh_command, plan_command, features_command, train_command, predict_command, stats_command, demo_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sirt", description="Personalised dosimetry for liver radioembolization (SIRT).")
    parser.add_argument("--version", action="version", version=f"slicer-sirt {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except SIRTInputError as exc:
        print(f"sirt {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
