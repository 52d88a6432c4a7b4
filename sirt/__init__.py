"""``sirt``: the SlicerSIRT command line, above the three computation packages.

Each package registers its own subcommands (``register(subparsers)`` in its ``cli`` module):

- ``SIRTDosimetryLib.cli``: ``sirt dose``, ``sirt dvh``, ``sirt plan``
- ``SIRTDosiomicsLib.cli``: ``sirt features``
- ``SIRTResponseLib.cli``: ``sirt train``, ``sirt predict``, ``sirt stats``

Commands that chain the three packages (``sirt demo``) live here. Nothing in the three packages
imports this one.
"""

from SIRTDosimetryLib import __version__

__all__ = ["__version__"]
