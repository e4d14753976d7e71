"""What a PyTorch process sees of the GPU's memory: the view the memory tests assert on.

Run by the GPU tests under the interpreter that has PyTorch (standard library and torch only). It
reports ``torch.cuda.mem_get_info()`` and the device properties' total, runs a small computation whose
result is known, then allocates ``--chunk-mib`` tensors until ``--max-chunks`` are held or an
allocation fails, recording the exception's type and whether it is ``torch.cuda.OutOfMemoryError``.
Prints one ``RESULT {json}`` line; exits 0 whenever it could report (a refused allocation is a result).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

MIB = 1 << 20


def _info(torch: Any) -> dict[str, int]:
    free, total = torch.cuda.mem_get_info()
    return {"free": int(free), "total": int(total)}


def _expandable(torch: Any) -> bool | None:
    """Whether the allocator mapped its segments through the VMM API (None: not reported)."""
    try:
        flags = [segment.get("is_expandable") for segment in torch.cuda.memory_snapshot()]
    except (RuntimeError, TypeError, AttributeError):
        return None
    return None if not flags or None in flags else any(flags)


def _allocate(torch: Any, chunk_bytes: int, max_chunks: int) -> dict[str, Any]:
    held = []
    error: dict[str, Any] | None = None
    for _ in range(max_chunks):
        try:
            held.append(torch.empty(chunk_bytes, dtype=torch.uint8, device="cuda"))
        except RuntimeError as err:  # torch.cuda.OutOfMemoryError derives from RuntimeError
            error = {"type": f"{type(err).__module__}.{type(err).__qualname__}",
                     "oom": isinstance(err, torch.cuda.OutOfMemoryError),
                     "message": (str(err).splitlines() or [""])[0][:400]}
            break
    result = {"chunks": len(held), "allocated": len(held) * chunk_bytes, "error": error,
              "holding": _info(torch), "reserved": int(torch.cuda.memory_reserved()),
              "expandable": _expandable(torch)}
    del held
    torch.cuda.empty_cache()
    result["after"] = _info(torch)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunk-mib", type=int, default=1024)
    parser.add_argument("--max-chunks", type=int, default=0, help="0: report the memory view only")
    args = parser.parse_args(argv)
    torch: Any = importlib.import_module("torch")
    report: dict[str, Any] = {"torch": torch.__version__, "before": _info(torch),
                              "properties_total": int(torch.cuda.get_device_properties(0).total_memory)}
    ones = torch.ones(1 << 20, device="cuda")
    report["sanity_ok"] = bool(int((ones * 2).sum().item()) == 2 << 20)
    del ones
    if args.max_chunks > 0:
        report["alloc"] = _allocate(torch, args.chunk_mib * MIB, args.max_chunks)
    print("RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
