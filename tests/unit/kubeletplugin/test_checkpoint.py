"""The checkpoint survives restarts, refuses damaged records one by one, and reads newer files leniently."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from kubeletplugin.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointLockTimeoutError,
    ClaimState,
    PreparedClaim,
    PreparedDevice,
    decode,
    encode,
    read_boot_id,
)
from kubeletplugin.checkpoint_store import CheckpointStore


def _device(share_id: str | None = None, minor: int | None = 3) -> PreparedDevice:
    return PreparedDevice(
        pool="node-a",
        device="npu-3",
        request_names=("req",),
        cdi_device_ids=("xpushare.io/claim=u-npu-3",),
        uuid="NPU-3",
        index=3,
        device_type=DeviceType.NPU,
        memory_bytes=16 << 30,
        core_percent=25,
        priority=Priority.NORMAL,
        policy=ComputePolicy.GUARANTEED,
        share_id=share_id,
        exclusive=share_id is None,
        minor=minor,
    )


def _claim(uid: str = "uid-1", state: ClaimState = ClaimState.PREPARE_COMPLETED) -> PreparedClaim:
    return PreparedClaim(uid, "default", "claim-a", state, (_device("share-1"), _device(None, None)))


def _resign(document: dict[str, Any]) -> bytes:
    data = document["data"]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    document["checksum"] = hashlib.sha256(canonical).hexdigest()
    return json.dumps(document).encode()


def test_round_trip_keeps_every_field_of_every_state() -> None:
    with_pods = replace(_claim("uid-3"), pods=("train-0", "train-1"))
    for claim in (_claim("uid-1"), _claim("uid-2", ClaimState.PREPARE_STARTED), with_pods):
        assert decode(encode(claim, "boot-1")) == (claim, "boot-1")


def test_optional_fields_are_left_out_when_empty() -> None:
    raw = json.loads(encode(_claim(), "boot-1"))
    with_share, without_share = raw["data"]["claim"]["devices"]
    assert with_share["shareID"] == "share-1"
    assert "shareID" not in without_share
    assert "exclusive" not in with_share
    assert "minor" not in without_share
    assert "pods" not in raw["data"]["claim"]  # a record written before pods were recorded reads the same


def test_fields_written_by_a_newer_plugin_are_ignored_on_read() -> None:
    document = json.loads(encode(_claim(), "boot-1"))
    document["data"]["futureField"] = {"x": 1}
    document["data"]["claim"]["devices"][0]["migProfile"] = "1g.10gb"
    claim, _ = decode(_resign(document))
    assert claim == _claim()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[: len(raw) // 2], "not valid JSON"),
        (lambda raw: raw.replace(b'"corePercent": 25', b'"corePercent": 26'), "checksum"),
        (lambda raw: raw.replace(b'"version": "v1"', b'"version": "v9"'), "version"),
        (lambda raw: b"[]", "no 'data'"),
        (lambda raw: b"\xff\xfe", "not valid JSON"),
    ],
    ids=["truncated", "bit flip in data", "unknown version", "not an object", "binary garbage"],
)
def test_damaged_record_is_reported_as_corrupt(damage: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(CheckpointCorruptError, match=message):
        decode(damage(encode(_claim(), "boot-1")))


def test_well_signed_data_of_the_wrong_shape_is_corrupt() -> None:
    document = json.loads(encode(_claim(), "boot-1"))
    document["data"]["claim"]["devices"][0]["corePercent"] = 250
    with pytest.raises(CheckpointCorruptError, match="wrong shape"):
        decode(_resign(document))


def test_store_persists_each_claim_atomically_with_mode_0600(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "checkpoint"
    store = CheckpointStore(directory, "boot-1")
    assert store.load() == {}
    store.put(_claim("uid-1"))
    store.put(_claim("uid-2", ClaimState.PREPARE_STARTED))
    record = directory / "uid-1.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [".lock", "uid-1.json", "uid-2.json"]
    reopened = CheckpointStore(directory, "boot-2")
    assert reopened.load() == {"uid-1": _claim("uid-1"), "uid-2": _claim("uid-2", ClaimState.PREPARE_STARTED)}
    assert reopened.previous_boot_id == "boot-1"
    reopened.delete("uid-1")
    reopened.delete("uid-1")
    assert set(CheckpointStore(directory, "boot-2").load()) == {"uid-2"}


def test_a_corrupt_record_costs_only_its_own_claim(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "boot-1")
    store.load()
    store.put(_claim("uid-1"))
    store.put(_claim("uid-2"))
    (tmp_path / "uid-2.json").write_bytes(b'{"version": "v1", "checksum": "0", "data": {}}')
    (tmp_path / "uid-3.json").write_bytes(encode(_claim("uid-1"), "boot-1"))  # a record under a wrong name
    reopened = CheckpointStore(tmp_path, "boot-1")
    assert set(reopened.load()) == {"uid-1"}
    assert sorted(reopened.corrupt) == ["uid-2.json", "uid-3.json"]
    assert "checksum" in reopened.corrupt["uid-2.json"]
    reopened.discard_corrupt()
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["uid-1.json"]


def test_write_into_a_missing_place_raises_checkpoint_error(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "checkpoint", "boot-1")
    store.load()
    store.put(_claim("uid-1"))
    for path in (tmp_path / "checkpoint").iterdir():
        path.unlink()
    (tmp_path / "checkpoint").rmdir()
    with pytest.raises(CheckpointError):
        store.put(_claim("uid-2"))
    assert set(store.claims()) == {"uid-1"}


def test_writes_wait_for_another_process_lock_and_time_out(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "boot-1", lock_timeout_s=0.2)
    store.load()
    fd = os.open(tmp_path / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CheckpointLockTimeoutError, match="still held"):
            store.put(_claim("uid-1"))
    finally:
        os.close(fd)
    store.put(_claim("uid-1"))
    assert store.get("uid-1") == _claim("uid-1")


def test_overlapping_plugins_never_drop_each_others_claims(tmp_path: Path) -> None:
    old, new = CheckpointStore(tmp_path, "boot-1"), CheckpointStore(tmp_path, "boot-1")
    old.load()
    new.load()
    new.put(_claim("uid-new"))
    old.put(_claim("uid-old"))
    assert set(CheckpointStore(tmp_path, "boot-1").load()) == {"uid-new", "uid-old"}


def test_boot_id_is_read_from_the_configured_file(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text("5e1f-boot\n")
    assert read_boot_id(tmp_path / "boot_id") == "5e1f-boot"


def test_a_priority_or_policy_this_plugin_does_not_know_reads_as_the_default() -> None:
    document = json.loads(encode(_claim(), "boot-1"))
    device = document["data"]["claim"]["devices"][0]
    device["priority"], device["policy"] = "critical", "burst"
    claim, _ = decode(_resign(document))
    assert (claim.devices[0].priority, claim.devices[0].policy) == (Priority.NORMAL, ComputePolicy.GUARANTEED)
    assert claim.devices[1] == _claim().devices[1]
