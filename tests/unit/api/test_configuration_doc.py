"""The examples in docs/configuration.md are checked as users would check them, and give the shown output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dra_driver.cli import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
BLOCK = re.compile(r"^```(\w+)( invalid)?\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, bool, str]]:
    return [(lang, bool(invalid), body) for lang, invalid, body in BLOCK.findall(DOC.read_text("utf-8"))]


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str) -> tuple[int, str]:
    path = tmp_path / "example.yaml"
    path.write_text(body, encoding="utf-8")
    code = main(["config", "validate", str(path)])
    return code, capsys.readouterr().out


def test_valid_examples_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = [body for lang, invalid, body in blocks() if lang == "yaml" and not invalid]
    assert len(examples) == 4
    for body in examples:
        assert validate(tmp_path, capsys, body) == (0, "valid\n"), body


def test_invalid_example_prints_what_the_doc_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = blocks()
    index = next(i for i, (lang, invalid, _) in enumerate(found) if lang == "yaml" and invalid)
    shown = found[index + 1]
    assert shown[0] == "text"
    assert validate(tmp_path, capsys, found[index][2]) == (1, shown[2])
