"""The enforcing interposer (a C library loaded with LD_PRELOAD) and the Python view of its ledgers.

The library is compiled by the package's build hook (``setup.py``) into ``shim/_lib``; ``library_path``
is how every Python caller (the plugin writing CDI specs, the ledger binding, tests) finds it.
"""

from __future__ import annotations

import os
from pathlib import Path

LIBRARY_NAME = "libxpushare.so"
HEADER_PATH = Path(__file__).resolve().parent / "include" / "xpushare.h"
LIBRARY_ENV = "XPUSHARE_SHIM_LIBRARY"


def library_path() -> Path:
    """The built shim: ``$XPUSHARE_SHIM_LIBRARY`` when set (a build under test), else the packaged one."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "_lib" / LIBRARY_NAME
