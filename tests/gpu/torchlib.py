"""Run PyTorch on a real NVIDIA GPU with and without the shim: the harness of the GPU tests and benchmark.

Everything that touches the GPU runs in a subprocess (``torch_probe.py``, ``torch_tenant.py``) under the
interpreter that has PyTorch (``$GPU_TEST_PYTHON``, else this one), so a broken driver or a crash in
the shim fails one run, never the test session. ``GpuNode`` lays out what the node plugin prepares for
a claim on the host: the device's ledger (created and the claim recorded in it as the plugin does) and a
limits file per claim written with ``shim.limits.write_limits_file``. This module itself needs only the
standard library and the project's own ``shim`` package (``shim.ledger`` and its cffi are optional).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from api.errors import XPUShareError
from dra_driver.core.devices import Scheduling
from shim import LIBRARY_ENV, buildinfo
from shim.limits import DeviceLimits, write_limits_file

MIB = 1 << 20
GIB = 1 << 30
PYTHON_ENV = "GPU_TEST_PYTHON"
HERE = Path(__file__).resolve().parent
PROBE_SCRIPT = HERE / "torch_probe.py"
TENANT_SCRIPT = HERE / "torch_tenant.py"
BUILD_DIR = HERE.parent / ".build" / "gpu-shim"
READY_TIMEOUT_S = 240.0
_SCRUBBED_PREFIXES = ("XPUSHARE_", "FAKE_")
_SCRUBBED = {"LD_PRELOAD", "PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF", "CUDA_VISIBLE_DEVICES"}
_TORCH_CHECK = (
    "import sys, torch\n"
    "if not torch.cuda.is_available():\n"
    "    sys.exit(f'torch {torch.__version__}: torch.cuda.is_available() is False')\n"
    "print(torch.__version__, torch.cuda.get_device_name(0))\n"
)


@dataclass(frozen=True)
class Gpu:
    """The GPU under test (nvidia-smi's first one) and the interpreter that drives it."""

    uuid: str
    name: str
    total_bytes: int
    python: str
    torch: str


def torch_python() -> str:
    return os.environ.get(PYTHON_ENV) or sys.executable


def _command(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(True, stdout) when the command succeeded, else (False, why)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                              env=None if env is None else dict(env))
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{' '.join(argv[:2])}: {err}"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        return False, f"{' '.join(argv[:2])} exited {done.returncode}: {tail[:300]}"
    return True, done.stdout


def base_env(uuid: str | None = None) -> dict[str, str]:
    """This environment without shim, allocator or device settings; ``uuid`` pins CUDA to that GPU."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    if uuid:
        env["CUDA_VISIBLE_DEVICES"] = uuid
    return env


@functools.cache
def probe() -> Gpu | str:
    """The GPU to test on, or why there is none. Never raises: a broken driver only makes tests skip."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "no GPU: nvidia-smi is not on PATH"
    ok, listed = _command([smi, "-L"], 60, env=base_env())
    if not ok:
        return f"no GPU: {listed}"
    if not any(line.startswith("GPU ") for line in listed.splitlines()):
        return f"no GPU: nvidia-smi -L lists none ({listed.strip()[:200]!r})"
    query_argv = [smi, "--query-gpu=uuid,memory.total,name", "--format=csv,noheader,nounits"]
    ok, query = _command(query_argv, 60, env=base_env())
    fields = [f.strip() for f in query.splitlines()[0].split(",", 2)] if ok and query.strip() else []
    if len(fields) != 3 or not fields[0].startswith("GPU-") or not fields[1].isdigit():
        return f"no GPU: nvidia-smi --query-gpu gave {query.strip()[:300]!r}"
    uuid, total_mib, name = fields
    python = torch_python()
    ok, checked = _command([python, "-c", _TORCH_CHECK], 300, env=base_env(uuid))
    if not ok:
        return f"no usable GPU in PyTorch under {python} (set ${PYTHON_ENV}): {checked}"
    return Gpu(uuid, name, int(total_mib) * MIB, python, (checked.split() or ["?"])[0])


def find_shim() -> Path | str:
    """The shim's test build, compiled here from the sources (``shim.buildinfo.compile_command`` with the
    test hooks, so ``XPUSHARE_LIMITS_FILE`` names each claim's limits file; the packaged library ignores
    the variable and reads only ``/etc/xpushare/limits``), into a directory named by the sources' hash,
    so a GPU machine without the project installed tests the sources it was sent.
    """
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        return "no C compiler to build the shim's test build"
    inputs = [*buildinfo.sources(), *sorted(buildinfo.INCLUDE_DIR.glob("*.h")), buildinfo.VERSION_SCRIPT]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in inputs) + b"test-hooks").hexdigest()[:16]
    target = BUILD_DIR / digest / buildinfo.LIBRARY_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / buildinfo.LIBRARY_NAME
        ok, output = _command(buildinfo.compile_command(compiler, built, test_hooks=True), 300)
        if not ok:
            return f"shim build failed: {output}"
        os.replace(built, target)
    return target


