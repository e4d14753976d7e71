"""Where the limits come from, and what happens without them: real processes preloading the real shim.

The packaged library reads only the fixed paths (``shim.LIMITS_DIR``, ``/etc/xpushare/limits.d``, else
``shim.LIMITS_PATH``): no environment variable moves them, and without usable limits every device
allocation is refused with
the vendor's out-of-memory code and one line on stderr. Only the test build (``-DXPUSHARE_TEST_HOOKS``)
takes the path from ``XPUSHARE_LIMITS_FILE``. Versioned lookups (dlvsym) lead to the hooks as dlsym does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import shim
from shim.ledger import ClaimLedger, read_claim_usage
from shim.limits import DeviceLimits, write_limits_file
from tests.integration.shim.conftest import MIB
from tests.support.shimlib import ShimSetup, build_production_shim, build_shim

CUDA_ERROR_OUT_OF_MEMORY = 2
ACL_ERROR_RT_MEMORY_ALLOCATION = 207001
FIXED = shim.LIMITS_DIR  # neither it nor the single file of earlier releases: the message names it
REFUSED_FIXED = f"xpushare: limits file {FIXED}: No such file or directory; device allocations refused\n"


@pytest.fixture(autouse=True)
def _no_limits_on_this_host() -> None:
    if Path(FIXED).exists():
        pytest.skip(f"{FIXED} exists on this host: the production build would read it")


def _production_libraries() -> list[Path]:
    return [build_production_shim(), shim.packaged_library_path()]


@pytest.fixture(params=["built", "packaged"])
def production(request: pytest.FixtureRequest) -> Path:
    library = _production_libraries()[0 if request.param == "built" else 1]
    if not library.is_file():
        pytest.fail(f"{library} missing: pip install -e . builds it")
    return library


def _evil_file(root: Path) -> Path:
    """What a tenant would write: the claim's device with no memory limit (memory=0)."""
    return write_limits_file(root / "evil", "claim-a", [DeviceLimits(uuid="GPU-0000", index=0,
                                                                     memory_limit_bytes=0)])


def test_the_packaged_library_has_no_limits_variable_at_all() -> None:
    for library in _production_libraries():
        assert b"XPUSHARE_LIMITS_FILE" not in library.read_bytes(), library
    assert b"XPUSHARE_LIMITS_FILE" in build_shim().read_bytes()  # the check can fail: the test build has it


def test_production_build_ignores_the_variable_and_fails_closed(setup: ShimSetup, cuda_client: Path,
                                                                production: Path) -> None:
    setup.add_device(0, 64 * MIB)
    evil = _evil_file(setup.root)
    for limits in (str(evil), str(setup.limits_file)):
        result = setup.run([cuda_client, "dlsym", "--", "alloc", MIB, "alloc", 4096],
                           extra={"LD_PRELOAD": str(production), "XPUSHARE_LIMITS_FILE": limits})
        assert result.codes("alloc") == [CUDA_ERROR_OUT_OF_MEMORY] * 2, result.stdout + result.stderr
        assert result.stderr == REFUSED_FIXED
    assert setup.cuda_state.peak() == 0


def test_production_build_without_the_variable_fails_closed_on_ascend(setup: ShimSetup, acl_client: Path,
                                                                     production: Path) -> None:
    result = setup.run([acl_client, "0", "alloc", MIB, "rtalloc", MIB, "phys", MIB],
                       extra={"LD_PRELOAD": str(production)}, limits=False)
    codes = result.codes("alloc") + result.codes("rtalloc") + result.codes("phys")
    assert codes == [ACL_ERROR_RT_MEMORY_ALLOCATION] * 3, result.stdout + result.stderr
    assert result.stderr == REFUSED_FIXED
    assert setup.ascend_state.peak() == 0


def test_test_build_honours_the_variable(setup: ShimSetup, cuda_client: Path) -> None:
    setup.add_device(0, 2 * MIB)
    limited = setup.run([cuda_client, "dlsym", "--", "alloc", MIB, "alloc", 2 * MIB])
    assert limited.codes("alloc") == [0, CUDA_ERROR_OUT_OF_MEMORY], limited.stderr
    assert limited.stderr == ""
    unlimited = setup.run([cuda_client, "dlsym", "--", "alloc", 64 * MIB],
                          extra={"XPUSHARE_LIMITS_FILE": str(_evil_file(setup.root))})
    assert unlimited.codes("alloc") == [0], unlimited.stderr


