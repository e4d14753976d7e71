"""The steps of ``xpushare demo``, each printing what a cluster operator would look at.

Steps are small functions run in order by ``run_demo``, so the demo doubles as a smoke test of the whole
path (the end-to-end test runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from controller.settings import SliceMode, SliceSettings
from controller.slices import build_slices
from dra_driver.devices import Device
from dra_driver.discovery.base import open_backend

DEMO_NODE = "demo-node"


def _heading(out: TextIO, text: str) -> None:
    print(f"\n=== {text}", file=out)


def discover_devices(inventory: Path | None, out: TextIO) -> list[Device]:
    options: dict[str, Any] = {} if inventory is None else {"inventory": str(inventory)}
    backend = open_backend("mock", environ={}, **options)
    try:
        devices = backend.discover()
    finally:
        backend.close()
    _heading(out, f"discovered {len(devices)} devices on {DEMO_NODE}")
    for device in devices:
        print(f"  {device.name:8} {device.model:18} {device.memory_mib:>7} MiB  {device.cores:>4} cores"
              f"  {device.device_node}  {device.health.value}", file=out)
    return devices


def show_slices(devices: list[Device], mode: SliceMode, out: TextIO) -> list[dict[str, Any]]:
    slices = build_slices(DEMO_NODE, devices, mode, SliceSettings(mode=mode))
    _heading(out, f"ResourceSlices that would be published ({mode.value} mode)")
    yaml.safe_dump_all(slices, out, sort_keys=False)
    return slices


def run_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    devices = discover_devices(args.inventory, out)
    show_slices(devices, SliceMode(args.mode), out)
    return 0
