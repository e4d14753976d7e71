"""Huawei DCMI (``libdcmi.so``) through cffi in ABI mode: the only module that declares its C API.

The declarations follow DCMI's ``dcmi_interface_api.h`` (names, argument order and structure layouts);
``ffi.dlopen`` needs no compiler on the node. ``DcmiLibrary`` turns each call into Python values and
each negative return code into ``DcmiCallError`` naming the function and the code, so the backend
decides what a failure means (enumeration error, or one device unhealthy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cffi import FFI  # type: ignore[import-untyped,unused-ignore]

from api.errors import DiscoveryError

log = logging.getLogger(__name__)

DEFAULT_PATHS = ("/usr/local/dcmi/libdcmi.so", "libdcmi.so")
MAX_CARD_NUM = 64
VERSION_LEN = 256

CDEF = """
#define MAX_CHIP_NAME_LEN 32
#define DIE_ID_COUNT 5
struct dcmi_chip_info {
    unsigned char chip_type[MAX_CHIP_NAME_LEN];
    unsigned char chip_name[MAX_CHIP_NAME_LEN];
    unsigned char chip_ver[MAX_CHIP_NAME_LEN];
    unsigned int aicore_cnt;
};
struct dcmi_pcie_info_all {
    unsigned int venderid;
    unsigned int subvenderid;
    unsigned int deviceid;
    unsigned int subdeviceid;
    int domain;
    unsigned int bdf_busid;
    unsigned int bdf_deviceid;
    unsigned int bdf_funcid;
    unsigned char reserve[32];
};
struct dcmi_die_id { unsigned int soc_die[DIE_ID_COUNT]; };
struct dcmi_hbm_info {
    unsigned long long memory_size;
    unsigned int freq;
    unsigned long long memory_usage;
    int temp;
    unsigned int bandwith_util_rate;
};
struct dcmi_get_memory_info_stru {
    unsigned long long memory_size;
    unsigned long long memory_available;
    unsigned int freq;
    unsigned long hugepagesize;
    unsigned long hugepages_total;
    unsigned long hugepages_free;
    unsigned int utiliza;
    unsigned char reserve[60];
};
enum dcmi_die_type { NDIE = 0, VDIE = 1 };
int dcmi_init(void);
int dcmi_get_dcmi_version(char *dcmi_ver, unsigned int len);
int dcmi_get_driver_version(char *driver_ver, unsigned int len);
int dcmi_get_card_num_list(int *card_num, int *card_list, int list_len);
int dcmi_get_device_num_in_card(int card_id, int *device_num);
int dcmi_get_device_logic_id(int *device_logic_id, int card_id, int device_id);
int dcmi_get_device_phyid_from_logicid(unsigned int logicid, unsigned int *phyid);
int dcmi_get_device_chip_info(int card_id, int device_id, struct dcmi_chip_info *chip_info);
int dcmi_get_device_hbm_info(int card_id, int device_id, struct dcmi_hbm_info *hbm_info);
int dcmi_get_device_memory_info_v3(int card_id, int device_id, struct dcmi_get_memory_info_stru *memory_info);
int dcmi_get_device_health(int card_id, int device_id, unsigned int *health);
int dcmi_get_device_pcie_info_v2(int card_id, int device_id, struct dcmi_pcie_info_all *pcie_info);
int dcmi_get_device_die_v2(int card_id, int device_id, enum dcmi_die_type input_type,
                           struct dcmi_die_id *die_id);
