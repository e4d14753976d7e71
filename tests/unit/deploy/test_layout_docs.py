"""The documents name only files and folders that exist, so they cannot drift as code moves.

docs/architecture.md names the module at each step of a claim's path, the README's layout table each
top-level folder's role, and the other pages the modules they describe; a path in any of them that no
longer exists fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.deploy.chart import PROJECT_ROOT

ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
README = PROJECT_ROOT / "README.md"
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))
# A repository path: starts with one of our top-level folders, ends in a file or a folder.
_PATH = re.compile(
    r"(?<![\w/.])((?:api|dra_driver|controller|kubeletplugin|shim|deploy|tests|benchmarks|docs|scripts)"
    r"/[\w./*-]*[\w*/])"
)


def _paths(text: str) -> set[str]:
    return {match.rstrip("/") for match in _PATH.findall(text)}


def _exists(path: str) -> bool:
    return any(PROJECT_ROOT.glob(path)) if "*" in path else (PROJECT_ROOT / path).exists()


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda p: p.name)
def test_every_path_a_layout_document_names_exists(document: Path) -> None:
    named = _paths(document.read_text())
    if document in (ARCHITECTURE, README):
        assert named, "the document names no repository path: the pattern is wrong"
    missing = sorted(path for path in named if not _exists(path))
    assert not missing, f"{document} names paths that do not exist: {missing}"


def test_the_path_pattern_finds_modules_and_globs() -> None:
    text = "see `kubeletplugin/state.py` and dra_driver/core/vendors/*/profile.py, not x/api/y"
    assert _paths(text) == {"kubeletplugin/state.py", "dra_driver/core/vendors/*/profile.py"}


def test_a_moved_module_is_reported() -> None:
    assert not _exists("controller/allocator/search.py")
    assert _exists("dra_driver/simulation/allocator/search.py")
