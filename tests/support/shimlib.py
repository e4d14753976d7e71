"""Build the shim and the fake vendor runtimes, and run programs with the shim preloaded.

Shared by the shim's own tests, the benchmark and any test that needs a limited process (CDI/podman,
GPU). Everything is compiled through ``compile_c`` (cached by content), with the shim's flags taken from
``shim/buildinfo.py`` so tests exercise the library exactly as ``pip install`` builds it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shim import buildinfo
from shim.limits import DeviceLimits, write_limits_file
from tests.support.cbuild import compile_c

TESTS_DIR = Path(__file__).resolve().parents[1]
FAKES_DIR = TESTS_DIR / "fakes"
PROGRAMS_DIR = TESTS_DIR / "integration" / "shim" / "programs"
FAKE_MAX_DEVICES = 8


def build_shim() -> Path:
    map_hash = hashlib.sha256(buildinfo.VERSION_SCRIPT.read_bytes()).hexdigest()[:12]
    flags = [*buildinfo.CFLAGS, f"-I{buildinfo.INCLUDE_DIR}", *buildinfo.link_flags(),
             f"-DXPS_MAP_{map_hash}"]
    return compile_c(buildinfo.sources(), buildinfo.LIBRARY_NAME, shared=True, flags=flags, libs=["-ldl"])


def build_fake_cuda() -> Path:
    # -Bsymbolic: cuGetProcAddress must hand out the library's own functions, as the real driver does.
    return compile_c([FAKES_DIR / "cuda" / "fake_cuda.c"], "libcuda.so.1", shared=True,
                     flags=["-Wl,-Bsymbolic"])


def build_fake_nvml() -> Path:
    nvml_dir = FAKES_DIR / "nvml"
    return compile_c([nvml_dir / "fake_nvml.c"], "libnvidia-ml.so.1", shared=True, flags=[f"-I{nvml_dir}"],
                     libs=["-lpthread"])


def build_fake_ascend() -> tuple[Path, Path]:
    """libruntime.so and libascendcl.so (linked to that libruntime.so)."""
    runtime = compile_c([FAKES_DIR / "ascend" / "fake_runtime.c"], "libruntime.so", shared=True)
    acl = compile_c([FAKES_DIR / "ascend" / "fake_ascendcl.c"], "libascendcl.so", shared=True,
                    flags=[f"-Wl,-rpath,{runtime.parent}"], libs=[str(runtime)])
    return runtime, acl


def build_program(name: str, *, linked_cuda: bool = False) -> Path:
    source = PROGRAMS_DIR / f"{name}.c"
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
    """A claim's limits file, ledgers and fake device state under one directory, and the env to run in."""

    root: Path
    claim: str = "claim-a"
    limits: list[DeviceLimits] = field(default_factory=list)
    preload: bool = True

    @property
    def limits_file(self) -> Path:
        return self.root / "limits"

    def ledger_path(self, index: int = 0) -> Path:
        return self.root / f"ledger-{index}"

    def add_device(self, index: int, memory: int, uuid: str | None = None) -> DeviceLimits:
        device = DeviceLimits(uuid=uuid or f"GPU-{index:04d}", index=index, memory_limit_bytes=memory,
                              core_percent=50, ledger_path=str(self.ledger_path(index)))
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