@dataclass(frozen=True)
class Claim:
    """One claim's limits on the GPU (what the node plugin writes into its limits file and the ledger)."""

    name: str
    memory_bytes: int = 8 * GIB
    cores: int = 100
    policy: str = "guaranteed"
    priority: str = "normal"


@dataclass(frozen=True)
class Run:
    """A finished subprocess and the JSON of its ``RESULT`` line (None when it printed none)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, object] | None

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return (f"rc={self.returncode} result={self.result} stdout={self.stdout[-500:]!r}\n"
                f"stderr tail:\n{tail}")


def parse_result(stdout: str) -> dict[str, object] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            loaded = json.loads(line[len("RESULT "):])
            return loaded if isinstance(loaded, dict) else None
    return None


class GpuNode:
    """A node's run directory in miniature: the GPU's directory (board, claim ledgers) and one limits file
    per claim, laid out as the node plugin lays them out."""

    def __init__(self, root: Path, gpu: Gpu, shim: Path,
                 scheduling: Scheduling = Scheduling.TIME_SLICED) -> None:
        """``scheduling``: what the limits files tell the shim of the GPU (NVIDIA GPUs time-slice)."""
        self.root = root
        self.scheduling = scheduling
        self.gpu = gpu
        self.shim = shim
        self.ledger_registered = False
        (self.device_dir / "claims").mkdir(parents=True, exist_ok=True)
        (root / "limits").mkdir(parents=True, exist_ok=True)

    @property
    def device_dir(self) -> Path:
        return self.root / "devices" / self.gpu.uuid

    @property
    def board_path(self) -> Path:
        return self.device_dir / "board"

    def ledger_path(self, claim: Claim) -> Path:
        return self.device_dir / "claims" / claim.name

    def limits_file(self, claim: Claim) -> Path:
        return self.root / "limits" / f"{claim.name}.limits"

    def prepare(self, claim: Claim) -> Path:
        """Put the claim on the board, create its ledger and write its limits file (NodePrepareResources)."""
        self.ledger_registered = self._register(claim)
        device = DeviceLimits(uuid=self.gpu.uuid, index=0, memory_limit_bytes=claim.memory_bytes,
                              core_percent=claim.cores, priority=claim.priority, policy=claim.policy,
                              ledger_path=str(self.ledger_path(claim)), board_path=str(self.board_path),
                              scheduling=self.scheduling)
        path = self.limits_file(claim)
        path.unlink(missing_ok=True)
        return write_limits_file(path, claim.name, [device])

    def _register(self, claim: Claim) -> bool:
        """As the plugin's prepare; without cffi the shim creates its ledger itself and, with no board,
        each claim acts as if alone on the GPU (compute shares between claims are then not enforced)."""
        try:
            from shim.ledger import Board, ClaimLedger
        except ImportError:
            return False
        os.environ[LIBRARY_ENV] = str(self.shim)  # the binding must load the library that is preloaded
        with Board.open(self.board_path, self.gpu.uuid, self.gpu.total_bytes) as board:
            board.set(claim.name, claim.memory_bytes, claim.cores, claim.priority, claim.policy)
        ClaimLedger.create(self.ledger_path(claim), claim.name, self.gpu.uuid, claim.memory_bytes,
                           claim.cores, priority=claim.priority, policy=claim.policy)
        return True

    def usage(self, claim: Claim) -> tuple[int, int] | None:
        """The claim's (used, peak) bytes in its ledger, when the ledger can be read from Python."""
        if not self.ledger_registered:
            return None
        from shim.ledger import read_claim_usage

        usage = read_claim_usage(self.ledger_path(claim))
        return usage.used_bytes, usage.peak_bytes

    def env(self, claim: Claim | None, *, preload: bool = True,
            extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A process of ``claim`` (shim preloaded, its limits file named); ``None``: no limits file."""
        env = base_env(self.gpu.uuid)
        if preload:
            env["LD_PRELOAD"] = str(self.shim)
        if claim is not None:
            if not self.limits_file(claim).is_file():
                self.prepare(claim)
            env["XPUSHARE_LIMITS_FILE"] = str(self.limits_file(claim))
        env.update(extra or {})
        return env

    def run(self, argv: Sequence[str | Path], env: Mapping[str, str], timeout: float = 240) -> Run:
        """Run a command to completion; a timeout is reported as a failed run, never raised."""
        args = tuple(str(a) for a in argv)
        try:
            done = subprocess.run(args, env=dict(env), capture_output=True, text=True, timeout=timeout,
                                  check=False, cwd=self.root)
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else err.stdout or ""
            return Run(args, -1, out, f"timed out after {timeout} s", None)
        return Run(args, done.returncode, done.stdout, done.stderr, parse_result(done.stdout))

    def probe(self, *args: str, env: Mapping[str, str], timeout: float = 240) -> Run:
        """``torch_probe.py`` under the GPU's interpreter."""
        return self.run([self.gpu.python, str(PROBE_SCRIPT), *args], env, timeout)

    def smi(self, env: Mapping[str, str], query: str = "memory.total") -> Run:
        return self.run(["nvidia-smi", f"--id={self.gpu.uuid}", f"--query-gpu={query}",
                         "--format=csv,noheader,nounits"], env, 60)


# --- compute: matmul tenants, one claim each ---------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    """A claim running ``torch_tenant.py``: back-to-back matmuls, or a serving loop with ``gap_ms``."""

    claim: Claim
    gap_ms: float = 0.0


@dataclass(frozen=True)
class TenantRun:
    tenant: Tenant
    counts: tuple[int, ...]  # matmuls completed per window
    window_s: float
    clocks: GpuClocks | None = None  # the GPU's SM clock and power while the run's tenants ran
    step_ends_ns: tuple[int, ...] = ()  # when each step completed, ns after the common start
    per_step: int = 0  # matmuls (tokens) a step completes

    def rate(self) -> float:
        """Work per second from the first step completed after the first window (start-up) to the last:
        exact to a step's time, where a window count is off by up to one step (about 2 % of a 1 s window
        of 256-token steps, too coarse for a 1 % check)."""
        skip = int(self.window_s * 1e9) if len(self.counts) > 2 else 0
        ends = [t for t in self.step_ends_ns if t >= skip]
        if len(ends) < 2 or ends[-1] <= ends[0]:
            return 0.0
        return (len(ends) - 1) * self.per_step / ((ends[-1] - ends[0]) / 1e9)

    def steady(self) -> list[int]:
        """The windows after the first (start-up), when there are more than two."""
        return list(self.counts[1:] if len(self.counts) > 2 else self.counts)

    def median(self) -> float:
        return float(statistics.median(self.steady()))

    @property
    def total(self) -> int:
        return sum(self.counts)


def share_per_clock(run: TenantRun, base: TenantRun) -> tuple[float, float]:
    """``run``'s throughput as a percent of ``base``'s, per SM clock cycle and raw. A power-capped GPU runs
    its clock higher at a low duty cycle than flat out, so a capped tenant's device time does more work
    than the same time of a saturating one: the share of device time is the per-cycle figure."""
    raw = 100 * run.median() / base.median()
    if run.clocks is None or base.clocks is None or run.clocks.sm_mhz <= 0:
        return raw, raw
    return raw * base.clocks.sm_mhz / run.clocks.sm_mhz, raw


def splits(runs: Sequence[TenantRun]) -> list[list[float]]:
    """Per tenant, its percent of all tenants' matmuls in each steady window."""
    columns = list(zip(*(r.steady() for r in runs), strict=True))
    return [[100.0 * window[i] / max(1, sum(window)) for window in columns] for i in range(len(runs))]


class TenantError(XPUShareError):
    """A tenant process failed to start, to initialise CUDA, or to report its counts."""


@dataclass(frozen=True)
class Workload:
    """What every tenant of a run computes: ``batch`` matmuls of ``size`` x ``size``, then a sync; or, with
    ``model="gpt2"``, a small transformer generating ``batch`` tokens per sequence (counts are tokens)."""

    size: int = 4096
    dtype: str = "bfloat16"
    batch: int = 8
    window_s: float = 1.0
    device: str = "cuda"
    model: str = "matmul"


@dataclass(frozen=True)
class GpuClocks:
    """Medians of nvidia-smi's samples over a run: a power-capped GPU lowers its SM clock under load, so
    the same device time does more work at a low duty cycle than at a full one."""

    sm_mhz: float
    power_w: float

    def describe(self) -> str:
        return f"SM {self.sm_mhz:.0f} MHz, {self.power_w:.0f} W"


class ClockSampler:
    """``nvidia-smi -lms`` in the background for the length of a run; never fails the run."""

    def __init__(self, uuid: str | None, interval_ms: int = 100) -> None:
        argv = ["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader,nounits",
                f"-lms={interval_ms}"]
        if uuid:
            argv.append(f"--id={uuid}")
        try:
            self._proc: subprocess.Popen[str] | None = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None

    def stop(self) -> GpuClocks | None:
        if self._proc is None:
            return None
        self._proc.terminate()
        try:
            out, _ = self._proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        samples = []
        for line in out.splitlines():
            fields = [f.strip() for f in line.split(",")]
            with contextlib.suppress(ValueError):
                samples.append((float(fields[0]), float(fields[1])))
        if not samples:
            return None
        return GpuClocks(statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))


