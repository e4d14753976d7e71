"""End to end with a real CDI consumer: a claim allocated by the scheduler stand-in, prepared by the plugin
over its DRA socket, then a real container started by podman from the CDI ids the plugin answered.

Inside the container the test checks what DESIGN.md section 6 promises: the allocated device's node (a
character device the test creates with the major/minor of /dev/null in place of the accelerator's) and
the vendor's control nodes, the driver mounts (read-only), ``ASCEND_VISIBLE_DEVICES`` with the physical
id and no ``ASCEND_RT_VISIBLE_DEVICES``, the shim and ``LD_PRELOAD``, and the limits file, read-only.

podman 4.3 reads CDI specs from ``/etc/cdi`` and ``/var/run/cdi`` only, so the plugin writes there, under
a driver name of its own so that its start-up sweep never touches another run's specs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin import cdi
from kubeletplugin.plugin import Plugin
from shim import library_path
from shim.limits import parse_limits
from tests.e2e.conftest import (
    BUSYBOX,
    busybox_rootfs,
    image_exists,
    import_rootfs,
    podman_run,
    require_podman,
    running_plugin,
)
from tests.integration.kubeletplugin.conftest import (  # noqa: F401 - fixtures
    INVENTORY,
    apiserver,
    kube_client,
    make_allocator,
    ref,
)
from tests.support.cdi_schema import validate_cdi_spec

pytestmark = pytest.mark.podman

APPLETS = ("sh", "cat", "ls", "env", "stat", "test", "echo", "grep", "head")
SCRIPT = r"""
for node in /dev/davinci3 /dev/davinci_manager /dev/devmm_svm /dev/hisi_hdc; do
  echo "node $node $(stat -c '%F %t %T' $node)"
