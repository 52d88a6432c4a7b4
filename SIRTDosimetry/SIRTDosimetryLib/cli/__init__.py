"""``sirt dose``, ``sirt dvh``, ``sirt plan``, ``sirt report``, ``sirt export`` and ``sirt register``: one module each, with ``add_parser`` and ``run``.

The ``sirt`` package above calls :func:`register` to add them to the command line.
"""

from __future__ import annotations

from . import dose_command, dvh_command, export_command, plan_command, register_command, report_command

COMMANDS = (dose_command, dvh_command, plan_command, report_command, export_command, register_command)


def register(subparsers) -> None:
    """Add this package's subcommands to ``sirt``'s argparse subparsers."""
    for command in COMMANDS:
        command.add_parser(subparsers)
