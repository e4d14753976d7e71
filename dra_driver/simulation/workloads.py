"""Workloads on the simulated devices, run with the shim preloaded as a claim's container would run them.

The simulated devices are the fake vendor runtimes written in C under ``csrc/fakes`` (they model device
memory and a device timeline that serializes the kernels of every process, like a time-sliced device),
and the workload program ``csrc/programs/tenant.c``. Both ship with the package, so these workloads run
wherever XPUShare is installed with a C compiler beside it (the demo, the tests, the benchmarks);
``WorkloadUnavailable`` says what is missing otherwise. Everything is compiled through ``compile_c``.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from api.errors import XPUShareError
from dra_driver.simulation.cbuild import compile_c, have_compiler
from kubeletplugin.paths import NodePaths
from shim import buildinfo
from shim.limits import read_limits_file, write_limits_file

CSRC_DIR = Path(__file__).resolve().parent / "csrc"
FAKES_DIR = CSRC_DIR / "fakes"
PROGRAMS_DIR = CSRC_DIR / "programs"
START_DELAY_NS = 300_000_000  # every process initialised before the common start

# Allocates ``count`` chunks through the CUDA driver API (as a framework does, by dlsym) and reports
# each result code, then what cuMemGetInfo says: the limit, not the device, when the shim is loaded.
_MEMORY_SCRIPT = """
import ctypes, sys
chunk, count = int(sys.argv[1]), int(sys.argv[2])
cuda = ctypes.CDLL("libcuda.so.1")
ctx, ptr = ctypes.c_void_p(), ctypes.c_ulonglong()
assert cuda.cuInit(0) == 0 and cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, 0) == 0
for _ in range(count):
    print("alloc", cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(chunk)))
free, total = ctypes.c_size_t(), ctypes.c_size_t()
cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total))
print("info", free.value, total.value)
"""


# On each NPU number the process uses (ACL's device ids, as inside the container), allocates ``chunk``
# bytes until refused and reports how many fit and what aclrtGetMemInfo says.
_NPU_MEMORY_SCRIPT = """
import ctypes, sys
chunk, devices = int(sys.argv[1]), int(sys.argv[2])
acl = ctypes.CDLL("libascendcl.so")
ptr, free, total = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_size_t()
for device in range(devices):
    assert acl.aclrtSetDevice(device) == 0, device
    count, rc = 0, 0
    while count < 4096 and (rc := acl.aclrtMalloc(ctypes.byref(ptr), ctypes.c_size_t(chunk), 0)) == 0:
        count += 1
    acl.aclrtGetMemInfo(0, ctypes.byref(free), ctypes.byref(total))
    print("device", device, count, rc, total.value)
"""


class WorkloadUnavailable(XPUShareError):  # noqa: N818 - reads as the reason a step is skipped
    """The simulated devices cannot be built here (no source tree or no C compiler)."""


def require_simulated_devices() -> None:
    if not (FAKES_DIR / "cuda" / "fake_cuda.c").is_file():
        raise WorkloadUnavailable(f"the fake vendor runtimes are missing from {FAKES_DIR}: reinstall")
    if not have_compiler():
        raise WorkloadUnavailable("no C compiler (gcc) to build the fake vendor runtimes")


def build_fake_cuda() -> Path:
    # -Bsymbolic: cuGetProcAddress must hand out the library's own functions, as the real driver does.
    return compile_c([FAKES_DIR / "cuda" / "fake_cuda.c"], "libcuda.so.1", shared=True,
                     flags=[f"-I{FAKES_DIR / 'common'}", "-Wl,-Bsymbolic"])


def build_fake_ascend() -> tuple[Path, Path]:
    """libruntime.so and libascendcl.so (linked to that libruntime.so)."""
    runtime = compile_c([FAKES_DIR / "ascend" / "fake_runtime.c"], "libruntime.so", shared=True,
                        flags=[f"-I{FAKES_DIR / 'common'}"])
    acl = compile_c([FAKES_DIR / "ascend" / "fake_ascendcl.c"], "libascendcl.so", shared=True,
                    flags=[f"-Wl,-rpath,{runtime.parent}"], libs=[str(runtime)])
    return runtime, acl


def build_simulation_shim() -> Path:
    """The shim built from the package's sources with the test hooks (``shim.buildinfo``), so processes on
    the host read the limits file ``XPUSHARE_LIMITS_FILE`` names. The packaged library ignores that variable
    and reads only the fixed container path, which a process on the host does not have: it would refuse
    every allocation. Flags and sources are the package build's; only the test hooks are added."""
    # The version script is read by the linker, not the compiler: its hash keys the build cache too.
    map_hash = hashlib.sha256(buildinfo.VERSION_SCRIPT.read_bytes()).hexdigest()[:12]
    flags = [*buildinfo.cflags(test_hooks=True), f"-I{buildinfo.INCLUDE_DIR}", *buildinfo.link_flags(),
             f"-DXPS_MAP_{map_hash}"]
    return compile_c(buildinfo.sources(), buildinfo.LIBRARY_NAME, shared=True, flags=flags, libs=["-ldl"])


