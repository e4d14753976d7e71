"""The ``npu-smi`` fallback of the Ascend backend: run the tool and parse its text tables.

Used where ``libdcmi.so`` is not installed but the driver's ``npu-smi`` is. The parser reads the device
table of ``npu-smi info`` (an NPU row with name and health, then one row per chip with its bus id and
memory) and stops at the process table. Text it does not understand is an error that names the command
and the line, never a guess: a misread memory size would publish wrong capacity.

Every call is bounded: a stuck driver hangs ``npu-smi`` (sometimes in the kernel, where even SIGKILL
waits), so a call that does not answer in time is killed, reaped briefly and otherwise left behind, and
raises ``NpuSmiTimeoutError``, which tells the caller to stop asking.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from dataclasses import dataclass

from api.errors import DiscoveryError

TIMEOUT_S = 15.0
REAP_S = 1.0  # how long a killed npu-smi may take to go before it is left behind
_VERSION = re.compile(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)")
_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
_NPU_CELL = re.compile(r"^(\d+)\s+(\S+)$")
_CHIP_CELL = re.compile(r"^(\d+)(?:\s+(\d+))?$")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]$")
_SHARE = re.compile(r"Device-share Status\s*:\s*(True|False)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NpuSmiChip:
    """One chip as ``npu-smi info`` shows it."""

    npu_id: int
    chip_id: int
    physical_id: int
    name: str
    health: str
    bus_id: str
    memory_mib: int


@dataclass(frozen=True, slots=True)
class NpuSmiInfo:
    """What ``npu-smi info`` shows: its version (the driver's) and every chip."""

    version: str
    chips: tuple[NpuSmiChip, ...]


class _Parser:
    """State of one parse: the NPU row being read and the columns the header announced."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.in_devices = False
        self.has_hbm = False
        self.npu: tuple[int, str, str] | None = None
        self.chips: list[NpuSmiChip] = []
        self.version = ""

    def fail(self, number: int, line: str, why: str) -> DiscoveryError:
        return DiscoveryError(f"{self.command}: line {number}: {why}: {line.strip()!r}")

    def feed(self, number: int, line: str) -> bool:
        """Read one line; False once the device table is over."""
        if not line.startswith("|"):
            return True
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        version = _VERSION.search(line)
        if version is not None:
            self.version = version.group(2)
        elif "Process id" in line:
            return False
        elif cells[0].startswith("NPU") and "Health" in line:
            self.in_devices = True
        elif cells[0].startswith("Chip") and "Bus-Id" in line:
            self.has_hbm = "HBM-Usage" in line
        elif self.in_devices:
            self._row(number, line, cells)
        return True

    def _row(self, number: int, line: str, cells: list[str]) -> None:
        if len(cells) != 3:
            raise self.fail(number, line, f"expected 3 columns, found {len(cells)}")
        if _BUS_ID.match(cells[1]):
            self._chip_row(number, line, cells)
            return
        match = _NPU_CELL.match(cells[0])
        if match is None:
            raise self.fail(number, line, "expected '<NPU id> <name>' in the first column")
        self.npu = (int(match.group(1)), match.group(2), cells[1])

    def _chip_row(self, number: int, line: str, cells: list[str]) -> None:
        match = _CHIP_CELL.match(cells[0])
        if match is None or self.npu is None:
            raise self.fail(number, line, "expected '<chip> [<device>]' after an NPU row")
        pairs = _PAIR.findall(cells[2])
        if len(pairs) != (2 if self.has_hbm else 1):
            raise self.fail(number, line, "expected used / total memory figures")
        npu_id, name, health = self.npu
        chip_id = int(match.group(1))
        physical = int(match.group(2)) if match.group(2) is not None else npu_id
        self.chips.append(NpuSmiChip(npu_id, chip_id, physical, name, health, cells[1], int(pairs[-1][1])))


def parse_info(text: str, command: str = "npu-smi info") -> NpuSmiInfo:
    """Parse ``npu-smi info`` output; raises DiscoveryError naming the line it cannot read."""
    parser = _Parser(command)
    for number, line in enumerate(text.splitlines(), start=1):
        if not parser.feed(number, line):
            break
    if not parser.in_devices:
        raise DiscoveryError(f"{command}: no device table in the output ({len(text.splitlines())} lines)")
    return NpuSmiInfo(parser.version, tuple(parser.chips))


def parse_share(text: str) -> bool | None:
    """``Device-share Status : True`` -> True; None when the output does not say."""
    match = _SHARE.search(text)
    return None if match is None else match.group(1).lower() == "true"


class NpuSmiTimeoutError(DiscoveryError):
    """``npu-smi`` did not answer in time; a stuck driver hangs the next call as well."""


def run(npu_smi: str, *args: str, timeout_s: float = TIMEOUT_S) -> str:
    """Run ``npu-smi`` with ``args`` and return its output; failures name the command."""
    command = [npu_smi, *args]
    shown = " ".join(command)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as err:
        raise DiscoveryError(f"{shown}: npu-smi not found") from err
    except OSError as err:
        raise DiscoveryError(f"{shown}: cannot run: {err}") from err
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=REAP_S)
        raise NpuSmiTimeoutError(f"{shown}: no answer within {timeout_s:g} s") from err
    if process.returncode != 0:
        detail = (stderr or stdout).strip().splitlines()
        last = detail[-1] if detail else "no output"
        raise DiscoveryError(f"{shown}: exit status {process.returncode}: {last}")
    return stdout


def query_info(npu_smi: str, timeout_s: float = TIMEOUT_S) -> NpuSmiInfo:
    return parse_info(run(npu_smi, "info", timeout_s=timeout_s), f"{npu_smi} info")


def query_share(npu_smi: str, npu_id: int, chip_id: int, timeout_s: float = TIMEOUT_S) -> bool | None:
    """Device-share mode of one chip; None when this driver's npu-smi cannot say (it prints "This device
    does not support querying device-share." and exits 0, or fails). A timeout is raised, not None."""
    try:
        output = run(
            npu_smi, "info", "-t", "device-share", "-i", str(npu_id), "-c", str(chip_id), timeout_s=timeout_s
        )
    except NpuSmiTimeoutError:
        raise
    except DiscoveryError:
        return None
    return parse_share(output)
