"""Build the shim and the fake vendor runtimes, and run programs with the shim preloaded.

Shared by the shim's own tests, the benchmarks and any test that needs a limited process (CDI/podman,
GPU). ``TenantGroup`` runs tenant processes (claims) sharing one fake device and measures the share of
the device each got (the demo's version is ``simulation.workloads.split_shares``). Everything is compiled
through ``compile_c`` (cached by content), with the shim's flags taken from ``shim/buildinfo.py`` so
tests exercise the library as ``pip install`` builds it, plus the test hooks (``XPUSHARE_LIMITS_FILE``
names the limits file; ``build_production_shim`` is the build without them).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from api.v1alpha1.sharing import ComputePolicy, Priority
from dra_driver.core.devices import Scheduling
from dra_driver.simulation.cbuild import compile_c
from dra_driver.simulation.workloads import (
    PROGRAMS_DIR,
    START_DELAY_NS,
    build_fake_ascend,
    build_fake_cuda,
    build_simulation_shim,
    build_tenant,
    run_together,
    tenant_argv,
    window_busy_ns,
)
from shim import board_path, buildinfo, claim_ledger_path
from shim.ledger import Board, ClaimLedger
from shim.limits import DeviceLimits, write_limits_file
from tests.support.fakevendor import build_fake_nvml

FAKE_MAX_DEVICES = 8
# Client programs of the tests; the tenant program ships with the simulation (``PROGRAMS_DIR``).
TEST_PROGRAMS_DIR = Path(__file__).resolve().parents[1] / "integration" / "shim" / "programs"


def build_shim() -> Path:
    """The test build: the package's flags plus the test hooks (``XPUSHARE_LIMITS_FILE`` is honoured)."""
    return build_simulation_shim()


def build_production_shim() -> Path:
    """The shim exactly as ``pip install`` builds it (no test hooks), cached like the other builds."""
    map_hash = hashlib.sha256(buildinfo.VERSION_SCRIPT.read_bytes()).hexdigest()[:12]
    flags = [*buildinfo.cflags(), f"-I{buildinfo.INCLUDE_DIR}", *buildinfo.link_flags(),
             f"-DXPS_MAP_{map_hash}"]
    return compile_c(buildinfo.sources(), buildinfo.LIBRARY_NAME, shared=True, flags=flags, libs=["-ldl"])


def build_program(name: str, *, linked_cuda: bool = False) -> Path:
    source = PROGRAMS_DIR / f"{name}.c"
    if not source.is_file():
        source = TEST_PROGRAMS_DIR / f"{name}.c"
    if linked_cuda:
        cuda = build_fake_cuda()
        return compile_c([source], f"{name}_linked", flags=["-DLINKED", f"-Wl,-rpath,{cuda.parent}"],
                         libs=[str(cuda), "-ldl"])
    return compile_c([source], name, libs=["-ldl"])


@dataclass
class FakeState:
    """The shared state file of a fake runtime: bytes held per device now and at their peak."""

    path: Path

    def _words(self) -> tuple[int, ...]:
        data = self.path.read_bytes()[: 8 * (1 + 4 * FAKE_MAX_DEVICES)]
        return struct.unpack(f"<{len(data) // 8}Q", data)

    def allocated(self, device: int = 0) -> int:
        return self._words()[1 + device]

    def peak(self, device: int = 0) -> int:
        return self._words()[1 + FAKE_MAX_DEVICES + device]

    def launches(self, device: int = 0) -> int:
        return self._words()[1 + 3 * FAKE_MAX_DEVICES + device]


