"""Which slice mode fits more: the same devices published in every mode by the product's slice builder,
the workload's ask written the way each mode needs it (docs/configuration.md)."""

from __future__ import annotations

import pytest

from controller.settings import PartitionLayout, SliceMode
from dra_driver.core.quantity import parse_quantity
from dra_driver.planning.devices import DeviceBook
from dra_driver.planning.intent import Intent, UnknownIntent, request_intent, rewrite_claim
from dra_driver.planning.rebuild import rebuild_device
from tests.support.plan_cluster import (
    GPU,
    NPU,
    allocated_claim,
    at_least,
    claim_spec,
    gpu,
    node_slices,
    npu,
    request,
    sharing_config,
    template,
)
from tests.unit.planning.helpers import run, snapshot, workload

THREE_NODES = [s for i in range(3) for s in node_slices(f"node-{i}", [gpu(0), gpu(1)])]
ROWS = ("consumable", "partitioned (fixed)", "partitioned (menu)", "exclusive")


def capacities(report_rows: object) -> dict[str, int]:
    return {row.variant: row.capacity for row in report_rows}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("memory", "cores", "expected"),
    [
        # 24Gi: 3 shares per H100; no 1/4 piece (20Gi) is big enough; 1/2 partitions of the menu; whole GPUs.
        pytest.param(
            "24Gi",
            "25",
            {"consumable": 18, "partitioned (fixed)": 0, "partitioned (menu)": 12, "exclusive": 6},
            id="24Gi",
        ),
        # 16Gi/25 %: four per GPU whichever way it is cut, one whole GPU each in exclusive mode.
        pytest.param(
            "16Gi",
            "25",
            {"consumable": 24, "partitioned (fixed)": 24, "partitioned (menu)": 24, "exclusive": 6},
            id="16Gi",
        ),
        # 8Gi/10 %: ten shares per GPU, eight 1/8 partitions of the menu, four fixed quarters.
        pytest.param(
            "8Gi",
            "10",
            {"consumable": 60, "partitioned (fixed)": 24, "partitioned (menu)": 48, "exclusive": 6},
            id="8Gi",
        ),
    ],
)
def test_each_mode_fits_what_its_devices_allow(memory: str, cores: str, expected: dict[str, int]) -> None:
    work = workload(template("t", claim_spec(request(GPU, memory, cores))))
    report = run(snapshot(THREE_NODES), work, 10, compare=True)
    assert report.comparison is not None
    assert capacities(report.comparison.rows) == expected
    assert [row.placed for row in report.comparison.rows] == [min(10, expected[r]) for r in ROWS]
    assert [row.current for row in report.comparison.rows] == [True, False, False, False]


def test_the_ask_is_read_from_any_of_the_three_documented_forms() -> None:
    forms = [
        claim_spec(request(GPU, "24Gi", "25")),
        claim_spec(request(GPU, selectors=[at_least("24Gi", "25")])),
        claim_spec(request(GPU), config=[sharing_config(24 * 1024, 25)]),
    ]
    answers = []
    for form in forms:
        report = run(snapshot(THREE_NODES), workload(template("t", form)), 10, compare=True)
        assert report.comparison is not None
        answers.append(capacities(report.comparison.rows))
    assert answers[0] == answers[1] == answers[2]


def test_existing_claims_are_left_out_of_the_comparison_and_the_note_says_so() -> None:
    held = allocated_claim(
        "x", [{"pool": "node-0", "device": "gpu-0", "consumedCapacity": {"memory": "80Gi", "cores": "0"}}]
    )
    report = run(
        snapshot(THREE_NODES, claims=[held]),
        workload(template("t", claim_spec(request(GPU, "24Gi", "25")))),
        50,
        compare=True,
    )
    assert report.placed == 15
    assert report.comparison is not None
    assert report.comparison.rows[0].capacity == 18
    assert report.comparison.scope == "on the same devices, as if no claim of xpushare.io existed"
    assert "compared without the existing claims of xpushare.io" in report.comparison.note


def test_a_partitioned_cluster_is_compared_on_its_published_slices_and_marked_current() -> None:
    slices = [
        s
        for i in range(2)
        for s in node_slices(f"n-{i}", [gpu(0)], SliceMode.PARTITIONED, PartitionLayout.MENU)
    ]
    report = run(
        snapshot(slices),
        workload(template("t", claim_spec(request(GPU, selectors=[at_least("30Gi", "25")])))),
        3,
        compare=True,
    )
    assert report.placed == 3
    assert report.comparison is not None
    rows = {r.variant: r for r in report.comparison.rows}
    assert rows["partitioned (menu)"].current
    assert (rows["partitioned (menu)"].capacity, rows["consumable"].capacity, rows["exclusive"].capacity) == (
        4,
        4,
        2,
    )


def test_a_capacity_selector_in_another_form_is_not_guessed() -> None:
    odd = request(GPU, selectors=['device.capacity["xpushare.io"].memory.isGreaterThan(quantity("8Gi"))'])
    report = run(snapshot(THREE_NODES), workload(template("t", claim_spec(odd))), 3, compare=True)
    assert report.comparison is not None
    assert report.comparison.rows == ()
    assert "selector reads capacity in a form other than" in report.comparison.skipped


def test_requests_of_other_classes_are_not_rewritten() -> None:
    spec = claim_spec(request(GPU, "24Gi", "25", name="g"), request("other.example.com", name="o"))
    written, described = rewrite_claim(spec, SliceMode.PARTITIONED, "xpushare.io", frozenset({GPU, NPU}))
    assert written["devices"]["requests"][1] == spec["devices"]["requests"][1]
    assert "capacity" not in written["devices"]["requests"][0]["exactly"]
    assert described == ["g: selector: partition with memory>=24Gi cores>=25"]


def test_no_memory_asked_means_the_whole_device_in_every_mode() -> None:
    intent = request_intent(
        {"deviceClassName": GPU, "capacity": {"requests": {"cores": "30"}}}, [], "g", "xpushare.io"
    )
    assert intent == Intent(None, parse_quantity("30"))
    written, _ = rewrite_claim(
        claim_spec(request(GPU, cores="30")), SliceMode.PARTITIONED, "xpushare.io", frozenset({GPU})
    )
    (selector,) = written["devices"]["requests"][0]["exactly"]["selectors"]
    assert 'partition == "1"' in selector["cel"]["expression"]
    with pytest.raises(UnknownIntent):
        request_intent(
            {"selectors": [{"cel": {"expression": "device.capacity['x'].memory > 1"}}]},
            [],
            "g",
            "xpushare.io",
        )


@pytest.mark.parametrize("mode", [SliceMode.CONSUMABLE, SliceMode.EXCLUSIVE, SliceMode.PARTITIONED])
@pytest.mark.parametrize("layout", [PartitionLayout.FIXED, PartitionLayout.MENU])
def test_devices_read_back_from_published_slices_rebuild_the_same_slices(
    mode: SliceMode, layout: PartitionLayout
) -> None:
    devices = [gpu(0), gpu(1, 40, model="A100-40GB", sick=True), npu(2)]
    published = node_slices("n", devices, mode, layout if mode is SliceMode.PARTITIONED else None)
    rebuilt = [rebuild_device(d) for d in DeviceBook(published).devices]
    assert all(r is not None for r in rebuilt)
    again = node_slices(
        "n",
        [r.device for r in rebuilt if r is not None],
        mode,
        layout if mode is SliceMode.PARTITIONED else None,
    )
    assert again == published
    assert {r.mode for r in rebuilt if r is not None} == {mode}
