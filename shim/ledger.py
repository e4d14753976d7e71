"""Python view of the files the shims of a device share, through the shim's own C code (cffi, ABI mode).

Per physical device (the layout and the trust model are in ``shim/include/xpushare.h``): a ``Board``
that the node plugin alone writes (each claim's live limits), and a ``ClaimLedger`` per claim that only
the claim's own processes map and update. The plugin reads a claim ledger with ``read_claim_usage``
(one bounded pread: nothing a tenant writes there can fault, block or mislead it beyond its own
numbers).

This is the one module that imports cffi. The declarations come from the installed header
(``shim/include/xpushare.h``, the section between the XPUSHARE_CDEF markers) and the functions from the
built shim library, so Python and the preloaded C code share one layout and one locking protocol: every
ledger update takes the ledger's robust mutex in C, exactly as the shim does. ABI mode was chosen over
API mode because the library already exists as a build product; a second compiled extension would add a build
step and a second copy of the same code for no gain (the calls are not hot).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import time
import uuid as uuid_mod
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
READ_RETRIES = 1000  # a board entry read again while its writer is mid-update
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


def _codes(priority: Priority, policy: ComputePolicy) -> tuple[int, int]:
    if priority not in _PRIORITIES or policy not in _POLICIES:
        raise LedgerError(f"priority/policy: {priority!r}/{policy!r} not in "
                          f"{', '.join(_PRIORITIES)}/{', '.join(_POLICIES)}")
    return _PRIORITIES.index(priority), _POLICIES.index(policy)


def _text(ffi: Any, chars: Any) -> str:
    return str(ffi.string(chars).decode(errors="replace"))


@dataclass(frozen=True, slots=True)
class ClaimUsage:
    """A claim ledger's head: the claim's limits as its shims last took them, and its counters."""

    key: str
    uuid: str
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
    reclaimed_bytes: int = 0
    launch_ns: int = 0
    attributed_ns: int = 0
    unpublished_ns: int = 0
    refused_allocs: int = 0  # allocations refused at the memory limit
    refused_bytes: int = 0


def _usage(ffi: Any, head: Any) -> ClaimUsage:
    c = head.claim
    return ClaimUsage(
        _text(ffi, head.key), _text(ffi, head.uuid), c.limit_bytes, c.used_bytes, c.peak_bytes, c.nprocs,
        c.core_percent, _PRIORITIES[c.priority % 3], _POLICIES[c.policy % 2], c.used_ns, c.throttled_ns,
        c.tokens_ns, c.npending, head.reclaimed_bytes, c.launch_ns, c.attributed_ns, c.unpublished_ns,
        c.refused_allocs, c.refused_bytes,
    )


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    index: int
    pid: int
    start_time: int
    used_bytes: int
    peak_bytes: int


def read_claim_usage(path: Path) -> ClaimUsage:
    """A claim ledger's head by one pread (the node plugin's and the peers' way to read it).

    Opened read-only, non-blocking and without following links; never mapped or locked. A file that is
    not a regular file, is cut short or has another layout raises ``LedgerError``.
    """
    ffi, lib = _binding(str(library_path()))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as err:
        raise LedgerError(f"open claim ledger {path}: {err.strerror}") from err
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LedgerError(f"claim ledger {path}: not a regular file")
        head = ffi.new("struct xpushare_ledger_head *")
        _check(lib.xpushare_ledger_read_head(fd, head), f"read claim ledger {path}")
        return _usage(ffi, head)
    finally:
        os.close(fd)


class ClaimLedger:
    """A claim's ledger of one device, mapped into this process (what the claim's shims do). Use as a
    context manager. The node plugin maps one only to create it, before any tenant can write it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._ffi, self._lib = _binding(str(library_path()))
        self._fd = fd
        self._ptr: Any = self._lib.xpushare_ledger_map(fd)
        if self._ptr == self._ffi.NULL:
            os.close(fd)
            raise LedgerError(f"map claim ledger {path}: {os.strerror(self._ffi.errno)}")

    @classmethod
    def open(cls, path: Path, key: str = "", uuid: str = "") -> Self:
        """Open the ledger (created empty when absent); ``key``/``uuid`` given: refused if it is another's."""
        _ffi, lib = _binding(str(library_path()))
        fd = _check(lib.xpushare_ledger_open(str(path).encode(), key.encode(), uuid.encode()), f"open {path}")
        return cls(path, fd)

    @classmethod
    def create(cls, path: Path, key: str, uuid: str, limit_bytes: int, core_percent: int = 100, *,
               priority: Priority = Priority.NORMAL, policy: ComputePolicy = ComputePolicy.GUARANTEED,
               scratch: Path | None = None) -> bool:
        """Create claim ``key``'s ledger at ``path`` with its limits, whole or not at all: written in
        ``scratch`` (default: beside it; the plugin passes a directory no container sees, so no tenant can
        open, and lock, the file before it is in place) and renamed into place. An existing ledger of the
        claim is kept as it is (its processes map it), checked with a bounded read only, never a lock;
        one of another claim, device or layout raises ``LedgerError``. Whether a new one was made."""
        if os.path.lexists(path):
            usage = read_claim_usage(path)
            if (usage.key, usage.uuid) != (key, uuid):
                raise LedgerError(f"claim ledger {path}: of {usage.key!r} on {usage.uuid!r}, not of {key!r} "
                                  f"on {uuid!r} (EBADSLT)")
            return False
        temp = (scratch or path.parent) / f".{path.name}.{os.getpid()}.{uuid_mod.uuid4().hex[:8]}.tmp"
        try:
            with cls.open(temp, key, uuid) as ledger:
                ledger.set_limits(limit_bytes, core_percent, priority, policy)
            os.rename(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return True

    @property
    def fd(self) -> int:
        return self._fd

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
            raise LedgerError(f"claim ledger {self.path} is closed")
        return self._ptr

    def set_limits(self, limit_bytes: int, core_percent: int = 100, priority: Priority = Priority.NORMAL,
                   policy: ComputePolicy = ComputePolicy.GUARANTEED) -> bool:
        """Set the claim's limits (what a shim copies from the board); whether they changed."""
        prio, pol = _codes(priority, policy)
        rc = self._lib.xpushare_ledger_set_limits(self._live(), limit_bytes, core_percent, prio, pol)
        return bool(_check(rc, f"set limits (limit {limit_bytes}, cores {core_percent})"))

    def reclaim_dead(self) -> int:
        """Return the bytes of processes that died; the number of processes reclaimed."""
        return _check(self._lib.xpushare_ledger_reclaim(self._live(), self._fd), "reclaim")

    def attach_process(self) -> int:
        """Join the claim as a process (what the shim does at a first allocation); returns the slot."""
        return _check(self._lib.xpushare_ledger_attach(self._live(), self._fd), f"attach to {self.path}")

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

    def _peers(self, peers: Peers | None) -> Any:
        return self._ffi.NULL if peers is None else peers.struct

    def admit(self, proc: int, now_ns: int, max_percent: int = 100, peers: Peers | None = None) -> int:
        """0 when slot ``proc`` may launch at ``now_ns``, else how long to wait (ns)."""
        rc = self._lib.xpushare_compute_admit(self._live(), proc, self._peers(peers), now_ns, max_percent)
        return _check(rc, "admit")

    def charge(self, proc: int, device_ns: int) -> None:
        """Charge measured device time to the claim (slot ``proc`` measured it)."""
        _check(self._lib.xpushare_ledger_charge(self._live(), proc, device_ns), "charge")

    def attribute(self, start_ns: int, end_ns: int, peers: Peers | None = None) -> int:
        """The part of (start, end] charged to neither this claim nor, as far as ``peers`` say, a peer."""
        return int(self._lib.xpushare_ledger_attribute(self._live(), self._peers(peers), start_ns, end_ns))

    def share(self, proc: int, start_ns: int, end_ns: int, peers: Peers | None = None) -> int:
        """What slot ``proc``'s window [start, end] costs on a time-sliced device: each stretch divided
        by the contexts that had work on the device in it (peers' windows, this claim's other slots)."""
        return int(self._lib.xpushare_ledger_share(self._live(), proc, self._peers(peers), start_ns, end_ns))

    def publish_window(self, proc: int, start_ns: int, end_ns: int) -> None:
        """Publish a busy window of slot ``proc`` for the peers (a continuing one extends the last)."""
        _check(self._lib.xpushare_window_publish(self._live(), proc, start_ns, end_ns), "publish window")

    def windows(self) -> tuple[tuple[int, int, int], ...]:
        """The published windows as (slot, start, end), oldest slot of the ring first."""
        head = self._live().head
        return tuple((int(w.proc), int(w.start_ns), int(w.end_ns)) for w in head.windows if w.end_ns != 0)

    def set_pending(self, proc: int, pending: bool) -> None:
        """Say whether slot ``proc`` has work on the device (what peers' borrowing looks at)."""
        _check(self._lib.xpushare_compute_pending(self._live(), proc, int(pending)), "set pending")

    def publish(self, proc: int, oldest_ns: int) -> None:
        """Publish slot ``proc``'s oldest uncharged work (0: none)."""
        _check(self._lib.xpushare_compute_publish(self._live(), proc, oldest_ns), "publish")

    def earlier_work(self, proc: int, recorded_ns: int, peers: Peers | None = None) -> bool:
        """Whether other work recorded before ``recorded_ns`` is still uncharged."""
        rc = self._lib.xpushare_compute_earlier_work(self._live(), proc, self._peers(peers), recorded_ns)
        return bool(_check(rc, "earlier work"))

    def shadowed(self, now_ns: int, peers: Peers | None = None) -> bool:
        """Whether a higher priority launched recently enough to keep this claim's queue short."""
        return bool(_check(self._lib.xpushare_compute_shadowed(self._live(), self._peers(peers), now_ns),
                           "shadowed"))

    def usage(self) -> ClaimUsage:
        """The head as it is now (each counter one aligned word; fine for metrics and tests)."""
        return _usage(self._ffi, self._live().head)

    def processes(self) -> tuple[ProcessUsage, ...]:
        return tuple(
            ProcessUsage(i, p.pid, p.start_time, p.used_bytes, p.peak_bytes)
            for i, p in enumerate(self._live().procs) if p.state == SLOT_ACTIVE
        )

    def head_pointer(self) -> Any:
        """The mapped head (for ``Peers.add``)."""
        return self._live().head


class Peers:
    """What a process knows of its device's other claims (``struct xpushare_peers``), built as the shim
    builds it: each peer's head with the priority the board gives it."""

    def __init__(self) -> None:
        self._ffi, self._lib = _binding(str(library_path()))
        self.struct: Any = self._ffi.new("struct xpushare_peers *")

    def add(self, peer: ClaimLedger, priority: Priority, now_ns: int) -> Self:
        prio, _ = _codes(priority, ComputePolicy.GUARANTEED)
        head = self._ffi.addressof(peer.head_pointer())
        _check(self._lib.xpushare_peers_add(self.struct, head, prio, now_ns), "add peer")
        return self

    @property
    def busy(self) -> int:
        return int(self.struct.busy)

    @property
    def attributed_ns(self) -> int:
        return int(self.struct.attributed_ns)

    @property
    def unpublished_ns(self) -> int:
        return int(self.struct.unpublished_ns)

    def launch_ns(self, priority: Priority) -> int:
        return int(self.struct.launch_ns[_PRIORITIES.index(priority)])

    def windows(self) -> list[tuple[int, int]]:
        """The peers' busy windows as (start, end), their open ones ending at the time they were read."""
        return [(int(w.start_ns), int(w.end_ns)) for w in self.struct.windows[0:self.struct.nwindows]]


@dataclass(frozen=True, slots=True)
class BoardEntry:
    index: int
    key: str
    limit_bytes: int
    core_percent: int
    priority: Priority
    policy: ComputePolicy


class Board:
    """A device's board, mapped writable: the node plugin's side (one writer per board; the plugin
    serialises its updates). Use as a context manager."""

    def __init__(self, path: Path, fd: int, writable: bool) -> None:
        self.path = path
        self._ffi, self._lib = _binding(str(library_path()))
        self._ptr: Any = self._lib.xpushare_board_map(fd, int(writable))
        os.close(fd)
        if self._ptr == self._ffi.NULL:
            raise LedgerError(f"map board {path}: {os.strerror(self._ffi.errno)}")

    @classmethod
    def open(cls, path: Path, uuid: str, total_bytes: int = 0) -> Self:
        """Open the board for writing: created, or rebuilt in place (cleared) if of another layout."""
        _ffi, lib = _binding(str(library_path()))
        rc = lib.xpushare_board_open(str(path).encode(), uuid.encode(), total_bytes)
        fd = _check(rc, f"open board {path}")
        return cls(path, fd, True)

    @classmethod
    def read_only(cls, path: Path) -> Self:
        """Map an existing board read-only (as a shim does); ``LedgerError`` if it is not a usable board."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as err:
            raise LedgerError(f"open board {path}: {err.strerror}") from err
        return cls(path, fd, False)

    def close(self) -> None:
        if self._ptr is not None:
            self._lib.xpushare_board_unmap(self._ptr)
            self._ptr = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _live(self) -> Any:
        if self._ptr is None:
            raise LedgerError(f"board {self.path} is closed")
        return self._ptr

    def set(self, key: str, limit_bytes: int, core_percent: int = 100, priority: Priority = Priority.NORMAL,
            policy: ComputePolicy = ComputePolicy.GUARANTEED) -> int:
        """Add or update claim ``key``'s entry; its index. ``-ENOSPC`` when the board is full."""
        prio, pol = _codes(priority, policy)
        rc = self._lib.xpushare_board_set(self._live(), key.encode(), limit_bytes, core_percent, prio, pol)
        return _check(rc, f"set board entry {key!r} (limit {limit_bytes}, cores {core_percent})")

    def remove(self, key: str) -> None:
        rc = self._lib.xpushare_board_remove(self._live(), key.encode())
        if rc != -errno.ENOENT:
            _check(rc, f"remove board entry {key!r}")

    def entries(self) -> tuple[BoardEntry, ...]:
        """The active entries, each a consistent copy (retried while the writer is mid-update)."""
        ffi = self._ffi
        found = []
        entry = ffi.new("struct xpushare_board_entry *")
        for i in range(len(self._live().entries)):
            for _ in range(READ_RETRIES):
                rc = self._lib.xpushare_board_read(self._live(), i, entry, ffi.NULL)
                if rc != -errno.EAGAIN:
                    break
                time.sleep(0)
            if _check(rc, "read board") == 1:
                found.append(BoardEntry(i, _text(ffi, entry.key), entry.limit_bytes, entry.core_percent,
                                        _PRIORITIES[entry.priority % 3], _POLICIES[entry.policy % 2]))
        return tuple(found)

    def entry(self, key: str) -> BoardEntry | None:
        return next((e for e in self.entries() if e.key == key), None)

    @property
    def uuid(self) -> str:
        return _text(self._ffi, self._live().uuid)

    @property
    def total_bytes(self) -> int:
        return int(self._live().total_bytes)

    @property
    def generation(self) -> int:
        return int(self._live().generation)
