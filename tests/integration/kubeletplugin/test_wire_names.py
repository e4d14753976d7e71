"""Claim UIDs, names and namespaces from the kubelet never reach a file name unchecked.

Reproduction from a security review: ``NodeUnprepareResources`` with uid ``../../victim/precious`` deleted
``<root>/victim/precious.json`` (the checkpoint record path ``<state>/checkpoint/<uid>.json`` walked out of
the plugin's directories). Each bad claim must get its own error naming the field and the allowed form,
while the good claims of the same call are served, in both API versions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.simulation.kubelet import ClaimRef, KubeletClient
from kubeletplugin import cdi
from kubeletplugin.paths import UnsafeFileNameError, limits_path, quota_record_path, record_path
from kubeletplugin.plugin import Plugin
from tests.integration.kubeletplugin.conftest import NS, Allocate, ref

ESCAPE_UID = "../../victim/precious"


def _victims(root: Path) -> list[Path]:
    """Files that ``<state|run>/<dir>/<ESCAPE_UID>.<suffix>`` would name: outside every plugin dir."""
    victim = root / "victim"
    victim.mkdir(exist_ok=True)
    paths = [victim / "precious.json", victim / "precious.limits"]
    for path in paths:
        path.write_text("keep me\n")
    return paths


BAD_CLAIMS = [
    (
        ClaimRef(NS, "escape", ESCAPE_UID),
        "claim uid '../../victim/precious' is not valid; allowed: a Kubernetes UID",
    ),
    (ClaimRef(NS, "dots", ".."), "claim uid '..' is not valid; allowed: a Kubernetes UID"),
    (ClaimRef(NS, "empty", ""), "claim uid '' is not valid; allowed: a Kubernetes UID"),
    (ClaimRef("../ns", "x", "0b4f-1"), "namespace '../ns' is not valid; allowed: a DNS label"),
    (ClaimRef(NS, "a/b", "0b4f-2"), "name 'a/b' is not valid; allowed: a DNS subdomain"),
]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_unprepare_with_a_path_in_the_uid_deletes_nothing_outside_and_serves_the_rest(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, version: str
) -> None:
    victims = _victims(plugin.settings.cdi_dir.parent)
    checkpoint_dir = plugin.settings.paths.checkpoint_dir
    assert (checkpoint_dir / f"{ESCAPE_UID}.json").resolve() == victims[0]  # what unprepare removed
    good = ref(allocate("good"))
    assert kubelet.prepare([good], version=version).claims[good.uid].error == ""

    response = kubelet.unprepare([good, *(c for c, _ in BAD_CLAIMS)], version=version)

    assert response.claims[good.uid].error == ""
    assert cdi.listed_claims(plugin.settings.cdi_dir) == set()
    for claim, message in BAD_CLAIMS:
        assert message in response.claims[claim.uid].error, response.claims[claim.uid].error
    for victim in victims:
        assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_prepare_with_bad_names_writes_nothing_and_serves_the_rest(
    plugin: Plugin, kubelet: KubeletClient, allocate: Allocate, version: str
) -> None:
    victims = _victims(plugin.settings.cdi_dir.parent)
    good = ref(allocate("good"))

    response = kubelet.prepare([*(c for c, _ in BAD_CLAIMS), good], version=version)

    assert response.claims[good.uid].error == ""
    assert cdi.listed_claims(plugin.settings.cdi_dir) == {good.uid}
    for claim, message in BAD_CLAIMS:
        assert message in response.claims[claim.uid].error, response.claims[claim.uid].error
    for victim in victims:
        assert victim.read_text() == "keep me\n"
    assert not list(plugin.settings.cdi_dir.parent.glob("victim/*.tmp"))


@pytest.mark.parametrize("uid", ["../x", "a/b", "..", "a..b", "x\0"])
def test_file_name_helpers_refuse_a_uid_that_leaves_the_directory(tmp_path: Path, uid: str) -> None:
    for helper in (record_path, quota_record_path, limits_path):
        with pytest.raises(UnsafeFileNameError, match="cannot be part of a file name"):
            helper(tmp_path, uid)
    with pytest.raises(UnsafeFileNameError):
        cdi.spec_path(tmp_path, uid)
