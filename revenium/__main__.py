"""``python -m revenium``: the same command line as ``revenium``."""

import sys

from revenium.cli import main

sys.exit(main())
