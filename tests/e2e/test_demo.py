"""The README's main command, ``xpushare demo``, run as a user runs it: a real subprocess.

The demo drives the whole path (discovery, publishing, scheduling, kubelet preparation, CDI spec and
limits file), so these tests check each stage's visible result rather than only the exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache

import pytest
import yaml

DEMO_TIMEOUT_S = 240
GIB = 1024**3


@cache
def run_demo(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dra_driver", "--log-level", "WARNING", "demo", *args],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )
    assert result.returncode == 0, f"demo failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def section(output: str, heading_start: str) -> str:
    """The text under the first heading that starts with ``heading_start``."""
    return output.split(f"=== {heading_start}", 1)[1].split("\n", 1)[1].split("\n=== ", 1)[0]


def sections(output: str, heading_start: str) -> list[tuple[str, str]]:
    """(heading, body) of every heading that starts with ``heading_start``."""
    parts = output.split("\n=== ")[1:]
    return [tuple(part.split("\n", 1)) for part in parts if part.startswith(heading_start)]  # type: ignore[misc]


def test_demo_discovers_the_default_inventory() -> None:
    output = run_demo()
    assert "discovered 3 devices" in output
    assert output.count("Ascend910B3") >= 2
    assert "H100-SXM5-80GB" in output


@pytest.mark.parametrize("mode", ["consumable", "partitioned", "exclusive"])
def test_demo_shows_slices_of_every_device_in_each_mode(mode: str) -> None:
    text = section(run_demo("--mode", mode), "ResourceSlices that")
    slices = [doc for doc in yaml.safe_load_all(text) if doc]
    names = {device["name"] for item in slices for device in item["spec"].get("devices", [])}
    assert all(item["kind"] == "ResourceSlice" for item in slices)
    if mode == "partitioned":  # each device cut into its fixed quarters
        assert names == {f"{device}-1of4-{n}" for device in ("npu-0", "npu-1", "gpu-0") for n in range(4)}
    else:  # each whole device under its own name
        assert names == {"npu-0", "npu-1", "gpu-0"}


def test_demo_publishes_through_the_api_server_and_binds_every_pod() -> None:
    output = run_demo()
    published = section(output, "ResourceSlices in the API server")
    assert re.search(r"npu-0 +capacity \{'memory': '64Gi', 'cores': '100'\} shared", published)
    assert re.search(r"gpu-0 +capacity \{'memory': '80Gi', 'cores': '100'\} shared", published)
    scheduled = section(output, "scheduled")
    for pod in ("trainer", "notebook", "inference", "batch", "pipeline"):
        assert f"pod default/{pod} -> node demo-node" in scheduled
    trainer = re.search(r"claim trainer-accel-\w+: demo-node/npu-\d consumed (\{.*?\})", scheduled)
    assert trainer is not None
    assert trainer.group(1) == "{'memory': '16Gi', 'cores': '25'}"


def test_demo_prepares_claims_into_cdi_specs_with_the_shim_and_limits() -> None:
    output = run_demo()
    prepared = section(output, "kubelet registered the plugin")
    assert "ERROR" not in prepared
    assert len(re.findall(r"CDI \['xpushare\.io/claim=", prepared)) == 6  # the pipeline pod has two claims
    specs = {heading: json.loads(body) for heading, body in sections(output, "CDI spec the container")}
    trainer_spec = next(spec for heading, spec in specs.items() if "trainer" in heading)
    env = trainer_spec["containerEdits"]["env"]
    assert any(e.startswith("LD_PRELOAD=") for e in env)
    assert "ASCEND_VISIBLE_DEVICES=0" in env or "ASCEND_VISIBLE_DEVICES=1" in env
    assert not any(e.startswith("ASCEND_RT_VISIBLE_DEVICES=") for e in env)
    limits = sections(output, "read-only limits file")
    assert all("mode 100444" in heading for heading, _ in limits)
    trainer_limits = [body for _, body in limits if f"memory={16 * GIB} " in body]
    assert len(trainer_limits) == 1
    assert "cores=25" in trainer_limits[0]


def test_demo_workload_is_refused_past_its_memory_limit_inside_the_claim() -> None:
    enforced = section(run_demo(), "memory limit enforced")
    verdicts = re.findall(r"allocation \d+: (.*)", enforced)
    # inference asked for 20Gi: five 4 GiB chunks fit, the sixth is refused with the vendor's code.
    assert verdicts == ["ok"] * 5 + ["refused: CUDA_ERROR_OUT_OF_MEMORY (2)"]
    assert "cuMemGetInfo in the container: total 20 GiB, free 0 GiB (the device has 80 GiB)" in enforced


def test_demo_runs_one_container_with_two_claims_each_chip_at_its_claims_limits() -> None:
    """The pipeline pod's container has an 8Gi and a 12Gi claim: on one chip they add up to 20 GiB, on
    two each chip keeps its own; either way the runtime numbers the chips 0..n-1."""
    output = run_demo()
    text = section(output, "one container, two claims")
    rows = re.findall(r"NPU (\d) \(physical chip (\d); (.*?)\): (\d+) x 1 GiB fit, the next refused "
                      r"\((\d+)\); aclrtGetMemInfo total (\d+) GiB", text)
    assert rows, text
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    for _npu, _chip, held, fit, code, total in rows:
        expected = sum(int(g) for g in re.findall(r"(\d+) GiB", held))
        assert (int(fit), int(code), int(total)) == (expected, 207001, expected), text
    assert sum(int(r[3]) for r in rows) == 20
    assert "holds 2 files" in output


def test_demo_two_tenants_split_compute_by_their_shares() -> None:
    split = section(run_demo(), "compute shared by measured device time")
    got = {name: (int(asked), float(share)) for name, asked, share in
           re.findall(r"(\w+)-accel-\w+: requested (\d+)%, got ([\d.]+)% of the device", split)}
    assert set(got) == {"inference", "batch"}
    for asked, share in got.values():
        assert abs(share - asked) <= 3.0, split


def test_demo_ends_with_xpushare_status_showing_its_tenants_while_they_ran() -> None:
    table = section(run_demo(), "xpushare status on the node while they ran")
    # CLAIM DEVICE USED LIMIT PEAK REFUSED SHARE MEASURED
    row = r"default/(\w+)-accel-\w+\s+gpu-0\s+\S+\s+\S+\s+\S+\s+\d+\s+(\d+)%\s+([\d.]+)%"
    rows = {name: (int(share), float(measured)) for name, share, measured in re.findall(row, table)}
    assert set(rows) == {"inference", "batch"}, table
    for share, measured in rows.values():
        assert abs(measured - share) <= 5.0, table  # one 1 s window on a shared machine
    assert "notebook" in table
    assert "trainer" in table


def test_demo_unprepares_everything_it_prepared() -> None:
    assert "claims unprepared (0 errors, 0 CDI specs left)" in run_demo()
