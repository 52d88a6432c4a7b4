"""``python -m sirt``: the same as the ``sirt`` command."""

import sys

from .main import main

sys.exit(main())
