"""Live quota changes reach running processes within a second: through ``kubeletplugin.quota`` and the
``xpushare quota`` command, on the node layout the plugin uses (checkpoint, limits files, boards,
ledgers)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import DeviceType
from kubeletplugin.checkpoint import ClaimState, PreparedClaim, PreparedDevice, encode
from kubeletplugin.paths import NodePaths
from kubeletplugin.quota import QuotaRequest, apply_quota
from shim.ledger import Board, read_claim_usage
from shim.limits import read_limits_file
from tests.integration.shim.conftest import MIB
from tests.support.shimlib import Result, TenantGroup, TenantSpec

UUID = "GPU-0000"
CUDA_ERROR_OUT_OF_MEMORY = 2


def _prepare(group: TenantGroup, state_dir: Path, spec: TenantSpec) -> NodePaths:
    """What the plugin's prepare leaves behind: checkpoint record, board entry, ledger, limits file."""
    device = PreparedDevice(pool="node-a", device="gpu-0", request_names=("gpu",), cdi_device_ids=("k=v",),
                            uuid=UUID, index=0, device_type=DeviceType.GPU, memory_bytes=spec.memory,
                            core_percent=spec.cores, priority=Priority(spec.priority),
                            policy=ComputePolicy(spec.policy),
                            share_id="s1")
    claim = PreparedClaim(uid=spec.name, namespace="ns", name="claim", state=ClaimState.PREPARE_COMPLETED,
                          devices=(device,))
    (state_dir / "checkpoint").mkdir(parents=True)
    (state_dir / "checkpoint" / f"{spec.name}.json").write_bytes(encode(claim, "boot"))
    group.write_limits(spec)
    return NodePaths(state_dir=state_dir, run_dir=group.root)


def test_a_share_raised_from_30_to_60_is_followed_within_a_second(tmp_path: Path) -> None:
    group = TenantGroup(tmp_path / "run")
    spec = TenantSpec("claim-a", cores=60, policy="fixed")
    paths = _prepare(group, tmp_path / "state", spec)
    apply_quota(paths, spec.name, QuotaRequest(core_percent=30))  # before it starts: 30 %
    changed_at = 1.0

    def change(epoch_ns: int) -> None:
        time.sleep(max(0.0, (epoch_ns - time.monotonic_ns()) / 1e9 + changed_at))
        apply_quota(paths, spec.name, QuotaRequest(core_percent=60))

    (result,) = group.run([spec], 2.5, window_ms=250, during=change)
    shares = result.shares()
    assert statistics.median(shares[1:4]) == pytest.approx(30, abs=3), shares
    assert statistics.median(shares[5:10]) == pytest.approx(60, abs=4), shares  # windows from 1.25 s on
    written = read_limits_file(group.limits_file(spec.name)).devices[0]
    assert (written.core_percent, written.core_max_percent) == (60, 60)
    with Board.read_only(group.device.board) as board:
        entry = board.entry(spec.name)
    assert entry is not None
    assert entry.core_percent == 60  # the change went on the board, the plugin's file...
    assert read_claim_usage(group.ledger_path(spec.name)).core_percent == 60  # ...and the shim took it



def test_a_priority_lowered_live_hands_the_device_to_the_other_claim_within_a_second(tmp_path: Path) -> None:
    """Two saturating claims; the high-priority one is lowered to low 1 s in: the normal one, held back
    until then, takes the device over."""
    group = TenantGroup(tmp_path / "run")
    first = TenantSpec("claim-hi", cores=50, priority="high")
    second = TenantSpec("claim-normal", cores=50, priority="normal")
    paths = _prepare(group, tmp_path / "state", first)
    group.write_limits(second)
    changed_at = 1.0

    def change(epoch_ns: int) -> None:
        time.sleep(max(0.0, (epoch_ns - time.monotonic_ns()) / 1e9 + changed_at))
        apply_quota(paths, first.name, QuotaRequest(priority=Priority.LOW))

    was_high, normal = group.run([first, second], 2.5, window_ms=250, during=change)
    assert statistics.median(normal.shares()[1:4]) <= 10, normal.shares()  # held back by the high one
    assert statistics.median(normal.shares()[5:10]) >= 85, normal.shares()  # first in line from 1.25 s on
    assert statistics.median(was_high.shares()[5:10]) <= 15, was_high.shares()
    assert read_claim_usage(group.ledger_path(first.name)).priority == "low"  # the shim took it

def _client(group: TenantGroup, client: Path, uid: str, *commands: str | int) -> subprocess.Popen[str]:
    return subprocess.Popen([str(client), "dlsym", "--", *map(str, commands)], env=group.env(uid),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _quota_cli(paths: NodePaths, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dra_driver", "quota", "--state-dir", str(paths.state_dir),
               "--run-dir", str(paths.run_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_lowered_memory_limit_refuses_the_next_allocation_of_a_running_process(tmp_path: Path,
                                                                                  cuda_client: Path) -> None:
    group = TenantGroup(tmp_path / "run")
    spec = TenantSpec("claim-m", memory=16 * MIB)
    paths = _prepare(group, tmp_path / "state", spec)
    holder = _client(group, cuda_client, spec.name, "alloc", 4 * MIB, "alloc", 4 * MIB, "ready",
                     "alloc", 1, "info", "free", "free", "alloc", 4 * MIB, "alloc", 4 * MIB)
    assert holder.stdout is not None
    assert [holder.stdout.readline().strip() for _ in range(3)] == ["alloc rc=0", "alloc rc=0", "ready"]
    done = _quota_cli(paths, "--claim", spec.name, "--memory", "6Mi")  # below the 8 MiB it holds
    assert done.returncode == 0, done.stderr
    assert str(6 * MIB) in done.stdout
    out, _ = holder.communicate(timeout=30)  # the process goes on: nothing was killed
    result = Result(holder.returncode, out, "")
    assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY, 0, CUDA_ERROR_OUT_OF_MEMORY]
    assert (result.value("info", "total"), result.value("info", "free")) == (6 * MIB, 0)
    raised = _quota_cli(paths, "--claim", spec.name, "--memory", "12Mi")
    assert raised.returncode == 0, raised.stderr
    again = _client(group, cuda_client, spec.name, "fill", MIB)
    out, _ = again.communicate(timeout=30)
    assert Result(0, out, "").value("fill", "count") == 12


@pytest.mark.parametrize(("args", "message"), [
    (["--cores", "61"], "cores: 61% on device gpu-0 is outside the allocated range 0..60%"),
    (["--memory", "1Gi"], "memory: 1073741824 bytes on device gpu-0 is outside the allocated range"),
    (["--memory", "lots"], "memory: 'lots' is not a quantity"),
    (["--cores", "10", "--device", "gpu-9"], "device: 'gpu-9' is not a device of claim claim-v"),
])
def test_out_of_range_values_are_refused_with_the_field_and_range(tmp_path: Path, args: list[str],
                                                                  message: str) -> None:
    group = TenantGroup(tmp_path / "run")
    spec = TenantSpec("claim-v", cores=60)
    paths = _prepare(group, tmp_path / "state", spec)
    done = _quota_cli(paths, "--claim", spec.name, *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    with Board.read_only(group.device.board) as board:
        entry = board.entry(spec.name)
    assert entry is not None
    assert entry.core_percent == 60  # nothing changed


def test_an_unknown_claim_is_named_in_the_error(tmp_path: Path) -> None:
    done = _quota_cli(NodePaths(tmp_path / "state", tmp_path / "run"), "--claim", "nope", "--cores", "5")
    assert done.returncode == 1
    assert "claim nope: not prepared on this node" in done.stderr
