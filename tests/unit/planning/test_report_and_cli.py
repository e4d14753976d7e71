"""``xpushare plan`` end to end on files: the JSON shape that docs/planning.md documents, the table, and
errors that end in a message naming the field, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.deviceclasses import device_classes
from dra_driver.cli import main
from tests.support.plan_cluster import GPU, claim_spec, gpu, node_object, node_slices, npu, request, template


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    objects = [
        *node_slices("a", [gpu(0), gpu(1)]),
        *node_slices("b", [npu(0), gpu(1)]),
        node_object("a"),
        node_object("b"),
        *device_classes("xpushare.io"),
    ]
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump_all(objects))
    work = tmp_path / "workload.yaml"
    work.write_text(yaml.safe_dump(template("gpu-24", claim_spec(request(GPU, "24Gi", "25")))))
    return cluster, work


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["plan", *args, "-o", "json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_the_json_answer_has_every_part(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cluster, work = files
    out = plan_json(capsys, "-f", str(cluster), "--workload", str(work), "--replicas", "12")
    assert set(out) == {
        "workload",
        "replicas",
        "strategy",
        "reason",
        "nodes",
        "refused",
        "devices",
        "fragmentation",
        "modes",
        "notes",
    }
    assert out["replicas"] == {"requested": 12, "placed": 9, "unplaced": 3}
    assert out["workload"] == {
        "object": "ResourceClaimTemplate default/gpu-24",
        "requests": ["claim gpu-24, request xpu: gpu.xpushare.io memory=24Gi cores=25"],
    }
    assert out["nodes"] == [
        {"name": "a", "replicas": 6, "oneMore": False},
        {"name": "b", "replicas": 3, "oneMore": False},
    ]
    assert out["reason"].startswith("0/2 nodes are available: 2 cannot allocate all claims. a: ")
    assert set(out["refused"]) == {"a", "b"}
    first = out["devices"][0]
    assert first == {
        "node": "a",
        "driver": "xpushare.io",
        "pool": "a",
        "device": "gpu-0",
        "replicas": 3,
        "capacity": {
            "cores": {"total": 100, "used": 75, "free": 25},
            "memory": {"total": 80 << 30, "used": 72 << 30, "free": 8 << 30},
        },
        "oneMore": False,
        "stranded": True,
    }
    assert [d["device"] for d in out["devices"]] == [
        "gpu-0",
        "gpu-1",
        "gpu-1",
    ]  # the NPU is not for this workload
    assert out["fragmentation"] == {"devices": 3, "stranded": {"cores": 75, "memory": 24 << 30}}
    modes = out["modes"]
    assert modes["best"] == "consumable"
    assert [(r["mode"], r["capacity"], r["placed"], r["current"]) for r in modes["rows"]] == [
        ("consumable", 9, 9, True),
        ("partitioned (fixed)", 0, 0, False),
        ("partitioned (menu)", 6, 6, False),
        ("exclusive", 3, 3, False),
    ]
    assert out["notes"] == []


def test_the_table_says_the_same_for_people(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, work = files
    assert main(["plan", "-f", str(cluster), "--workload", str(work), "--replicas", "12"]) == 0
    table = capsys.readouterr().out
    assert "Replicas: 9 of 12 placed (spread: the node with the fewest pods first, ties by name)" in table
    assert "Replicas per node: 6 on 1 node, 3 on 1 node" in table
    assert (
        "a     gpu-0   3         72Gi/80Gi          75/100            no        memory 8Gi, cores 25" in table
    )
    assert "a     6         no        cannot allocate all claims" in table
    assert (
        "Fragmentation: 3 devices hold free capacity no further replica can use: memory 24Gi, cores 75"
        in table
    )
    assert "Not placed: 3. 0/2 nodes are available" in table
    assert "consumable (current)" in table
    assert "Fits the most: consumable" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replicas", "0"], "error: --replicas: 0 is out of range; allowed 1..100000"),
        (["--limit", "-1"], "error: --limit: -1 is out of range; allowed 0 (all) or more"),
        (["--workload", "/nonexistent.yaml"], "error: read /nonexistent.yaml: No such file or directory"),
    ],
)
def test_bad_input_is_a_message_and_exit_1(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    cluster, work = files
    base = ["plan", "-f", str(cluster), "--workload", str(work)]
    assert main(base + args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_workload_with_a_bad_field_is_refused_naming_it(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, _ = files
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(template("t", claim_spec(request(GPU, "16Gb", "25")))))
    assert main(["plan", "-f", str(cluster), "--workload", str(bad)]) == 1
    err = capsys.readouterr().err
    assert (
        "ResourceClaimTemplate default/t: spec.spec.devices.requests[0].exactly.capacity.requests.memory"
        in err
    )


def test_without_device_classes_the_products_own_are_used_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = tmp_path / "c.json"
    cluster.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": node_slices("a", [gpu(0)])}))
    work = tmp_path / "w.yaml"
    work.write_text(yaml.safe_dump(template("t", claim_spec(request(GPU, "40Gi", "50")))))
    out = plan_json(capsys, "-f", str(cluster), "--workload", str(work), "--replicas", "3", "--no-compare")
    assert out["replicas"]["placed"] == 2
    assert "modes" not in out
    assert out["notes"][0] == "no DeviceClass given: used the product's own for xpushare.io"
    assert out["notes"][1].startswith("no Node objects given")
