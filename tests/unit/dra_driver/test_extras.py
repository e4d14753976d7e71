"""The components install without the simulation's dependencies (cel-python, jsonschema).

Each check runs in a fresh interpreter whose import system refuses those packages, as a plain
``pip install xpushare`` (no ``[sim]`` extra) leaves it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

_BLOCK = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"celpy", "jsonschema", "referencing", "lark"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _BLOCK + textwrap.dedent(code)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    "module",
    ["kubeletplugin.plugin", "controller.cluster", "controller.admission", "controller.publisher",
     "dra_driver.cli.kubelet_plugin", "dra_driver.cli.controller"],
)
def test_component_imports_without_the_sim_extra(module: str) -> None:
    done = _run(f"import {module}")
    assert done.returncode == 0, done.stderr


def test_help_lists_every_command_without_the_sim_extra() -> None:
    done = _run("from dra_driver.cli import main; raise SystemExit(main(['--help']))")
    assert done.returncode == 0, done.stderr
    for command in ("demo", "kubelet-plugin", "controller", "sim"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["demo"], "demo"),
        (["sim", "apiserver"], "sim apiserver"),
        (["plan", "--workload", "w.yaml", "-f", "cluster.json"], "plan"),
    ],
)
def test_simulation_commands_name_the_extra_to_install(argv: list[str], command: str) -> None:
    done = _run(f"from dra_driver.cli import main; raise SystemExit(main({argv!r}))")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"error: 'xpushare {command}' needs the simulation's dependencies" in done.stderr
    assert "pip install 'xpushare[sim]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_extra_holds_what_the_simulation_imports() -> None:
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    extra = " ".join(project["optional-dependencies"]["sim"])
    for package in ("cel-python", "jsonschema"):
        assert package not in base
        assert package in extra


def test_the_simulated_devices_ship_inside_the_package() -> None:
    """The demo builds its fake runtimes and tenant program from package files, never from tests/."""
    import dra_driver
    from dra_driver.simulation import workloads

    package = Path(dra_driver.__file__).resolve().parent
    sources = [workloads.FAKES_DIR / "cuda" / "fake_cuda.c", workloads.FAKES_DIR / "common" / "fake_device.h",
               workloads.FAKES_DIR / "ascend" / "fake_runtime.c", workloads.PROGRAMS_DIR / "tenant.c"]
    for source in sources:
        assert source.is_file(), source
        assert source.resolve().is_relative_to(package), source
