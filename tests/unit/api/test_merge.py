"""Class configs apply first, then claim configs; a later config overrides only the fields it sets."""

from __future__ import annotations

from typing import Any

from api.v1alpha1 import API_VERSION, KIND, ComputePolicy, Priority, SharingConfig, merge_sharing_configs


def config(**fields: Any) -> SharingConfig:
    return SharingConfig.model_validate({"apiVersion": API_VERSION, "kind": KIND, **fields})


def test_nothing_to_merge_gives_the_defaults() -> None:
    merged = merge_sharing_configs([], [])
    assert merged == config()
    assert (merged.priority, merged.computePolicy) == (Priority.NORMAL, ComputePolicy.GUARANTEED)


def test_claim_overrides_class_only_for_the_fields_it_sets() -> None:
    from_class = config(priority="low", computePolicy="fixed", corePercent=50)
    from_claim = config(priority="high")
    merged = merge_sharing_configs([from_class], [from_claim])
    assert merged == config(priority="high", computePolicy="fixed", corePercent=50)


def test_a_default_that_the_claim_leaves_out_does_not_undo_the_class() -> None:
    """A claim config without computePolicy has computePolicy=guaranteed by default; it must not win."""
    merged = merge_sharing_configs([config(computePolicy="fixed")], [config(memoryMiB=1024)])
    assert merged.computePolicy is ComputePolicy.FIXED
    assert merged.memoryMiB == 1024


def test_explicitly_set_default_value_does_override() -> None:
    merged = merge_sharing_configs([config(computePolicy="fixed")], [config(computePolicy="guaranteed")])
    assert merged.computePolicy is ComputePolicy.GUARANTEED


def test_claim_configs_win_over_class_configs_whatever_the_argument_lengths() -> None:
    classes = [config(priority="low"), config(priority="normal", corePercent=10)]
    claims = [config(priority="high"), config(corePercent=30)]
    merged = merge_sharing_configs(classes, claims)
    assert (merged.priority, merged.corePercent) == (Priority.HIGH, 30)


def test_later_configs_of_one_kind_override_earlier_ones() -> None:
    merged = merge_sharing_configs([config(corePercent=10), config(corePercent=20)], [])
    assert merged.corePercent == 20


def test_merged_config_remembers_what_was_set_so_merges_compose() -> None:
    first = merge_sharing_configs([config(priority="low")], [])
    assert first.model_fields_set == {"apiVersion", "kind", "priority"}
    second = merge_sharing_configs([config(computePolicy="fixed")], [first])
    assert (second.computePolicy, second.priority) == (ComputePolicy.FIXED, Priority.LOW)
