"""Memory limits on a real GPU: PyTorch with the shim preloaded sees and gets only its claim's memory.

Each check runs ``torch_probe.py`` in its own process under a 4 GiB claim, with PyTorch's default
caching allocator (``cuMemAlloc``) and with expandable segments (the VMM path: ``cuMemCreate``), and
compares with the same process without the shim.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gpu.torchlib import GIB, MIB, Claim, GpuNode, Run

pytestmark = pytest.mark.gpu

LIMIT = 4 * GIB
CHUNK_MIB = 1024
MAX_CHUNKS = 12
ALLOCATORS = {"caching": None, "expandable": "expandable_segments:True"}


def _probe(node: GpuNode, claim: Claim | None, alloc_conf: str | None, *, preload: bool = True,
           chunks: int = 0) -> tuple[Run, dict[str, Any]]:
    # PYTORCH_ALLOC_CONF is the newer name (it wins when set); both say the same here.
    extra = {"PYTORCH_CUDA_ALLOC_CONF": alloc_conf, "PYTORCH_ALLOC_CONF": alloc_conf} if alloc_conf else {}
    run = node.probe(f"--chunk-mib={CHUNK_MIB}", f"--max-chunks={chunks}",
                     env=node.env(claim, preload=preload, extra=extra))
    assert run.returncode == 0, run.describe()
    assert run.result is not None, run.describe()
    assert run.result["sanity_ok"] is True, run.describe()  # the GPU computes right under the shim
    return run, run.result


def _first_int(text: str) -> int | None:
    words = text.split()
    return int(words[0]) if words and words[0].isdigit() else None


@pytest.mark.timeout(240)
@pytest.mark.parametrize("allocator", list(ALLOCATORS))
def test_allocations_past_the_limit_raise_cuda_out_of_memory(node: GpuNode, allocator: str) -> None:
    claim = Claim("mem-limit", memory_bytes=LIMIT)
    _, result = _probe(node, claim, ALLOCATORS[allocator], chunks=MAX_CHUNKS)
    alloc = result["alloc"]
    got = f"{allocator}: {alloc['chunks']} x {CHUNK_MIB} MiB held under a {LIMIT // MIB} MiB limit; {alloc}"
    assert alloc["error"] is not None, f"no allocation failed: {got}"
    assert alloc["error"]["oom"] is True, f"failed, but not with torch.cuda.OutOfMemoryError: {got}"
    assert alloc["allocated"] <= LIMIT, got
    assert alloc["chunks"] >= LIMIT // (CHUNK_MIB * MIB) - 1, f"refused too early: {got}"
    assert alloc["holding"]["total"] == LIMIT, got
    if alloc["expandable"] is not None:  # the VMM path (cuMemCreate) was the one exercised
        assert alloc["expandable"] is (allocator == "expandable"), got
    usage = node.usage(claim)
    if usage is not None:  # the ledger never admitted past the limit, and counted what torch held
        assert usage[1] <= LIMIT, f"ledger peak {usage[1]} > limit: {got}"
        assert usage[1] >= alloc["allocated"], f"ledger peak {usage[1]} below what torch held: {got}"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("allocator", list(ALLOCATORS))
def test_mem_get_info_reports_the_limit(node: GpuNode, allocator: str) -> None:
    _, result = _probe(node, Claim("mem-info", memory_bytes=LIMIT), ALLOCATORS[allocator])
    before = result["before"]
    got = f"{allocator}: mem_get_info={before}, properties total={result['properties_total']}, limit={LIMIT}"
    assert before["total"] == LIMIT, got
    assert 0 < before["free"] <= LIMIT, got


@pytest.mark.timeout(120)
def test_nvidia_smi_in_the_container_shows_the_limit(node: GpuNode) -> None:
    limited = node.smi(node.env(Claim("smi", memory_bytes=LIMIT)))
    plain = node.smi(node.env(None, preload=False))
    assert limited.returncode == 0, limited.describe()
    assert plain.returncode == 0, plain.describe()
    got = f"nvidia-smi memory.total (MiB) with the shim: {limited.stdout.strip()!r}, " \
          f"without: {plain.stdout.strip()!r}"
    assert _first_int(limited.stdout) == LIMIT // MIB, got
    assert _first_int(plain.stdout) == node.gpu.total_bytes // MIB, got


@pytest.mark.timeout(240)
@pytest.mark.parametrize("allocator", list(ALLOCATORS))
def test_without_the_shim_the_process_sees_and_gets_the_whole_device(node: GpuNode, allocator: str) -> None:
    chunks = LIMIT // (CHUNK_MIB * MIB) + 2  # past the limit the claims above are refused
    _, result = _probe(node, Claim("control", memory_bytes=LIMIT), ALLOCATORS[allocator], preload=False,
                       chunks=chunks)
    alloc, total = result["alloc"], result["before"]["total"]
    got = f"{allocator} without the shim: mem_get_info={result['before']}, allocation: {alloc}"
    assert abs(total - node.gpu.total_bytes) <= 0.02 * node.gpu.total_bytes, got
    assert alloc["error"] is None, got
    assert alloc["chunks"] == chunks, got


@pytest.mark.timeout(180)
def test_without_a_limits_file_torch_gets_no_device_memory_and_the_shim_says_why_once(node: GpuNode) -> None:
    # Fail closed: no limits (the test build falls back to /etc/xpushare/limits.d, absent here).
    script = ("import torch\n"
              "for _ in range(3):\n"
              "    try:\n"
              "        torch.ones(1 << 20, device='cuda')\n"
              "        print('allocated')\n"
              "    except torch.cuda.OutOfMemoryError:\n"
              "        print('oom')\n")
    run = node.run([node.gpu.python, "-c", script], node.env(None))
    lines = [line for line in run.stderr.splitlines() if line.startswith("xpushare:")]
    got = f"stdout={run.stdout!r}\nstderr:\n{run.stderr[-2000:]}"
    assert run.stdout.split() == ["oom"] * 3, got
    assert lines == ["xpushare: limits file /etc/xpushare/limits.d: No such file or directory; "
                     "device allocations refused"], got
