"""The plugin as a real process: kill -9 between prepare and unprepare loses nothing, and SIGTERM cleans up.

The kubelet never re-prepares a running pod's claim after a plugin restart, so the restarted plugin must
re-create the claim's CDI spec (its directory is tmpfs) and limits file from its checkpoint alone, clean
up claims deleted while it was down, and still unprepare what it prepared before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin import cdi
from kubeletplugin.checkpoint_store import CheckpointStore
from tests.integration.kubeletplugin.conftest import NODE, NS, NodeDirs, kubeconfig_for, make_allocator, ref

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class PluginProcess:
    def __init__(self, node: NodeDirs, kubeconfig: Path) -> None:
        s = node.settings()
        self.settings = s
        self.command = [
            sys.executable,
            "-m",
            "dra_driver",
            "--log-level",
            "DEBUG",
            "kubelet-plugin",
            "--node-name",
            NODE,
            "--registry-dir",
            str(s.registry_dir),
            "--plugin-dir",
            str(s.plugin_dir),
            "--cdi-dir",
            str(s.cdi_dir),
            "--state-dir",
            str(s.state_dir),
            "--run-dir",
            str(s.run_dir),
            "--boot-id-path",
            str(s.boot_id_path),
            "--device-root",
            str(s.device_root),
            "--driver-root",
            str(s.driver_root),
            "--shim-path",
            str(s.shim_path),
            "--discovery-backend",
            "mock",
            "--inventory",
            str(node.inventory),
            "--kubeconfig",
            str(kubeconfig),
            "--health-interval",
            "1",
            "--metrics-address",
            "127.0.0.1:0",
        ]
        self.log = node.root / "plugin.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)

    def signal(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def plugin_process(apiserver: ApiServer, node_dirs: NodeDirs) -> Iterator[PluginProcess]:
    process = PluginProcess(node_dirs, kubeconfig_for(apiserver, node_dirs.root / "kubeconfig"))
    yield process
    if process.process is not None and process.process.poll() is None:
        process.process.kill()
        process.process.wait(timeout=10)


def _register(process: PluginProcess) -> KubeletClient:
    kubelet = KubeletClient(process.settings.registration_socket)
    try:
        kubelet.register(timeout_s=30)
    except Exception:
        print(process.logs())
        raise
    return kubelet


def test_kill_9_between_prepare_and_unprepare_loses_nothing(
    plugin_process: PluginProcess, kube_client: client.ApiClient
) -> None:
    s = plugin_process.settings
    plugin_process.start()
    allocate = make_allocator(kube_client)
    with _register(plugin_process) as kubelet:
        kept, deleted = (
            allocate("kept", memory="16Gi", cores="25"),
            allocate("deleted", memory="8Gi", cores="10"),
        )
        response = kubelet.prepare([ref(kept), ref(deleted)])
        assert {c.error for c in response.claims.values()} == {""}
    kept_uid, deleted_uid = kept["metadata"]["uid"], deleted["metadata"]["uid"]
    spec_before = cdi.spec_path(s.cdi_dir, kept_uid).read_text()
    limits_before = s.paths.limits_file(kept_uid).read_text()

    assert plugin_process.signal(signal.SIGKILL) == -signal.SIGKILL
    for path in s.cdi_dir.iterdir():  # the CDI directory is tmpfs: a node reboot empties it
        path.unlink()
    s.paths.limits_file(kept_uid).unlink()
    client.CoreV1Api(kube_client).delete_namespaced_pod("deleted-pod", NS)
    client.ResourceV1Api(kube_client).delete_namespaced_resource_claim("deleted", NS)

    plugin_process.start()
    with _register(plugin_process) as kubelet:
        assert cdi.spec_path(s.cdi_dir, kept_uid).read_text() == spec_before
        assert s.paths.limits_file(kept_uid).read_text() == limits_before
        assert not cdi.spec_path(s.cdi_dir, deleted_uid).exists()
        again = kubelet.prepare([ref(kept)])
        assert again.claims[kept_uid] == response.claims[kept_uid]
        assert kubelet.unprepare([ref(kept)]).claims[kept_uid].error == ""

    assert plugin_process.signal(signal.SIGTERM) == 0, plugin_process.logs()
    assert list(s.cdi_dir.iterdir()) == []
    assert list(s.paths.limits_dir.iterdir()) == []
    assert CheckpointStore(s.paths.checkpoint_dir, "any").load() == {}
    assert not s.dra_socket.exists()
    assert not s.registration_socket.exists()
    assert "claim unprepared at start" in plugin_process.logs()


def test_corrupt_checkpoint_is_reported_with_an_event_and_rebuilt(
    plugin_process: PluginProcess, kube_client: client.ApiClient
) -> None:
    s = plugin_process.settings
    plugin_process.start()
    with _register(plugin_process) as kubelet:
        claim = make_allocator(kube_client)("survivor", memory="4Gi", cores="5")
        assert kubelet.prepare([ref(claim)]).claims[claim["metadata"]["uid"]].error == ""
    assert plugin_process.signal(signal.SIGKILL) == -signal.SIGKILL
    s.paths.checkpoint_record(claim["metadata"]["uid"]).write_bytes(b'{"version": "v1", "checksum": "0"}')

    plugin_process.start()
    with _register(plugin_process):
        events = client.CoreV1Api(kube_client).list_namespaced_event("default").items
        assert "CheckpointCorrupt" in [e.reason for e in events]
        rebuilt = CheckpointStore(s.paths.checkpoint_dir, "any").load()
        assert list(rebuilt) == [claim["metadata"]["uid"]]
        assert json.loads(cdi.spec_path(s.cdi_dir, claim["metadata"]["uid"]).read_text())["devices"]
    assert plugin_process.signal(signal.SIGTERM) == 0
    assert "checkpoint corrupt" in plugin_process.logs()


def test_kill_9_cycles_leave_no_stale_temp_files(
    plugin_process: PluginProcess, kube_client: client.ApiClient
) -> None:
    """A writer killed between mkstemp and rename leaves ``.<name>.<random>.tmp``; the next start removes
    it (before: 59 such files after 60 cycles)."""
    s = plugin_process.settings
    temps = [
        s.paths.checkpoint_dir / ".0b4f-1.json.a1b2c3d4.tmp",
        s.paths.limits_dir / ".0b4f-1.limits.a1b2c3d4.tmp",
        s.cdi_dir / f".{cdi.spec_path(s.cdi_dir, '0b4f-1').name}.a1b2c3d4.tmp",
    ]
    for _cycle in range(3):
        plugin_process.start()
        with _register(plugin_process):
            assert [t for t in temps if t.exists()] == [], plugin_process.logs()
        assert plugin_process.signal(signal.SIGKILL) == -signal.SIGKILL
        for temp in temps:  # what the killed writer leaves
            temp.parent.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(b"half")
    plugin_process.start()
    with _register(plugin_process):
        assert [t for t in temps if t.exists()] == []
    assert plugin_process.signal(signal.SIGTERM) == 0
