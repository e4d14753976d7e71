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

from api.errors import XPUShareError

COMPILER = os.environ.get("CC", "gcc")
WARNINGS = ("-Wall", "-Wextra", "-Werror")


class CompileError(XPUShareError):
    """The C compiler failed or is missing; the message holds the command and its output."""


def build_root() -> Path:
    configured = os.environ.get("XPUSHARE_BUILD_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "xpushare" / "cbuild"


def _fingerprint(sources: Sequence[Path], flags: Sequence[str]) -> str:
    """A hash of everything the build reads: sources, the headers beside them and in -I directories,
    files forced in with -include, the flags and the compiler."""
    headers: set[Path] = set()
    for source in sources:
        headers.update(source.parent.glob("*.h"))
    for flag, following in zip(flags, [*flags[1:], ""], strict=True):
        if flag.startswith("-I"):
            headers.update(Path(flag[2:]).glob("*.h"))
        elif flag == "-include":
            headers.add(Path(following))
    digest = hashlib.sha256()
    for path in [*sources, *sorted(headers)]:
        digest.update(path.read_bytes())
    for flag in flags:
        digest.update(flag.encode())
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