@dataclass
class ShimSetup:
    """A claim's limits file, ledgers and fake device state under one directory, and the env to run in.

    Each device is laid out as the node plugin lays it out (``<root>/devices/<uuid>/``: the board with
    the claim's entry, the claim's ledger under ``claims/``, both named on its limits file line; see
    ``DeviceDir``). With ``plugin=False`` the claim is alone as without a plugin: no board, and its
    processes create its ledger of each device themselves with the limits file's values."""

    root: Path
    claim: str = "claim-a"
    limits: list[DeviceLimits] = field(default_factory=list)
    preload: bool = True
    plugin: bool = True

    @property
    def limits_file(self) -> Path:
        return self.root / "limits"

    def device_dir(self, uuid: str) -> DeviceDir:
        return DeviceDir(self.root / "devices" / uuid, uuid)

    def ledger_path(self, index: int = 0) -> Path:
        """The claim's ledger of the device at container ordinal ``index`` (added with ``add_device``)."""
        if self.plugin:
            for device in self.limits:
                if device.index == index:
                    return Path(device.ledger_path)
            raise LookupError(f"no device {index} added to {self.root}")
        return self.root / f"ledger-{index}"

    def add_device(self, index: int, memory: int, uuid: str | None = None, cores: int = 50,
                   scheduling: Scheduling = Scheduling.SERIAL) -> DeviceLimits:
        """The claim's device at ordinal ``index``: prepared as the plugin does (board entry and ledger)
        unless ``plugin`` is off, and its line added to the limits file."""
        uuid = uuid or f"GPU-{index:04d}"
        if self.plugin:
            device_dir = self.device_dir(uuid)
            device_dir.prepare(self.claim, memory, cores)
            device = device_dir.limits(self.claim, index, memory, cores, scheduling=scheduling)
        else:
            device = DeviceLimits(uuid=uuid, index=index, memory_limit_bytes=memory, core_percent=cores,
                                  ledger_path=str(self.ledger_path(index)))
        self.limits.append(device)
        write_limits_file(self.limits_file, self.claim, self.limits)
        return device

    def env(self, extra: Mapping[str, str] | None = None, *, limits: bool = True) -> dict[str, str]:
        cuda = build_fake_cuda()
        runtime, acl = build_fake_ascend()
        nvml = build_fake_nvml()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XPUSHARE_", "FAKE_"))}
        env["LD_LIBRARY_PATH"] = ":".join(str(p.parent) for p in (cuda, runtime, acl, nvml))
        env["FAKE_CUDA_STATE"] = str(self.root / "cuda-state")
        env["FAKE_ASCEND_STATE"] = str(self.root / "ascend-state")
        if self.preload:
            env["LD_PRELOAD"] = str(build_shim())
        if limits and self.limits:
            env["XPUSHARE_LIMITS_FILE"] = str(self.limits_file)
        env.update(extra or {})
        return env

    @property
    def cuda_state(self) -> FakeState:
        return FakeState(self.root / "cuda-state")

    @property
    def ascend_state(self) -> FakeState:
        return FakeState(self.root / "ascend-state")

    def run(self, argv: Sequence[str | int | Path], *, timeout: float = 30,
            extra: Mapping[str, str] | None = None, limits: bool = True) -> Result:
        """Run a program to completion in this setup's environment (shim preloaded)."""
        done = subprocess.run([str(a) for a in argv], env=self.env(extra, limits=limits), capture_output=True,
                              text=True, timeout=timeout, check=False)
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(prefix)]

    def value(self, prefix: str, key: str, nth: int = 0) -> int:
        """The integer ``key=`` on the nth line starting with ``prefix``."""
        for part in self.lines(prefix)[nth].split():
            if part.startswith(f"{key}="):
                return int(part.partition("=")[2])
        raise KeyError(f"{key} not in {self.lines(prefix)[nth]!r}")

    def codes(self, prefix: str) -> list[int]:
        return [self.value(prefix, "rc", i) for i in range(len(self.lines(prefix)))]


# --- compute shares: tenants on one fake device -----------------------------------------------------------


@dataclass(frozen=True)
class TenantSpec:
    """One claim running the ``tenant`` program on the shared fake device (see programs/tenant.c)."""

    name: str
    cores: int = 100
    policy: str = "guaranteed"
    priority: str = "normal"
    kernel_us: int = 250
    batch: int = 4
    gap_us: int = 0
    kind: str = "kernel"
    vendor: str = "cuda"
    memory: int = 64 << 20


@dataclass(frozen=True)
class TenantResult:
    spec: TenantSpec
    busy_ns: tuple[int, ...]
    batches: tuple[int, ...]
    window_ns: int

    def shares(self) -> list[float]:
        """Percent of the device this tenant got in each window."""
        return [100.0 * busy / self.window_ns for busy in self.busy_ns]

    @property
    def total_batches(self) -> int:
        return sum(self.batches)


@dataclass(frozen=True)
class DeviceDir:
    """A device's directory as the node plugin lays it out: its board and its claims' ledgers."""

    path: Path
    uuid: str
    total_bytes: int = 0

    @property
    def board(self) -> Path:
        return board_path(self.path)

    def ledger(self, claim: str) -> Path:
        return claim_ledger_path(self.path, claim)

    def prepare(self, claim: str, memory: int, cores: int = 100, priority: Priority | str = Priority.NORMAL,
                policy: ComputePolicy | str = ComputePolicy.GUARANTEED) -> None:
        """What NodePrepareResources does for a claim on the device: its board entry and its ledger."""
        prio, pol = Priority(priority), ComputePolicy(policy)
        (self.path / "claims").mkdir(parents=True, exist_ok=True)
        with Board.open(self.board, self.uuid, self.total_bytes) as board:
            board.set(claim, memory, cores, prio, pol)
        ClaimLedger.create(self.ledger(claim), claim, self.uuid, memory, cores, priority=prio, policy=pol)

    def set_quota(self, claim: str, memory: int, cores: int, priority: Priority | str = Priority.NORMAL,
                  policy: ComputePolicy | str = ComputePolicy.GUARANTEED) -> None:
        """A live quota change as the plugin makes it: the claim's board entry."""
        with Board.open(self.board, self.uuid, self.total_bytes) as board:
            board.set(claim, memory, cores, Priority(priority), ComputePolicy(policy))

    def limits(self, claim: str, index: int, memory: int, cores: int = 100, *,
               priority: Priority | str = Priority.NORMAL,
               policy: ComputePolicy | str = ComputePolicy.GUARANTEED,
               scheduling: Scheduling = Scheduling.SERIAL, **extra: int | None) -> DeviceLimits:
        """The claim's limits file line for this device, naming its ledger and the board."""
        return DeviceLimits(uuid=self.uuid, index=index, memory_limit_bytes=memory, core_percent=cores,
                            priority=Priority(priority), policy=ComputePolicy(policy),
                            ledger_path=str(self.ledger(claim)), board_path=str(self.board),
                            memory_max_bytes=extra.get("memory_max"), core_max_percent=extra.get("cores_max"),
                            scheduling=scheduling)