int dcmi_get_device_share_enable(int card_id, int device_id, int *enable_flag);
"""

# DCMI_ERR_CODE_* (dcmi_interface_api.h), for messages.
ERROR_NAMES = {
    -8001: "invalid parameter",
    -8002: "operation not permitted",
    -8003: "memory operation failed",
    -8005: "internal error",
    -8006: "timed out",
    -8007: "invalid device id",
    -8008: "device does not exist",
    -8009: "ioctl failed",
    -8010: "send message failed",
    -8011: "receive message failed",
    -8012: "not ready",
    -8013: "not supported in a container",
    -8020: "resource occupied",
    -8255: "not supported",
}
NOT_SUPPORTED = -8255

_ffi = FFI()
_ffi.cdef(CDEF)


class DcmiCallError(DiscoveryError):
    """One DCMI function returned an error code."""

    def __init__(self, function: str, code: int) -> None:
        self.function = function
        self.code = code
        super().__init__(f"{function} returned {code} ({ERROR_NAMES.get(code, 'unknown error')})")


@dataclass(frozen=True, slots=True)
class ChipInfo:
    chip_type: str
    chip_name: str
    chip_version: str
    aicore_count: int


@dataclass(frozen=True, slots=True)
class PcieInfo:
    domain: int
    bus: int
    device: int
    function: int

    @property
    def bus_id(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function:x}"


def _string(buffer: Any) -> str:
    return bytes(_ffi.buffer(buffer)).split(b"\0", 1)[0].decode(errors="replace").strip()


class DcmiLibrary:
    """An opened and initialised ``libdcmi.so``."""

    def __init__(self, path: str | None = None) -> None:
        self._lib, self.path = self._open(path)
        try:
            self._call("dcmi_init")
        except DcmiCallError as err:
            raise DiscoveryError(f"DCMI library {self.path}: {err}") from err

    @staticmethod
    def _open(path: str | None) -> tuple[Any, str]:
        failures = []
        for candidate in (path,) if path else DEFAULT_PATHS:
            if "/" in candidate and not Path(candidate).exists():
                failures.append(f"{candidate}: no such file")
                continue
            try:
                return _ffi.dlopen(candidate), candidate
            except OSError as err:
                failures.append(f"{candidate}: {err}")
        raise DiscoveryError("load DCMI library: " + "; ".join(failures))

    def _call(self, function: str, *args: Any) -> None:
        """Call ``function``; a symbol this library version lacks counts as "not supported"."""
        try:
            entry = getattr(self._lib, function)
        except AttributeError as err:
            raise DcmiCallError(function, NOT_SUPPORTED) from err
        code = entry(*args)
        if code != 0:
            raise DcmiCallError(function, code)

    def _version(self, function: str) -> str:
        buffer = _ffi.new("char[]", VERSION_LEN)
        self._call(function, buffer, VERSION_LEN)
        return _string(buffer)

    def driver_version(self) -> str:
        return self._version("dcmi_get_driver_version")

    def dcmi_version(self) -> str:
        return self._version("dcmi_get_dcmi_version")

    def card_ids(self) -> list[int]:
        count = _ffi.new("int *")
        cards = _ffi.new("int[]", MAX_CARD_NUM)
        self._call("dcmi_get_card_num_list", count, cards, MAX_CARD_NUM)
        return [cards[i] for i in range(min(count[0], MAX_CARD_NUM))]

    def _out(self, function: str, ctype: str, *args: Any) -> Any:
        """Call ``function`` with ``args`` and then a new ``ctype`` for it to fill; return that."""
        value = _ffi.new(ctype)
        self._call(function, *args, value)
        return value

    def device_count(self, card: int) -> int:
        return int(self._out("dcmi_get_device_num_in_card", "int *", card)[0])

    def logic_id(self, card: int, device: int) -> int:
        value = _ffi.new("int *")  # the one call that takes its output first
        self._call("dcmi_get_device_logic_id", value, card, device)
        return int(value[0])

    def physical_id(self, logic_id: int) -> int:
        return int(self._out("dcmi_get_device_phyid_from_logicid", "unsigned int *", logic_id)[0])

    def chip_info(self, card: int, device: int) -> ChipInfo:
        info = self._out("dcmi_get_device_chip_info", "struct dcmi_chip_info *", card, device)
        return ChipInfo(
            _string(info.chip_type), _string(info.chip_name), _string(info.chip_ver), int(info.aicore_cnt)
        )

    def hbm_mib(self, card: int, device: int) -> int:
        """Total on-chip memory (HBM) in MB, as DCMI reports it."""
        return int(self._out("dcmi_get_device_hbm_info", "struct dcmi_hbm_info *", card, device).memory_size)

    def memory_mib(self, card: int, device: int) -> int:
        """Total device DDR memory in MB (chips without HBM, such as the 310P)."""
        ctype = "struct dcmi_get_memory_info_stru *"
        return int(self._out("dcmi_get_device_memory_info_v3", ctype, card, device).memory_size)

    def health(self, card: int, device: int) -> int:
        return int(self._out("dcmi_get_device_health", "unsigned int *", card, device)[0])

    def pcie_info(self, card: int, device: int) -> PcieInfo:
        info = self._out("dcmi_get_device_pcie_info_v2", "struct dcmi_pcie_info_all *", card, device)
        return PcieInfo(info.domain, info.bdf_busid, info.bdf_deviceid, info.bdf_funcid)

    def vdie_id(self, card: int, device: int) -> str:
        """The chip's virtual die id, formatted as Ascend's tools print it (five 8-digit hex words)."""
        die = self._out("dcmi_get_device_die_v2", "struct dcmi_die_id *", card, device, self._lib.VDIE)
        return "-".join(f"{die.soc_die[i]:08X}" for i in range(5))

    def share_enabled(self, card: int, device: int) -> bool:
        return bool(self._out("dcmi_get_device_share_enable", "int *", card, device)[0])
