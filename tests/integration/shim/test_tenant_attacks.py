"""Tenants are adversaries: what one claim does to the only file it can write (its own ledger of the
device) must not reach another claim on the same device.

Two claims share one fake 4 GiB GPU laid out as the node plugin lays out a device (``devices/<uuid>/``:
the board the plugin writes, each claim's ledger under ``claims/``; limits files naming both). The
attacker is ``ledger_attacker`` (plain file operations, no root needed inside a container, where its
own ledger is the one file mounted read-write) plus ordinary shim-preloaded processes of its claim; the
victim is an ordinary process of the other claim. For each attack: the victim still gets exactly its
memory limit, promptly, its ledger is untouched, and the node plugin's bounded reader (the only way it
reads claim ledgers) still reads it. Attacks that the mounts forbid (writing the board or the victim's
ledger) are proven against real container mounts in ``tests/e2e/test_podman_tenant_attacks.py``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.simulation.workloads import run_together, tenant_argv, window_busy_ns
from shim import claim_ledger_path
from shim.ledger import ClaimUsage, LedgerError, read_claim_usage
from shim.limits import write_limits_file
from tests.integration.shim.conftest import MIB
from tests.support.shimlib import DeviceDir, ShimSetup, build_program

UUID = "GPU-0000"
LIMIT = 256 * MIB
CHUNK = 16 * MIB
DEVICE_MEMORY = 4096 * MIB
ATTACKER, VICTIM = "claim-attacker", "claim-victim"
PROMPT_SECONDS = 5.0  # a victim's whole fill-up and release; unattacked it takes well under 1 s


@dataclass
class SharedDevice:
    """Two claims on one device, as the node plugin prepares them."""

    root: Path
    setups: dict[str, ShimSetup]

    @property
    def device_dir(self) -> Path:
        return self.root / "devices" / UUID

    def ledger(self, claim: str) -> Path:
        return claim_ledger_path(self.device_dir, claim)

    def usage(self, claim: str) -> ClaimUsage:
        return read_claim_usage(self.ledger(claim))

    def env(self, claim: str) -> dict[str, str]:
        return self.setups[claim].env(
            {"FAKE_CUDA_STATE": str(self.root / "cuda-state"), "FAKE_CUDA_MEMORY": str(DEVICE_MEMORY)}
        )


def _prepare(root: Path, claims: dict[str, tuple[int, Priority, ComputePolicy]]) -> SharedDevice:
    """Board entries and ledgers as the plugin makes them; a limits file per claim naming both."""
    device = DeviceDir(root / "devices" / UUID, UUID, DEVICE_MEMORY)
    setups = {}
    for name, (cores, priority, policy) in claims.items():
        device.prepare(name, LIMIT, cores, priority, policy)
        setup = ShimSetup(root / name, claim=name)
        setup.root.mkdir()
        setup.limits.append(device.limits(name, 0, LIMIT, cores, priority=priority, policy=policy))
        write_limits_file(setup.limits_file, name, setup.limits)
        setups[name] = setup
    return SharedDevice(root, setups)


@pytest.fixture
def device(tmp_path: Path) -> SharedDevice:
    normal, guaranteed = Priority.NORMAL, ComputePolicy.GUARANTEED
    return _prepare(tmp_path, {ATTACKER: (30, normal, guaranteed), VICTIM: (70, normal, guaranteed)})


@pytest.fixture(scope="session")
def attacker_program() -> Path:
    return build_program("ledger_attacker")


class Background:
    """A process left running (holding memory, a lock or slots) until the test ends."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait_for(self, word: str, timeout: float = 10) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            seen += line
            if word in line:
                return seen
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError(f"no {word!r} from {self.proc.args!r}: {seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def background() -> Iterator[list[Background]]:
    running: list[Background] = []
    yield running
    for item in running:
        item.stop()


def _victim_fills_its_limit(device: SharedDevice, cuda_client: Path) -> None:
    """The victim allocates exactly its limit, no more, promptly, and gets every byte back."""
    before = device.usage(VICTIM)
    start = time.monotonic()
    done = subprocess.run(
        [str(cuda_client), "dlsym", "--", "fill", str(CHUNK), "freeall"],
        env=device.env(VICTIM),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - start
    assert f"fill count={LIMIT // CHUNK} rc=2" in done.stdout, done.stdout + done.stderr
    assert seconds < PROMPT_SECONDS, f"the victim took {seconds:.1f} s"
    after = device.usage(VICTIM)
    assert (after.limit_bytes, after.core_percent, after.priority, after.policy) == (
        before.limit_bytes,
        before.core_percent,
        before.priority,
        before.policy,
    )
    assert after.used_bytes == 0
    assert after.peak_bytes == LIMIT


def _attacker_holds(device: SharedDevice, cuda_client: Path, background: list[Background], mib: int) -> None:
    """An ordinary process of the attacking claim holding ``mib`` MiB (its ledger is in use)."""
    holder = Background(
        [str(cuda_client), "dlsym", "--", "alloc", str(mib * MIB), "ready"], device.env(ATTACKER)
    )
    background.append(holder)
    holder.wait_for("ready")


def _attack(program: Path, *args: str | Path) -> str:
    done = subprocess.run(
        [str(program), *map(str, args)], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


@pytest.mark.parametrize(
    "attack",
    [
        ("truncate", "4096"),
        ("truncate", "0"),
        ("garbage",),
        ("magic",),
        ("set", "used_bytes", "0"),
        ("set", "used_bytes", str(1 << 40)),
        ("set", "limit_bytes", "1"),
        ("set", "proc_hwm", "max"),
        ("set", "npending", "max"),
    ],
)
def test_rewriting_its_own_ledger_leaves_the_other_claim_whole(
    device: SharedDevice,
    cuda_client: Path,
    attacker_program: Path,
    background: list[Background],
    attack: tuple[str, ...],
) -> None:
    _attacker_holds(device, cuda_client, background, 64)
    out = _attack(attacker_program, attack[0], device.ledger(ATTACKER), *attack[1:])
    assert " ok" in out, out
    _victim_fills_its_limit(device, cuda_client)
    assert _plugin_read(device.ledger(ATTACKER)) in ("read", "refused")


def _plugin_read(path: Path) -> str:
    """What the plugin's bounded reader makes of a ledger: its numbers, or a clean refusal (never a crash)."""
    try:
        read_claim_usage(path)
    except LedgerError as err:
        return "refused" if "claim ledger" in str(err) else f"unexpected: {err}"
    return "read"


@pytest.mark.parametrize("lock", ["lock", "computelock"])
def test_holding_its_own_ledger_locks_stalls_nobody_else(
    device: SharedDevice, cuda_client: Path, attacker_program: Path, background: list[Background], lock: str
) -> None:
    holder = Background(
        [str(attacker_program), lock, str(device.ledger(ATTACKER)), "ready", "hold", "60"], {}
    )
    background.append(holder)
    holder.wait_for("ready ok")
    _victim_fills_its_limit(device, cuda_client)
    start = time.monotonic()
    usage = device.usage(ATTACKER)  # the plugin's read never takes the lock
    assert time.monotonic() - start < 0.5
    assert usage.key == ATTACKER


def test_filling_its_own_process_slots_refuses_only_its_own_processes(
    device: SharedDevice, cuda_client: Path, attacker_program: Path, background: list[Background]
) -> None:
    filler = Background(
        [str(attacker_program), "fill", str(device.ledger(ATTACKER)), "ready", "hold", "60"], {}
    )
    background.append(filler)
    assert "fill ok 1024" in filler.wait_for("ready ok")
    own = subprocess.run(
        [str(cuda_client), "dlsym", "--", "alloc", str(MIB)],
        env=device.env(ATTACKER),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "alloc rc=2" in own.stdout, own.stdout + own.stderr  # its own new process: no slot, refused
    _victim_fills_its_limit(device, cuda_client)


def test_raising_its_own_limit_in_its_ledger_does_not_lift_the_limits_file(
    device: SharedDevice, cuda_client: Path, attacker_program: Path
) -> None:
    out = _attack(attacker_program, "set", device.ledger(ATTACKER), "limit_bytes", "max")
    assert "set ok" in out
    done = subprocess.run(
        [str(cuda_client), "dlsym", "--", "fill", str(CHUNK)],
        env=device.env(ATTACKER),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f"fill count={LIMIT // CHUNK} rc=2" in done.stdout, done.stdout + done.stderr


def _shares(device: SharedDevice, seconds: float, claims: list[str]) -> dict[str, float]:
    """Percent of the device each claim's tenant program got, median over its windows."""
    epoch = time.monotonic_ns() + 300_000_000
    commands = [
        (tenant_argv("cuda", epoch, seconds, kernel_us=250, batch=4), device.env(name)) for name in claims
    ]
    outputs = run_together(commands, timeout_s=seconds + 60)
    shares = {}
    for name, (code, out, err) in zip(claims, outputs, strict=True):
        assert code == 0, out + err
        busy = sorted(window_busy_ns(out))
        shares[name] = 100.0 * busy[len(busy) // 2] / 1e9
    return shares


@pytest.mark.slow
def test_a_claim_forging_high_priority_and_constant_launches_does_not_hold_others_back(
    tmp_path: Path, attacker_program: Path
) -> None:
    """The attacker's board priority is low; its ledger says high and "launching right now". The victim
    (normal) alone on the device must still borrow the idle device, as it would beside an idle peer."""
    guaranteed = ComputePolicy.GUARANTEED
    device = _prepare(
        tmp_path, {ATTACKER: (30, Priority.LOW, guaranteed), VICTIM: (30, Priority.NORMAL, guaranteed)}
    )
    out = _attack(
        attacker_program,
        "set",
        device.ledger(ATTACKER),
        "priority",
        "2",
        "set",
        device.ledger(ATTACKER),
        "launch_ns",
        "now+1000000000000000000",
    )
    assert out.count(" ok") == 2, out
    shares = _shares(device, 3.0, [VICTIM])
    assert shares[VICTIM] > 80.0, shares  # held back by a forged priority it would get about 0 %
