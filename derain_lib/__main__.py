"""``python -m derain_lib ARGS``: the ``derain`` console command."""

import sys

from .entry import main

sys.exit(main())
