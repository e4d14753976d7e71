"""How the shim library is compiled: one definition for the packaging build hook and for tests.

Kept free of imports from the package (setup.py loads this file by path before the package exists).
"""

from __future__ import annotations

from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent
SOURCE_DIR = SHIM_DIR / "src"
INCLUDE_DIR = SHIM_DIR / "include"
VERSION_SCRIPT = SOURCE_DIR / "xpushare.map"
LIBRARY_NAME = "libxpushare.so"

CFLAGS = (
    "-std=gnu11",
    "-O2",
    "-g",
    "-fPIC",
    "-fvisibility=hidden",
    "-pthread",
    "-Wall",
    "-Wextra",
    "-Werror",
    # Binds glibc symbols to their oldest versions so the library loads in images with glibc >= 2.17.
    "-include",
    str(SOURCE_DIR / "glibc_compat.h"),
)

# Test and simulation builds only: XPUSHARE_LIMITS_FILE then names the limits file, so tests and the local
# simulation can run processes on the host against limits files of their own. The packaged library (the
# one containers get) is built without it and reads only the fixed XPUSHARE_LIMITS_PATH of xpushare.h.
TEST_HOOKS_FLAG = "-DXPUSHARE_TEST_HOOKS"


def sources() -> list[Path]:
    return sorted(SOURCE_DIR.glob("*.c"))


def link_flags() -> list[str]:
    return ["-shared", f"-Wl,--version-script={VERSION_SCRIPT}", f"-Wl,-soname,{LIBRARY_NAME}", "-Wl,-z,now"]


def cflags(*, test_hooks: bool = False) -> list[str]:
    """The compiler flags; ``test_hooks`` for a test or simulation build (never a packaged one)."""
    return [*CFLAGS, TEST_HOOKS_FLAG] if test_hooks else list(CFLAGS)


def compile_command(compiler: str, output: Path, *, test_hooks: bool = False) -> list[str]:
    """The full compiler command line that builds the library into ``output`` (``pip install``'s build
    without ``test_hooks``)."""
    return [
        compiler,
        *cflags(test_hooks=test_hooks),
        f"-I{INCLUDE_DIR}",
        *link_flags(),
        "-o",
        str(output),
        *map(str, sources()),
        "-ldl",
    ]
