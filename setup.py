"""Build hook: compile the shim (a plain C shared library, no Python API) into the ``shim`` package.

``pip install .`` and ``pip install -e .`` both run ``build_ext``; the library is declared as an extension
so setuptools places it in the wheel (or, for editable installs, next to the sources) and tags the wheel
for the platform it was built on. The compiler command comes from ``shim/buildinfo.py``, which tests use
too, so there is one definition of the flags.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

from setuptools import Extension, setup  # type: ignore[import-untyped]
from setuptools.command.build_ext import build_ext  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_xpushare_buildinfo", ROOT / "shim" / "buildinfo.py")
assert _spec is not None
assert _spec.loader is not None
buildinfo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(buildinfo)

LIBRARY_MODULE = "shim._lib.libxpushare"


class BuildShim(build_ext):  # type: ignore[misc]
    """Compile the shim with the project's own command instead of setuptools' Python-extension rules."""

    def get_ext_filename(self, fullname: str) -> str:
        # distutils asks with the last name component only (get_ext_fullpath), setuptools with the full one.
        if fullname == LIBRARY_MODULE:
            return os.path.join(*fullname.split(".")[:-1], buildinfo.LIBRARY_NAME)
        if fullname == LIBRARY_MODULE.rsplit(".", 1)[-1]:
            return str(buildinfo.LIBRARY_NAME)
        return str(super().get_ext_filename(fullname))

    def copy_extensions_to_source(self) -> None:
        # Editable installs copy the library next to the sources; shim/_lib holds only build output and
        # is not in version control, so create it first.
        (ROOT / "shim" / "_lib").mkdir(exist_ok=True)
        super().copy_extensions_to_source()

    def build_extension(self, ext: Extension) -> None:
        if ext.name != LIBRARY_MODULE:
            super().build_extension(ext)
            return
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        compiler = os.environ.get("CC", "gcc")
        command = buildinfo.compile_command(compiler, target)
        print("xpushare: building", target, flush=True)
        subprocess.run(command, check=True)


setup(
    ext_modules=[Extension(LIBRARY_MODULE, sources=[str(p.relative_to(ROOT)) for p in buildinfo.sources()])],
    cmdclass={"build_ext": BuildShim},
)
