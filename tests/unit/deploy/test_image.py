"""deploy/image: the Dockerfile's build would find what it copies (docker cannot run here, so the build
is checked statically): COPY sources exist and survive the context filter, every package of
pyproject.toml is copied, stages reference earlier stages, and the shim lands where the chart's init
container copies it from."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.deploy.chart import CHART_DIR, PROJECT_ROOT, load_yaml_documents

IMAGE_DIR = PROJECT_ROOT / "deploy" / "image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
SOURCE_SUFFIXES = {".py", ".c", ".h", ".map", ".yaml", ".json", ".proto", ".pyi", ".typed"}


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined, each tagged with its stage name."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    result, stage, count = [], "", 0
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            match = re.search(r"\bAS\s+(\S+)", arguments, re.IGNORECASE)
            stage = match.group(1) if match else f"stage-{count}"
            count += 1
        result.append(Instruction(stage, keyword.upper(), arguments.strip()))
    return result


def copies(items: list[Instruction]) -> list[tuple[str, dict[str, str], list[str], str]]:
    """(stage, flags, sources, destination) of every COPY."""
    result = []
    for item in items:
        if item.keyword != "COPY":
            continue
        words = item.arguments.split()
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        result.append((item.stage, flags, paths[:-1], paths[-1]))
    return result


def _ignore_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for raw in (IMAGE_DIR / "Dockerfile.dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not modelled by this test"
        regex = re.escape(line.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append(re.compile(regex))
    return patterns


def ignored(relative: str) -> bool:
    """Whether the context filter drops a path (a dropped directory drops everything beneath it)."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(p.fullmatch(prefix) for p in _ignore_patterns() for prefix in prefixes)


def _build_shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xpushare_image_build_shim", IMAGE_DIR / "build_shim.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def test_context_filter_model_drops_what_it_should() -> None:
    """Guards the checks below: the filter model must really drop things."""
    assert ignored(".venv/bin/python")
    assert ignored("shim/_lib/libxpushare.so")
    assert ignored("dra_driver/__pycache__/devices.cpython-311.pyc")
    assert not ignored("shim/src/ledger.c")


def test_copy_sources_exist_and_survive_the_context_filter(dockerfile: list[Instruction]) -> None:
    local = [(sources, flags) for _, flags, sources, _ in copies(dockerfile) if "from" not in flags]
    assert local
    for sources, _ in local:
        for source in sources:
            if any(ch in source for ch in "*?["):
                continue  # optional: a wildcard that matches nothing copies nothing
            path = PROJECT_ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the build context"
            assert not ignored(source.rstrip("/")), f"COPY {source}: dropped by Dockerfile.dockerignore"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in SOURCE_SUFFIXES]
            for file in files:
                relative = file.relative_to(PROJECT_ROOT).as_posix()
                if "__pycache__" not in relative:
                    assert not ignored(relative), f"{relative} would be missing from the image build"


def test_every_package_and_the_readme_are_copied(dockerfile: list[Instruction]) -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    copied = {
        s.rstrip("/") for _, flags, sources, _ in copies(dockerfile) if "from" not in flags for s in sources
    }
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert package in copied, f"package {package} of pyproject.toml is not copied into the image"
    assert project["project"]["readme"] in copied
    assert "pyproject.toml" in copied


def test_stages_reference_earlier_stages(dockerfile: list[Instruction]) -> None:
    seen: list[str] = []
    for item in dockerfile:
        if item.keyword == "FROM":
            seen.append(item.stage)
        if item.keyword == "COPY" and "--from=" in item.arguments:
            source_stage = re.search(r"--from=(\S+)", item.arguments)
            assert source_stage is not None
            assert source_stage.group(1) in seen[:-1], f"COPY {item.arguments}: stage not defined before"
    assert len(seen) >= 2, "a builder stage and a runtime stage"


def test_shim_is_built_and_installed_where_the_chart_copies_it_from(dockerfile: list[Instruction]) -> None:
    runs = [i.arguments for i in dockerfile if i.keyword == "RUN" and "build_shim.py" in i.arguments]
    assert len(runs) == 1
    script, output = re.search(r"python (\S+build_shim\.py) (\S+)", runs[0]).groups()  # type: ignore[union-attr]
    builder = next(i.stage for i in dockerfile if i.keyword == "RUN" and "build_shim.py" in i.arguments)
    copied_in_builder = {
        s for stage, _, sources, _ in copies(dockerfile) if stage == builder for s in sources
    }
    assert script in copied_in_builder
    final_stage = dockerfile[-1].stage
    shim_copies = [
        (flags["from"], sources, destination)
        for stage, flags, sources, destination in copies(dockerfile)
        if stage == final_stage and "from" in flags and sources == [output]
    ]
    assert len(shim_copies) == 1
    assert shim_copies[0][0] == builder
    chart_values = load_yaml_documents(CHART_DIR / "values.yaml")[0]
    assert shim_copies[0][2] == chart_values["shim"]["imagePath"]
    env = next(i.arguments for i in dockerfile if i.keyword == "ENV" and i.stage == final_stage)
    assert f"XPUSHARE_SHIM_LIBRARY={chart_values['shim']['imagePath']}" in env


def test_shim_command_compiles_sources_the_image_gets(tmp_path: Path) -> None:
    command = _build_shim().command(tmp_path / "libxpushare.so", "cc")
    assert command[0] == "cc"
    assert command[command.index("-o") + 1] == str(tmp_path / "libxpushare.so")
    sources = [Path(arg) for arg in command if arg.endswith(".c")]
    assert sources
    for source in sources:
        assert source.is_file()
        assert not ignored(source.relative_to(PROJECT_ROOT).as_posix())
    assert any(arg.startswith("-Wl,--version-script=") for arg in command)


def test_shim_script_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _build_shim().main(["--print", "--cc", "clang", str(tmp_path / "out.so")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("clang ")
    assert str(tmp_path / "out.so") in printed
    assert not (tmp_path / "out.so").exists()


def test_build_script_targets_both_architectures() -> None:
    script = (IMAGE_DIR / "build.sh").read_text()
    assert "linux/amd64,linux/arm64" in script
    assert "-f deploy/image/Dockerfile" in script
    assert "docker buildx build --platform linux/amd64,linux/arm64" in (IMAGE_DIR / "README.md").read_text()
