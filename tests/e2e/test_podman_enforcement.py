"""End to end on the NVIDIA path: the shim enforces a claim's memory limit inside a real container that
podman started from the claim's CDI spec, against the claim's ledger the node plugin created.

The fake host holds character devices (the major/minor of /dev/null) in place of the GPUs and their
control nodes, and the fake ``libcuda.so.1`` where the NVIDIA driver keeps its libraries, so the spec
mounts the driver library into the container exactly as it would the real one. The image is busybox, the
glibc loader and libraries, and the ``cuda_client`` program; the shim and the driver come from the host
through the CDI spec only. Two GPUs on the node: the container must see the allocated one's node and
ledger and nothing of the other.

Inside the container: allocations fit up to exactly the claim's limit and the next one fails with
``CUDA_ERROR_OUT_OF_MEMORY``; ``cuMemGetInfo``/``cuDeviceTotalMem`` report the limit; a second process of
the same claim sees what the first one holds; the bytes of a process killed with SIGKILL come back (its
pid lives in the container's namespace, not the host's). On the host afterwards: the claim's ledger, as
the plugin reads it, has the claim's peak at the limit and every byte back, and the fake device never
held more than the limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from dra_driver.core.devices import GIB, MIB
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from dra_driver.simulation.workloads import WorkloadUnavailable, build_fake_cuda, require_simulated_devices
from kubeletplugin import cdi
from kubeletplugin.ledgers import DeviceUsage
from kubeletplugin.plugin import Plugin
from shim import library_path
from shim.limits import parse_limits
from tests.e2e.conftest import (
    BUSYBOX,
    CDI_DIR,
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
from tests.support.shimlib import FakeState, build_program

pytestmark = pytest.mark.podman

LIMIT = 2 * GIB
CHUNK = 256 * MIB
FAKE_DEVICE_MEMORY = 80 * GIB  # the H100 of the inventory
LIBRARY_DIR = f"/usr/lib/{platform.machine()}-linux-gnu"  # where the NVIDIA driver installs libcuda
LDCONFIG = Path("/sbin/ldconfig")
DRIVER_VERSION = "580.65.06"
APPLETS = ("sh", "cat", "ls", "env", "stat", "test", "echo", "grep", "sed", "tr", "mkfifo", "sleep")
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
SCRIPT = r"""
for node in /dev/nvidia0 /dev/nvidia1 /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-uvm-tools; do
  test -e $node && echo "node $node $(stat -c '%F %t %T' $node)" || echo "node $node absent"
done
env | grep -E '^(LD_PRELOAD|XPUSHARE_)' | sed 's/^/env /'
echo "devices $(ls /var/run/xpushare/devices | tr '\n' ' ')"
echo "claims $(ls /var/run/xpushare/claims/* | tr '\n' ' ')"
for f in /var/run/xpushare/devices/*/board /var/run/xpushare/devices/*/claims/* \
         /var/run/xpushare/claims/*/*; do
  if (: >> "$f") 2>/dev/null; then echo "write $f ok"; else echo "write $f refused"; fi
done
echo "ldcache $(ldconfig -p | grep 'libcuda.so.1 ')"
test -e /etc/ld.so.conf.d && echo "conf.d present" || echo "conf.d absent"
echo "libs $(ls @LIBDIR@ | tr '\n' ' ')"
test -x /usr/bin/nvidia-smi && echo "binary nvidia-smi" || echo "binary nvidia-smi absent"
grep -E ' (/var/run/xpushare/(devices|claims)/[^ ]+|@LIBDIR@/libcuda.so.1) ' /proc/self/mountinfo |
  while read -r _ _ _ _ point options _; do echo "mount $point $options"; done
