"""The shim's Python constants are the C header's: read from it, never restated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cffi import FFI  # type: ignore[import-untyped]

import shim
from shim.ledger import cdef_source


def test_max_claims_per_device_is_the_headers_board_size() -> None:
    ffi = FFI()
    ffi.cdef(cdef_source())  # the header as the ledger binding parses it
    constants = ffi.dlopen(None)  # #define values come from the cdef: no shim library needed
    assert constants.XPUSHARE_MAX_CLAIMS == shim.MAX_CLAIMS_PER_DEVICE


def test_the_controller_and_the_plugin_use_the_shims_value() -> None:
    from controller import settings
    from kubeletplugin import accounting, ledgers

    assert settings.MAX_CLAIMS_PER_DEVICE is shim.MAX_CLAIMS_PER_DEVICE
    assert ledgers.MAX_CLAIMS_PER_DEVICE is shim.MAX_CLAIMS_PER_DEVICE
    assert accounting.MAX_CLAIMS_PER_DEVICE is shim.MAX_CLAIMS_PER_DEVICE


def test_importing_the_constant_needs_neither_cffi_nor_the_library(tmp_path: Path) -> None:
    code = ("import sys, shim, controller.settings; "
            "assert 'cffi' not in sys.modules and 'shim.ledger' not in sys.modules; "
            "print(controller.settings.MAX_CLAIMS_PER_DEVICE)")
    env = {"XPUSHARE_SHIM_LIBRARY": str(tmp_path / "absent.so"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[3], check=False)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == shim.MAX_CLAIMS_PER_DEVICE


def test_a_missing_define_is_an_error(tmp_path: Path) -> None:
    header = tmp_path / "xpushare.h"
    header.write_text("#define XPUSHARE_MAX_PROCS 1024\n")
    assert shim.header_define("XPUSHARE_MAX_PROCS", header) == 1024
    with pytest.raises(LookupError, match="XPUSHARE_MAX_CONTAINERS"):
        shim.header_define("XPUSHARE_MAX_CONTAINERS", header)


def test_the_cdi_spec_mounts_the_limits_file_where_the_library_reads_it() -> None:
    from kubeletplugin import cdi

    assert shim.LIMITS_DIR == "/etc/xpushare/limits.d"
    assert shim.LIMITS_PATH == "/etc/xpushare/limits"  # what specs of earlier releases mount
    assert cdi.CONTAINER_LIMITS_DIR is shim.LIMITS_DIR
    assert cdi.container_limits_path("uid-1") == "/etc/xpushare/limits.d/uid-1"
    packaged = shim.packaged_library_path()
    if not packaged.is_file():
        pytest.skip(f"no packaged library at {packaged} (pip install -e . builds it)")
    for path in (shim.LIMITS_DIR, shim.LIMITS_PATH):
        assert path.encode() + b"\0" in packaged.read_bytes()  # the strings the C code opens


def test_a_string_define_is_read_from_the_header(tmp_path: Path) -> None:
    header = tmp_path / "h.h"
    header.write_text('#define A "/x/y"\n#define B 3\n')
    assert shim.header_string("A", header) == "/x/y"
    with pytest.raises(LookupError):
        shim.header_string("B", header)