def _start_tenant(node: GpuNode, tenant: Tenant, stem: Path, *, seconds: float, work: Workload,
                  preload: bool) -> subprocess.Popen[str]:
    argv = [node.gpu.python, str(TENANT_SCRIPT), f"--seconds={seconds}", f"--window={work.window_s}",
            f"--size={work.size}", f"--dtype={work.dtype}", f"--batch={work.batch}",
            f"--gap-ms={tenant.gap_ms}", f"--device={work.device}", f"--model={work.model}",
            f"--ready-file={stem}.ready"]
    env = node.env(tenant.claim if preload else None, preload=preload)
    with open(f"{stem}.out", "w") as out, open(f"{stem}.err", "w") as err:
        return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err, text=True,
                                cwd=node.root)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError as err:
        return f"({path}: {err})"


def _await_ready(procs: Sequence[subprocess.Popen[str]], stems: Sequence[Path]) -> None:
    """Wait (polling every 50 ms, bounded) until every tenant has initialised CUDA and warmed up."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all(Path(f"{stem}.ready").exists() for stem in stems):
        for proc, stem in zip(procs, stems, strict=True):
            if proc.poll() is not None and not Path(f"{stem}.ready").exists():
                raise TenantError(f"tenant {stem.name} exited {proc.returncode} before it was ready:\n"
                                  f"{_tail(Path(f'{stem}.err'))}")
        if time.monotonic() > deadline:
            raise TenantError(f"tenants not ready within {READY_TIMEOUT_S} s")
        time.sleep(0.05)


def _result(tenant: Tenant, stem: Path, returncode: int | None) -> TenantRun:
    stdout = Path(f"{stem}.out").read_text(errors="replace")
    result = parse_result(stdout)
    counts = result.get("counts") if result else None
    window = result.get("window_s") if result else None
    if returncode != 0 or not isinstance(counts, list) or not isinstance(window, int | float):
        raise TenantError(f"tenant {tenant.claim.name} exited {returncode} without counts: "
                          f"{stdout[-300:]!r}\n{_tail(Path(f'{stem}.err'))}")
    ends = result.get("step_ends_ns") if result else None
    per_step = result.get("per_step") if result else None
    return TenantRun(tenant, tuple(int(c) for c in counts), float(window),
                     step_ends_ns=tuple(int(t) for t in ends) if isinstance(ends, list) else (),
                     per_step=per_step if isinstance(per_step, int) else 0)


def run_tenants(node: GpuNode, tenants: Sequence[Tenant], seconds: float, *, preload: bool = True,
                work: Workload | None = None) -> list[TenantRun]:
    """Run the tenants together from one start time, each once it has initialised CUDA and warmed up."""
    work = work or Workload()
    run_dir = Path(tempfile.mkdtemp(prefix="tenants-", dir=node.root))
    stems = [run_dir / f"{i}-{t.claim.name}" for i, t in enumerate(tenants)]
    procs: list[subprocess.Popen[str]] = []
    sampler: ClockSampler | None = None
    try:
        for tenant, stem in zip(tenants, stems, strict=True):
            procs.append(_start_tenant(node, tenant, stem, seconds=seconds, work=work, preload=preload))
        _await_ready(procs, stems)
        sampler = ClockSampler(node.gpu.uuid if work.device == "cuda" else None)
        epoch = time.monotonic_ns() + 200_000_000  # CLOCK_MONOTONIC: the same clock in every process
        for proc in procs:
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):  # a dead tenant is reported below
                    proc.stdin.write(f"{epoch}\n")
                    proc.stdin.close()
        deadline = time.monotonic() + seconds + 120
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as err:
        raise TenantError(f"tenants still running {seconds + 120} s after the start: {err}") from err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
        clocks = sampler.stop() if sampler is not None else None
    return [dataclasses.replace(_result(t, stem, p.returncode), clocks=clocks)
            for t, stem, p in zip(tenants, stems, procs, strict=True)]


def run_alone_without_shim(node: GpuNode, seconds: float, work: Workload | None = None) -> TenantRun:
    """The workload alone on the GPU without the shim: what 100 % of the device gives it (the baseline of
    the share and overhead checks); it must have made progress."""
    (run,) = run_tenants(node, [Tenant(Claim("alone"))], seconds, preload=False, work=work)
    assert run.median() > 0, f"no progress alone without the shim ({work or Workload()}): {run.counts}"
    return run


def run_30_70(node: GpuNode, seconds: float, *, preload: bool = True,
              work: Workload | None = None) -> tuple[float, float, list[TenantRun]]:
    """A 30 % and a 70 % guaranteed claim side by side: the median split of their work, and the runs."""
    runs = run_tenants(node, [Tenant(Claim("a30", cores=30)), Tenant(Claim("b70", cores=70))], seconds,
                       preload=preload, work=work)
    low, high = (statistics.median(split) for split in splits(runs))
    return low, high, runs