def _truncated(setup: ShimSetup) -> str:
    setup.add_device(0, 64 * MIB)
    text = setup.limits_file.read_text()
    return text[: text.index(" memory=") + len(" memory=64")]  # cut inside the device line


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated", "cut at a line", "directory"])
@pytest.mark.parametrize("vendor", ["cuda", "ascend"])
def test_a_missing_or_damaged_limits_file_refuses_every_allocation_with_one_line(
        setup: ShimSetup, cuda_client: Path, acl_client: Path, damage: str, vendor: str) -> None:
    path = setup.root / "limits-under-test"
    if damage == "truncated":
        path.write_text(_truncated(setup))
    elif damage == "cut at a line":
        path.write_text("version 1\nclaim claim-a\n")  # the device lines lost
    elif damage == "garbage":
        path.write_bytes(b"\x7fELF\x00\x01 not a limits file")
    elif damage == "empty":
        path.write_text("")
    elif damage == "directory":
        path.mkdir()
    extra = {"XPUSHARE_LIMITS_FILE": str(path)}
    if vendor == "cuda":
        result = setup.run([cuda_client, "dlsym", "--", "alloc", MIB, "managed", MIB, "pitch", 100, 100],
                           extra=extra)
        codes = result.codes("alloc") + result.codes("managed") + result.codes("pitch")
        assert codes == [CUDA_ERROR_OUT_OF_MEMORY] * 3, result.stdout + result.stderr
        assert setup.cuda_state.peak() == 0
    else:
        result = setup.run([acl_client, "0", "alloc", MIB, "rtalloc", MIB, "phys", MIB], extra=extra)
        codes = result.codes("alloc") + result.codes("rtalloc") + result.codes("phys")
        assert codes == [ACL_ERROR_RT_MEMORY_ALLOCATION] * 3, result.stdout + result.stderr
        assert setup.ascend_state.peak() == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"xpushare: limits file {path}: ")
    assert lines[0].endswith("; device allocations refused")
    if damage == "missing":
        assert lines[0] == REFUSED_FIXED.strip().replace(FIXED, str(path))


def test_failing_closed_advertises_no_free_memory(setup: ShimSetup, cuda_client: Path) -> None:
    """Frameworks size their pools from cuMemGetInfo: a process whose allocations are all refused must
    not be told the device's memory is free."""
    path = setup.root / "no-limits-here"
    extra = {"XPUSHARE_LIMITS_FILE": str(path)}
    result = setup.run([cuda_client, "dlsym", "--", "info", "total"], extra=extra)
    assert result.value("info", "rc") == 0
    assert result.value("info", "free") == 0, result.stdout
    assert result.value("info", "total") > 0  # the device's own size: only the free memory is withheld
    without_shim = ShimSetup(setup.root / "plain", preload=False)
    without_shim.root.mkdir()
    plain = without_shim.run([cuda_client, "dlsym", "--", "info"], limits=False)
    assert plain.value("info", "free") > 0  # the fake device does have free memory


@pytest.mark.parametrize("damage", ["another claim's", "another layout", "a symlink", "a directory"])
def test_a_ledger_that_is_not_the_claims_own_limits_the_process_alone(setup: ShimSetup, cuda_client: Path,
                                                                      damage: str) -> None:
    """The claim's ledger path holds something else: its processes never join it, each limits itself
    to the limits file's values in a private ledger, and says so once."""
    setup.add_device(0, 4 * MIB)
    path = setup.ledger_path()
    if damage == "another claim's":
        path.unlink()
        ClaimLedger.create(path, "claim-b", "GPU-0000", 64 * MIB)
    elif damage == "another layout":
        data = bytearray(path.read_bytes())
        data[8] = 99  # version
        path.write_bytes(bytes(data))
    else:
        path.rename(path.with_name("elsewhere"))  # the claim's own ledger, moved: a link is not followed
        if damage == "a symlink":
            path.symlink_to("elsewhere")
        else:
            path.mkdir()
    before = b"" if path.is_dir() else path.read_bytes()
    result = setup.run([cuda_client, "dlsym", "--", "fill", MIB, "info"])
    assert result.value("fill", "count") == 4, result.stdout + result.stderr
    assert result.value("info", "total") == 4 * MIB
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"xpushare: ledger {path} unusable ("), result.stderr
    assert lines[0].endswith("): limiting this process alone"), result.stderr
    assert (b"" if path.is_dir() else path.read_bytes()) == before  # never joined, never written
    if damage in ("a symlink", "a directory"):
        assert read_claim_usage(path.with_name("elsewhere")).nprocs == 0


def test_a_process_that_never_allocates_prints_nothing_without_limits(setup: ShimSetup,
                                                                      production: Path) -> None:
    for library in (production, build_shim()):
        extra = {"LD_PRELOAD": str(library), "XPUSHARE_LIMITS_FILE": str(setup.root / "missing")}
        for argv in (["/bin/true"], [sys.executable, "-c", "import ctypes; ctypes.CDLL('libcuda.so.1')"]):
            result = setup.run(argv, extra=extra)
            assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), (library, argv)


def test_the_node_plugins_ledger_binding_loads_the_production_library_silently(tmp_path: Path,
                                                                              production: Path) -> None:
    script = ("import sys, pathlib; from shim.ledger import Board, ClaimLedger, read_claim_usage\n"
              "root = pathlib.Path(sys.argv[1])\n"
              "with Board.open(root / 'board', 'GPU-0') as b:\n"
              "    b.set('claim-a', 1 << 20)\n"
              "ClaimLedger.create(root / 'claim-a', 'claim-a', 'GPU-0', 1 << 20)\n"
              "print(read_claim_usage(root / 'claim-a').limit_bytes)\n")
    env = {"XPUSHARE_SHIM_LIBRARY": str(production), "PYTHONPATH": str(Path(shim.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{1 << 20}\n", "")
