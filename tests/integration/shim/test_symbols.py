"""Every hooked entry point is reached by each way a program can look it up."""

from __future__ import annotations

import re
import sys

import pytest

from shim import buildinfo
from tests.support.shimlib import ShimSetup, build_fake_ascend, build_fake_cuda, build_program

LOOKUP = """
import ctypes, sys
shim = ctypes.CDLL(sys.argv[1])
def address(lib, name):
    try:
        return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    except AttributeError:
        return None
for path in sys.argv[2:4]:
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    for name in sys.argv[4:]:
        real = address(lib, name)
        if real is not None:
            print("dlsym", name, real == address(shim, name))
cuda = ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_LOCAL)
pfn = ctypes.c_void_p()
for name in sys.argv[4:]:
    if name.startswith("cu") and not name.startswith("cuGetProc"):
        base = re.sub(r"(_v2)?(_ptsz|_ptds)?$", "", name)
        flags = 2 if name.endswith(("_ptsz", "_ptds")) else 0
        if cuda.cuGetProcAddress_v2(base.encode(), ctypes.byref(pfn), 12040, flags, None) == 0:
            print("gpa", name, pfn.value == address(shim, name))
"""


def _hooked() -> list[str]:
    return re.findall(r"X\(\w+, (\w+), 1\)", (buildinfo.SOURCE_DIR / "internal.h").read_text())


def test_dlsym_and_cuGetProcAddress_return_the_hook_for_every_hooked_symbol(setup: ShimSetup) -> None:
    setup.add_device(0, 1 << 20)
    runtime, _ = build_fake_ascend()
    env_shim = setup.env()["LD_PRELOAD"]
    script = "import re\n" + LOOKUP
    result = setup.run([sys.executable, "-c", script, env_shim, build_fake_cuda(), runtime, *_hooked()])
    found = {tuple(line.split()[:2]): line.split()[2] for line in result.stdout.splitlines()}
    assert set(found.values()) == {"True"}, result.stdout + result.stderr
    cuda_hooks = {n for n in _hooked() if n.startswith("cu") and not n.startswith("cuGetProc")}
    assert {name for kind, name in found if kind == "gpa"} == cuda_hooks
    expected = {"cuLaunchKernelEx_ptsz", "cuMemcpyDtoH_v2_ptds", "rtMalloc", "rtKernelLaunchWithHandleV2",
                "rtModelExecute"}
    assert expected <= {name for kind, name in found if kind == "dlsym"}


@pytest.mark.parametrize("route", ["dlsym", "dlvsym", "gpa", "gpa_v2"])
def test_versioned_lookups_lead_to_the_hooks(setup: ShimSetup, route: str) -> None:
    setup.add_device(0, 1 << 20)
    client = build_program("dlvsym_client")
    over = setup.run([client, route, 2 << 20])
    assert over.lines("alloc") == ["alloc rc=2"], over.stdout + over.stderr  # CUDA_ERROR_OUT_OF_MEMORY
    within = setup.run([client, route, 1 << 19])
    assert within.lines("alloc") == ["alloc rc=0"], within.stdout + within.stderr
    # Without the shim the same route reaches the device: the check above can fail.
    bare = ShimSetup(setup.root, preload=False).run([client, route, 2 << 20])
    assert bare.lines("alloc") == ["alloc rc=0"], bare.stdout + bare.stderr
