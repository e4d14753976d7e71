"""The loader-cache hook's script, run as the container runtime runs it: the container's state on stdin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dra_driver.simulation.cbuild import have_compiler
from dra_driver.simulation.workloads import build_fake_cuda
from kubeletplugin.ldcache import SCRIPT, ldcache_hook

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


def test_an_image_without_a_glibc_loader_cache_is_left_as_it_was(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)  # no /etc/ld.so.conf or ld.so.cache: musl, distroless
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (bundle / "rootfs/etc").iterdir()) == []


@pytest.mark.parametrize("state", ["", "not json", '{"id": "c1"}', '{"bundle": "/nonexistent"}'])
def test_a_state_without_a_usable_bundle_never_fails_the_container(state: str) -> None:
    done = _run_hook(state, *DIRS)
    assert done.returncode == 0
    assert "no bundle in the container state" in done.stderr


HOST_LDCONFIG = Path("/sbin/ldconfig")
BUSYBOX = Path("/bin/busybox")  # static: it runs inside a bare root, as a tenant's ldconfig would
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not HOST_LDCONFIG.is_file() or not have_compiler(),
                                reason="ldconfig -r chroots, which needs root; the host's /sbin/ldconfig; "
                                       "and a C compiler for a library to list")


def _glibc_image(bundle: Path) -> Path:
    """A root with the image's loader configuration and a driver library (a real ELF with a SONAME)."""
    rootfs = bundle / "rootfs"
    (rootfs / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (rootfs / DIRS[0].lstrip("/")).mkdir(parents=True)
    shutil.copy(build_fake_cuda(), rootfs / DIRS[0].lstrip("/") / "libcuda.so.1")
    return rootfs


@needs_root
def test_the_host_s_ldconfig_builds_the_image_s_cache_with_the_directories(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    rootfs = _glibc_image(bundle)
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([str(HOST_LDCONFIG), "-r", str(rootfs), "-p"], capture_output=True, text=True,
                            check=True).stdout
    assert f"=> {DIRS[0]}/libcuda.so.1" in listed  # as the container sees the driver's directory
    assert not (rootfs / "etc/ld.so.conf.d").exists()  # nothing of ours written into the image


@needs_root
def test_the_image_s_own_ldconfig_never_runs(tmp_path: Path) -> None:
    """A tenant's image is not trusted: an ldconfig of its own would run as root on the host."""
    bundle = _bundle(tmp_path)
    rootfs = _glibc_image(bundle)
    if not BUSYBOX.is_file():
        pytest.skip(f"no {BUSYBOX} to give the image a shell")
    for directory in ("bin", "sbin"):
        (rootfs / directory).mkdir()
    shutil.copy(BUSYBOX, rootfs / "bin/busybox")
    for applet in ("sh", "touch"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "sbin/ldconfig").write_text("#!/bin/sh\ntouch /ran\n")  # would run as root on the host
    (rootfs / "sbin/ldconfig").chmod(0o755)
    assert _run_hook(_state(bundle), *DIRS).returncode == 0
    assert not (rootfs / "ran").exists()


@needs_root
def test_a_symlink_in_the_image_cannot_send_the_cache_onto_the_host(tmp_path: Path) -> None:
    """The image's /etc/ld.so.cache pointing at a host file: ldconfig writes inside the image's root."""
    bundle = _bundle(tmp_path)
    rootfs = _glibc_image(bundle)
    victim = tmp_path / "host-file"
    victim.write_text("the host's own\n")
    (rootfs / "etc/ld.so.cache").symlink_to(victim)
    assert _run_hook(_state(bundle), *DIRS).returncode == 0
    assert victim.read_text() == "the host's own\n"


@needs_root
def test_a_cache_that_cannot_be_written_is_reported_and_the_container_still_starts(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    rootfs = _glibc_image(bundle)
    (rootfs / "etc/ld.so.cache").mkdir()  # a directory where the cache file should be
    done = _run_hook(_state(bundle), *DIRS)
    assert done.returncode == 0
    assert f"ldconfig -r {rootfs} failed" in done.stderr
