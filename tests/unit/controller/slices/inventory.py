"""Representative devices for slice tests: Ascend 910B and 310P, and an H100 with odd memory size."""

from __future__ import annotations

from dra_driver.core.devices import GIB, MIB, Device, DeviceType, Health


def npu(index: int, model: str = "Ascend910B3", memory: int = 64 * GIB, **changes: object) -> Device:
    fields: dict[str, object] = {
        "type": DeviceType.NPU,
        "vendor": "Huawei",
        "model": model,
        "uuid": f"npu-uuid-{index:04d}",
        "index": index,
        "memory_bytes": memory,
        "cores": 20,
        "device_node": f"/dev/davinci{index}",
        "minor": index,
        "pci_bus_id": f"0000:{index % 256:02x}:00.0",
        "numa_node": index % 2,
        "driver_version": "24.1.rc2",
        "runtime_version": "8.0.RC3",
    }
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


def gpu(index: int, memory: int = 81559 * MIB, **changes: object) -> Device:
    fields: dict[str, object] = {
        "type": DeviceType.GPU,
        "vendor": "NVIDIA",
        "model": "H100-SXM5-80GB",
        "uuid": f"GPU-{index:08d}-aaaa-bbbb-cccc-000000000000",
        "index": index,
        "memory_bytes": memory,
        "cores": 132,
        "device_node": f"/dev/nvidia{index}",
        "minor": index,
        "driver_version": "550.54.15",
        "runtime_version": "12.4",
    }
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


def mixed() -> list[Device]:
    """Two 910B (one unhealthy), one 310P that cannot be shared, two H100."""
    return [
        npu(0),
        npu(1).with_health(Health.UNHEALTHY, "HBM ECC multi-bit error"),
        npu(2, model="Ascend310P3", memory=24 * GIB, shareable=False),
        gpu(0),
        gpu(1),
    ]
