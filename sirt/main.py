"""``sirt``: the SlicerSIRT command line. Each package registers its own subcommands."""

from __future__ import annotations

import argparse
import sys

import yaml

from SIRTDosimetryLib import cli as dosimetry_cli
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosiomicsLib import cli as dosiomics_cli
from SIRTResponseLib import cli as response_cli

from . import __version__, demo, run

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report an interrupted command

# Registration order is the order of ``sirt --help``: the patient chain, then the chains above it.
REGISTRARS = (dosimetry_cli.register, dosiomics_cli.register, response_cli.register, run.register, demo.register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sirt", description="Personalised dosimetry for liver radioembolization (SIRT).")
    parser.add_argument("--version", action="version", version=f"slicer-sirt {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
    return parser


def one_line(exc: BaseException) -> str:
    """The message of an input or environment failure as one line (YAML and OS errors span several)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        text = f"a YAML file cannot be used{where}: {problem} (syntax error, or a tag such as !!python/object, which is never run)"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Bad input (``SIRTInputError``), files that cannot be read or written
    (``OSError``) and malformed YAML end in one line on stderr and exit code 2; Ctrl-C ends with exit
    code 130 after the commands' own clean-up (staging folders are removed as the interruption
    unwinds). Anything else is a bug and keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (SIRTInputError, OSError, yaml.YAMLError) as exc:
        print(f"sirt {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"sirt {args.command}: interrupted; the unfinished outputs of this run were removed", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
