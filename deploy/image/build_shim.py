"""Compile the shim library (``libxpushare.so``) in the image's builder stage.

The compiler command comes from ``shim/buildinfo.py``, the one definition the package build and the
tests use, so the library in the image is built exactly like the one the tests exercise. That file is
loaded by path: the package need not be installed (or importable) when the builder stage runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_buildinfo(repo_root: Path = REPO_ROOT) -> ModuleType:
    path = repo_root / "shim" / "buildinfo.py"
    spec = importlib.util.spec_from_file_location("xpushare_shim_buildinfo", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command(output: Path, compiler: str, repo_root: Path = REPO_ROOT) -> list[str]:
    """The compiler command line that builds the shim into ``output``."""
    buildinfo = load_buildinfo(repo_root)
    result: list[str] = buildinfo.compile_command(compiler, output)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compile the XPUShare shim library")
    parser.add_argument("output", type=Path, help="where to write libxpushare.so")
    parser.add_argument("--cc", default=os.environ.get("CC", "gcc"), help="C compiler (default $CC or gcc)")
    parser.add_argument("--print", dest="dry_run", action="store_true", help="print the command, run nothing")
    args = parser.parse_args(argv)
    cmd = command(args.output, args.cc)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(cmd, check=False)
    if completed.returncode != 0:
        print(f"error: compiling the shim failed (exit {completed.returncode})", file=sys.stderr)
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
