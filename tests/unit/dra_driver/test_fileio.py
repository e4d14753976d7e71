"""Atomic file replacement: explicit mode whatever the umask, nothing left behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dra_driver.core.fileio import remove_file, write_atomically


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_the_file_with_the_explicit_mode_whatever_the_umask(tmp_path: Path, durable: bool) -> None:
    target = tmp_path / "record.json"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        write_atomically(target, b"new" * 100_000, mode=0o644, durable=durable)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new" * 100_000
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_read_only_mode_and_shared_directory_sync(tmp_path: Path) -> None:
    synced: list[bool] = []
    write_atomically(tmp_path / "limits", b"x", mode=0o444, sync_directory=lambda: synced.append(True))
    assert stat.S_IMODE((tmp_path / "limits").stat().st_mode) == 0o444
    assert synced == [True]


def test_failure_raises_os_error_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "occupied").write_text("x")  # renaming a file over a non-empty directory fails
    with pytest.raises(IsADirectoryError):
        write_atomically(tmp_path / "target", b"data", mode=0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "file", b"data", mode=0o600)


def test_remove_file_accepts_a_missing_file_and_wraps_failures(tmp_path: Path) -> None:
    (tmp_path / "spec").write_text("x")
    remove_file(tmp_path / "spec", RuntimeError, "remove spec")
    remove_file(tmp_path / "spec", RuntimeError, "remove spec")
    (tmp_path / "dir").mkdir()
    with pytest.raises(RuntimeError, match=r"^remove spec .*/dir: "):
        remove_file(tmp_path / "dir", RuntimeError, "remove spec")