done
test -e /dev/davinci5 && echo "node /dev/davinci5 present" || echo "node /dev/davinci5 absent"
env | grep -E '^(ASCEND_|LD_PRELOAD|LD_LIBRARY_PATH|XPUSHARE_)' | sed 's/^/env /'
echo "hal $(cat /usr/local/Ascend/driver/lib64/libascend_hal.so)"
echo "tool $(cat /usr/local/Ascend/driver/tools/hccn_tool)"
echo "hccn $(cat /etc/hccn.conf)"
test -e /usr/local/bin/npu-smi && echo "npu-smi present" || echo "npu-smi absent"
ours='/usr/local/Ascend/driver/lib64|/etc/xpushare/limits.d/[^ ]+|/usr/local/xpushare/lib/libxpushare.so'
grep -E " ($ours) " /proc/self/mountinfo | sed 's/^/mount /'
for f in "$XPUSHARE_LIMITS_FILE"/*; do
  (echo tamper >> "$f") 2>/dev/null && echo "limits writable" || echo "limits read-only"
done
echo "---limits"
cat "$XPUSHARE_LIMITS_FILE"/*
"""


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox-only image, imported once per busybox build."""
    require_podman()
    name = f"localhost/xpushare-e2e:{hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()[:12]}"
    if image_exists(name):
        return name
    return import_rootfs(busybox_rootfs(tmp_path_factory.mktemp("rootfs"), APPLETS), name)


def _fake_host(host: Path) -> None:
    """Device nodes and driver files of an Ascend host, in a directory of the test's own."""
    null = os.stat("/dev/null").st_rdev
    (host / "dev").mkdir(parents=True)
    for node in ("davinci3", "davinci5", "davinci_manager", "devmm_svm", "hisi_hdc"):
        os.mknod(host / "dev" / node, 0o666 | 0o020000, null)  # S_IFCHR
    lib64 = host / "usr/local/Ascend/driver/lib64"
    lib64.mkdir(parents=True)
    (lib64 / "libascend_hal.so").write_text("fake hal")
    (host / "usr/local/Ascend/driver/version.info").write_text("Version=24.1.rc2\n")
    (host / "etc").mkdir()
    (host / "etc/ascend_install.info").write_text("Driver_Install_Path_Param=/usr/local/Ascend\n")
    (host / "usr/local/dcmi").mkdir()
    tools = host / "usr/local/Ascend/driver/tools"
    tools.mkdir()
    (tools / "hccn_tool").write_text("fake hccn_tool")
    (host / "etc/hccn.conf").write_text("address_0=10.0.0.3\n")
    # What this host lacks (npu-smi, driver/include, /var/queue_schedule) is left out, not created.


def _inventory(path: Path) -> Path:
    """Two NPUs with physical ids 3 and 5, so a physical id would show if it leaked."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    npus = [d for d in inventory["devices"] if d["type"] == "npu"][:2]
    for device, index in zip(npus, (3, 5), strict=True):
        device.update(index=index, minor=index, deviceNode=f"/dev/davinci{index}")
    inventory["devices"] = npus
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture
def e2e_plugin(apiserver: ApiServer, tmp_path: Path) -> Iterator[Plugin]:  # noqa: F811
    host = tmp_path / "host"
    _fake_host(host)
    shim = library_path() if library_path().is_file() else host / "libxpushare.so"
    shim.touch(exist_ok=True)
    with running_plugin(apiserver, tmp_path, _inventory(tmp_path / "inventory.yaml"), shim) as plugin:
        yield plugin


def _run(image: str, device_ids: list[str]) -> str:
    return podman_run(image, device_ids, ["sh", "-c", SCRIPT])


def test_container_started_from_the_claim_spec_gets_devices_mounts_env_and_read_only_limits(
    image: str,
    e2e_plugin: Plugin,
    kube_client: client.ApiClient,  # noqa: F811
    schemas_dir: Path,
) -> None:
    driver = e2e_plugin.settings.driver_name
    claim = make_allocator(kube_client, driver)(
        "e2e", memory="16Gi", cores="25", device_class=f"npu.{driver}"
    )
    uid = claim["metadata"]["uid"]
    with KubeletClient(e2e_plugin.settings.registration_socket, driver) as kubelet:
        kubelet.register()
        answer = kubelet.prepare([ref(claim)]).claims[uid]
        assert answer.error == ""
        ids = [i for d in answer.devices for i in d.cdi_device_ids]
        spec_file = cdi.spec_path(Path("/var/run/cdi"), uid, cdi.kind_for(driver))
        spec = json.loads(spec_file.read_text())
        validate_cdi_spec(spec, schemas_dir)
        # The loader-cache hook names the driver's library directory; this image has no ldconfig, so the
        # hook leaves it be and the container starts anyway.
        (hook,) = spec["containerEdits"]["hooks"]
        assert hook["args"][-1] == "/usr/local/Ascend/driver/lib64"
        try:
            output = _run(image, ids)
        finally:
            assert kubelet.unprepare([ref(claim)]).claims[uid].error == ""

    lines, _, limits_text = output.partition("---limits\n")
    assert "node /dev/davinci3 character special file 1 3" in lines
    for control in ("davinci_manager", "devmm_svm", "hisi_hdc"):
        assert f"node /dev/{control} character special file 1 3" in lines
    assert "node /dev/davinci5 absent" in lines
    env = dict(line[4:].split("=", 1) for line in lines.splitlines() if line.startswith("env "))
    assert env["ASCEND_VISIBLE_DEVICES"] == "3"
    assert "ASCEND_RT_VISIBLE_DEVICES" not in env
    assert env["LD_PRELOAD"] == cdi.CONTAINER_SHIM_PATH
    assert env["XPUSHARE_LIMITS_FILE"] == cdi.CONTAINER_LIMITS_DIR
    assert "hal fake hal" in lines
    assert "tool fake hccn_tool" in lines
    assert "hccn address_0=10.0.0.3" in lines
    assert "npu-smi absent" in lines  # not on this host: not mounted (a missing source fails a container)
    assert "LD_LIBRARY_PATH" not in env  # the image's own stays; the loader cache hook adds the driver
    mounts = [line for line in lines.splitlines() if line.startswith("mount ")]
    assert len(mounts) == 3
    assert all(" ro," in m for m in mounts), mounts
    assert "limits read-only" in lines
    limits = parse_limits(limits_text)
    assert limits.claim_uid == uid
    assert [(d.index, d.memory_limit_bytes, d.core_percent) for d in limits.devices] == [(0, 16 << 30, 25)]
    assert not cdi.spec_path(Path("/var/run/cdi"), uid, cdi.kind_for(driver)).exists()
