"""Versions, label values and settings parsing: the small value rules slices depend on."""

from __future__ import annotations

from fractions import Fraction

import pytest

from api.errors import ConfigError
from controller.settings import LeaderSettings, SliceSettings, parse_partition_profiles
from controller.slices.attributes import label_value, semver


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


def test_partition_profiles_parse_and_override_defaults() -> None:
    profiles = parse_partition_profiles("gpu=1/2, 1; Ascend310P=1/7")
    assert profiles["gpu"] == (Fraction(1, 2), Fraction(1))
    assert profiles["ascend310p"] == (Fraction(1, 7),)
    assert profiles["npu"] == (Fraction(1, 4), Fraction(1, 2), Fraction(1))
    settings = SliceSettings(partition_profiles=profiles)
    assert settings.profile_for("Ascend310P3", "npu") == (Fraction(1, 7),)
    assert settings.profile_for("Ascend910B3", "npu") == (Fraction(1, 4), Fraction(1, 2), Fraction(1))
    assert settings.profile_for("H100", "gpu") == (Fraction(1, 2), Fraction(1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpu", "is not KEY=SIZE"),
        ("gpu=a/b", "partitionProfiles.gpu: 'a/b' is not a list of fractions"),
        ("gpu=3/2", r"partitionProfiles.gpu: size 3/2 is out of range; allowed \(0, 1\]"),
        ("gpu=", "partitionProfiles.gpu: empty"),
    ],
)
def test_bad_partition_profiles_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_partition_profiles(text)


def test_bad_settings_name_the_field_and_range() -> None:
    with pytest.raises(ConfigError, match=r"coresStep: 0 is out of range; allowed 1\.\.100"):
        SliceSettings(cores_step=0)
    with pytest.raises(ConfigError, match="maxCounterSetsPerSlice: 9"):
        SliceSettings(max_counter_sets_per_slice=9)
    with pytest.raises(ConfigError, match="retryPeriod < renewDeadline < leaseDuration"):
        LeaderSettings(lease_duration_seconds=5, renew_deadline_seconds=10)
