"""A real Kubernetes control plane from ``../shared/k8s`` (etcd, kube-apiserver, kube-scheduler,
kube-controller-manager; no kubelet) for the real-cluster test tier and the real-cluster benchmark.

``control_plane(name, gates)`` runs ``up.sh`` in a fresh directory and always runs ``down.sh`` (and
removes the directory) afterwards, also after failures. Without ``../shared/k8s`` it raises
``NoControlPlane``, whose message names the path; callers skip with it. Components can be restarted
with extra flags (``restart_component``), as the benchmark does to raise the clients' QPS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from controller.deviceclasses import device_classes

K8S_DIR = Path(__file__).resolve().parents[3] / "shared" / "k8s"
DRIVER = "xpushare.io"
ALL_GATES = (
    "DynamicResourceAllocation=true,DRAConsumableCapacity=true,DRAPartitionableDevices=true,"
    "DRADeviceTaints=true,DRAPrioritizedList=true,DRAAdminAccess=true"
)
NO_CONSUMABLE_GATES = ALL_GATES.replace("DRAConsumableCapacity=true", "DRAConsumableCapacity=false")
ABSENT = f"no real Kubernetes control plane: {K8S_DIR} (../shared/k8s) is absent"

T = TypeVar("T")


class NoControlPlane(RuntimeError):  # noqa: N818 - reads as the reason to skip
    """``../shared/k8s`` is not beside the project."""


class ControlPlaneError(RuntimeError):
    """``up.sh`` failed, or a component did not come back."""


def available() -> bool:
    return (K8S_DIR / "up.sh").is_file()


@dataclass
class Cluster:
    """A running control plane: its state directory, kubeconfig and an admin ApiClient."""

    dir: Path
    kubeconfig: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def resource(self) -> client.ResourceV1Api:
        return client.ResourceV1Api(self.api)

    def json(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def new_client(self) -> client.ApiClient:
        """Another admin client (each has its own connection pool)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call,no-any-return]


@contextmanager
def control_plane(
    name: str, gates: str = ALL_GATES, env: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """Start a control plane with ``gates``; stop it and remove its directory on the way out."""
    if not available():
        raise NoControlPlane(ABSENT)
    state = Path(tempfile.mkdtemp(prefix=f"xps-k8s-{name}-"))
    try:
        done = subprocess.run(
            [str(K8S_DIR / "up.sh"), str(state)],
            env={**os.environ, **(env or {}), "FEATURE_GATES": gates},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise ControlPlaneError(f"{K8S_DIR}/up.sh failed ({done.returncode}): {done.stderr[-2000:]}")
        kubeconfig = Path(done.stdout.strip().splitlines()[-1].removeprefix("KUBECONFIG="))
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        try:
            yield Cluster(state, kubeconfig, api)
        finally:
            api.close()
    finally:
        subprocess.run([str(K8S_DIR / "down.sh"), str(state)], capture_output=True, timeout=60, check=False)
        shutil.rmtree(state, ignore_errors=True)


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0, every_s: float = 0.2) -> T:
    """Poll ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def install_device_classes(cluster: Cluster) -> None:
    for device_class in device_classes(DRIVER):
        try:
            cluster.resource.create_device_class(device_class)  # type: ignore[arg-type]
        except ApiException as err:
            if err.status != 409:
                raise


NODE_ALLOCATABLE = {"cpu": "64", "memory": "512Gi", "pods": "110"}


def create_node(
    cluster: Cluster, name: str, labels: Mapping[str, str] | None = None, max_pods: int = 110
) -> None:
    """A hand-made Node the scheduler can place ``max_pods`` pods on (allocatable set, Ready condition).

    Its ``node.kubernetes.io/not-ready`` taint stays (nothing runs the node lifecycle controller): pods
    that should land on it tolerate it.
    """
    metadata = client.V1ObjectMeta(name=name, labels=dict(labels or {}))
    cluster.core.create_node(client.V1Node(metadata=metadata))
    # The scheduler fits pods against allocatable; a hand-made Node has none until its status says so.
    allocatable = {**NODE_ALLOCATABLE, "pods": str(max_pods)}
    cluster.core.patch_node_status(
        name,
        {
            "status": {
                "capacity": allocatable,
                "allocatable": allocatable,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            }
        },
    )


def component_argv(cluster: Cluster, name: str) -> list[str]:
    """The command line up.sh started ``name`` with (read from /proc while it runs)."""
    pid = int((cluster.dir / f"{name}.pid").read_text())
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def stop_component(cluster: Cluster, name: str, timeout_s: float = 10.0) -> None:
    """Stop ``name`` by its PID file (as down.sh does) and wait until it is gone."""
    pid_file = cluster.dir / f"{name}.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        return
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    pid_file.unlink()


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child (a component this process restarted); else just probe.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of another parent still answers kill(0): look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def start_component(cluster: Cluster, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` as component ``name``: log appended to DIR/logs, PID file for down.sh."""
    log = (cluster.dir / "logs" / f"{name}.log").open("ab")
    try:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    (cluster.dir / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


def restart_component(
    cluster: Cluster, name: str, extra_flags: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Restart ``name`` with ``extra_flags`` appended to up.sh's flags (a later flag wins)."""
    argv = component_argv(cluster, name)
    stop_component(cluster, name)
    return start_component(cluster, name, [*argv, *extra_flags])
