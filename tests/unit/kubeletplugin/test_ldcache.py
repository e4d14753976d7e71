"""The loader-cache hook's script, run as the container runtime runs it: the container's state on stdin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kubeletplugin.ldcache import CONF_FILE, SCRIPT, ldcache_hook

DIRS = ("/usr/local/Ascend/driver/lib64", "/usr/local/Ascend/driver/lib64/common")


def _run_hook(state: str, *dirs: str) -> subprocess.CompletedProcess[str]:
    hook = ldcache_hook(dirs)
    env = dict(item.split("=", 1) for item in hook["env"])
    return subprocess.run([hook["path"], *hook["args"][1:]], input=state, env=env, capture_output=True,
                          text=True, timeout=30, check=False)


def _bundle(tmp_path: Path, root: str = "rootfs") -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs/etc").mkdir(parents=True)
    config = {"ociVersion": "1.0.2", "process": {"args": ["sh"]}, "root": {"path": root, "readonly": False}}
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


def _state(bundle: Path) -> str:
    state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 1, "bundle": str(bundle)}
    return json.dumps(state)


def test_the_hook_is_a_create_container_hook_of_the_host_shell_with_the_directories() -> None:
    hook = ldcache_hook(DIRS)
    assert (hook["hookName"], hook["path"]) == ("createContainer", "/bin/sh")
    assert hook["args"][:3] == ["sh", "-c", SCRIPT]
    assert hook["args"][4:] == list(DIRS)
    assert any(e.startswith("PATH=") for e in hook["env"])


def test_an_image_without_ldconfig_is_left_as_it_was(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0, done.stderr
    assert not (bundle / "rootfs" / CONF_FILE.lstrip("/")).exists()
    assert not (bundle / "rootfs/etc/ld.so.conf").exists()


@pytest.mark.parametrize("state", ["", "not json", '{"id": "c1"}', '{"bundle": "/nonexistent"}'])
def test_a_state_without_a_usable_bundle_never_fails_the_container(state: str) -> None:
    done = _run_hook(state, *DIRS)
    assert done.returncode == 0
    assert "no bundle in the container state" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/sbin/ldconfig").is_file() or not shutil.which("chroot"),
                    reason="running ldconfig in a root needs chroot, so root, and the host's /sbin/ldconfig")
def test_the_directories_are_added_and_the_image_s_ldconfig_builds_its_cache(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    rootfs = bundle / "rootfs"
    library_dir = rootfs / DIRS[0].lstrip("/")
    library_dir.mkdir(parents=True)
    (rootfs / "sbin").mkdir()
    shutil.copy("/sbin/ldconfig", rootfs / "sbin/ldconfig")
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0, done.stderr
    assert (rootfs / CONF_FILE.lstrip("/")).read_text().splitlines() == list(DIRS)
    assert "include /etc/ld.so.conf.d/*.conf" in (rootfs / "etc/ld.so.conf").read_text()
    assert (rootfs / "etc/ld.so.cache").is_file()  # written by the image's ldconfig, in its root


def test_a_read_only_root_is_reported_and_left_alone(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, root=str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere/sbin").mkdir(parents=True)
    (tmp_path / "elsewhere/sbin/ldconfig").write_text("#!/bin/sh\n")
    (tmp_path / "elsewhere/sbin/ldconfig").chmod(0o755)
    (tmp_path / "elsewhere/etc").write_text("a file where the directory should be: nothing can be written")
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0
    assert f"cannot write {CONF_FILE}" in done.stderr
