"""The steps of ``xpushare demo``, each printing what a cluster operator would look at.

The demo runs the whole path of a claim on one simulated node, in this process and with real parts: the
embedded API server, the node plugin on real unix sockets (publishing its pool through the
SlicePublisher), the scheduler stand-in allocating claims, a kubelet stand-in preparing them over gRPC,
and the CDI spec and limits file the plugin wrote. Steps are small functions run in order by
``run_demo``; the end-to-end test runs the demo as a user does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import client as k8s

from controller.deviceclasses import device_classes
from controller.settings import SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.core.devices import GIB, Device
from dra_driver.core.discovery.base import open_backend
from dra_driver.simulation import workloads
from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from dra_driver.simulation.scheduler import SimScheduler
from kubeletplugin.plugin import Plugin
from kubeletplugin.settings import PluginSettings
from kubeletplugin.status import node_status, render_table
from shim import library_path
from shim.limits import read_limits_file

DEMO_NODE = "demo-node"
NAMESPACE = "default"
# Two tenants on one simulated Ascend 910B3 and one on the H100, as a user would ask for them.
TENANTS = (
    ("trainer", "npu.xpushare.io", "16Gi", "25"),
    ("notebook", "npu.xpushare.io", "8Gi", "10"),
    ("inference", "gpu.xpushare.io", "20Gi", "30"),
    ("batch", "gpu.xpushare.io", "40Gi", "70"),
)
# One pod whose container has two claims (a pipeline's two stages on the Ascend NPUs).
PIPELINE = "pipeline"
PIPELINE_CLAIMS = (("encoder", "npu.xpushare.io", "8Gi", "20"), ("decoder", "npu.xpushare.io", "12Gi", "20"))
SHOWN_TENANTS = ("trainer", "inference")  # one Ascend and one NVIDIA claim: their CDI specs differ
GPU_TENANTS = ("inference", "batch")  # both on the simulated H100: the enforcement steps run them
CHUNK_BYTES = 4 * GIB
FAKE_GPU_BYTES = 80 * GIB
FAKE_NPU_BYTES = 64 * GIB


def heading(out: TextIO, text: str) -> None:
    print(f"\n=== {text}", file=out)


def discover_devices(inventory: Path | None, out: TextIO) -> list[Device]:
    options: dict[str, Any] = {} if inventory is None else {"inventory": str(inventory)}
    backend = open_backend("mock", environ={}, **options)
    try:
        devices = backend.discover()
    finally:
        backend.close()
    heading(out, f"discovered {len(devices)} devices on {DEMO_NODE}")
    for device in devices:
        print(f"  {device.name:8} {device.model:18} {device.memory_mib:>7} MiB  {device.cores:>4} cores"
              f"  {device.device_node}  {device.health.value}", file=out)
    return devices


def show_slices(devices: list[Device], mode: SliceMode, out: TextIO) -> list[dict[str, Any]]:
    slices = build_slices(DEMO_NODE, devices, mode, SliceSettings(mode=mode))
    heading(out, f"ResourceSlices that would be published ({mode.value} mode)")
    yaml.safe_dump_all(slices, out, sort_keys=False)
    return slices


@contextmanager
def demo_node(api: ApiServer, work: Path, inventory: Path | None, mode: SliceMode) -> Iterator[Plugin]:
    """The node plugin of the demo node, its paths in ``work`` (sockets in a short temp dir)."""
    sockets = Path(tempfile.mkdtemp(prefix="xps-"))
    boot_id = work / "boot_id"
    boot_id.write_text(f"{uuid.uuid4()}\n")
    options: dict[str, Any] = {} if inventory is None else {"inventory": str(inventory)}
    settings = PluginSettings(
        node_name=DEMO_NODE, registry_dir=sockets / "registry", plugin_dir=sockets / "plugin",
        cdi_dir=work / "cdi", state_dir=work / "state", run_dir=work / "run", boot_id_path=boot_id,
        discovery_backend="mock", discovery_options=options, slice_mode=mode, shim_path=library_path(),
    )
    plugin = Plugin(settings, backend=open_backend("mock", environ={}, **options), client=api.client())
    plugin.start()
    try:
        yield plugin
    finally:
        plugin.stop()
        for leftover in sorted(sockets.rglob("*"), reverse=True):
            leftover.unlink() if not leftover.is_dir() else leftover.rmdir()
        sockets.rmdir()


def as_json(api: k8s.ApiClient, obj: Any) -> Any:
    """The official client's typed objects as the API's JSON shape (what users see with kubectl)."""
    return api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def create_node_and_classes(api: k8s.ApiClient) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": DEMO_NODE}}
    k8s.CoreV1Api(api).create_node(node)  # type: ignore[arg-type]  # the client takes JSON bodies too
    for device_class in device_classes():
        k8s.ResourceV1Api(api).create_device_class(device_class)  # type: ignore[arg-type]


def show_published_slices(api: k8s.ApiClient, out: TextIO) -> None:
    listing = k8s.ResourceV1Api(api).list_resource_slice(field_selector=f"spec.nodeName={DEMO_NODE}")
    slices = as_json(api, listing)["items"]
    heading(out, f"ResourceSlices in the API server: {len(slices)} published by the node plugin")
    for item in slices:
        for device in item["spec"].get("devices", []):
            capacity = {name: cap["value"] for name, cap in device.get("capacity", {}).items()}
            shared = " shared" if device.get("allowMultipleAllocations") else ""
            print(f"  {item['metadata']['name']}: {device['name']:6} capacity {capacity}{shared}", file=out)


def claim_spec(device_class: str, memory: str, cores: str, mode: SliceMode) -> dict[str, Any]:
    """Consumable mode asks the scheduler for capacity; the other modes take a device (or partition)
    and carry the limits in an opaque SharingConfig, as users of those modes do."""
    exactly: dict[str, Any] = {"deviceClassName": device_class}
    devices: dict[str, Any] = {"requests": [{"name": "accel", "exactly": exactly}]}
    if mode is SliceMode.CONSUMABLE:
        exactly["capacity"] = {"requests": {"memory": memory, "cores": cores}}
        return {"devices": devices}
    memory_mib = int(memory.removesuffix("Gi")) * 1024
    parameters = {"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig",
                  "memoryMiB": memory_mib, "corePercent": int(cores)}
    opaque = {"driver": "xpushare.io", "parameters": parameters}
    devices["config"] = [{"requests": ["accel"], "opaque": opaque}]
    return {"devices": devices}


def template_and_pod(name: str, spec: dict[str, Any]) -> tuple[Any, Any]:
    """A ResourceClaimTemplate with the claim ``spec``, and a pod that uses it."""
    template = {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"spec": spec},
    }
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"claims": [{"name": "accel"}]}},
            ],
            "resourceClaims": [{"name": "accel", "resourceClaimTemplateName": name}],
        },
    }
    return template, pod


def two_claim_pod(mode: SliceMode) -> tuple[list[Any], Any]:
    """The pipeline pod: one container that uses two claims, each from its own template."""
    templates, claims = [], []
    for stage, device_class, memory, cores in PIPELINE_CLAIMS:
        template, _ = template_and_pod(f"{PIPELINE}-{stage}", claim_spec(device_class, memory, cores, mode))
        templates.append(template)
        claims.append({"name": stage, "resourceClaimTemplateName": f"{PIPELINE}-{stage}"})
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": PIPELINE, "namespace": NAMESPACE},
        "spec": {
            "containers": [{"name": "main", "image": "busybox",
                            "resources": {"claims": [{"name": c["name"]} for c in claims]}}],
            "resourceClaims": claims,
        },
    }
    return templates, pod


def submit_pods(api: k8s.ApiClient, mode: SliceMode, out: TextIO) -> None:
    heading(out, "pods submitted")
    resource, core = k8s.ResourceV1Api(api), k8s.CoreV1Api(api)
    for name, device_class, memory, cores in TENANTS:
        template, pod = template_and_pod(name, claim_spec(device_class, memory, cores, mode))
        resource.create_namespaced_resource_claim_template(NAMESPACE, template)
        core.create_namespaced_pod(NAMESPACE, pod)
        print(f"  pod {name}: {memory} and {cores}% of a {device_class} device", file=out)
    templates, pod = two_claim_pod(mode)
    for template in templates:
        resource.create_namespaced_resource_claim_template(NAMESPACE, template)
    core.create_namespaced_pod(NAMESPACE, pod)
    stages = " and ".join(f"{stage} {memory}/{cores}%" for stage, _, memory, cores in PIPELINE_CLAIMS)
    print(f"  pod {PIPELINE}: one container with two claims on npu.xpushare.io devices ({stages})", file=out)


def schedule(api: k8s.ApiClient, out: TextIO) -> list[ClaimRef]:
    report = SimScheduler(api).schedule_once()
    heading(out, "scheduled: claims allocated and pods bound")
    for pod, node in sorted(report.bound.items()):
        print(f"  pod {pod} -> node {node}", file=out)
    for pod, reason in sorted(report.pending.items()):
        print(f"  pod {pod} pending: {reason}", file=out)
    listing = k8s.ResourceV1Api(api).list_namespaced_resource_claim(NAMESPACE)
    claims = sorted(as_json(api, listing)["items"], key=lambda c: c["metadata"]["name"])
    allocated = [c for c in claims if c.get("status", {}).get("allocation")]
    for claim in allocated:
        for result in claim["status"]["allocation"]["devices"]["results"]:
            share = ""
            if result.get("shareID"):
                share = f" consumed {result['consumedCapacity']} shareID {result['shareID']}"
            device = f"{result['pool']}/{result['device']}"
            print(f"  claim {claim['metadata']['name']}: {device}{share}", file=out)
    return [ClaimRef.of(claim) for claim in allocated]


def prepare(plugin: Plugin, claims: list[ClaimRef], out: TextIO) -> KubeletClient:
    kubelet = KubeletClient(plugin.settings.registration_socket)
    info = kubelet.register()
    heading(out, f"kubelet registered the plugin ({info.name}, {kubelet.version}) and prepared the claims")
    response = kubelet.prepare(claims)
    for claim in claims:
        answer = response.claims[claim.uid]
        if answer.error:
            print(f"  claim {claim.name}: ERROR {answer.error}", file=out)
            continue
        for device in answer.devices:
            print(f"  claim {claim.name}: {device.pool_name}/{device.device_name} "
                  f"CDI {list(device.cdi_device_ids)}", file=out)
    return kubelet


def show_claim_files(plugin: Plugin, claim: ClaimRef, out: TextIO) -> None:
    spec = next(plugin.settings.cdi_dir.glob(f"*{claim.uid}*"))
    heading(out, f"CDI spec the container runtime gets for claim {claim.name} ({spec.name})")
    print(json.dumps(json.loads(spec.read_text()), indent=2), file=out)
    limits = plugin.settings.paths.limits_file(claim.uid)
    heading(out, f"read-only limits file the shim enforces ({limits.name}, mode {limits.stat().st_mode:o})")
    print(limits.read_text().rstrip(), file=out)


def claim_environment(plugin: Plugin, claim: ClaimRef, work: Path) -> dict[str, str]:
    """What the claim's container would run with: the shim preloaded and the claim's limits, on the fake
    CUDA runtime (its ledger and the board reached through their host paths: no container runtime here)."""
    limits = plugin.settings.paths.limits_file(claim.uid)
    host_view = work / "hostview" / limits.name
    workloads.host_view_limits(limits, plugin.settings.paths, host_view)
    # On the host there is no /etc/xpushare/limits: the simulation build reads the claim's file from
    # XPUSHARE_LIMITS_FILE, which the packaged library (the one the CDI spec mounts) ignores.
    env = workloads.cuda_environment(workloads.build_simulation_shim(), host_view, work)
    env["FAKE_CUDA_MEMORY"] = str(FAKE_GPU_BYTES)
    return env


def gpu_claims(claims: list[ClaimRef]) -> list[ClaimRef]:
    """The prepared claims of the GPU tenants, in TENANTS order (a pod left pending has none)."""
    by_tenant = {c.name.split("-accel-")[0]: c for c in claims}
    return [by_tenant[name] for name in GPU_TENANTS if name in by_tenant]


def enforce_memory(plugin: Plugin, claim: ClaimRef, work: Path, out: TextIO) -> None:
    limits = read_limits_file(plugin.settings.paths.limits_file(claim.uid))
    count = limits.devices[0].memory_limit_bytes // CHUNK_BYTES + 1  # one chunk more than the limit
    limited = workloads.run_memory_workload(claim_environment(plugin, claim, work), CHUNK_BYTES, count)
    heading(out, f"memory limit enforced: {claim.name} allocates {count} x 4 GiB on the simulated H100")
    for number, code in enumerate(limited.codes, start=1):
        verdict = "ok" if code == 0 else f"refused: CUDA_ERROR_OUT_OF_MEMORY ({code})" if code == 2 else code
        print(f"  allocation {number}: {verdict}", file=out)
    print(f"  cuMemGetInfo in the container: total {limited.total_bytes // GIB} GiB, "
          f"free {limited.free_bytes // GIB} GiB (the device has {FAKE_GPU_BYTES // GIB} GiB)", file=out)


def two_claims_in_one_container(plugin: Plugin, claims: list[ClaimRef], work: Path, out: TextIO) -> None:
    """The pipeline container on the fake Ascend runtime: both claims' limits files in one directory, each
    chip numbered 0..n-1 by the runtime and found by its physical id."""
    stages = [c for c in claims if c.name.startswith(f"{PIPELINE}-")]
    if len(stages) != len(PIPELINE_CLAIMS):
        return  # a stage left pending (exclusive mode: no whole NPU left)
    view = work / "hostview" / PIPELINE
    per_chip: dict[int, list[tuple[str, int]]] = {}
    for claim in stages:
        limits = plugin.settings.paths.limits_file(claim.uid)
        workloads.host_view_limits(limits, plugin.settings.paths, view / claim.uid)
        for device in read_limits_file(limits).devices:
            chip = device.index if device.physical is None else device.physical
            per_chip.setdefault(chip, []).append((claim.name, device.memory_limit_bytes))
    chips = sorted(per_chip)
    env = workloads.ascend_environment(workloads.build_simulation_shim(), view, work, chips, FAKE_NPU_BYTES)
    results = workloads.run_npu_memory_workload(env, GIB, len(chips))
    heading(out, f"one container, two claims: /etc/xpushare/limits.d holds {len(stages)} files; "
                 "the shim finds each chip by its physical id")
    for result, chip in zip(results, chips, strict=True):
        held = " + ".join(f"{name} {memory // GIB} GiB" for name, memory in per_chip[chip])
        print(f"  NPU {result.device} (physical chip {chip}; {held}): {result.chunks} x 1 GiB fit, the next "
              f"refused ({result.code}); aclrtGetMemInfo total {result.total_bytes // GIB} GiB", file=out)


def split_compute(plugin: Plugin, tenants: list[ClaimRef], work: Path, out: TextIO) -> None:
    envs = [claim_environment(plugin, claim, work) for claim in tenants]
    seen: list[str] = []

    def status_while_running(epoch_ns: int) -> None:  # what `xpushare status` shows on the node meanwhile
        time.sleep(max(0.0, (epoch_ns - time.monotonic_ns()) / 1e9 + 0.5))
        seen.append(render_table(node_status(plugin.settings.paths, window=1.0)))

    shares = workloads.split_shares(envs, seconds=2.0, during=status_while_running)
    heading(out, "compute shared by measured device time: both claims saturate the simulated H100")
    requested = {name: cores for name, _, _, cores in TENANTS}
    for claim, share in zip(tenants, shares, strict=True):
        asked = requested[claim.name.split("-accel-")[0]]
        print(f"  {claim.name}: requested {asked}%, got {share}% of the device", file=out)
    heading(out, "xpushare status on the node while they ran (the node's files only, no API server)")
    print("\n".join(seen), file=out)


def enforce(plugin: Plugin, claims: list[ClaimRef], work: Path, mode: SliceMode, out: TextIO) -> None:
    """Run workloads inside the prepared claims on the simulated devices, where they can be built."""
    try:
        workloads.require_simulated_devices()
    except workloads.WorkloadUnavailable as err:
        heading(out, f"enforcement steps skipped: {err}")
        return
    tenants = gpu_claims(claims)
    if tenants:
        enforce_memory(plugin, tenants[0], work, out)
    two_claims_in_one_container(plugin, claims, work, out)
    if mode is SliceMode.CONSUMABLE and len(tenants) == len(GPU_TENANTS):
        split_compute(plugin, tenants, work, out)  # the other modes give each tenant a device of its own


def unprepare(kubelet: KubeletClient, plugin: Plugin, claims: list[ClaimRef], out: TextIO) -> None:
    response = kubelet.unprepare(claims)
    errors = [answer.error for answer in response.claims.values() if answer.error]
    left = list(plugin.settings.cdi_dir.glob("*"))
    heading(out, f"pods deleted: claims unprepared ({len(errors)} errors, {len(left)} CDI specs left)")


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    mode = SliceMode(args.mode)
    devices = discover_devices(args.inventory, out)
    show_slices(devices, mode, out)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xpushare-demo-")))
        server = stack.enter_context(ApiServer())
        api = stack.enter_context(server.client())
        create_node_and_classes(api)
        plugin = stack.enter_context(demo_node(server, work, args.inventory, mode))
        show_published_slices(api, out)
        submit_pods(api, mode, out)
        claims = schedule(api, out)
        kubelet = stack.enter_context(prepare(plugin, claims, out))
        for claim in claims:
            if claim.name.startswith(SHOWN_TENANTS):
                show_claim_files(plugin, claim, out)
        enforce(plugin, claims, work, mode, out)
        unprepare(kubelet, plugin, claims, out)
    return 0