cuda_client dlsym -- info total fill @CHUNK@ info freeall info | sed 's/^/first /'
ready() { i=0; until grep -q ready "$1" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done; }
mkfifo /tmp/holder.in /tmp/victim.in
cuda_client gpa -- alloc @HALF@ ready freeall < /tmp/holder.in > /tmp/holder.out &
holder=$!
exec 3> /tmp/holder.in
ready /tmp/holder.out
cuda_client dlsym_old -- info alloc @HALF@ alloc @CHUNK@ freeall | sed 's/^/second /'
exec 3>&-
wait $holder
echo "exit holder $?"
sed 's/^/holder /' /tmp/holder.out
export FAKE_CUDA_STATE=/tmp/cuda-state  # the fake device never frees what a killed process held
cuda_client dlsym -- alloc @HALF@ ready < /tmp/victim.in > /tmp/victim.out &
victim=$!
exec 4> /tmp/victim.in
ready /tmp/victim.out
kill -9 $victim
wait $victim
echo "exit victim $?"
exec 4>&-
cuda_client dlsym -- alloc @LIMIT@ info | sed 's/^/after /'
echo "---limits"
cat "$XPUSHARE_LIMITS_FILE"/*
"""


def _shared_libraries(*binaries: Path) -> list[Path]:
    """The dynamic loader and the libraries ``binaries`` load, as ``ldd`` resolves them here."""
    done = subprocess.run(
        ["ldd", *map(str, binaries)], capture_output=True, text=True, timeout=30, check=True
    )
    return sorted({Path(p) for p in re.findall(r"(/\S+) \(0x[0-9a-f]+\)", done.stdout)})


def _glibc_rootfs(root: Path, client_program: Path) -> Path:
    """busybox, ``cuda_client`` and the glibc files it and the shim need, at the host's paths."""
    busybox_rootfs(root, APPLETS)
    for library in _shared_libraries(client_program, library_path(), build_fake_cuda()):
        target = root / str(library).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(library, target)  # follows links: /lib64 is a link on the host, a directory here
    shutil.copy(client_program, root / "bin/cuda_client")
    (root / "sbin").mkdir(exist_ok=True)
    shutil.copy(LDCONFIG, root / "sbin/ldconfig")  # for ldconfig -p inside; the hook runs the host's
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    return root


@pytest.fixture(scope="session")
def glibc_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, named after a hash of what it holds so it is imported once per build."""
    require_podman()
    if not library_path().is_file():
        pytest.skip(f"the shim is not built at {library_path()} (pip install -e . builds it)")
    try:
        require_simulated_devices()
    except WorkloadUnavailable as err:
        pytest.skip(str(err))
    program = build_program("cuda_client")
    digest = hashlib.sha256(" ".join(APPLETS).encode())
    if not LDCONFIG.is_file():
        pytest.skip(f"no {LDCONFIG} to put in the image")
    for part in (BUSYBOX, program, LDCONFIG, *_shared_libraries(program, library_path(), build_fake_cuda())):
        digest.update(str(part).encode() + part.read_bytes())
    name = f"localhost/xpushare-e2e-glibc:{digest.hexdigest()[:12]}"
    if image_exists(name):
        return name
    return import_rootfs(_glibc_rootfs(tmp_path_factory.mktemp("glibc-rootfs"), program), name)


def _fake_nvidia_host(host: Path) -> None:
    """Device nodes of two GPUs and the driver's ``libcuda.so.1``, in a directory of the test's own."""
    null = os.stat("/dev/null").st_rdev
    (host / "dev").mkdir(parents=True)
    for node in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        os.mknod(host / "dev" / node, 0o666 | 0o020000, null)  # S_IFCHR
    library_dir = host / LIBRARY_DIR.lstrip("/")
    library_dir.mkdir(parents=True)
    for name in ("libcuda.so", "libnvidia-ptxjitcompiler.so"):  # the versioned file and its link
        shutil.copy(build_fake_cuda(), library_dir / f"{name}.{DRIVER_VERSION}")
        (library_dir / f"{name}.1").symlink_to(f"{name}.{DRIVER_VERSION}")
    (library_dir / "libunrelated.so.1").write_text("not the driver's")
    (host / "usr/bin").mkdir(parents=True)
    (host / "usr/bin/nvidia-smi").write_text("#!/bin/sh\necho fake nvidia-smi\n")
    (host / "usr/bin/nvidia-smi").chmod(0o755)


def _inventory(path: Path) -> tuple[Path, dict[str, int]]:
    """The default inventory's H100 and a second one (minor 1); the minor of each GPU by UUID."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    h100 = next(d for d in inventory["devices"] if d["type"] == "gpu")
    second = {**h100, "uuid": "GPU-3b1e7a52-90c4-4d1f-8e6a-5c2d7f0b9e14", "index": 1, "minor": 1}
    second.update(deviceNode="/dev/nvidia1", pciBusID="0000:2a:00.0")
    inventory["devices"] = [h100, second]
    path.write_text(yaml.safe_dump(inventory))
    return path, {d["uuid"]: d["minor"] for d in inventory["devices"]}


@pytest.fixture
def gpu_node(apiserver: ApiServer, tmp_path: Path) -> Iterator[tuple[Plugin, dict[str, int]]]:  # noqa: F811
    _fake_nvidia_host(tmp_path / "host")
    inventory, minors = _inventory(tmp_path / "inventory.yaml")
    with running_plugin(apiserver, tmp_path, inventory, library_path()) as plugin:
        yield plugin, minors


@dataclass(frozen=True)
class ContainerRun:
    """What the test checks after the container: its output and the plugin's view of each GPU."""

    claim_uid: str
    output: str
    ledgers: dict[str, DeviceUsage]  # the plugin's view after the container exited, before unprepare


def _options(fake_dir: Path) -> list[str]:
    """An 80 GiB fake device whose state file the host can read afterwards.

    No ``LD_LIBRARY_PATH``: the spec's hook puts the driver's directory in the image's loader cache.
    ``libcuda.so.1`` is not in the image: only the spec's mount puts it there.
    """
    env = [
        f"FAKE_CUDA_MEMORY={FAKE_DEVICE_MEMORY}",
        "FAKE_CUDA_STATE=/fake/cuda-state",
    ]
    return [*(arg for e in env for arg in ("--env", e)), "--volume", f"{fake_dir}:/fake"]


def _run_claim(
    image: str, plugin: Plugin, kube: client.ApiClient, schemas: Path, fake_dir: Path
) -> ContainerRun:
    """Allocate and prepare a 2Gi claim, run the script in a container started from its CDI ids."""
    driver = plugin.settings.driver_name
    claim = make_allocator(kube, driver)("e2e-gpu", memory="2Gi", cores="30", device_class=f"gpu.{driver}")
    uid = claim["metadata"]["uid"]
    script = SCRIPT.replace("@LIBDIR@", LIBRARY_DIR).replace("@CHUNK@", str(CHUNK))
    script = script.replace("@HALF@", str(LIMIT // 2)).replace("@LIMIT@", str(LIMIT))
    assert plugin.preparer is not None
    assert plugin.preparer.ledgers is not None
    with KubeletClient(plugin.settings.registration_socket, driver) as kubelet:
        kubelet.register()
        answer = kubelet.prepare([ref(claim)]).claims[uid]
        assert answer.error == ""
        ids = [i for d in answer.devices for i in d.cdi_device_ids]
        validate_cdi_spec(json.loads(cdi.spec_path(CDI_DIR, uid, cdi.kind_for(driver)).read_text()), schemas)
        try:
            output = podman_run(image, ids, ["sh", "-c", script], _options(fake_dir))
            ledgers = plugin.preparer.ledgers.usage({d.uuid: [uid] for d in plugin.devices})
        finally:
            assert kubelet.unprepare([ref(claim)]).claims[uid].error == ""
    assert not cdi.spec_path(CDI_DIR, uid, cdi.kind_for(driver)).exists()
    return ContainerRun(uid, output, ledgers)


def _words(output: str, prefix: str) -> list[str]:
    """The lines after ``prefix `` (one per cuda_client command), without the prefix."""
    return [line[len(prefix) + 1 :] for line in output.splitlines() if line.startswith(f"{prefix} ")]


def test_shim_in_a_podman_container_enforces_the_claim_limit_against_the_plugin_ledger(
    glibc_image: str,
    gpu_node: tuple[Plugin, dict[str, int]],
    kube_client: client.ApiClient,  # noqa: F811
    schemas_dir: Path,
    tmp_path: Path,
) -> None:
    plugin, minors = gpu_node
    (tmp_path / "fake").mkdir()
    run = _run_claim(glibc_image, plugin, kube_client, schemas_dir, tmp_path / "fake")
    lines, _, limits_text = run.output.partition("---limits\n")
    limits = parse_limits(limits_text)
    assert limits.claim_uid == run.claim_uid
    assert [(d.index, d.memory_limit_bytes, d.core_percent) for d in limits.devices] == [(0, LIMIT, 30)]
    claimed = limits.devices[0].uuid
    other = next(u for u in minors if u != claimed)
    _check_container_view(lines, run.claim_uid, claimed, minors)
    _check_enforcement(lines)
    _check_host_after(run, claimed, other, FakeState(tmp_path / "fake/cuda-state"))


def _check_container_view(lines: str, uid: str, claimed: str, minors: dict[str, int]) -> None:
    """The claimed GPU's node, directory and ledger, the control nodes, the shim's variables; nothing of
    the other GPU; and of all the shim's files only the claim's own ledger is writable."""
    nodes = dict(line.split(" ", 1) for line in _words(lines, "node"))
    for uuid, minor in minors.items():
        expected = "character special file 1 3" if uuid == claimed else "absent"
        assert nodes[f"/dev/nvidia{minor}"] == expected, nodes
    for control in CONTROL_NODES:
        assert nodes[control] == "character special file 1 3", nodes
    env = dict(line.split("=", 1) for line in _words(lines, "env"))
    assert env["LD_PRELOAD"] == cdi.CONTAINER_SHIM_PATH
    assert env["XPUSHARE_LIMITS_FILE"] == cdi.CONTAINER_LIMITS_DIR
    assert _words(lines, "devices") == [f"{claimed} "]  # no other device's files are visible
    assert _words(lines, "claims") == [f"{claimed} "]
    own_ledger, _board = cdi.container_files(uid, claimed)
    mounts = dict(line.split(" ", 1) for line in _words(lines, "mount"))
    assert mounts[f"{cdi.CONTAINER_DEVICES_DIR}/{claimed}"].startswith("ro,"), mounts
    assert mounts[own_ledger].startswith("rw,"), mounts
    writes = dict(line.rsplit(" ", 1) for line in _words(lines, "write"))
    device_dir = f"{cdi.CONTAINER_DEVICES_DIR}/{claimed}"
    assert writes[f"{device_dir}/board"] == "refused", writes
    assert [v for k, v in writes.items() if k.startswith(f"{device_dir}/claims/")] == ["refused"], writes
    assert writes[own_ledger] == "ok", writes
    assert mounts[f"{LIBRARY_DIR}/libcuda.so.1"].startswith("ro,"), mounts
    # What the toolkit would mount: the compute libraries (each file of the names), nvidia-smi; no other
    # library of the directory. The hook put the directory in the image's loader cache.
    libs = _words(lines, "libs")[0].split()
    assert {f"libcuda.so.{DRIVER_VERSION}", "libcuda.so.1", "libnvidia-ptxjitcompiler.so.1",
            f"libnvidia-ptxjitcompiler.so.{DRIVER_VERSION}"} <= set(libs), libs
    assert "libunrelated.so.1" not in libs
    assert _words(lines, "binary") == ["nvidia-smi"]
    assert _words(lines, "conf.d") == ["absent"]  # the host's ldconfig -r wrote the cache, nothing else
    (cache,) = _words(lines, "ldcache")
    assert cache.strip().startswith("libcuda.so.1 ("), cache
    assert cache.endswith(f"=> {LIBRARY_DIR}/libcuda.so.1"), cache


def _check_enforcement(lines: str) -> None:
    """Exactly the limit fits, the next chunk is out of memory (2), the memory info is the limit; the
    claim's processes share it, and a killed one's bytes come back."""
    assert _words(lines, "first") == [
        f"info rc=0 free={LIMIT} total={LIMIT}",
        f"total rc=0 bytes={LIMIT}",
        f"fill count={LIMIT // CHUNK} rc=2",
        f"info rc=0 free=0 total={LIMIT}",
        "freeall bad=0",
        f"info rc=0 free={LIMIT} total={LIMIT}",
    ]
    # A second process of the claim (other lookup paths) sees what the first one holds.
    assert _words(lines, "second") == [
        f"info rc=0 free={LIMIT // 2} total={LIMIT}",
        "alloc rc=0",
        "alloc rc=2",
        "freeall bad=0",
    ]
    assert _words(lines, "exit") == ["holder 0", "victim 137"]
    assert _words(lines, "holder") == ["alloc rc=0", "ready", "freeall bad=0"]
    # The bytes of a process killed with SIGKILL come back to the claim: the whole limit fits again.
    assert _words(lines, "after") == ["alloc rc=0", f"info rc=0 free=0 total={LIMIT}"]


def _check_host_after(run: ContainerRun, claimed: str, other: str, device: FakeState) -> None:
    """The claim's ledger saw the container's peak and got every byte back; the device never held more."""
    device_usage = run.ledgers[claimed]
    assert device_usage.total_bytes == FAKE_DEVICE_MEMORY
    record = device_usage.claims.get(run.claim_uid)
    assert record is not None, device_usage
    assert (record.limit_bytes, record.used_bytes, record.peak_bytes, record.nprocs) == (LIMIT, 0, LIMIT, 0)
    assert device_usage.used_bytes == 0
    assert record.reclaimed_bytes == LIMIT // 2  # the killed process's; the others gave theirs back at exit
    assert run.ledgers[other].claims == {}  # nothing of the claim on the other GPU
    assert (device.peak(), device.allocated()) == (LIMIT, 0)


TWO_CLAIMS_SCRIPT = r"""
echo "files $(ls "$XPUSHARE_LIMITS_FILE" | tr '\n' ' ')"
export FAKE_CUDA_DEVICES=2
for order in "$FIRST,$SECOND" "$SECOND,$FIRST"; do
  export FAKE_CUDA_UUIDS="$order"
  cuda_client gpa 0 -- fill @CHUNK@ freeall | sed "s/^/$order 0 /"
  cuda_client gpa 1 -- fill @CHUNK@ freeall | sed "s/^/$order 1 /"
done
export FAKE_CUDA_DEVICES=1 FAKE_CUDA_UUIDS="$SECOND"
cuda_client gpa 0 -- fill @CHUNK@ freeall | sed "s/^/narrowed 0 /"
"""


def test_a_container_with_two_claims_keeps_each_device_s_limit_however_it_numbers_them(
    glibc_image: str,
    gpu_node: tuple[Plugin, dict[str, int]],
    kube_client: client.ApiClient,  # noqa: F811
    schemas_dir: Path,
    tmp_path: Path,
) -> None:
    """Two claims too big to share a GPU (48 and 40 of its 80 GiB), one container: both limits files are
    there, and each GPU keeps its own claim's limit whether the process sees it as device 0 or 1 (the
    driver's UUIDs decide, as with CUDA_VISIBLE_DEVICES reordered or narrowed)."""
    plugin, _minors = gpu_node
    (tmp_path / "fake").mkdir()
    driver = plugin.settings.driver_name
    allocate = make_allocator(kube_client, driver)
    claims = [allocate(name, memory=memory, cores="20", device_class=f"gpu.{driver}")
              for name, memory in (("e2e-big", "48Gi"), ("e2e-small", "40Gi"))]
    uids = [c["metadata"]["uid"] for c in claims]
    with KubeletClient(plugin.settings.registration_socket, driver) as kubelet:
        kubelet.register()
        answers = kubelet.prepare([ref(c) for c in claims]).claims
        assert [answers[u].error for u in uids] == ["", ""]
        ids = [i for u in uids for d in answers[u].devices for i in d.cdi_device_ids]
        for uid in uids:
            spec = cdi.spec_path(CDI_DIR, uid, cdi.kind_for(driver))
            validate_cdi_spec(json.loads(spec.read_text()), schemas_dir)
        first, second = (parse_limits(plugin.settings.paths.limits_file(u).read_text()).devices[0].uuid
                         for u in uids)
        assert first != second
        env = [f"FIRST={first}", f"SECOND={second}"]
        options = [*_options(tmp_path / "fake"), *(arg for e in env for arg in ("--env", e))]
        try:
            script = TWO_CLAIMS_SCRIPT.replace("@CHUNK@", str(CHUNK))
            output = podman_run(glibc_image, ids, ["sh", "-c", script], options)
        finally:
            assert all(a.error == "" for a in kubelet.unprepare([ref(c) for c in claims]).claims.values())
    assert sorted(_words(output, "files")[0].split()) == sorted(uids)
    big, small = 48 * GIB // CHUNK, 40 * GIB // CHUNK
    for order, counts in (((first, second), (big, small)), ((second, first), (small, big))):
        for ordinal, count in enumerate(counts):
            assert f"{order[0]},{order[1]} {ordinal} fill count={count} rc=2" in output, output
    assert f"narrowed 0 fill count={small} rc=2" in output, output


TOOLKIT_SCRIPT = r"""
for node in /dev/nvidia0 /dev/nvidia1 /dev/nvidiactl; do
  test -e $node && echo "node $node present" || echo "node $node absent"
done
env | grep -E '^(NVIDIA_VISIBLE_DEVICES|FROM_TOOLKIT)=' | sed 's/^/env /'
cuda_client dlsym -- fill @CHUNK@ info | sed 's/^/cuda /'
"""


@pytest.fixture
def toolkit_gpu_node(apiserver: ApiServer, tmp_path: Path) -> Iterator[tuple[Plugin, str]]:  # noqa: F811
    """Two GPUs on the fake host and a toolkit-style nvidia.com/gpu spec naming the first by its UUID (as
    ``nvidia-ctk cdi generate`` writes it), with the plugin finding it by itself (``auto``)."""
    host = tmp_path / "host"
    _fake_nvidia_host(host)
    inventory, minors = _inventory(tmp_path / "inventory.yaml")
    named = next(uuid for uuid, minor in minors.items() if minor == 0)
    libcuda = f"{LIBRARY_DIR}/libcuda.so.1"
    spec = {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [{"name": name, "containerEdits": {
            "deviceNodes": [{"path": "/dev/nvidia0", "hostPath": str(host / "dev/nvidia0")}]}}
            for name in ("0", named)],
        "containerEdits": {
            "env": ["NVIDIA_VISIBLE_DEVICES=void", "FROM_TOOLKIT=yes"],
            "deviceNodes": [{"path": "/dev/nvidiactl", "hostPath": str(host / "dev/nvidiactl")}],
            "mounts": [{"hostPath": str(host / libcuda.lstrip("/")), "containerPath": libcuda,
                        "options": ["ro", "nosuid", "nodev", "bind"]}],
        },
    }
    spec_file = CDI_DIR / f"nvidia-e2e-{tmp_path.name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    try:
        with running_plugin(apiserver, tmp_path, inventory, library_path(), nvidia_cdi_kind="auto") as plugin:
            yield plugin, named
    finally:
        spec_file.unlink(missing_ok=True)


def test_beside_the_toolkit_s_spec_the_claim_refers_to_its_device_and_still_enforces_the_limit(
    glibc_image: str,
    toolkit_gpu_node: tuple[Plugin, str],
    kube_client: client.ApiClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The toolkit's spec injects the GPU's node and the driver; ours only the shim, limits and ledgers."""
    plugin, named = toolkit_gpu_node
    (tmp_path / "fake").mkdir()
    driver = plugin.settings.driver_name
    # 48 of 80 GiB: the scheduler stand-in may pick either GPU; the test needs the one the toolkit names.
    allocate = make_allocator(kube_client, driver)
    claims = [allocate(f"e2e-tk-{i}", memory="48Gi", cores="20", device_class=f"gpu.{driver}")
              for i in range(2)]
    with KubeletClient(plugin.settings.registration_socket, driver) as kubelet:
        kubelet.register()
        answers = kubelet.prepare([ref(c) for c in claims]).claims
        uid = next(u for u, a in answers.items() if any(d.device_name == "gpu-0" for d in a.devices))
        ids = [i for d in answers[uid].devices for i in d.cdi_device_ids]
        spec = json.loads(cdi.spec_path(CDI_DIR, uid, cdi.kind_for(driver)).read_text())
        try:
            script = TOOLKIT_SCRIPT.replace("@CHUNK@", str(4 * GIB))
            output = podman_run(glibc_image, ids, ["sh", "-c", script], _options(tmp_path / "fake"))
        finally:
            assert all(a.error == "" for a in kubelet.unprepare([ref(c) for c in claims]).claims.values())
    assert f"nvidia.com/gpu={named}" in ids
    assert "deviceNodes" not in spec["containerEdits"]  # the toolkit's spec brings them
    assert not any(m["containerPath"].endswith("libcuda.so.1") for m in spec["containerEdits"]["mounts"])
    assert "node /dev/nvidia0 present" in output
    assert "node /dev/nvidia1 absent" in output
    assert "env FROM_TOOLKIT=yes" in output
    assert "env NVIDIA_VISIBLE_DEVICES=void" in output
    assert f"cuda fill count={48 // 4} rc=2" in output, output
    assert f"cuda info rc=0 free=0 total={48 * GIB}" in output, output
