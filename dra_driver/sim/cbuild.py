"""Compile the simulated devices' C code (fake vendor runtimes, workload programs), once per content hash.

The demo, the tests and the benchmarks all build through ``compile_c``, so builds are cached across runs
(keyed by sources, flags and compiler) and concurrent builders never see a half-written file (the output
is renamed into place). The cache lives in ``$XPUSHARE_BUILD_CACHE``, else ``~/.cache/xpushare/cbuild``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dra_driver.errors import XPUShareError

COMPILER = os.environ.get("CC", "gcc")
WARNINGS = ("-Wall", "-Wextra", "-Werror")


class CompileError(XPUShareError):
    """The C compiler failed or is missing; the message holds the command and its output."""


def build_root() -> Path:
    configured = os.environ.get("XPUSHARE_BUILD_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "xpushare" / "cbuild"


def _fingerprint(sources: Sequence[Path], flags: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    # Headers included with -I are part of the build's input too.
    for flag in flags:
        digest.update(flag.encode())
        if flag.startswith("-I"):
            for header in sorted(Path(flag[2:]).glob("*.h")):
                digest.update(header.read_bytes())
    digest.update(COMPILER.encode())
    return digest.hexdigest()[:16]


def compile_c(
    sources: Sequence[Path | str],
    output_name: str,
    *,
    shared: bool = False,
    flags: Sequence[str] = (),
    libs: Sequence[str] = (),
) -> Path:
    """Build ``sources`` into ``<build cache>/<hash>/<output_name>`` and return its path.

    ``shared`` builds a position-independent shared library (fake vendor runtimes); otherwise an
    executable. ``libs`` are linker arguments placed after the sources (``-ldl``, ``-lpthread``).
    """
    source_paths = [Path(s).resolve() for s in sources]
    all_flags = [*WARNINGS, "-O2", "-g", *flags]
    if shared:
        all_flags += ["-shared", "-fPIC"]
        if output_name.endswith((".so", ".so.1")) or ".so." in output_name:
            all_flags.append(f"-Wl,-soname,{output_name}")
    out_dir = build_root() / _fingerprint(source_paths, all_flags + list(libs))
    target = out_dir / output_name
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        temporary = Path(scratch) / output_name
        command = [COMPILER, *all_flags, "-o", str(temporary), *map(str, source_paths), *libs]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError as err:
            raise CompileError(f"compile {output_name}: C compiler {COMPILER!r} not found") from err
        if result.returncode != 0:
            raise CompileError(f"compile {output_name} failed:\n{' '.join(command)}\n{result.stderr}")
        os.replace(temporary, target)
    return target


def have_compiler() -> bool:
    return shutil.which(COMPILER) is not None
