"""Shared pieces of the podman end-to-end tests: when podman can run, how an image is imported from a
rootfs, the node plugin started on a fake host, and the ``podman run`` command line.

podman 4.3 reads CDI specs from ``/etc/cdi`` and ``/var/run/cdi`` only, so the plugin writes there, under
a driver name of its own so that its start-up sweep never touches another run's specs (and the specs a
failed test leaves are removed at teardown).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dra_driver.simulation.apiserver import ApiServer
from kubeletplugin import cdi
from kubeletplugin.plugin import Plugin
from tests.integration.kubeletplugin.conftest import NodeDirs, start_plugin

BUSYBOX = Path("/bin/busybox")
CDI_DIR = Path("/var/run/cdi")
RUN = [
    "prlimit",
    "--nproc=4096:4096",
    "--nofile=4096:4096",
    "--",
    "podman",
    "--runtime",
    "runc",
    "--cgroup-manager=cgroupfs",
    "run",
    "--rm",
    "--network",
    "none",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
]


def podman_unusable() -> str | None:
    """Why podman cannot run a container here, or None when it can."""
    if os.geteuid() != 0:
        return "podman tests run as root (rootless podman cannot create device nodes)"
    for tool in ("podman", "runc", "prlimit"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-packages.sh installs it)"
    if not BUSYBOX.is_file():
        return "busybox-static is not installed (scripts/system-packages.sh installs it)"
    probe = subprocess.run(["podman", "info"], capture_output=True, timeout=60, check=False)
    if probe.returncode != 0:
        return f"podman cannot run here: {probe.stderr.decode(errors='replace')[-300:]}"
    return None


def require_podman() -> None:
    reason = podman_unusable()
    if reason:
        pytest.skip(reason)


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], check=False, timeout=60).returncode == 0


def busybox_rootfs(root: Path, applets: Sequence[str]) -> Path:
    """A rootfs holding busybox and links to the applets the tests' scripts call."""
    for directory in ("bin", "dev", "proc", "sys", "etc", "tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for applet in applets:
        (root / "bin" / applet).symlink_to("busybox")
    return root


def import_rootfs(root: Path, name: str) -> str:
    """Import ``root`` as the image ``name`` (a name that hashes the contents, so it is imported once)."""
    archive = root.parent / f"{root.name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".")
    subprocess.run(["podman", "import", str(archive), name], check=True, capture_output=True, timeout=120)
    return name


@contextmanager
def running_plugin(apiserver: ApiServer, root: Path, inventory: Path, shim: Path,
                   **overrides: Any) -> Iterator[Plugin]:
    """The node plugin on the fake host under ``root/host``, writing its CDI specs to ``CDI_DIR``
    (``overrides``: more of its settings)."""
    node = NodeDirs(root, Path(root / "s"), inventory)
    (root / "boot_id").write_text(f"{uuid.uuid4()}\n")
    driver = f"e2e-{uuid.uuid4().hex[:8]}.xpushare.io"
    settings = node.settings(
        driver_name=driver,
        cdi_dir=CDI_DIR,
        shim_path=shim,
        registry_dir=Path(f"/tmp/xps-{driver[:12]}/reg"),
        plugin_dir=Path(f"/tmp/xps-{driver[:12]}/plugin"),
        **overrides,
    )
    plugin = start_plugin(apiserver, settings)
    try:
        yield plugin
    finally:
        plugin.stop()
        shutil.rmtree(settings.registry_dir.parent, ignore_errors=True)
        kind = cdi.kind_for(driver)
        for claim_uid in cdi.listed_claims(settings.cdi_dir, kind):  # a failed test must leave no specs
            cdi.remove_spec(settings.cdi_dir, claim_uid, kind)


def podman_run(
    image: str, device_ids: Sequence[str], argv: Sequence[str], options: Sequence[str] = ()
) -> str:
    """Run ``argv`` in a container of ``image`` with the CDI devices; its stdout (it must succeed)."""
    devices = [arg for device in device_ids for arg in ("--device", device)]
    done = subprocess.run(
        [*RUN, *devices, *options, image, *argv], capture_output=True, timeout=180, check=False
    )
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, f"podman failed: {done.stderr.decode(errors='replace')}\n{output}"
    return output