def build_tenant() -> Path:
    return compile_c([PROGRAMS_DIR / "tenant.c"], "tenant", libs=["-ldl"])


def cuda_environment(shim: Path | None, limits_file: Path | None, state_dir: Path,
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process on the fake CUDA device, as a claim's container sets it up.

    ``shim`` must be a simulation build (``build_simulation_shim``) for ``limits_file`` to be read."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith(("XPUSHARE_", "FAKE_", "LD_PRELOAD"))}
    env["LD_LIBRARY_PATH"] = str(build_fake_cuda().parent)
    env["FAKE_CUDA_STATE"] = str(state_dir / "cuda-state")
    if shim is not None:
        env["LD_PRELOAD"] = str(shim)
    if limits_file is not None:
        env["XPUSHARE_LIMITS_FILE"] = str(limits_file)
    return env


def host_view_limits(limits_file: Path, paths: NodePaths, out: Path) -> Path:
    """A copy of a claim's limits file whose ledger and board paths are the host's, not the container's.

    Inside the container the claim's ledger of each device and the device's directory are mounted at the
    paths the limits file names; a process on the host reaches the same files under the plugin's
    ``paths``.
    """
    limits = read_limits_file(limits_file)
    devices = [replace(d, ledger_path=str(paths.claim_ledger(d.uuid, limits.claim_uid)),
                       board_path=str(paths.board(d.uuid)))
               if d.ledger_path else d
               for d in limits.devices]
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_limits_file(out, limits.claim_uid, devices)


@dataclass(frozen=True)
class MemoryRun:
    codes: tuple[int, ...]
    free_bytes: int
    total_bytes: int


def run_memory_workload(env: Mapping[str, str], chunk_bytes: int, count: int) -> MemoryRun:
    """Allocate ``count`` chunks of ``chunk_bytes``; the CUDA result code of each and the memory info."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(chunk_bytes), str(count)],
                          env=dict(env), capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise XPUShareError(f"memory workload failed ({done.returncode}): {done.stderr.strip()}")
    lines = [line.split() for line in done.stdout.splitlines()]
    codes = tuple(int(words[1]) for words in lines if words[0] == "alloc")
    free, total = next((int(w[1]), int(w[2])) for w in lines if w[0] == "info")
    return MemoryRun(codes, free, total)


def tenant_argv(vendor: str, epoch_ns: int, seconds: float, *, kernel_us: int = 250, batch: int = 4,
                gap_us: int = 0, kind: str = "kernel", window_ms: int = 1000) -> list[str]:
    """The tenant program: launches ``kernel_us`` kernels in batches, reporting device time per window."""
    return [str(build_tenant()), vendor, f"epoch={epoch_ns}", f"seconds={seconds}", f"kernel_us={kernel_us}",
            f"batch={batch}", f"gap_us={gap_us}", f"kind={kind}", f"window_ms={window_ms}"]


def run_together(commands: Sequence[tuple[list[str], Mapping[str, str]]], timeout_s: float,
                 during: Callable[[], None] | None = None) -> list[tuple[int, str, str]]:
    """Start every (argv, env) at once, run ``during`` while they run, and wait for all.

    Returns (exit code, stdout, stderr) of each; processes still running at the end are killed.
    """
    procs = [subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv, env in commands]
    try:
        if during is not None:
            during()
        outputs = [p.communicate(timeout=timeout_s) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


def window_busy_ns(stdout: str) -> list[int]:
    """Device time per window from the tenant program's ``window busy_ns=... batches=...`` lines."""
    values = []
    for line in stdout.splitlines():
        if line.startswith("window"):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            values.append(int(fields["busy_ns"]))
    return values


def split_shares(envs: Sequence[Mapping[str, str]], seconds: float = 2.0,
                 during: Callable[[int], None] | None = None) -> list[float]:
    """Run one saturating tenant per environment on one fake CUDA device; the percent each got.

    The median over 1 s windows; with more than two windows the first (start-up) is left out.
    ``during(epoch_ns)`` runs while they do (the tenants start at ``epoch_ns``).
    """
    epoch = time.monotonic_ns() + START_DELAY_NS
    commands = [(tenant_argv("cuda", epoch, seconds), env) for env in envs]
    shares = []
    hook = None if during is None else (lambda: during(epoch))
    for code, out, err in run_together(commands, timeout_s=seconds + 60, during=hook):
        if code != 0:
            raise XPUShareError(f"tenant failed ({code}): {err.strip()}")
        busy = [100.0 * ns / 1e9 for ns in window_busy_ns(out)]
        steady = busy[1:] if len(busy) > 2 else busy
        shares.append(round(statistics.median(steady), 1))
    return shares


@dataclass(frozen=True)
class NpuMemory:
    """What one NPU number of a process got: chunks that fit, the code that stopped it, the total shown."""

    device: int
    chunks: int
    code: int
    total_bytes: int


def run_npu_memory_workload(env: Mapping[str, str], chunk_bytes: int, devices: int) -> list[NpuMemory]:
    """Fill NPU numbers 0..devices-1 of one process with ``chunk_bytes`` allocations through ACL."""
    done = subprocess.run([sys.executable, "-c", _NPU_MEMORY_SCRIPT, str(chunk_bytes), str(devices)],
                          env=dict(env), capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise XPUShareError(f"NPU memory workload failed ({done.returncode}): {done.stderr.strip()}")
    return [NpuMemory(*(int(w) for w in line.split()[1:5]))
            for line in done.stdout.splitlines() if line.startswith("device ")]


def ascend_environment(shim: Path | None, limits: Path, state_dir: Path, physical: Sequence[int],
                       memory_bytes: int) -> dict[str, str]:
    """A process on the fake Ascend runtime inside a container given the chips ``physical`` (numbered
    0..n-1 by the runtime, in that order), its limits read from ``limits`` (a file or a directory)."""
    runtime, acl = build_fake_ascend()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPUSHARE_", "FAKE_", "LD_PRELOAD"))}
    env["LD_LIBRARY_PATH"] = ":".join(sorted({str(runtime.parent), str(acl.parent)}))
    env["FAKE_ASCEND_STATE"] = str(state_dir / "ascend-state")
    env["FAKE_ASCEND_DEVICES"] = str(len(physical))
    env["FAKE_ASCEND_PHYSICAL"] = ",".join(str(p) for p in physical)
    env["FAKE_ASCEND_MEMORY"] = str(memory_bytes)
    if shim is not None:
        env["LD_PRELOAD"] = str(shim)
    env["XPUSHARE_LIMITS_FILE"] = str(limits)
    return env
