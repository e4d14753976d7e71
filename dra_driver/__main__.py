"""Allows ``python -m dra_driver``, the same entry point as the ``xpushare`` command."""

import sys

from dra_driver.cli import main

sys.exit(main())
