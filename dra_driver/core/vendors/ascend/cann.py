"""The installed CANN toolkit's version: the runtime version that the Ascend backend publishes.

Claims select on it (``runtimeVersion``) to find nodes whose toolkit their workload was built for. The
install info patterns are a parameter (option ``cann_info``) so tests point them at temporary files.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_CANN_INFO = (
    "/usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info",
    "/usr/local/Ascend/ascend-toolkit/latest/version.cfg",
)


def cann_version(patterns: str | tuple[str, ...] = DEFAULT_CANN_INFO) -> str:
    """The CANN toolkit version from its install info file (``version=8.0.RC2``), "" when not found."""
    for pattern in (patterns,) if isinstance(patterns, str) else patterns:
        for candidate in sorted(glob.glob(pattern)):
            version = _read_version(Path(candidate))
            if version:
                return version
    return ""


def _read_version(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as err:
        log.debug("cannot read CANN info", extra={"path": str(path), "error": str(err)})
        return ""
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip().lower() in {"version", "runtime_running_version"} and value.strip():
            return value.strip().strip('"').strip("[]").split(":")[0]
    return ""
