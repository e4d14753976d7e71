"""Python view of the per-device ledgers, through the shim's own C code (cffi, ABI mode).

This is the one module that imports cffi. The declarations come from the installed header
(``shim/include/xpushare.h``, the section between the XPUSHARE_CDEF markers) and the functions from the
built shim library, so Python and the preloaded C code share one layout and one locking protocol: every
update takes the ledger's robust mutex in C, exactly as the shim does. ABI mode was chosen over API mode
because the library already exists as a build product; a second compiled extension would add a build
step and a second copy of the same code for no gain (the calls are not hot).
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cffi import FFI  # type: ignore[import-untyped]

from api.errors import XPUShareError
from api.v1alpha1.sharing import ComputePolicy, Priority
from shim import HEADER_PATH, library_path

CDEF_BEGIN = "/* XPUSHARE_CDEF_BEGIN */"
CDEF_END = "/* XPUSHARE_CDEF_END */"
SLOT_ACTIVE = 1
# The C side's codes: a priority's code is its rank (low 0, normal 1, high 2); policies guaranteed 0, fixed 1.
_PRIORITIES = Priority.ranked()
_POLICIES = (ComputePolicy.GUARANTEED, ComputePolicy.FIXED)


class LedgerError(XPUShareError):
    """A ledger could not be opened, read or updated."""


def cdef_source(header: Path = HEADER_PATH) -> str:
    """The cffi-parsable part of the public header (pure text transformation)."""
    text = header.read_text()
    start, end = text.find(CDEF_BEGIN), text.find(CDEF_END)
    if start < 0 or end < start:
        raise LedgerError(f"{header}: XPUSHARE_CDEF markers not found")
    return text[start + len(CDEF_BEGIN) : end].replace("XPUSHARE_EXTERN ", "")


@functools.cache
def _binding(path: str) -> tuple[Any, Any]:
    ffi = FFI()
    ffi.cdef(cdef_source())
    try:
        return ffi, ffi.dlopen(path)
    except OSError as err:
        raise LedgerError(f"load shim library {path}: {err}") from err


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise LedgerError(f"{what}: {os.strerror(-rc)} ({errno.errorcode.get(-rc, rc)})")
    return rc


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    index: int
    key: str
    limit_bytes: int
    used_bytes: int
    peak_bytes: int
    nprocs: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy
    used_ns: int = 0
    throttled_ns: int = 0
    tokens_ns: int = 0
    npending: int = 0


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    index: int
    pid: int
    start_time: int
    container: int
    used_bytes: int
    peak_bytes: int


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    uuid: str
    total_bytes: int
    used_bytes: int
    peak_bytes: int
    reclaimed_bytes: int
    containers: tuple[ContainerUsage, ...]
    processes: tuple[ProcessUsage, ...]
    quota_generation: int = 0
    npending: int = 0

    def container(self, key: str) -> ContainerUsage | None:
        return next((c for c in self.containers if c.key == key), None)


class Ledger:
    """One device's ledger file, mapped into this process. Use as a context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._ffi, self._lib = _binding(str(library_path()))
        self._fd = fd
        self._ptr: Any = self._lib.xpushare_ledger_map(fd)
        if self._ptr == self._ffi.NULL:
            os.close(fd)
            raise LedgerError(f"map ledger {path}: {os.strerror(self._ffi.errno)}")

    @classmethod
    def create(cls, path: Path, uuid: str, total_bytes: int = 0) -> Self:
        """Open the device's ledger, creating and initialising it if it does not exist yet."""
        _ffi, lib = _binding(str(library_path()))
        fd = _check(lib.xpushare_ledger_open(str(path).encode(), uuid.encode(), total_bytes), f"open {path}")
        return cls(path, fd)

    @classmethod
    def attach(cls, path: Path) -> Self:
        """Open an existing ledger (never creates one)."""
        if not path.is_file():
            raise LedgerError(f"open {path}: no such ledger")
        return cls.create(path, "", 0)

    def close(self) -> None:
        if self._ptr is not None:
            self._lib.xpushare_ledger_unmap(self._ptr)
            os.close(self._fd)
            self._ptr = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _live(self) -> Any:
        if self._ptr is None:
            raise LedgerError(f"ledger {self.path} is closed")
        return self._ptr

    def set_container(self, key: str, limit_bytes: int, core_percent: int = 100,
                      priority: Priority = Priority.NORMAL,
                      policy: ComputePolicy = ComputePolicy.GUARANTEED) -> int:
        """Create or update a claim's record; the shim never admits past min(file limit, this limit)."""
        if priority not in _PRIORITIES or policy not in _POLICIES:
            raise LedgerError(f"priority/policy: {priority!r}/{policy!r} not in "
                              f"{', '.join(_PRIORITIES)}/{', '.join(_POLICIES)}")
        rc = self._lib.xpushare_ledger_set_container(self._live(), key.encode(), limit_bytes, core_percent,
                                                     _PRIORITIES.index(priority), _POLICIES.index(policy))
        return _check(rc, f"set container {key!r} (limit {limit_bytes}, cores {core_percent})")

    def remove_container(self, key: str) -> None:
        """Drop a claim's record; refused (EBUSY) while processes of the claim are attached."""
        rc = self._lib.xpushare_ledger_remove_container(self._live(), key.encode())
        if rc != -errno.ENOENT:
            _check(rc, f"remove container {key!r}")

    def reclaim_dead(self) -> int:
        """Return the bytes of processes that died; the number of processes reclaimed."""
        return _check(self._lib.xpushare_ledger_reclaim(self._live(), self._fd), "reclaim")

    def attach_process(self, key: str, limit_bytes: int) -> int:
        """Join a claim as a process (what the shim does at a first allocation); returns the slot."""
        return _check(self._lib.xpushare_ledger_attach(self._live(), self._fd, key.encode(), limit_bytes),
                      f"attach to {key!r}")

    def detach_process(self, proc: int) -> None:
        _check(self._lib.xpushare_ledger_detach(self._live(), self._fd, proc), "detach")

    def reserve(self, proc: int, size: int, limit_bytes: int) -> bool:
        """Admit ``size`` bytes for slot ``proc``; False when that would pass the limit."""
        rc = self._lib.xpushare_ledger_reserve(self._live(), proc, size, limit_bytes)
        if rc == -errno.ENOMEM:
            return False
        _check(rc, "reserve")
        return True

    def release(self, proc: int, size: int) -> None:
        _check(self._lib.xpushare_ledger_release(self._live(), proc, size), "release")

    # --- compute shares (the same C functions the shim calls at launch boundaries) ---

    def admit(self, proc: int, now_ns: int, max_percent: int = 100) -> int:
        """0 when slot ``proc`` may launch at ``now_ns``, else how long to wait (ns)."""
        return _check(self._lib.xpushare_compute_admit(self._live(), proc, now_ns, max_percent), "admit")

    def charge(self, proc: int, device_ns: int) -> None:
        """Charge measured device time to the container of slot ``proc``."""
        _check(self._lib.xpushare_ledger_charge(self._live(), proc, device_ns), "charge")

    def attribute(self, start_ns: int, end_ns: int) -> int:
        """The part of (start, end] not yet charged to anyone on this device (and now charged)."""
        return int(self._lib.xpushare_ledger_attribute(self._live(), start_ns, end_ns))

    def set_pending(self, proc: int, pending: bool, now_ns: int) -> None:
        """Say whether slot ``proc`` has work on the device (what borrowing looks at)."""
        _check(self._lib.xpushare_compute_pending(self._live(), proc, int(pending), now_ns, self._ffi.NULL),
               "set pending")

    def shadowed(self, proc: int, now_ns: int) -> bool:
        """Whether a higher priority launched recently enough to keep slot ``proc``'s queue short."""
        return bool(_check(self._lib.xpushare_compute_shadowed(self._live(), proc, now_ns), "shadowed"))

    def snapshot(self) -> LedgerSnapshot:
        """Read the counters without locking (each is one aligned word; fine for metrics and tests)."""
        led = self._live()
        ffi = self._ffi
        containers = tuple(
            ContainerUsage(i, ffi.string(c.key).decode(errors="replace"), c.limit_bytes, c.used_bytes,
                           c.peak_bytes, c.nprocs, c.core_percent, _PRIORITIES[min(c.priority, 2)],
                           _POLICIES[min(c.policy, 1)], c.used_ns, c.throttled_ns, c.tokens_ns, c.npending)
            for i, c in enumerate(led.containers) if c.state == SLOT_ACTIVE
        )
        processes = tuple(
            ProcessUsage(i, p.pid, p.start_time, p.container, p.used_bytes, p.peak_bytes)
            for i, p in enumerate(led.procs) if p.state == SLOT_ACTIVE
        )
        return LedgerSnapshot(ffi.string(led.uuid).decode(errors="replace"), led.total_bytes, led.used_bytes,
                              led.peak_bytes, led.reclaimed_bytes, containers, processes,
                              led.quota_generation, led.npending)
