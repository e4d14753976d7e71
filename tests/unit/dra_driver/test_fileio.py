"""Atomic file replacement: explicit mode whatever the umask, nothing left behind on failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from dra_driver.core.fileio import (
    ensure_directory,
    read_regular_file,
    remove_file,
    remove_stale_temps,
    write_atomically,
)


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


def test_ensure_directory_uses_the_mode_whatever_the_umask_and_tightens(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        ensure_directory(tmp_path / "a/b", 0o700)
        (tmp_path / "loose").mkdir(mode=0o777)
        ensure_directory(tmp_path / "loose", 0o755)
        ensure_directory(tmp_path / "kept", 0o755, tighten=False)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a/b").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "loose").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o755


def test_stale_temps_of_the_writer_are_removed_and_nothing_else(tmp_path: Path) -> None:
    os.close(os.open(tmp_path / ".ours_1.json.k2j_9x0a.tmp", os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (".theirs.json.k2j_9x0a.tmp", "ours_1.json", ".ours_1.json.tmp", "x.tmp"):
        (tmp_path / name).write_text("keep")
    (tmp_path / ".ours_2.json.abcdefgh.tmp").mkdir()  # not a file: left alone
    assert remove_stale_temps(tmp_path, "ours_") == [".ours_1.json.k2j_9x0a.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".theirs.json.k2j_9x0a.tmp", "ours_1.json", ".ours_1.json.tmp", "x.tmp", ".ours_2.json.abcdefgh.tmp"]
    )
    assert remove_stale_temps(tmp_path / "missing") == []


def test_read_regular_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"x" * 10)
    assert read_regular_file(tmp_path / "ok", 10) == b"x" * 10
    with pytest.raises(OSError, match="larger than the limit of 9 bytes"):
        read_regular_file(tmp_path / "ok", 9)
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for name in ("dir", "fifo"):
        with pytest.raises(OSError, match="not a regular file"):
            read_regular_file(tmp_path / name, 10)
    (tmp_path / "link").symlink_to(tmp_path / "ok")
    with pytest.raises(OSError, match="symbolic links") as raised:
        read_regular_file(tmp_path / "link", 10)
    assert raised.value.errno == errno.ELOOP
