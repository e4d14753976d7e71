"""Versions, label values and settings parsing: the small value rules slices depend on."""

from __future__ import annotations

from fractions import Fraction
from types import MappingProxyType

import pytest

from api.errors import ConfigError
from controller.settings import LeaderSettings, PartitionLayout, SliceSettings, parse_partitions
from controller.slices.attributes import label_value, semver

FIXED, MENU = PartitionLayout.FIXED, PartitionLayout.MENU


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("550.54.15", "550.54.15"),
        ("12.4", "12.4.0"),
        ("24.1.rc2", "24.1.0-rc2"),
        ("8.0.RC3", "8.0.0-RC3"),
        ("25.0.rc1.b050", "25.0.0-rc1.b050"),
        ("7.0.0.05", "7.0.0-5"),
        ("v1.2.3", "1.2.3"),
        ("unknown", None),
    ],
)
def test_vendor_versions_are_coerced_to_semver(text: str, version: str | None) -> None:
    assert semver(text) == version


def test_label_value_keeps_alphanumeric_ends_and_length() -> None:
    assert label_value("  -ECC error: double bit!- ") == "ECC-error-double-bit"
    assert len(label_value("x" * 100)) == 63
    assert label_value("!!!") == ""


def test_menu_sizes_parse_and_override_defaults() -> None:
    profiles = parse_partitions("gpu=1/2, 1, 1/2; Ascend310P=1/7", MENU)
    assert profiles["gpu"] == (Fraction(1, 2), Fraction(1))
    assert profiles["ascend310p"] == (Fraction(1, 7),)
    assert profiles["npu"] == (Fraction(1, 4), Fraction(1, 2), Fraction(1))
    settings = SliceSettings(partition_layout=MENU, partition_profiles=profiles)
    assert settings.profile_for("Ascend310P3", "npu") == (Fraction(1, 7),)
    assert settings.profile_for("Ascend910B3", "npu") == (Fraction(1, 4), Fraction(1, 2), Fraction(1))
    assert settings.profile_for("H100", "gpu") == (Fraction(1, 2), Fraction(1))


def test_fixed_pieces_parse_with_counts_and_default_to_quarters() -> None:
    pieces = parse_partitions("gpu=1/2,2x1/4; ascend310p=7x1/7", FIXED)
    assert pieces["gpu"] == (Fraction(1, 2), Fraction(1, 4), Fraction(1, 4))
    assert pieces["ascend310p"] == (Fraction(1, 7),) * 7
    settings = SliceSettings(fixed_partitions=pieces)
    assert settings.partition_layout is FIXED
    assert settings.profile_for("H100", "gpu") == (Fraction(1, 2), Fraction(1, 4), Fraction(1, 4))
    assert settings.profile_for("Ascend910B3", "npu") == (Fraction(1, 4),) * 4
    assert settings.profile_for("H100", "gpu", MENU)[0] == Fraction(1, 8)
    sevenths = (Fraction(4, 7), Fraction(2, 7), Fraction(1, 7))
    assert SliceSettings().profile_for("Ascend310P3", "npu") == sevenths


@pytest.mark.parametrize(
    ("text", "layout", "message"),
    [
        ("gpu", MENU, "is not KEY=SIZE"),
        ("gpu=a/b", MENU, "partitions.gpu: 'a/b' is not a size"),
        ("gpu=3/2", MENU, r"partitions.gpu: size 3/2 is out of range; allowed \(0, 1\]"),
        ("gpu=", MENU, "partitions.gpu: empty"),
        (
            "gpu=1/2,1/2,1/4",
            FIXED,
            "partitions.gpu: the fixed layout's pieces add up to 5/4 of the device; allowed at most 1",
        ),
        ("gpu=0x1/4", FIXED, r"partitions.gpu: count 0 in '0x1/4' is out of range; allowed 1\.\.64"),
        ("gpu=yx1/4", FIXED, "partitions.gpu: 'yx1/4' is not a size"),
    ],
)
def test_bad_partitions_name_the_field(text: str, layout: PartitionLayout, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_partitions(text, layout)


def test_fixed_pieces_given_directly_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"partitions\.gpu: the fixed layout's pieces add up to 3/2"):
        SliceSettings(fixed_partitions=MappingProxyType({"gpu": (Fraction(1, 2),) * 3}))


def test_bad_settings_name_the_field_and_range() -> None:
    with pytest.raises(ConfigError, match=r"coresStep: 0 is out of range; allowed 1\.\.100"):
        SliceSettings(cores_step=0)
    with pytest.raises(ConfigError, match="maxCounterSetsPerSlice: 9"):
        SliceSettings(max_counter_sets_per_slice=9)
    with pytest.raises(ConfigError, match="retryPeriod < renewDeadline < leaseDuration"):
        LeaderSettings(lease_duration_seconds=5, renew_deadline_seconds=10)
