"""At start the plugin removes its writers' stale temporary files and gives its directories explicit modes.

Reproductions from a security review: 60 kill -9 cycles of a writer left 59 ``.<name>.<random>.tmp``
files behind; under umask 000 the state directories were created 0777.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dra_driver.simulation.apiserver import ApiServer
from dra_driver.simulation.kubelet import KubeletClient
from kubeletplugin import cdi
from tests.integration.kubeletplugin.conftest import NodeDirs, make_allocator, ref, start_plugin


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def test_stale_temp_files_of_ours_are_removed_at_start_and_others_kept(
    apiserver: ApiServer, node_dirs: NodeDirs
) -> None:
    settings = node_dirs.settings()
    paths = settings.paths
    ours, others = [], []
    for directory, target in (
        (paths.checkpoint_dir, "0b4f-1.json"),
        (paths.quota_dir, "0b4f-1.json"),
        (paths.limits_dir, "0b4f-1.limits"),
        (paths.cdi_dir, cdi.spec_path(paths.cdi_dir, "0b4f-1", cdi.kind_for(settings.driver_name)).name),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        for n in range(3):  # what mkstemp(prefix=".<name>.", suffix=".tmp") leaves after a kill -9
            (directory / f".{target}.abc_12{n}x.tmp").write_bytes(b"half")
            ours.append(directory / f".{target}.abc_12{n}x.tmp")
    for name in (".nvidia.com-gpu.yaml.abcd1234.tmp", "other-driver.json", "notes.tmp"):
        (paths.cdi_dir / name).write_text("theirs")
        others.append(paths.cdi_dir / name)

    plugin = start_plugin(apiserver, settings)
    plugin.stop()

    assert [p for p in ours if p.exists()] == []
    assert [p.read_text() for p in others] == ["theirs"] * 3


def test_directories_get_explicit_modes_under_umask_000(
    apiserver: ApiServer, node_dirs: NodeDirs, kube_client: object, umask_000: None
) -> None:
    settings = node_dirs.settings()
    paths = settings.paths
    paths.quota_dir.mkdir(parents=True, mode=0o777)  # created loose by an older version
    os.chmod(paths.quota_dir, 0o777)  # noqa: S103 - the damage under test
    plugin = start_plugin(apiserver, settings)
    try:
        with KubeletClient(settings.registration_socket) as kubelet:
            kubelet.register()
            claim = make_allocator(kube_client)("c", memory="4Gi", cores="5")  # type: ignore[arg-type]
            uid = claim["metadata"]["uid"]
            assert kubelet.prepare([ref(claim)]).claims[uid].error == ""
        modes = {
            "state": _mode(paths.state_dir),
            "checkpoint": _mode(paths.checkpoint_dir),
            "quota": _mode(paths.quota_dir),
            "run": _mode(paths.run_dir),
            "limits": _mode(paths.limits_dir),
            "devices": _mode(paths.devices_dir),
            "cdi": _mode(paths.cdi_dir),
            "record": _mode(paths.checkpoint_record(uid)),
            "limits file": _mode(paths.limits_file(uid)),
            "spec": _mode(cdi.spec_path(paths.cdi_dir, uid, cdi.kind_for(settings.driver_name))),
            "dra socket": _mode(settings.dra_socket),
        }
    finally:
        plugin.stop()
    assert modes == {
        "state": 0o700,
        "checkpoint": 0o700,
        "quota": 0o700,
        "run": 0o755,
        "limits": 0o755,
        "devices": 0o755,
        "cdi": 0o755,
        "record": 0o600,
        "limits file": 0o444,
        "spec": 0o644,
        "dra socket": 0o600,
    }
