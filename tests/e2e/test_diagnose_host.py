"""``xpushare diagnose`` run as a user runs it (a subprocess) on fake Ascend hosts.

The fake npu-smi (tests/fakes/npu-smi) is first on ``PATH``, where the Ascend backend looks for it when
DCMI is missing, and plays a healthy host and broken ones: device-share off on one chip (and the fix
diagnose names, run through the same tool), a chip in alarm, a driver that waits for its reboot, npu-smi
missing, failing and hanging. Each finding and its fix is asserted; a hanging npu-smi costs one bounded
wait per kind of query, never more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakehost import ascend_host
from tests.support.fakevendor import NPU_SMI_DIR, fake_npu_smi, npu_smi_on_path

NPU_SMI_TIMEOUT_S = 1
BOTH_SHARED = {(0, 0): True, (1, 0): True}


@dataclass(frozen=True)
class Diagnosis:
    code: int
    findings: list[dict[str, str]]
    seconds: float

    def about(self, subject: str, severity: str) -> list[dict[str, str]]:
        return [f for f in self.findings if f["subject"] == subject and f["severity"] == severity]

    def problems(self) -> list[dict[str, str]]:
        return [f for f in self.findings if f["severity"] != "info"]


@dataclass(frozen=True)
class FakeHost:
    root: Path  # what --host-root names
    tool_dir: Path  # FAKE_NPU_SMI_DIR: what the fake npu-smi answers
    bin_dir: Path  # holds the fake as npu-smi
    state: Path

    def run(self, *, on_path: bool, output: str) -> subprocess.CompletedProcess[str]:
        """``xpushare diagnose`` as a user runs it, with the fake first on PATH (or not there at all)."""
        path = os.environ.get("PATH", "/usr/bin:/bin")
        env = {
            **os.environ,
            "PATH": f"{self.bin_dir}:{path}" if on_path else path,
            "FAKE_NPU_SMI_DIR": str(self.tool_dir),
            "XPUSHARE_DISCOVERY_BACKEND": "ascend",
            "XPUSHARE_DCMI_LIBRARY": str(self.state / "absent" / "libdcmi.so"),  # no DCMI: npu-smi answers
            "XPUSHARE_NPU_SMI_TIMEOUT": str(NPU_SMI_TIMEOUT_S),
            "HOME": "/root",
        }
        places = {
            "--state-dir": self.state / "state",
            "--run-dir": self.state / "run",
            "--cdi-dir": self.state / "cdi",
            "--host-root": self.root,
        }
        flags = [str(x) for pair in places.items() for x in pair]
        command = [sys.executable, "-m", "dra_driver", "--log-level", "ERROR", "diagnose", "-o", output]
        command += flags
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def diagnose(self, *, on_path: bool = True) -> Diagnosis:
        started = time.monotonic()
        result = self.run(on_path=on_path, output="json")
        body: dict[str, Any] = json.loads(result.stdout)
        return Diagnosis(result.returncode, body["findings"], time.monotonic() - started)

    def calls(self) -> list[str]:
        """The fake's arguments of each call so far."""
        return (self.tool_dir / "calls.log").read_text().splitlines()


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    """A healthy 2x 910B3 host: driver 24.1.rc2 (as npu-smi reports it), both chips sharing."""
    tool_dir = tmp_path / "npu-smi"
    fake_npu_smi(tool_dir, "info-910b3x2.txt", share=BOTH_SHARED, health={1: "OK"})
    return FakeHost(ascend_host(tmp_path / "host"), tool_dir, npu_smi_on_path(tmp_path / "bin"), tmp_path)


def test_a_healthy_host_has_no_problem_and_says_what_it_looked_at(host: FakeHost) -> None:
    found = host.diagnose()
    assert (found.code, found.problems()) == (0, [])
    facts = {f["subject"]: f["message"] for f in found.findings}
    assert facts["discovery"] == "ascend: 2 device(s)"
    assert facts["Ascend driver"] == "version 24.1.rc2"
    assert facts["CANN toolkit"] == "version 8.0.RC2"
    assert host.calls() == ["info", "info -t device-share -i 0 -c 0", "info -t device-share -i 1 -c 0"]
    text = host.run(on_path=True, output="text").stdout
    assert text.splitlines()[0] == "no problems found (0 claims prepared on this node)"


