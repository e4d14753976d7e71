"""Damaged state files never crash-loop the plugin: each is reported, removed and rebuilt.

Reproductions from a security review: a 400 KB deeply nested checkpoint record (``RecursionError`` in the
JSON decoder) or a directory named ``<uid>.json`` in the checkpoint directory made 3 of 3 starts fail.
The same damage in the quota directory must not stop the start either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes import client

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin import cdi
from kubeletplugin.checkpoint_store import CheckpointStore
from kubeletplugin.quota import read_quota_record
from tests.integration.kubeletplugin.conftest import NodeDirs, make_allocator, ref, start_plugin

NESTED = b"[" * 200_000 + b"]" * 200_000  # 400 KB: json.loads raises RecursionError


def _directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "inside").write_text("x")


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(NESTED),
        _directory,
        _fifo,
        lambda p: p.write_bytes(b"{" + b" " * (2 << 20) + b"}"),
    ],
    ids=["nested-400k", "directory", "fifo", "over-size-cap"],
)
def test_a_damaged_checkpoint_record_is_reported_and_rebuilt_at_every_start(
    apiserver: ApiServer, node_dirs: NodeDirs, kube_client: client.ApiClient, damage: object
) -> None:
    settings = node_dirs.settings()
    plugin = start_plugin(apiserver, settings)
    with KubeletClient(settings.registration_socket) as kubelet:
        kubelet.register()
        claim = make_allocator(kube_client)("survivor", memory="4Gi", cores="5")
        uid = claim["metadata"]["uid"]
        assert kubelet.prepare([ref(claim)]).claims[uid].error == ""
    plugin.stop()
    record = settings.paths.checkpoint_record(uid)
    assert callable(damage)

    for _start in range(3):
        damage(record)
        plugin = start_plugin(apiserver, settings)
        try:
            assert plugin.recovery is not None
            assert plugin.recovery.corrupt is not None
            assert f"{uid}.json" in plugin.recovery.corrupt
            assert plugin.recovery.rebuilt == [uid]
            assert record.is_file()
            assert list(CheckpointStore(settings.paths.checkpoint_dir, "any").load()) == [uid]
            assert cdi.spec_path(settings.cdi_dir, uid).is_file()
        finally:
            plugin.stop()
    events = client.CoreV1Api(kube_client).list_namespaced_event("default").items
    assert "CheckpointCorrupt" in [e.reason for e in events]


@pytest.mark.parametrize(
    "damage", [lambda p: p.write_bytes(NESTED), _directory, _fifo], ids=["nested", "dir", "fifo"]
)
def test_a_damaged_quota_record_is_reported_and_removed_at_start(
    apiserver: ApiServer, node_dirs: NodeDirs, kube_client: client.ApiClient, damage: object
) -> None:
    settings = node_dirs.settings()
    plugin = start_plugin(apiserver, settings)
    with KubeletClient(settings.registration_socket) as kubelet:
        kubelet.register()
        claim = make_allocator(kube_client)("survivor", memory="4Gi", cores="5")
        uid = claim["metadata"]["uid"]
        assert kubelet.prepare([ref(claim)]).claims[uid].error == ""
    plugin.stop()
    quota_record = settings.paths.quota_record(uid)
    quota_record.parent.mkdir(parents=True, exist_ok=True)
    assert callable(damage)
    damage(quota_record)
    assert read_quota_record(settings.paths.quota_dir, uid) == {}  # read at prepare: never raises

    plugin = start_plugin(apiserver, settings)
    try:
        assert plugin.recovery is not None
        assert plugin.recovery.restored == [uid]
        assert plugin.recovery.corrupt_quota is not None
        assert f"{uid}.json" in plugin.recovery.corrupt_quota
        assert not quota_record.exists()
        assert not quota_record.is_symlink()
        with KubeletClient(settings.registration_socket) as kubelet:
            kubelet.register()
            assert kubelet.unprepare([ref(claim)]).claims[uid].error == ""
    finally:
        plugin.stop()
    events = client.CoreV1Api(kube_client).list_namespaced_event("default").items
    assert "QuotaRecordCorrupt" in [e.reason for e in events]
