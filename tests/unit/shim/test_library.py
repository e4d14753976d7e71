"""The built library's shape: exported symbols, no Python dependency, where Python finds it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import shim
from dra_driver.simulation.cbuild import have_compiler
from shim import buildinfo
from tests.support.shimlib import build_shim

pytestmark = pytest.mark.skipif(not have_compiler(), reason="no C compiler: the shim cannot be built")


def _hooked_symbols() -> set[str]:
    internal = (buildinfo.SOURCE_DIR / "internal.h").read_text()
    return set(re.findall(r"X\(\w+, (\w+), 1\)", internal))


def _dynamic_symbols(library: Path, *, defined: bool) -> set[str]:
    args = ["nm", "-D", "--defined-only" if defined else "--undefined-only", str(library)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def test_only_hooks_dlsym_dlvsym_and_the_ledger_api_are_exported() -> None:
    api = set(re.findall(r"XPUSHARE_EXTERN [^;(]*?\b(xpushare_\w+)\(", shim.HEADER_PATH.read_text()))
    assert _dynamic_symbols(build_shim(), defined=True) == _hooked_symbols() | api | {"dlsym", "dlvsym"}


def test_the_version_script_lists_every_hook_and_hides_the_rest() -> None:
    script = buildinfo.VERSION_SCRIPT.read_text()
    assert script.rstrip().endswith("local: *;\n};".strip())
    listed = set(re.findall(r"^\s+(\w+);$", script, flags=re.MULTILINE))
    assert _hooked_symbols() | {"dlsym"} <= listed


def test_the_library_needs_no_python() -> None:
    undefined = _dynamic_symbols(build_shim(), defined=False)
    assert not {s for s in undefined if s.startswith("Py")}
    needed = subprocess.run(["readelf", "-d", str(build_shim())], capture_output=True, text=True,
                            check=True).stdout
    assert "libpython" not in needed


def test_library_path_prefers_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(shim.LIBRARY_ENV, raising=False)
    assert shim.library_path() == Path(shim.__file__).resolve().parent / "_lib" / "libxpushare.so"
    monkeypatch.setenv(shim.LIBRARY_ENV, str(tmp_path / "lib.so"))
    assert shim.library_path() == tmp_path / "lib.so"


def test_the_installed_library_matches_the_sources_exports() -> None:
    installed = Path(shim.__file__).resolve().parent / "_lib" / "libxpushare.so"
    if not installed.exists():
        pytest.skip("the package was not built (pip install . builds shim/_lib/libxpushare.so)")
    assert _dynamic_symbols(installed, defined=True) == _dynamic_symbols(build_shim(), defined=True)


def _required_glibc_versions(library: Path) -> set[tuple[int, ...]]:
    out = subprocess.run(["nm", "-D", "--undefined-only", str(library)], capture_output=True, text=True,
                         check=True).stdout
    found = re.findall(r"@GLIBC_([\d.]+)", out)
    return {tuple(int(part) for part in version.split(".")) for version in found}


@pytest.mark.parametrize("built", ["tests", "package"])
def test_the_library_loads_in_images_with_glibc_2_17(built: str) -> None:
    """CANN and CUDA images are often CentOS 7, EulerOS or Ubuntu 18.04: a library that asks for a newer
    glibc than the container has fails to preload there, so nothing past 2.17 may be required."""
    library = build_shim() if built == "tests" else shim.library_path()
    if not library.exists():
        pytest.skip(f"no packaged library at {library}")
    versions = _required_glibc_versions(library)
    assert versions, "the library references glibc symbols, so nm must list their versions"
    assert max(versions) <= (2, 17), sorted(versions)
