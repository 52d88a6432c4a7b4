"""``sirt``: the SlicerSIRT command line. Each package registers its own subcommands."""

from __future__ import annotations

import argparse
import sys

from SIRTDosimetryLib import cli as dosimetry_cli
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosiomicsLib import cli as dosiomics_cli
from SIRTResponseLib import cli as response_cli

from . import __version__, demo, run

EXIT_BAD_INPUT = 2

# Registration order is the order of ``sirt --help``: the patient chain, then the chains above it.
REGISTRARS = (dosimetry_cli.register, dosiomics_cli.register, response_cli.register, run.register, demo.register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sirt", description="Personalised dosimetry for liver radioembolization (SIRT).")
    parser.add_argument("--version", action="version", version=f"slicer-sirt {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
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
