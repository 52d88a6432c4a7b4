"""``sirt train``, ``sirt predict`` and ``sirt stats``: one module each, with ``add_parser`` and ``run``.

``add_parser`` needs only argparse; the computation is imported inside ``run`` so that adding these
subcommands to ``sirt`` does not slow down or burden its other subcommands.
"""