def test_device_share_off_on_one_chip_is_a_warning_whose_fix_works(host: FakeHost) -> None:
    fake_npu_smi(host.tool_dir, "info-910b3x2.txt", share={(0, 0): True, (1, 0): False}, health={1: "OK"})
    found = host.diagnose()
    (off,) = found.problems()
    assert found.code == 0  # whole-device claims still work
    assert (off["severity"], off["subject"]) == ("warning", "NPU npu-1")
    assert off["message"] == "device-share disabled: only whole-device claims are placed on it"
    fix = off["hint"]
    assert fix.startswith("npu-smi set -t device-share -i 1 -d 1 on the host as root")
    command = fix.split(" on the host")[0].split()
    assert command[0] == "npu-smi"
    applied = subprocess.run(
        [str(NPU_SMI_DIR / "npu-smi"), *command[1:]],
        input="Y\n",
        capture_output=True,
        text=True,
        env={**os.environ, "FAKE_NPU_SMI_DIR": str(host.tool_dir)},
        check=False,
    )
    assert applied.returncode == 0, applied.stdout
    assert "Set chip device-share successfully" in applied.stdout
    assert host.diagnose().problems() == []


@pytest.mark.parametrize(
    ("health", "severity", "message"),
    [
        ("Alarm", "error", "npu-smi health: Alarm"),
        ("Warning", "warning", "npu-smi health: Warning: a minor alarm, the chip is still used"),
    ],
)
def test_a_chip_in_alarm_names_the_npu_smi_query_that_shows_why(
    host: FakeHost, health: str, severity: str, message: str
) -> None:
    fake_npu_smi(host.tool_dir, "info-910b3x2.txt", share=BOTH_SHARED, health={1: health})
    found = host.diagnose()
    (finding,) = found.problems()
    assert (finding["severity"], finding["subject"], finding["message"]) == (severity, "NPU npu-1", message)
    assert "npu-smi info -t health -i 1 -c 0" in finding["hint"]
    assert found.code == (1 if severity == "error" else 0)


def test_a_driver_upgrade_waiting_for_its_reboot_is_a_warning(host: FakeHost) -> None:
    ascend_host(host.root, driver="25.0.rc1")  # installed; npu-smi still answers with 24.1.rc2
    (finding,) = host.diagnose().problems()
    assert (finding["severity"], finding["subject"]) == ("warning", "Ascend driver")
    assert finding["message"] == (
        "the chips answer with driver 24.1.rc2, /usr/local/Ascend/driver/version.info says 25.0.rc1"
    )
    assert finding["hint"].startswith("a driver upgrade waits for its reboot: reboot the node")


def test_npu_smi_missing_is_an_error_naming_where_the_plugin_looks(host: FakeHost) -> None:
    if shutil.which("npu-smi") is not None:
        pytest.skip("this machine has an npu-smi of its own on PATH")
    found = host.diagnose(on_path=False)
    (missing,) = found.about("discovery", "error")
    assert found.code == 1
    assert missing["message"].startswith("no backend answered: no Ascend management interface: ")
    assert missing["message"].endswith("npu-smi: npu-smi not found")
    assert "npu-smi (on PATH, or XPUSHARE_NPU_SMI)" in missing["hint"]
    assert "ascend.driverMounts" in missing["hint"]


def test_a_failing_npu_smi_is_an_error_with_its_own_message(host: FakeHost) -> None:
    (host.tool_dir / "init-failed").write_text("-8005\n")
    found = host.diagnose()
    (failed,) = found.about("discovery", "error")
    tool = host.bin_dir / "npu-smi"  # where discovery found it on PATH
    assert (
        failed["message"]
        == f"ascend: {tool} info: exit status 187: dcmi module initialize failed. ret is -8005"
    )
    assert "waits for its reboot" in failed["hint"]
    assert found.code == 1


def test_a_hanging_npu_smi_costs_one_bounded_wait(host: FakeHost) -> None:
    (host.tool_dir / "hang").write_text("")
    found = host.diagnose()
    (hung,) = found.about("discovery", "error")
    assert hung["message"].endswith(f"info: no answer within {NPU_SMI_TIMEOUT_S} s")
    assert "a hang points at a stuck driver or chip" in hung["hint"]
    assert host.calls() == ["info"]
    assert found.seconds < 30  # the wait is bounded: without the timeout the fake sleeps an hour


def test_a_hanging_device_share_query_is_asked_once_and_leaves_the_mode_unknown(host: FakeHost) -> None:
    (host.tool_dir / "hang").write_text("device-share\n")
    found = host.diagnose()
    assert found.code == 0
    assert host.calls() == ["info", "info -t device-share -i 0 -c 0"]  # not again for the second chip
    messages = {f["subject"]: f["message"] for f in found.problems()}
    assert set(messages) == {"NPU npu-0", "NPU npu-1"}
    assert all("no answer within 1 s): only whole-device claims" in m for m in messages.values())