class TenantGroup:
    """Claims sharing one device (its board, one ledger per claim, one fake device timeline), each with its
    own limits file."""

    def __init__(self, root: Path, *, preload: bool = True, uuid: str = "GPU-0000",
                 device: Scheduling = Scheduling.SERIAL, accounting: Scheduling | None = None,
                 slice_us: int = 0) -> None:
        """``device``: how the fake device shares its time; ``accounting``: what the limits files tell
        the shim about it (the device's own way unless given); ``slice_us``: a time-sliced device's
        contexts take turns of this length instead of sharing its time evenly at every instant."""
        self.root = root
        self.slice_us = slice_us
        self.preload = preload
        self.scheduling = device
        self.accounting = device if accounting is None else accounting
        self.uuid = uuid
        self.device = DeviceDir(root / "devices" / uuid, uuid)
        (root / "limits").mkdir(parents=True, exist_ok=True)

    def ledger_path(self, name: str) -> Path:
        """Laid out as the node plugin's run directory: ``<root>/devices/<uuid>/claims/<name>``."""
        return self.device.ledger(name)

    def limits_file(self, name: str) -> Path:
        return self.root / "limits" / f"{name}.limits"

    def write_limits(self, spec: TenantSpec, *, cores_max: int | None = None,
                     memory_max: int | None = None) -> None:
        """Prepare the claim as the plugin does: board entry, ledger, limits file."""
        self.device.prepare(spec.name, spec.memory, spec.cores, spec.priority, spec.policy)
        device = self.device.limits(spec.name, 0, spec.memory, spec.cores, priority=spec.priority,
                                    policy=spec.policy, memory_max=memory_max, cores_max=cores_max,
                                    scheduling=self.accounting)
        path = self.limits_file(spec.name)
        path.unlink(missing_ok=True)
        write_limits_file(path, spec.name, [device])

    def env(self, name: str) -> dict[str, str]:
        cuda = build_fake_cuda()
        runtime, acl = build_fake_ascend()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XPUSHARE_", "FAKE_"))}
        env["LD_LIBRARY_PATH"] = ":".join(str(p.parent) for p in (cuda, runtime, acl))
        env["FAKE_CUDA_STATE"] = str(self.root / "cuda-state")
        env["FAKE_ASCEND_STATE"] = str(self.root / "ascend-state")
        if self.scheduling is Scheduling.TIME_SLICED:
            env["FAKE_CUDA_TIMESLICED"] = env["FAKE_ASCEND_TIMESLICED"] = "1"
            if self.slice_us:
                env["FAKE_CUDA_SLICE_US"] = env["FAKE_ASCEND_SLICE_US"] = str(self.slice_us)
        if self.preload:
            env["LD_PRELOAD"] = str(build_shim())
        env["XPUSHARE_LIMITS_FILE"] = str(self.limits_file(name))
        return env

    def run(self, tenants: Sequence[TenantSpec], seconds: float, *, window_ms: int = 1000,
            during: Callable[[int], None] | None = None) -> list[TenantResult]:
        """Run the tenants together from one start time; ``during(epoch_ns)`` runs while they do."""
        build_tenant()
        for spec in tenants:
            self.env(spec.name)  # builds the shim and the fakes before the clock starts
            if not self.limits_file(spec.name).exists():
                self.write_limits(spec)
        epoch = time.monotonic_ns() + START_DELAY_NS
        commands = [
            (tenant_argv(spec.vendor, epoch, seconds, kernel_us=spec.kernel_us, batch=spec.batch,
                         gap_us=spec.gap_us, kind=spec.kind, window_ms=window_ms), self.env(spec.name))
            for spec in tenants
        ]
        hook = None if during is None else (lambda: during(epoch))
        outputs = run_together(commands, timeout_s=seconds + 60, during=hook)
        return [_tenant_result(spec, out, err, code, window_ms)
                for spec, (code, out, err) in zip(tenants, outputs, strict=True)]


def _tenant_result(spec: TenantSpec, out: str, err: str, code: int, window_ms: int) -> TenantResult:
    if code != 0:
        raise RuntimeError(f"tenant {spec.name} failed ({code}): {out}{err}")
    result = Result(code, out, err)
    rows = range(len(result.lines("window")))
    return TenantResult(spec, tuple(window_busy_ns(out)),
                        tuple(result.value("window", "batches", i) for i in rows), window_ms * 1_000_000)
