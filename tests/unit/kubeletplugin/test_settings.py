"""Plugin settings refuse bad values with the setting's name and range; paths follow the kubelet's layout."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from api.errors import ConfigError
from controller.settings import PartitionLayout
from dra_driver.cli import build_parser
from kubeletplugin.settings import PluginSettings


def test_default_paths_are_the_kubelet_ones() -> None:
    settings = PluginSettings(node_name="node-a")
    assert settings.dra_socket == Path("/var/lib/kubelet/plugins/xpushare.io/dra.sock")
    assert settings.registration_socket == Path("/var/lib/kubelet/plugins_registry/xpushare.io-reg.sock")
    assert settings.cdi_dir == Path("/var/run/cdi")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"node_name": ""}, "node name: required"),
        ({"health_interval_s": 0}, "health interval: 0 s is outside 0.1..3600 s"),
        ({"max_parallel_claims": 0}, "max parallel claims: 0 is outside 1..256"),
        ({"checkpoint_lock_timeout_s": -1}, "checkpoint lock timeout"),
        ({"registry_dir": Path("/" + "d" * 120)}, "registration socket: .* longer than 107 bytes"),
        ({"partitions": "gpu=3x1/2"}, "partitions.gpu: the fixed layout's pieces add up to 3/2"),
        (
            {"partitions": "gpu=1/3,5/4", "partition_layout": PartitionLayout.MENU},
            r"partitions.gpu: size 5/4 is out of range; allowed \(0, 1\]",
        ),
    ],
    ids=[
        "no node", "health interval", "parallel claims", "lock timeout", "socket path too long",
        "fixed pieces over the device", "menu size over 1",
    ],
)
def test_bad_settings_name_the_setting_and_range(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"node_name": "node-a", **overrides}
    with pytest.raises(ConfigError, match=message):
        PluginSettings(**values)  # type: ignore[arg-type]


def test_cli_offers_the_kubelet_plugin_command_with_every_path_as_a_flag() -> None:
    args = build_parser().parse_args(
        [
            "kubelet-plugin",
            "--node-name",
            "n1",
            "--cdi-dir",
            "/tmp/cdi",
            "--registry-dir",
            "/tmp/reg",
            "--slice-mode",
            "partitioned",
            "--no-publish",
        ]
    )
    assert (args.node_name, args.cdi_dir, args.registry_dir) == ("n1", Path("/tmp/cdi"), Path("/tmp/reg"))
    assert (args.slice_mode, args.no_publish) == ("partitioned", True)
    assert callable(args.handler)


def test_partition_flags_reach_the_slice_settings_of_their_layout() -> None:
    parse = build_parser().parse_args
    default = parse(["kubelet-plugin", "--node-name", "n1"])
    assert (default.partition_layout, default.partitions) == ("fixed", "")
    fixed = PluginSettings(node_name="n1", partitions="gpu=1/2,2x1/4").slice_settings
    assert fixed.partition_layout is PartitionLayout.FIXED
    assert fixed.profile_for("H100", "gpu") == (Fraction(1, 2), Fraction(1, 4), Fraction(1, 4))
    args = parse(
        ["kubelet-plugin", "--node-name", "n1", "--partition-layout", "menu", "--partitions", "gpu=1/2,1"]
    )
    menu = PluginSettings(
        node_name="n1", partition_layout=PartitionLayout(args.partition_layout), partitions=args.partitions
    ).slice_settings
    assert menu.profile_for("H100", "gpu") == (Fraction(1, 2), Fraction(1))
    assert menu.profile_for("Ascend910B3", "npu") == (Fraction(1, 4), Fraction(1, 2), Fraction(1))


def test_the_quota_annotation_watch_is_on_unless_turned_off() -> None:
    assert PluginSettings(node_name="n1").quota_annotations
    on = build_parser().parse_args(["kubelet-plugin", "--node-name", "n1"])
    off = build_parser().parse_args(["kubelet-plugin", "--node-name", "n1", "--no-quota-annotation"])
    assert (on.no_quota_annotation, off.no_quota_annotation) == (False, True)
