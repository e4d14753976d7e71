"""The device model's derived names must be valid, stable DNS labels."""

from dra_driver.core.devices import GIB, Device, DeviceType, Health, dns_label


def make_device(index: int = 3) -> Device:
    return Device(
        type=DeviceType.NPU, vendor="huawei", model="Ascend910B3", uuid="u-1", index=index,
        memory_bytes=64 * GIB, cores=20, device_node=f"/dev/davinci{index}", minor=index,
    )


def test_device_name_is_type_and_index() -> None:
    assert make_device(3).name == "npu-3"


def test_memory_mib_is_whole_mebibytes() -> None:
    assert make_device().memory_mib == 64 * 1024


def test_with_health_returns_a_changed_copy() -> None:
    device = make_device()
    sick = device.with_health(Health.UNHEALTHY, "ECC errors")
    assert (sick.health, sick.health_message) == (Health.UNHEALTHY, "ECC errors")
    assert device.health is Health.HEALTHY


def test_dns_label_lowercases_and_replaces_invalid_runs() -> None:
    assert dns_label("H100 SXM5_80GB") == "h100-sxm5-80gb"
    assert dns_label("---") == "x"
    assert len(dns_label("a" * 100)) == 63
