"""``sirt train``, ``sirt predict`` and ``sirt stats``: one module each, with ``add_parser`` and ``run``.

``add_parser`` needs only argparse; the computation is imported inside ``run`` so that adding these
subcommands to ``sirt`` does not slow down or burden its other subcommands. The ``sirt`` package
above calls :func:`register`.
"""

from __future__ import annotations

from . import predict_command, stats_command, train_command

COMMANDS = (train_command, predict_command, stats_command)


def register(subparsers) -> None:
    """Add this package's subcommands to ``sirt``'s argparse subparsers."""
    for command in COMMANDS:
        command.add_parser(subparsers)
