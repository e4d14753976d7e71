"""Which vendor versions go together, from the vendors' own public compatibility lists.

Kept here so ``xpushare diagnose`` can say "this does not go together" without network access; update
the tables with each vendor release. Sources (as of 2026-08):

- NVIDIA: "CUDA Toolkit and Corresponding Driver Versions", the CUDA Toolkit release notes
  (docs.nvidia.com/cuda/cuda-toolkit-release-notes, Table 3): the minimum Linux driver of each CUDA GA.
- torch_npu: Ascend/pytorch ``COMPATIBILITY.en.md`` (torch_npu release -> CANN).
- vllm-ascend: vllm-project/vllm-ascend ``docs/source/community/versioning_policy.md``, "Release
  compatibility matrix" (vllm-ascend -> CANN, torch_npu).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# CUDA major.minor -> the minimum Linux driver of its GA release.
CUDA_MIN_DRIVER: dict[str, str] = {
    "11.8": "520.61.05",
    "12.0": "525.60.13",
    "12.1": "530.30.02",
    "12.2": "535.54.03",
    "12.3": "545.23.06",
    "12.4": "550.54.14",
    "12.5": "555.42.02",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
}

# torch_npu release -> the CANN versions it is made for.
TORCH_NPU_CANN: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("2.1.0.post10", "2.3.1.post4", "2.4.0.post2"), ("8.0.0",)),
    **dict.fromkeys(("2.4.0", "2.3.1.post2", "2.1.0.post8"), ("8.0.RC3",)),
    **dict.fromkeys(("2.5.1", "2.4.0.post4", "2.3.1.post6", "2.1.0.post12"), ("8.1.RC1",)),
    **dict.fromkeys(("2.6.0", "2.5.1.post1", "2.1.0.post13"), ("8.2.RC1",)),
    **dict.fromkeys(("2.8.0", "2.7.1", "2.6.0.post3", "2.1.0.post17"), ("8.3.RC1",)),
    **dict.fromkeys(("2.9.0", "2.8.0.post2", "2.7.1.post2", "2.6.0.post5"), ("8.5.0",)),
    **dict.fromkeys(("2.9.0.post2", "2.8.0.post4", "2.7.1.post4"), ("9.0.0",)),
    **dict.fromkeys(("2.12.0", "2.11.0", "2.10.0.post4", "2.9.0.post6", "2.7.1.post8"), ("9.1.0",)),
}


@dataclass(frozen=True, slots=True)
class VllmAscend:
    """What one vllm-ascend release was released with: its CANN and torch_npu (a version prefix)."""

    cann: str
    torch_npu: str


VLLM_ASCEND: dict[str, VllmAscend] = {
    "0.7.3": VllmAscend("8.1.RC1", "2.5.1"),
    "0.8.4": VllmAscend("8.0.0", "2.5.1"),
    "0.8.5": VllmAscend("8.1.RC1", "2.5.1"),
    "0.9.0": VllmAscend("8.1.RC1", "2.5.1"),
    "0.9.1": VllmAscend("8.2.RC1", "2.5.1.post1"),
    "0.9.2": VllmAscend("8.1.RC1", "2.5.1.post1"),
    "0.10.0": VllmAscend("8.2.RC1", "2.7.1"),
    "0.10.1": VllmAscend("8.2.RC1", "2.7.1"),
    "0.10.2": VllmAscend("8.2.RC1", "2.7.1"),
    "0.11.0": VllmAscend("8.3.RC2", "2.7.1"),
    "0.12.0": VllmAscend("8.3.RC2", "2.8.0"),
    "0.13.0": VllmAscend("8.5.0", "2.8.0"),
    "0.18.0": VllmAscend("8.5.1", "2.9.0"),
    "0.23.0": VllmAscend("9.1.0", "2.10.0"),
}

_NUMBERS = re.compile(r"\d+")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in _NUMBERS.findall(version))


def older(version: str, than: str) -> bool:
    """Whether dotted ``version`` is older than ``than`` (numbers compared in order)."""
    return _numbers(version) < _numbers(than)


def driver_for_cuda(cuda: str) -> str | None:
    """The minimum Linux driver for CUDA ``12.4`` or ``12.4.1``; None for a CUDA not in the table."""
    return CUDA_MIN_DRIVER.get(".".join(cuda.split(".")[:2]))


def cuda_for_driver(driver: str) -> str | None:
    """The newest CUDA (of the table) a driver runs in full; None for a driver older than them all."""
    fitting = [cuda for cuda, minimum in CUDA_MIN_DRIVER.items() if not older(driver, minimum)]
    return max(fitting, key=_numbers) if fitting else None


def torch_npu_cann(torch_npu: str) -> tuple[str, ...]:
    """The CANN versions a torch_npu release is made for (a local version label ``+...`` ignored)."""
    return TORCH_NPU_CANN.get(torch_npu.split("+", maxsplit=1)[0], ())


def vllm_ascend_requirements(version: str) -> VllmAscend | None:
    """What a vllm-ascend release (``0.9.1``, ``0.9.1rc2``, ``v0.11.0.post1``) was released with."""
    numbers = _numbers(version.lstrip("v"))[:3]
    return VLLM_ASCEND.get(".".join(str(n) for n in numbers))
