"""The enforcing interposer (a C library loaded with LD_PRELOAD) and the Python view of its ledgers.

The library is compiled by the package's build hook (``setup.py``) into ``shim/_lib``; ``library_path``
is how every Python caller (the plugin writing CDI specs, the ledger binding, tests) finds it. The
ledger's capacity is read from the public header, so it needs neither cffi nor the compiled library.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

LIBRARY_NAME = "libxpushare.so"
HEADER_PATH = Path(__file__).resolve().parent / "include" / "xpushare.h"
LIBRARY_ENV = "XPUSHARE_SHIM_LIBRARY"


def header_define(name: str, header: Path = HEADER_PATH) -> int:
    """The value of an integer ``#define`` of the public header (``XPUSHARE_MAX_CLAIMS``)."""
    match = re.search(rf"^#define {re.escape(name)}\s+(\d+)\s*$", header.read_text(), re.MULTILINE)
    if match is None:
        raise LookupError(f"{header}: no integer #define {name}")
    return int(match.group(1))


def header_string(name: str, header: Path = HEADER_PATH) -> str:
    """The value of a string ``#define`` of the public header (``XPUSHARE_LIMITS_PATH``)."""
    match = re.search(rf'^#define {re.escape(name)}\s+"([^"\\]*)"\s*$', header.read_text(), re.MULTILINE)
    if match is None:
        raise LookupError(f"{header}: no string #define {name}")
    return match.group(1)


# The most claims one device can hold at once: the entries of its board.
MAX_CLAIMS_PER_DEVICE: Final = header_define("XPUSHARE_MAX_CLAIMS")
# Where the shim reads its limits inside a container: fixed when the library is built (no environment
# variable moves them). Each claim's file is mounted as LIMITS_DIR/<claim-uid>, so a container with
# several claims has them all; LIMITS_PATH is the single file that specs of earlier releases mount.
LIMITS_DIR: Final = header_string("XPUSHARE_LIMITS_DIR")
LIMITS_PATH: Final = header_string("XPUSHARE_LIMITS_PATH")
# A device's directory on the node: its board, and its claims' ledgers in the directory beside it.
BOARD_FILE: Final = header_string("XPUSHARE_BOARD_FILE")
CLAIMS_DIR: Final = header_string("XPUSHARE_CLAIMS_DIR")


def board_path(device_dir: Path) -> Path:
    """The board in a device's directory."""
    return device_dir / BOARD_FILE


def claim_ledger_path(device_dir: Path, key: str) -> Path:
    """Claim ``key``'s ledger in a device's directory (``key`` already checked as a file name)."""
    return device_dir / CLAIMS_DIR / key


def library_path() -> Path:
    """The built shim: ``$XPUSHARE_SHIM_LIBRARY`` when set (a build under test), else the packaged one."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return Path(override)
    return packaged_library_path()


def packaged_library_path() -> Path:
    """The production library ``pip install`` built (it reads only ``LIMITS_PATH``)."""
    return Path(__file__).resolve().parent / "_lib" / LIBRARY_NAME
